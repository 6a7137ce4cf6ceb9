"""The sequential judge: its e-values and bands, its verdicts, and seeded simulations."""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from zerodown.analysis import AnalysisInput, Outcome, SequentialJudge, Verdict, VersionWindow
from zerodown.analysis.sequential import (
    beta_mixture_log_e_value,
    dkw_radius,
    latency_gap,
    share_within,
    tolerated_latency,
)
from zerodown.analysis.special import log_beta
from zerodown.spec.models import AnalysisSpec

INF = math.inf
JUDGE = SequentialJudge()
# Latency buckets of 25 % width from 1 ms (like a coarse version of the proxy's histogram).
BOUNDS = (*(0.001 * 1.25**i for i in range(32)), INF)


def spec(**fields: Any) -> AnalysisSpec:
    return AnalysisSpec(judge="sequential", **fields)


def window(requests: int, errors: int = 0, *, latency: float | None = 0.020) -> VersionWindow:
    """``requests`` requests, all in the bucket ending just above ``latency``."""
    counts = [0] * len(BOUNDS)
    if latency is not None and requests:
        counts[bisect.bisect_left(BOUNDS, latency)] = requests
    return VersionWindow(
        requests=requests, errors=errors, latency_bounds=BOUNDS, latency_counts=tuple(counts)
    )


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


# -- the error e-value -----------------------------------------------------------------------


def integrated_e_value(*, hits: int, misses: int, rho: float, concentration: float) -> float:
    """The truncated beta-mixture likelihood ratio by brute-force numerical integration."""
    a, b = concentration * rho, concentration * (1 - rho)
    steps = 200_000
    width = (1 - rho) / steps
    mixture = prior_mass = 0.0
    for i in range(steps):
        theta = rho + (i + 0.5) * width
        prior = math.exp((a - 1) * math.log(theta) + (b - 1) * math.log1p(-theta) - log_beta(a, b))
        prior_mass += prior * width
        mixture += prior * width * (theta / rho) ** hits * ((1 - theta) / (1 - rho)) ** misses
    return mixture / prior_mass


@pytest.mark.parametrize(
    ("hits", "misses", "rho"), [(5, 5, 0.5), (12, 3, 0.5), (8, 20, 0.2), (3, 40, 0.1)]
)
def test_error_e_value_matches_numerical_integration(hits: int, misses: int, rho: float) -> None:
    log_e = beta_mixture_log_e_value(hits=hits, misses=misses, rho=rho, concentration=10)
    expected = integrated_e_value(hits=hits, misses=misses, rho=rho, concentration=10)
    assert math.exp(log_e) == pytest.approx(expected, rel=1e-4)


def test_error_e_value_is_one_without_canary_errors_or_with_a_degenerate_share() -> None:
    assert beta_mixture_log_e_value(hits=0, misses=50, rho=0.5, concentration=10) == 0.0
    assert beta_mixture_log_e_value(hits=5, misses=0, rho=1.0, concentration=10) == 0.0
    assert beta_mixture_log_e_value(hits=5, misses=0, rho=0.0, concentration=10) == 0.0


def test_error_e_value_grows_with_the_canary_errors() -> None:
    values = [
        beta_mixture_log_e_value(hits=h, misses=10, rho=0.5, concentration=10)
        for h in range(10, 40)
    ]
    assert values == sorted(values)
    assert values[0] < 0 < values[-1]


def test_dkw_radius_follows_the_formula_and_shrinks_with_samples() -> None:
    expected = 0.85 * math.sqrt((math.log(math.log(math.e * 100)) + 0.8 * math.log(161200)) / 100)
    assert dkw_radius(100, 0.01) == pytest.approx(expected)
    assert dkw_radius(0, 0.01) == INF
    assert dkw_radius(10_000, 0.01) < dkw_radius(1000, 0.01) < dkw_radius(100, 0.01)


# -- latency comparison ----------------------------------------------------------------------


def test_tolerated_latency_is_the_larger_of_ratio_and_noise_floor() -> None:
    config = spec()
    assert tolerated_latency(0.100, config) == pytest.approx(0.200)
    assert tolerated_latency(0.001, config) == pytest.approx(0.006)


def test_share_within_rounds_up_to_the_next_bucket_edge() -> None:
    hist = VersionWindow(
        requests=10, errors=0, latency_bounds=(0.01, 0.02, INF), latency_counts=(4, 4, 2)
    )
    assert share_within(hist, 0.005) == 0.4
    assert share_within(hist, 0.01) == 0.8  # an edge itself counts as the next bucket's
    assert share_within(hist, 0.5) == 1.0


def test_latency_gap_finds_where_the_canary_falls_furthest_behind() -> None:
    config = spec(min_latency_increase=0.0)
    baseline = VersionWindow(
        requests=10,
        errors=0,
        latency_bounds=(0.010, 0.020, 0.040, 0.080, INF),
        latency_counts=(8, 2, 0, 0, 0),
    )
    canary = VersionWindow(
        requests=10,
        errors=0,
        latency_bounds=(0.010, 0.020, 0.040, 0.080, INF),
        latency_counts=(0, 0, 1, 9, 0),
    )
    gap = latency_gap(canary, baseline, config)
    # At y = 10 ms: 80 % of the baseline, and 10 % of the canary up to 2 x 10 ms (rounded up
    # to the 40 ms edge).
    assert (gap.at, gap.baseline_share, gap.canary_share) == (0.010, 0.8, 0.1)
    assert gap.gap == pytest.approx(0.7)


# -- verdicts --------------------------------------------------------------------------------


def test_health_failure_fails_at_once() -> None:
    verdict = judge(window(0), None, unhealthy=("web-2",))
    assert verdict.outcome is Outcome.FAIL
    assert verdict.reason == "1 canary instance failing health checks: web-2"
    assert verdict.judge == "sequential"


def test_too_few_requests_without_evidence_is_inconclusive_with_the_requests_needed() -> None:
    verdict = judge(window(40, 1), window(160, 2))
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.requests_needed == 60
    assert verdict.reason == (
        "waiting for 60 more canary requests (40 of 100); no regression detected so far"
    )


def test_an_equal_canary_passes_once_min_requests_arrived() -> None:
    verdict = judge(window(100, 1), window(400, 4))
    assert verdict.outcome is Outcome.PASS
    assert verdict.reason.startswith("no regression detected at 99 % confidence: errors e-value")
    assert verdict.requests_needed == 0
    assert (verdict.canary_requests, verdict.baseline_requests) == (100, 400)


def test_a_gross_error_regression_fails_before_min_requests() -> None:
    verdict = judge(window(60, 20), window(240, 1))
    assert verdict.outcome is Outcome.FAIL
    errors = verdict.measurement("errors")
    assert errors is not None
    assert errors.value is not None and errors.limit == 200
    assert errors.value >= errors.limit
    assert verdict.reason.startswith(
        "canary errors 33.3 % (20 of 60) vs stable 0.4 % (1 of 240): e-value"
    )


def test_more_canary_errors_at_the_same_rate_as_the_baseline_do_not_fail() -> None:
    assert judge(window(5000, 100), window(5000, 100)).outcome is Outcome.PASS


def test_without_a_baseline_errors_are_tested_against_max_error_rate() -> None:
    failing = judge(window(200, 40), None)
    assert failing.outcome is Outcome.FAIL
    assert "vs limit 5 % (no stable version to compare with)" in failing.reason
    at_limit = judge(window(200, 10), None)
    assert at_limit.outcome is Outcome.PASS


def test_a_small_baseline_is_not_compared_with() -> None:
    verdict = judge(window(200, 2), window(49, 0))
    errors = verdict.measurement("errors")
    assert errors is not None
    assert "no stable version to compare with" in errors.detail


def test_a_clearly_slower_canary_fails_on_latency() -> None:
    verdict = judge(window(300, latency=0.100), window(300, latency=0.020))
    assert verdict.outcome is Outcome.FAIL
    assert verdict.reason.startswith("latency regressed (p95 ")
    latency = verdict.measurement("latency")
    assert latency is not None
    assert latency.value is not None and latency.limit is not None
    assert latency.value > latency.limit


def test_a_slowdown_within_the_tolerated_ratio_passes() -> None:
    verdict = judge(window(3000, latency=0.035), window(3000, latency=0.020))
    assert verdict.outcome is Outcome.PASS


def test_recorded_latency_is_the_fallback_without_a_baseline() -> None:
    slow = judge(window(300, latency=0.100), None, recorded=0.020)
    assert slow.outcome is Outcome.FAIL
    assert "vs recorded 20 ms" in slow.reason
    fine = judge(window(300, latency=0.030), None, recorded=0.020)
    assert fine.outcome is Outcome.PASS


def test_without_any_baseline_latency_is_skipped_and_the_reason_says_so() -> None:
    verdict = judge(window(300, latency=0.500), None)
    assert verdict.outcome is Outcome.PASS
    assert "latency not checked: no stable version served traffic" in verdict.reason
    latency = verdict.measurement("latency")
    assert latency is not None
    assert latency.outcome is Outcome.INCONCLUSIVE


def test_sequential_verdicts_round_trip_through_to_dict() -> None:
    for verdict in (
        judge(window(60, 20), window(240, 1)),
        judge(window(300, latency=0.100), window(300, latency=0.020)),
        judge(window(100, 1), window(400, 4)),
        judge(window(40), None),
    ):
        assert Verdict.from_dict(verdict.to_dict()) == verdict


def test_concentration_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SequentialJudge(concentration=0)


# -- seeded simulations ----------------------------------------------------------------------


@dataclass
class Version:
    error_rate: float
    slowdown: float = 1.0
    requests: int = 0
    errors: int = 0
    counts: list[int] = field(default_factory=lambda: [0] * len(BOUNDS))

    def serve(self, rng: random.Random) -> None:
        self.requests += 1
        self.errors += rng.random() < self.error_rate
        latency = self.slowdown * rng.lognormvariate(math.log(0.020), 0.5)
        self.counts[bisect.bisect_left(BOUNDS, latency)] += 1

    def window(self) -> VersionWindow:
        return VersionWindow(
            requests=self.requests,
            errors=self.errors,
            latency_bounds=BOUNDS,
            latency_counts=tuple(self.counts),
        )


def first_failure(
    seed: int,
    *,
    canary: Version,
    baseline: Version,
    share: float,
    config: AnalysisSpec,
    total: int,
    peek_every: int,
) -> int | None:
    """Serve ``total`` requests, asking the judge every ``peek_every``; when did it first fail?"""
    rng = random.Random(seed)
    for served in range(1, total + 1):
        (canary if rng.random() < share else baseline).serve(rng)
        if served % peek_every == 0:
            data = AnalysisInput(canary=canary.window(), baseline=baseline.window())
            if JUDGE.judge(data, config).outcome is Outcome.FAIL:
                return served
    return None


def test_a_a_false_alarms_stay_below_alpha_with_continuous_peeking() -> None:
    # Both versions identical; the latency tolerance as tight as the spec allows (1.01 x, no
    # floor) so the latency test is at its most trigger-happy. Peek every 50 requests.
    alpha, runs = 0.05, 300
    config = spec(alpha=alpha, max_latency_ratio=1.01, min_latency_increase=0.0)
    alarms = sum(
        first_failure(
            seed,
            canary=Version(0.02),
            baseline=Version(0.02),
            share=0.2,
            config=config,
            total=1500,
            peek_every=50,
        )
        is not None
        for seed in range(runs)
    )
    assert alarms <= alpha * runs


def test_a_canary_with_five_times_the_error_rate_is_rejected() -> None:
    config = spec()
    detected = [
        first_failure(
            1000 + seed,
            canary=Version(0.05),
            baseline=Version(0.01),
            share=0.5,
            config=config,
            total=4000,
            peek_every=20,
        )
        for seed in range(30)
    ]
    assert all(at is not None for at in detected)
    assert sorted(at for at in detected if at is not None)[15] < 1500  # median


def test_a_canary_four_times_slower_is_rejected_within_a_thousand_requests() -> None:
    # Four times slower is twice what max_latency_ratio 2.0 tolerates.
    config = spec()
    detected = [
        first_failure(
            2000 + seed,
            canary=Version(0.01, slowdown=4.0),
            baseline=Version(0.01),
            share=0.5,
            config=config,
            total=1000,
            peek_every=20,
        )
        for seed in range(20)
    ]
    assert all(at is not None for at in detected)


def test_a_slowdown_the_spec_tolerates_is_not_rejected() -> None:
    config = spec()
    detected = [
        first_failure(
            3000 + seed,
            canary=Version(0.01, slowdown=1.8),
            baseline=Version(0.01),
            share=0.5,
            config=config,
            total=2000,
            peek_every=50,
        )
        for seed in range(20)
    ]
    assert detected == [None] * 20
