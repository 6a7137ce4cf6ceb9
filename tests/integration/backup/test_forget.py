"""Retention applied for real (``backup forget``): real restic snapshots and SQLite copies in a
real catalogue, removed crash-safely, and by the scheduler after each scheduled backup.

- The dry run lists every backup with keep/forget and the rules that keep it, and changes
  nothing; the real run deletes the forgotten SQLite copies, forgets the restic snapshots
  (``restic snapshots --json`` no longer lists them), runs ``restic prune`` once per
  repository (the repository shrinks on disk), keeps every row as ``pruned``, and writes a
  Deployment Operations Report that follows the seed's template.
- A process killed after marking the backups ``pruning`` (nothing deleted yet), or after
  forgetting the snapshots (before ``restic prune``), leaves ``pruning`` rows; recovery finishes
  the removal and marks them ``pruned``.
- The scheduler applies a target's rules after each scheduled backup that succeeds.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.backup.helpers import PASSWORD, require_tool, spec_text
from tests.unit.report.checks import assert_valid_report
from zerodown.backup import Backups, BackupScheduler, BackupSettings, BackupStatus
from zerodown.backup.operations import ReportSink, ServiceBackups
from zerodown.backup.retention import apply_retention
from zerodown.core.types import ServiceName
from zerodown.spec import parse_spec
from zerodown.store import SqliteStore
from zerodown.testing import FrozenClock

pytestmark = pytest.mark.integration

TARGETS = """
- {name: uploads, kind: files, path: ./uploads}
- {name: db, kind: sqlite, path: ./app.db}
"""
RETENTION = "  retention: {keepLast: 2}\n"
START = datetime(2025, 6, 2, 3, 0, 0, tzinfo=UTC)


def prepare(folder: Path, *, targets: str = TARGETS, retention: str = RETENTION) -> str:
    """The live data, the password file and the spec (written to ``zerodown.yaml``)."""
    (folder / "backup.key").write_text(PASSWORD + "\n")
    (folder / "uploads").mkdir(exist_ok=True)
    with sqlite3.connect(folder / "app.db") as db:
        db.execute("CREATE TABLE IF NOT EXISTS note (text TEXT)")
    db.close()
    text = spec_text(targets, extra=retention)
    (folder / "zerodown.yaml").write_text(text)
    return text


def settings_of(folder: Path, text: str) -> BackupSettings:
    from zerodown.backup import resolve_settings

    spec = parse_spec(text, filename=str(folder / "zerodown.yaml")).spec
    return resolve_settings(spec, spec_dir=folder, state_dir=folder / "state")


def change_data(folder: Path, step: int) -> None:
    """New bytes in both targets, so every backup holds something of its own (the folder holds
    only the newest file: what older snapshots hold is freed when they are pruned)."""
    for old in (folder / "uploads").glob("file-*.bin"):
        old.unlink()
    (folder / "uploads" / f"file-{step}.bin").write_bytes(os.urandom(200_000))
    with sqlite3.connect(folder / "app.db") as db:
        db.execute("INSERT INTO note VALUES (?)", (os.urandom(2000).hex(),))
    db.close()


def restic_snapshot_ids(settings: BackupSettings) -> set[str]:
    result = subprocess.run(
        ["restic", "--no-cache", "snapshots", "--json"],
        env={
            **os.environ,
            "RESTIC_REPOSITORY": str(settings.restic_repository),
            "RESTIC_PASSWORD": PASSWORD,
        },
        capture_output=True,
        text=True,
        check=True,
    )
    return {str(s["id"]) for s in json.loads(result.stdout or "[]")}


def snapshot_of(record_location: str) -> str:
    return record_location.removeprefix("restic:")


def test_forget_dry_run_then_for_real_with_restic_and_sqlite(tmp_path: Path) -> None:
    require_tool("restic", "restic")
    text = prepare(tmp_path)
    clock = FrozenClock(START)
    store = SqliteStore(tmp_path / "state" / "zerodown.db", clock=clock)
    try:
        store.upsert_service(
            ServiceName("web"), spec_path=str(tmp_path / "zerodown.yaml"), spec_text=text
        )
        reports = tmp_path / ".claude" / "context" / "deployment"
        service = ServiceBackups(
            store,
            state_dir=tmp_path / "state",
            clock=clock,
            reports=ReportSink(folder=lambda name: reports, instances=lambda name: []),
        )
        settings = service.settings("web")
        taken = []
        for step in range(4):
            change_data(tmp_path, step)
            done = service.backup_operation("web", verify=False)
            taken.append({b["target"]: b for b in done["backups"]})
            clock.advance(3600)
        # Four backup reports so far, one per request.
        assert len(list(reports.glob("*.md"))) == 4
        forgotten = {t: [taken[i][t]["id"] for i in (1, 0)] for t in ("uploads", "db")}
        kept = {t: [taken[i][t]["id"] for i in (3, 2)] for t in ("uploads", "db")}
        snapshots = {snapshot_of(taken[i]["uploads"]["artifacts"][0]["location"]) for i in (0, 1)}
        assert snapshots <= restic_snapshot_ids(settings)

        dry = service.forget("web", dry_run=True)
        assert dry["ok"] and dry["dry_run"] and dry["report"] is None
        by_target = {run["target"]: run for run in dry["targets"]}
        for name in ("uploads", "db"):
            run = by_target[name]
            assert run["forgotten"] == forgotten[name] and run["removed"] == []
            assert run["lines"][0].startswith(f"keep    #{kept[name][0]} ")
            assert "keepLast (last snapshot)" in run["lines"][0]
            assert run["lines"][2].startswith(f"forget  #{forgotten[name][0]} ")
        assert len(list(reports.glob("*.md"))) == 4  # a dry run writes no report
        assert snapshots <= restic_snapshot_ids(settings)
        assert all(b.status == BackupStatus.SUCCEEDED for b in store.list_backups())

        real = service.forget("web")
        assert real["ok"], real["errors"]
        by_target = {run["target"]: run for run in real["targets"]}
        for name in ("uploads", "db"):
            assert by_target[name]["removed"] == forgotten[name]
            assert by_target[name]["kept"] == 2
        # restic: the snapshots are gone from the repository's list, and one prune ran.
        remaining = restic_snapshot_ids(settings)
        assert not snapshots & remaining and len(remaining) == 2
        (prune,) = by_target["uploads"]["repositories"]
        # The two forgotten snapshots alone held 2 x 200 kB of random (incompressible) data.
        assert prune["freed_bytes"] >= 2 * 200_000
        assert prune["freed_bytes"] == (
            prune["repository_bytes_before"] - prune["repository_bytes_after"]
        )
        assert by_target["db"]["repositories"] == []
        assert real["repositories"] == [prune]  # one prune for the service's one repository
        assert real["freed_bytes"] == prune["freed_bytes"] + by_target["db"]["freed_bytes"]
        # SQLite: the copies are deleted; every row stays, as pruned, with the policy.
        for backup_id in forgotten["db"]:
            record = store.get_backup(backup_id)
            assert record.status == BackupStatus.PRUNED
            assert not Path(record.artifacts[0].location).exists()
            assert record.meta["pruned"]["reason"] == "retention: keep the last 2"
        assert by_target["db"]["freed_bytes"] == sum(
            store.get_backup(i).size_bytes or 0 for i in forgotten["db"]
        )
        for name in ("uploads", "db"):
            for backup_id in kept[name]:
                assert store.get_backup(backup_id).status == BackupStatus.SUCCEEDED
        assert len(store.list_backups()) == 8

        # The report of the forget: valid, an operation, nobody affected, measured.
        report = Path(real["report"]["markdown"])
        assert_valid_report(report)
        markdown = report.read_text()
        assert "Retention (操作 retention)" in markdown
        assert "不是部署" in markdown and "無使用者受影響" in markdown
        twin = json.loads(report.with_suffix(".json").read_text())
        checks = {
            c["name"]: c
            for c in twin["sections"]["execution"]["post_deployment_validation"]["checks"]
        }
        assert checks["removed:uploads"]["status"] == "pass"
        assert checks["removed:uploads"]["figures"]["snapshots_left"] == 0
        assert checks["removed:db"]["status"] == "pass"
        assert checks["prune"]["figures"]["freed_bytes"] == prune["freed_bytes"]
        for other in sorted(reports.glob("*.md")):
            assert_valid_report(other)

        # Applying it again removes nothing more.
        again = service.forget("web")
        assert all(run["removed"] == [] for run in again["targets"])
    finally:
        store.close()


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tests.integration.backup.test_forget import settings_of
    from zerodown.backup import Backups
    from zerodown.backup.retention import apply_retention
    from zerodown.store import SqliteStore

    folder = Path(sys.argv[1])
    settings = settings_of(folder, (folder / "zerodown.yaml").read_text())
    store = SqliteStore(folder / "state" / "zerodown.db")
    for target in ("uploads", "db"):
        apply_retention(Backups(store), settings, target, dry_run=False)
    print("finished", flush=True)
    """
)


@pytest.mark.parametrize("moment", ["prune:marked", "prune:forgotten"])
def test_a_removal_killed_midway_is_finished_by_recovery(tmp_path: Path, moment: str) -> None:
    require_tool("restic", "restic")
    text = prepare(tmp_path, retention="  retention: {keepLast: 1}\n")
    settings = settings_of(tmp_path, text)
    store = SqliteStore(tmp_path / "state" / "zerodown.db")
    store.upsert_service(
        ServiceName("web"), spec_path=str(tmp_path / "zerodown.yaml"), spec_text=text
    )
    backups = Backups(store)
    old = {}
    for step in range(2):
        change_data(tmp_path, step)
        for target in ("uploads", "db"):
            record = backups.take(settings, target)
            if step == 0:
                old[target] = record
    store.close()
    snapshot = snapshot_of(old["uploads"].artifacts[0].location)
    copy = Path(old["db"].artifacts[0].location)

    crash = tmp_path / "crash"
    crash.write_text(f"{moment}#1")
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        env={**os.environ, "ZERODOWN_CRASH_FILE": str(crash)},
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr

    store = SqliteStore(tmp_path / "state" / "zerodown.db")
    try:
        # Killed while removing the files target: marked before anything was deleted.
        left = store.get_backup(old["uploads"].id)
        assert left.status == BackupStatus.PRUNING and not left.good
        assert left.meta["pruned"]["reason"] == "retention: keep the last 1"
        if moment == "prune:marked":
            assert snapshot in restic_snapshot_ids(settings)  # nothing deleted yet
        else:
            assert snapshot not in restic_snapshot_ids(settings)  # forgotten, not pruned
        assert store.get_backup(old["db"].id).status == BackupStatus.SUCCEEDED
        assert copy.exists()

        recovering = Backups(store)
        (finished,) = recovering.finish_interrupted_pruning(lambda service: settings)
        assert finished.id == old["uploads"].id and finished.status == BackupStatus.PRUNED
        assert snapshot not in restic_snapshot_ids(settings)
        assert recovering.finish_interrupted_pruning(lambda service: settings) == []
        # The next retention run of the other target goes on as usual.
        run = apply_retention(recovering, settings, "db", dry_run=False)
        assert run.removed == (old["db"].id,) and not copy.exists()
        kinds = [e.kind for e in store.list_events()]
        assert "backup.repository_pruned" in kinds and "backup.pruned" in kinds
    finally:
        store.close()


def test_the_scheduler_applies_retention_after_each_scheduled_backup(tmp_path: Path) -> None:
    targets = "- {name: db, kind: sqlite, path: ./app.db, schedule: '0 * * * *'}"
    text = prepare(tmp_path, targets=targets)
    settings = settings_of(tmp_path, text)
    clock = FrozenClock(START - timedelta(minutes=1))
    store = SqliteStore(tmp_path / "state" / "zerodown.db", clock=clock)
    try:
        store.upsert_service(
            ServiceName("web"), spec_path=str(tmp_path / "zerodown.yaml"), spec_text=text
        )
        scheduler = BackupScheduler(
            Backups(store, clock=clock), lambda: [settings], clock=clock, max_jitter=0
        )
        ids = []
        for _ in range(4):
            clock.advance(3600)
            (backup_id,) = scheduler.tick()
            ids.append(backup_id)
        statuses = {b.id: b.status for b in store.list_backups()}
        assert statuses == {
            ids[0]: BackupStatus.PRUNED,
            ids[1]: BackupStatus.PRUNED,
            ids[2]: BackupStatus.SUCCEEDED,
            ids[3]: BackupStatus.SUCCEEDED,
        }
        for backup_id in ids[:2]:
            assert not Path(store.get_backup(backup_id).artifacts[0].location).exists()
    finally:
        store.close()


def test_without_rules_the_scheduler_keeps_every_backup(tmp_path: Path) -> None:
    targets = "- {name: db, kind: sqlite, path: ./app.db, schedule: '0 * * * *'}"
    text = prepare(tmp_path, targets=targets, retention="")
    settings = settings_of(tmp_path, text)
    clock = FrozenClock(START - timedelta(minutes=1))
    store = SqliteStore(tmp_path / "state" / "zerodown.db", clock=clock)
    try:
        store.upsert_service(
            ServiceName("web"), spec_path=str(tmp_path / "zerodown.yaml"), spec_text=text
        )
        scheduler = BackupScheduler(
            Backups(store, clock=clock), lambda: [settings], clock=clock, max_jitter=0
        )
        for _ in range(3):
            clock.advance(3600)
            scheduler.tick()
        assert [b.status for b in store.list_backups()] == [BackupStatus.SUCCEEDED] * 3
    finally:
        store.close()


def test_two_targets_in_one_repository_are_pruned_once(tmp_path: Path) -> None:
    require_tool("restic", "restic")
    targets = """
- {name: uploads, kind: files, path: ./uploads}
- {name: media, kind: files, path: ./media}
"""
    text = prepare(tmp_path, targets=targets, retention="  retention: {keepLast: 1}\n")
    (tmp_path / "media").mkdir()
    store = SqliteStore(tmp_path / "state" / "zerodown.db")
    try:
        store.upsert_service(
            ServiceName("web"), spec_path=str(tmp_path / "zerodown.yaml"), spec_text=text
        )
        service = ServiceBackups(store, state_dir=tmp_path / "state")
        first = {}
        for step in range(2):
            change_data(tmp_path, step)
            (tmp_path / "media" / "clip.bin").write_bytes(os.urandom(100_000))
            taken = service.backup_operation("web", verify=False)["backups"]
            if step == 0:
                first = {b["target"]: b["id"] for b in taken}
        real = service.forget("web")
        assert real["ok"] and real["report"] is None  # no report sink: nothing written
        (prune,) = real["repositories"]
        assert sorted(prune["backup_ids"]) == sorted(first.values())
        for run in real["targets"]:
            assert run["removed"] == [first[run["target"]]]
            assert run["repositories"] == [prune]
        kinds = [e.kind for e in store.list_events()]
        assert kinds.count("backup.repository_pruned") == 1
    finally:
        store.close()
