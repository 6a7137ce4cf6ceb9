"""The monitor's tables (migration 0003) behave alike on SQLite and a real PostgreSQL.

Each test runs once per backend on an empty database: series ids, samples replacing samples,
minute aggregates (late samples included), retention per service, silences, the notification
log and the saved alert states.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zerodown.store import open_store
from zerodown.store.monitor import (
    AlertStateRecord,
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


def test_two_samples_of_one_series_at_one_time_in_one_write_keep_the_last(
    tables: MonitorTables,
) -> None:
    """PostgreSQL refuses an upsert touching one row twice; the store keeps the last given."""
    ids = tables.series_ids([key("restarts_total", "web", "counter"), key("temp", "web")])
    restarts, temp = ids[key("restarts_total", "web").key], ids[key("temp", "web").key]
    tables.write_samples([(restarts, T0, 1.0), (temp, T0, 5.0), (restarts, T0, 3.0)])
    rows = tables.read_samples(since=0, until=T0 + 1, service="web")
    assert sorted((r.key, r.value) for r in rows) == [
        (key("restarts_total", "web").key, 3.0),
        (key("temp", "web").key, 5.0),
    ]


def test_samples_written_after_their_minute_was_rolled_up_are_added_to_it(
    tables: MonitorTables,
) -> None:
    """Samples that waited in the monitor's queue while the store was away still count."""
    sid = tables.series_ids([key("temp", "web")])[key("temp", "web").key]
    tables.write_samples([(sid, T0 + 10, 4.0), (sid, T0 + 20, 6.0)])
    assert tables.roll_up_samples(until=T0 + 130, horizon=T0 - 3600) == 1
    # late: two more in the first minute (one replacing a stored value), two in the second
    tables.write_samples(
        [(sid, T0 + 30, 1.0), (sid, T0 + 20, 8.0), (sid, T0 + 70, 2.0), (sid, T0 + 80, None)]
    )
    tables.write_samples([(sid, T0 + 75, 9.0)])
    tables.write_samples([(sid, T0 + 75, 9.0)])  # written again: counted once
    first, second = tables.read_rollups(since=T0, until=T0 + 3600, service="web")
    assert (first.samples, first.total, first.low, first.high, first.last, first.last_ts) == (
        3,
        4.0 + 8.0 + 1.0,
        1.0,
        8.0,
        1.0,
        T0 + 30,
    )
    assert (second.samples, second.total, second.low, second.high, second.last) == (
        2,
        11.0,
        2.0,
        9.0,
        9.0,
    )
    assert tables.roll_up_samples(until=T0 + 130, horizon=T0 - 3600) == 0
    tables.write_samples([(sid, T0 + 10, None)])  # a value taken back leaves the minute
    [first, _] = tables.read_rollups(since=T0, until=T0 + 3600, service="web")
    assert (first.samples, first.total) == (2, 9.0)


def test_alert_states_are_saved_per_scope_and_replaced(tables: MonitorTables) -> None:
    firing = AlertStateRecord(
        scope="web",
        rule_id="r1",
        rule="HighErrorRate",
        fingerprint="f1",
        labels=(("alertname", "HighErrorRate"), ("service", "web")),
        annotations=(("summary", "web fails"),),
        state="firing",
        value=float("nan"),
        active_at=T0,
        fired_at=T0 + 60,
        resolved_at=None,
        keep_firing_since=None,
    )
    host = AlertStateRecord(**{**firing.__dict__, "scope": "", "value": 0.5, "fired_at": None})
    tables.save_alert_states("web", [firing])
    tables.save_alert_states("", [host])
    [saved_host, saved_web] = tables.alert_states()
    assert saved_host == host
    assert saved_web.labels == firing.labels and saved_web.fired_at == T0 + 60
    assert saved_web.value != saved_web.value  # NaN comes back as NaN
    tables.save_alert_states("web", [])
    assert tables.alert_states() == [host]
