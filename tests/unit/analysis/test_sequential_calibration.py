"""The sequential judge's promises, checked by seeded simulation: false alarms, power, edge cases.

False alarms are checked twice, because no affordable simulation can call the whole judge after
every single request of thousands of runs:

- the error e-process alone, looked at after *every* error (the only moments its counts change),
  3,000 runs for each of three traffic shares: the continuous-peeking guarantee in its own terms,
  at the judge's threshold and at looser ones, so the check has something to measure;
- the whole judge (errors and latency, the request share estimated from the counts as in
  production), 2,000 runs, asked after every canary error (the only moments the error e-value
  jumps up) and after every 40th request (the latency bands and the estimated share move a
  little with each request). The latency tolerance is as tight as the spec allows; the
  histogram has 5 % buckets rather than the proxy's 3 % ones, so the 2,000 runs take seconds.

Power is checked on the issue's headline scenario (2 % baseline errors, a canary with 5x that at
5 % of 200 requests/s, the judge asked every second) and on slower canaries; then the edge cases
(no traffic, nothing but errors, every latency in one bucket) and the latency gap's fast loop
against its direct definition. Everything is seeded, so every number here is reproducible.
"""

from __future__ import annotations

import bisect
import functools
import math
import random
import statistics
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import pytest

from zerodown.analysis import AnalysisInput, Outcome, SequentialJudge, Verdict, VersionWindow
from zerodown.analysis.sequential import (
    DEFAULT_CONCENTRATION,
    beta_mixture_log_e_value,
    latency_gap,
    tolerated_latency,
)
from zerodown.spec.models import AnalysisSpec
from zerodown.traffic.base import latency_bucket, latency_bucket_bounds

INF = math.inf
JUDGE = SequentialJudge()
MEDIAN_LATENCY = 0.020
LATENCY_SIGMA = 0.5
# The proxy's own histogram (32 buckets per power of two, about 3 % wide) from 2 ms to 1 s,
# and a coarser one (5 % wide, 5 ms to 200 ms) for the 2,000-run A/A test, which would take
# minutes with the fine one. Latencies outside a layout fall into its first or last bucket.
PROXY_BOUNDS = (
    *(
        latency_bucket_bounds(index)[1] / 1e6
        for index in range(latency_bucket(2000), latency_bucket(1_000_000))
    ),
    INF,
)
COARSE_BOUNDS = (*(0.005 * 1.05**i for i in range(76)), INF)


def spec(**fields: Any) -> AnalysisSpec:
    return AnalysisSpec(judge="sequential", **fields)


@dataclass
class Version:
    """One version's cumulative counts, fed one request at a time.

    Latencies are lognormal (median 20 ms times ``slowdown``, sigma 0.5), drawn straight into
    the buckets of ``bounds``.
    """

    error_rate: float
    slowdown: float = 1.0
    bounds: tuple[float, ...] = PROXY_BOUNDS
    requests: int = 0
    errors: int = 0
    counts: list[int] = field(init=False)
    cdf: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.bounds)
        law = NormalDist(math.log(MEDIAN_LATENCY * self.slowdown), LATENCY_SIGMA)
        self.cdf = tuple(law.cdf(math.log(bound)) for bound in self.bounds[:-1])

    def serve(self, rng: random.Random) -> bool:
        """Serve one request; True if it failed."""
        self.requests += 1
        self.counts[bisect.bisect(self.cdf, rng.random())] += 1
        failed = rng.random() < self.error_rate
        self.errors += failed
        return failed

    def window(self) -> VersionWindow:
        return VersionWindow(
            requests=self.requests,
            errors=self.errors,
            latency_bounds=self.bounds,
            latency_counts=tuple(self.counts),
        )


def canary_requests_at_first_failure(
    rng: random.Random,
    *,
    canary: Version,
    baseline: Version,
    share: float,
    config: AnalysisSpec,
    requests: int,
    peek_every: int,
    peek_at_canary_errors: bool = True,
) -> int | None:
    """Canary requests served when the judge first fails; None if it never does.

    ``requests`` requests in all, each the canary's with probability ``share``; the judge is
    asked after every ``peek_every`` requests and, if ``peek_at_canary_errors``, after every
    canary error too.
    """
    for served in range(1, requests + 1):
        version = canary if rng.random() < share else baseline
        failed = version.serve(rng)
        canary_error = failed and version is canary and peek_at_canary_errors
        if canary_error or served % peek_every == 0:
            data = AnalysisInput(canary=canary.window(), baseline=baseline.window())
            if JUDGE.judge(data, config).outcome is Outcome.FAIL:
                return canary.requests
    return None


# -- false alarms ------------------------------------------------------------------------------


@functools.cache
def error_log_e(hits: int, misses: int, rho: float) -> float:
    return beta_mixture_log_e_value(
        hits=hits, misses=misses, rho=rho, concentration=DEFAULT_CONCENTRATION
    )


@pytest.mark.parametrize("rho", [0.05, 0.25, 0.5])
def test_the_error_e_process_keeps_its_level_when_looked_at_after_every_error(rho: float) -> None:
    # Under "no difference" each error is the canary's with probability rho. Ville's inequality:
    # P(E ever reaches 1 / a) <= a, for every a at once. a = 0.005 is the judge's own threshold
    # at the default alpha 0.01 (half of alpha goes to errors); the looser levels have enough
    # alarms to show a miscalibration that the strict one would hide.
    runs, events = 3000, 250
    levels = (0.005, 0.02, 0.1)
    rng = random.Random(f"e-process {rho}")
    highest: list[float] = []
    for _ in range(runs):
        hits = misses = 0
        best = -INF
        for _ in range(events):
            if rng.random() < rho:
                hits += 1
            else:
                misses += 1
            best = max(best, error_log_e(hits, misses, rho))
            if best >= math.log(1 / levels[0]):
                break
        highest.append(best)
    for level in levels:
        alarms = sum(value >= math.log(1 / level) for value in highest)
        assert alarms <= level * runs, (level, alarms)
    # The looser level is not trivially met: the test does raise alarms there.
    assert sum(value >= math.log(1 / levels[-1]) for value in highest) >= 0.2 * levels[-1] * runs


def test_identical_versions_are_rolled_back_at_most_alpha_of_the_time_when_peeking() -> None:
    # 2,000 A/A runs of 400 requests at 10 % errors, at canary shares of 5, 25 and 50 %. Every
    # limit sits at its null's edge: max_error_rate at the true error rate (the first requests,
    # before the baseline has 50, are tested against it) and the tightest latency tolerance the
    # spec accepts (1.01 x, no floor). The judge is asked after every canary error and every 40
    # requests.
    alpha, runs = 0.01, 2000
    config = spec(alpha=alpha, max_error_rate=0.1, max_latency_ratio=1.01, min_latency_increase=0.0)
    shares = (0.05, 0.25, 0.5)
    alarms = 0
    for run in range(runs):
        rng = random.Random(f"a/a {run}")
        alarms += (
            canary_requests_at_first_failure(
                rng,
                canary=Version(0.1, bounds=COARSE_BOUNDS),
                baseline=Version(0.1, bounds=COARSE_BOUNDS),
                share=shares[run % len(shares)],
                config=config,
                requests=400,
                peek_every=40,
            )
            is not None
        )
    assert alarms <= alpha * runs, alarms


# -- power -------------------------------------------------------------------------------------


def detections(
    *,
    runs: int,
    seed: str,
    canary: tuple[float, float],
    share: float,
    config: AnalysisSpec,
    requests: int,
    peek_every: int,
) -> list[int | None]:
    """Canary requests at the first failure of ``runs`` runs (baseline: 2 % errors)."""
    error_rate, slowdown = canary
    return [
        canary_requests_at_first_failure(
            random.Random(f"{seed} {run}"),
            canary=Version(error_rate, slowdown),
            baseline=Version(0.02),
            share=share,
            config=config,
            requests=requests,
            peek_every=peek_every,
            peek_at_canary_errors=False,
        )
        for run in range(runs)
    ]


def test_the_headline_regression_is_rolled_back_within_a_fifth_of_the_thresholds_judge() -> None:
    # Baseline 2 % errors, canary 10 %, canary weight 5 % of 200 requests/s, judged every second
    # (every 200 requests). The thresholds judge, run as Flagger and Argo Rollouts run it, needs
    # one 60 s window: 600 canary requests. The target is at most a fifth of that.
    found = detections(
        runs=60,
        seed="headline",
        canary=(0.10, 1.0),
        share=0.05,
        config=spec(),
        requests=12_000,
        peek_every=200,
    )
    assert all(at is not None for at in found)
    assert statistics.median(at for at in found if at is not None) <= 0.2 * 600


def test_twice_the_baseline_error_rate_is_rolled_back_although_it_stays_under_the_limit() -> None:
    # 4 % against 2 %: under max_error_rate (5 %), so the thresholds judge never fails it.
    found = detections(
        runs=20,
        seed="errors x2",
        canary=(0.04, 1.0),
        share=0.25,
        config=spec(),
        requests=30_000,
        peek_every=1000,
    )
    assert sum(at is not None for at in found) >= 18


@pytest.mark.parametrize(
    ("slowdown", "share", "ratio"),
    [(3.0, 0.05, 2.0), (1.5, 0.25, 1.2)],
    ids=["3x slower at 5 %, tolerance 2x", "1.5x slower at 25 %, tolerance 1.2x"],
)
def test_a_slowdown_beyond_the_tolerance_is_rolled_back(
    slowdown: float, share: float, ratio: float
) -> None:
    config = spec(max_latency_ratio=ratio, min_latency_increase=0.0)
    found = detections(
        runs=20,
        seed=f"latency x{slowdown}",
        canary=(0.02, slowdown),
        share=share,
        config=config,
        requests=10_000,
        peek_every=200,
    )
    assert all(at is not None for at in found)
    assert statistics.median(at for at in found if at is not None) <= 1000


# -- edge cases --------------------------------------------------------------------------------


def window(requests: int, errors: int = 0, *, bucket: int | None = 10) -> VersionWindow:
    """``requests`` requests, all their latencies in bucket ``bucket`` (None: no latencies)."""
    counts = [0] * len(COARSE_BOUNDS)
    if bucket is not None and requests:
        counts[bucket] = requests
    return VersionWindow(
        requests=requests,
        errors=errors,
        latency_bounds=COARSE_BOUNDS if bucket is not None else (),
        latency_counts=tuple(counts) if bucket is not None else (),
    )


def judge(canary: VersionWindow, baseline: VersionWindow | None, **config: Any) -> Verdict:
    return JUDGE.judge(AnalysisInput(canary=canary, baseline=baseline), spec(**config))


@pytest.mark.parametrize("baseline", [None, window(0), window(500, 10)])
def test_no_canary_traffic_is_inconclusive(baseline: VersionWindow | None) -> None:
    verdict = judge(window(0), baseline)
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.requests_needed == 100


@pytest.mark.parametrize("requests", [1, 40, 100, 5000])
def test_every_request_failing_on_both_versions_is_inconclusive(requests: int) -> None:
    # Both versions fail everything (a shared dependency is down, say): the comparison says
    # nothing about whether the canary works, so neither a rollback nor a promotion.
    stable = 50 + 4 * requests
    verdict = judge(window(requests, requests), window(stable, stable))
    assert verdict.outcome is Outcome.INCONCLUSIVE
    errors = verdict.measurement("errors")
    assert errors is not None
    assert errors.outcome is Outcome.INCONCLUSIVE
    assert "every request failed" in verdict.reason


def test_a_canary_failing_everything_against_a_working_baseline_still_fails() -> None:
    assert judge(window(40, 40), window(800, 16)).outcome is Outcome.FAIL
    assert judge(window(40, 40), None).outcome is Outcome.FAIL


@pytest.mark.parametrize("requests", [5, 60])
def test_zero_latency_variance_below_min_requests_is_inconclusive(requests: int) -> None:
    verdict = judge(window(requests, bucket=3), window(4 * requests, bucket=3))
    assert verdict.outcome is Outcome.INCONCLUSIVE


def test_zero_latency_variance_does_not_fail_identical_versions() -> None:
    # Every latency of both versions in one bucket: identical at the histogram's resolution.
    verdict = judge(window(500, bucket=3), window(2000, bucket=3), max_latency_ratio=1.01)
    assert verdict.outcome is Outcome.PASS


def test_zero_latency_variance_still_sees_a_canary_in_a_much_slower_bucket() -> None:
    verdict = judge(window(500, bucket=40), window(2000, bucket=3))
    assert verdict.outcome is Outcome.FAIL
    latency = verdict.measurement("latency")
    assert latency is not None
    assert latency.outcome is Outcome.FAIL


# -- the latency gap, against the direct definition --------------------------------------------


def direct_latency_gap(
    canary: VersionWindow, baseline: VersionWindow, config: AnalysisSpec
) -> tuple[float, float]:
    """``max over y of F_A(y) - F_B(first canary edge above tolerated(y))``, and its first y."""
    best, at = -1.0, 0.0
    for edge, cumulative in zip(baseline.latency_bounds, baseline.cumulative_counts(), strict=True):
        if math.isinf(edge):
            break
        tolerated = tolerated_latency(edge, config)
        above = [i for i, e in enumerate(canary.latency_bounds) if e > tolerated]
        canary_share = canary.cumulative_counts()[above[0]] / canary.latency_count if above else 1.0
        gap = cumulative / baseline.latency_count - canary_share
        if gap > best:
            best, at = gap, edge
    return best, at


@pytest.mark.parametrize("seed", range(10))
def test_latency_gap_matches_its_direct_definition(seed: int) -> None:
    rng = random.Random(seed)

    def histogram() -> VersionWindow:
        edges = sorted({round(rng.uniform(0.001, 0.2), 4) for _ in range(rng.randint(1, 30))})
        bounds = (*edges, INF) if rng.random() < 0.5 else tuple(edges)
        counts = tuple(rng.choice([0, 0, rng.randint(1, 50)]) for _ in bounds)
        if not sum(counts):
            counts = (1, *counts[1:])
        return VersionWindow(
            requests=sum(counts), errors=0, latency_bounds=bounds, latency_counts=counts
        )

    config = spec(
        max_latency_ratio=rng.choice([1.01, 1.25, 2.0]),
        min_latency_increase=rng.choice([0.0, 0.005]),
    )
    for _ in range(20):
        canary, baseline = histogram(), histogram()
        found = latency_gap(canary, baseline, config)
        assert (found.gap, found.at) == direct_latency_gap(canary, baseline, config)
