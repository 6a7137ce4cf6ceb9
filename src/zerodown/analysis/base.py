"""What a judge reads and what it answers: the types shared by every judge.

The engine measures the new release (the *canary*) and the stable release (the *baseline*) over
the same window, from the proxy's per-version counters and latency histograms, and hands both to
a ``Judge`` as an ``AnalysisInput``. The judge is a pure function of that input and the
``AnalysisSpec`` limits: it never queries anything, never sleeps and never raises for bad
numbers. Its ``Verdict`` is ``pass``, ``fail`` (roll back) or ``inconclusive`` (wait; the engine
pauses the rollout when ``max_wait`` runs out), with one ``Measurement`` per rule so a report can
show every number that led to it.

Windows are cumulative: each call describes everything from the start of the analysis window to
now, so a judge needs no memory between calls (the sequential judge's e-values depend only on the
totals).

Latency histograms
    ``latency_bounds[i]`` is the upper edge of bucket ``i`` in seconds and ``latency_counts[i]``
    how many latencies fell into it (per bucket, not cumulative). Bucket ``i`` spans
    ``latency_bounds[i - 1]`` to ``latency_bounds[i]``; the first bucket starts at 0. The last
    bound may be ``inf``. A sparse source histogram must list an empty bucket wherever a gap
    would otherwise stretch the next bucket down to the previous one's upper edge;
    ``latency_histogram`` does that from ``(lower, upper, count)`` ranges.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from zerodown.spec.models import AnalysisSpec

__all__ = [
    "BASELINE_MIN_REQUESTS",
    "AnalysisInput",
    "Judge",
    "Measurement",
    "Outcome",
    "Verdict",
    "VersionWindow",
    "latency_histogram",
    "quantile_fraction",
]


BASELINE_MIN_REQUESTS = 50
"""A same-window baseline is compared with once it has this many requests (or ``min_requests``,
if lower); below that the judges fall back to what was recorded for the previous release."""


class Outcome(StrEnum):
    """A verdict, or one rule's part of it.

    A measurement that is ``inconclusive`` inside a ``pass`` verdict is a rule that could not be
    evaluated (no baseline to compare latency with, say); its detail says why, and so does the
    verdict's reason.
    """

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


def quantile_fraction(name: str) -> float:
    """``"p95"`` -> 0.95, ``"p50"`` -> 0.5 (the spec's ``latency_quantile`` names)."""
    if len(name) < 2 or name[0] != "p" or not name[1:].isdigit():
        raise ValueError(f"not a quantile name like 'p95': {name!r}")
    digits = name[1:]
    value = int(digits) / 10.0 ** len(digits)
    if not 0 < value < 1:
        raise ValueError(f"not a quantile name like 'p95': {name!r}")
    return value


def latency_histogram(
    ranges: Iterable[tuple[float, float, int]],
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """``(latency_bounds, latency_counts)`` from ``(lower, upper, count)`` buckets in seconds.

    The ranges may be sparse (only buckets that counted something) but must not overlap. An
    empty bucket is inserted before every range whose lower edge is above the previous upper
    edge, so interpolation inside each bucket keeps the source's real lower edge.
    """
    bounds: list[float] = []
    counts: list[int] = []
    previous_upper = 0.0
    for lower, upper, count in sorted(ranges):
        if lower < previous_upper or upper <= lower:
            raise ValueError(f"latency bucket [{lower}, {upper}) overlaps or is empty")
        if lower > previous_upper:
            bounds.append(lower)
            counts.append(0)
        bounds.append(upper)
        counts.append(count)
        previous_upper = upper
    return tuple(bounds), tuple(counts)


@dataclass(frozen=True, kw_only=True)
class VersionWindow:
    """One version (canary or baseline) over one analysis window.

    ``requests`` counts every request routed to the version, served or not; ``errors`` the 5xx
    responses (the application's and the proxy's own 502/504); ``unavailable`` the requests the
    version could not serve at all (connection refused, timeout), which are usually among the
    errors too. ``latency_sum`` (seconds) is optional and only feeds ``mean_latency``.
    ``log_errors`` counts the error-level lines (error, critical) the version's instances wrote
    to their logs in the window; only ``analysis.maxLogErrorRate`` reads it.

    Inconsistent numbers (negative counts, more errors than requests, a malformed histogram) are
    a bug in whoever built the window and raise ``ValueError``.
    """

    requests: int
    errors: int
    unavailable: int = 0
    latency_bounds: tuple[float, ...] = ()
    latency_counts: tuple[int, ...] = ()
    latency_sum: float | None = None
    log_errors: int = 0

    def __post_init__(self) -> None:
        if self.requests < 0 or self.errors < 0 or self.unavailable < 0 or self.log_errors < 0:
            raise ValueError(f"negative request counts in {self!r}")
        if self.errors > self.requests or self.unavailable > self.requests:
            raise ValueError(f"more errors or unavailable requests than requests in {self!r}")
        if len(self.latency_bounds) != len(self.latency_counts):
            raise ValueError("latency_bounds and latency_counts differ in length")
        if any(c < 0 for c in self.latency_counts):
            raise ValueError("negative latency bucket count")
        previous = 0.0
        for i, bound in enumerate(self.latency_bounds):
            if math.isnan(bound) or bound < previous or (i > 0 and bound == previous):
                raise ValueError(f"latency bounds must ascend from 0: {self.latency_bounds!r}")
            previous = bound

    @property
    def latency_count(self) -> int:
        """How many latencies the histogram holds (may differ from ``requests``)."""
        return sum(self.latency_counts)

    def error_rate(self) -> float | None:
        """``errors / requests``; None when there were no requests."""
        return self.errors / self.requests if self.requests else None

    def availability(self) -> float | None:
        """Share of requests the version could serve at all; None when there were none."""
        return (self.requests - self.unavailable) / self.requests if self.requests else None

    def mean_latency(self) -> float | None:
        """Mean latency in seconds; None without ``latency_sum`` or without latencies."""
        count = self.latency_count
        return self.latency_sum / count if self.latency_sum is not None and count else None

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) of the latencies in seconds; None if the histogram is empty.

        As Prometheus' ``histogram_quantile`` does: the rank ``q * n`` falls in the first bucket
        whose cumulative count reaches it, and the value is interpolated linearly inside that
        bucket, as if its latencies were spread evenly between its edges. The result lies in the
        same bucket as the exact sample quantile (the ``ceil(q * n)``-th smallest latency), so it
        is off by at most that bucket's width. A rank in a last bucket without upper edge
        (``inf``) gives that bucket's lower edge, the largest latency the histogram can vouch for.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be within [0, 1], got {q}")
        total = self.latency_count
        if not total:
            return None
        rank = q * total
        seen = 0
        lower = 0.0
        for upper, count in zip(self.latency_bounds, self.latency_counts, strict=True):
            if count and seen + count >= rank:
                if math.isinf(upper):
                    return lower
                fraction = max(0.0, (rank - seen) / count)
                # A convex combination returns the edges exactly at fraction 0 and 1.
                return lower * (1.0 - fraction) + upper * fraction
            seen += count
            lower = upper
        raise AssertionError("unreachable: the last non-empty bucket reaches every rank")

    def cumulative_counts(self) -> tuple[int, ...]:
        """Counts of latencies up to each bound (the histogram as an empirical CDF times n)."""
        running = 0
        out: list[int] = []
        for count in self.latency_counts:
            running += count
            out.append(running)
        return tuple(out)


@dataclass(frozen=True, kw_only=True)
class AnalysisInput:
    """Everything a judge sees: both versions over the same window, and the canary's health.

    ``baseline`` is None when no stable version served traffic (a first release, or all traffic
    on the canary). ``recorded_baseline_latency`` is the previous release's latency at the
    spec's ``latency_quantile``, recorded when it was live; the judges fall back to it when the
    baseline window has too few requests. ``unhealthy_instances`` are the canary instances
    failing their health checks (or crashed) right now.
    """

    canary: VersionWindow
    baseline: VersionWindow | None
    recorded_baseline_latency: float | None = None
    unhealthy_instances: tuple[str, ...] = ()
    elapsed: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """One rule's result: the number, the limit it was held to, and what it means."""

    name: str
    value: float | None
    limit: float | None
    baseline: float | None
    outcome: Outcome
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": _finite_or_none(self.value),
            "limit": _finite_or_none(self.limit),
            "baseline": _finite_or_none(self.baseline),
            "outcome": self.outcome.value,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        return cls(
            name=str(data["name"]),
            value=_float_or_none(data.get("value")),
            limit=_float_or_none(data.get("limit")),
            baseline=_float_or_none(data.get("baseline")),
            outcome=Outcome(data["outcome"]),
            detail=str(data.get("detail", "")),
        )


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """A judge's answer after one interval.

    ``reason`` is one line a human can act on: for ``fail`` the failing rules with their
    numbers, for ``inconclusive`` how many more canary requests are needed
    (``requests_needed``), for ``pass`` a summary of the numbers, including any rule that could
    not be evaluated.
    """

    outcome: Outcome
    reason: str
    measurements: tuple[Measurement, ...]
    judge: str
    requests_needed: int = 0
    canary_requests: int = 0
    baseline_requests: int = 0

    def measurement(self, name: str) -> Measurement | None:
        """The measurement called ``name``, if the judge made one."""
        return next((m for m in self.measurements if m.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (no ``inf`` or ``nan``: non-finite numbers become None)."""
        return {
            "outcome": self.outcome.value,
            "reason": self.reason,
            "judge": self.judge,
            "requests_needed": self.requests_needed,
            "canary_requests": self.canary_requests,
            "baseline_requests": self.baseline_requests,
            "measurements": [m.to_dict() for m in self.measurements],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(
            outcome=Outcome(data["outcome"]),
            reason=str(data.get("reason", "")),
            judge=str(data.get("judge", "")),
            requests_needed=int(data.get("requests_needed", 0)),
            canary_requests=int(data.get("canary_requests", 0)),
            baseline_requests=int(data.get("baseline_requests", 0)),
            measurements=tuple(Measurement.from_dict(m) for m in data.get("measurements", ())),
        )


class Judge(Protocol):
    """Turns one ``AnalysisInput`` into a ``Verdict``, as a pure function of it and the limits."""

    name: str

    def judge(self, data: AnalysisInput, config: AnalysisSpec) -> Verdict: ...


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
