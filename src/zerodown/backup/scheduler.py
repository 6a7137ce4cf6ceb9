"""Scheduled backups inside ``zerodown serve``, and the metrics that alert on them.

Each target with a ``schedule`` (five cron fields, UTC, read by croniter) is due at the first
cron time after its previous attempt (or after the scheduler started, for a target never
backed up), plus a jitter: a fixed fraction of up to ``max_jitter`` seconds (at most a tenth of
the schedule's period) drawn from the service and target names, so targets on the same
schedule do not all start in the same second, and a restarted controller keeps their order. A
missed run (the controller was down) is caught up once, not once per missed period; a failed
run waits for the next cron time rather than retrying in a loop.

A backup already running for a target (a manual run, another controller) holds the target's
lock; the scheduler then skips it until the next tick.

After each scheduled backup that succeeds, the target's retention rules (``retention``, its own
or the section's) are applied for real (``apply_retention``): the backups they no longer keep
are removed, so a schedule never fills the disk. A target without rules keeps everything.
Neither writes a Deployment Operations Report (many run a day): the catalogue, the event log
(``backup.succeeded``, ``backup.pruned``...) and the metrics below record them, and a failure
raises the ``ZerodownBackupFailed`` alert.

Backups a crash or a failed ``restic prune`` left ``pruning`` are finished here too: on the
first tick and then every ``prune_retry_interval`` (ten minutes), so a removal never stays half
done until the controller restarts.

``collect`` is a metrics collector (``zerodown.core.samples``) publishing, per service and
target: ``zerodown_backup_last_success_timestamp_seconds`` (once there is a good backup), the
counter ``zerodown_backup_failures_total``, ``zerodown_backup_max_age_seconds`` (only for
targets with a limit: ``maxAge``, else 1.5 schedule periods) and, for a target with a limit and
no good backup yet, ``zerodown_backup_first_due_timestamp_seconds``: when its first backup was
due (``first_due``). The shipped alert rules compare them: ``ZerodownBackupTooOld`` when the
newest good backup is older than the limit, ``ZerodownBackupMissing`` when there is still none
that long after the first was due, so a target is not alerted on before it ever had a chance.
A target past its limit is also written once to the event log (``backup.overdue``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Final

from croniter import croniter

from zerodown.backup.retention import RetentionPolicy, apply_retention
from zerodown.backup.runner import Backups, ServingRelease
from zerodown.backup.settings import BackupSettings
from zerodown.core.clock import Clock, SystemClock
from zerodown.core.errors import LockHeldError, ZerodownError
from zerodown.core.samples import MetricSample
from zerodown.core.types import ServiceName
from zerodown.spec.models import BackupTargetSpec

__all__ = [
    "DEFAULT_MAX_JITTER_SECONDS",
    "DEFAULT_POLL_SECONDS",
    "DEFAULT_PRUNE_RETRY_SECONDS",
    "BackupScheduler",
    "next_due",
    "schedule_period",
    "target_max_age",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_JITTER_SECONDS: Final = 60.0
DEFAULT_POLL_SECONDS: Final = 15.0
DEFAULT_PRUNE_RETRY_SECONDS: Final = 600.0
"""How often backups left ``pruning`` (a crash, a failed ``restic prune``) are tried again."""
MAX_AGE_PERIODS: Final = 1.5
"""Without ``maxAge``, the newest good backup may be this many schedule periods old."""

SettingsSource = Callable[[], Iterable[BackupSettings]]
ReleaseSource = Callable[[str], ServingRelease | None]


def next_due(schedule: str, after: datetime) -> datetime:
    """The first time ``schedule`` (cron, UTC) fires strictly after ``after``."""
    value: datetime = croniter(schedule, after).get_next(datetime)
    return value


def schedule_period(schedule: str, at: datetime) -> float:
    """Seconds between the next two runs of ``schedule`` after ``at``."""
    first = next_due(schedule, at)
    return (next_due(schedule, first) - first).total_seconds()


def target_max_age(target: BackupTargetSpec, at: datetime) -> float | None:
    """How old the newest good backup of ``target`` may be: its ``maxAge``, else 1.5 schedule
    periods, else None (no limit)."""
    if target.max_age is not None:
        return target.max_age
    if target.schedule is not None:
        return MAX_AGE_PERIODS * schedule_period(target.schedule, at)
    return None


class BackupScheduler:
    """Runs due backups (``tick``), in a thread of its own once started."""

    def __init__(
        self,
        backups: Backups,
        sources: SettingsSource,
        *,
        clock: Clock | None = None,
        releases: ReleaseSource | None = None,
        max_jitter: float = DEFAULT_MAX_JITTER_SECONDS,
        poll_interval: float = DEFAULT_POLL_SECONDS,
        prune_retry_interval: float = DEFAULT_PRUNE_RETRY_SECONDS,
    ) -> None:
        self.backups = backups
        self.sources = sources
        self.clock: Clock = clock or backups.clock or SystemClock()
        self.releases = releases
        self.max_jitter = max_jitter
        self.poll_interval = poll_interval
        self.prune_retry_interval = prune_retry_interval
        self.started_at = self.clock.now()
        self._pruning_checked: float | None = None  # monotonic time of the last check
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._overdue_reported: set[tuple[str, str, int | None]] = set()

    # the loop -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self.run, name="backup-scheduler", daemon=True)
            self._thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # one bad tick must not end scheduled backups for good
                log.exception("backup scheduler tick failed")
            if self.clock.sleep(self.poll_interval, wakeup=self._stop):
                return

    def tick(self) -> list[int]:
        """Take every backup that is due now; the ids of the backups attempted."""
        attempted: list[int] = []
        now = self.clock.now()
        every = self._settings()
        self._finish_pruning(every)
        for settings in every:
            for target in settings.spec.targets:
                if self._stop.is_set():
                    return attempted
                if target.schedule is not None and self.due_at(settings, target) <= now:
                    backup_id = self._take(settings, target)
                    if backup_id is not None:
                        attempted.append(backup_id)
                self._report_overdue(settings, target, now)
        return attempted

    def due_at(self, settings: BackupSettings, target: BackupTargetSpec) -> datetime:
        """When the next scheduled backup of ``target`` is due (jitter included)."""
        assert target.schedule is not None
        newest = self.backups.catalogue.list_backups(
            ServiceName(settings.service), target=target.name, limit=1
        )
        base = newest[0].started_at if newest else self.started_at
        due = next_due(target.schedule, base)
        period = schedule_period(target.schedule, due)
        return due + timedelta(seconds=self.jitter(settings.service, target.name, period))

    def first_due(self, settings: BackupSettings, target: BackupTargetSpec) -> datetime:
        """When the target's first backup was due: its oldest attempt in the catalogue (which
        outlives a restart), else its first scheduled time since the scheduler started (jitter
        included), else, for a target on no schedule, when the scheduler started."""
        attempts = self.backups.catalogue.list_backups(
            ServiceName(settings.service), target=target.name, limit=1_000_000
        )
        if attempts:
            return min(a.started_at for a in attempts)
        if target.schedule is not None:
            return self.due_at(settings, target)
        return self.started_at

    def jitter(self, service: str, target: str, period: float) -> float:
        """A fixed delay for this target, under ``max_jitter`` and a tenth of ``period``."""
        digest = hashlib.sha256(f"{service}/{target}".encode()).digest()
        fraction = int.from_bytes(digest[:8], "big") / 2**64
        return fraction * min(self.max_jitter, period / 10)

    def _take(self, settings: BackupSettings, target: BackupTargetSpec) -> int | None:
        release = self.releases(settings.service) if self.releases is not None else None
        try:
            record = self.backups.take(settings, target.name, reason="schedule", release=release)
        except LockHeldError:
            return None  # already being backed up; the next tick looks again
        except ZerodownError as exc:  # recorded as failed by take(); the alert says the rest
            log.warning("scheduled backup of %s/%s failed: %s", settings.service, target.name, exc)
            newest = self.backups.catalogue.list_backups(
                ServiceName(settings.service), target=target.name, limit=1
            )
            return newest[0].id if newest else None
        self._apply_retention(settings, target)
        return record.id

    def _apply_retention(self, settings: BackupSettings, target: BackupTargetSpec) -> None:
        """Remove the backups the target's rules no longer keep (none without rules)."""
        if RetentionPolicy.from_spec(settings.retention(target.name)).empty:
            return
        try:
            run = apply_retention(self.backups, settings, target.name, dry_run=False)
        except ZerodownError as exc:  # a backup of the target started meanwhile: next time
            log.warning("retention of %s/%s not applied: %s", settings.service, target.name, exc)
            return
        for error in run.errors:  # also in the event log as backup.prune_failed
            log.warning("retention of %s/%s: %s", settings.service, target.name, error)

    def _report_overdue(
        self, settings: BackupSettings, target: BackupTargetSpec, now: datetime
    ) -> None:
        limit = target_max_age(target, now)
        if limit is None:
            return
        newest = self.backups.newest_good(settings.service, target.name)
        if newest is not None and newest.finished_at is not None:
            reference = newest.finished_at
        else:
            reference = self.first_due(settings, target)
        age = (now - reference).total_seconds()
        key = (settings.service, target.name, newest.id if newest else None)
        if age <= limit or key in self._overdue_reported:
            return
        self._overdue_reported.add(key)
        what = (
            f"the newest good backup {newest.id} is {age:.0f}s old"
            if newest
            else f"there is no good backup {age:.0f}s after the first was due"
        )
        try:
            self.backups.store.append_event(
                ServiceName(settings.service),
                kind="backup.overdue",
                message=f"{target.name}: {what}, more than the {limit:.0f}s allowed",
                data={"target": target.name, "age_s": age, "max_age_s": limit},
            )
        except ZerodownError as exc:
            log.warning("backup.overdue event not written: %s", exc)

    # metrics --------------------------------------------------------------------------------
    def collect(self) -> list[MetricSample]:
        """The backup metrics of every service and target (a monitor collector)."""
        samples: list[MetricSample] = []
        now = self.clock.now()
        try:
            for settings in self._settings():
                for target in settings.spec.targets:
                    samples.extend(self._samples(settings, target, now))
        except ZerodownError as exc:  # a collector must not raise
            log.warning("backup metrics unavailable: %s", exc)
        return samples

    def _samples(
        self, settings: BackupSettings, target: BackupTargetSpec, now: datetime
    ) -> list[MetricSample]:
        labels = {"service": settings.service, "target": target.name}
        newest = self.backups.newest_good(settings.service, target.name)
        finished = newest.finished_at if newest is not None else None
        limit = target_max_age(target, now)
        samples = [
            MetricSample(
                name="zerodown_backup_failures_total",
                value=float(self.backups.failures(settings.service, target.name)),
                kind="counter",
                labels=labels,
                help="Backups of the target that failed or were abandoned.",
            ),
        ]
        if finished is not None:
            samples.append(
                MetricSample(
                    name="zerodown_backup_last_success_timestamp_seconds",
                    value=finished.timestamp(),
                    labels=labels,
                    help="When the newest good backup of the target finished (epoch s).",
                )
            )
        elif limit is not None:
            samples.append(
                MetricSample(
                    name="zerodown_backup_first_due_timestamp_seconds",
                    value=self.first_due(settings, target).timestamp(),
                    labels=labels,
                    help="When the first backup of a target with no good backup yet was due "
                    "(epoch s).",
                )
            )
        if limit is not None:
            samples.append(
                MetricSample(
                    name="zerodown_backup_max_age_seconds",
                    value=limit,
                    labels=labels,
                    help="How old the newest good backup of the target may be.",
                )
            )
        return samples

    def _finish_pruning(self, every: list[BackupSettings]) -> None:
        """Finish the removals a crash or a failed ``restic prune`` left ``pruning``, on the
        first tick and then every ``prune_retry_interval`` seconds."""
        now = self.clock.monotonic()
        checked = self._pruning_checked
        if checked is not None and now - checked < self.prune_retry_interval:
            return
        self._pruning_checked = now
        by_service = {settings.service: settings for settings in every}
        try:
            finished = self.backups.finish_interrupted_pruning(by_service.get)
        except ZerodownError as exc:  # the store is unreachable: next time
            log.warning("finishing interrupted removals failed: %s", exc)
            return
        if finished:
            log.info("finished removing backup(s) %s", ", ".join(str(r.id) for r in finished))

    def _settings(self) -> list[BackupSettings]:
        try:
            return list(self.sources())
        except ZerodownError as exc:
            log.warning("cannot read the services' backup settings: %s", exc)
            return []
