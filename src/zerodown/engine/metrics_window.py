"""From the data plane's counters to the judge's input: per-version windows.

The proxy keeps monotonic counters per group (one group per revision, ``r<N>``); a window is
the difference between two snapshots, cumulative from the start of an analysis (the judges are
stateless). A negative difference means the proxy restarted and its
counters began again: the window is then reported as reset so the caller starts a new one.

Log errors come the same way from the log book's per-revision counts of error-level lines
(``LogBook.error_lines``): ``log_errors_since`` differences two of them.
"""

from __future__ import annotations

from zerodown.analysis import VersionWindow, latency_histogram
from zerodown.traffic.base import (
    GroupMetrics,
    ServiceMetrics,
    TrafficCounts,
    latency_bucket_bounds,
)

__all__ = ["counters_went_back", "log_errors_since", "version_window"]


def version_window(counts: TrafficCounts, *, log_errors: int = 0) -> VersionWindow:
    """One version's counters as the judge wants them (counts clamped to the request total),
    with the error-level log lines its instances wrote over the same window."""
    ranges = [
        (lower / 1e6, upper / 1e6, count)
        for lower, upper, count in (
            (*latency_bucket_bounds(index), count) for index, count in counts.latency.buckets
        )
    ]
    bounds, buckets = latency_histogram(ranges)
    requests = counts.requests
    return VersionWindow(
        requests=requests,
        errors=min(counts.responses.get("5xx", 0), requests),
        unavailable=min(counts.connect_errors + counts.timeouts, requests),
        latency_bounds=bounds,
        latency_counts=buckets,
        log_errors=max(0, log_errors),
    )


def counters_went_back(now: ServiceMetrics, then: ServiceMetrics) -> bool:
    """True when a counter decreased: the data plane restarted between the two snapshots."""
    for name, group in then.groups.items():
        current: GroupMetrics | None = now.groups.get(name)
        if current is not None and current.requests < group.requests:
            return True
    return False


def log_errors_since(now: dict[int, int], then: dict[int, int], revision: int) -> int:
    """Error-level log lines of ``revision`` between two ``LogBook.error_lines`` readings.

    The counts only grow; a smaller count (the log book's counts were lost) reads as 0.
    """
    return max(0, now.get(revision, 0) - then.get(revision, 0))
