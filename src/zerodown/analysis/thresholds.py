"""The ``thresholds`` judge: fixed limits on error rate, availability, latency and health.

The rules, in the order they are decided:

1. **Health.** With ``rollback_on_health_check_failure`` on, any canary instance failing its
   health check fails the verdict at once, whatever the request count.
2. **Enough requests.** Below ``min_requests`` canary requests the verdict is inconclusive and
   says how many more are needed, unless a failure is already certain (*early fail*): the
   errors (or unavailable requests) seen so far, divided by ``min_requests``, already break the
   limit. That is the best rate the canary can reach at ``min_requests`` even if every request
   still to come succeeds, so waiting could not change the verdict taken there. With
   ``max_error_rate`` 5 % and ``min_requests`` 100, the 6th error fails the canary early.
3. **Error rate and availability.** ``errors / requests > max_error_rate`` fails;
   ``(requests - unavailable) / requests < min_availability`` fails. Exactly at the limit passes.
4. **Log errors** (only with ``max_log_error_rate`` set): error-level log lines per canary
   request, decided like the error rate (see ``log_errors.py``); every judge applies it.
5. **Latency.** The canary's ``latency_quantile`` fails when it is above ``max_latency_ratio``
   times the baseline's *and* more than ``min_latency_increase`` above it (a noise floor, so
   1 ms -> 3 ms is not a regression). The baseline comes from the stable version over the same
   window if it served at least ``min(min_requests, 50)`` requests, else from the latency
   recorded for the previous release, else the rule is skipped, and both the measurement and
   the verdict's reason say so.
6. Otherwise the canary passes, and the reason summarises the numbers.

Every rule is measured on every call, so even an early verdict reports all the numbers known.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from zerodown.analysis import wording
from zerodown.analysis.base import (
    BASELINE_MIN_REQUESTS,
    AnalysisInput,
    Measurement,
    Outcome,
    Verdict,
    quantile_fraction,
)
from zerodown.analysis.health import health_measurement
from zerodown.analysis.log_errors import log_error_measurement
from zerodown.spec.models import AnalysisSpec

__all__ = ["BaselineLatency", "ThresholdJudge", "baseline_latency"]


class _Rule(NamedTuple):
    """One rule's measurement, and its short form for a passing verdict's reason."""

    measurement: Measurement
    summary: str


class ThresholdJudge:
    """Fixed limits from the spec, checked rule by rule (see the module docstring)."""

    name = "thresholds"

    def judge(self, data: AnalysisInput, config: AnalysisSpec) -> Verdict:
        canary = data.canary
        enough = canary.requests >= config.min_requests
        health = health_measurement(data, config)
        rules = (
            _error_rate(data, config, enough=enough),
            _availability(data, config, enough=enough),
            _latency(data, config, enough=enough),
        )
        log_errors = log_error_measurement(data, config)
        extra = (log_errors,) if log_errors is not None else ()
        measurements = (health, *(rule.measurement for rule in rules), *extra)
        baseline_requests = data.baseline.requests if data.baseline is not None else 0
        failed = [m for m in measurements if m.outcome is Outcome.FAIL]
        if failed:
            outcome = Outcome.FAIL
            reason = "; ".join(m.detail for m in failed)
            needed = 0
        elif not enough:
            outcome = Outcome.INCONCLUSIVE
            needed = config.min_requests - canary.requests
            reason = (
                f"waiting for {needed} more canary requests "
                f"({canary.requests} of {config.min_requests})"
            )
        else:
            outcome = Outcome.PASS
            needed = 0
            reason = ", ".join(
                [rule.summary for rule in rules]
                + [m.detail for m in extra]
                + ([health.detail] if health.value else [])
            )
        return Verdict(
            outcome=outcome,
            reason=reason,
            measurements=measurements,
            judge=self.name,
            requests_needed=needed,
            canary_requests=canary.requests,
            baseline_requests=baseline_requests,
        )


def _error_rate(data: AnalysisInput, config: AnalysisSpec, *, enough: bool) -> _Rule:
    canary = data.canary
    return _rate_rule(
        name="error_rate",
        label="error rate",
        value=canary.error_rate(),
        best_case=canary.errors / config.min_requests,
        limit=config.max_error_rate,
        higher_is_worse=True,
        baseline=data.baseline.error_rate() if data.baseline is not None else None,
        counts=f"{canary.errors} of {canary.requests} requests",
        early=f"{canary.errors} errors",
        min_requests=config.min_requests,
        enough=enough,
    )


def _availability(data: AnalysisInput, config: AnalysisSpec, *, enough: bool) -> _Rule:
    canary = data.canary
    return _rate_rule(
        name="availability",
        label="availability",
        value=canary.availability(),
        best_case=(config.min_requests - canary.unavailable) / config.min_requests,
        limit=config.min_availability,
        higher_is_worse=False,
        baseline=data.baseline.availability() if data.baseline is not None else None,
        counts=f"{canary.unavailable} of {canary.requests} requests not served",
        early=f"{canary.unavailable} unserved requests",
        min_requests=config.min_requests,
        enough=enough,
    )


def _rate_rule(
    *,
    name: str,
    label: str,
    value: float | None,
    best_case: float,
    limit: float,
    higher_is_worse: bool,
    baseline: float | None,
    counts: str,
    early: str,
    min_requests: int,
    enough: bool,
) -> _Rule:
    """A rate held to a limit; below ``min_requests`` only ``best_case`` can fail it.

    ``best_case`` is the rate at ``min_requests`` if every request still to come is good.
    """
    if value is None:
        unknown = Measurement(
            name=name,
            value=None,
            limit=limit,
            baseline=baseline,
            outcome=Outcome.INCONCLUSIVE,
            detail=f"{label} unknown: no canary requests yet",
        )
        return _Rule(unknown, unknown.detail)
    worse, fine = (">", "≤") if higher_is_worse else ("<", "≥")

    def breaks(rate: float) -> bool:
        return rate > limit if higher_is_worse else rate < limit

    shown, shown_limit = wording.percent_pair(value, limit)
    if enough:
        failed = breaks(value)
        outcome = Outcome.FAIL if failed else Outcome.PASS
        summary = f"{label} {shown} {worse if failed else fine} {shown_limit}"
        detail = f"{summary} ({counts})"
    elif breaks(best_case):
        outcome = Outcome.FAIL
        summary = f"{label} {shown} {worse} {shown_limit}"
        allowed = limit if higher_is_worse else 1.0 - limit
        detail = (
            f"{summary} ({counts}): {early} already exceed {wording.percent(allowed)} "
            f"of the {min_requests} requests needed"
        )
    else:
        outcome = Outcome.INCONCLUSIVE
        summary = f"{label} {shown} so far"
        detail = f"{summary} ({counts})"
    measurement = Measurement(
        name=name, value=value, limit=limit, baseline=baseline, outcome=outcome, detail=detail
    )
    return _Rule(measurement, summary)


class BaselineLatency(NamedTuple):
    """The baseline's latency at the spec's quantile, and where it came from."""

    seconds: float
    source: str
    """``stable version, same window, 340 requests`` or ``recorded for the previous release``."""
    recorded: bool
    """True when it is the previous release's recorded latency, not the same window's."""


def baseline_latency(data: AnalysisInput, config: AnalysisSpec) -> BaselineLatency | None:
    """The baseline latency at ``latency_quantile``, or None when there is none to compare with.

    The stable version over the same window if it served ``min(min_requests, 50)`` requests
    (and recorded latencies), else the previous release's recorded latency, else None.
    """
    q = quantile_fraction(config.latency_quantile)
    window = data.baseline
    if window is not None and window.requests >= min(config.min_requests, BASELINE_MIN_REQUESTS):
        value = window.quantile(q)
        if value is not None:
            source = f"stable version, same window, {window.requests} requests"
            return BaselineLatency(value, source, recorded=False)
    recorded = data.recorded_baseline_latency
    if recorded is not None and math.isfinite(recorded) and recorded >= 0:
        return BaselineLatency(recorded, "recorded for the previous release", recorded=True)
    return None


def _no_baseline_reason(data: AnalysisInput, config: AnalysisSpec) -> str:
    needed = min(config.min_requests, BASELINE_MIN_REQUESTS)
    if data.baseline is None:
        return "no stable version served traffic and no latency was recorded for it"
    return (
        f"the stable version served {data.baseline.requests} requests (fewer than {needed}, "
        "or none with a latency) and no latency was recorded for it"
    )


def _latency(data: AnalysisInput, config: AnalysisSpec, *, enough: bool) -> _Rule:
    name = config.latency_quantile
    canary = data.canary.quantile(quantile_fraction(name))
    found = baseline_latency(data, config)
    if canary is None or found is None:
        why = (
            "no canary latencies recorded" if canary is None else _no_baseline_reason(data, config)
        )
        shown = f"{name} {wording.seconds(canary)} " if canary is not None else ""
        skipped = Measurement(
            name="latency",
            value=canary,
            limit=None,
            baseline=found.seconds if found else None,
            outcome=Outcome.INCONCLUSIVE,
            detail=f"latency {shown}not checked: {why}",
        )
        return _Rule(skipped, skipped.detail)
    base, source = found.seconds, found.source
    ratio, floor = config.max_latency_ratio, config.min_latency_increase
    limit = max(ratio * base, base + floor)
    over_ratio = canary > ratio * base
    over_floor = canary - base > floor
    compared = f"{name} {wording.seconds(canary)}"
    against = f"{wording.ratio(ratio)} × {wording.seconds(base)} ({source})"
    if over_ratio and over_floor:
        outcome = Outcome.FAIL if enough else Outcome.INCONCLUSIVE
        detail = (
            f"{compared} > {against}, {wording.seconds(canary - base)} slower "
            f"(more than the {wording.seconds(floor)} noise floor)"
        )
        if not enough:
            detail += " so far"
    elif over_ratio:
        outcome = Outcome.PASS if enough else Outcome.INCONCLUSIVE
        detail = f"{compared} > {against}, but within the {wording.seconds(floor)} noise floor"
    else:
        outcome = Outcome.PASS if enough else Outcome.INCONCLUSIVE
        detail = f"{compared} ≤ {against}"
    measurement = Measurement(
        name="latency", value=canary, limit=limit, baseline=base, outcome=outcome, detail=detail
    )
    if over_ratio and not over_floor:
        summary = f"{compared} within {wording.seconds(floor)} of {wording.seconds(base)}"
    else:
        summary = f"{compared} ≤ {wording.ratio(ratio)} × {wording.seconds(base)}"
    if found.recorded:
        summary += " (recorded baseline)"
    return _Rule(measurement, summary)
