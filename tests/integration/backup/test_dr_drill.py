"""DR drills of the example notes service (examples/notes): real SQLite backups, a real
restore into a scratch folder, the real app started against it, real smoke tests.

The spec's smoke test here also asks for the number of notes the *backup* holds, and a note is
added to the live database after the backup: so the drill passes only if the service really
ran against the restored copy and not the live file. Every drill must leave nothing behind: no
process carrying its marker, no scratch folder, the live database untouched.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path

import psutil
import pytest

from tests.unit.report.checks import assert_valid_report
from zerodown.backup import Backups, resolve_settings
from zerodown.backup.dr import (
    DRILL_FOLDER,
    DRILL_MARKER_ENV,
    DrillSetup,
    clean_stale_drills,
    drill_history,
    plan_markdown,
    run_drill,
)
from zerodown.core.errors import RefusedError
from zerodown.report.render import render_from_json
from zerodown.spec import ServiceSpec, load_spec
from zerodown.store import SqliteStore

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "notes"


def _notes(db: Path, *texts: str) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, at REAL, text TEXT NOT NULL)"
        )
        connection.executemany(
            "INSERT INTO notes (at, text) VALUES (0, ?)", [(text,) for text in texts]
        )
    connection.close()


def _marked(drill_id: str) -> list[int]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(DRILL_MARKER_ENV) == drill_id:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


class Example:
    """The notes example copied into a temporary folder, with its own state and store."""

    def __init__(self, root: Path, spec_text: str | None = None) -> None:
        self.root = root
        shutil.copy(EXAMPLE / "app.py", root / "app.py")
        text = spec_text if spec_text is not None else (EXAMPLE / "zerodown.yaml").read_text()
        (root / "zerodown.yaml").write_text(text)
        (root / "data").mkdir()
        self.db = root / "data" / "notes.db"
        self.state = root / "state"
        self.loaded = load_spec(root / "zerodown.yaml")
        self.store = SqliteStore(self.state / "zerodown.db")
        self.store.upsert_service(  # type: ignore[arg-type]
            "notes", spec_path=str(root / "zerodown.yaml"), spec_text=self.loaded.text
        )
        self.backups = Backups(self.store)
        self.settings = resolve_settings(self.spec, spec_dir=root, state_dir=self.state)
        self.reports = root / "reports"

    @property
    def spec(self) -> ServiceSpec:
        return self.loaded.spec

    def setup(self, spec: ServiceSpec | None = None) -> DrillSetup:
        return DrillSetup(
            spec=spec or self.spec,
            spec_path=str(self.root / "zerodown.yaml"),
            workdir=self.loaded.workdir,
            revision=1,
            version="v1",
            settings=self.settings,
            backups=self.backups,
            state_dir=self.state,
            report_dir=self.reports,
        )


def _with_count_smoke_test(count: int) -> str:
    text = (EXAMPLE / "zerodown.yaml").read_text()
    smoke = "      - {name: notes, path: /notes, expectStatus: 200, expectJson: {ok: true}}\n"
    assert smoke in text
    counted = smoke + (
        f"      - {{name: restored-notes, path: /notes, expectJson: {{count: {count}}}}}\n"
    )
    return text.replace(smoke, counted)


def test_a_drill_restores_starts_smoke_tests_measures_and_leaves_nothing(tmp_path: Path) -> None:
    example = Example(tmp_path, _with_count_smoke_test(2))
    _notes(example.db, "first", "second")
    backup = example.backups.take(example.settings, "db", reason="manual")
    _notes(example.db, "written after the backup")  # the live file now holds 3
    live_before = example.db.read_bytes()

    result = run_drill(example.setup())

    assert result.passed, result.reason
    assert result.rto_s is not None and 0 < result.rto_s <= result.duration_s
    assert result.rto_target_s == 300.0 and result.rto_met is True
    assert result.rpo_s is not None and result.rpo_s >= 0
    assert result.rpo_target_s == 3600.0 and result.rpo_met is True
    (target,) = result.targets
    assert target.backup_id == backup.id and target.ok
    assert target.sha256 == backup.artifacts[0].sha256
    assert target.variable == "NOTES_DB"
    assert [s["status"] for s in result.smoke] == ["pass", "pass"]
    # Nothing left behind, and the live data untouched.
    assert result.cleanup["ok"] and result.cleanup["scratch_removed"]
    assert not _marked(result.drill_id)
    assert not (example.state / DRILL_FOLDER / result.drill_id).exists()
    assert list((example.state / DRILL_FOLDER).iterdir()) == []
    assert example.db.read_bytes() == live_before
    assert not psutil.pid_exists(result.instance["pid"])
    # The report, in the seed's template, as an operation.
    markdown = Path(result.report["markdown"]).read_text()
    assert markdown.startswith("## Deployment Operations Report - ")
    assert "drill" in markdown and "not a deployment" in markdown
    assert f"{result.rto_s:.2f}s" in markdown
    twin = json.loads(Path(result.report["json"]).read_text())
    assert twin["operation"] == "drill"
    assert_valid_report(Path(result.report["markdown"]))
    english = render_from_json(twin, lang="en", chart_name=None)
    assert "no user affected: a disaster-recovery drill (an operation, not a deployment)" in (
        english
    )
    assert "RTO measured" in english and "first deployment" not in english
    # The event log records the drill for the plan's history.
    events = example.store.list_events("notes", limit=1000)  # type: ignore[arg-type]
    history = drill_history(events)
    assert history[0]["status"] == "passed" and history[0]["rto_s"] == result.rto_s


def test_a_drill_against_the_live_data_would_fail_the_count(tmp_path: Path) -> None:
    """The counter-proof of the test above: the same smoke test fails when the backup holds
    other data, so a passing drill did read the restored copy."""
    example = Example(tmp_path, _with_count_smoke_test(5))
    _notes(example.db, "only", "two")
    example.backups.take(example.settings, "db", reason="manual")
    spec = example.spec.model_copy(
        update={
            "dr": example.spec.dr.model_copy(
                update={"drill": example.spec.dr.drill.model_copy(update={"timeout": 3.0})}
            )
        }
    )
    result = run_drill(example.setup(spec))
    assert not result.passed
    assert "smoke tests did not pass" in result.reason
    assert result.rto_s is None and result.rto_met is None
    assert result.cleanup["ok"], result.cleanup
    assert not _marked(result.drill_id)


def test_a_drill_without_a_backup_fails_and_says_the_service_cannot_be_restored(
    tmp_path: Path,
) -> None:
    example = Example(tmp_path)
    _notes(example.db, "never backed up")
    result = run_drill(example.setup())
    assert not result.passed
    assert "no good backup" in result.reason
    assert result.instance == {} and result.cleanup["ok"]
    assert Path(result.report["markdown"]).is_file()


def test_a_service_that_exits_fails_the_drill_with_its_log(tmp_path: Path) -> None:
    example = Example(tmp_path)
    _notes(example.db, "a note")
    record = example.backups.take(example.settings, "db", reason="manual")
    Path(record.artifacts[0].location).write_bytes(b"")  # the backup is now corrupted
    result = run_drill(example.setup())
    assert not result.passed
    assert "restore of db failed" in result.reason and "corrupted" in result.reason
    assert result.cleanup["ok"]


def test_a_spec_the_drill_cannot_use_is_refused_before_anything_is_touched(
    tmp_path: Path,
) -> None:
    text = (EXAMPLE / "zerodown.yaml").read_text().replace("    restoreEnv: {db: NOTES_DB}\n", "")
    example = Example(tmp_path, text)
    with pytest.raises(RefusedError, match="restoreEnv names no variable for db"):
        run_drill(example.setup())
    assert not (example.state / DRILL_FOLDER).exists()


def test_a_drill_left_by_a_dead_process_is_cleaned_by_the_next(tmp_path: Path) -> None:
    folder = tmp_path / DRILL_FOLDER / "notes-old"
    (folder / "data").mkdir(parents=True)
    dead = psutil.Popen(["true"])
    dead.wait()
    (folder / "drill.json").write_text(json.dumps({"drill_id": "notes-old", "pid": dead.pid}))
    assert clean_stale_drills(tmp_path / DRILL_FOLDER) == ["notes-old"]
    assert not folder.exists()


def test_the_plan_lists_objectives_inventory_order_verification_contacts_and_drills(
    tmp_path: Path,
) -> None:
    example = Example(tmp_path)
    _notes(example.db, "a note")
    record = example.backups.take(example.settings, "db", reason="manual")
    run_drill(example.setup())
    now = dt.datetime.now(dt.UTC)
    markdown = plan_markdown(
        example.spec,
        spec_path=str(tmp_path / "zerodown.yaml"),
        settings=example.settings,
        backups=example.backups.catalogue.list_backups("notes"),  # type: ignore[arg-type]
        drills=drill_history(example.store.list_events("notes", limit=1000)),  # type: ignore[arg-type]
        now=now,
    )
    assert markdown.startswith("# Disaster Recovery Plan: notes\n")
    for heading in (
        "Objectives",
        "Inventory",
        "Restore order",
        "Verification",
        "Contacts",
        "Drills",
    ):
        assert f"\n## {heading}" in markdown
    assert "**RPO** (most data the service may lose): 1h; met now" in markdown
    assert "**RTO** (longest the service may be down): 5m; met by the last drill" in markdown
    assert f"#{record.id} at" in markdown and record.artifacts[0].sha256 in markdown
    assert "keep the last 3, 7 daily, 4 weekly and 6 monthly" in markdown
    assert "| On-call engineer | incident commander | pager: notes-oncall |" in markdown
    assert "GET /notes answers 200" in markdown
