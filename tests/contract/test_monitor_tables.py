"""The monitor's tables (migration 0003) behave alike on SQLite and a real PostgreSQL.

Each test runs once per backend on an empty database: series ids, samples replacing samples,
minute aggregates, retention per service, silences and the notification log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zerodown.store import open_store
from zerodown.store.monitor import (
    MonitorTables,
    NotificationLogRecord,
    SeriesKey,
    SilenceRecord,
)

T0 = 1_700_000_040.0  # a whole minute


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def tables(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MonitorTables]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'zerodown.db'}"
    else:
        url = request.getfixturevalue("postgres_database_url")
    store = open_store(url, state_dir=tmp_path)
    assert isinstance(store, MonitorTables)
    yield store
    store.close()


def key(name: str, service: str, kind: str = "gauge") -> SeriesKey:
    return SeriesKey(
        key=f'{{"__name__":"{name}","service":"{service}"}}', name=name, service=service, kind=kind
    )


def test_series_get_one_id_each_and_samples_at_a_known_time_are_replaced(
    tables: MonitorTables,
) -> None:
    web, api = key("temp", "web"), key("hits_total", "api", "counter")
    ids = tables.series_ids([web, api, web])
    assert sorted(ids) == sorted([web.key, api.key]) and len(set(ids.values())) == 2
    assert tables.series_ids([web]) == {web.key: ids[web.key]}
    many = [(ids[web.key], T0 + i, float(i)) for i in range(450)]  # several INSERT chunks
    tables.write_samples([*many, (ids[api.key], T0, 1.0), (ids[api.key], T0 + 5, None)])
    tables.write_samples([(ids[web.key], T0, 99.0)])
    rows = tables.read_samples(since=T0, until=T0 + 1000, service="web")
    assert len(rows) == 450 and rows[0].value == 99.0 and rows[-1].ts == T0 + 449
    api_rows = tables.read_samples(since=0, until=T0 + 10, service="api", names=["hits_total"])
    assert [(r.kind, r.value) for r in api_rows] == [("counter", 1.0), ("counter", None)]
    assert tables.read_samples(since=0, until=T0 + 10, service="api", names=["other"]) == []
    assert len(tables.read_samples(since=0, until=T0 + 1000, service=None)) == 452


def test_minutes_roll_up_once_and_retention_applies_per_service(tables: MonitorTables) -> None:
    ids = tables.series_ids([key("temp", "web"), key("temp", "api")])
    web, api = ids[key("temp", "web").key], ids[key("temp", "api").key]
    tables.write_samples(
        [(sid, T0 + 15 * i, float(i)) for sid in (web, api) for i in range(8)]
        + [(web, T0 + 130, None)]
    )
    assert tables.roll_up_samples(until=T0 + 150, horizon=T0 - 3600) == 4
    assert tables.roll_up_samples(until=T0 + 150, horizon=T0 - 3600) == 0
    [first, second] = tables.read_rollups(since=T0, until=T0 + 3600, service="web")
    assert (first.samples, first.total, first.low, first.high, first.last, first.last_ts) == (
        4,
        6.0,
        0.0,
        3.0,
        3.0,
        T0 + 45,
    )
    assert second.mean == pytest.approx(5.5)
    raw, minutes = tables.trim_samples(
        raw_before={"web": T0 + 60},
        rollups_before={"web": T0 + 30},
        default_raw_before=T0,
        default_rollups_before=T0,
    )
    assert (raw, minutes) == (4, 1)
    assert len(tables.read_samples(since=0, until=T0 + 3600, service="web")) == 5
    assert len(tables.read_samples(since=0, until=T0 + 3600, service="api")) == 8
    tables.trim_samples(
        raw_before={"web": T0 + 3600},
        rollups_before={"web": T0 + 3600},
        default_raw_before=T0 + 3600,
        default_rollups_before=T0 + 3600,
    )
    assert len(tables.read_samples(since=0, until=T0 + 3600, service=None)) == 1  # not rolled
    assert tables.prune_series() == [api]


def test_silences_and_the_notification_log_are_kept_and_forgotten(tables: MonitorTables) -> None:
    silence = SilenceRecord(
        id="s1",
        matchers=(("service", "=", "web"), ("alertname", "=~", "High.*")),
        starts_at=T0,
        ends_at=T0 + 3600,
        created_by="ops",
        comment="known",
    )
    tables.save_silence(silence)
    tables.save_silence(SilenceRecord(**{**silence.__dict__, "ends_at": T0 + 60}))
    assert tables.list_silences() == [SilenceRecord(**{**silence.__dict__, "ends_at": T0 + 60})]
    assert tables.delete_silences(ended_before=T0 + 61) == 1
    assert tables.list_silences() == []

    entry = NotificationLogRecord(
        scope="web",
        group_key='{}:{alertname="A"}',
        receiver="team",
        integration=0,
        firing=("b", "a"),
        resolved=(),
        at=T0,
    )
    tables.save_notification_log([entry, NotificationLogRecord(**{**entry.__dict__, "scope": ""})])
    tables.save_notification_log(
        [NotificationLogRecord(**{**entry.__dict__, "resolved": ("a",), "at": T0 + 9})]
    )
    saved = tables.notification_log()
    assert [(e.scope, e.firing, e.resolved, e.at) for e in saved] == [
        ("", ("a", "b"), (), T0),
        ("web", ("a", "b"), ("a",), T0 + 9),
    ]
    assert tables.delete_notification_log(before=T0 + 1) == 1
    assert len(tables.notification_log()) == 1
