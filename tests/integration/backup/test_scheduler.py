"""Scheduled backups: due times from cron with jitter, one catch-up after downtime, no retry
loop after a failure, a busy target skipped, and the metrics the alert rules read.

Time is a ``FrozenClock`` shared by the scheduler and the catalogue, so "a day later" is one
call; the backups themselves are real SQLite copies in a temporary folder.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.backup.helpers import settings_for
from zerodown.backup import Backups, BackupScheduler, BackupSettings, BackupStatus
from zerodown.backup.scheduler import next_due, schedule_period, target_max_age
from zerodown.core.types import ServiceName
from zerodown.ops.alerts import AlertState, RuleEvaluator, default_rules
from zerodown.ops.series import SeriesStore
from zerodown.store import SqliteStore
from zerodown.testing import FrozenClock

pytestmark = pytest.mark.integration

START = datetime(2025, 6, 2, 2, 59, 0, tzinfo=UTC)  # a minute before 03:00
DAILY = "- {name: db, kind: sqlite, path: ./app.db, schedule: '0 3 * * *'}"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    with sqlite3.connect(tmp_path / "app.db") as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    return tmp_path


@pytest.fixture
def store(folder: Path, clock: FrozenClock) -> Iterator[SqliteStore]:
    store = SqliteStore(folder / "state" / "zerodown.db", clock=clock)
    store.upsert_service(ServiceName("web"), spec_path=str(folder / "zerodown.yaml"), spec_text="")
    yield store
    store.close()


def scheduler_for(
    store: SqliteStore, clock: FrozenClock, settings: BackupSettings, *, jitter: float = 0.0
) -> BackupScheduler:
    return BackupScheduler(
        Backups(store, clock=clock), lambda: [settings], clock=clock, max_jitter=jitter
    )


def test_cron_helpers() -> None:
    assert next_due("0 3 * * *", START) == START.replace(hour=3, minute=0)
    assert next_due("0 3 * * *", START.replace(hour=3, minute=0)) == datetime(
        2025, 6, 3, 3, 0, tzinfo=UTC
    )
    assert schedule_period("*/15 * * * *", START) == 900.0
    settings = settings_for(Path("/tmp"), DAILY)
    target = settings.spec.targets[0]
    assert target_max_age(target, START) == 1.5 * 86400


def test_a_target_is_due_at_its_cron_time_then_once_a_day(
    store: SqliteStore, clock: FrozenClock, folder: Path
) -> None:
    settings = settings_for(folder, DAILY)
    scheduler = scheduler_for(store, clock, settings)
    assert scheduler.tick() == []  # 02:59: not yet
    clock.advance(60)
    (first,) = scheduler.tick()  # 03:00
    record = store.get_backup(first)
    assert record.status == BackupStatus.SUCCEEDED and record.reason == "schedule"
    assert scheduler.tick() == []  # done for today
    clock.advance(86400 - 1)
    assert scheduler.tick() == []
    clock.advance(1)
    assert len(scheduler.tick()) == 1


def test_missed_runs_are_caught_up_once(
    store: SqliteStore, clock: FrozenClock, folder: Path
) -> None:
    settings = settings_for(folder, DAILY)
    scheduler = scheduler_for(store, clock, settings)
    clock.advance(60)
    assert len(scheduler.tick()) == 1
    clock.advance(5 * 86400)  # the controller was down for five days
    assert len(scheduler.tick()) == 1
    assert scheduler.tick() == []


def test_jitter_is_fixed_per_target_and_bounded(
    store: SqliteStore, clock: FrozenClock, folder: Path
) -> None:
    settings = settings_for(folder, DAILY)
    scheduler = scheduler_for(store, clock, settings, jitter=60)
    delay = scheduler.jitter("web", "db", 86400)
    assert 0 <= delay < 60 and delay == scheduler.jitter("web", "db", 86400)
    assert scheduler.jitter("web", "db", 86400) != scheduler.jitter("web", "other", 86400)
    assert scheduler.jitter("web", "db", 100) < 10  # at most a tenth of the period
    target = settings.spec.targets[0]
    assert scheduler.due_at(settings, target) == START.replace(minute=0, hour=3) + timedelta(
        seconds=delay
    )


def test_a_failed_backup_waits_for_the_next_run_and_is_counted(
    store: SqliteStore, clock: FrozenClock, folder: Path
) -> None:
    settings = settings_for(folder, DAILY)
    scheduler = scheduler_for(store, clock, settings)
    (folder / "app.db").rename(folder / "gone.db")
    clock.advance(60)
    (failed,) = scheduler.tick()
    assert store.get_backup(failed).status == BackupStatus.FAILED
    assert scheduler.tick() == []  # no retry loop
    samples = {s.name: s for s in scheduler.collect()}
    assert samples["zerodown_backup_failures_total"].value == 1.0
    assert samples["zerodown_backup_failures_total"].kind == "counter"
    assert "zerodown_backup_last_success_timestamp_seconds" not in samples  # none yet
    assert (
        samples["zerodown_backup_first_due_timestamp_seconds"].value
        == (START + timedelta(seconds=60)).timestamp()
    )
    assert samples["zerodown_backup_max_age_seconds"].value == 1.5 * 86400
    assert samples["zerodown_backup_failures_total"].labels == {"service": "web", "target": "db"}


def test_metrics_follow_the_newest_good_backup_and_overdue_is_reported_once(
    store: SqliteStore, clock: FrozenClock, folder: Path
) -> None:
    settings = settings_for(
        folder, "- {name: db, kind: sqlite, path: ./app.db, schedule: '0 3 * * *', maxAge: 1h}"
    )
    scheduler = scheduler_for(store, clock, settings)
    clock.advance(60)
    (backup_id,) = scheduler.tick()
    finished = store.get_backup(backup_id).finished_at
    assert finished is not None
    samples = {s.name: s.value for s in scheduler.collect()}
    assert samples["zerodown_backup_last_success_timestamp_seconds"] == finished.timestamp()
    assert samples["zerodown_backup_max_age_seconds"] == 3600.0
    clock.advance(3601)
    scheduler.tick()
    scheduler.tick()
    overdue = [e for e in store.list_events() if e.kind == "backup.overdue"]
    assert len(overdue) == 1 and overdue[0].data["max_age_s"] == 3600.0


def test_a_target_being_backed_up_elsewhere_is_skipped(
    store: SqliteStore, clock: FrozenClock, folder: Path
) -> None:
    settings = settings_for(folder, DAILY)
    scheduler = scheduler_for(store, clock, settings)
    store.acquire_lock("backup:web:db", owner="another controller", ttl=600)
    clock.advance(60)
    assert scheduler.tick() == []
    assert store.list_backups() == []


class Monitor:
    """What the controller's monitor does with the scheduler: record its metrics each minute
    and evaluate the shipped alert rules over them."""

    def __init__(self, scheduler: BackupScheduler, clock: FrozenClock) -> None:
        self.scheduler = scheduler
        self.clock = clock
        self.series = SeriesStore(retention=10 * 86400)
        self.evaluator = RuleEvaluator(default_rules(), self.series)

    def minutes(self, count: int) -> set[str]:
        """Let ``count`` minutes pass, ticking the scheduler; the alerts firing at the end."""
        firing: set[str] = set()
        for _ in range(count):
            self.clock.advance(60)
            self.scheduler.tick()
            at = self.clock.now().timestamp()
            for sample in self.scheduler.collect():
                self.series.append(sample.name, sample.labels, sample.value, at)
            alerts = self.evaluator.evaluate(at)
            firing = {a.rule for a in alerts if a.state is AlertState.FIRING}
        return firing


def test_a_target_is_not_alerted_on_before_its_first_backup_was_due(
    store: SqliteStore, clock: FrozenClock, folder: Path
) -> None:
    """Before a target's first backup, no alert; once it is more than maxAge past its first
    due time with no good backup, ZerodownBackupMissing (not the newest-backup-age alert)."""
    settings = settings_for(
        folder, "- {name: db, kind: sqlite, path: ./app.db, schedule: '0 3 * * *', maxAge: 1h}"
    )
    scheduler = scheduler_for(store, clock, settings)
    monitor = Monitor(scheduler, clock)
    (folder / "app.db").rename(folder / "gone.db")  # every backup fails
    assert monitor.minutes(1) == set()  # 03:00: the first is due and fails
    (failed,) = store.list_backups()
    assert failed.status == BackupStatus.FAILED
    assert monitor.minutes(60) == set()  # 04:00: not yet maxAge past the due time
    assert monitor.minutes(10) == {"ZerodownBackupMissing"}  # 04:10 (pending for 5m)
    # A restarted controller still knows when the first was due: its failed attempt.
    again = scheduler_for(store, clock, settings)
    assert again.first_due(settings, settings.spec.targets[0]) == failed.started_at
    # A good backup replaces the condition with the age of the newest good backup.
    (folder / "gone.db").rename(folder / "app.db")
    scheduler.backups.take(settings, "db")
    names = {s.name for s in scheduler.collect()}
    assert "zerodown_backup_first_due_timestamp_seconds" not in names
    assert "zerodown_backup_last_success_timestamp_seconds" in names
    assert monitor.minutes(10) == set()


def test_a_removal_left_half_done_is_finished_by_the_scheduler(
    store: SqliteStore, clock: FrozenClock, folder: Path
) -> None:
    """A backup left ``pruning`` (killed after marking, or its ``restic prune`` failed) is
    finished on the scheduler's first tick, and again every retry interval after that, without
    waiting for a controller restart or the target's next retention run."""
    settings = settings_for(folder, "- {name: db, kind: sqlite, path: ./app.db}")
    backups = Backups(store, clock=clock)
    scheduler = BackupScheduler(backups, lambda: [settings], clock=clock, max_jitter=0.0)
    first = backups.take(settings, "db")
    backups.mark_pruning([first], reason="retention: keepLast 1")  # then the process died
    scheduler.tick()
    assert store.get_backup(first.id).status == BackupStatus.PRUNED
    assert not Path(first.artifacts[0].location).exists()

    second = backups.take(settings, "db")
    backups.mark_pruning([second], reason="retention: keepLast 1")
    clock.advance(60)
    scheduler.tick()  # within the interval: left for later
    assert store.get_backup(second.id).status == BackupStatus.PRUNING
    clock.advance(600)  # the default retry interval, ten minutes
    scheduler.tick()
    assert store.get_backup(second.id).status == BackupStatus.PRUNED
    assert not Path(second.artifacts[0].location).exists()
