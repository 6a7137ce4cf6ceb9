"""The monitor's series in the store: downsampling to one-minute aggregates, retention per
service, staleness, reading back across both resolutions, and writing that never stalls.

The store is the SQLite store in memory (``MemoryStore``), the same code as on disk; to make it
refuse or lose its connection, ``FlakyTables`` wraps it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest

from zerodown.core.errors import OperationFailedError, TemporaryError
from zerodown.core.samples import MetricSample
from zerodown.monitor import history as history_module
from zerodown.monitor.history import SeriesHistory
from zerodown.ops import promql
from zerodown.ops.series import is_stale_marker
from zerodown.store.monitor import SeriesKey
from zerodown.testing import MemoryStore

T0 = 1_700_000_040.0  # a whole minute
HOUR = 3600.0


def gauge(value: float, service: str = "web", name: str = "temp", **labels: str) -> MetricSample:
    return MetricSample(name=name, value=value, labels={"service": service, **labels})


def counter(value: float, service: str = "web") -> MetricSample:
    return MetricSample(name="hits_total", value=value, kind="counter", labels={"service": service})


def keep(
    history: SeriesHistory, now: float, *, raw: dict[str, float] | None = None
) -> dict[str, int]:
    return history.housekeeping(
        now=now,
        raw_retention=raw or {},
        retention={},
        default_raw_retention=6 * HOUR,
        default_retention=7 * 24 * HOUR,
    )


def test_complete_minutes_become_aggregates_with_count_sum_min_max_and_last() -> None:
    store = MemoryStore()
    history = SeriesHistory(store, memory_retention=HOUR)
    for i in range(12):  # every 15 s for three minutes: 0, 1 ... 11
        history.record("web", [gauge(float(i))], T0 + 15 * i)
    history.flush()
    done = keep(history, T0 + 170)  # the third minute is not complete yet
    assert done["minutes_rolled_up"] == 2
    rollups = store.read_rollups(since=T0, until=T0 + HOUR, service="web")
    assert [(r.minute - T0, r.samples, r.total, r.low, r.high, r.last) for r in rollups] == [
        (0.0, 4, 0 + 1 + 2 + 3, 0, 3, 3),
        (60.0, 4, 4 + 5 + 6 + 7, 4, 7, 7),
    ]
    assert rollups[1].last_ts == T0 + 105
    assert keep(history, T0 + 185)["minutes_rolled_up"] == 1  # then the third, once


def test_raw_samples_go_after_their_service_s_raw_retention_only_once_rolled_up() -> None:
    store = MemoryStore()
    history = SeriesHistory(store, memory_retention=HOUR)
    for i in range(8):
        history.record("web", [gauge(i, "web")], T0 + 15 * i)
        history.record("api", [gauge(i, "api")], T0 + 15 * i)
    history.flush()
    nothing_rolled = store.trim_samples(
        raw_before={"web": T0 + HOUR},
        rollups_before={},
        default_raw_before=T0 + HOUR,
        default_rollups_before=T0,
    )
    assert nothing_rolled == (0, 0)
    keep(history, T0 + 125, raw={"web": 90.0})  # web keeps 90 s of raw samples, api 6 h
    web = store.read_samples(since=0, until=T0 + HOUR, service="web")
    api = store.read_samples(since=0, until=T0 + HOUR, service="api")
    assert [r.ts - T0 for r in web] == [45.0, 60.0, 75.0, 90.0, 105.0]
    assert len(api) == 8


def test_reading_back_uses_aggregates_where_the_samples_are_gone_then_the_samples() -> None:
    store = MemoryStore()
    history = SeriesHistory(store, memory_retention=HOUR)
    for i in range(40):  # a counter growing by 10 every 15 s for 10 minutes
        history.record("web", [counter(10.0 * i), gauge(float(i % 4))], T0 + 15 * i)
    history.flush()
    keep(history, T0 + 600, raw={"web": 150.0})
    [hits, temp] = sorted(
        history.read(service="web", since=T0, until=T0 + 600), key=lambda s: s.kind
    )
    assert hits.kind == "counter" and temp.kind == "gauge"
    times = [t - T0 for t, _ in hits.points]
    # one point per minute (the minute's last sample) while only aggregates are left ...
    assert times[:7] == [45.0, 105.0, 165.0, 225.0, 285.0, 345.0, 405.0]
    # ... then every sample
    assert times[7:] == [450.0 + 15 * k for k in range(10)]
    assert [v for _, v in hits.points][:2] == [30.0, 70.0]  # a counter's last value
    assert [v for _, v in temp.points][:2] == [1.5, 1.5]  # a gauge's mean


def test_a_series_that_disappears_is_ended_and_stays_ended_after_a_restart() -> None:
    store = MemoryStore()
    history = SeriesHistory(store, memory_retention=HOUR)
    history.record("web", [gauge(1, instance="a"), gauge(2, instance="b")], T0)
    assert history.record("web", [gauge(1, instance="a")], T0 + 15) == 1
    history.flush()

    def instant(h: SeriesHistory) -> list[str]:
        return [s.label_map["instance"] for s in promql.evaluate_vector("temp", h.memory, T0 + 20)]

    assert instant(history) == ["a"]
    restarted = SeriesHistory(store, memory_retention=HOUR)
    assert restarted.restore(now=T0 + 20) == 4
    assert instant(restarted) == ["a"]
    ended = [
        r for r in store.read_samples(since=0, until=T0 + 60, service="web") if r.value is None
    ]
    assert len(ended) == 1 and ended[0].ts == T0 + 15
    [b] = [
        s
        for s in restarted.read(service="web", since=T0, until=T0 + 60)
        if s.label_map["instance"] == "b"
    ]
    assert is_stale_marker(b.points[-1][1]) and b.points[0] == (T0, 2.0)


def test_aggregates_past_retention_go_and_series_left_empty_are_forgotten() -> None:
    store = MemoryStore()
    history = SeriesHistory(store, memory_retention=HOUR)
    history.record("web", [gauge(1, name="old")], T0)
    history.flush()
    keep(history, T0 + 61)
    assert len(store.read_rollups(since=0, until=T0 + HOUR, service="web")) == 1
    done = history.housekeeping(
        now=T0 + 3 * HOUR,
        raw_retention={"web": HOUR},
        retention={"web": 2 * HOUR},
        default_raw_retention=6 * HOUR,
        default_retention=7 * 24 * HOUR,
    )
    assert done["samples_dropped"] == 1 and done["minutes_dropped"] == 1
    assert done["series_forgotten"] == 1
    history.record("web", [gauge(5, name="old")], T0 + 3 * HOUR)  # comes back under a new id
    assert history.flush() == 1
    assert [r.value for r in store.read_samples(since=0, until=T0 + 4 * HOUR, service="web")] == [
        5.0
    ]


def test_without_a_store_the_history_reads_from_memory() -> None:
    history = SeriesHistory(None, memory_retention=HOUR)
    history.record("web", [counter(1.0), counter(2.0, "api")], T0)
    assert history.flush() == 0
    [only] = history.read(service="web", since=T0 - 1, until=T0 + 1)
    assert only.points == [(T0, 1.0)] and not math.isnan(only.points[0][1])


class FlakyTables:
    """The in-memory store, made to refuse every batch holding a sample of a metric named in
    ``refuse`` (as a database refuses a batch), or to be unreachable while ``down``."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.refuse: set[str] = set()
        self.down = False
        self.writes = 0
        self._names: dict[int, str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def ping(self) -> None:
        if self.down:
            raise TemporaryError("connection refused", retry_after=1.0)

    def series_ids(self, series: Sequence[SeriesKey]) -> dict[str, int]:
        self.ping()
        ids = self.store.series_ids(series)
        self._names.update({ids[s.key]: s.name for s in series})
        return ids

    def write_samples(self, rows: Sequence[tuple[int, float, float | None]]) -> None:
        self.writes += 1
        self.ping()
        if any(self._names.get(row[0]) in self.refuse for row in rows):
            raise OperationFailedError("value out of range")
        self.store.write_samples(rows)


def stored(store: Any, name: str) -> list[float | None]:
    rows = store.read_samples(since=0, until=T0 + HOUR, service="web", names=[name])
    return [r.value for r in rows]


def test_two_samples_of_one_series_in_one_round_keep_the_last() -> None:
    store = MemoryStore()
    history = SeriesHistory(store, memory_retention=HOUR)
    history.record("web", [gauge(1.0), gauge(2.0, name="other"), gauge(3.0)], T0)
    assert history.flush() == 2
    assert stored(store, "temp") == [3.0]
    [(_, points)] = history.memory.select(
        [promql.LabelMatcher.create("__name__", "=", "temp")], start=0, end=T0
    )
    assert points == [(T0, 3.0)]


def test_a_batch_the_store_refuses_costs_only_the_refused_samples() -> None:
    tables = FlakyTables()
    tables.refuse = {"bad"}
    history = SeriesHistory(tables, memory_retention=HOUR)  # type: ignore[arg-type]
    for i in range(3):
        history.record("web", [gauge(float(i)), gauge(9.0, name="bad")], T0 + 15 * i)
    assert history.flush() == 3
    assert stored(tables.store, "temp") == [0.0, 1.0, 2.0]
    assert history.dropped["refused"] == 3 and history.queued == 0
    tables.refuse = set()
    history.record("web", [gauge(5.0), gauge(9.0, name="bad")], T0 + 60)
    assert history.flush() == 2 and stored(tables.store, "bad") == [9.0]


def test_a_store_that_cannot_be_reached_keeps_the_samples_until_it_answers() -> None:
    tables = FlakyTables()
    tables.down = True
    history = SeriesHistory(tables, memory_retention=HOUR)  # type: ignore[arg-type]
    for i in range(6):
        history.record("web", [gauge(float(i))], T0 + 15 * i)
        assert history.flush() == 0
    assert history.queued == 6 and history.dropped["refused"] == 0
    tables.down = False
    assert history.flush() == 6 and stored(tables.store, "temp") == [float(i) for i in range(6)]


def test_the_queue_limit_holds_whatever_the_store_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history_module, "MAX_PENDING_ROWS", 4)
    tables = FlakyTables()
    tables.down = True
    history = SeriesHistory(tables, memory_retention=HOUR)  # type: ignore[arg-type]
    for i in range(6):
        history.record("web", [gauge(float(i))], T0 + 15 * i)
        history.flush()
    assert history.queued == 4 and history.dropped["queue_full"] == 2
    tables.down = False
    assert history.flush() == 4 and stored(tables.store, "temp") == [2.0, 3.0, 4.0, 5.0]


def test_a_series_with_labels_too_long_to_store_stays_in_memory_only() -> None:
    store = MemoryStore()
    history = SeriesHistory(store, memory_retention=HOUR)
    history.record("web", [gauge(1.0, path="x" * 3000), gauge(2.0, name="ok")], T0)
    assert history.flush() == 1
    assert stored(store, "temp") == [] and stored(store, "ok") == [2.0]
    assert history.dropped["labels_too_long"] == 1
    assert len(promql.evaluate_vector("temp", history.memory, T0)) == 1


def test_series_no_longer_sampled_are_forgotten_with_their_samples() -> None:
    history = SeriesHistory(MemoryStore(), memory_retention=HOUR)
    for deploy in range(50):  # every deploy brings instances with new ids
        history.record("web", [gauge(1.0, instance=f"web-{deploy}")], T0 + 60 * deploy)
    history.flush()
    assert history.tracked == 50
    keep(history, T0 + 60 * 49 + HOUR - 30)
    assert history.tracked == history.memory.series_count() < 50
    keep(history, T0 + 60 * 49 + HOUR + 1)
    assert history.tracked == history.memory.series_count() == 0
