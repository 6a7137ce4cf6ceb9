"""``zerodown metrics``: a service's figures over a time window, per version and per step.

From the stored counters, per version: request rate, error rate (5xx share), availability
(share not refused or timed out), latency mean, p95 and p99 (from the histogram buckets, as
Prometheus' ``histogram_quantile`` interpolates them), for the whole window and for each step;
per instance, its last health, CPU and memory. Counter increases are taken between the samples
nearest each step boundary, corrected for resets (a restarted data plane starts from zero),
without extrapolation, so a window's request count is a whole number of requests.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from zerodown.monitor.history import StoredSeries
from zerodown.ops.series import METRIC_NAME, is_stale_marker

__all__ = ["QUERY_METRICS", "bucket_quantile", "counter_increase", "service_figures"]

REQUESTS: Final = "zerodown_requests_total"
UNAVAILABLE: Final = "zerodown_requests_unavailable_total"
DURATION: Final = "zerodown_request_duration_seconds"
QUERY_METRICS: Final = (
    REQUESTS,
    UNAVAILABLE,
    f"{DURATION}_bucket",
    f"{DURATION}_sum",
    f"{DURATION}_count",
    "zerodown_instance_healthy",
    "zerodown_instance_cpu_cores",
    "zerodown_instance_memory_bytes",
    "zerodown_instance_restarts_total",
)
MAX_POINTS: Final = 500


def _value_at(points: Sequence[tuple[float, float]], t: float) -> float | None:
    """The series' value at ``t``: its last sample at or before ``t`` (None if none, or if the
    series had ended by then)."""
    found: float | None = None
    for ts, value in points:
        if ts > t:
            break
        found = None if is_stale_marker(value) else value
    return found


def counter_increase(points: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """How much a counter grew from ``start`` to ``end``, counting a drop as a reset to 0.

    Counted from the last sample at or before ``start`` (or the first one after it, whose value
    is not counted: Prometheus does not know what came before a series' first sample)."""
    total = 0.0
    previous: float | None = None
    for ts, value in points:
        if ts > end:
            break
        if is_stale_marker(value):
            previous = None
            continue
        if ts <= start:
            previous = value
            continue
        if previous is not None:
            total += value - previous if value >= previous else value
        previous = value
    return total


def bucket_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets, interpolated linearly
    inside its bucket as ``histogram_quantile`` does; None without observations."""
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]):
        return None
    total = ordered[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound if len(ordered) > 1 else None
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return ordered[-2][0] if len(ordered) > 1 else None


@dataclass
class _Version:
    requests: list[StoredSeries] = field(default_factory=list)
    errors: list[StoredSeries] = field(default_factory=list)
    unavailable: list[StoredSeries] = field(default_factory=list)
    buckets: dict[float, list[StoredSeries]] = field(default_factory=dict)
    latency_sum: list[StoredSeries] = field(default_factory=list)
    latency_count: list[StoredSeries] = field(default_factory=list)

    def figures(self, start: float, end: float) -> dict[str, Any]:
        def grew(series: Iterable[StoredSeries]) -> float:
            return sum(counter_increase(s.points, start, end) for s in series)

        requests = grew(self.requests)
        errors = grew(self.errors)
        unavailable = grew(self.unavailable)
        count = grew(self.latency_count)
        seconds = max(end - start, 1e-9)
        buckets = [(bound, grew(series)) for bound, series in self.buckets.items()]
        return {
            "requests": round(requests),
            "request_rate": requests / seconds,
            "error_rate": errors / requests if requests else None,
            "availability": 1 - min(unavailable, requests) / requests if requests else None,
            "latency_avg_s": grew(self.latency_sum) / count if count else None,
            "latency_p95_s": bucket_quantile(0.95, buckets),
            "latency_p99_s": bucket_quantile(0.99, buckets),
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _latest(series: StoredSeries, until: float) -> float | None:
    value = _value_at(series.points, until)
    return value if value is not None and math.isfinite(value) else None


def service_figures(
    series: Iterable[StoredSeries],
    *,
    service: str,
    since: float,
    until: float,
    step: float,
) -> dict[str, Any]:
    """The figures of ``service`` over ``[since, until]``, with one point per ``step``."""
    versions: dict[str, _Version] = {}
    instances: dict[str, dict[str, Any]] = {}
    totals: dict[str, float] = {}
    for s in series:
        labels = s.label_map
        name = labels.get(METRIC_NAME, "")
        version = labels.get("version", "")
        if name in (REQUESTS, UNAVAILABLE) or name.startswith(DURATION):
            v = versions.setdefault(version, _Version())
            if name == REQUESTS:
                v.requests.append(s)
                if labels.get("code_class") == "5xx":
                    v.errors.append(s)
                totals[version] = totals.get(version, 0.0) + (_latest(s, until) or 0.0)
            elif name == UNAVAILABLE:
                v.unavailable.append(s)
            elif name == f"{DURATION}_bucket":
                bound = float(labels.get("le", "+Inf"))
                v.buckets.setdefault(bound, []).append(s)
            elif name == f"{DURATION}_sum":
                v.latency_sum.append(s)
            elif name == f"{DURATION}_count":
                v.latency_count.append(s)
        elif "instance" in labels:
            latest = _latest(s, until)
            if latest is None:
                continue
            entry = instances.setdefault(
                labels["instance"], {"instance": labels["instance"], "version": version}
            )
            short = name.removeprefix("zerodown_instance_")
            entry["healthy" if short == "healthy" else short] = (
                bool(latest) if short == "healthy" else latest
            )
    step = max(step, (until - since) / MAX_POINTS)
    boundaries = []
    t = since
    while t < until - 1e-9:
        boundaries.append(t)
        t += step
    boundaries.append(until)
    out_versions = {}
    for version in sorted(versions):
        v = versions[version]
        points = [
            {"t": end, **v.figures(start, end)} for start, end in itertools.pairwise(boundaries)
        ]
        out_versions[version] = {
            "requests_total": round(totals.get(version, 0.0)),
            "window": v.figures(since, until),
            "points": points,
        }
    return {
        "service": service,
        "since": _iso(since),
        "until": _iso(until),
        "step_s": step,
        "versions": out_versions,
        "instances": [instances[key] for key in sorted(instances)],
    }
