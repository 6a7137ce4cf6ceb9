"""``rollback --with-data`` keeps what it replaces and never leaves a half-restored service.

Real SQLite databases and a real catalogue: two targets with pre-deployment backups (the
"v1" data), then "v2" writes to both. The rollback takes a safety backup of each target first,
switches traffic (here a callback that records what it saw) before restoring, and restores.
When the second restore fails (its backup's file is corrupted), the first target is put back
from its safety backup and the error says what state each target is in.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.integration.backup.helpers import PASSWORD, flip_byte, spec_text
from zerodown.backup.operations import BEFORE_DEPLOY_REASON, SAFETY_REASON, ServiceBackups
from zerodown.core.errors import OperationFailedError
from zerodown.core.types import ServiceName
from zerodown.store import SqliteStore
from zerodown.store.backups import BackupRecord

pytestmark = pytest.mark.integration

TARGETS = """
- {name: orders, kind: sqlite, path: ./orders.db, beforeDeploy: true}
- {name: users, kind: sqlite, path: ./users.db, beforeDeploy: true}
"""


def rows(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [row[0] for row in db.execute("SELECT text FROM note ORDER BY rowid")]
    finally:
        db.close()


def write(path: Path, text: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS note (text TEXT)")
        db.execute("INSERT INTO note VALUES (?)", (text,))
    db.close()


@pytest.fixture
def setup(tmp_path: Path) -> tuple[ServiceBackups, SqliteStore, list[BackupRecord]]:
    """Both databases with v1 data, their pre-deployment backups (the plan), then v2 data."""
    (tmp_path / "backup.key").write_text(PASSWORD + "\n")
    text = spec_text(TARGETS)
    (tmp_path / "zerodown.yaml").write_text(text)
    store = SqliteStore(tmp_path / "state" / "zerodown.db")
    store.upsert_service(
        ServiceName("web"), spec_path=str(tmp_path / "zerodown.yaml"), spec_text=text
    )
    service = ServiceBackups(store, state_dir=tmp_path / "state")
    settings = service.settings("web")
    plan = []
    for name in ("orders", "users"):
        write(tmp_path / f"{name}.db", f"{name} v1")
        plan.append(service.backups.take(settings, name, reason=BEFORE_DEPLOY_REASON))
        write(tmp_path / f"{name}.db", f"{name} written by v2")
    return service, store, plan


def test_safety_backups_come_first_then_the_switch_then_the_restores(
    setup: tuple[ServiceBackups, SqliteStore, list[BackupRecord]], tmp_path: Path
) -> None:
    service, store, plan = setup
    seen: dict[str, Any] = {}

    def switch() -> str:
        seen["safety"] = [
            b.id for b in store.list_backups(ServiceName("web")) if b.reason == SAFETY_REASON
        ]
        seen["orders"] = rows(tmp_path / "orders.db")
        return "traffic flipped to revision 1"

    outcome = service.rollback_with_data("web", plan, to_revision=1, who="ops", switch=switch)
    safety = outcome["safety_backups"]
    assert [b["target"] for b in safety] == ["orders", "users"]
    assert all(b["reason"] == SAFETY_REASON and b["status"] == "succeeded" for b in safety)
    assert sorted(seen["safety"]) == sorted(b["id"] for b in safety)  # taken before the switch
    assert seen["orders"] == ["orders v1", "orders written by v2"]  # restored after it
    assert outcome["switched"] == "traffic flipped to revision 1"
    assert rows(tmp_path / "orders.db") == ["orders v1"]
    assert rows(tmp_path / "users.db") == ["users v1"]
    assert all(f"#{b['id']}" in outcome["message"] for b in safety)
    # What the rollback replaced is in the safety backups.
    settings = service.settings("web")
    kept = service.backups.restore(settings, safety[0]["id"])
    assert rows(Path(kept.destination)) == ["orders v1", "orders written by v2"]
    (event,) = [e for e in store.list_events(ServiceName("web")) if e.kind.startswith("rollback.")]
    assert event.kind == "rollback.data_restored" and event.revision == 1
    assert event.data["safety_backups"] == {b["target"]: b["id"] for b in safety}


def test_a_failed_second_restore_puts_the_first_back_and_says_where_each_target_is(
    setup: tuple[ServiceBackups, SqliteStore, list[BackupRecord]], tmp_path: Path
) -> None:
    service, store, plan = setup
    flip_byte(Path(plan[1].artifacts[0].location))  # the users backup will not restore
    with pytest.raises(OperationFailedError) as failed:
        service.rollback_with_data("web", plan, to_revision=1, who="ops", switch=lambda: "ok")
    message = failed.value.message
    safety = {
        b.target: b for b in store.list_backups(ServiceName("web")) if b.reason == SAFETY_REASON
    }
    assert f"orders: put back from safety backup #{safety['orders'].id}" in message
    assert f"users: the restore of backup #{plan[1].id} failed" in message
    assert f"safety backup #{safety['users'].id}" in message
    assert "traffic was switched to revision 1" in message
    # Nothing half-restored: both hold what they held before the rollback.
    assert rows(tmp_path / "orders.db") == ["orders v1", "orders written by v2"]
    assert rows(tmp_path / "users.db") == ["users v1", "users written by v2"]
    events = [e for e in store.list_events(ServiceName("web")) if e.kind == "rollback.data_failed"]
    assert len(events) == 1 and len(events[0].data["states"]) == 2


def test_a_failed_safety_backup_changes_nothing(
    setup: tuple[ServiceBackups, SqliteStore, list[BackupRecord]], tmp_path: Path
) -> None:
    service, _, plan = setup
    (tmp_path / "users.db").rename(tmp_path / "elsewhere.db")
    switched: list[bool] = []
    with pytest.raises(OperationFailedError, match="safety backup of users failed"):
        service.rollback_with_data(
            "web", plan, to_revision=1, who="ops", switch=lambda: str(switched.append(True))
        )
    assert switched == []
    assert rows(tmp_path / "orders.db") == ["orders v1", "orders written by v2"]
