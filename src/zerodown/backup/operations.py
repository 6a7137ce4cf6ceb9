"""Backups as the controller offers them: per service, by name, from the stored spec.

``ServiceBackups`` is what ``service.py`` delegates to. It reads each service's ``backups:``
section from the spec the store holds (paths relative to that spec's folder), knows which
release is serving (recorded on every backup), and adds the three things a controller does on
top of ``Backups``:

- **recovery and schedules**: ``start`` marks backups interrupted by a crash ``abandoned``
  (never half-registered as good) and starts the ``BackupScheduler``;
- **backup confirmed** (the pre-deployment check): ``before_deploy`` takes a fresh backup of
  every target marked ``beforeDeploy: true`` and turns each into a check result carrying the
  backup's id, which the release keeps in its state;
- **rollback with data**: ``rollback_plan`` finds, for the release a rollback returns to, the
  pre-deployment backups taken while it was serving (newest per target), and
  ``rollback_with_data`` puts them back over the live data (the caller has confirmed that very
  plan): a safety backup of each target first, then the traffic flip, then the restores, and
  on a failure part-way the targets already restored are put back from their safety backups;
- **operations people ask for**: ``backup_operation``, ``restore_operation`` and ``forget``
  (retention) each write their events under one operation id and, when the service layer gave
  a ``ReportSink``, one Deployment Operations Report (``zerodown.backup.reports`` says which
  operations write one and why scheduled backups do not).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zerodown.backup.base import RestoreReport
from zerodown.backup.reports import (
    OperationReport,
    check,
    storage_check,
    storage_figures,
    write_operation_report,
)
from zerodown.backup.retention import (
    RetentionPolicy,
    RetentionRun,
    apply_retention,
    apply_retention_to,
)
from zerodown.backup.runner import Backups, ServingRelease
from zerodown.backup.scheduler import BackupScheduler, target_max_age
from zerodown.backup.settings import BackupSettings, resolve_settings
from zerodown.checks.base import CheckResult
from zerodown.core.clock import Clock, SystemClock
from zerodown.core.errors import (
    InputError,
    LockHeldError,
    NotFoundError,
    OperationFailedError,
    RefusedError,
    SpecError,
    ZerodownError,
)
from zerodown.core.redact import redact_text
from zerodown.core.types import Revision, ServiceName
from zerodown.spec import parse_spec
from zerodown.spec.models import ServiceSpec
from zerodown.store.backups import BackupCatalogue, BackupRecord, BackupStatus
from zerodown.store.base import EventRecord, ReleaseRecord, ReleaseStatus, Store

__all__ = ["BEFORE_DEPLOY_REASON", "SAFETY_REASON", "ReportSink", "ServiceBackups"]

log = logging.getLogger(__name__)

BEFORE_DEPLOY_REASON = "before deploy"
SAFETY_REASON = "before rollback"
"""The reason of the safety backups ``rollback --with-data`` takes of what it replaces."""


@dataclass(frozen=True)
class ReportSink:
    """Where the reports of operations on the data go (a service's report folder), and the
    live service's instances they describe as its health (the service layer knows both)."""

    folder: Callable[[str], Path]
    instances: Callable[[str], list[dict[str, Any]]]


class ServiceBackups:
    """The backups of every service one controller runs."""

    def __init__(
        self,
        store: Store,
        *,
        state_dir: Path,
        clock: Clock | None = None,
        reports: ReportSink | None = None,
    ) -> None:
        self.store = store
        self.state_dir = Path(state_dir)
        self.clock: Clock = clock or SystemClock()
        self.reports = reports
        self.backups = Backups(store, clock=self.clock)
        self.scheduler = BackupScheduler(
            self.backups, self._all_settings, clock=self.clock, releases=self.serving_release
        )

    @classmethod
    def of(
        cls,
        store: Store,
        *,
        state_dir: Path,
        clock: Clock | None = None,
        reports: ReportSink | None = None,
    ) -> ServiceBackups | None:
        """Backups over ``store``, or None when the store keeps no catalogue (test fakes)."""
        if not isinstance(store, BackupCatalogue):
            return None
        return cls(store, state_dir=state_dir, clock=clock, reports=reports)

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> list[BackupRecord]:
        """Recover backups a crash interrupted, finish removals a crash interrupted, then start
        the scheduler; the backups recovered (abandoned or pruned)."""
        recovered = self.backups.recover_interrupted(self._settings_or_none)
        recovered += self.backups.finish_interrupted_pruning(self._settings_or_none)
        self.scheduler.start()
        return recovered

    def stop(self) -> None:
        self.scheduler.stop()

    # settings -------------------------------------------------------------------------------
    def settings(self, service: str) -> BackupSettings:
        """The service's backup settings from its stored spec; ``RefusedError`` if it has no
        backup targets."""
        spec, spec_dir = self.stored_spec(service)
        settings = self.settings_of(spec, spec_dir=spec_dir)
        if not settings.spec.targets:
            raise RefusedError(
                f"{service} has no backup targets: add a backups: section to its spec"
            )
        return settings

    def stored_spec(self, service: str) -> tuple[ServiceSpec, Path]:
        """The service's spec as the store holds it, and the folder its paths start from."""
        record = self.store.get_service(ServiceName(service))
        spec = parse_spec(record.spec_text, filename=record.spec_path).spec
        return spec, Path(record.spec_path).parent

    def settings_of(self, spec: ServiceSpec, *, spec_dir: Path) -> BackupSettings:
        return resolve_settings(spec, spec_dir=spec_dir, state_dir=self.state_dir)

    def _settings_or_none(self, service: str) -> BackupSettings | None:
        try:
            return self.settings(service)
        except ZerodownError:
            return None

    def _all_settings(self) -> Iterable[BackupSettings]:
        found = []
        for record in self.store.list_services():
            if record.desired_state != "running":
                continue
            settings = self._settings_or_none(record.name)
            if settings is not None:
                found.append(settings)
        return found

    def serving_release(self, service: str) -> ServingRelease | None:
        """The release serving the service now (the newest succeeded one), if any."""
        for release in self.store.list_releases(ServiceName(service), limit=50):
            if release.status == ReleaseStatus.SUCCEEDED:
                return ServingRelease(int(release.revision), str(release.version))
        return None

    # use cases ------------------------------------------------------------------------------
    def list_backups(
        self,
        service: str,
        *,
        target: str | None = None,
        statuses: tuple[BackupStatus, ...] = (),
        limit: int = 100,
    ) -> list[BackupRecord]:
        self.store.get_service(ServiceName(service))
        return self.backups.catalogue.list_backups(
            ServiceName(service), target=target, statuses=statuses, limit=limit
        )

    def get(self, service: str, backup_id: int) -> BackupRecord:
        record = self.backups.catalogue.get_backup(backup_id)
        if record.service != service:
            raise NotFoundError(f"{service} has no backup with id {backup_id}")
        return record

    def verify(self, service: str, backup_id: int) -> dict[str, Any]:
        record, report = self.backups.verify(self.settings(service), backup_id)
        return {"backup": record.to_dict(), "verification": report.to_dict()}

    def status(self, service: str) -> list[dict[str, Any]]:
        """Each target's schedule, next run, newest good backup and age limit."""
        settings = self.settings(service)
        now = self.clock.now()
        rows = []
        for target in settings.spec.targets:
            newest = self.backups.newest_good(service, target.name)
            due = self.scheduler.due_at(settings, target) if target.schedule else None
            rows.append(
                {
                    "target": target.name,
                    "kind": target.kind,
                    "schedule": target.schedule,
                    "next_run": due.isoformat() if due else None,
                    "before_deploy": target.before_deploy,
                    "max_age_s": target_max_age(target, now),
                    "newest_good": newest.to_dict() if newest else None,
                    "failures": self.backups.failures(service, target.name),
                }
            )
        return rows

    # backup confirmed -----------------------------------------------------------------------
    def before_deploy(self, spec: ServiceSpec, *, spec_dir: Path) -> list[CheckResult]:
        """A fresh backup of every ``beforeDeploy`` target, as ``backup:<target>`` results
        (``fail`` when the backup fails). Empty when no target asks for it."""
        settings = self.settings_of(spec, spec_dir=spec_dir)
        targets = [t for t in settings.spec.targets if t.before_deploy]
        if not targets:
            return []
        release = self.serving_release(spec.service)
        results = []
        for target in targets:
            started = time.perf_counter()
            name = f"backup:{target.name}"
            try:
                record = self.backups.take(
                    settings, target.name, reason=BEFORE_DEPLOY_REASON, release=release
                )
            except ZerodownError as exc:
                failed = self.backups.catalogue.list_backups(
                    ServiceName(spec.service), target=target.name, limit=1
                )
                figures: dict[str, Any] = {"target": target.name, "kind": target.kind}
                if failed and failed[0].status == BackupStatus.FAILED:
                    figures["backup_id"] = failed[0].id
                results.append(
                    CheckResult(
                        name,
                        "fail",
                        f"backup of {target.name} failed: {exc.message}",
                        figures,
                        time.perf_counter() - started,
                    )
                )
                continue
            artifact = record.artifacts[0]
            results.append(
                CheckResult(
                    name,
                    "pass",
                    f"backup {record.id} of {target.name} ({target.kind}) taken: "
                    f"{record.size_bytes} bytes, sha256 {artifact.sha256[:12]}",
                    {
                        "configured": True,
                        "target": target.name,
                        "kind": target.kind,
                        "backup_id": record.id,
                        "size_bytes": record.size_bytes,
                        "sha256": artifact.sha256,
                        "location": artifact.location,
                        "duration_s": record.duration_s,
                    },
                    time.perf_counter() - started,
                )
            )
        return results

    def record_on_release(
        self, service: str, revision: int, prechecks: list[dict[str, Any]]
    ) -> list[int]:
        """Write the ids of the pre-deployment backups to the release's event log."""
        ids = [
            int(c["figures"]["backup_id"])
            for c in prechecks
            if str(c.get("name", "")).startswith("backup:")
            and c.get("status") == "pass"
            and "backup_id" in c.get("figures", {})
        ]
        if ids:
            self.store.append_event(
                ServiceName(service),
                revision=Revision(revision),
                kind="backup.confirmed",
                message=f"backup(s) {', '.join(map(str, ids))} taken before revision {revision}",
                data={"backup_ids": ids},
            )
        return ids

    # rollback with data ---------------------------------------------------------------------
    def rollback_plan(self, service: str, target_release: ReleaseRecord) -> list[BackupRecord]:
        """The backups that match ``target_release``: for each target, the newest good
        pre-deployment backup taken while it served (the one recorded on the release that
        replaced it). Targets without ``beforeDeploy`` have none, so they are left as they are."""
        settings = self.settings(service)
        plan = []
        for target in settings.spec.targets:
            confirmed = [
                b
                for b in self.backups.catalogue.list_backups(
                    ServiceName(service),
                    target=target.name,
                    statuses=(BackupStatus.SUCCEEDED,),
                    limit=1000,
                )
                if b.good
                and b.reason == BEFORE_DEPLOY_REASON
                and b.release_revision == target_release.revision
            ]
            if confirmed:
                plan.append(confirmed[0])
        return plan

    def rollback_with_data(
        self,
        service: str,
        plan: Sequence[BackupRecord],
        *,
        to_revision: int,
        who: str,
        switch: Callable[[], str | None],
    ) -> dict[str, Any]:
        """Restore the (confirmed) ``plan`` over the live data for a rollback, safely:

        1. a **safety backup** of every target in the plan (reason ``before rollback``), so
           what the restores replace is kept; one that fails stops everything before any
           change (``OperationFailedError``);
        2. ``switch()``: the traffic flip to the release rolled back to, so the newer release
           no longer serves (and writes) while its data is replaced; None when that release is
           not warm (the caller rolls its spec out again after the restores);
        3. the restores, in plan order. When one fails, the targets already restored are put
           back from their safety backups and the error says which target is in which state.

        Returns the safety backups, the restores and what ``switch`` said."""
        settings = self.settings(service)
        release = self.serving_release(service)
        safety: dict[str, BackupRecord] = {}
        for record in plan:
            try:
                safety[record.target] = self.backups.take(
                    settings,
                    record.target,
                    reason=SAFETY_REASON,
                    release=release,
                    meta={"rollback_to": to_revision, "replaced_by_backup": record.id},
                )
            except ZerodownError as exc:
                taken = ", ".join(f"#{b.id} ({b.target})" for b in safety.values())
                message = (
                    f"the safety backup of {record.target} failed, so nothing was restored and "
                    f"traffic was not switched: {exc.message}"
                    + (f" (safety backup(s) already taken: {taken})" if taken else "")
                )
                self._rollback_event(service, to_revision, "rollback.data_failed", message, {})
                raise OperationFailedError(message) from exc
        safety_ids = {name: b.id for name, b in safety.items()}
        switched = switch()
        done: list[dict[str, Any]] = []
        for index, record in enumerate(plan):
            try:
                report = self.backups.restore(
                    settings, record.id, destination=self._live(settings, record.target), force=True
                )
            except ZerodownError as exc:
                states = self._undo_rollback_restores(settings, done, safety)
                states.append(
                    f"{record.target}: the restore of backup #{record.id} failed and wrote "
                    f"nothing ({exc.message}); its data from before the rollback is also in "
                    f"safety backup #{safety[record.target].id}"
                )
                states.extend(f"{later.target}: not touched" for later in plan[index + 1 :])
                traffic = (
                    f"traffic was switched to revision {to_revision} before the restores and "
                    "stays there, on the data from before the rollback"
                    if switched is not None
                    else "traffic was not switched"
                )
                message = f"rollback with data failed: {'; '.join(states)}; {traffic}"
                self._rollback_event(
                    service,
                    to_revision,
                    "rollback.data_failed",
                    message,
                    {"states": states, "safety_backups": safety_ids, "switched": switched},
                )
                raise OperationFailedError(message) from exc
            done.append(
                {
                    "backup_id": record.id,
                    "target": record.target,
                    "safety_backup_id": safety[record.target].id,
                    **report.to_dict(),
                }
            )
        message = (
            f"safety backup(s) {', '.join(f'#{i} ({t})' for t, i in safety_ids.items())} taken; "
            f"restored backup(s) {', '.join(str(d['backup_id']) for d in done)}"
        )
        self._rollback_event(
            service,
            to_revision,
            "rollback.data_restored",
            f"{who} restored backup(s) {', '.join(str(b.id) for b in plan)} for the rollback to "
            f"revision {to_revision}; what they replaced is in safety backup(s) "
            f"{', '.join(f'#{i}' for i in safety_ids.values())}",
            {"restores": done, "safety_backups": safety_ids, "switched": switched},
        )
        return {
            "message": message,
            "safety_backups": [b.to_dict() for b in safety.values()],
            "restores": done,
            "switched": switched,
        }

    def _live(self, settings: BackupSettings, target_name: str) -> str:
        """The live location of a target, as a restore destination."""
        target = settings.target_spec(target_name)
        if target.kind == "postgresql":
            from zerodown.backup.postgres import database_name

            assert target.url is not None
            return database_name(target.url)
        if target.kind == "docker-volume":
            assert target.volume is not None
            return target.volume
        if target.path is not None:
            return str(settings.path(target.path))
        raise InputError(f"backup target {target_name!r} names no live location")

    def _undo_rollback_restores(
        self,
        settings: BackupSettings,
        done: Sequence[Mapping[str, Any]],
        safety: Mapping[str, BackupRecord],
    ) -> list[str]:
        """Put the targets already restored back from their safety backups (newest restore
        first); what each is now."""
        states = []
        for restored in reversed(done):
            name = str(restored["target"])
            kept = safety[name]
            try:
                self.backups.restore(
                    settings, kept.id, destination=self._live(settings, name), force=True
                )
            except ZerodownError as exc:
                states.append(
                    f"{name}: restored from backup #{restored['backup_id']}, and putting it "
                    f"back FAILED ({exc.message}): its data from before the rollback is in "
                    f"safety backup #{kept.id}"
                )
                continue
            states.append(
                f"{name}: put back from safety backup #{kept.id} (as before the rollback)"
            )
        return list(reversed(states))

    def _rollback_event(
        self, service: str, revision: int, kind: str, message: str, data: Mapping[str, Any]
    ) -> None:
        try:
            self.store.append_event(
                ServiceName(service),
                revision=Revision(revision),
                kind=kind,
                message=message,
                data={**data, "to": revision},
            )
        except ZerodownError as exc:  # the catalogue is the record; the event log a courtesy
            log.warning("event %s of %s not written: %s", kind, service, exc)

    # operations people ask for, each with its report ------------------------------------------
    def backup_operation(
        self, service: str, *, target: str | None = None, verify: bool = True
    ) -> dict[str, Any]:
        """Back up one target, or every target in spec order, then (``verify``) re-read and
        check each new backup; write the report. A backup that fails stops the run: the report
        is written, then the error is raised with the report's path in its message."""
        spec, _ = self.stored_spec(service)
        settings = self.settings(service)
        names = [target] if target else [t.name for t in settings.spec.targets]
        targets = {name: settings.target(name) for name in names}  # bad names fail here
        release = self.serving_release(service)
        op = _Operation(self, service, "backup", f"backup of {service} started: {', '.join(names)}")
        storage = self._storage(settings)
        prechecks = [storage_check(storage, settings.repository)]
        for name, live in targets.items():
            try:
                tools = live.tool_versions()
            except ZerodownError as exc:
                prechecks.append(check(f"tools:{name}", "fail", exc.message))
                continue
            listed = ", ".join(f"{tool} {version}" for tool, version in sorted(tools.items()))
            prechecks.append(
                check(
                    f"tools:{name}",
                    "pass",
                    f"{name} ({live.kind}) of {live.describe()}: {listed}",
                    **tools,
                )
            )
        taken: list[BackupRecord] = []
        rows: list[dict[str, Any]] = []
        failure: ZerodownError | None = None
        for name in names:
            previous = self.backups.newest_good(service, name)
            try:
                record = self.backups.take(
                    settings, name, reason="manual", release=release, meta={"operation": op.id}
                )
            except LockHeldError as exc:
                if not taken:  # refused before anything was done: no operation to report
                    op.event(
                        "backup.operation.finished", f"refused: {exc.message}", status="refused"
                    )
                    raise
                failure = exc
                rows.append({"target": name, "kind": targets[name].kind, "status": "failed"})
                break
            except ZerodownError as exc:
                failure = exc
                failed = self._operation_backup(service, name, op.id)
                rows.append(
                    {
                        "target": name,
                        "kind": targets[name].kind,
                        "status": "failed",
                        "backup_id": failed.id if failed else None,
                        "error": exc.message,
                    }
                )
                break
            taken.append(record)
            rows.append(_backup_row(record, previous))
        postchecks: list[dict[str, Any]] = []
        verifications: list[dict[str, Any]] = []
        for record in taken:
            postchecks.append(_recorded_check(record))
            if not verify:
                continue
            try:
                stamped, found = self.backups.verify(settings, record.id)
            except ZerodownError as exc:
                postchecks.append(check(f"verify:{record.target}", "fail", exc.message))
                continue
            verifications.append({"backup_id": stamped.id, **found.to_dict()})
            postchecks.append(_verify_check(stamped, found.ok, found.to_dict()))
        ids = {r["backup_id"] for r in rows if r.get("backup_id") is not None}
        unverified = [] if verify else [str(r.id) for r in taken]
        verified = verify and len(verifications) == len(taken)
        reason = (
            f"backup of {rows[-1]['target']} failed: {failure.message}"
            if failure is not None
            else f"{len(taken)} backup(s) taken ({', '.join(f'#{r.id}' for r in taken)}), "
            f"{sum(r.size_bytes or 0 for r in taken)} bytes"
            + (", each re-read and checked" if verified else "")
        )
        status = (
            "failed"
            if failure is not None or any(c["status"] == "fail" for c in postchecks)
            else "succeeded"
        )
        if status == "failed" and failure is None:
            reason = f"{reason}; a check after the backup failed"
        figures = {
            "targets": names,
            "backups": rows,
            "storage": self._storage(settings),
            "unverified": unverified,
            "unscheduled": [n for n in names if settings.target_spec(n).schedule is None],
            "no_retention": [n for n in names if _no_retention(settings, n)],
        }
        report = self._finish(
            op,
            status=status,
            reason=reason,
            figures=figures,
            prechecks=prechecks,
            postchecks=postchecks,
            backup_ids=ids,
            replicas=spec.replicas,
        )
        if failure is not None:
            raise _with_report(failure, report)
        return {
            "ok": status == "succeeded",
            "backups": [r.to_dict() for r in (self.get(service, t.id) for t in taken)],
            "verifications": verifications,
            "report": report,
        }

    def restore_operation(
        self, service: str, backup_id: int, *, destination: str | None, force: bool
    ) -> dict[str, Any]:
        """Restore a backup (see ``Backups.restore``) and write the report. A restore refused
        before anything was written (unknown, corrupted or unfinished backup, an existing
        destination without ``force``) writes none."""
        spec, _ = self.stored_spec(service)
        settings = self.settings(service)
        record = self.get(service, backup_id)
        where = redact_text(destination) if destination else "a new name beside the live data"
        op = _Operation(
            self,
            service,
            "restore",
            f"restore of backup {backup_id} ({record.target}) of {service} to {where} started",
        )
        prechecks = [_restorable_check(record)]
        try:
            restored = self.backups.restore(
                settings, backup_id, destination=destination, force=force
            )
        except (InputError, RefusedError) as exc:
            op.event(
                "backup.operation.finished", f"restore refused: {exc.message}", status="refused"
            )
            raise
        except ZerodownError as exc:
            failure: ZerodownError | None = exc
            restored = None
        else:
            failure = None
        age = (self.clock.now() - record.started_at).total_seconds()
        figures: dict[str, Any] = {
            "targets": [record.target],
            "target": record.target,
            "backup_id": backup_id,
            "backup_started_at": record.started_at.isoformat(),
            "storage": self._storage(settings),
        }
        postchecks: list[dict[str, Any]] = []
        if restored is not None:
            moved = restored.details.get("previous_moved_to")
            figures.update(
                destination=restored.destination,
                replaced_live=restored.replaced_live,
                bytes_written=restored.bytes_written,
                data_age_s=round(age, 3),
                moved_aside=str(moved) if moved else None,
                duration_s=round(self.clock.monotonic() - op.began, 6),
            )
            postchecks.append(_digest_check(restored))
            postchecks.append(
                check(
                    "destination",
                    "pass",
                    f"{restored.bytes_written} bytes written to {restored.destination}"
                    + ("; it REPLACED the live data" if restored.replaced_live else "")
                    + (f"; the data it replaced is in {moved}" if moved else ""),
                    bytes_written=restored.bytes_written,
                    replaced_live=restored.replaced_live,
                )
            )
        ok = failure is None and all(c["status"] == "pass" for c in postchecks)
        if failure is not None:
            reason = failure.message
        else:
            assert restored is not None
            digest = postchecks[0]["status"] == "pass"
            reason = (
                f"backup {backup_id} of {record.target} restored to {restored.destination}: "
                f"{restored.bytes_written} bytes, digest "
                + ("checked against the catalogue" if digest else "NOT as recorded")
            )
        report = self._finish(
            op,
            status="succeeded" if ok else "failed",
            reason=reason,
            figures=figures,
            prechecks=prechecks,
            postchecks=postchecks,
            backup_ids={backup_id},
            replicas=spec.replicas,
        )
        if failure is not None:
            raise _with_report(failure, report)
        assert restored is not None
        return {"backup_id": backup_id, "restore": restored.to_dict(), "report": report}

    def forget(
        self, service: str, *, target: str | None = None, dry_run: bool = False
    ) -> dict[str, Any]:
        """Apply each target's retention rules (``apply_retention``): with ``dry_run`` say what
        they keep and why and change nothing; else remove the rest and write the report.

        A target whose backup is running right now is skipped with an error (``LockHeldError``
        when it is the only target asked for: nothing was done)."""
        spec, _ = self.stored_spec(service)
        settings = self.settings(service)
        names = [target] if target else [t.name for t in settings.spec.targets]
        for name in names:
            settings.target_spec(name)
        if dry_run:
            planned = [apply_retention(self.backups, settings, n, dry_run=True) for n in names]
            return {
                "service": service,
                "dry_run": True,
                "ok": True,
                "targets": [_run_dict(run) for run in planned],
                "repositories": [],
                "freed_bytes": 0,
                "errors": [],
                "report": None,
            }
        op = _Operation(
            self, service, "retention", f"retention of {service} started: {', '.join(names)}"
        )
        prechecks = [_policy_check(settings, n) for n in names]
        try:
            applied = apply_retention_to(self.backups, settings, names, skip_locked=len(names) > 1)
        except LockHeldError as exc:  # the one target asked for is being backed up
            op.event("backup.operation.finished", f"refused: {exc.message}", status="refused")
            raise
        runs = list(applied.runs)
        errors = [f"{skipped}; its retention was not applied" for skipped in applied.skipped]
        for run in runs:
            errors.extend(f"{run.target}: {error}" for error in run.errors)
            op.event(
                "backup.retention",
                f"{run.target}: {run.policy}: kept {run.kept}, removed {len(run.removed)}"
                + (f" ({', '.join(f'#{i}' for i in run.removed)})" if run.removed else "")
                + (f", finished {len(run.resumed)} interrupted" if run.resumed else ""),
                target=run.target,
                kept=run.kept,
                removed=list(run.removed),
                backup_ids=[*run.removed, *run.resumed],
            )
        postchecks = [*self._removal_checks(settings, runs)]
        for repository in applied.repositories:
            postchecks.append(
                check(
                    "prune",
                    "pass",
                    f"restic prune of {repository['repository']} (backups "
                    f"{', '.join(f'#{i}' for i in repository['backup_ids'])}): "
                    f"{repository['freed_bytes']} bytes freed in "
                    f"{repository['duration_s']:.3f}s (repository "
                    f"{repository['repository_bytes_before']} -> "
                    f"{repository['repository_bytes_after']} bytes on disk)",
                    **{k: v for k, v in repository.items() if k != "backup_ids"},
                )
            )
        for error in errors:
            postchecks.append(check("removal", "fail", error))
        removed = sum(len(run.removed) for run in runs)
        prunes = [float(r["duration_s"]) for r in applied.repositories]
        figures = {
            "targets": names,
            "kept": sum(run.kept for run in runs),
            "removed": removed,
            "removed_bytes": sum(run.removed_bytes for run in runs),
            "freed_bytes": applied.freed_bytes,
            "prune_s": round(sum(prunes), 6) if prunes else None,
            "storage": self._storage(settings),
            "no_retention": [n for n in names if _no_retention(settings, n)],
        }
        reason = (
            f"kept {figures['kept']} backup(s), removed {removed} "
            f"({figures['removed_bytes']} bytes recorded, {figures['freed_bytes']} bytes freed "
            "on disk)"
        )
        if errors:
            reason += f"; {len(errors)} problem(s): {errors[0]}"
        ids = {i for run in runs for i in (*run.removed, *run.resumed)}
        report = self._finish(
            op,
            status="failed" if errors else "succeeded",
            reason=reason,
            figures=figures,
            prechecks=prechecks,
            postchecks=postchecks,
            backup_ids=ids,
            replicas=spec.replicas,
        )
        return {
            "service": service,
            "dry_run": False,
            "ok": not errors,
            "targets": [_run_dict(run) for run in runs],
            "repositories": [dict(r) for r in applied.repositories],
            "freed_bytes": applied.freed_bytes,
            "errors": errors,
            "report": report,
        }

    # machinery of the reported operations ----------------------------------------------------
    def _storage(self, settings: BackupSettings) -> dict[str, Any] | None:
        good = self.backups.catalogue.list_backups(
            ServiceName(settings.service), statuses=(BackupStatus.SUCCEEDED,), limit=1_000_000
        )
        good = [r for r in good if r.good]
        return storage_figures(
            settings.repository,
            service_bytes=sum(r.size_bytes or 0 for r in good),
            service_backups=len(good),
        )

    def _operation_backup(self, service: str, target: str, operation: str) -> BackupRecord | None:
        """The backup ``operation`` registered for ``target`` (a failed one, say)."""
        for record in self.backups.catalogue.list_backups(
            ServiceName(service), target=target, limit=5
        ):
            if record.meta.get("operation") == operation:
                return record
        return None

    def _removal_checks(
        self, settings: BackupSettings, runs: Sequence[RetentionRun]
    ) -> list[dict[str, Any]]:
        """For each target, that every backup removed is ``pruned`` in the catalogue, its files
        are gone from disk and its restic snapshot from ``restic snapshots``."""
        checks = []
        for run in runs:
            records = [self.backups.catalogue.get_backup(i) for i in (*run.removed, *run.resumed)]
            if not records:
                continue
            files = [
                a.location
                for r in records
                for a in r.artifacts
                if not a.location.startswith("restic:") and Path(a.location).exists()
            ]
            snapshots = {
                a.location.removeprefix("restic:")
                for r in records
                for a in r.artifacts
                if a.location.startswith("restic:")
            }
            listed: set[str] = set()
            problem = ""
            if snapshots:
                restic = getattr(settings.target(run.target), "restic", None)
                try:
                    listed = {str(s.get("id")) for s in restic.snapshots()} if restic else set()
                except ZerodownError as exc:
                    problem = f"restic snapshots failed: {exc.message}"
            left = sorted(snapshots & listed)
            rows = [r.id for r in records if r.status != BackupStatus.PRUNED]
            ok = not files and not left and not rows and not problem
            summary = (
                f"{len(records)} backup(s) of {run.target} removed: marked pruned, "
                f"{len(snapshots)} restic snapshot(s) no longer listed, their files gone"
                if ok
                else "; ".join(
                    part
                    for part in (
                        f"files still on disk: {', '.join(files)}" if files else "",
                        f"snapshots still listed: {', '.join(s[:12] for s in left)}"
                        if left
                        else "",
                        f"backups not marked pruned: {rows}" if rows else "",
                        problem,
                    )
                    if part
                )
            )
            checks.append(
                check(
                    f"removed:{run.target}",
                    "pass" if ok else "fail",
                    summary,
                    backups=len(records),
                    snapshots_checked=len(snapshots),
                    files_left=len(files),
                    snapshots_left=len(left),
                )
            )
        return checks

    def _finish(
        self,
        op: _Operation,
        *,
        status: str,
        reason: str,
        figures: Mapping[str, Any],
        prechecks: Sequence[Mapping[str, Any]],
        postchecks: Sequence[Mapping[str, Any]],
        backup_ids: set[int],
        replicas: int,
    ) -> dict[str, str] | None:
        """End the operation in the event log and write its report (when there is a sink)."""
        duration = round(self.clock.monotonic() - op.began, 6)
        op.event(
            "backup.operation.finished",
            f"{op.kind} of {op.service} {status} in {duration:.3f}s: {reason}",
            status=status,
            duration_s=duration,
        )
        if self.reports is None:
            return None
        release = self.serving_release(op.service)
        report = OperationReport(
            service=op.service,
            operation=op.kind,
            status=status,
            reason=reason,
            started_at=op.started,
            finished_at=self.clock.now(),
            duration_s=duration,
            revision=release.revision if release else 0,
            version=release.version if release else "",
            figures={**figures, "duration_s": figures.get("duration_s", duration)},
            prechecks=prechecks,
            postchecks=postchecks,
            events=op.events(backup_ids),
        )
        try:
            instances = self.reports.instances(op.service) if release else []
            paths = write_operation_report(
                report,
                directory=self.reports.folder(op.service),
                instances=instances,
                replicas=replicas if release else 0,
                generated_at=self.clock.now(),
            )
        except ZerodownError as exc:  # the operation is done; its report must not undo that
            log.warning("report of the %s of %s not written: %s", op.kind, op.service, exc)
            return None
        written = {"markdown": str(paths.markdown), "json": str(paths.json), "svg": str(paths.svg)}
        op.event("report.written", f"report written to {paths.markdown}", **written)
        return written


class _Operation:
    """One operation on a service's data: a ``backup.operation.started`` event first, whose id
    bounds what the report reads back, and the operation's id on every event it writes."""

    def __init__(self, owner: ServiceBackups, service: str, kind: str, message: str) -> None:
        self.owner = owner
        self.service = service
        self.kind = kind
        self.id = f"{kind}-{secrets.token_hex(4)}"
        self.started = owner.clock.now()
        self.began = owner.clock.monotonic()
        self.first = owner.store.append_event(
            ServiceName(service),
            kind="backup.operation.started",
            message=message,
            data={"operation": self.id, "kind": kind},
        )

    def event(self, kind: str, message: str, **data: Any) -> None:
        try:
            self.owner.store.append_event(
                ServiceName(self.service),
                kind=kind,
                message=message,
                data={"operation": self.id, **data},
            )
        except ZerodownError as exc:  # the catalogue is the record; the event log a courtesy
            log.warning("event %s of operation %s not written: %s", kind, self.id, exc)

    def events(self, backup_ids: set[int]) -> list[dict[str, Any]]:
        """This operation's events, oldest first: its own, and those of its backups."""
        found = []
        for event in self.owner.store.list_events(
            ServiceName(self.service), after_id=self.first.id - 1, limit=100_000
        ):
            if not event.kind.startswith("backup."):
                continue
            ids = {event.data.get("backup_id"), *(event.data.get("backup_ids") or ())}
            if event.data.get("operation") == self.id or ids & backup_ids:
                found.append(_event_dict(event))
        return found


def _event_dict(event: EventRecord) -> dict[str, Any]:
    return {
        "id": event.id,
        "ts": event.ts.isoformat(),
        "kind": event.kind,
        "message": event.message,
        "data": dict(event.data),
        "revision": event.revision,
    }


def _with_report(error: ZerodownError, report: Mapping[str, str] | None) -> ZerodownError:
    """``error`` again, its message naming the report (when one was written)."""
    if report is None or isinstance(error, SpecError):
        return error
    try:
        again = type(error)(f"{error.message} (report: {report['markdown']})")
    except TypeError:
        return error
    again.__cause__ = error
    return again


def _no_retention(settings: BackupSettings, target: str) -> bool:
    return RetentionPolicy.from_spec(settings.retention(target)).empty


def _backup_row(record: BackupRecord, previous: BackupRecord | None) -> dict[str, Any]:
    return {
        "target": record.target,
        "kind": record.kind,
        "status": "succeeded",
        "backup_id": record.id,
        "size_bytes": record.size_bytes,
        "duration_s": record.duration_s,
        "sha256": record.artifacts[0].sha256 if record.artifacts else None,
        "previous_backup_id": previous.id if previous else None,
        "previous_size_bytes": previous.size_bytes if previous else None,
    }


def _recorded_check(record: BackupRecord) -> dict[str, Any]:
    """What the backup itself established: whole artifacts, their sizes and digests."""
    artifact = record.artifacts[0]
    done = []
    if artifact.meta.get("integrity_check"):
        done.append(f"PRAGMA integrity_check {artifact.meta['integrity_check']} on the copy")
    if "files" in artifact.meta:
        done.append(f"manifest of {artifact.meta['files']} file(s) read from the snapshot")
    return check(
        f"backup:{record.target}",
        "pass",
        f"backup #{record.id} ({record.kind}): {record.size_bytes} bytes in "
        f"{record.duration_s or 0:.3f}s, sha256 {artifact.sha256}, at {artifact.location}"
        + (f"; {'; '.join(done)}" if done else ""),
        backup_id=record.id,
        size_bytes=record.size_bytes,
        duration_s=None if record.duration_s is None else round(record.duration_s, 6),
    )


def _verify_check(record: BackupRecord, ok: bool, found: Mapping[str, Any]) -> dict[str, Any]:
    artifacts = [a for a in found.get("artifacts") or () if isinstance(a, Mapping)]
    if ok:
        summary = (
            f"backup #{record.id} re-read after it was taken: "
            + ", ".join(f"{a.get('name')} sha256 matches" for a in artifacts)
            + (
                f" (restic check --read-data exit code "
                f"{found['details']['restic_check_exit_code']})"
                if "restic_check_exit_code" in (found.get("details") or {})
                else ""
            )
        )
    else:
        problems = [
            *found.get("problems", ()),
            *(a.get("problem") for a in artifacts if not a.get("ok")),
        ]
        summary = f"backup #{record.id} is CORRUPTED: {'; '.join(str(p) for p in problems)}"
    return check(
        f"verify:{record.target}",
        "pass" if ok else "fail",
        summary,
        backup_id=record.id,
        verify_status="ok" if ok else "corrupted",
    )


def _digest_check(restored: RestoreReport) -> dict[str, Any]:
    """The restored data against the catalogue's digest: the restored file or tree itself when
    its bytes are the artifact's; else (SQLite written into an existing database through the
    backup API, which lays the pages out anew) the artifact, re-read just before the restore."""
    figures = {"sha256": restored.sha256, "expected_sha256": restored.expected_sha256}
    if restored.compared == "content":
        expected = restored.details.get("expected_content_sha256")
        checked = restored.details.get("artifact_sha256_checked")
        if restored.matches:
            return check(
                "digest",
                "pass",
                f"the restored database's content (sha256 {restored.sha256} of its SQL dump) "
                f"equals the backup's; the backup's sha256 {checked} was re-read and found as "
                "the catalogue has it before anything was written",
                artifact_sha256=checked,
                **figures,
            )
        return check(
            "digest",
            "fail",
            f"the restored database's content (sha256 {restored.sha256} of its SQL dump) "
            f"DIFFERS from the backup's ({expected}): something wrote to it meanwhile",
            **figures,
        )
    if restored.matches:
        return check(
            "digest",
            "pass",
            f"the restored data's sha256 {restored.sha256} equals the catalogue's",
            **figures,
        )
    checked = restored.details.get("artifact_sha256_checked")
    if checked == restored.expected_sha256:
        return check(
            "digest",
            "pass",
            f"the backup's sha256 {checked} was re-read and found as the catalogue has it before "
            f"anything was written; written by {restored.details.get('method', 'the target')}, "
            f"so the result's own digest ({restored.sha256}) is not the copy's",
            artifact_sha256=checked,
            **figures,
        )
    return check(
        "digest",
        "fail",
        f"the restored data's sha256 {restored.sha256} DIFFERS from the catalogue's "
        f"{restored.expected_sha256}",
        **figures,
    )


def _restorable_check(record: BackupRecord) -> dict[str, Any]:
    verified = (
        f"last verified {record.verified_at.isoformat()}: {record.verify_status}"
        if record.verified_at is not None
        else "never verified (its digest is checked before the restore)"
    )
    return check(
        f"backup:{record.target}",
        "pass" if record.good else "fail",
        f"backup #{record.id} of {record.target} ({record.kind}): {record.status}, taken "
        f"{record.started_at.isoformat()}, {record.size_bytes} bytes; {verified}",
        backup_id=record.id,
        size_bytes=record.size_bytes,
    )


def _policy_check(settings: BackupSettings, target: str) -> dict[str, Any]:
    policy = RetentionPolicy.from_spec(settings.retention(target))
    if policy.empty:
        return check(
            f"policy:{target}",
            "warn",
            f"{target} has no retention rules: every backup is kept (set backups.retention)",
        )
    return check(f"policy:{target}", "pass", f"{target}: {policy}")


def _run_dict(run: RetentionRun) -> dict[str, Any]:
    return {**run.to_dict(), "lines": run.lines()}
