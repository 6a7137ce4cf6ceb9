"""What a report is made from: plain data the service layer reads from the store.

The report package never touches the store, the engine or the data plane: whoever writes a
report fills one ``ReportInput`` (a release, the release it replaced, that release's events,
the checks that ran, the instances now and the alerts of the window) and the report is a pure
function of it. Every key inside the mappings is optional, because an operation may end before
the engine wrote it (an ``up`` has no previous release and often no traffic samples); a missing
figure becomes a field that says why it is not known, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from zerodown.core.errors import InputError

__all__ = ["OPERATIONS", "ReportInput"]

OPERATIONS = frozenset(
    {"deploy", "up", "rollback", "abort", "backup", "restore", "retention", "drill"}
)
"""Operations a report can describe; others are accepted and shown by name."""


@dataclass(frozen=True, kw_only=True)
class ReportInput:
    """One deployment or operation, as recorded.

    ``release`` and ``previous`` have the keys ``revision``, ``version``, ``strategy``,
    ``status``, ``reason``, ``created_at`` and ``finished_at`` (ISO text or None) and ``state``
    (the engine's rollout state). ``events`` are the release's events, oldest first, each with
    ``id``, ``ts`` (ISO), ``kind``, ``message`` and ``data``. Checks are
    ``{"name", "status": "pass|warn|fail", "summary", "figures"}``; instances
    ``{"id", "revision", "state", "restarts", "cpu_percent", "memory_bytes"}``.

    ``generated_at`` names the report files; a naive value is taken as UTC.
    """

    service: str
    operation: str
    generated_at: datetime
    release: Mapping[str, Any]
    previous: Mapping[str, Any] | None
    events: Sequence[Mapping[str, Any]]
    prechecks: Sequence[Mapping[str, Any]]
    postchecks: Sequence[Mapping[str, Any]]
    instances: Sequence[Mapping[str, Any]]
    alerts: Sequence[Mapping[str, Any]]
    replicas: int

    def __post_init__(self) -> None:
        if not self.service:
            raise InputError("a report needs a service name")
        if "revision" not in self.release:
            raise InputError("a report needs the release's revision")
        if self.replicas < 0:
            raise InputError(f"replicas cannot be negative, not {self.replicas}")
        if self.generated_at.tzinfo is None:
            object.__setattr__(self, "generated_at", self.generated_at.replace(tzinfo=UTC))
        else:
            object.__setattr__(self, "generated_at", self.generated_at.astimezone(UTC))
