"""The ``dr:`` spec section and the written DR plan, from fixed catalogue entries.

The plan is a pure function of the spec, the catalogue and the drills recorded: these tests
pin what it says when the objectives are met, missed or unknown, and that every mistake in
``dr:`` is reported at its line.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from textwrap import dedent

import pytest

from zerodown.backup import resolve_settings
from zerodown.backup.dr import plan_markdown, restore_order
from zerodown.core.errors import SpecError
from zerodown.core.types import ServiceName
from zerodown.spec import ServiceSpec, parse_spec
from zerodown.store.backups import BackupArtifact, BackupRecord, BackupStatus

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)

SPEC = dedent(
    """\
    service: notes
    run: {command: python3 app.py}
    checks:
      post:
        smoke:
          - {name: notes, path: /notes, expectJson: {ok: true}}
    backups:
      passwordEnv: NOTES_BACKUP_PASSWORD
      targets:
        - {name: uploads, kind: files, path: ./uploads, schedule: "0 3 * * *"}
        - {name: db, kind: sqlite, path: data/notes.db}
      retention: {keepDaily: 7, keepMonthly: unlimited}
    dr:
      rpo: 1h
      rto: 5m
      contacts:
        - {name: Ada, role: incident commander, reach: "+1 555 0100"}
        - {name: Bob}
      restoreOrder: [db]
      drill:
        restoreEnv: {db: NOTES_DB, uploads: UPLOADS_DIR}
    """
)


def spec_of(text: str = SPEC) -> ServiceSpec:
    return parse_spec(text, filename="zerodown.yaml").spec


def record(backup_id: int, target: str, age: dt.timedelta, **extra: object) -> BackupRecord:
    started = NOW - age
    fields: dict[str, object] = {
        "id": backup_id,
        "service": ServiceName("notes"),
        "target": target,
        "kind": "sqlite" if target == "db" else "files",
        "status": BackupStatus.SUCCEEDED,
        "reason": "schedule",
        "owner": "host:1:1",
        "started_at": started,
        "finished_at": started + dt.timedelta(seconds=1),
        "duration_s": 1.0,
        "size_bytes": 8192,
        "artifacts": (
            BackupArtifact(
                name="database",
                location=f"/backups/{backup_id}.sqlite",
                size_bytes=8192,
                sha256="ab" * 32,
            ),
        ),
        "tools": {},
        "release_revision": None,
        "release_version": None,
        "error": "",
        "verified_at": None,
        "verify_status": None,
    }
    fields.update(extra)
    return BackupRecord(**fields)  # type: ignore[arg-type]


def plan(backups: list[BackupRecord], drills: list[dict[str, object]] | None = None) -> str:
    spec = spec_of()
    settings = resolve_settings(spec, spec_dir=Path("/srv/notes"), state_dir=Path("/srv/state"))
    return plan_markdown(
        spec,
        spec_path="/srv/notes/zerodown.yaml",
        settings=settings,
        backups=backups,
        drills=drills or [],
        now=NOW,
    )


def test_the_restore_order_puts_the_listed_targets_first() -> None:
    assert [t.name for t in restore_order(spec_of())] == ["db", "uploads"]


def test_a_plan_with_fresh_backups_meets_the_rpo_and_lists_where_they_are() -> None:
    text = plan(
        [
            record(7, "db", dt.timedelta(minutes=20), verify_status="ok", verified_at=NOW),
            record(6, "uploads", dt.timedelta(minutes=50)),
            record(5, "db", dt.timedelta(hours=3)),
        ]
    )
    assert text.startswith("# Disaster Recovery Plan: notes\n")
    assert (
        "- **RPO** (most data the service may lose): 1h; met now: the newest backups are at "
        "most 50m old." in text
    )
    assert "5m; never measured: run a drill" in text
    assert (
        "| db | sqlite | data/notes.db | on demand | keep 7 daily and unlimited monthly | 2 "
        "| #7 at 2026-03-01 11:40:00 UTC | 20m | 8.0 KiB | ok at 2026-03-01 12:00:00 UTC |" in text
    )
    assert "environment variable NOTES_BACKUP_PASSWORD" in text
    assert "- db: `/backups/7.sqlite` (8.0 KiB, sha256 `" + "ab" * 32 + "`)" in text
    assert (
        "2. Restore **db** (sqlite) from backup #7 over the live data at `/srv/notes/data/notes.db`"
        in text
    )
    assert "`zerodown backup restore notes 7 --to /srv/notes/data/notes.db --force`" in text
    assert text.index("**db** (sqlite)") < text.index("**uploads** (files)")
    assert "and `PRAGMA integrity_check` answers ok" in text
    assert "- Smoke test notes: GET /notes answers 200, the JSON holds ok." in text
    assert "| Ada | incident commander | +1 555 0100 |" in text and "| Bob | - | - |" in text
    assert "No drill recorded." in text


def test_a_stale_or_missing_backup_is_said_plainly() -> None:
    stale = plan([record(3, "db", dt.timedelta(hours=2)), record(2, "uploads", dt.timedelta(0))])
    assert "**not met now**: the oldest newest backup is 2h old" in stale
    missing = plan([record(3, "db", dt.timedelta(minutes=5))])
    assert "**not met**: no good backup of uploads" in missing
    assert "**uploads** (files): no good backup to restore" in missing


def test_a_corrupted_or_failed_backup_is_not_a_good_one() -> None:
    text = plan(
        [
            record(9, "db", dt.timedelta(minutes=1), verify_status="corrupted", verified_at=NOW),
            record(8, "db", dt.timedelta(minutes=2), status=BackupStatus.FAILED),
            record(4, "db", dt.timedelta(minutes=30)),
            record(2, "uploads", dt.timedelta(minutes=10)),
        ]
    )
    assert "from backup #4 over" in text and "#9" not in text.split("## Restore order")[1]


def test_the_last_drill_judges_the_rto() -> None:
    drills = [
        {
            "started_at": "2026-03-01T11:00:00+00:00",
            "status": "passed",
            "rto_s": 4.25,
            "rpo_s": 1800.0,
            "report": "/r/deployment-1.md",
        },
        {
            "started_at": "2026-02-01T11:00:00+00:00",
            "status": "failed",
            "rto_s": None,
            "rpo_s": None,
            "report": None,
        },
    ]
    text = plan([record(1, "db", dt.timedelta(0)), record(2, "uploads", dt.timedelta(0))], drills)
    assert "5m; met by the last drill (2026-03-01T11:00:00+00:00): 4.25 s" in text
    assert "| 2026-03-01T11:00:00+00:00 | passed | 4.25 s | 30m | /r/deployment-1.md |" in text
    assert "| 2026-02-01T11:00:00+00:00 | failed | not reached | unknown | - |" in text
    slow = [{**drills[0], "rto_s": 400.0}]
    assert "5m; **not met** by the last drill" in plan([record(1, "db", dt.timedelta(0))], slow)


def test_a_spec_without_dr_or_backups_gets_a_plan_that_says_what_is_missing() -> None:
    spec = spec_of("service: bare\nrun: {command: x}\n")
    settings = resolve_settings(spec, spec_dir=Path("/srv"), state_dir=Path("/srv/state"))
    text = plan_markdown(
        spec, spec_path="/srv/zerodown.yaml", settings=settings, backups=[], drills=[], now=NOW
    )
    assert "RPO** (most data the service may lose): not set" in text
    assert "The spec has no `backups.targets`" in text
    assert "None listed: add `dr.contacts`" in text
    assert "No smoke tests in `checks.post.smoke`" in text


@pytest.mark.parametrize(
    ("dr_yaml", "expected"),
    [
        (
            "  restoreOrder: [db, cache]\n",
            "zerodown.yaml:9: dr.restoreOrder[1]: 'cache' is not a backup target "
            "(targets: db, files)",
        ),
        ("  restoreOrder: [db, db]\n", "zerodown.yaml:9: dr.restoreOrder[1]: 'db' is listed twice"),
        (
            "  drill: {restoreEnv: {cache: CACHE_DIR}}\n",
            "zerodown.yaml:9: dr.drill.restoreEnv.cache: 'cache' is not a backup target",
        ),
        (
            "  drill: {restoreEnv: {db: X, files: X}}\n",
            "zerodown.yaml:9: dr.drill.restoreEnv.files: X already receives target 'db'",
        ),
        ("  rpo: soon\n", "zerodown.yaml:9: dr.rpo: expected a duration"),
        ("  contacts: [{role: boss}]\n", "zerodown.yaml:9: dr.contacts[0].name: "),
        ("  drill: {restoreEnv: {db: 1X}}\n", "zerodown.yaml:9: dr.drill.restoreEnv.db: "),
        ("  rtoo: 1m\n", "zerodown.yaml:9: dr.rtoo: "),
    ],
)
def test_dr_mistakes_are_named_at_their_line(dr_yaml: str, expected: str) -> None:
    text = (
        "service: notes\n"
        "run: {command: x}\n"
        "backups:\n"
        "  targets:\n"
        "    - {name: db, kind: sqlite, path: a.db}\n"
        "    - {name: files, kind: sqlite, path: b.db}\n"
        "  passwordEnv: P\n"
        "dr:\n" + dr_yaml
    )
    with pytest.raises(SpecError) as caught:
        parse_spec(text, filename="zerodown.yaml")
    rendered = [p.render() for p in caught.value.problems]
    assert any(line.startswith(expected) for line in rendered), rendered
