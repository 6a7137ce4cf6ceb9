"""Retention applied to a target's real backups in the catalogue: SQLite copies taken on
different days (the store and the runner read a clock the test moves), a dry run that removes
nothing and says which rule keeps each backup, then the real run that deletes exactly the
forgotten artifacts and keeps their rows as ``pruned``."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path

import pytest

from zerodown.backup import Backups, BackupStatus, resolve_settings
from zerodown.backup.retention import apply_retention
from zerodown.spec import parse_spec
from zerodown.store import SqliteStore

pytestmark = pytest.mark.integration


class SettableClock:
    """Wall time the test sets; monotonic and sleep are real."""

    def __init__(self, start: dt.datetime) -> None:
        self.moment = start

    def now(self) -> dt.datetime:
        return self.moment

    def monotonic(self) -> float:
        import time

        return time.monotonic()

    def sleep(self, delay: float, wakeup: threading.Event | None = None) -> bool:
        if wakeup is None:
            return False
        return wakeup.wait(max(delay, 0.0))


SPEC = """\
service: notes
run: {command: 'true'}
backups:
  targets:
    - {name: db, kind: sqlite, path: notes.db}
  retention: {keepLast: 2, keepDaily: 3, keepMonthly: 2}
"""


def test_retention_keeps_by_rule_and_removes_the_rest(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "notes.db") as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    db.close()
    clock = SettableClock(dt.datetime(2026, 1, 10, 3, 0, tzinfo=dt.UTC))
    store = SqliteStore(tmp_path / "state" / "zerodown.db", clock=clock)
    store.upsert_service("notes", spec_path=str(tmp_path / "zerodown.yaml"), spec_text=SPEC)  # type: ignore[arg-type]
    spec = parse_spec(SPEC).spec
    settings = resolve_settings(spec, spec_dir=tmp_path, state_dir=tmp_path / "state")
    backups = Backups(store, clock=clock)
    moments = [
        "2025-12-20 03:00",
        "2025-12-31 03:00",
        "2026-01-07 03:00",
        "2026-01-08 03:00",
        "2026-01-09 03:00",
        "2026-01-09 15:00",
        "2026-01-10 03:00",
        "2026-01-10 09:00",
    ]
    taken = {}
    for moment in moments:
        clock.moment = dt.datetime.fromisoformat(moment).replace(tzinfo=dt.UTC)
        record = backups.take(settings, "db", reason="schedule")
        taken[moment] = record
    clock.moment = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)

    dry = apply_retention(backups, settings, "db", dry_run=True)
    assert dry.removed == ()
    kept = {d.snapshot.record.id: [str(r) for r in d.reasons] for d in dry.decisions if d.keep}
    assert kept == {
        taken["2026-01-10 09:00"].id: ["last snapshot", "daily snapshot", "monthly snapshot"],
        taken["2026-01-10 03:00"].id: ["last snapshot"],
        taken["2026-01-09 15:00"].id: ["daily snapshot"],
        taken["2026-01-08 03:00"].id: ["daily snapshot"],
        taken["2025-12-31 03:00"].id: ["monthly snapshot"],
    }
    lines = dry.lines()
    assert lines[0].startswith(f"keep    #{taken['2026-01-10 09:00'].id} 2026-01-10 09:00:00 UTC")
    assert f"forget  #{taken['2026-01-09 03:00'].id} 2026-01-09 03:00:00 UTC" in lines
    assert all(Path(r.artifacts[0].location).exists() for r in taken.values())
    assert dry.policy == "keep the last 2, 3 daily and 2 monthly"

    run = apply_retention(backups, settings, "db", dry_run=False)
    forgotten = {taken[m].id for m in ("2025-12-20 03:00", "2026-01-07 03:00", "2026-01-09 03:00")}
    assert set(run.removed) == forgotten and run.errors == ()
    for record in taken.values():
        now = backups.catalogue.get_backup(record.id)
        gone = record.id in forgotten
        assert (now.status == BackupStatus.PRUNED) == gone
        assert Path(record.artifacts[0].location).exists() != gone
    assert (
        backups.catalogue.get_backup(min(forgotten))
        .meta["pruned"]["reason"]
        .startswith("retention: keep the last 2")
    )
    # Applying it again changes nothing: the pruned backups are no longer candidates.
    again = apply_retention(backups, settings, "db", dry_run=False)
    assert again.removed == () and all(d.keep for d in again.decisions)
    assert again.to_dict()["decisions"][0]["reasons"][0] == {
        "rule": "keepLast",
        "text": "last snapshot",
        "oldest": False,
    }
