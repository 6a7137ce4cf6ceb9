"""An in-memory time-series store: the data alert rules are evaluated over.

The monitor appends zerodown's own metrics here (one sample per series per scrape); the
expression language in ``promql.py`` reads them back by label matchers and time range. A series
is identified by its full label set, the metric name being the label ``__name__`` as in
Prometheus, so ``requests_total{code="5xx"}`` and ``requests_total{code="2xx"}`` are two series.

Time is a float of seconds (Unix time); samples of a series are kept sorted by time, a sample
at a time already present replaces the old value. A series that disappears is marked stale with
``mark_stale`` (Prometheus' staleness marker): instant selectors then stop returning it at once
instead of five minutes later. ``trim(now)`` drops samples older than the retention.
"""

from __future__ import annotations

import bisect
import math
import struct
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from zerodown.core.errors import InputError

__all__ = [
    "METRIC_NAME",
    "STALE_NAN",
    "LabelSet",
    "Matcher",
    "Series",
    "SeriesStore",
    "is_stale_marker",
    "label_set",
]

METRIC_NAME: Final = "__name__"
"""The label holding a series' metric name."""

DEFAULT_RETENTION_SECONDS: Final = 6 * 3600.0

# Prometheus' staleness marker is one particular NaN; other NaNs are ordinary values.
_STALE_BITS: Final = 0x7FF0000000000002
STALE_NAN: Final[float] = struct.unpack("<d", struct.pack("<Q", _STALE_BITS))[0]

LabelSet = tuple[tuple[str, str], ...]
"""Label name/value pairs sorted by name; empty values are left out (as in Prometheus)."""


def label_set(labels: Mapping[str, str] | Iterable[tuple[str, str]]) -> LabelSet:
    """The canonical ``LabelSet`` of ``labels``: sorted by name, empty values dropped."""
    pairs = labels.items() if isinstance(labels, Mapping) else labels
    return tuple(sorted((str(k), str(v)) for k, v in pairs if v != ""))


def is_stale_marker(value: float) -> bool:
    """True if ``value`` is the staleness marker (not any other NaN)."""
    return math.isnan(value) and struct.unpack("<Q", struct.pack("<d", value))[0] == _STALE_BITS


class Matcher(Protocol):
    """Anything that can say whether a label set is selected (``promql.LabelMatcher``)."""

    def matches(self, labels: Mapping[str, str]) -> bool: ...


@dataclass
class Series:
    """One series: its labels and its samples, sorted by time."""

    labels: LabelSet
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


class SeriesStore:
    """Series by label set, with append, range queries and retention. Thread-safe."""

    def __init__(self, *, retention: float = DEFAULT_RETENTION_SECONDS) -> None:
        if not (math.isfinite(retention) and retention > 0):
            raise InputError(f"retention must be a number of seconds above 0, got {retention!r}")
        self.retention = retention
        self._lock = threading.Lock()
        self._series: dict[LabelSet, Series] = {}

    def append(self, name: str, labels: Mapping[str, str], value: float, ts: float) -> None:
        """Add the sample ``value`` at ``ts`` to series ``name{labels}``."""
        if not name:
            raise InputError("a metric name must not be empty")
        self.append_series(label_set({**labels, METRIC_NAME: name}), value, ts)

    def append_series(self, labels: LabelSet, value: float, ts: float) -> None:
        """Add a sample to the series with the full label set ``labels``."""
        if not math.isfinite(ts):
            raise InputError(f"a sample time must be a finite number, got {ts!r}")
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = Series(labels)
            if not series.times or ts > series.times[-1]:
                series.times.append(ts)
                series.values.append(float(value))
                return
            index = bisect.bisect_left(series.times, ts)
            if index < len(series.times) and series.times[index] == ts:
                series.values[index] = float(value)
            else:
                series.times.insert(index, ts)
                series.values.insert(index, float(value))

    def mark_stale(self, name: str, labels: Mapping[str, str], ts: float) -> None:
        """Say that series ``name{labels}`` is gone from ``ts`` on (a staleness marker)."""
        self.append(name, labels, STALE_NAN, ts)

    def select(
        self, matchers: Iterable[Matcher], *, start: float, end: float
    ) -> list[tuple[LabelSet, list[tuple[float, float]]]]:
        """Series selected by all ``matchers`` with their samples in ``[start, end]``.

        Series without samples in the range are left out; staleness markers are included
        (the evaluator decides what they mean).
        """
        wanted = list(matchers)
        found: list[tuple[LabelSet, list[tuple[float, float]]]] = []
        with self._lock:
            for labels, series in self._series.items():
                as_map = dict(labels)
                if not all(m.matches(as_map) for m in wanted):
                    continue
                lo = bisect.bisect_left(series.times, start)
                hi = bisect.bisect_right(series.times, end)
                if lo < hi:
                    found.append(
                        (labels, list(zip(series.times[lo:hi], series.values[lo:hi], strict=True)))
                    )
        found.sort(key=lambda item: item[0])
        return found

    def trim(self, now: float) -> int:
        """Drop samples older than ``now - retention``; return how many were dropped."""
        horizon = now - self.retention
        dropped = 0
        with self._lock:
            for labels in list(self._series):
                series = self._series[labels]
                cut = bisect.bisect_left(series.times, horizon)
                if cut:
                    del series.times[:cut]
                    del series.values[:cut]
                    dropped += cut
                if not series.times:
                    del self._series[labels]
        return dropped

    def series_count(self) -> int:
        with self._lock:
            return len(self._series)

    def sample_count(self) -> int:
        with self._lock:
            return sum(len(s.times) for s in self._series.values())
