"""Each backup and restore asked for writes one Deployment Operations Report, with real SQLite
backups: a backup (with its check after), a failed backup (the error names the report), a
restore beside the live data, a restore over it (the report says users now see old data), and
a refused restore (nothing done, no report)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.integration.backup.helpers import PASSWORD, flip_byte, spec_text
from tests.unit.report.checks import assert_valid_report
from zerodown.backup.operations import ReportSink, ServiceBackups
from zerodown.core.errors import OperationFailedError, RefusedError
from zerodown.core.types import ServiceName
from zerodown.report.render import render_from_json
from zerodown.store import SqliteStore

pytestmark = pytest.mark.integration

TARGETS = """
- {name: db, kind: sqlite, path: ./app.db}
- {name: missing, kind: sqlite, path: ./missing.db}
"""


def notes(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [row[0] for row in db.execute("SELECT text FROM note ORDER BY rowid")]
    finally:
        db.close()


def add_note(path: Path, text: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS note (text TEXT)")
        db.execute("INSERT INTO note VALUES (?)", (text,))
    db.close()


@pytest.fixture
def service(tmp_path: Path) -> tuple[ServiceBackups, Path]:
    (tmp_path / "backup.key").write_text(PASSWORD + "\n")
    text = spec_text(TARGETS)
    (tmp_path / "zerodown.yaml").write_text(text)
    store = SqliteStore(tmp_path / "state" / "zerodown.db")
    store.upsert_service(
        ServiceName("web"), spec_path=str(tmp_path / "zerodown.yaml"), spec_text=text
    )
    reports = tmp_path / ".claude" / "context" / "deployment"
    backups = ServiceBackups(
        store,
        state_dir=tmp_path / "state",
        reports=ReportSink(folder=lambda name: reports, instances=lambda name: []),
    )
    return backups, reports


def english(markdown_path: Path) -> str:
    twin = json.loads(markdown_path.with_suffix(".json").read_text())
    return render_from_json(twin, lang="en", chart_name=None)


def test_backup_and_restore_reports(service: tuple[ServiceBackups, Path], tmp_path: Path) -> None:
    backups, reports = service
    live = tmp_path / "app.db"
    add_note(live, "first")

    taken = backups.backup_operation("web", target="db")
    assert taken["ok"]
    (record,) = taken["backups"]
    assert record["verify_status"] == "ok"  # checked after it was taken
    report = Path(taken["report"]["markdown"])
    assert_valid_report(report)
    text = english(report)
    assert "Backup (operation backup)" in text and "not a deployment" in text
    assert f"backup #{record['id']} re-read after it was taken: database sha256 matches" in text
    assert record["artifacts"][0]["sha256"] in text

    add_note(live, "second")
    beside = backups.restore_operation("web", record["id"], destination=None, force=False)
    copy = Path(beside["restore"]["destination"])
    assert notes(copy) == ["first"] and notes(live) == ["first", "second"]
    text = english(Path(beside["report"]["markdown"]))
    assert "no user affected: a restore (an operation, not a deployment)" in text
    assert str(copy) in text

    # Over the live data: refused without force (no report), replaced with it (reported).
    count = len(list(reports.glob("*.md")))
    with pytest.raises(RefusedError, match="--force"):
        backups.restore_operation("web", record["id"], destination=str(live), force=False)
    assert len(list(reports.glob("*.md"))) == count
    over = backups.restore_operation("web", record["id"], destination=str(live), force=True)
    assert over["restore"]["replaced_live"] and notes(live) == ["first"]
    report = Path(over["report"]["markdown"])
    assert_valid_report(report)
    text = english(report)
    assert "the live data was replaced" in text and "changes written after the backup" in text
    assert "replaced on request (--force)" in text


def test_a_failed_backup_writes_a_failure_report_and_names_it(
    service: tuple[ServiceBackups, Path],
) -> None:
    backups, reports = service
    with pytest.raises(OperationFailedError, match=r"does not exist \(report: .*\.md\)") as info:
        backups.backup_operation("web", target="missing")
    path = Path(info.value.message.rsplit("(report: ", 1)[1].rstrip(")"))
    assert path.parent == reports
    assert_valid_report(path)
    text = english(path)
    assert text.count("Failed: Backup (an operation on the service's data") == 1
    assert "the backup failed (the live service was not affected)" in text
    assert "- [ ] fix the backup and run it again" in text


def test_a_restore_of_a_corrupted_backup_fails_writes_nothing_and_reports_it(
    service: tuple[ServiceBackups, Path], tmp_path: Path
) -> None:
    backups, _ = service
    add_note(tmp_path / "app.db", "first")
    (record,) = backups.backup_operation("web", target="db", verify=False)["backups"]
    flip_byte(Path(record["artifacts"][0]["location"]))
    with pytest.raises(OperationFailedError, match=r"corrupted.*\(report: .*\.md\)") as info:
        backups.restore_operation("web", record["id"], destination=None, force=False)
    path = Path(info.value.message.rsplit("(report: ", 1)[1].rstrip(")"))
    assert_valid_report(path)
    text = english(path)
    assert f"the restore of backup #{record['id']} failed and wrote nothing" in text
    assert "find out why the restore failed" in text
    assert not (tmp_path / f"app.restored-{record['id']}.db").exists()
