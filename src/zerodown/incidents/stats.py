"""MTTD and MTTR over a set of incidents, as distributions: median, p90 and every value.

- **Time to detect** of one incident: from when its impact began (``started_at``) to
  ``detected``. An incident whose start is unknown has no time to detect; it is counted as
  ``unknown``, never as zero.
- **Time to recover**: from ``detected`` to ``recovered``. Incidents not recovered yet are
  ``unknown``.

Means hide the long tail that matters in operations (one four-hour outage among twenty
one-minute blips), so each figure comes with its median, its 90th percentile, the sorted
values themselves and a histogram over fixed buckets. Percentiles interpolate linearly between
the two nearest ranks (the method most tools default to: numpy's ``linear``, Excel's
``PERCENTILE.INC``); with one value every percentile is that value.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from zerodown.incidents.lifecycle import SEVERITIES, STAGES
from zerodown.store.incidents import IncidentRecord

__all__ = [
    "BUCKETS",
    "Distribution",
    "IncidentStats",
    "incident_stats",
    "percentile",
    "time_to_detect",
    "time_to_recover",
]

BUCKETS: Final[tuple[tuple[float, str], ...]] = (
    (10.0, "< 10 s"),
    (60.0, "10 s - 1 min"),
    (300.0, "1 - 5 min"),
    (900.0, "5 - 15 min"),
    (3600.0, "15 - 60 min"),
    (14400.0, "1 - 4 h"),
    (math.inf, ">= 4 h"),
)
"""Upper bounds (exclusive, seconds) and labels of the histogram buckets."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of sorted ``values``, linearly interpolated between ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within 0..1, got {q}")
    position = (len(values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


@dataclass(frozen=True, kw_only=True)
class Distribution:
    """Durations in seconds: how many, their median, p90, mean, extremes, every value
    (ascending), a histogram, and how many incidents could not be measured."""

    values: tuple[float, ...]
    unknown: int = 0
    median: float | None = None
    p90: float | None = None
    mean: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    buckets: tuple[tuple[str, int], ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, values: Iterable[float], *, unknown: int = 0) -> Distribution:
        ordered = tuple(sorted(float(v) for v in values))
        counts: Counter[str] = Counter()
        for value in ordered:
            counts[next(label for bound, label in BUCKETS if value < bound)] += 1
        buckets = tuple((label, counts.get(label, 0)) for _, label in BUCKETS)
        if not ordered:
            return cls(values=(), unknown=unknown, buckets=buckets)
        return cls(
            values=ordered,
            unknown=unknown,
            median=percentile(ordered, 0.5),
            p90=percentile(ordered, 0.9),
            mean=sum(ordered) / len(ordered),
            minimum=ordered[0],
            maximum=ordered[-1],
            buckets=buckets,
        )

    @property
    def count(self) -> int:
        return len(self.values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "unknown": self.unknown,
            "median_s": self.median,
            "p90_s": self.p90,
            "mean_s": self.mean,
            "min_s": self.minimum,
            "max_s": self.maximum,
            "values_s": list(self.values),
            "histogram": [{"bucket": label, "count": n} for label, n in self.buckets],
        }


@dataclass(frozen=True, kw_only=True)
class IncidentStats:
    """Counts and the time-to-detect and time-to-recover distributions of some incidents."""

    service: str | None
    incidents: int
    open: int
    by_severity: dict[str, int]
    by_stage: dict[str, int]
    mttd: Distribution
    mttr: Distribution

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "incidents": self.incidents,
            "open": self.open,
            "by_severity": dict(self.by_severity),
            "by_stage": dict(self.by_stage),
            "mttd": self.mttd.to_dict(),
            "mttr": self.mttr.to_dict(),
            "definitions": {
                "mttd": "impact began (started_at) -> detected; unknown without a start",
                "mttr": "detected -> recovered; unknown while not recovered",
            },
        }


def time_to_detect(record: IncidentRecord) -> float | None:
    if record.started_at is None:
        return None
    return max(0.0, (record.detected_at - record.started_at).total_seconds())


def time_to_recover(record: IncidentRecord) -> float | None:
    recovered = record.at("recovered")
    if recovered is None:
        return None
    return max(0.0, (recovered - record.detected_at).total_seconds())


def incident_stats(records: Sequence[IncidentRecord], *, service: str | None) -> IncidentStats:
    """The statistics of ``records`` (all of one service, or all services when None)."""
    detect = [time_to_detect(r) for r in records]
    recover = [time_to_recover(r) for r in records]
    severities = Counter(r.severity for r in records)
    stages = Counter(r.stage for r in records)
    return IncidentStats(
        service=service,
        incidents=len(records),
        open=sum(1 for r in records if r.is_open),
        by_severity={s: severities.get(s, 0) for s in SEVERITIES},
        by_stage={s: stages.get(s, 0) for s in STAGES},
        mttd=Distribution.of(
            (v for v in detect if v is not None), unknown=sum(v is None for v in detect)
        ),
        mttr=Distribution.of(
            (v for v in recover if v is not None), unknown=sum(v is None for v in recover)
        ),
    )
