"""From the data plane's counters to the judge's input: per-version windows.

The proxy keeps monotonic counters per group (one group per revision, ``r<N>``); a window is
the difference between two snapshots. A negative difference means the proxy restarted and its
counters began again: the window is then reported as reset so the caller starts a new one.
"""

from __future__ import annotations

from zerodown.analysis.base import VersionWindow
from zerodown.traffic.base import (
    GroupMetrics,
    LatencyHistogram,
    ServiceMetrics,
    TrafficCounts,
    latency_bucket_bounds,
)

__all__ = ["counters_went_back", "histogram_bounds", "version_window"]


def histogram_bounds(histogram: LatencyHistogram) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Ascending upper bounds (seconds) and counts, with an empty bucket at each lower edge.

    The data plane's histogram is sparse; the zero-count lower edges keep interpolation inside
    each bucket exact.
    """
    bounds: list[float] = []
    counts: list[int] = []
    for index, count in histogram.buckets:
        lower, upper = latency_bucket_bounds(index)
        lower_s, upper_s = lower / 1e6, upper / 1e6
        if not bounds or bounds[-1] < lower_s:
            bounds.append(lower_s)
            counts.append(0)
        bounds.append(upper_s)
        counts.append(count)
    return tuple(bounds), tuple(counts)


def version_window(counts: TrafficCounts) -> VersionWindow:
    bounds, buckets = histogram_bounds(counts.latency)
    return VersionWindow(
        requests=counts.requests,
        errors=counts.responses.get("5xx", 0),
        unavailable=counts.connect_errors + counts.timeouts,
        latency_bounds=bounds,
        latency_counts=buckets,
    )


def counters_went_back(now: ServiceMetrics, then: ServiceMetrics) -> bool:
    """True when a counter decreased: the data plane restarted between the two snapshots."""
    for name, group in then.groups.items():
        current: GroupMetrics | None = now.groups.get(name)
        if current is not None and current.requests < group.requests:
            return True
    return False
