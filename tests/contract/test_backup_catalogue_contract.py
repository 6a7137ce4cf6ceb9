"""The backup catalogue contract: SQLite and PostgreSQL (a real server) pass the same suite.

A backup is a ``running`` row first and becomes ``succeeded`` in one statement; a backup that is
no longer running can never be completed; ids are never reused; verification and pruning are
stamped on the row. Time comes from a ``FrozenClock`` so durations are exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from zerodown.core.errors import InputError, NotFoundError, OperationFailedError
from zerodown.core.types import Revision, ServiceName, Version
from zerodown.store import open_store
from zerodown.store.backups import BackupArtifact, BackupCatalogue, BackupStatus
from zerodown.testing import FrozenClock

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
WEB = ServiceName("web")
API = ServiceName("api")
DUMP = BackupArtifact(
    name="dump", location="/backups/web/db/1-db.pgdump", size_bytes=1234, sha256="ab" * 32
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'zerodown.db'}"
    value: str = request.getfixturevalue("postgres_database_url")
    return value


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def catalogue(url: str, tmp_path: Path, clock: FrozenClock) -> Iterator[BackupCatalogue]:
    store = open_store(url, state_dir=tmp_path / "state", clock=clock)
    assert isinstance(store, BackupCatalogue)
    try:
        yield store
    finally:
        store.close()


def begin(catalogue: BackupCatalogue, service: ServiceName = WEB, target: str = "db") -> int:
    record = catalogue.begin_backup(
        service, target=target, kind="postgresql", reason="manual", owner="host:1:1"
    )
    return record.id


def test_a_backup_is_running_until_completed_in_one_step(
    catalogue: BackupCatalogue, clock: FrozenClock
) -> None:
    record = catalogue.begin_backup(
        WEB,
        target="db",
        kind="postgresql",
        reason="before deploy",
        owner="host:1:1",
        release_revision=Revision(3),
        release_version=Version("v3"),
        meta={"source": "postgresql://app@127.0.0.1/app"},
    )
    assert record.status == BackupStatus.RUNNING
    assert record.artifacts == () and record.finished_at is None and record.size_bytes is None
    assert not record.good
    clock.advance(2.5)
    done = catalogue.complete_backup(
        record.id, artifacts=[DUMP], tools={"pg_dump": "15.18"}, meta={"extra": 1}
    )
    assert done.status == BackupStatus.SUCCEEDED and done.good
    assert done.size_bytes == 1234
    assert done.duration_s == pytest.approx(2.5)
    assert done.finished_at == START + timedelta(seconds=2.5)
    assert done.artifacts == (DUMP,)
    assert done.tools == {"pg_dump": "15.18"}
    assert done.release_revision == 3 and done.release_version == "v3"
    assert done.meta == {"source": "postgresql://app@127.0.0.1/app", "extra": 1}
    assert catalogue.get_backup(record.id) == done


def test_a_backup_that_is_not_running_cannot_be_completed(catalogue: BackupCatalogue) -> None:
    backup_id = begin(catalogue)
    abandoned = catalogue.fail_backup(
        backup_id, error="process died", status=BackupStatus.ABANDONED
    )
    assert abandoned.status == BackupStatus.ABANDONED and abandoned.error == "process died"
    with pytest.raises(OperationFailedError, match="abandoned"):
        catalogue.complete_backup(backup_id, artifacts=[DUMP], tools={})
    assert catalogue.get_backup(backup_id).artifacts == ()
    # Failing it again changes nothing: the first outcome stands.
    again = catalogue.fail_backup(backup_id, error="other")
    assert again.status == BackupStatus.ABANDONED and again.error == "process died"


def test_a_completed_backup_cannot_fail_afterwards(catalogue: BackupCatalogue) -> None:
    backup_id = begin(catalogue)
    catalogue.complete_backup(backup_id, artifacts=[DUMP], tools={})
    assert catalogue.fail_backup(backup_id, error="late").status == BackupStatus.SUCCEEDED
    with pytest.raises(OperationFailedError):
        catalogue.complete_backup(backup_id, artifacts=[DUMP], tools={})


def test_listing_is_newest_first_and_filters(catalogue: BackupCatalogue) -> None:
    first = begin(catalogue)
    second = begin(catalogue, target="files")
    third = begin(catalogue, API)
    catalogue.complete_backup(first, artifacts=[DUMP], tools={})
    assert [b.id for b in catalogue.list_backups()] == [third, second, first]
    assert [b.id for b in catalogue.list_backups(WEB)] == [second, first]
    assert [b.id for b in catalogue.list_backups(WEB, target="db")] == [first]
    running = catalogue.list_backups(statuses=(BackupStatus.RUNNING,))
    assert [b.id for b in running] == [third, second]
    assert [b.id for b in catalogue.list_backups(limit=1)] == [third]
    with pytest.raises(InputError):
        catalogue.list_backups(limit=-1)


def test_ids_are_never_reused_and_unknown_ids_are_not_found(catalogue: BackupCatalogue) -> None:
    ids = [begin(catalogue) for _ in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    with pytest.raises(NotFoundError):
        catalogue.get_backup(ids[-1] + 1000)
    with pytest.raises(NotFoundError):
        catalogue.record_verification(ids[-1] + 1000, status="ok", detail={})


def test_verification_is_stamped_and_corruption_makes_a_backup_not_good(
    catalogue: BackupCatalogue, clock: FrozenClock
) -> None:
    backup_id = begin(catalogue)
    catalogue.complete_backup(backup_id, artifacts=[DUMP], tools={})
    clock.advance(60)
    checked = catalogue.record_verification(backup_id, status="ok", detail={"n": 1})
    assert checked.verify_status == "ok" and checked.good
    assert checked.verified_at == START + timedelta(seconds=60)
    bad = catalogue.record_verification(backup_id, status="corrupted", detail={"why": "digest"})
    assert bad.verify_status == "corrupted" and not bad.good
    assert bad.verify_detail == {"why": "digest"}
    with pytest.raises(InputError):
        catalogue.record_verification(backup_id, status="fine", detail={})


def test_pruning_keeps_the_row_as_history(catalogue: BackupCatalogue) -> None:
    backup_id = begin(catalogue)
    with pytest.raises(OperationFailedError, match="running"):
        catalogue.mark_backup_pruned(backup_id, reason="retention")
    catalogue.complete_backup(backup_id, artifacts=[DUMP], tools={})
    pruned = catalogue.mark_backup_pruned(backup_id, reason="keepLast 3")
    assert pruned.status == BackupStatus.PRUNED and not pruned.good
    assert pruned.meta["pruned"]["reason"] == "keepLast 3"
    assert catalogue.mark_backup_pruned(backup_id, reason="again").meta["pruned"]["reason"] == (
        "keepLast 3"
    )


def test_a_removal_is_marked_pruning_before_the_artifacts_go(
    catalogue: BackupCatalogue, clock: FrozenClock
) -> None:
    """Retention writes ``pruning`` (with why) before deleting anything, ``pruned`` after;
    the reason and the first time stay, the removal's time and detail are added."""
    backup_id = begin(catalogue)
    with pytest.raises(OperationFailedError, match="running"):
        catalogue.begin_prune(backup_id, reason="retention: keep the last 1")
    catalogue.complete_backup(backup_id, artifacts=[DUMP], tools={})
    marked = catalogue.begin_prune(backup_id, reason="retention: keep the last 1")
    assert marked.status == BackupStatus.PRUNING and not marked.good
    assert marked.meta["pruned"]["reason"] == "retention: keep the last 1"
    assert marked.meta["pruned"]["was"] == "succeeded"
    assert catalogue.list_backups(WEB, statuses=(BackupStatus.PRUNING,)) == [marked]
    assert catalogue.begin_prune(backup_id, reason="again") == marked  # unchanged
    clock.advance(5)
    done = catalogue.mark_backup_pruned(backup_id, reason="ignored", detail={"freed_bytes": 7})
    assert done.status == BackupStatus.PRUNED
    pruned = done.meta["pruned"]
    assert pruned["reason"] == "retention: keep the last 1"
    assert pruned["removed_at"] == pruned["at"] + 5
    assert pruned["detail"] == {"freed_bytes": 7}
    assert done.artifacts == marked.artifacts  # the row keeps what it held, as history


def test_the_catalogue_survives_reopening(url: str, tmp_path: Path) -> None:
    store = open_store(url, state_dir=tmp_path / "state")
    assert isinstance(store, BackupCatalogue)
    backup_id = begin(store)
    store.complete_backup(backup_id, artifacts=[DUMP], tools={"x": "1"})
    store.close()
    again = open_store(url, state_dir=tmp_path / "state")
    assert isinstance(again, BackupCatalogue)
    try:
        assert again.get_backup(backup_id).artifacts == (DUMP,)
    finally:
        again.close()
