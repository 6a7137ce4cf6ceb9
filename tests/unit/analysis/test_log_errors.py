"""analysis.maxLogErrorRate: error-level log lines per canary request, in every judge."""

from __future__ import annotations

from typing import Any

import pytest

from zerodown.analysis import (
    AnalysisInput,
    MannWhitneyJudge,
    Outcome,
    SequentialJudge,
    ThresholdJudge,
    Verdict,
    VersionWindow,
)
from zerodown.analysis.base import Judge
from zerodown.spec import parse_spec
from zerodown.spec.defaults import effective_analysis
from zerodown.spec.models import AnalysisSpec
from zerodown.spec.steps import AnalysisStep

LATENCY = {"latency_bounds": (0.01, 0.02), "latency_counts": (90, 10)}


def window(requests: int, log_errors: int = 0, errors: int = 0) -> VersionWindow:
    return VersionWindow(requests=requests, errors=errors, log_errors=log_errors, **LATENCY)


def judge(
    canary: VersionWindow,
    baseline: VersionWindow | None = None,
    judge: Judge | None = None,
    **config: Any,
) -> Verdict:
    data = AnalysisInput(canary=canary, baseline=baseline, elapsed=30.0)
    return (judge or ThresholdJudge()).judge(data, AnalysisSpec(**config))


def test_without_the_setting_log_errors_are_not_judged() -> None:
    verdict = judge(window(200, log_errors=200), window(800))
    assert verdict.outcome is Outcome.PASS
    assert verdict.measurement("log_error_rate") is None


def test_above_the_limit_fails_even_with_no_http_error() -> None:
    verdict = judge(window(200, log_errors=11), window(800, log_errors=2), max_log_error_rate=0.05)
    assert verdict.outcome is Outcome.FAIL
    m = verdict.measurement("log_error_rate")
    assert m is not None and m.outcome is Outcome.FAIL
    assert m.value == pytest.approx(0.055) and m.limit == 0.05 and m.baseline == 0.0025
    assert verdict.reason == "log error rate 5.5 % > 5 % (11 error log lines in 200 requests)"


def test_exactly_at_the_limit_passes_and_the_reason_shows_it() -> None:
    verdict = judge(window(200, log_errors=10), window(800), max_log_error_rate=0.05)
    assert verdict.outcome is Outcome.PASS
    assert "log error rate 5 % ≤ 5 % (10 error log lines in 200 requests)" in verdict.reason


def test_below_min_requests_only_a_certain_failure_is_decided() -> None:
    waiting = judge(window(20, log_errors=5), max_log_error_rate=0.05, min_requests=100)
    assert waiting.outcome is Outcome.INCONCLUSIVE
    m = waiting.measurement("log_error_rate")
    assert m is not None and m.outcome is Outcome.INCONCLUSIVE
    assert m.detail == "log error rate 25 % so far (5 error log lines in 20 requests)"
    early = judge(window(20, log_errors=6), max_log_error_rate=0.05, min_requests=100)
    assert early.outcome is Outcome.FAIL
    assert "6 error log lines already exceed 5 % of the 100 requests needed" in early.reason


def test_errors_before_the_first_request_can_fail_early() -> None:
    verdict = judge(window(0, log_errors=30), max_log_error_rate=0.05, min_requests=100)
    assert verdict.outcome is Outcome.FAIL
    m = verdict.measurement("log_error_rate")
    assert m is not None and m.value is None
    assert m.detail.startswith("log error rate > 5 % (30 error log lines in 0 requests)")
    quiet = judge(window(0), max_log_error_rate=0.05)
    m = quiet.measurement("log_error_rate")
    assert m is not None and m.outcome is Outcome.INCONCLUSIVE and "unknown" in m.detail


@pytest.mark.parametrize("other", [SequentialJudge(), MannWhitneyJudge()], ids=lambda j: j.name)
def test_the_other_judges_apply_the_same_rule(other: Judge) -> None:
    bad = judge(window(400, log_errors=40), window(1600), judge=other, max_log_error_rate=0.05)
    assert bad.outcome is Outcome.FAIL and "log error rate 10 % > 5 %" in bad.reason
    fine = judge(window(400, log_errors=4), window(1600), judge=other, max_log_error_rate=0.05)
    assert fine.outcome is not Outcome.FAIL


def test_the_spec_key_reads_percentages_and_steps_can_override_it() -> None:
    text = (
        "service: web\nrun: {command: serve}\ntraffic: {listen: 127.0.0.1:8080}\n"
        "healthCheck: {http: {path: /healthz}}\n"
        "analysis: {maxLogErrorRate: 2%}\n"
    )
    spec = parse_spec(text, filename="zerodown.yaml").spec
    assert spec.analysis.max_log_error_rate == pytest.approx(0.02)
    step = AnalysisStep.model_validate({"analysis": {"maxLogErrorRate": 0.1}})
    assert effective_analysis(spec, step).max_log_error_rate == pytest.approx(0.1)
    assert AnalysisSpec().max_log_error_rate is None


def test_a_negative_log_error_count_is_a_bug() -> None:
    with pytest.raises(ValueError, match="negative"):
        VersionWindow(requests=1, errors=0, log_errors=-1)
