"""Injected time: every wait in zerodown goes through a ``Clock``.

``SystemClock`` is the real one. ``FrozenClock`` (in ``zerodown.testing``) advances only when told
to, so logic tests of the engine run in milliseconds. ``sleep`` is interruptible: give it a
``threading.Event`` and it returns early (``True``) as soon as the event is set, which is how a
controller wakes a waiting reconcile loop or stops on shutdown.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Wall time for records, monotonic time for durations, and an interruptible sleep."""

    def now(self) -> datetime:
        """Current wall-clock time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...

    def sleep(self, delay: float, wakeup: threading.Event | None = None) -> bool:
        """Wait ``delay`` seconds; return True if ``wakeup`` was set before the time was up."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, delay: float, wakeup: threading.Event | None = None) -> bool:
        if wakeup is None:
            if delay > 0:
                time.sleep(delay)
            return False
        return wakeup.wait(max(delay, 0.0))
