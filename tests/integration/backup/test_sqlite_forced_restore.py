"""A forced SQLite restore into the live database is judged by its content, not its file.

The backup API writes the backup's pages into the live database anew (in WAL mode partly into
the ``-wal`` file), so the live file's digest is not the artifact's even when every row is
right. The restore must say the data matches when it does, and that it differs when it does
not, and the operation's report must agree."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.integration.backup.helpers import PASSWORD, open_backups, settings_for, spec_text
from tests.integration.backup.test_round_trips import dump, make_database, sha256
from zerodown.backup.operations import ServiceBackups
from zerodown.core.types import ServiceName
from zerodown.store import SqliteStore

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal"])
def test_a_forced_restore_into_the_live_database_matches_by_content(
    tmp_path: Path, wal: bool
) -> None:
    database = tmp_path / "app.db"
    make_database(database, wal=wal)
    settings = settings_for(tmp_path, "- {name: db, kind: sqlite, path: ./app.db}")
    store, backups = open_backups(tmp_path)
    try:
        before = dump(database)
        record = backups.take(settings, "db")
        app = sqlite3.connect(database)  # the application keeps its connection open
        app.execute("DELETE FROM item WHERE id % 3 = 0")
        app.commit()
        report = backups.restore(settings, record.id, destination=str(database), force=True)
        assert dump(database) == before
        assert report.matches and report.compared == "content"
        assert report.to_dict()["matches"] is True
        assert report.sha256 == report.details.get("expected_content_sha256")
        assert report.details.get("file_sha256") == sha256(database)
        app.close()
    finally:
        store.close()


def test_the_restore_report_passes_the_digest_check_of_a_forced_wal_restore(
    tmp_path: Path,
) -> None:
    (tmp_path / "backup.key").write_text(PASSWORD + "\n")
    text = spec_text("- {name: db, kind: sqlite, path: ./app.db}")
    (tmp_path / "zerodown.yaml").write_text(text)
    make_database(tmp_path / "app.db", wal=True)
    store = SqliteStore(tmp_path / "state" / "zerodown.db")
    store.upsert_service(
        ServiceName("web"), spec_path=str(tmp_path / "zerodown.yaml"), spec_text=text
    )
    service = ServiceBackups(store, state_dir=tmp_path / "state")
    try:
        (record,) = service.backup_operation("web")["backups"]
        with sqlite3.connect(tmp_path / "app.db") as app:
            app.execute("DELETE FROM item WHERE id > 100")
        app.close()
        done = service.restore_operation(
            "web", record["id"], destination=str(tmp_path / "app.db"), force=True
        )
        assert done["restore"]["matches"] is True and done["restore"]["compared"] == "content"
        events = [e for e in store.list_events(ServiceName("web"))]
        finished = [e for e in events if e.kind == "backup.operation.finished"][-1]
        assert finished.data["status"] == "succeeded"
    finally:
        store.close()
