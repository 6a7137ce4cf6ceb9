"""The ``Store`` Protocol: services, releases, the event log, instances and deploy locks.

The store is the controller's memory. Everything the engine decides is written here before it
is acted on, so a controller killed at any point resumes from what the store says. SQLite is the
embedded default (``sqlite.py``); PostgreSQL is used when given a ``postgresql://`` URL
(``postgres.py``). Both pass the same contract tests.

Records are frozen dataclasses; times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from zerodown.core.types import InstanceId, Revision, ServiceName, Version

__all__ = [
    "EventRecord",
    "InstanceRecord",
    "LockRecord",
    "ReleaseRecord",
    "ReleaseStatus",
    "ServiceRecord",
    "Store",
]


class ReleaseStatus(StrEnum):
    PENDING = "pending"  # created, nothing changed yet
    PROGRESSING = "progressing"  # rollout under way
    PAUSED = "paused"  # waiting for a promote, or an inconclusive analysis
    SUCCEEDED = "succeeded"  # serving all traffic (the current release)
    FAILED = "failed"  # rollout failed and could not be rolled back cleanly
    ROLLED_BACK = "rolled_back"  # rollout failed or was aborted; previous release restored
    SUPERSEDED = "superseded"  # was current, replaced by a newer succeeded release
    STOPPED = "stopped"  # the service was stopped while this release was current


TERMINAL_STATUSES = frozenset(
    {
        ReleaseStatus.FAILED,
        ReleaseStatus.ROLLED_BACK,
        ReleaseStatus.SUPERSEDED,
        ReleaseStatus.STOPPED,
    }
)


@dataclass(frozen=True, kw_only=True)
class ServiceRecord:
    name: ServiceName
    spec_path: str
    spec_text: str  # what the user wrote, stored verbatim
    desired_state: str  # "running" or "stopped"
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class ReleaseRecord:
    service: ServiceName
    revision: Revision
    version: Version
    spec_hash: str
    spec_text: str
    strategy: str
    status: ReleaseStatus
    reason: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    state: Mapping[str, Any] = field(default_factory=dict)  # engine status: step index, weights ...


@dataclass(frozen=True, kw_only=True)
class EventRecord:
    id: int
    service: ServiceName
    revision: Revision | None
    ts: datetime
    kind: str  # dotted, e.g. "instance.started", "release.succeeded", "analysis.failed"
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class InstanceRecord:
    id: InstanceId
    service: ServiceName
    revision: Revision
    version: Version
    slot: int
    platform: str
    host: str
    port: int
    pid: int | None
    started_at: float  # process start time (epoch seconds), part of the instance's identity
    log_path: str | None
    state: str  # "running", "stopped", "crashed"
    restarts: int = 0
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class LockRecord:
    name: str
    owner: str
    acquired_at: datetime
    expires_at: datetime


class Store(Protocol):
    """Persistence of zerodown's state. Safe to call from several threads."""

    def close(self) -> None: ...

    # services -------------------------------------------------------------------------------
    def upsert_service(
        self, name: ServiceName, *, spec_path: str, spec_text: str, desired_state: str = "running"
    ) -> ServiceRecord: ...

    def get_service(self, name: ServiceName) -> ServiceRecord:
        """Raises ``NotFoundError`` for an unknown service."""
        ...

    def list_services(self) -> list[ServiceRecord]: ...

    def set_desired_state(self, name: ServiceName, desired_state: str) -> ServiceRecord:
        """Raises ``NotFoundError`` for an unknown service."""
        ...

    # releases -------------------------------------------------------------------------------
    def create_release(
        self,
        service: ServiceName,
        *,
        version: Version,
        spec_text: str,
        spec_hash: str,
        strategy: str,
        status: ReleaseStatus = ReleaseStatus.PENDING,
        state: Mapping[str, Any] | None = None,
    ) -> ReleaseRecord:
        """Next revision (1, 2, ...) for the service, allocated atomically.

        Raises ``NotFoundError`` for an unknown service."""
        ...

    def get_release(self, service: ServiceName, revision: Revision) -> ReleaseRecord:
        """Raises ``NotFoundError`` for an unknown release."""
        ...

    def list_releases(self, service: ServiceName, *, limit: int = 100) -> list[ReleaseRecord]:
        """Newest first."""
        ...

    def update_release(
        self,
        service: ServiceName,
        revision: Revision,
        *,
        status: ReleaseStatus | None = None,
        reason: str | None = None,
        state: Mapping[str, Any] | None = None,
        finished: bool = False,
    ) -> ReleaseRecord:
        """Change the given fields (``state`` replaces the whole mapping); ``finished`` stamps
        ``finished_at``. Raises ``NotFoundError`` for an unknown release."""
        ...

    # events ---------------------------------------------------------------------------------
    def append_event(
        self,
        service: ServiceName,
        *,
        kind: str,
        message: str,
        revision: Revision | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> EventRecord: ...

    def list_events(
        self,
        service: ServiceName | None = None,
        *,
        after_id: int = 0,
        revision: Revision | None = None,
        limit: int = 1000,
    ) -> list[EventRecord]:
        """Oldest first, ids strictly greater than ``after_id``."""
        ...

    # instances ------------------------------------------------------------------------------
    def save_instance(self, record: InstanceRecord) -> None:
        """Insert or replace by id."""
        ...

    def list_instances(
        self, service: ServiceName | None = None, *, states: tuple[str, ...] = ("running",)
    ) -> list[InstanceRecord]:
        """Instances in any of ``states`` (an empty tuple means every state)."""
        ...

    def delete_instance(self, instance_id: InstanceId) -> None:
        """Forget an instance; an unknown id is not an error."""
        ...

    # locks ----------------------------------------------------------------------------------
    def acquire_lock(self, name: str, *, owner: str, ttl: float) -> LockRecord:
        """Take or renew (same owner) the lock; ``LockHeldError`` if another owner holds it
        and it has not expired."""
        ...

    def release_lock(self, name: str, *, owner: str) -> None:
        """Release the lock if ``owner`` holds it; otherwise do nothing."""
        ...

    def get_lock(self, name: str) -> LockRecord | None:
        """The current holder, or None if the lock is free or has expired."""
        ...
