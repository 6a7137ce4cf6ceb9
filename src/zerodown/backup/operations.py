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
  ``restore_for_rollback`` puts them back over the live data (the caller has confirmed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from zerodown.backup.runner import Backups, ServingRelease
from zerodown.backup.scheduler import BackupScheduler, target_max_age
from zerodown.backup.settings import BackupSettings, resolve_settings
from zerodown.checks.base import CheckResult
from zerodown.core.clock import Clock, SystemClock
from zerodown.core.errors import InputError, NotFoundError, RefusedError, ZerodownError
from zerodown.core.types import Revision, ServiceName
from zerodown.spec import parse_spec
from zerodown.spec.models import ServiceSpec
from zerodown.store.backups import BackupCatalogue, BackupRecord, BackupStatus
from zerodown.store.base import ReleaseRecord, ReleaseStatus, Store

__all__ = ["BEFORE_DEPLOY_REASON", "ServiceBackups"]

log = logging.getLogger(__name__)

BEFORE_DEPLOY_REASON = "before deploy"


class ServiceBackups:
    """The backups of every service one controller runs."""

    def __init__(self, store: Store, *, state_dir: Path, clock: Clock | None = None) -> None:
        self.store = store
        self.state_dir = Path(state_dir)
        self.clock: Clock = clock or SystemClock()
        self.backups = Backups(store, clock=self.clock)
        self.scheduler = BackupScheduler(
            self.backups, self._all_settings, clock=self.clock, releases=self.serving_release
        )

    @classmethod
    def of(
        cls, store: Store, *, state_dir: Path, clock: Clock | None = None
    ) -> ServiceBackups | None:
        """Backups over ``store``, or None when the store keeps no catalogue (test fakes)."""
        if not isinstance(store, BackupCatalogue):
            return None
        return cls(store, state_dir=state_dir, clock=clock)

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> list[BackupRecord]:
        """Recover backups a crash interrupted, then start the scheduler; the recovered."""
        recovered = self.backups.recover_interrupted(self._settings_or_none)
        self.scheduler.start()
        return recovered

    def stop(self) -> None:
        self.scheduler.stop()

    # settings -------------------------------------------------------------------------------
    def settings(self, service: str) -> BackupSettings:
        """The service's backup settings from its stored spec; ``RefusedError`` if it has no
        backup targets."""
        record = self.store.get_service(ServiceName(service))
        spec = parse_spec(record.spec_text, filename=record.spec_path).spec
        settings = self.settings_of(spec, spec_dir=Path(record.spec_path).parent)
        if not settings.spec.targets:
            raise RefusedError(
                f"{service} has no backup targets: add a backups: section to its spec"
            )
        return settings

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
    def run(
        self, service: str, *, target: str | None = None, reason: str = "manual"
    ) -> list[BackupRecord]:
        """Back up one target, or every target of the service in spec order."""
        settings = self.settings(service)
        names = [target] if target else [t.name for t in settings.spec.targets]
        release = self.serving_release(service)
        return [self.backups.take(settings, name, reason=reason, release=release) for name in names]

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

    def restore(
        self, service: str, backup_id: int, *, destination: str | None, force: bool
    ) -> dict[str, Any]:
        report = self.backups.restore(
            self.settings(service), backup_id, destination=destination, force=force
        )
        return {"backup_id": backup_id, "restore": report.to_dict()}

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

    def restore_for_rollback(self, service: str, plan: list[BackupRecord]) -> list[dict[str, Any]]:
        """Restore every backup of ``plan`` over the live data (``force``)."""
        settings = self.settings(service)
        done = []
        for record in plan:
            target = settings.target_spec(record.target)
            live: str | None
            if target.kind == "postgresql":
                from zerodown.backup.postgres import database_name

                assert target.url is not None
                live = database_name(target.url)
            elif target.path is not None:
                live = str(settings.path(target.path))
            else:
                raise InputError(f"backup target {record.target!r} names no live location")
            report = self.backups.restore(settings, record.id, destination=live, force=True)
            done.append({"backup_id": record.id, "target": record.target, **report.to_dict()})
        return done
