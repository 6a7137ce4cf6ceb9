"""Disaster recovery through the real CLI and a real controller, on the example notes service
(examples/notes: one SQLite file): ``zerodown dr plan`` and ``zerodown dr drill``.

The drill restores the newest backup into a scratch folder, starts the app on it beside the
live service, smoke-tests it, reports RTO and RPO with numbers, passes, and leaves nothing
behind: no process of the drill (the fixture also checks every process of the state directory
at teardown) and no scratch file. Its report follows the seed's template.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import psutil
import pytest

from tests.fixtures.net import free_port
from tests.fixtures.zerodown import EXAMPLES, Controller, Env, wait_until
from tests.unit.report.checks import assert_valid_report
from zerodown.backup.dr import DRILL_FOLDER, DRILL_MARKER_ENV

pytestmark = pytest.mark.integration


def notes_example(folder: Path) -> Path:
    """examples/notes in ``folder``, listening on a free port, with a database of two notes."""
    shutil.copy(EXAMPLES / "notes" / "app.py", folder / "app.py")
    text = (EXAMPLES / "notes" / "zerodown.yaml").read_text()
    text = text.replace("listen: 127.0.0.1:8090", f"listen: 127.0.0.1:{free_port()}")
    spec = folder / "zerodown.yaml"
    spec.write_text(text)
    (folder / "data").mkdir()
    with sqlite3.connect(folder / "data" / "notes.db") as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, at REAL, text TEXT NOT NULL)")
        db.executemany("INSERT INTO notes (at, text) VALUES (0, ?)", [("one",), ("two",)])
    db.close()
    return spec


def serving(env: Env, revision: int) -> bool:
    history = env.cli("history", "notes", "--json").json()["releases"]
    return any(r["revision"] == revision and r["status"] == "succeeded" for r in history)


def drill_processes() -> list[int]:
    found = []
    for proc in psutil.process_iter():
        try:
            if DRILL_MARKER_ENV in proc.environ() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def test_dr_plan_and_drill_through_the_cli(controller: Controller, tmp_path: Path) -> None:
    env = controller.env
    spec = notes_example(tmp_path)
    assert env.cli("up", str(spec), "--version", "v1").code == 0
    wait_until(lambda: serving(env, 1), timeout=90, what="notes to serve")

    # Before any backup, the plan says the RPO cannot be met and the drill fails.
    plan = env.cli("dr", "plan", "notes", "--json")
    assert plan.code == 0, plan.stderr
    assert "**not met**: no good backup of db" in plan.json()["markdown"]
    failed = env.cli("dr", "drill", "notes", "--json")
    assert failed.code == 1, failed.stdout + failed.stderr
    assert failed.json().get("status") == "failed", failed.stdout
    assert "no good backup" in failed.json()["reason"]

    backup = env.cli("backup", "run", "notes", "--json")
    assert backup.code == 0, backup.stderr
    (taken,) = backup.json()["backups"]

    drill = env.cli("dr", "drill", "notes", "--json", timeout=300)
    assert drill.code == 0, drill.stdout + drill.stderr
    result = drill.json()
    assert result["status"] == "passed", result["reason"]
    assert isinstance(result["rto_s"], float) and 0 < result["rto_s"] < result["duration_s"]
    assert isinstance(result["rpo_s"], float) and result["rpo_s"] >= 0
    assert result["rto_met"] is True and result["rpo_met"] is True
    assert result["rto_target_s"] == 300.0 and result["rpo_target_s"] == 3600.0
    (target,) = result["targets"]
    assert target["backup_id"] == taken["id"]
    assert target["sha256"] == taken["artifacts"][0]["sha256"]
    assert result["cleanup"]["ok"], result["cleanup"]
    # Nothing left behind: no process, no scratch folder; the live service still serves.
    assert not drill_processes()
    assert list((env.home / DRILL_FOLDER).iterdir()) == []
    assert serving(env, 1)
    report = Path(result["report"]["markdown"])
    assert report.parent == tmp_path / ".claude" / "context" / "deployment"
    assert_valid_report(report)
    text = report.read_text()
    assert "DR Drill" in text and "not a deployment" in text

    # The human form prints the measured objectives.
    again = env.cli("dr", "drill", "notes")
    assert again.code == 0, again.stdout + again.stderr
    assert "DR drill of notes PASSED" in again.stdout
    assert (
        "(objective 5.0 min: met)" in again.stdout and "(objective 60.0 min: met)" in again.stdout
    )

    # The plan now knows the backup and the drills; it is written beside the reports.
    plan = env.cli("dr", "plan", "notes", "--json")
    assert plan.code == 0, plan.stderr
    written = Path(plan.json()["path"])
    assert written == tmp_path / ".claude" / "context" / "deployment" / "dr" / "plan-notes.md"
    markdown = written.read_text()
    assert f"#{taken['id']} at" in markdown
    assert "met by the last drill" in markdown and "| passed |" in markdown
    out = tmp_path / "plan.md"
    assert env.cli("dr", "plan", "notes", "--out", str(out)).code == 0
    assert out.read_text().startswith("# Disaster Recovery Plan: notes")

    # Bad input and unknown services.
    assert env.cli("dr", "plan", "notes", "--out", str(tmp_path / "plan.txt")).code == 2
    assert env.cli("dr", "drill", "nope").code == 2
