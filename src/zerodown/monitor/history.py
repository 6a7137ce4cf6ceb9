"""The monitor's time series: in memory for the alert rules, in the store for queries.

Every sample goes to two places:

- ``memory``, a ``SeriesStore`` holding the last couple of hours (at least the longest range
  any rule reads), which the rule evaluator queries at every evaluation;
- the store (``store/monitor.py``), written once per sampling round in one transaction:
  samples at full resolution for the service's ``rawRetention``, and one-minute aggregates
  (count, sum, min, max, last) for its ``retention``, made by ``housekeeping``.

A series that a scope reported last time and not this time is ended with a staleness marker
(kept in the store as NULL), as Prometheus does when a target stops exposing a series. At
start, ``restore`` loads the recent samples back into memory, so rules over ``rate(...[5m])``
have their data right after a controller restart.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from zerodown.core.errors import ZerodownError
from zerodown.core.samples import MetricSample
from zerodown.ops.series import METRIC_NAME, STALE_NAN, LabelSet, SeriesStore
from zerodown.ops.series import label_set as make_label_set
from zerodown.store.monitor import MonitorTables, SeriesKey

__all__ = ["SeriesHistory", "StoredSeries", "series_key"]

log = logging.getLogger(__name__)

MAX_PENDING_ROWS: Final = 200_000
"""Samples kept for the store while it cannot be written (then the oldest are dropped)."""


def series_key(labels: LabelSet) -> str:
    """The canonical JSON text of a label set (what the store names a series by)."""
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class StoredSeries:
    """One series read back from the store: labels, kind, samples sorted by time (a NaN that is
    a staleness marker ends the series there)."""

    labels: LabelSet
    kind: str
    points: list[tuple[float, float]]

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


class SeriesHistory:
    """Samples in memory and in the store; used by the monitor's thread only, except ``read``."""

    def __init__(self, records: MonitorTables | None, *, memory_retention: float) -> None:
        self.records = records
        self.memory = SeriesStore(retention=memory_retention)
        self._ids: dict[str, int] = {}
        self._pending: list[tuple[SeriesKey, float, float | None]] = []
        self._reported: dict[str, set[LabelSet]] = {}
        self._kinds: dict[LabelSet, str] = {}

    # writing ------------------------------------------------------------------------------
    def record(self, source: str, samples: Iterable[MetricSample], ts: float) -> int:
        """Add one round of ``source``'s samples taken at ``ts``; series it reported last round
        but not now are ended. Returns how many series ended."""
        now_reported: set[LabelSet] = set()
        for sample in samples:
            labels = make_label_set({**sample.labels, METRIC_NAME: sample.name})
            value = float(sample.value)
            if math.isnan(value):
                continue
            now_reported.add(labels)
            self._kinds[labels] = sample.kind
            self.memory.append_series(labels, value, ts)
            self._queue(labels, sample.kind, ts, value)
        ended = self._reported.get(source, set()) - now_reported
        for labels in ended:
            self.memory.append_series(labels, STALE_NAN, ts)
            self._queue(labels, self._kinds.get(labels, "gauge"), ts, None)
        self._reported[source] = now_reported
        return len(ended)

    def forget_source(self, source: str, ts: float) -> None:
        """End every series of ``source`` (its service is gone)."""
        self.record(source, (), ts)
        self._reported.pop(source, None)

    def _queue(self, labels: LabelSet, kind: str, ts: float, value: float | None) -> None:
        if self.records is None:
            return
        as_map = dict(labels)
        key = SeriesKey(
            key=series_key(labels),
            name=as_map.get(METRIC_NAME, ""),
            service=as_map.get("service", ""),
            kind=kind,
        )
        self._pending.append((key, ts, value))

    def flush(self) -> int:
        """Write the queued samples to the store; how many. A store that fails keeps them
        queued (up to ``MAX_PENDING_ROWS``) for the next round."""
        if self.records is None or not self._pending:
            return 0
        pending = self._pending
        try:
            unknown = [key for key, _, _ in pending if key.key not in self._ids]
            if unknown:
                self._ids.update(self.records.series_ids(unknown))
            rows = [(self._ids[key.key], ts, value) for key, ts, value in pending]
            self.records.write_samples(rows)
        except ZerodownError as exc:
            if len(pending) > MAX_PENDING_ROWS:
                del pending[: len(pending) - MAX_PENDING_ROWS]
            log.warning("monitor samples not written yet (%d queued): %s", len(pending), exc)
            return 0
        self._pending = []
        return len(rows)

    # reading back --------------------------------------------------------------------------
    def restore(self, *, now: float) -> int:
        """Load the store's recent full-resolution samples into memory; how many."""
        if self.records is None:
            return 0
        rows = self.records.read_samples(since=now - self.memory.retention, until=now, service=None)
        for row in rows:
            labels = _labels(row.key)
            self.memory.append_series(labels, STALE_NAN if row.value is None else row.value, row.ts)
            self._kinds[labels] = row.kind
        return len(rows)

    def read(
        self, *, service: str | None, since: float, until: float, names: Sequence[str] = ()
    ) -> list[StoredSeries]:
        """Series of ``service`` between ``since`` and ``until`` from the store: one-minute
        aggregates (the last value of counters, the mean of gauges) where the full-resolution
        samples are gone, the samples themselves after that."""
        if self.records is None:
            return self._read_memory(service=service, since=since, until=until, names=names)
        raw = self.records.read_samples(since=since, until=until, service=service, names=names)
        rollups = self.records.read_rollups(
            since=since - 60.0, until=until, service=service, names=names
        )
        found: dict[str, StoredSeries] = {}
        first_raw: dict[str, float] = {}
        for row in raw:
            series = found.get(row.key)
            if series is None:
                series = found[row.key] = StoredSeries(_labels(row.key), row.kind, [])
                first_raw[row.key] = row.ts
            series.points.append((row.ts, STALE_NAN if row.value is None else row.value))
        older: dict[str, list[tuple[float, float]]] = {}
        for rollup in rollups:
            if rollup.last_ts < since or rollup.last_ts >= first_raw.get(rollup.key, math.inf):
                continue
            value = rollup.last if rollup.kind == "counter" else rollup.mean
            older.setdefault(rollup.key, []).append((rollup.last_ts, value))
            if rollup.key not in found:
                found[rollup.key] = StoredSeries(_labels(rollup.key), rollup.kind, [])
        for key, points in older.items():
            found[key].points[:0] = points
        return sorted(found.values(), key=lambda s: s.labels)

    def _read_memory(
        self, *, service: str | None, since: float, until: float, names: Sequence[str]
    ) -> list[StoredSeries]:
        wanted = set(names)
        out = []
        for labels, points in self.memory.select([], start=since, end=until):
            as_map = dict(labels)
            if service is not None and as_map.get("service", "") != service:
                continue
            if wanted and as_map.get(METRIC_NAME) not in wanted:
                continue
            out.append(StoredSeries(labels, self._kinds.get(labels, "gauge"), points))
        return out

    # housekeeping -------------------------------------------------------------------------
    def housekeeping(
        self,
        *,
        now: float,
        raw_retention: Mapping[str, float],
        retention: Mapping[str, float],
        default_raw_retention: float,
        default_retention: float,
    ) -> dict[str, int]:
        """Roll complete minutes up, drop what is past retention (per service), forget empty
        series, and trim memory. Figures of what was done, for the log."""
        self.memory.trim(now)
        if self.records is None:
            return {}
        longest = max([default_retention, *retention.values()])
        minutes = self.records.roll_up_samples(until=now, horizon=now - longest)
        raw_gone, rollups_gone = self.records.trim_samples(
            raw_before={s: now - r for s, r in raw_retention.items()},
            rollups_before={s: now - r for s, r in retention.items()},
            default_raw_before=now - default_raw_retention,
            default_rollups_before=now - default_retention,
        )
        pruned = self.records.prune_series()
        if pruned:
            gone = set(pruned)
            self._ids = {key: sid for key, sid in self._ids.items() if sid not in gone}
        return {
            "minutes_rolled_up": minutes,
            "samples_dropped": raw_gone,
            "minutes_dropped": rollups_gone,
            "series_forgotten": len(pruned),
        }


def _labels(key: str) -> LabelSet:
    return make_label_set({str(k): str(v) for k, v in json.loads(key).items()})
