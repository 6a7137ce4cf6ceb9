"""The mann-whitney judge: its statistics against brute force, its rules, and its edge cases."""

from __future__ import annotations

import bisect
import itertools
import math
import random
import re
from statistics import NormalDist
from typing import Any

import pytest

from zerodown.analysis import AnalysisInput, MannWhitneyJudge, Outcome, Verdict, VersionWindow
from zerodown.analysis.mann_whitney import (
    bucket_values,
    rank_sum_test,
    ratio_interval,
    two_proportion_z,
)
from zerodown.spec.models import AnalysisSpec

INF = math.inf
JUDGE = MannWhitneyJudge()
# Latency buckets of 5 % width from 1 ms to about 1.3 s.
BOUNDS = (*(0.001 * 1.05**i for i in range(148)), INF)


def spec(**fields: Any) -> AnalysisSpec:
    return AnalysisSpec(judge="mann-whitney", **fields)


def lognormal_window(
    rng: random.Random, requests: int, errors: int = 0, *, median: float = 0.020
) -> VersionWindow:
    """``requests`` lognormal latencies (sigma 0.5) in the 5 % buckets."""
    counts = [0] * len(BOUNDS)
    for _ in range(requests):
        counts[bisect.bisect_left(BOUNDS, rng.lognormvariate(math.log(median), 0.5))] += 1
    return VersionWindow(
        requests=requests, errors=errors, latency_bounds=BOUNDS, latency_counts=tuple(counts)
    )


def one_bucket(requests: int, errors: int = 0, *, bucket: int = 60) -> VersionWindow:
    """``requests`` requests, every latency in bucket ``bucket``."""
    counts = [0] * len(BOUNDS)
    counts[bucket] = requests
    return VersionWindow(
        requests=requests, errors=errors, latency_bounds=BOUNDS, latency_counts=tuple(counts)
    )


def no_latency(requests: int, errors: int = 0) -> VersionWindow:
    return VersionWindow(requests=requests, errors=errors)


def judge(
    canary: VersionWindow,
    baseline: VersionWindow | None,
    *,
    recorded: float | None = None,
    unhealthy: tuple[str, ...] = (),
    **config: Any,
) -> Verdict:
    data = AnalysisInput(
        canary=canary,
        baseline=baseline,
        recorded_baseline_latency=recorded,
        unhealthy_instances=unhealthy,
    )
    return JUDGE.judge(data, spec(**config))


def outcome_of(verdict: Verdict, name: str) -> Outcome:
    measurement = verdict.measurement(name)
    assert measurement is not None
    return measurement.outcome


# -- the rank-sum test -------------------------------------------------------------------------


def test_rank_sum_test_on_a_textbook_example() -> None:
    # Canary 1, 2, 3 against baseline 4, 5, 6: no pair where the canary is larger.
    test = rank_sum_test([(1, 1), (2, 1), (3, 1)], [(4, 1), (5, 1), (6, 1)])
    assert test is not None
    assert test.u == 0
    assert test.mean == 4.5
    assert test.sd == pytest.approx(math.sqrt(3 * 3 * 7 / 12))
    # The normal approximation with continuity correction (scipy's asymptotic method): 0.0404.
    assert test.p_less == pytest.approx(0.04043, abs=1e-4)
    assert test.p_greater > 0.95


def brute_force(
    canary: list[float], baseline: list[float]
) -> tuple[float, float]:  # (U, sd of U under permutation)
    u = sum((x > y) + 0.5 * (x == y) for x in canary for y in baseline)
    pooled = sorted(canary + baseline)
    rank = {}
    for value, group in itertools.groupby(enumerate(pooled, start=1), key=lambda p: p[1]):
        ranks = [r for r, _ in group]
        rank[value] = sum(ranks) / len(ranks)
    m, n = len(canary), len(baseline)
    total = m + n
    ranks_all = [rank[v] for v in pooled]
    mean_rank = (total + 1) / 2
    variance = m * n / (total * (total - 1)) * sum((r - mean_rank) ** 2 for r in ranks_all)
    return u, math.sqrt(variance)


def weighted(values: list[float]) -> list[tuple[float, int]]:
    return [(v, len(list(group))) for v, group in itertools.groupby(sorted(values))]


@pytest.mark.parametrize("seed", range(8))
def test_rank_sum_test_matches_brute_force_with_ties(seed: int) -> None:
    rng = random.Random(seed)
    canary = [float(rng.randint(0, 12)) for _ in range(rng.randint(1, 40))]
    baseline = [float(rng.randint(2, 14)) for _ in range(rng.randint(2, 60))]
    test = rank_sum_test(weighted(canary), weighted(baseline))
    assert test is not None
    u, sd = brute_force(canary, baseline)
    assert test.u == pytest.approx(u)
    assert test.sd == pytest.approx(sd)
    assert test.p_greater == pytest.approx(NormalDist().cdf(-(u - test.mean - 0.5) / sd))


def test_rank_sum_test_needs_values_on_both_sides_and_some_spread() -> None:
    assert rank_sum_test([], [(1.0, 5)]) is None
    assert rank_sum_test([(1.0, 5)], []) is None
    assert rank_sum_test([(1.0, 5)], [(1.0, 50)]) is None  # every value tied: nothing to rank


def test_rank_sum_test_keeps_its_level_on_binned_latencies() -> None:
    # Identical versions, latencies in 5 % buckets (many ties): the one-sided p-value falls
    # below 0.05 in about 5 % of the runs.
    rng = random.Random("level")
    runs = 1000
    rejections = 0
    for _ in range(runs):
        canary = bucket_values(lognormal_window(rng, 60))
        baseline = bucket_values(lognormal_window(rng, 240))
        test = rank_sum_test(canary, baseline)
        assert test is not None
        rejections += test.p_greater <= 0.05
    assert 0.03 * runs <= rejections <= 0.07 * runs


# -- the Hodges-Lehmann ratio ------------------------------------------------------------------


def brute_force_order_statistic(
    canary: list[tuple[float, int]], baseline: list[tuple[float, int]], k: int
) -> float:
    ratios = sorted((x / y, cx * cy) for (x, cx), (y, cy) in itertools.product(canary, baseline))
    seen = 0
    for ratio, weight in ratios:
        seen += weight
        if seen >= k:
            return ratio
    raise AssertionError("k beyond the number of pairs")


@pytest.mark.parametrize("seed", range(6))
def test_ratio_interval_matches_brute_force_order_statistics(seed: int) -> None:
    rng = random.Random(seed)
    canary = weighted([round(rng.uniform(0.01, 0.09), 3) for _ in range(rng.randint(2, 30))])
    baseline = weighted([round(rng.uniform(0.01, 0.06), 3) for _ in range(rng.randint(2, 40))])
    test = rank_sum_test(canary, baseline)
    assert test is not None
    found = ratio_interval(canary, baseline, sd=test.sd, confidence=0.98)
    pairs = sum(c for _, c in canary) * sum(c for _, c in baseline)
    k = min(max(1, round(pairs / 2 - NormalDist().inv_cdf(0.99) * test.sd)), pairs)
    if pairs % 2:
        median = brute_force_order_statistic(canary, baseline, (pairs + 1) // 2)
    else:
        low = brute_force_order_statistic(canary, baseline, pairs // 2)
        high = brute_force_order_statistic(canary, baseline, pairs // 2 + 1)
        median = math.sqrt(low * high)  # the midpoint on the log scale
    assert found.estimate == pytest.approx(median, rel=1e-9)
    assert found.lower == pytest.approx(brute_force_order_statistic(canary, baseline, k), rel=1e-9)
    assert found.upper == pytest.approx(
        brute_force_order_statistic(canary, baseline, pairs + 1 - k), rel=1e-9
    )
    assert found.lower <= found.estimate <= found.upper


def test_the_ratio_interval_covers_the_true_slowdown_about_as_often_as_it_says() -> None:
    # Canary latencies 1.3 times the baseline's (continuous, so no ties): the 90 % interval
    # should hold 1.3 in about 90 % of the runs.
    rng = random.Random("coverage")
    runs, covered = 300, 0
    for _ in range(runs):
        canary = weighted([1.3 * rng.lognormvariate(-4, 0.5) for _ in range(25)])
        baseline = weighted([rng.lognormvariate(-4, 0.5) for _ in range(35)])
        test = rank_sum_test(canary, baseline)
        assert test is not None
        found = ratio_interval(canary, baseline, sd=test.sd, confidence=0.90)
        covered += found.lower <= 1.3 <= found.upper
    assert 0.85 * runs <= covered <= 0.95 * runs


def test_bucket_values_are_midpoints_and_a_last_open_bucket_counts_at_its_lower_edge() -> None:
    window = VersionWindow(
        requests=9,
        errors=0,
        latency_bounds=(0.002, 0.004, 0.008, INF),
        latency_counts=(1, 0, 5, 3),
    )
    assert bucket_values(window) == [(0.001, 1), (0.006, 5), (0.008, 3)]
    assert bucket_values(VersionWindow(requests=0, errors=0)) == []


def test_two_proportion_z_and_where_it_is_undefined() -> None:
    # 10 % of 600 against 2 % of 11,400: pooled 2.4 %.
    z = two_proportion_z(60, 600, 228, 11_400)
    pooled = 288 / 12_000
    expected = 0.08 / math.sqrt(pooled * (1 - pooled) * (1 / 600 + 1 / 11_400))
    assert z == pytest.approx(expected)
    assert two_proportion_z(0, 100, 0, 100) is None
    assert two_proportion_z(100, 100, 50, 50) is None
    assert two_proportion_z(0, 0, 5, 100) is None


# -- verdicts ----------------------------------------------------------------------------------

RNG_SEED = "verdicts"


def pair(
    *,
    canary_requests: int = 600,
    canary_errors: int = 12,
    canary_median: float = 0.020,
    baseline_requests: int = 11_400,
    baseline_errors: int = 228,
) -> tuple[VersionWindow, VersionWindow]:
    rng = random.Random(RNG_SEED)
    canary = lognormal_window(rng, canary_requests, canary_errors, median=canary_median)
    baseline = lognormal_window(rng, baseline_requests, baseline_errors)
    return canary, baseline


def test_health_failure_fails_at_once() -> None:
    verdict = judge(no_latency(0), None, unhealthy=("web-2",))
    assert verdict.outcome is Outcome.FAIL
    assert verdict.reason == "1 canary instance failing health checks: web-2"
    assert verdict.judge == "mann-whitney"


def test_an_equal_canary_passes_and_the_reason_gives_both_comparisons() -> None:
    verdict = judge(*pair())
    assert verdict.outcome is Outcome.PASS
    assert verdict.reason.startswith("error rate 2 % vs stable 2 %, no significant difference, p95")
    assert "no significant shift" in verdict.reason
    assert (verdict.canary_requests, verdict.baseline_requests) == (600, 11_400)


def test_below_min_requests_even_a_gross_regression_is_inconclusive() -> None:
    # A fixed-horizon test decides once it has its sample, not before.
    canary, baseline = pair(canary_requests=60, canary_errors=30)
    verdict = judge(canary, baseline)
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.requests_needed == 40
    assert verdict.reason == "waiting for 40 more canary requests (60 of 100) before testing"
    errors = verdict.measurement("error_rate")
    assert errors is not None
    assert errors.outcome is Outcome.INCONCLUSIVE
    assert errors.detail.endswith("(so far: tested from 100 canary requests)")


def test_five_times_the_error_rate_fails() -> None:
    verdict = judge(*pair(canary_errors=60))
    assert verdict.outcome is Outcome.FAIL
    assert verdict.reason.startswith(
        "error rate 10 % (60 of 600) vs stable 2 % (228 of 11400): higher (p < 0.001) and "
        "above the 5 % limit"
    )


def test_a_significant_rise_within_max_error_rate_is_reported_but_passes() -> None:
    verdict = judge(*pair(canary_errors=27))
    assert verdict.outcome is Outcome.PASS
    errors = verdict.measurement("error_rate")
    assert errors is not None
    assert errors.outcome is Outcome.PASS
    assert errors.detail.endswith(": higher (p < 0.001) but within the 5 % limit")


def test_a_slowdown_beyond_the_tolerated_ratio_fails() -> None:
    verdict = judge(*pair(canary_median=0.030), max_latency_ratio=1.25)
    assert verdict.outcome is Outcome.FAIL
    latency = verdict.measurement("latency")
    assert latency is not None
    assert latency.outcome is Outcome.FAIL
    found = re.search(r"canary about ([\d.]+) × stable \(98 % interval ([\d.]+)-", latency.detail)
    assert found is not None
    assert 1.35 < float(found[1]) < 1.65
    assert float(found[2]) > 1.0
    assert latency.detail.endswith("beyond the 1.25 × tolerance")
    assert latency.baseline is not None and latency.limit == pytest.approx(1.25 * latency.baseline)


def test_a_significant_slowdown_within_the_tolerated_ratio_passes() -> None:
    verdict = judge(*pair(canary_median=0.023))
    assert verdict.outcome is Outcome.PASS
    latency = verdict.measurement("latency")
    assert latency is not None
    assert "canary slower, about 1.1" in latency.detail
    assert "within the 2.0 × tolerance" in latency.detail


def test_a_slowdown_within_the_noise_floor_passes() -> None:
    # 2.5 times slower, but only about 3.4 ms more at the p95 (2.3 ms): under the 5 ms floor.
    rng = random.Random(1)
    canary = lognormal_window(rng, 600, median=0.0025)
    baseline = lognormal_window(rng, 6000, median=0.001)
    verdict = judge(canary, baseline)
    assert verdict.outcome is Outcome.PASS
    latency = verdict.measurement("latency")
    assert latency is not None
    assert "but within the 5 ms noise floor" in latency.detail


def test_a_faster_canary_passes_as_low() -> None:
    verdict = judge(*pair(canary_median=0.012))
    assert verdict.outcome is Outcome.PASS
    assert "canary faster" in verdict.reason


def test_without_a_baseline_errors_are_tested_against_max_error_rate() -> None:
    failing = judge(no_latency(400, 60), None)
    assert failing.outcome is Outcome.FAIL
    assert failing.reason.startswith(
        "error rate 15 % (60 of 400) vs limit 5 % (no stable version to compare with): above it"
    )
    # 6 % of 400 is above 5 %, but not significantly.
    assert judge(no_latency(400, 24), None).outcome is Outcome.PASS
    assert judge(no_latency(400, 1), None, max_error_rate=0.0).outcome is Outcome.FAIL


def test_a_small_baseline_is_not_compared_with() -> None:
    verdict = judge(no_latency(200, 2), no_latency(49, 0))
    errors = verdict.measurement("error_rate")
    assert errors is not None
    assert "no stable version to compare with" in errors.detail


def test_recorded_latency_is_the_fallback_without_a_baseline() -> None:
    rng = random.Random(2)
    slow = judge(lognormal_window(rng, 400, median=0.060), None, recorded=0.040)
    assert slow.outcome is Outcome.FAIL
    assert slow.reason.startswith("latency regressed (p95 ")
    assert "vs recorded 40 ms" in slow.reason
    fine = judge(lognormal_window(rng, 400, median=0.020), None, recorded=0.040)
    assert fine.outcome is Outcome.PASS


def test_without_any_baseline_latency_is_skipped_and_the_reason_says_so() -> None:
    verdict = judge(lognormal_window(random.Random(3), 300), None)
    assert verdict.outcome is Outcome.PASS
    assert "latency not checked: no stable version served traffic" in verdict.reason
    assert outcome_of(verdict, "latency") is Outcome.INCONCLUSIVE


def test_verdicts_round_trip_through_to_dict() -> None:
    for verdict in (
        judge(*pair()),
        judge(*pair(canary_errors=60)),
        judge(*pair(canary_median=0.030), max_latency_ratio=1.25),
        judge(no_latency(40), None),
    ):
        assert Verdict.from_dict(verdict.to_dict()) == verdict


# -- edge cases --------------------------------------------------------------------------------


@pytest.mark.parametrize("baseline", [None, no_latency(0), one_bucket(500)])
def test_no_canary_traffic_is_inconclusive(baseline: VersionWindow | None) -> None:
    verdict = judge(no_latency(0), baseline)
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.requests_needed == 100
    assert outcome_of(verdict, "error_rate") is Outcome.INCONCLUSIVE


@pytest.mark.parametrize("requests", [1, 40, 100, 5000])
def test_every_request_failing_on_both_versions_is_inconclusive(requests: int) -> None:
    verdict = judge(one_bucket(requests, requests), one_bucket(50 + requests, 50 + requests))
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.reason.startswith("every request failed on both versions")


def test_a_canary_failing_everything_against_a_working_baseline_fails() -> None:
    assert judge(one_bucket(200, 200), one_bucket(2000, 40)).outcome is Outcome.FAIL


def test_zero_latency_variance_is_no_shift_and_no_crash() -> None:
    verdict = judge(one_bucket(500), one_bucket(2000), max_latency_ratio=1.01)
    assert verdict.outcome is Outcome.PASS
    latency = verdict.measurement("latency")
    assert latency is not None
    assert "every latency of both versions in one bucket" in latency.detail
    assert judge(one_bucket(50), one_bucket(200)).outcome is Outcome.INCONCLUSIVE


def test_every_canary_latency_in_a_much_slower_bucket_fails() -> None:
    verdict = judge(one_bucket(500, bucket=90), one_bucket(2000, bucket=60))
    assert verdict.outcome is Outcome.FAIL
    assert outcome_of(verdict, "latency") is Outcome.FAIL


# -- a fixed-horizon test, looked at once ------------------------------------------------------


def test_one_look_at_identical_versions_fails_about_alpha_of_the_time() -> None:
    # With max_error_rate 0 every significant rise is beyond tolerance, so the error test's own
    # level shows: about alpha of single looks at identical versions fail.
    rng = random.Random("one look")
    alpha, runs = 0.05, 1000
    config = {"alpha": alpha, "max_error_rate": 0.0}
    alarms = 0
    for _ in range(runs):
        canary_errors = sum(rng.random() < 0.02 for _ in range(600))
        baseline_errors = sum(rng.random() < 0.02 for _ in range(2400))
        verdict = judge(no_latency(600, canary_errors), no_latency(2400, baseline_errors), **config)
        alarms += verdict.outcome is Outcome.FAIL
    assert 0.5 * alpha * runs <= alarms <= 1.5 * alpha * runs
