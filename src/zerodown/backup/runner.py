"""Taking, verifying, restoring and removing backups, with the catalogue kept truthful.

``Backups`` is what every interface (CLI and HTTP through ``service.py``, the scheduler, the
pre-deployment check, retention, drills) calls. Its rules:

- **Register before writing.** A backup is a ``running`` row before the target writes anything,
  and becomes ``succeeded`` in one statement once every artifact is whole on disk. A process
  killed in between leaves a ``running`` row; ``recover_interrupted`` (run when a controller
  starts) marks rows whose process is gone ``abandoned`` and removes what they left behind.
- **One backup of a target at a time**, across threads (a lock) and processes (a store lock
  renewed while the backup runs, so a dead holder's lock expires).
- **Never restore what does not check out.** A restore re-reads the artifact and compares its
  digest first; a corrupted backup is recorded as such and nothing is written.
- **Never overwrite live data without ``force``.** Targets restore to a new name by default.

Every outcome goes to the event log (``backup.succeeded``, ``backup.failed``,
``backup.verified``, ``backup.corrupted``, ``backup.restored``, ``backup.abandoned``,
``backup.pruned``, ``backup.repository_pruned``, ``backup.prune_failed``).

For crash tests, ``ZERODOWN_CRASH_FILE`` works as for the reconciler: when the file holds
``backup:written#1`` the process kills itself with SIGKILL after the first backup's artifacts
are on disk and before the catalogue says so (``backup:started`` fires right after the row is
written). Removals have ``prune:marked`` (every backup marked ``pruning``, nothing deleted yet)
and ``prune:forgotten`` (artifacts deleted and snapshots forgotten, ``restic prune`` not run).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psutil

from zerodown.backup.base import RestoreReport, VerifyReport
from zerodown.backup.settings import BackupSettings
from zerodown.core.clock import Clock, SystemClock
from zerodown.core.errors import (
    LockHeldError,
    NotFoundError,
    OperationFailedError,
    RefusedError,
    ZerodownError,
)
from zerodown.core.process import pid_alive
from zerodown.core.redact import redact_text
from zerodown.core.types import Revision, ServiceName, Version
from zerodown.store.backups import BackupCatalogue, BackupRecord, BackupStatus
from zerodown.store.base import Store

__all__ = [
    "BACKUP_LOCK_TTL",
    "Backups",
    "PruneOutcome",
    "ServingRelease",
    "catalogue_of",
    "owner_alive",
    "process_owner",
]

log = logging.getLogger(__name__)

BACKUP_LOCK_TTL: Final = 120.0
"""Seconds a backup's store lock lives without renewal; renewed every third of it."""
CRASH_FILE_ENV: Final = "ZERODOWN_CRASH_FILE"


@dataclass(frozen=True)
class PruneOutcome:
    """What removing backups did: the backups now ``pruned``, each ``restic prune`` run (its
    repository, duration and bytes freed, measured on disk) and what failed."""

    removed: tuple[BackupRecord, ...]
    repositories: tuple[dict[str, Any], ...]
    failures: tuple[tuple[str, tuple[int, ...]], ...]
    """Each problem, and the backups it left ``pruning``."""
    freed_bytes: int
    """Measured: the bytes of the files deleted, plus what each ``restic prune`` freed."""

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(message for message, _ in self.failures)


@dataclass(frozen=True)
class ServingRelease:
    """The release serving when a backup is taken (recorded on the backup)."""

    revision: int
    version: str


def catalogue_of(store: Store) -> BackupCatalogue:
    """The store's backup catalogue; ``RefusedError`` for a store that has none."""
    if isinstance(store, BackupCatalogue):
        return store
    raise RefusedError(f"the store {store!r} keeps no backup catalogue (use SQLite or PostgreSQL)")


def process_owner() -> str:
    """``<host>:<pid>:<process start time>``: names this process, and tells whether it lives."""
    started = int(psutil.Process().create_time())
    return f"{socket.gethostname()}:{os.getpid()}:{started}"


def owner_alive(owner: str) -> bool | None:
    """True/False for an owner on this host; None when it is another host's (unknowable)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    host, pid, started = parts[0], int(parts[1]), parts[2]
    if host != socket.gethostname():
        return None
    if not pid_alive(pid):
        return False
    try:
        return str(int(psutil.Process(pid).create_time())) == started
    except psutil.Error:
        return False


class Backups:
    """Backups of every service, registered in one catalogue."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.catalogue = catalogue_of(store)
        self.clock: Clock = clock or SystemClock()
        self.owner = owner or process_owner()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._failures: Counter[tuple[str, str]] = Counter()
        self._crash_seen: Counter[str] = Counter()

    # taking ---------------------------------------------------------------------------------
    def take(
        self,
        settings: BackupSettings,
        target_name: str,
        *,
        reason: str = "manual",
        release: ServingRelease | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> BackupRecord:
        """Back one target up now and return its catalogue entry (``succeeded``).

        Raises ``LockHeldError`` when a backup of the target is already running, and
        ``OperationFailedError`` (after recording the failure) when the backup fails."""
        target = settings.target(target_name)
        service = ServiceName(settings.service)
        with self._target_lock(settings.service, target_name):
            record = self.catalogue.begin_backup(
                service,
                target=target_name,
                kind=target.kind,
                reason=reason,
                owner=self.owner,
                release_revision=Revision(release.revision) if release else None,
                release_version=Version(release.version) if release else None,
                meta={"source": redact_text(target.describe()), **dict(meta or {})},
            )
            self._crash_point("backup:started")
            try:
                # A missing tool fails the backup on the record (and alerts), like any failure.
                tools = target.tool_versions()
                artifacts = target.back_up(backup_id=record.id, folder=settings.folder(target_name))
                self._crash_point("backup:written")
                done = self.catalogue.complete_backup(record.id, artifacts=artifacts, tools=tools)
            except BaseException as exc:
                error = redact_text(
                    exc.message if isinstance(exc, ZerodownError) else _describe(exc)
                )
                failed = self.catalogue.fail_backup(record.id, error=error)
                self._count_failure(settings.service, target_name)
                self._event(
                    failed,
                    "backup.failed",
                    f"backup {record.id} of {target_name} failed: {error}",
                    {"error": error},
                )
                if isinstance(exc, ZerodownError) and error != exc.message:
                    raise _retold(exc, error) from exc
                if isinstance(exc, ZerodownError) or not isinstance(exc, Exception):
                    raise
                raise OperationFailedError(
                    f"backup {record.id} of {target_name} failed: {error}"
                ) from exc
        size = done.size_bytes or 0
        self._event(
            done,
            "backup.succeeded",
            f"backup {done.id} of {target_name} ({target.kind}): {size} bytes in "
            f"{done.duration_s or 0:.3f}s, sha256 {done.artifacts[0].sha256[:12]}",
            {"size_bytes": size, "duration_s": done.duration_s, "reason": reason},
        )
        return done

    # checking -------------------------------------------------------------------------------
    def verify(self, settings: BackupSettings, backup_id: int) -> tuple[BackupRecord, VerifyReport]:
        """Re-read a backup's artifacts and check them; the outcome is stamped on the backup.

        A corrupted backup is a finding (``report.ok`` is False), not an exception."""
        record = self._record_of(settings, backup_id)
        if record.status != BackupStatus.SUCCEEDED:
            raise RefusedError(f"backup {backup_id} is {record.status}: it has nothing to verify")
        target = settings.target(record.target)
        report = target.verify(record.artifacts)
        stamped = self.catalogue.record_verification(
            backup_id, status=report.status, detail=report.to_dict()
        )
        if report.ok:
            self._event(stamped, "backup.verified", f"backup {backup_id} verified: digests match")
        else:
            problems = [*report.problems, *(a.problem for a in report.artifacts if not a.ok)]
            self._event(
                stamped,
                "backup.corrupted",
                f"backup {backup_id} of {record.target} is corrupted: {problems[0]}",
                {"problems": problems},
            )
        return stamped, report

    # restoring ------------------------------------------------------------------------------
    def restore(
        self,
        settings: BackupSettings,
        backup_id: int,
        *,
        destination: str | None = None,
        force: bool = False,
    ) -> RestoreReport:
        """Restore a backup to ``destination`` (default: a new name beside the live data).

        A corrupted artifact is never restored: ``OperationFailedError``, and the backup is
        marked corrupted in the catalogue."""
        record = self._record_of(settings, backup_id)
        if record.status != BackupStatus.SUCCEEDED:
            raise RefusedError(
                f"backup {backup_id} is {record.status}: only a succeeded backup can be restored"
            )
        if record.verify_status == "corrupted":
            raise RefusedError(
                f"backup {backup_id} was found corrupted on {_when(record)}: it is not restored"
            )
        target = settings.target(record.target)
        with self._target_lock(settings.service, record.target):
            try:
                report = target.restore(
                    record.artifacts, backup_id=backup_id, destination=destination, force=force
                )
            except OperationFailedError as exc:
                if "corrupted" in exc.message:
                    stamped = self.catalogue.record_verification(
                        backup_id, status="corrupted", detail={"restore": exc.message}
                    )
                    self._event(stamped, "backup.corrupted", exc.message)
                raise
        self._event(
            record,
            "backup.restored",
            f"backup {backup_id} of {record.target} restored to {report.destination}: "
            f"{report.bytes_written} bytes, sha256 {report.sha256[:12]}"
            + (" (replaced the live data)" if report.replaced_live else ""),
            report.to_dict(),
        )
        return report

    # removing -------------------------------------------------------------------------------
    def remove(self, settings: BackupSettings, backup_id: int, *, reason: str) -> BackupRecord:
        """Delete one backup's artifacts and mark it ``pruned`` (see ``prune``)."""
        record = self._record_of(settings, backup_id)
        if record.status == BackupStatus.RUNNING:
            raise RefusedError(f"backup {backup_id} is still running")
        with self.target_lock(settings.service, record.target):
            outcome = self.prune(settings, [record], reason=reason)
        if outcome.errors:
            raise OperationFailedError(outcome.errors[0])
        return self.catalogue.get_backup(backup_id)

    def prune(
        self, settings: BackupSettings, records: Sequence[BackupRecord], *, reason: str
    ) -> PruneOutcome:
        """Remove the artifacts of ``records``; the caller holds their target's lock.

        Crash-safe in the catalogue's order: every backup is marked ``pruning`` before anything
        is deleted; then its files are deleted or its restic snapshot forgotten (``restic
        forget <id>``); then ``restic prune`` runs once per repository that lost a snapshot;
        only then is each backup marked ``pruned``. A process killed on the way leaves
        ``pruning`` rows, which ``finish_pruning`` completes (the next retention run of the
        target, or ``recover_interrupted`` when a controller starts). A backup whose removal
        fails stays ``pruning`` and is named in ``errors``; the others go on."""
        return self.finish_pruning(settings, self.mark_pruning(records, reason=reason))

    def mark_pruning(self, records: Sequence[BackupRecord], *, reason: str) -> list[BackupRecord]:
        """Mark every backup ``pruning`` (first step of ``prune``; nothing is deleted)."""
        marked = [self.catalogue.begin_prune(record.id, reason=reason) for record in records]
        self._crash_point("prune:marked")
        return marked

    def finish_pruning(
        self, settings: BackupSettings, records: Sequence[BackupRecord]
    ) -> PruneOutcome:
        """Remove the artifacts of ``pruning`` backups and mark them ``pruned`` (others are
        skipped); the caller holds their target's lock."""
        from zerodown.backup.restic import Restic

        errors: list[tuple[str, list[int]]] = []
        removed: list[BackupRecord] = []
        by_repository: dict[Path, tuple[Restic, list[BackupRecord]]] = {}
        files_removed: list[tuple[BackupRecord, int]] = []
        for record in records:
            if record.status != BackupStatus.PRUNING:
                continue
            on_disk = _file_bytes(record)
            try:
                target = settings.target(record.target)
                if record.artifacts:
                    target.remove(record.artifacts)
            except ZerodownError as exc:
                errors.append((f"backup {record.id}: {exc.message}", [record.id]))
                continue
            restic = getattr(target, "restic", None)
            snapshots = [a for a in record.artifacts if a.location.startswith("restic:")]
            if isinstance(restic, Restic) and snapshots:
                by_repository.setdefault(restic.repository, (restic, []))[1].append(record)
            else:
                files_removed.append((record, on_disk))
        self._crash_point("prune:forgotten")
        for record, freed in files_removed:
            removed.append(self._pruned(record, {"freed_bytes": freed}))
        repositories: list[dict[str, Any]] = []
        for restic, waiting in by_repository.values():
            ids = ", ".join(str(r.id) for r in waiting)
            try:
                figures = restic.prune()
            except ZerodownError as exc:
                errors.append(
                    (
                        f"restic prune of {restic.repository} failed, so backup(s) {ids} stay "
                        f"pruning until a prune succeeds: {exc.message}",
                        [r.id for r in waiting],
                    )
                )
                continue
            figures["backup_ids"] = [r.id for r in waiting]
            repositories.append(figures)
            self._service_event(
                settings.service,
                "backup.repository_pruned",
                f"restic prune of {restic.repository} (backup(s) {ids} forgotten) freed "
                f"{figures['freed_bytes']} bytes in {figures['duration_s']:.3f}s",
                figures,
            )
            for record in waiting:
                removed.append(self._pruned(record, {"repository": figures["repository"]}))
        if removed:
            self._service_event(
                settings.service,
                "backup.pruned",
                f"backup(s) {', '.join(str(r.id) for r in removed)} removed "
                f"({sum(r.size_bytes or 0 for r in removed)} bytes recorded)",
                {"backup_ids": [r.id for r in removed]},
            )
        for error, failed_ids in errors:
            data = {"backup_ids": failed_ids}
            self._service_event(settings.service, "backup.prune_failed", error, data)
        freed = sum(freed for _, freed in files_removed) + sum(
            int(r["freed_bytes"]) for r in repositories
        )
        return PruneOutcome(
            removed=tuple(removed),
            repositories=tuple(repositories),
            failures=tuple((error, tuple(ids)) for error, ids in errors),
            freed_bytes=freed,
        )

    def _pruned(self, record: BackupRecord, detail: Mapping[str, Any]) -> BackupRecord:
        reason = str(dict(record.meta.get("pruned") or {}).get("reason") or "retention")
        return self.catalogue.mark_backup_pruned(record.id, reason=reason, detail=detail)

    # crash recovery -------------------------------------------------------------------------
    def recover_interrupted(
        self, settings_of: Callable[[str], BackupSettings | None] | None = None
    ) -> list[BackupRecord]:
        """Mark ``running`` backups whose process is gone ``abandoned``; remove the temporary
        and finished files they left (when ``settings_of`` can say where) and forget a
        snapshot they tagged; release their locks. Backups of live processes, and of other
        hosts (whose processes cannot be seen from here), are left alone."""
        recovered = []
        for record in self.catalogue.list_backups(statuses=(BackupStatus.RUNNING,), limit=10_000):
            if record.owner == self.owner or owner_alive(record.owner) is not False:
                continue
            abandoned = self.catalogue.fail_backup(
                record.id,
                error=f"its process ({record.owner}) ended before the backup was complete",
                status=BackupStatus.ABANDONED,
            )
            if abandoned.status != BackupStatus.ABANDONED:
                continue
            self.store.release_lock(_lock_name(record.service, record.target), owner=record.owner)
            settings = settings_of(record.service) if settings_of is not None else None
            leftovers = self._clean_leftovers(settings, record) if settings is not None else []
            self._count_failure(record.service, record.target)
            self._event(
                abandoned,
                "backup.abandoned",
                f"backup {record.id} of {record.target} was interrupted (its process ended); "
                "marked abandoned",
                {"removed": leftovers},
            )
            recovered.append(abandoned)
        return recovered

    def finish_interrupted_pruning(
        self, settings_of: Callable[[str], BackupSettings | None]
    ) -> list[BackupRecord]:
        """Finish removing the backups a process marked ``pruning`` and did not get to mark
        ``pruned`` (it was killed, or its ``restic prune`` failed). Targets being backed up or
        pruned right now (their lock is held) are left for later. Returns the backups pruned."""
        pending: dict[tuple[str, str], list[BackupRecord]] = {}
        for record in self.catalogue.list_backups(statuses=(BackupStatus.PRUNING,), limit=100_000):
            pending.setdefault((record.service, record.target), []).append(record)
        done: list[BackupRecord] = []
        for (service, target), records in pending.items():
            settings = settings_of(service)
            if settings is None:
                continue
            self._release_dead_lock(service, target)
            try:
                with self.target_lock(service, target):
                    current = [self.catalogue.get_backup(r.id) for r in records]
                    outcome = self.finish_pruning(settings, current)
            except LockHeldError:
                continue
            for error in outcome.errors:
                log.warning("finishing the removal of %s/%s: %s", service, target, error)
            done.extend(outcome.removed)
        return done

    def _release_dead_lock(self, service: str, target: str) -> None:
        """Release the target's lock when the process holding it is gone (killed mid-way)."""
        name = _lock_name(service, target)
        lock = self.store.get_lock(name)
        if lock is not None and lock.owner != self.owner and owner_alive(lock.owner) is False:
            self.store.release_lock(name, owner=lock.owner)

    def _clean_leftovers(self, settings: BackupSettings, record: BackupRecord) -> list[str]:
        removed: list[str] = []
        folder = settings.folder(record.target)
        if folder.is_dir():
            for path in folder.iterdir():
                name = path.name.lstrip(".")
                if name.startswith(f"{record.id}-"):
                    path.unlink(missing_ok=True)
                    removed.append(str(path))
        for scratch in _scratch_folders(settings.repository):
            shutil.rmtree(scratch, ignore_errors=True)
        if record.kind == "files":
            try:
                target = settings.target(record.target)
                restic = getattr(target, "restic", None)
                if restic is not None and (restic.repository / "config").exists():
                    snapshots = restic.snapshots(tags=[f"backup-id={record.id}"])
                    restic.forget([str(s["id"]) for s in snapshots])
                    removed.extend(f"restic:{s['id']}" for s in snapshots)
            except ZerodownError as exc:
                log.warning("cannot forget the snapshot of backup %s: %s", record.id, exc)
        return removed

    # figures --------------------------------------------------------------------------------
    def failures(self, service: str, target: str) -> int:
        """Backups of the target that failed or were abandoned since this object was made."""
        return self._failures[(service, target)]

    def newest_good(self, service: str, target: str) -> BackupRecord | None:
        """The newest succeeded backup of a target not found corrupted, or None."""
        for record in self.catalogue.list_backups(
            ServiceName(service), target=target, statuses=(BackupStatus.SUCCEEDED,), limit=20
        ):
            if record.good:
                return record
        return None

    # machinery ------------------------------------------------------------------------------
    def _record_of(self, settings: BackupSettings, backup_id: int) -> BackupRecord:
        record = self.catalogue.get_backup(backup_id)
        if record.service != settings.service:
            raise NotFoundError(f"{settings.service} has no backup with id {backup_id}")
        return record

    @contextmanager
    def target_lock(self, service: str, target: str) -> Iterator[None]:
        """Hold the target's lock (no backup, restore or removal of it runs meanwhile, in any
        process); ``LockHeldError`` when it is held."""
        with self._target_lock(service, target):
            yield

    @contextmanager
    def _target_lock(self, service: str, target: str) -> Iterator[None]:
        with self._locks_guard:
            local = self._locks.setdefault((service, target), threading.Lock())
        if not local.acquire(blocking=False):
            raise LockHeldError(f"a backup or restore of {service}/{target} is already running")
        name = _lock_name(service, target)
        stop = threading.Event()
        try:
            self.store.acquire_lock(name, owner=self.owner, ttl=BACKUP_LOCK_TTL)
        except BaseException:
            local.release()
            raise

        def renew() -> None:
            # Real time, whatever the clock: the lock must outlive a long backup for real.
            while not stop.wait(BACKUP_LOCK_TTL / 3):
                try:
                    self.store.acquire_lock(name, owner=self.owner, ttl=BACKUP_LOCK_TTL)
                except ZerodownError as exc:  # the next renewal may work; the backup goes on
                    log.warning("renewing lock %s failed: %s", name, exc)

        renewer = threading.Thread(target=renew, name=f"lock-{name}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join(timeout=5)
            try:
                self.store.release_lock(name, owner=self.owner)
            finally:
                local.release()

    def _count_failure(self, service: str, target: str) -> None:
        self._failures[(service, target)] += 1

    def _event(
        self,
        record: BackupRecord,
        kind: str,
        message: str,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            self.store.append_event(
                record.service,
                kind=kind,
                message=message,
                data={"backup_id": record.id, "target": record.target, **dict(data or {})},
            )
        except ZerodownError as exc:  # the catalogue is the record; the event log is a courtesy
            log.warning("event %s of backup %s not written: %s", kind, record.id, exc)

    def _service_event(
        self, service: str, kind: str, message: str, data: Mapping[str, Any]
    ) -> None:
        try:
            self.store.append_event(ServiceName(service), kind=kind, message=message, data=data)
        except ZerodownError as exc:
            log.warning("event %s of %s not written: %s", kind, service, exc)

    def _crash_point(self, label: str) -> None:
        path = os.environ.get(CRASH_FILE_ENV)
        if not path:
            return
        self._crash_seen[label] += 1
        try:
            wanted = Path(path).read_text().strip()
        except FileNotFoundError:
            return
        name, _, count = wanted.partition("#")
        if name == label and self._crash_seen[label] >= int(count or 1):
            Path(path).unlink(missing_ok=True)
            os.kill(os.getpid(), signal.SIGKILL)


def _lock_name(service: str, target: str) -> str:
    return f"backup:{service}:{target}"


def _file_bytes(record: BackupRecord) -> int:
    """Bytes on disk of a backup's file artifacts (those still there; snapshots count 0)."""
    total = 0
    for artifact in record.artifacts:
        if artifact.location.startswith("restic:"):
            continue
        try:
            total += Path(artifact.location).stat().st_size
        except OSError:
            continue
    return total


def _scratch_folders(repository: Path) -> list[Path]:
    """Scratch folders of verifications and restores whose process is gone."""
    found = []
    if repository.is_dir():
        for path in repository.glob(".zerodown-*.tmp"):
            pid = path.name.rsplit("-", 1)[-1].removesuffix(".tmp")
            if pid.isdigit() and not pid_alive(int(pid)):
                found.append(path)
    return found


def _retold(error: ZerodownError, message: str) -> ZerodownError:
    """``error`` again with ``message`` (its own with any secret masked)."""
    try:
        return type(error)(message)
    except TypeError:
        return OperationFailedError(message)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _when(record: BackupRecord) -> str:
    return record.verified_at.isoformat() if record.verified_at else "an earlier check"
