"""Small facts about processes that several layers need."""

from __future__ import annotations

import psutil

__all__ = ["pid_alive"]


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs and is not a zombie (an exited child nobody has reaped yet)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
