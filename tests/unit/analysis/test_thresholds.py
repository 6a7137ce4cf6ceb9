"""The thresholds judge: each rule at its edges, the order of the rules, and the wording."""

from __future__ import annotations

import math
from typing import Any

import pytest

from zerodown.analysis import AnalysisInput, Outcome, ThresholdJudge, Verdict, VersionWindow
from zerodown.spec.models import AnalysisSpec

INF = math.inf
JUDGE = ThresholdJudge()


def window(
    requests: int, errors: int = 0, *, unavailable: int = 0, p95: float | None = 0.010
) -> VersionWindow:
    """A window whose p95 latency is exactly ``p95`` (95 latencies up to it, 5 above)."""
    bounds, counts = ((p95, INF), (95, 5)) if p95 is not None else ((), ())
    made = VersionWindow(
        requests=requests,
        errors=errors,
        unavailable=unavailable,
        latency_bounds=bounds,
        latency_counts=counts,
    )
    assert made.quantile(0.95) == p95
    return made


def judge(
    canary: VersionWindow,
    baseline: VersionWindow | None = None,
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
        elapsed=30.0,
    )
    return JUDGE.judge(data, AnalysisSpec(**config))


def outcome_of(verdict: Verdict, name: str) -> Outcome:
    measurement = verdict.measurement(name)
    assert measurement is not None
    return measurement.outcome


STABLE = window(2000, 4, p95=0.011)


# -- error rate -----------------------------------------------------------------------------


def test_error_rate_exactly_at_the_limit_passes() -> None:
    verdict = judge(window(100, 5), STABLE)
    assert verdict.outcome is Outcome.PASS
    assert "error rate 5 % ≤ 5 %" in verdict.reason


def test_error_rate_just_above_the_limit_fails_with_its_numbers() -> None:
    verdict = judge(window(1000, 51), STABLE)
    assert verdict.outcome is Outcome.FAIL
    assert verdict.reason == "error rate 5.1 % > 5 % (51 of 1000 requests)"
    measurement = verdict.measurement("error_rate")
    assert measurement is not None
    assert (measurement.value, measurement.limit, measurement.baseline) == (0.051, 0.05, 0.002)


def test_error_rate_failure_reads_as_the_operator_expects() -> None:
    verdict = judge(window(494, 39), STABLE)
    assert verdict.reason == "error rate 7.9 % > 5 % (39 of 494 requests)"


def test_zero_error_rate_limit_fails_on_the_first_error() -> None:
    assert judge(window(1, 1), STABLE, max_error_rate=0.0).outcome is Outcome.FAIL
    assert judge(window(100, 0), STABLE, max_error_rate=0.0).outcome is Outcome.PASS


# -- availability ----------------------------------------------------------------------------


def test_availability_exactly_at_the_limit_passes() -> None:
    verdict = judge(window(100, 1, unavailable=1), STABLE)
    assert verdict.outcome is Outcome.PASS
    assert "availability 99 % ≥ 99 %" in verdict.reason


def test_availability_just_below_the_limit_fails() -> None:
    verdict = judge(window(1000, 11, unavailable=11), STABLE)
    assert verdict.outcome is Outcome.FAIL
    assert verdict.reason == "availability 98.9 % < 99 % (11 of 1000 requests not served)"


def test_availability_shows_enough_decimals_to_tell_value_and_limit_apart() -> None:
    verdict = judge(window(10000, 5, unavailable=5), STABLE, min_availability=0.9999)
    assert verdict.outcome is Outcome.FAIL
    assert "availability 99.95 % < 99.99 %" in verdict.reason


# -- too few requests ------------------------------------------------------------------------


def test_too_few_requests_is_inconclusive_with_the_requests_still_needed() -> None:
    verdict = judge(window(40, 2), STABLE)
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.requests_needed == 60
    assert verdict.reason == "waiting for 60 more canary requests (40 of 100)"
    assert verdict.canary_requests == 40
    assert verdict.baseline_requests == 2000


def test_no_requests_at_all_is_inconclusive() -> None:
    verdict = judge(window(0, p95=None), None)
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.requests_needed == 100


def test_one_request_short_is_inconclusive_and_reaching_min_requests_decides() -> None:
    assert judge(window(99), STABLE).requests_needed == 1
    assert judge(window(100), STABLE).outcome is Outcome.PASS


def test_early_fail_once_the_errors_alone_exceed_the_limit_of_min_requests() -> None:
    # 5 errors are 5 % of the 100 requests needed: the canary can still pass.
    five = judge(window(5, 5), STABLE)
    assert five.outcome is Outcome.INCONCLUSIVE
    assert five.requests_needed == 95
    # The 6th error makes 6 % at best: fail now, whatever the remaining requests do.
    six = judge(window(6, 6), STABLE)
    assert six.outcome is Outcome.FAIL
    assert six.requests_needed == 0
    assert six.reason == (
        "error rate 100 % > 5 % (6 of 6 requests): 6 errors already exceed 5 % "
        "of the 100 requests needed"
    )


def test_early_fail_on_unserved_requests() -> None:
    assert judge(window(40, 1, unavailable=1), STABLE).outcome is Outcome.INCONCLUSIVE
    verdict = judge(window(40, 2, unavailable=2), STABLE)
    assert verdict.outcome is Outcome.FAIL
    assert "2 unserved requests already exceed 1 % of the 100 requests needed" in verdict.reason


def test_a_high_rate_on_few_requests_is_not_an_early_fail() -> None:
    # 3 of 10 is 30 %, but 3 errors in 100 requests would pass.
    assert judge(window(10, 3), STABLE).outcome is Outcome.INCONCLUSIVE


def test_slow_canary_below_min_requests_is_inconclusive_not_failed() -> None:
    verdict = judge(window(50, p95=0.5), STABLE)
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert outcome_of(verdict, "latency") is Outcome.INCONCLUSIVE


# -- latency ---------------------------------------------------------------------------------


def test_latency_exactly_at_the_ratio_passes() -> None:
    verdict = judge(window(500, p95=0.020), window(500, p95=0.010))
    assert verdict.outcome is Outcome.PASS
    assert "p95 20 ms ≤ 2.0 × 10 ms" in verdict.reason


def test_latency_above_the_ratio_and_the_noise_floor_fails() -> None:
    verdict = judge(window(500, p95=0.0201), window(500, p95=0.010))
    assert verdict.outcome is Outcome.FAIL
    assert verdict.reason.startswith("p95 20.1 ms > 2.0 × 10 ms (stable version, same window")
    latency = verdict.measurement("latency")
    assert latency is not None
    assert (latency.value, latency.baseline, latency.limit) == (0.0201, 0.010, 0.020)


def test_latency_above_the_ratio_but_within_the_noise_floor_passes() -> None:
    verdict = judge(window(500, p95=0.0059), window(500, p95=0.001))
    assert verdict.outcome is Outcome.PASS
    assert "p95 5.9 ms within 5 ms of 1 ms" in verdict.reason
    latency = verdict.measurement("latency")
    assert latency is not None
    assert latency.limit == pytest.approx(0.006)


def test_latency_just_beyond_the_noise_floor_fails() -> None:
    verdict = judge(window(500, p95=0.0061), window(500, p95=0.001))
    assert verdict.outcome is Outcome.FAIL


def test_the_noise_floor_is_configurable() -> None:
    canary, baseline = window(500, p95=0.0061), window(500, p95=0.001)
    assert judge(canary, baseline, min_latency_increase=0.01).outcome is Outcome.PASS


def test_latency_uses_the_configured_quantile_and_ratio() -> None:
    # p50 of (95 at <= 10 ms, 5 above) is 5.26 ms; of the baseline's 1 ms bucket, 0.53 ms.
    verdict = judge(
        window(500, p95=0.010),
        window(500, p95=0.001),
        latency_quantile="p50",
        max_latency_ratio=20.0,
    )
    assert verdict.outcome is Outcome.PASS
    assert "p50 5.26 ms ≤ 20.0 × 526 µs" in verdict.reason


# -- baseline fallback order -----------------------------------------------------------------


def test_same_window_baseline_wins_over_the_recorded_latency() -> None:
    verdict = judge(window(500, p95=0.030), window(50, p95=0.010), recorded=0.100)
    assert verdict.outcome is Outcome.FAIL
    latency = verdict.measurement("latency")
    assert latency is not None
    assert latency.baseline == 0.010


def test_recorded_latency_is_used_when_the_baseline_window_has_under_50_requests() -> None:
    verdict = judge(window(500, p95=0.030), window(49, p95=0.010), recorded=0.020)
    assert verdict.outcome is Outcome.PASS
    assert "p95 30 ms ≤ 2.0 × 20 ms (recorded baseline)" in verdict.reason
    latency = verdict.measurement("latency")
    assert latency is not None
    assert latency.baseline == 0.020
    assert "recorded for the previous release" in latency.detail


def test_baseline_threshold_is_min_requests_when_that_is_below_50() -> None:
    verdict = judge(window(500, p95=0.030), window(20, p95=0.010), min_requests=20)
    assert verdict.outcome is Outcome.FAIL
    verdict = judge(window(500, p95=0.030), window(19, p95=0.010), min_requests=20)
    assert verdict.outcome is Outcome.PASS


def test_recorded_latency_is_used_without_any_baseline_window() -> None:
    verdict = judge(window(500, p95=0.050), None, recorded=0.020)
    assert verdict.outcome is Outcome.FAIL
    assert "recorded for the previous release" in verdict.reason


def test_without_any_baseline_latency_is_skipped_and_the_reason_says_so() -> None:
    verdict = judge(window(500, p95=0.500), None)
    assert verdict.outcome is Outcome.PASS
    assert "latency p95 500 ms not checked: no stable version served traffic" in verdict.reason
    latency = verdict.measurement("latency")
    assert latency is not None
    assert latency.outcome is Outcome.INCONCLUSIVE
    assert latency.limit is None


def test_a_small_baseline_without_recorded_latency_skips_latency_and_says_why() -> None:
    verdict = judge(window(500, p95=0.500), window(10, p95=0.010))
    assert verdict.outcome is Outcome.PASS
    assert "the stable version served 10 requests (fewer than 50" in verdict.reason


def test_without_canary_latencies_latency_is_skipped() -> None:
    verdict = judge(window(500, p95=None), STABLE)
    assert verdict.outcome is Outcome.PASS
    assert "latency not checked: no canary latencies recorded" in verdict.reason


# -- health ----------------------------------------------------------------------------------


def test_health_check_failure_fails_at_once_without_requests() -> None:
    verdict = judge(window(0, p95=None), None, unhealthy=("web-3",))
    assert verdict.outcome is Outcome.FAIL
    assert verdict.reason == "1 canary instance failing health checks: web-3"
    assert verdict.requests_needed == 0


def test_health_failure_comes_first_among_several_failures() -> None:
    verdict = judge(window(1000, 100), STABLE, unhealthy=("web-3", "web-4"))
    assert verdict.outcome is Outcome.FAIL
    assert verdict.reason.startswith("2 canary instances failing health checks: web-3, web-4; ")
    assert "error rate 10 % > 5 %" in verdict.reason


def test_unhealthy_instances_are_reported_but_ignored_when_rollback_on_health_is_off() -> None:
    verdict = judge(
        window(500), STABLE, unhealthy=("web-3",), rollback_on_health_check_failure=False
    )
    assert verdict.outcome is Outcome.PASS
    assert "ignored: rollbackOnHealthCheckFailure is off" in verdict.reason
    assert outcome_of(verdict, "health") is Outcome.PASS


# -- passing verdicts ------------------------------------------------------------------------


def test_pass_summarises_every_number() -> None:
    verdict = judge(window(500, 2, p95=0.012), STABLE)
    assert verdict.outcome is Outcome.PASS
    assert (
        verdict.reason
        == "error rate 0.4 % ≤ 5 %, availability 100 % ≥ 99 %, p95 12 ms ≤ 2.0 × 11 ms"
    )
    assert [m.name for m in verdict.measurements] == [
        "health",
        "error_rate",
        "availability",
        "latency",
    ]
    assert all(m.outcome is Outcome.PASS for m in verdict.measurements)
    assert verdict.judge == "thresholds"


def test_a_tiny_error_rate_is_not_printed_as_zero() -> None:
    verdict = judge(window(10000, 2), STABLE)
    assert "error rate 0.02 % ≤ 5 %" in verdict.reason


@pytest.mark.parametrize(
    ("canary", "baseline", "unhealthy"),
    [
        (window(500, 2), STABLE, ()),
        (window(494, 39), STABLE, ()),
        (window(40, 2), None, ()),
        (window(0, p95=None), None, ("web-1",)),
    ],
)
def test_real_verdicts_round_trip_through_to_dict(
    canary: VersionWindow, baseline: VersionWindow | None, unhealthy: tuple[str, ...]
) -> None:
    verdict = judge(canary, baseline, unhealthy=unhealthy)
    assert Verdict.from_dict(verdict.to_dict()) == verdict
