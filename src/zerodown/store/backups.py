"""The backup catalogue: every backup taken, with what it produced and how it was checked.

A backup is registered in two steps so that a crash can never leave one that looks good:

1. ``begin_backup`` writes a row in status ``running`` before any artifact exists (its id
   names the artifacts);
2. ``complete_backup`` (or ``fail_backup``) changes that row in one statement, and only while
   it is still ``running``.

A controller killed between the two leaves a ``running`` row; the next controller marks it
``abandoned`` (``zerodown.backup``) and never treats it as a backup to restore from.

Removing a backup (retention) goes the same way round: ``begin_prune`` marks it ``pruning``
before any artifact is deleted, ``mark_backup_pruned`` once they are all gone. A controller
killed in between leaves a ``pruning`` row, which the next one finishes removing; the row is
never deleted, so the catalogue keeps every backup ever taken as history.

``SqlBackupCatalogue`` is a mixin of ``SqlStore``, so both SQLite and PostgreSQL stores are
catalogues; ``BackupCatalogue`` is the Protocol the backup code programs against.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from zerodown.core.errors import InputError, NotFoundError, OperationFailedError
from zerodown.core.types import Revision, ServiceName, Version

if TYPE_CHECKING:
    from zerodown.store.sql import _Transaction

__all__ = [
    "BackupArtifact",
    "BackupCatalogue",
    "BackupRecord",
    "BackupStatus",
    "SqlBackupCatalogue",
]

T = TypeVar("T")


class BackupStatus(StrEnum):
    RUNNING = "running"  # registered, artifacts being written
    SUCCEEDED = "succeeded"  # every artifact written, measured and hashed
    FAILED = "failed"  # the backup ran and failed; no artifact to restore
    ABANDONED = "abandoned"  # its process died while it was running
    PRUNING = "pruning"  # forgotten by retention, its artifacts being removed
    PRUNED = "pruned"  # removed by retention; the row stays as history


@dataclass(frozen=True, kw_only=True)
class BackupArtifact:
    """One thing a backup produced: a file (a SQLite copy, a ``pg_dump`` archive) or a restic
    snapshot. ``sha256`` is the file's digest; for a snapshot it is the digest of the sorted
    list of every file's path, size and SHA-256 (the snapshot's manifest digest)."""

    name: str
    location: str  # a file path, or "restic:<snapshot id>"
    size_bytes: int
    sha256: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "location": self.location,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackupArtifact:
        return cls(
            name=str(data["name"]),
            location=str(data["location"]),
            size_bytes=int(data["size_bytes"]),
            sha256=str(data["sha256"]),
            meta=dict(data.get("meta") or {}),
        )


@dataclass(frozen=True, kw_only=True)
class BackupRecord:
    id: int
    service: ServiceName
    target: str
    kind: str  # files, sqlite, postgresql, docker-volume
    status: BackupStatus
    reason: str  # why it was taken: "manual", "schedule", "before deploy" ...
    owner: str  # the process that took it: "<host>:<pid>:<process start time>"
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    size_bytes: int | None
    artifacts: tuple[BackupArtifact, ...]
    tools: Mapping[str, str]  # tool -> version, e.g. {"restic": "0.14.0"}
    release_revision: Revision | None  # the release serving when it was taken
    release_version: Version | None
    error: str
    verified_at: datetime | None
    verify_status: str | None  # None (never verified), "ok" or "corrupted"
    verify_detail: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def good(self) -> bool:
        """Succeeded and not found corrupted by its last verification."""
        return self.status == BackupStatus.SUCCEEDED and self.verify_status != "corrupted"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for the HTTP API and ``--json``."""
        return {
            "id": self.id,
            "service": self.service,
            "target": self.target,
            "kind": self.kind,
            "status": str(self.status),
            "reason": self.reason,
            "owner": self.owner,
            "started_at": self.started_at.isoformat(),
            "finished_at": _iso(self.finished_at),
            "duration_s": self.duration_s,
            "size_bytes": self.size_bytes,
            "artifacts": [a.to_dict() for a in self.artifacts],
            "tools": dict(self.tools),
            "release_revision": self.release_revision,
            "release_version": self.release_version,
            "error": self.error,
            "verified_at": _iso(self.verified_at),
            "verify_status": self.verify_status,
            "verify_detail": dict(self.verify_detail),
            "meta": dict(self.meta),
        }


@runtime_checkable
class BackupCatalogue(Protocol):
    """Where backups are registered. Safe to call from several threads."""

    def begin_backup(
        self,
        service: ServiceName,
        *,
        target: str,
        kind: str,
        reason: str,
        owner: str,
        release_revision: Revision | None = None,
        release_version: Version | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> BackupRecord:
        """A new backup in status ``running``, with a fresh id (never reused)."""
        ...

    def complete_backup(
        self,
        backup_id: int,
        *,
        artifacts: Sequence[BackupArtifact],
        tools: Mapping[str, str],
        meta: Mapping[str, Any] | None = None,
    ) -> BackupRecord:
        """``running`` -> ``succeeded`` with its artifacts, total size and duration, in one
        statement. ``OperationFailedError`` if the backup is no longer running (it was marked
        abandoned meanwhile): a backup is never completed twice."""
        ...

    def fail_backup(
        self, backup_id: int, *, error: str, status: BackupStatus = BackupStatus.FAILED
    ) -> BackupRecord:
        """``running`` -> ``failed`` (or ``abandoned``) with why. A backup that is not running
        is returned unchanged."""
        ...

    def get_backup(self, backup_id: int) -> BackupRecord:
        """Raises ``NotFoundError`` for an unknown id."""
        ...

    def list_backups(
        self,
        service: ServiceName | None = None,
        *,
        target: str | None = None,
        statuses: tuple[BackupStatus, ...] = (),
        limit: int = 100,
    ) -> list[BackupRecord]:
        """Newest first; ``statuses`` empty means every status."""
        ...

    def record_verification(
        self, backup_id: int, *, status: str, detail: Mapping[str, Any]
    ) -> BackupRecord:
        """Stamp the outcome of a verification (``ok`` or ``corrupted``) on a backup."""
        ...

    def begin_prune(self, backup_id: int, *, reason: str) -> BackupRecord:
        """A backup about to lose its artifacts: ``pruning``, ``reason`` and the time in
        ``meta["pruned"]``, written before anything is deleted. A backup already pruning or
        pruned is returned unchanged; ``OperationFailedError`` for a running one."""
        ...

    def mark_backup_pruned(
        self, backup_id: int, *, reason: str, detail: Mapping[str, Any] | None = None
    ) -> BackupRecord:
        """A backup whose artifacts were removed (by retention): status ``pruned``, ``reason``
        (the one ``begin_prune`` recorded, if any) and ``detail`` in ``meta["pruned"]``. Only
        succeeded, failed, abandoned or pruning backups can be pruned; a pruned one is
        returned unchanged."""
        ...


_BACKUP_COLUMNS = (
    "id, service, target, kind, status, reason, owner, started_at, finished_at, duration_s,"
    " size_bytes, artifacts, tools, release_revision, release_version, error, verified_at,"
    " verify_status, verify_detail, meta"
)
_VERIFY_STATUSES = ("ok", "corrupted")


class SqlBackupCatalogue:
    """``BackupCatalogue`` over the ``backups`` table (migration 0004); mixed into ``SqlStore``,
    whose ``_run`` gives each call one transaction."""

    if TYPE_CHECKING:

        def _run(
            self,
            work: Callable[[_Transaction], T],
            *,
            write: bool = True,
            conflict_attempts: int = 1,
        ) -> T: ...

        def _now(self) -> float: ...

    def begin_backup(
        self,
        service: ServiceName,
        *,
        target: str,
        kind: str,
        reason: str,
        owner: str,
        release_revision: Revision | None = None,
        release_version: Version | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> BackupRecord:
        if not service or not target:
            raise InputError("a backup needs a service and a target name")
        values = (
            service, target, kind, BackupStatus.RUNNING.value, reason, owner, self._now(),
            "[]", "{}", release_revision, release_version, "", "{}", _to_json(meta or {}),
        )  # fmt: skip
        row = self._run(
            lambda tx: tx.one(
                "INSERT INTO backups (service, target, kind, status, reason, owner, started_at,"
                " artifacts, tools, release_revision, release_version, error, verify_detail,"
                " meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                f" RETURNING {_BACKUP_COLUMNS}",
                values,
            )
        )
        return _backup(row)

    def complete_backup(
        self,
        backup_id: int,
        *,
        artifacts: Sequence[BackupArtifact],
        tools: Mapping[str, str],
        meta: Mapping[str, Any] | None = None,
    ) -> BackupRecord:
        size = sum(a.size_bytes for a in artifacts)
        payload = json.dumps([a.to_dict() for a in artifacts])

        def complete(tx: _Transaction) -> Any:
            now = self._now()
            current = _running_row(tx, backup_id)
            merged = {**_from_json(current[19]), **dict(meta or {})}
            row = tx.one(
                "UPDATE backups SET status = ?, finished_at = ?, duration_s = ? - started_at,"
                " size_bytes = ?, artifacts = ?, tools = ?, meta = ?"
                f" WHERE id = ? AND status = ? RETURNING {_BACKUP_COLUMNS}",
                (BackupStatus.SUCCEEDED.value, now, now, size, payload, _to_json(tools),
                 _to_json(merged), backup_id, BackupStatus.RUNNING.value),
            )  # fmt: skip
            if row is None:  # abandoned by another process between the two statements
                raise OperationFailedError(f"backup {backup_id} is no longer running")
            return row

        return _backup(self._run(complete))

    def fail_backup(
        self, backup_id: int, *, error: str, status: BackupStatus = BackupStatus.FAILED
    ) -> BackupRecord:
        if status not in (BackupStatus.FAILED, BackupStatus.ABANDONED):
            raise InputError(f"a backup can fail as failed or abandoned, not {status}")

        def fail(tx: _Transaction) -> Any:
            now = self._now()
            row = tx.one(
                "UPDATE backups SET status = ?, finished_at = ?, duration_s = ? - started_at,"
                f" error = ? WHERE id = ? AND status = ? RETURNING {_BACKUP_COLUMNS}",
                (BackupStatus(status).value, now, now, error, backup_id,
                 BackupStatus.RUNNING.value),
            )  # fmt: skip
            return row if row is not None else _select(tx, backup_id)

        return _backup(self._run(fail))

    def get_backup(self, backup_id: int) -> BackupRecord:
        return _backup(self._run(lambda tx: _select(tx, backup_id), write=False))

    def list_backups(
        self,
        service: ServiceName | None = None,
        *,
        target: str | None = None,
        statuses: tuple[BackupStatus, ...] = (),
        limit: int = 100,
    ) -> list[BackupRecord]:
        if limit < 0:
            raise InputError(f"limit must not be negative, got {limit}")
        conditions: list[str] = []
        params: list[Any] = []
        if service is not None:
            conditions.append("service = ?")
            params.append(service)
        if target is not None:
            conditions.append("target = ?")
            params.append(target)
        if statuses:
            conditions.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(BackupStatus(s).value for s in statuses)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._run(
            lambda tx: tx.all(
                f"SELECT {_BACKUP_COLUMNS} FROM backups{where} ORDER BY id DESC LIMIT ?",
                (*params, limit),
            ),
            write=False,
        )
        return [_backup(row) for row in rows]

    def record_verification(
        self, backup_id: int, *, status: str, detail: Mapping[str, Any]
    ) -> BackupRecord:
        if status not in _VERIFY_STATUSES:
            raise InputError(f"a verification is ok or corrupted, not {status!r}")

        def stamp(tx: _Transaction) -> Any:
            row = tx.one(
                "UPDATE backups SET verified_at = ?, verify_status = ?, verify_detail = ?"
                f" WHERE id = ? RETURNING {_BACKUP_COLUMNS}",
                (self._now(), status, _to_json(detail), backup_id),
            )
            if row is None:
                raise _unknown_backup(backup_id)
            return row

        return _backup(self._run(stamp))

    def begin_prune(self, backup_id: int, *, reason: str) -> BackupRecord:
        def begin(tx: _Transaction) -> Any:
            current = _backup(_select(tx, backup_id))
            if current.status in (BackupStatus.PRUNING, BackupStatus.PRUNED):
                return _select(tx, backup_id)
            if current.status == BackupStatus.RUNNING:
                raise OperationFailedError(f"backup {backup_id} is still running")
            pruned = {"reason": reason, "at": self._now(), "was": current.status.value}
            meta = {**dict(current.meta), "pruned": pruned}
            return tx.one(
                f"UPDATE backups SET status = ?, meta = ? WHERE id = ? RETURNING {_BACKUP_COLUMNS}",
                (BackupStatus.PRUNING.value, _to_json(meta), backup_id),
            )

        return _backup(self._run(begin))

    def mark_backup_pruned(
        self, backup_id: int, *, reason: str, detail: Mapping[str, Any] | None = None
    ) -> BackupRecord:
        def prune(tx: _Transaction) -> Any:
            current = _backup(_select(tx, backup_id))
            if current.status == BackupStatus.PRUNED:
                return _select(tx, backup_id)
            if current.status == BackupStatus.RUNNING:
                raise OperationFailedError(f"backup {backup_id} is still running")
            now = self._now()
            started = dict(current.meta.get("pruned") or {})
            pruned = {
                "reason": reason,
                "at": now,
                **started,
                "removed_at": now,
                **({"detail": dict(detail)} if detail else {}),
            }
            meta = {**dict(current.meta), "pruned": pruned}
            return tx.one(
                f"UPDATE backups SET status = ?, meta = ? WHERE id = ? RETURNING {_BACKUP_COLUMNS}",
                (BackupStatus.PRUNED.value, _to_json(meta), backup_id),
            )

        return _backup(self._run(prune))


# rows -> records ----------------------------------------------------------------------------
def _select(tx: _Transaction, backup_id: int) -> Any:
    row = tx.one(f"SELECT {_BACKUP_COLUMNS} FROM backups WHERE id = ?", (backup_id,))
    if row is None:
        raise _unknown_backup(backup_id)
    return row


def _running_row(tx: _Transaction, backup_id: int) -> Any:
    row = _select(tx, backup_id)
    if row[4] != BackupStatus.RUNNING.value:
        raise OperationFailedError(
            f"backup {backup_id} is {row[4]}, not running: it cannot be completed"
        )
    return row


def _unknown_backup(backup_id: int) -> NotFoundError:
    return NotFoundError(f"no backup with id {backup_id}")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(float(epoch), UTC)


def _to_json(mapping: Mapping[str, Any]) -> str:
    return json.dumps(dict(mapping))


def _from_json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def _backup(row: Sequence[Any]) -> BackupRecord:
    (backup_id, service, target, kind, status, reason, owner, started_at, finished_at,
     duration_s, size_bytes, artifacts, tools, release_revision, release_version, error,
     verified_at, verify_status, verify_detail, meta) = row  # fmt: skip
    started = _time(started_at)
    assert started is not None  # NOT NULL in the schema
    return BackupRecord(
        id=int(backup_id),
        service=ServiceName(service),
        target=target,
        kind=kind,
        status=BackupStatus(status),
        reason=reason,
        owner=owner,
        started_at=started,
        finished_at=_time(finished_at),
        duration_s=None if duration_s is None else float(duration_s),
        size_bytes=None if size_bytes is None else int(size_bytes),
        artifacts=tuple(BackupArtifact.from_dict(a) for a in json.loads(artifacts)),
        tools={str(k): str(v) for k, v in _from_json(tools).items()},
        release_revision=None if release_revision is None else Revision(int(release_revision)),
        release_version=None if release_version is None else Version(release_version),
        error=error,
        verified_at=_time(verified_at),
        verify_status=verify_status,
        verify_detail=_from_json(verify_detail),
        meta=_from_json(meta),
    )
