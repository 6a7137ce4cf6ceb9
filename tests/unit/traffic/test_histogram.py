"""The log-linear latency histogram: bucket arithmetic, quantiles against exact values, deltas."""

from __future__ import annotations

import random

import pytest

from zerodown.traffic.base import (
    LATENCY_BUCKETS,
    MAX_LATENCY_US,
    LatencyHistogram,
    latency_bucket,
    latency_bucket_bounds,
)


def test_buckets_are_contiguous_and_contain_their_values() -> None:
    previous_upper = 0
    for index in range(LATENCY_BUCKETS):
        lower, upper = latency_bucket_bounds(index)
        assert lower == previous_upper
        assert latency_bucket(lower) == index and latency_bucket(upper - 1) == index
        assert (upper - lower) <= max(1, lower / 32)  # relative width at most 1/32
        previous_upper = upper
    assert latency_bucket(MAX_LATENCY_US * 10) == LATENCY_BUCKETS - 1


def exact_quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))] / 1e6


@pytest.mark.parametrize("seed", range(5))
def test_quantiles_are_within_four_percent_of_exact(seed: int) -> None:
    rng = random.Random(seed)
    values = [int(rng.lognormvariate(7, 1.2)) + 1 for _ in range(20_000)]  # ~1 ms median, long tail
    counts = [0] * LATENCY_BUCKETS
    for v in values:
        counts[latency_bucket(v)] += 1
    hist = LatencyHistogram.from_counts(counts, sum(values))
    assert hist.count == len(values)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        estimate = hist.quantile(q)
        assert estimate is not None
        assert estimate == pytest.approx(exact_quantile(values, q), rel=0.04)
    assert hist.mean == pytest.approx(sum(values) / len(values) / 1e6)


def test_delta_gives_the_window_between_snapshots() -> None:
    first = LatencyHistogram.from_counts({10: 5, 200: 1}, 1000)
    second = LatencyHistogram.from_counts({10: 7, 200: 1, 300: 4}, 5000)
    window = second.delta(first)
    assert window.buckets == ((10, 2), (300, 4))
    assert window.sum_us == 4000
    assert first.merge(window) == second


def test_empty_histogram_and_round_trip() -> None:
    assert LatencyHistogram().quantile(0.5) is None
    h = LatencyHistogram.from_counts({3: 1, 400: 2}, 77)
    assert LatencyHistogram.from_dict(h.to_dict()) == h
    with pytest.raises(ValueError):
        h.quantile(1.5)
