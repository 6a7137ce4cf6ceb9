"""Fault injection for crash-safety tests: kill this process at a named rollout transition.

When ``ZERODOWN_CRASH_FILE`` names a file, the reconciler calls ``crash_hook(label)`` after each
persisted rollout transition (labels like ``canary:steps:3`` or ``blue-green:finished:succeeded``).
If the file holds ``<label>#<n>``, the n-th call with that label removes the file and sends
SIGKILL to this very process: the harshest crash there is, at a deterministic point. Without
the variable nothing is installed and nothing is read.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

__all__ = ["crash_hook_from_env"]


def crash_hook_from_env() -> Callable[[str], None] | None:
    path = os.environ.get("ZERODOWN_CRASH_FILE")
    if not path:
        return None
    target = Path(path)
    seen: Counter[str] = Counter()

    def hook(label: str) -> None:
        seen[label] += 1
        try:
            wanted = target.read_text().strip()
        except FileNotFoundError:
            return
        name, _, count = wanted.partition("#")
        if name == label and seen[label] >= int(count or 1):
            target.unlink(missing_ok=True)
            os.kill(os.getpid(), signal.SIGKILL)

    return hook
