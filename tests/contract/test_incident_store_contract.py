"""The incident log contract: SQLite and PostgreSQL (a real server) keep incidents alike.

Each test runs once per backend on an empty database, with a ``FrozenClock`` so the recorded
times are exact. The race test opens one key from several threads, each with its own store
(its own connection), released together by a barrier.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from zerodown.core.errors import InputError, NotFoundError
from zerodown.core.types import ServiceName
from zerodown.store import Store, open_store
from zerodown.store.incidents import IncidentLog, NewStage
from zerodown.testing import FrozenClock

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EPOCH = START.timestamp()
DEADLINE_SECONDS = 60.0


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'zerodown.db'}"
    return str(request.getfixturevalue("postgres_database_url"))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


def _open(url: str, tmp_path: Path, clock: FrozenClock | None = None) -> Any:
    store: Store = open_store(url, state_dir=tmp_path / "state", clock=clock)
    assert isinstance(store, IncidentLog)
    return store


@pytest.fixture
def log(url: str, tmp_path: Path, clock: FrozenClock) -> Iterator[Any]:
    store = _open(url, tmp_path, clock)
    yield store
    store.close()


def _detected(offset: float = 0.0, who: str = "monitor") -> NewStage:
    return NewStage(stage="detected", at=EPOCH + offset, who=who, note="fired")


def _new(log: Any, key: str = "fp-1", service: str = "web", **kw: Any) -> Any:
    arguments: dict[str, Any] = {
        "service": service,
        "key": key,
        "source": "alert:HighErrorRate",
        "severity": "SEV2",
        "title": "HighErrorRate",
        "revision": None,
        "started_at": EPOCH - 30,
        "detected": _detected(),
    }
    arguments.update(kw)
    return log.open_incident(**arguments)


def test_an_opened_incident_round_trips_every_field_and_its_stages(log: Any) -> None:
    record, created = log.open_incident(
        service="web",
        key="rollback:web:2",
        source="rollback:2",
        severity="SEV3",
        title="revision 2 rolled back",
        revision=2,
        started_at=EPOCH - 4,
        detected=_detected(0, "zerodown judge (thresholds)"),
        later=[
            NewStage(stage="mitigated", at=EPOCH + 0.5, who="rollback", note="switched"),
            NewStage(stage="recovered", at=EPOCH + 2, who="rollback"),
        ],
        details={"reason": "error rate", "verdict": {"measurements": [1, 2]}},
        impact={"measured": True, "requests": 60},
    )
    assert created
    assert record.id >= 1 and record.stage == "recovered" and not record.is_open
    assert (record.service, record.key, record.source) == ("web", "rollback:web:2", "rollback:2")
    assert (record.severity, record.revision) == ("SEV3", 2)
    assert record.started_at == START - timedelta(seconds=4)
    assert record.detected_at == START and record.detected_at.tzinfo is not None
    assert [s.stage for s in record.stages] == ["detected", "mitigated", "recovered"]
    assert record.at("mitigated") == START + timedelta(seconds=0.5)
    assert record.reached("mitigated").note == "switched"
    assert record.reached("recovered").note is None
    assert record.reached("assessed") is None
    assert record.details == {"reason": "error rate", "verdict": {"measurements": [1, 2]}}
    assert record.impact == {"measured": True, "requests": 60}
    assert record.postmortem_path is None
    assert log.get_incident(record.id) == record


def test_opening_a_key_that_is_open_returns_it_and_a_recovered_key_opens_anew(log: Any) -> None:
    first, created = _new(log)
    again, created_again = _new(log, severity="SEV4", title="other")
    assert created and not created_again
    assert again == first
    assert log.find_incident("fp-1") == first

    moved = log.advance_incident(
        first.id,
        expected_stage="detected",
        move=NewStage(stage="recovered", at=EPOCH + 60, who="monitor"),
    )
    assert moved is not None and moved.stage == "recovered"
    assert log.find_incident("fp-1") is None
    assert log.find_incident("fp-1", open_only=False) == moved
    second, created_second = _new(log)
    assert created_second and second.id > first.id


def test_advance_is_compare_and_set_on_the_stage_the_caller_saw(
    log: Any, clock: FrozenClock
) -> None:
    record, _ = _new(log)
    clock.advance(5)
    moved = log.advance_incident(
        record.id,
        expected_stage="detected",
        move=NewStage(stage="assessed", at=EPOCH + 5, who="alice", note="on it"),
        impact={"measured": False, "reason": "later"},
    )
    assert moved is not None
    assert moved.stage == "assessed" and moved.reached("assessed").who == "alice"
    assert moved.impact == {"measured": False, "reason": "later"}
    assert moved.reached("assessed").recorded_at == START + timedelta(seconds=5)
    stale = log.advance_incident(
        record.id,
        expected_stage="detected",
        move=NewStage(stage="mitigated", at=EPOCH + 6, who="bob"),
    )
    assert stale is None
    assert log.get_incident(record.id) == moved
    with pytest.raises(NotFoundError, match="incident 9999"):
        log.advance_incident(
            9999, expected_stage="detected", move=NewStage(stage="assessed", at=EPOCH, who="x")
        )
    with pytest.raises(InputError, match="unknown incident stage"):
        log.advance_incident(
            record.id, expected_stage="assessed", move=NewStage(stage="done", at=EPOCH, who="x")
        )


def test_listing_is_newest_first_by_service_and_open_state_with_a_limit(log: Any) -> None:
    a, _ = _new(log, key="a", service="web")
    b, _ = _new(log, key="b", service="api")
    c, _ = _new(log, key="c", service="web")
    log.advance_incident(
        a.id, expected_stage="detected", move=NewStage(stage="recovered", at=EPOCH + 1, who="m")
    )
    assert [r.id for r in log.list_incidents()] == [c.id, b.id, a.id]
    assert [r.id for r in log.list_incidents("web")] == [c.id, a.id]
    assert [r.id for r in log.list_incidents("web", open_only=True)] == [c.id]
    assert [r.id for r in log.list_incidents(limit=2)] == [c.id, b.id]
    listed = {r.id: r for r in log.list_incidents()}
    assert listed[a.id] == log.get_incident(a.id)  # stages come along with a list
    assert log.list_incidents("nosuch") == []


def test_unknown_ids_are_not_found(log: Any) -> None:
    with pytest.raises(NotFoundError, match="incident 42 not found"):
        log.get_incident(42)
    with pytest.raises(NotFoundError):
        log.set_incident_postmortem(42, "/tmp/x.md")
    with pytest.raises(NotFoundError):
        log.incident_snapshot(42)


def test_postmortem_path_impact_and_the_snapshot_are_kept(log: Any) -> None:
    record, _ = _new(log, snapshot={"service": "web", "groups": {"r1": {"requests": 5}}})
    assert log.incident_snapshot(record.id) == {
        "service": "web",
        "groups": {"r1": {"requests": 5}},
    }
    updated = log.set_incident_postmortem(record.id, "/srv/pm/postmortem-INC-1-web.md")
    assert updated.postmortem_path == "/srv/pm/postmortem-INC-1-web.md"
    updated = log.set_incident_impact(record.id, {"measured": True, "errors": 3})
    assert updated.impact == {"measured": True, "errors": 3}
    other, _ = _new(log, key="other")
    assert log.incident_snapshot(other.id) is None


def test_events_between_returns_one_services_events_in_a_time_window(
    log: Any, clock: FrozenClock
) -> None:
    web = ServiceName("web")
    log.append_event(web, kind="a", message="at 0")
    clock.advance(10)
    inside = log.append_event(web, kind="b", message="at 10", data={"x": 1})
    log.append_event(ServiceName("api"), kind="c", message="other service")
    clock.advance(10)
    log.append_event(web, kind="d", message="at 20")
    found = log.events_between("web", start=EPOCH + 5, end=EPOCH + 15)
    assert found == [inside]


def test_racing_opens_of_one_key_create_exactly_one_incident(url: str, tmp_path: Path) -> None:
    _open(url, tmp_path).close()  # migrate first: the race is about incidents, not schemas
    workers = 6
    barrier = threading.Barrier(workers, timeout=DEADLINE_SECONDS)

    def open_one(_: int) -> tuple[int, bool]:
        store = _open(url, tmp_path)
        try:
            barrier.wait()
            record, created = _new(store, key="same")
            return record.id, created
        finally:
            store.close()

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(open_one, range(workers), timeout=DEADLINE_SECONDS))
    assert len({incident for incident, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    check = _open(url, tmp_path)
    try:
        assert len(check.list_incidents()) == 1
    finally:
        check.close()


def test_incidents_survive_close_and_reopen(url: str, tmp_path: Path, clock: FrozenClock) -> None:
    store = _open(url, tmp_path, clock)
    record, _ = _new(store)
    store.close()
    reopened = _open(url, tmp_path, clock)
    try:
        assert reopened.get_incident(record.id) == record
        assert reopened.find_incident("fp-1") == record
    finally:
        reopened.close()
