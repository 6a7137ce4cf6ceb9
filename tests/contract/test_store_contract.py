"""The ``Store`` contract: SQLite and PostgreSQL (a real server) pass the same suite.

Each test runs once per backend on an empty database: SQLite in a file under ``tmp_path``,
PostgreSQL in a fresh database on the session's throwaway server. Time comes from a
``FrozenClock`` so timestamps and lock expiry are exact; concurrency tests use real threads and
real processes and wait on barriers and queues with deadlines, never on sleeps.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from zerodown.core.errors import (
    InputError,
    LockHeldError,
    NotFoundError,
    PermanentError,
    TemporaryError,
)
from zerodown.core.types import InstanceId, Revision, ServiceName, Version
from zerodown.store import InstanceRecord, ReleaseStatus, Store, open_store
from zerodown.store.sql import load_migrations
from zerodown.testing import FrozenClock

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
WEB = ServiceName("web")
API = ServiceName("api")
DEADLINE_SECONDS = 60.0


@dataclass
class Backend:
    """Where one parametrised run keeps its data, and a raw view of it."""

    name: str
    url: str
    state_dir: Path

    def open(self, clock: FrozenClock | None = None) -> Store:
        return open_store(self.url, state_dir=self.state_dir, clock=clock)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run ``sql`` straight on the database, bypassing the store; its rows, if any."""
        if self.name == "sqlite":
            path = self.url.removeprefix("sqlite:///")
            with sqlite3.connect(path) as connection:
                return list(connection.execute(sql).fetchall())
        import psycopg

        with psycopg.connect(self.url) as connection:
            cursor = connection.execute(sql)
            return list(cursor.fetchall()) if cursor.description else []


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state' / 'zerodown.db'}"
    else:
        url = request.getfixturevalue("postgres_database_url")
    return Backend(name=request.param, url=url, state_dir=tmp_path / "state")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def store(backend: Backend, clock: FrozenClock) -> Iterator[Store]:
    opened = backend.open(clock)
    yield opened
    opened.close()


def make_release(store: Store, service: ServiceName = WEB, version: str = "v1") -> Any:
    return store.create_release(
        service, version=Version(version), spec_text="spec", spec_hash="hash", strategy="canary"
    )


def make_instance(
    instance_id: str, *, service: ServiceName = WEB, state: str = "running", slot: int = 0
) -> InstanceRecord:
    return InstanceRecord(
        id=InstanceId(instance_id),
        service=service,
        revision=Revision(1),
        version=Version("v1"),
        slot=slot,
        platform="local",
        host="127.0.0.1",
        port=8000 + slot,
        pid=4242,
        started_at=1_700_000_000.25,
        log_path="/var/log/web.log",
        state=state,
        meta={"image": "web:1"},
    )


# services -----------------------------------------------------------------------------------
def test_upsert_service_creates_then_updates_and_keeps_created_at(
    store: Store, clock: FrozenClock
) -> None:
    created = store.upsert_service(WEB, spec_path="a.yaml", spec_text="one")
    clock.advance(10)
    updated = store.upsert_service(
        WEB, spec_path="b.yaml", spec_text="two", desired_state="stopped"
    )

    assert created.created_at == created.updated_at == START
    assert updated.created_at == START
    assert updated.updated_at == START + timedelta(seconds=10)
    assert (updated.spec_path, updated.spec_text, updated.desired_state) == (
        "b.yaml",
        "two",
        "stopped",
    )
    assert store.get_service(WEB) == updated


def test_get_service_of_unknown_name_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="ghost"):
        store.get_service(ServiceName("ghost"))


def test_list_services_returns_every_service_sorted_by_name(store: Store) -> None:
    assert store.list_services() == []
    store.upsert_service(WEB, spec_path="w", spec_text="w")
    store.upsert_service(API, spec_path="a", spec_text="a")

    assert [s.name for s in store.list_services()] == ["api", "web"]


def test_set_desired_state_changes_only_the_desired_state(store: Store, clock: FrozenClock) -> None:
    store.upsert_service(WEB, spec_path="w", spec_text="text")
    clock.advance(5)

    stopped = store.set_desired_state(WEB, "stopped")

    assert stopped.desired_state == "stopped"
    assert stopped.spec_text == "text"
    assert stopped.updated_at == START + timedelta(seconds=5)
    with pytest.raises(NotFoundError):
        store.set_desired_state(ServiceName("ghost"), "stopped")


def test_times_are_aware_utc_datetimes(store: Store) -> None:
    record = store.upsert_service(WEB, spec_path="w", spec_text="w")

    assert record.created_at.tzinfo is not None
    assert record.created_at.utcoffset() == timedelta(0)


# releases -----------------------------------------------------------------------------------
def test_create_release_numbers_revisions_1_2_3_per_service(store: Store) -> None:
    store.upsert_service(WEB, spec_path="w", spec_text="w")
    store.upsert_service(API, spec_path="a", spec_text="a")

    web = [make_release(store, WEB, f"v{i}").revision for i in range(3)]
    api = make_release(store, API).revision

    assert web == [1, 2, 3]
    assert api == 1


def test_create_release_records_what_was_given_as_pending(store: Store) -> None:
    store.upsert_service(WEB, spec_path="w", spec_text="w")

    release = store.create_release(
        WEB, version=Version("v7"), spec_text="text", spec_hash="abc", strategy="bluegreen"
    )

    assert release.status is ReleaseStatus.PENDING
    assert (release.version, release.spec_text, release.spec_hash, release.strategy) == (
        "v7",
        "text",
        "abc",
        "bluegreen",
    )
    assert release.reason == ""
    assert release.state == {}
    assert release.finished_at is None
    assert release.created_at == release.updated_at == START
    assert store.get_release(WEB, Revision(1)) == release


def test_create_release_takes_an_initial_status(store: Store) -> None:
    store.upsert_service(WEB, spec_path="w", spec_text="w")

    release = store.create_release(
        WEB,
        version=Version("v1"),
        spec_text="s",
        spec_hash="h",
        strategy="rolling",
        status=ReleaseStatus.PROGRESSING,
    )

    assert release.status is ReleaseStatus.PROGRESSING


def test_create_release_stores_an_initial_state(store: Store) -> None:
    """A release can be born with its state, so no other writer sees it without."""
    store.upsert_service(ServiceName("web"), spec_path="/x", spec_text="t")
    created = store.create_release(
        ServiceName("web"),
        version=Version("v1"),
        spec_text="t",
        spec_hash="h",
        strategy="canary",
        state={"lock_owner": "alice"},
    )
    assert created.state == {"lock_owner": "alice"}
    again = store.get_release(ServiceName("web"), created.revision)
    assert again.state == {"lock_owner": "alice"}


def test_create_release_for_unknown_service_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="ghost"):
        make_release(store, ServiceName("ghost"))


def test_get_release_of_unknown_revision_raises_not_found(store: Store) -> None:
    store.upsert_service(WEB, spec_path="w", spec_text="w")

    with pytest.raises(NotFoundError):
        store.get_release(WEB, Revision(1))


def test_update_release_sets_status_reason_state_and_finished_time(
    store: Store, clock: FrozenClock
) -> None:
    store.upsert_service(WEB, spec_path="w", spec_text="w")
    make_release(store)
    clock.advance(3)

    progressing = store.update_release(
        WEB, Revision(1), status=ReleaseStatus.PROGRESSING, state={"step": 2, "weights": [95, 5]}
    )
    clock.advance(4)
    rolled_back = store.update_release(
        WEB, Revision(1), status=ReleaseStatus.ROLLED_BACK, reason="error rate 7%", finished=True
    )

    assert progressing.status is ReleaseStatus.PROGRESSING
    assert progressing.updated_at == START + timedelta(seconds=3)
    assert progressing.finished_at is None
    assert rolled_back.status is ReleaseStatus.ROLLED_BACK
    assert rolled_back.reason == "error rate 7%"
    assert rolled_back.state == {"step": 2, "weights": [95, 5]}  # kept: not given this time
    assert rolled_back.finished_at == rolled_back.updated_at == START + timedelta(seconds=7)
    assert rolled_back.created_at == START
    assert store.get_release(WEB, Revision(1)) == rolled_back


def test_update_release_state_replaces_the_whole_mapping(store: Store) -> None:
    store.upsert_service(WEB, spec_path="w", spec_text="w")
    make_release(store)
    store.update_release(WEB, Revision(1), state={"step": 1, "paused": True})

    updated = store.update_release(WEB, Revision(1), state={"step": 2})

    assert updated.state == {"step": 2}


def test_update_of_unknown_release_raises_not_found(store: Store) -> None:
    store.upsert_service(WEB, spec_path="w", spec_text="w")

    with pytest.raises(NotFoundError):
        store.update_release(WEB, Revision(9), status=ReleaseStatus.FAILED)


def test_list_releases_is_newest_first_and_honours_limit(store: Store) -> None:
    store.upsert_service(WEB, spec_path="w", spec_text="w")
    store.upsert_service(API, spec_path="a", spec_text="a")
    for i in range(4):
        make_release(store, WEB, f"v{i}")
    make_release(store, API)

    assert [r.revision for r in store.list_releases(WEB)] == [4, 3, 2, 1]
    assert [r.revision for r in store.list_releases(WEB, limit=2)] == [4, 3]
    assert store.list_releases(ServiceName("ghost")) == []


# events -------------------------------------------------------------------------------------
def test_append_event_returns_the_record_with_increasing_ids(
    store: Store, clock: FrozenClock
) -> None:
    first = store.append_event(WEB, kind="release.created", message="r1", revision=Revision(1))
    clock.advance(1)
    second = store.append_event(API, kind="instance.started", message="i", data={"port": 8001})

    assert second.id > first.id
    assert first.revision == 1
    assert first.ts == START
    assert first.data == {}
    assert second.revision is None
    assert second.data == {"port": 8001}
    assert second.ts == START + timedelta(seconds=1)


def test_list_events_is_oldest_first_with_ids_after_after_id(store: Store) -> None:
    events = [store.append_event(WEB, kind="k", message=str(i)) for i in range(5)]

    assert store.list_events(WEB) == events
    assert [e.message for e in store.list_events(WEB, after_id=events[2].id)] == ["3", "4"]
    assert store.list_events(WEB, after_id=events[-1].id) == []
    assert [e.message for e in store.list_events(WEB, limit=2)] == ["0", "1"]


def test_list_events_filters_by_service_and_revision(store: Store) -> None:
    store.append_event(WEB, kind="k", message="web-1", revision=Revision(1))
    store.append_event(API, kind="k", message="api-1", revision=Revision(1))
    store.append_event(WEB, kind="k", message="web-2", revision=Revision(2))
    store.append_event(WEB, kind="k", message="web-none")

    assert [e.message for e in store.list_events()] == ["web-1", "api-1", "web-2", "web-none"]
    assert [e.message for e in store.list_events(WEB)] == ["web-1", "web-2", "web-none"]
    assert [e.message for e in store.list_events(WEB, revision=Revision(2))] == ["web-2"]
    assert [e.message for e in store.list_events(revision=Revision(1))] == ["web-1", "api-1"]


# instances ----------------------------------------------------------------------------------
def test_save_instance_inserts_then_replaces_by_id(store: Store) -> None:
    original = make_instance("web-1")
    store.save_instance(original)
    replaced = InstanceRecord(
        **{**original.__dict__, "pid": 5151, "restarts": 2, "meta": {"image": "web:2"}}
    )
    store.save_instance(replaced)

    assert store.list_instances(WEB) == [replaced]


def test_list_instances_filters_by_service_and_states(store: Store) -> None:
    store.save_instance(make_instance("web-1", slot=0))
    store.save_instance(make_instance("web-2", slot=1, state="crashed"))
    store.save_instance(make_instance("web-3", slot=2, state="stopped"))
    store.save_instance(make_instance("api-1", service=API))

    def ids(records: list[InstanceRecord]) -> list[str]:
        return [r.id for r in records]

    assert ids(store.list_instances(WEB)) == ["web-1"]  # running by default
    assert ids(store.list_instances(WEB, states=("running", "crashed"))) == ["web-1", "web-2"]
    assert ids(store.list_instances(WEB, states=())) == ["web-1", "web-2", "web-3"]
    assert ids(store.list_instances()) == ["api-1", "web-1"]


def test_instance_fields_survive_the_round_trip(store: Store) -> None:
    record = make_instance("web-1")
    store.save_instance(record)

    (loaded,) = store.list_instances(WEB)

    assert loaded == record
    assert loaded.started_at == 1_700_000_000.25


def test_delete_instance_removes_it_and_ignores_unknown_ids(store: Store) -> None:
    store.save_instance(make_instance("web-1"))

    store.delete_instance(InstanceId("web-1"))
    store.delete_instance(InstanceId("never-existed"))

    assert store.list_instances(WEB, states=()) == []


# locks --------------------------------------------------------------------------------------
def test_acquire_free_lock_records_owner_and_expiry(store: Store) -> None:
    lock = store.acquire_lock("deploy:web", owner="alice", ttl=30)

    assert (lock.name, lock.owner) == ("deploy:web", "alice")
    assert lock.acquired_at == START
    assert lock.expires_at == START + timedelta(seconds=30)
    assert store.get_lock("deploy:web") == lock


def test_same_owner_renews_the_lock_and_keeps_acquired_at(store: Store, clock: FrozenClock) -> None:
    store.acquire_lock("deploy:web", owner="alice", ttl=30)
    clock.advance(20)

    renewed = store.acquire_lock("deploy:web", owner="alice", ttl=30)

    assert renewed.acquired_at == START
    assert renewed.expires_at == START + timedelta(seconds=50)


def test_another_owner_is_refused_with_lock_held_naming_owner_and_expiry(
    store: Store, clock: FrozenClock
) -> None:
    store.acquire_lock("deploy:web", owner="alice", ttl=30)
    clock.advance(29)

    with pytest.raises(LockHeldError) as refused:
        store.acquire_lock("deploy:web", owner="bob", ttl=30)

    assert "alice" in refused.value.message
    assert (START + timedelta(seconds=30)).isoformat() in refused.value.message
    assert store.get_lock("deploy:web").owner == "alice"  # type: ignore[union-attr]


def test_expired_lock_is_taken_over_by_another_owner(store: Store, clock: FrozenClock) -> None:
    store.acquire_lock("deploy:web", owner="alice", ttl=30)
    clock.advance(30)

    assert store.get_lock("deploy:web") is None  # expired means free
    taken = store.acquire_lock("deploy:web", owner="bob", ttl=10)

    assert taken.owner == "bob"
    assert taken.acquired_at == START + timedelta(seconds=30)
    assert taken.expires_at == START + timedelta(seconds=40)


def test_release_lock_frees_it_but_only_for_its_owner(store: Store) -> None:
    store.acquire_lock("deploy:web", owner="alice", ttl=30)

    store.release_lock("deploy:web", owner="bob")  # not bob's: nothing happens
    assert store.get_lock("deploy:web") is not None

    store.release_lock("deploy:web", owner="alice")
    assert store.get_lock("deploy:web") is None
    assert store.acquire_lock("deploy:web", owner="bob", ttl=30).owner == "bob"


def test_locks_with_different_names_are_independent(store: Store) -> None:
    store.acquire_lock("deploy:web", owner="alice", ttl=30)

    assert store.acquire_lock("deploy:api", owner="bob", ttl=30).owner == "bob"


@pytest.mark.parametrize("ttl", [0, -1])
def test_acquire_lock_rejects_a_ttl_that_is_not_positive(store: Store, ttl: float) -> None:
    with pytest.raises(PermanentError, match="ttl"):
        store.acquire_lock("deploy:web", owner="alice", ttl=ttl)


# concurrency --------------------------------------------------------------------------------
THREADS = 8
RELEASES_PER_THREAD = 10


def _create_releases(store: Store, start: threading.Barrier) -> list[int]:
    start.wait(timeout=DEADLINE_SECONDS)
    return [make_release(store).revision for _ in range(RELEASES_PER_THREAD)]


def test_threads_sharing_one_store_get_distinct_revisions(store: Store) -> None:
    """8 threads x 10 create_release on one store: revisions 1..80, none twice."""
    store.upsert_service(WEB, spec_path="w", spec_text="w")
    start = threading.Barrier(THREADS)

    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(_create_releases, store, start) for _ in range(THREADS)]
        revisions = [r for f in futures for r in f.result(timeout=DEADLINE_SECONDS)]

    assert sorted(revisions) == list(range(1, THREADS * RELEASES_PER_THREAD + 1))
    assert len(store.list_releases(WEB, limit=1000)) == THREADS * RELEASES_PER_THREAD


def test_threads_with_a_store_each_get_distinct_revisions(backend: Backend, store: Store) -> None:
    """8 connections racing to allocate revisions (the cross-process case): 1..80, no dupes."""
    store.upsert_service(WEB, spec_path="w", spec_text="w")
    stores = [backend.open() for _ in range(THREADS)]
    start = threading.Barrier(THREADS)
    try:
        with ThreadPoolExecutor(THREADS) as pool:
            futures = [pool.submit(_create_releases, s, start) for s in stores]
            revisions = [r for f in futures for r in f.result(timeout=DEADLINE_SECONDS)]
    finally:
        for each in stores:
            each.close()

    assert sorted(revisions) == list(range(1, THREADS * RELEASES_PER_THREAD + 1))


def _append_events(store: Store, start: threading.Barrier, worker: int) -> list[int]:
    start.wait(timeout=DEADLINE_SECONDS)
    return [store.append_event(WEB, kind="k", message=f"{worker}").id for _ in range(10)]


def test_concurrent_appends_get_unique_ids_in_commit_order(backend: Backend, store: Store) -> None:
    """Each writer sees its own ids increase; the log lists every event once, in id order."""
    stores = [backend.open() for _ in range(4)]
    start = threading.Barrier(len(stores))
    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            futures = [pool.submit(_append_events, s, start, i) for i, s in enumerate(stores)]
            per_writer = [f.result(timeout=DEADLINE_SECONDS) for f in futures]
    finally:
        for each in stores:
            each.close()

    for ids in per_writer:
        assert ids == sorted(ids)
    listed = [e.id for e in store.list_events(WEB)]
    assert listed == sorted(i for ids in per_writer for i in ids)


def _race_for_lock(
    url: str, state_dir: str, start: Any, results: Any, owner: str
) -> None:  # runs in a child process
    try:
        store = open_store(url, state_dir=Path(state_dir))
    except Exception as exc:  # report instead of dying silently
        results.put(f"error: {exc!r}")
        return
    try:
        start.wait(timeout=DEADLINE_SECONDS)
        try:
            store.acquire_lock("deploy:web", owner=owner, ttl=300)
            results.put("won")
        except LockHeldError:
            results.put("refused")
        except Exception as exc:
            results.put(f"error: {exc!r}")
    finally:
        store.close()


def test_processes_racing_for_one_lock_on_a_fresh_database_exactly_one_wins(
    backend: Backend,
) -> None:
    """4 processes open the same new database (migrating it at once) and grab one lock."""
    context = multiprocessing.get_context("spawn")
    processes_count = 4
    start = context.Barrier(processes_count)
    results = context.Queue()
    processes = [
        context.Process(
            target=_race_for_lock,
            args=(backend.url, str(backend.state_dir), start, results, f"proc-{i}"),
        )
        for i in range(processes_count)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = sorted(results.get(timeout=DEADLINE_SECONDS) for _ in processes)
    finally:
        for process in processes:
            process.join(timeout=DEADLINE_SECONDS)
            if process.is_alive():
                process.kill()

    assert outcomes == ["refused"] * (processes_count - 1) + ["won"]
    assert all(p.exitcode == 0 for p in processes)
    migrations = len(load_migrations("sqlite" if backend.name == "sqlite" else "postgresql"))
    assert backend.query("SELECT COUNT(*) FROM schema_version") == [(migrations,)]


# migrations and durability ------------------------------------------------------------------
def test_opening_a_database_twice_applies_each_migration_once(backend: Backend) -> None:
    first = backend.open()
    version = first.schema_version()  # type: ignore[attr-defined]
    first.close()
    second = backend.open()
    try:
        assert second.schema_version() == version  # type: ignore[attr-defined]
    finally:
        second.close()

    dialect = "sqlite" if backend.name == "sqlite" else "postgresql"
    expected = [(m.version,) for m in load_migrations(dialect)]
    assert version == expected[-1][0]
    assert backend.query("SELECT version FROM schema_version ORDER BY version") == expected


def test_data_survives_close_and_reopen(backend: Backend, clock: FrozenClock) -> None:
    store = backend.open(clock)
    store.upsert_service(WEB, spec_path="w", spec_text="w")
    release = make_release(store)
    release = store.update_release(WEB, release.revision, state={"step": 3})
    event = store.append_event(WEB, kind="release.created", message="r1", data={"a": [1, 2]})
    store.save_instance(make_instance("web-1"))
    lock = store.acquire_lock("deploy:web", owner="alice", ttl=60)
    store.close()

    reopened = backend.open(clock)
    try:
        assert reopened.get_release(WEB, Revision(1)) == release
        assert reopened.list_events(WEB) == [event]
        assert reopened.list_instances(WEB) == [make_instance("web-1")]
        assert reopened.get_lock("deploy:web") == lock
        assert make_release(reopened).revision == 2
    finally:
        reopened.close()


def test_a_closed_store_refuses_further_calls(backend: Backend) -> None:
    store = backend.open()
    store.close()
    store.close()  # closing twice is harmless

    with pytest.raises(PermanentError, match="closed"):
        store.list_services()


@pytest.mark.postgres
def test_postgres_store_reports_a_lost_connection_as_temporary_and_reconnects(
    postgres_database_url: str,
) -> None:
    """A server-side disconnect (restart, failover) fails one call, the next one reconnects."""
    import psycopg

    store = open_store(postgres_database_url, state_dir=Path("unused"))
    try:
        store.upsert_service(WEB, spec_path="w", spec_text="w")
        dbname = postgres_database_url.rsplit("/", 1)[1]
        with psycopg.connect(postgres_database_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            ).fetchall()
        assert killed == [(True,)]

        with pytest.raises(TemporaryError):
            store.list_services()
        assert [s.name for s in store.list_services()] == ["web"]
    finally:
        store.close()


def test_a_database_migrated_by_a_newer_zerodown_is_refused(backend: Backend) -> None:
    backend.open().close()
    backend.query(
        "INSERT INTO schema_version (version, name, applied_at) VALUES (9999, 'future', 0)"
    )

    with pytest.raises(InputError, match="newer"):
        backend.open()
