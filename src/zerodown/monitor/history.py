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

Writing never stalls on one bad sample. Two samples of one series in one round keep the last;
a series whose labels are too long for the store (``MAX_SERIES_KEY_BYTES``) stays in memory
only; while the store cannot be reached the samples wait in a queue (at most
``MAX_PENDING_ROWS``, then the oldest go); and a batch the store refuses is written in halves,
then halves of halves, so that only the samples it refuses are dropped. Every sample that never
reaches the store is counted in ``dropped`` by reason (the monitor exposes it as
``zerodown_monitor_samples_dropped_total``) and each distinct cause is logged once.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from zerodown.core.errors import TemporaryError
from zerodown.core.samples import MetricSample
from zerodown.ops.series import METRIC_NAME, STALE_NAN, LabelSet, SeriesStore
from zerodown.ops.series import label_set as make_label_set
from zerodown.store.monitor import MAX_SERIES_KEY_BYTES, MonitorTables, SeriesKey

__all__ = ["DROP_REASONS", "SeriesHistory", "StoredSeries", "series_key"]

log = logging.getLogger(__name__)

MAX_PENDING_ROWS: Final = 200_000
"""Samples kept for the store while it cannot be written (then the oldest are dropped)."""
ISOLATE_AFTER: Final = 3
"""Rounds in a row a write may fail as "temporarily" before the monitor asks whether the store
answers at all; if it does, the batch itself is at fault and is written piece by piece."""
ISOLATION_WRITES: Final = 64
"""Most writes spent in one round looking for the samples a store refuses; what is still
unwritten then is dropped, so that later rounds are not held up."""
MAX_LOGGED_CAUSES: Final = 1000

DROP_REASONS: Final = {
    "refused": "the store refused them",
    "queue_full": "the store was away longer than the queue lasts",
    "labels_too_long": "their series' labels are too long to store",
}
"""Why samples never reached the store (``SeriesHistory.dropped``)."""


class _Pending(NamedTuple):
    key: SeriesKey
    ts: float
    value: float | None


@dataclass
class _Known:
    """A series seen lately: how the store names it (None if its labels are too long for the
    store), its kind, and when it was last sampled (it is forgotten with its samples)."""

    key: SeriesKey | None
    kind: str
    last_ts: float


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
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        """Samples that never reached the store, by reason (``DROP_REASONS``)."""
        self._ids: dict[str, int] = {}
        self._pending: list[_Pending] = []
        self._reported: dict[str, set[LabelSet]] = {}
        self._known: dict[LabelSet, _Known] = {}
        self._failed_rounds = 0
        self._logged: set[str] = set()

    @property
    def queued(self) -> int:
        """Samples waiting to be written to the store."""
        return len(self._pending)

    @property
    def tracked(self) -> int:
        """Series whose kind and store id are remembered (those sampled within retention)."""
        return len(self._known)

    # writing ------------------------------------------------------------------------------
    def record(self, source: str, samples: Iterable[MetricSample], ts: float) -> int:
        """Add one round of ``source``'s samples taken at ``ts``; series it reported last round
        but not now are ended. Returns how many series ended."""
        now_reported: dict[LabelSet, tuple[float, str]] = {}
        for sample in samples:
            labels = make_label_set({**sample.labels, METRIC_NAME: sample.name})
            value = float(sample.value)
            if math.isnan(value):
                continue
            if labels in now_reported:
                self._log_once(
                    f"twice:{source}:{sample.name}",
                    "monitor: %s gave two samples of one %s series in one round; the last "
                    "one is kept (labels %s)",
                    source,
                    sample.name,
                    series_key(labels),
                )
            now_reported[labels] = (value, sample.kind)
        for labels, (value, kind) in now_reported.items():
            known = self._remember(labels, kind, ts)
            self.memory.append_series(labels, value, ts)
            self._queue(known, ts, value)
        ended = self._reported.get(source, set()) - now_reported.keys()
        for labels in ended:
            self.memory.append_series(labels, STALE_NAN, ts)
            self._queue(self._remember(labels, None, ts), ts, None)
        self._reported[source] = set(now_reported)
        return len(ended)

    def forget_source(self, source: str, ts: float) -> None:
        """End every series of ``source`` (its service is gone)."""
        self.record(source, (), ts)
        self._reported.pop(source, None)

    def _remember(self, labels: LabelSet, kind: str | None, ts: float) -> _Known:
        known = self._known.get(labels)
        if known is None or (kind is not None and known.kind != kind):
            kind = kind or "gauge"
            known = self._known[labels] = _Known(self._store_key(labels, kind), kind, ts)
        known.last_ts = max(known.last_ts, ts)
        return known

    def _store_key(self, labels: LabelSet, kind: str) -> SeriesKey | None:
        text = series_key(labels)
        as_map = dict(labels)
        name = as_map.get(METRIC_NAME, "")
        size = len(text.encode())
        if size > MAX_SERIES_KEY_BYTES:
            self._log_once(
                f"long:{name}",
                "monitor: a %s series has labels %d bytes long, more than the %d bytes the "
                "store takes; it is kept in memory for the rules but not stored (labels: %s...)",
                name,
                size,
                MAX_SERIES_KEY_BYTES,
                text[:200],
            )
            return None
        return SeriesKey(key=text, name=name, service=as_map.get("service", ""), kind=kind)

    def _queue(self, known: _Known, ts: float, value: float | None) -> None:
        if self.records is None:
            return
        if known.key is None:
            self.dropped["labels_too_long"] += 1
            return
        self._pending.append(_Pending(known.key, ts, value))

    def flush(self) -> int:
        """Write the queued samples to the store; how many were written.

        A store that cannot be reached keeps them queued for the next round (up to
        ``MAX_PENDING_ROWS``); a batch the store refuses is written piece by piece and only
        the samples it refuses are dropped."""
        if self.records is None or not self._pending:
            return 0
        pending, self._pending = self._pending, []
        written = 0
        try:
            written = self._write(pending)
            pending = []
            if self._failed_rounds:
                log.info(
                    "monitor samples written again after %d failed rounds", self._failed_rounds
                )
            self._failed_rounds = 0
        except TemporaryError as exc:
            self._failed_rounds += 1
            if self._failed_rounds == 1:
                log.warning(
                    "monitor samples not written yet (%d queued, retried every round): %s",
                    len(pending),
                    exc.message,
                )
            if self._failed_rounds >= ISOLATE_AFTER and self._store_answers():
                written, pending = self._isolate(pending)
        except Exception:  # the store answers but refuses this batch: find what it refuses
            written, pending = self._isolate(pending)
        finally:
            self._pending = pending + self._pending
            overflow = len(self._pending) - MAX_PENDING_ROWS
            if overflow > 0:
                del self._pending[:overflow]
                self._drop("queue_full", overflow, f"at most {MAX_PENDING_ROWS} wait")
        return written

    def _write(self, entries: Sequence[_Pending]) -> int:
        assert self.records is not None
        unknown = [entry.key for entry in entries if entry.key.key not in self._ids]
        if unknown:
            self._ids.update(self.records.series_ids(unknown))
        rows = [(self._ids[entry.key.key], entry.ts, entry.value) for entry in entries]
        self.records.write_samples(rows)
        return len(rows)

    def _store_answers(self) -> bool:
        assert self.records is not None
        try:
            self.records.ping()
        except Exception:
            return False
        return True

    def _isolate(self, entries: list[_Pending]) -> tuple[int, list[_Pending]]:
        """Write ``entries`` (refused as one batch) in halves, and halves of halves, dropping
        the single samples the store refuses. Stops, keeping the rest queued, if the store stops
        answering; drops what is still unwritten after ``ISOLATION_WRITES`` writes. Returns the
        number written and what stays queued."""
        written = 0
        writes = 0
        pieces: deque[list[_Pending]] = deque(_halves(entries))
        while pieces:
            piece = pieces.popleft()
            if writes >= ISOLATION_WRITES:
                lost = len(piece) + sum(len(p) for p in pieces)
                self._drop("refused", lost, f"still refused after {writes} writes in one round")
                break
            writes += 1
            try:
                written += self._write(piece)
                continue
            except TemporaryError as exc:
                if not self._store_answers():
                    return written, [entry for p in (piece, *pieces) for entry in p]
                cause = exc.message
            except Exception as exc:  # refused, or a sample the store cannot take
                cause = str(exc) or type(exc).__name__
            if len(piece) > 1:
                pieces.extendleft(reversed(_halves(piece)))
                continue
            self._drop("refused", 1, f"{cause} (series {piece[0].key.key})")
        return written, []

    def _drop(self, reason: str, count: int, cause: str) -> None:
        self.dropped[reason] += count
        self._log_once(
            f"drop:{reason}:{cause.split(' (series ')[0]}",
            "monitor: %d sample(s) not stored because %s: %s; counted in "
            'zerodown_monitor_samples_dropped_total{reason="%s"}',
            count,
            DROP_REASONS[reason],
            cause,
            reason,
        )

    def _log_once(self, cause: str, message: str, *args: object) -> None:
        """Log ``message`` the first time ``cause`` happens (of the last thousand causes)."""
        if cause in self._logged:
            return
        if len(self._logged) >= MAX_LOGGED_CAUSES:
            self._logged.clear()
        self._logged.add(cause)
        log.warning(message, *args)

    # reading back --------------------------------------------------------------------------
    def restore(self, *, now: float) -> int:
        """Load the store's recent full-resolution samples into memory; how many."""
        if self.records is None:
            return 0
        rows = self.records.read_samples(since=now - self.memory.retention, until=now, service=None)
        for row in rows:
            labels = _labels(row.key)
            self.memory.append_series(labels, STALE_NAN if row.value is None else row.value, row.ts)
            self._remember(labels, row.kind, row.ts)
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
            known = self._known.get(labels)
            out.append(StoredSeries(labels, known.kind if known else "gauge", points))
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
        series, and trim memory (series not sampled within its retention are forgotten there
        too). Figures of what was done, for the log."""
        self.memory.trim(now)
        horizon = now - self.memory.retention
        for labels in [labels for labels, known in self._known.items() if known.last_ts < horizon]:
            forgotten = self._known.pop(labels)
            if forgotten.key is not None:
                self._ids.pop(forgotten.key.key, None)
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


def _halves(entries: list[_Pending]) -> list[list[_Pending]]:
    """``entries`` cut in two (one piece if there is only one entry)."""
    middle = (len(entries) + 1) // 2
    return [part for part in (entries[:middle], entries[middle:]) if part]


def _labels(key: str) -> LabelSet:
    return make_label_set({str(k): str(v) for k, v in json.loads(key).items()})
