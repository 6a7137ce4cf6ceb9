"""VersionWindow's rates and histogram quantiles; Verdict's JSON round trip."""

from __future__ import annotations

import json
import math
import random

import pytest

from zerodown.analysis import (
    Measurement,
    Outcome,
    Verdict,
    VersionWindow,
    latency_histogram,
    quantile_fraction,
)

INF = math.inf


def window_of(latencies: list[float], bounds: tuple[float, ...]) -> VersionWindow:
    counts = [0] * len(bounds)
    for latency in latencies:
        # Bucket i holds latencies in (bounds[i-1], bounds[i]].
        index = next(i for i, b in enumerate(bounds) if latency <= b)
        counts[index] += 1
    return VersionWindow(
        requests=len(latencies),
        errors=0,
        latency_bounds=bounds,
        latency_counts=tuple(counts),
        latency_sum=sum(latencies),
    )


def interpolated_quantile_by_bisection(window: VersionWindow, q: float) -> float:
    """Invert the histogram's piecewise-linear CDF numerically: an independent reference."""

    def cdf(x: float) -> float:
        below, lower = 0.0, 0.0
        for upper, count in zip(window.latency_bounds, window.latency_counts, strict=True):
            if x >= upper:
                below += count
            elif x > lower:
                below += count * (x - lower) / (upper - lower)
            lower = upper
        return below / window.latency_count

    lo, hi = 0.0, max(b for b in window.latency_bounds if math.isfinite(b))
    for _ in range(200):
        mid = (lo + hi) / 2
        if cdf(mid) >= q:
            hi = mid
        else:
            lo = mid
    return hi


# -- rates ---------------------------------------------------------------------------------


def test_rates_are_none_without_requests() -> None:
    empty = VersionWindow(requests=0, errors=0)
    assert empty.error_rate() is None
    assert empty.availability() is None
    assert empty.quantile(0.5) is None
    assert empty.mean_latency() is None


def test_error_rate_and_availability_divide_by_requests() -> None:
    window = VersionWindow(requests=200, errors=10, unavailable=4)
    assert window.error_rate() == 0.05
    assert window.availability() == 0.98


def test_mean_latency_uses_the_sum_over_the_histogram_count() -> None:
    window = VersionWindow(
        requests=4, errors=0, latency_bounds=(0.1,), latency_counts=(4,), latency_sum=0.2
    )
    assert window.mean_latency() == pytest.approx(0.05)


@pytest.mark.parametrize(
    "fields",
    [
        {"requests": -1, "errors": 0},
        {"requests": 1, "errors": 2},
        {"requests": 1, "errors": 0, "unavailable": 2},
        {"requests": 1, "errors": 0, "latency_bounds": (0.1,), "latency_counts": ()},
        {"requests": 1, "errors": 0, "latency_bounds": (0.2, 0.1), "latency_counts": (1, 0)},
        {"requests": 1, "errors": 0, "latency_bounds": (0.1, 0.1), "latency_counts": (1, 0)},
        {"requests": 1, "errors": 0, "latency_bounds": (-0.1,), "latency_counts": (1,)},
        {"requests": 1, "errors": 0, "latency_bounds": (0.1,), "latency_counts": (-1,)},
    ],
)
def test_inconsistent_windows_are_rejected(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        VersionWindow(**fields)  # type: ignore[arg-type]


# -- quantiles -------------------------------------------------------------------------------


def test_quantile_interpolates_linearly_inside_its_bucket() -> None:
    window = VersionWindow(
        requests=100, errors=0, latency_bounds=(0.01, 0.02, 0.04), latency_counts=(50, 40, 10)
    )
    assert window.quantile(0.5) == 0.01  # rank 50 is the first bucket's upper edge, exactly
    assert window.quantile(0.7) == pytest.approx(0.015)  # halfway through the second bucket
    assert window.quantile(0.95) == pytest.approx(0.03)
    assert window.quantile(1.0) == 0.04
    assert window.quantile(0.0) == 0.0


def test_first_bucket_starts_at_zero_and_empty_buckets_are_skipped() -> None:
    window = VersionWindow(
        requests=10, errors=0, latency_bounds=(0.01, 0.02, 0.03), latency_counts=(0, 0, 10)
    )
    assert window.quantile(0.0) == 0.02
    assert window.quantile(0.5) == pytest.approx(0.025)


def test_quantile_in_an_unbounded_last_bucket_is_its_lower_edge() -> None:
    window = VersionWindow(requests=10, errors=0, latency_bounds=(0.1, INF), latency_counts=(5, 5))
    assert window.quantile(0.99) == 0.1
    assert window.quantile(0.5) == 0.1


def test_quantile_outside_zero_one_is_a_bug() -> None:
    with pytest.raises(ValueError):
        VersionWindow(requests=0, errors=0).quantile(1.5)


@pytest.mark.parametrize("seed", range(20))
def test_quantile_matches_brute_force_references_on_generated_data(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 3000)
    latencies = [rng.lognormvariate(-4.0, rng.uniform(0.2, 1.5)) for _ in range(n)]
    edges = sorted({round(10 ** rng.uniform(-4, 0.5), 6) for _ in range(rng.randint(3, 40))})
    bounds = (*edges, INF)
    window = window_of(latencies, bounds)
    ordered = sorted(latencies)
    for q in (0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999):
        estimate = window.quantile(q)
        assert estimate is not None
        # The exact sample quantile: the smallest latency with at least q * n at or below it.
        exact = ordered[max(0, math.ceil(q * n) - 1)]
        index = next(i for i, b in enumerate(bounds) if exact <= b)
        lower = bounds[index - 1] if index else 0.0
        upper = bounds[index]
        if math.isinf(upper):
            assert estimate == lower
            continue
        assert lower <= estimate <= upper, (q, exact, estimate)
        assert estimate == pytest.approx(interpolated_quantile_by_bisection(window, q), abs=1e-9)


def test_quantile_fraction_reads_the_spec_names() -> None:
    assert quantile_fraction("p50") == 0.5
    assert quantile_fraction("p95") == 0.95
    assert quantile_fraction("p99") == 0.99
    assert quantile_fraction("p999") == 0.999
    with pytest.raises(ValueError):
        quantile_fraction("95")


def test_latency_histogram_inserts_empty_buckets_for_gaps_in_sparse_ranges() -> None:
    bounds, counts = latency_histogram([(0.004, 0.005, 3), (0.001, 0.002, 2), (0.002, 0.003, 1)])
    assert bounds == (0.001, 0.002, 0.003, 0.004, 0.005)
    assert counts == (0, 2, 1, 0, 3)
    window = VersionWindow(requests=6, errors=0, latency_bounds=bounds, latency_counts=counts)
    # The lowest latency bucket starts at 1 ms, not at 0.
    assert window.quantile(0.0) == 0.001


def test_latency_histogram_rejects_overlapping_ranges() -> None:
    with pytest.raises(ValueError):
        latency_histogram([(0.001, 0.003, 1), (0.002, 0.004, 1)])


# -- verdict ---------------------------------------------------------------------------------


def test_verdict_round_trips_through_json() -> None:
    verdict = Verdict(
        outcome=Outcome.FAIL,
        reason="error rate 7.9 % > 5 % (39 of 494 requests)",
        measurements=(
            Measurement(
                name="error_rate",
                value=39 / 494,
                limit=0.05,
                baseline=0.004,
                outcome=Outcome.FAIL,
                detail="error rate 7.9 % > 5 % (39 of 494 requests)",
            ),
            Measurement(
                name="latency",
                value=None,
                limit=None,
                baseline=None,
                outcome=Outcome.INCONCLUSIVE,
                detail="latency not checked",
            ),
        ),
        judge="thresholds",
        requests_needed=0,
        canary_requests=494,
        baseline_requests=2000,
    )
    data = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))
    assert data["outcome"] == "fail"
    assert data["measurements"][0]["outcome"] == "fail"
    assert Verdict.from_dict(data) == verdict
    assert verdict.measurement("latency") is verdict.measurements[1]
    assert verdict.measurement("health") is None


def test_verdict_json_has_no_infinities() -> None:
    verdict = Verdict(
        outcome=Outcome.PASS,
        reason="ok",
        measurements=(
            Measurement(
                name="x", value=INF, limit=math.nan, baseline=1.0, outcome=Outcome.PASS, detail=""
            ),
        ),
        judge="thresholds",
    )
    text = json.dumps(verdict.to_dict(), allow_nan=False)
    assert Verdict.from_dict(json.loads(text)).measurements[0].value is None
