"""The ``sequential`` judge: anytime-valid tests that may be checked after every interval.

A fixed-sample test checked again and again raises false alarms far above its nominal rate
(Kayenta-style repeated Mann-Whitney tests reject most A/A comparisons). The tests here are
e-processes and time-uniform confidence bands instead: however often the engine asks, the
chance that a canary no worse than its baseline is ever rolled back stays below ``alpha``.
``alpha`` is split evenly between the two metrics, errors and latency.

Errors (F1 of the canary-statistics notes)
    Under "no difference" each error comes from the canary with probability ``rho``, the
    canary's share of the window's requests. The e-value is a Beta(k rho, k (1 - rho)) mixture
    of likelihood ratios, with the prior truncated to ``theta > rho`` so only *more* canary
    errors count as evidence:

        ln E = betaln(a + N_B, b + N_A) - betaln(a, b) - N_B ln rho - N_A ln(1 - rho)
               + ln(1 - I_rho(a + N_B, b + N_A)) - ln(1 - I_rho(a, b))

    with N_B, N_A the canary's and baseline's errors and k = ``concentration`` (10: a gross
    failure is caught within a few dozen errors). The canary fails when E >= 2 / alpha.
    Without a usable baseline (fewer than ``min(min_requests, 50)`` stable requests) the same
    mixture tests the canary's error rate against ``max_error_rate`` instead: N_B its errors,
    N_A its good requests, ``rho = max_error_rate``; a truncated mixture of likelihood ratios is
    an e-process for the whole null "rate <= max_error_rate".

Latency (F2, the whole distribution with the spec's tolerance)
    A time-uniform DKW-type band (Howard & Ramdas 2022) holds for each version's empirical CDF
    at every sample size at once, with probability 1 - delta:

        eps_n(delta) = 0.85 * sqrt((ln ln(e n) + 0.8 ln(1612 / delta)) / n)

    The null is "the canary is no slower than the spec tolerates": wherever a share of the
    baseline's requests took up to ``y`` seconds, at least that share of the canary's took up to
    ``tolerated(y) = max(max_latency_ratio * y, y + min_latency_increase)``, the thresholds
    judge's rule. The canary fails when, at some bucket edge ``y`` of the baseline,

        F_A(y) - F_B(tolerated(y)) > eps_nA(alpha / 4) + eps_nB(alpha / 4)

    (``F_B`` read at the first canary edge above ``tolerated(y)``, which errs towards passing).
    If both bands hold and the null is true the gap cannot exceed the two radii, so a false
    alarm needs a band to fail: probability at most alpha / 2. Comparing whole distributions
    rather than the ``latency_quantile`` alone is deliberate: a uniform band is too wide in the
    tails to bound a p95 before thousands of requests, while a slowdown of the bulk of the
    requests shows within a few hundred. Without a usable same-window baseline the previous
    release's recorded latency ``r`` at ``latency_quantile`` q stands in: the canary fails when
    ``F_B(tolerated(r)) + eps_nB(alpha / 2) < q``, i.e. its q quantile is surely above
    ``tolerated(r)``. Without either, latency is not checked and the verdict says so.

Verdicts
    ``fail`` the moment a test rejects (or a canary instance is unhealthy), whatever the request
    count: rejecting early is what these tests are valid for. ``pass`` once ``min_requests``
    canary requests have arrived without a rejection ("no regression detected"), else
    ``inconclusive`` with the requests still needed. When every request of both versions
    failed (a shared dependency down, say) the error test has nothing to compare: the verdict
    stays ``inconclusive`` rather than pass a canary that has never served a request.

The judge is stateless: every call recomputes the tests from the window's totals, which is
exact for these statistics as long as the windows are cumulative. Unavailable requests are not
tested separately: the proxy answers them with 502/504, so they are among the errors. The tests
may be looked at after every request, but the judge only sees the totals at each evaluation, so
a regression is caught at the first evaluation after the evidence suffices: a shorter
``interval`` rolls back sooner, and the bound alpha on false alarms holds at any interval
(``bench/judges.py`` compares 1 s with the default 5 s).

Weak spots: ``rho`` is the observed request share, a plug-in for the routing weight, so the
error test is exactly valid only while the weight holds still within a window; the switch from
the absolute to the relative error test (or from recorded to same-window latency) when the
baseline reaches 50 requests happens at most once per window and is not alpha-corrected;
DKW bands are uniform in CDF units, so a regression confined to the slowest few percent of
requests is only caught with many thousands of requests (the thresholds judge sees it sooner,
without the false-alarm guarantee).
"""

from __future__ import annotations

import bisect
import math
from typing import NamedTuple

from zerodown.analysis import wording
from zerodown.analysis.base import (
    BASELINE_MIN_REQUESTS,
    AnalysisInput,
    Measurement,
    Outcome,
    Verdict,
    VersionWindow,
    quantile_fraction,
)
from zerodown.analysis.health import health_measurement
from zerodown.analysis.log_errors import log_error_measurement
from zerodown.analysis.special import log_beta, log_beta_sf
from zerodown.spec.models import AnalysisSpec

__all__ = [
    "DEFAULT_CONCENTRATION",
    "LatencyGap",
    "SequentialJudge",
    "beta_mixture_log_e_value",
    "dkw_radius",
    "latency_gap",
    "share_within",
    "tolerated_latency",
]

DEFAULT_CONCENTRATION = 10.0
"""k of the error test's Beta(k rho, k (1 - rho)) prior: small k catches gross failures fast."""

_METRICS = 2  # errors and latency share alpha evenly
_LARGEST_SHOWN_LOG_E = 700.0  # e-values above e^700 are reported as e^700 (finite for JSON)


class _Test(NamedTuple):
    measurement: Measurement
    summary: str  # the short form for a passing verdict's reason
    undecidable: bool = False  # the data cannot support a pass: the verdict stays inconclusive


def beta_mixture_log_e_value(*, hits: int, misses: int, rho: float, concentration: float) -> float:
    """``ln E`` for "each event is a hit with probability above ``rho``" (one-sided F1).

    ``hits`` and ``misses`` count the events so far (canary and baseline errors, or errors and
    good requests). The prior is Beta(k rho, k (1 - rho)) truncated to ``theta > rho``. With no
    hits there is no evidence, and for ``rho`` outside (0, 1) the test cannot say anything:
    both give ``ln E <= 0``.
    """
    if hits < 0 or misses < 0:
        raise ValueError(f"negative counts: hits={hits}, misses={misses}")
    if not 0.0 < rho < 1.0 or hits == 0:
        return 0.0
    a, b = concentration * rho, concentration * (1.0 - rho)
    return (
        log_beta(a + hits, b + misses)
        - log_beta(a, b)
        - hits * math.log(rho)
        - misses * math.log1p(-rho)
        + log_beta_sf(a + hits, b + misses, rho)
        - log_beta_sf(a, b, rho)
    )


def dkw_radius(n: int, delta: float) -> float:
    """Half-width of the time-uniform DKW band for ``n`` samples at error ``delta`` (inf at 0)."""
    if n <= 0:
        return math.inf
    return 0.85 * math.sqrt((math.log(math.log(math.e * n)) + 0.8 * math.log(1612 / delta)) / n)


class SequentialJudge:
    """Anytime-valid error and latency tests (see the module docstring)."""

    name = "sequential"

    def __init__(self, *, concentration: float = DEFAULT_CONCENTRATION) -> None:
        if concentration <= 0:
            raise ValueError(f"concentration must be positive, got {concentration}")
        self.concentration = concentration

    def judge(self, data: AnalysisInput, config: AnalysisSpec) -> Verdict:
        canary = data.canary
        health = health_measurement(data, config)
        tests = (self._errors(data, config), _latency(data, config))
        log_errors = log_error_measurement(data, config)
        extra = (log_errors,) if log_errors is not None else ()
        measurements = (health, *(t.measurement for t in tests), *extra)
        failed = [m for m in measurements if m.outcome is Outcome.FAIL]
        undecidable = [t.measurement for t in tests if t.undecidable]
        needed = max(0, config.min_requests - canary.requests)
        confidence = wording.percent(1 - config.alpha)
        if failed:
            outcome, needed = Outcome.FAIL, 0
            reason = "; ".join(m.detail for m in failed)
        elif undecidable:
            outcome = Outcome.INCONCLUSIVE
            reason = "; ".join(m.detail for m in undecidable)
        elif needed:
            outcome = Outcome.INCONCLUSIVE
            reason = (
                f"waiting for {needed} more canary requests "
                f"({canary.requests} of {config.min_requests}); no regression detected so far"
            )
        else:
            outcome = Outcome.PASS
            reason = f"no regression detected at {confidence} confidence: " + ", ".join(
                [t.summary for t in tests]
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
            baseline_requests=data.baseline.requests if data.baseline is not None else 0,
        )

    def _errors(self, data: AnalysisInput, config: AnalysisSpec) -> _Test:
        canary, baseline = data.canary, _usable_baseline(data, config)
        alpha = config.alpha / _METRICS
        threshold = 1.0 / alpha
        shown_canary = (
            f"{wording.percent(canary.error_rate() or 0.0)} ({canary.errors} of {canary.requests})"
        )
        if baseline is not None and _all_failed(canary) and _all_failed(baseline):
            return _everything_failed(canary, baseline, threshold)
        if baseline is not None:
            rho = canary.requests / (canary.requests + baseline.requests)
            log_e = beta_mixture_log_e_value(
                hits=canary.errors,
                misses=baseline.errors,
                rho=rho,
                concentration=self.concentration,
            )
            against = (
                f"stable {wording.percent(baseline.error_rate() or 0.0)} "
                f"({baseline.errors} of {baseline.requests})"
            )
            reference = baseline.error_rate()
        else:
            limit = config.max_error_rate
            log_e = _absolute_log_e(canary, limit, self.concentration)
            against = f"limit {wording.percent(limit)} (no stable version to compare with)"
            reference = limit
        e_value = math.exp(min(log_e, _LARGEST_SHOWN_LOG_E))
        rejected = log_e >= math.log(threshold)
        shown_e = f"e-value {_number(e_value)} {'≥' if rejected else '<'} {_number(threshold)}"
        detail = f"canary errors {shown_canary} vs {against}: {shown_e}"
        measurement = Measurement(
            name="errors",
            value=e_value,
            limit=threshold,
            baseline=reference,
            outcome=Outcome.FAIL if rejected else _pass_once_enough(data, config),
            detail=detail,
        )
        return _Test(measurement, f"errors {shown_e}")


def _all_failed(window: VersionWindow) -> bool:
    return window.requests > 0 and window.errors == window.requests


def _everything_failed(canary: VersionWindow, baseline: VersionWindow, threshold: float) -> _Test:
    """Both versions failed every request: no evidence either way, and no pass."""
    detail = (
        f"every request failed on both versions (canary {canary.errors} of {canary.requests}, "
        f"stable {baseline.errors} of {baseline.requests}): nothing to compare the canary with"
    )
    measurement = Measurement(
        name="errors",
        value=1.0,
        limit=threshold,
        baseline=1.0,
        outcome=Outcome.INCONCLUSIVE,
        detail=detail,
    )
    return _Test(measurement, detail, undecidable=True)


def _absolute_log_e(canary: VersionWindow, limit: float, concentration: float) -> float:
    """``ln E`` for "the canary's error rate is above ``limit``" (no baseline to compare with)."""
    if limit <= 0.0:
        return math.inf if canary.errors else 0.0
    return beta_mixture_log_e_value(
        hits=canary.errors,
        misses=canary.requests - canary.errors,
        rho=limit,
        concentration=concentration,
    )


def _usable_baseline(data: AnalysisInput, config: AnalysisSpec) -> VersionWindow | None:
    baseline = data.baseline
    needed = min(config.min_requests, BASELINE_MIN_REQUESTS)
    return baseline if baseline is not None and baseline.requests >= needed else None


def _pass_once_enough(data: AnalysisInput, config: AnalysisSpec) -> Outcome:
    enough = data.canary.requests >= config.min_requests
    return Outcome.PASS if enough else Outcome.INCONCLUSIVE


def tolerated_latency(latency: float, config: AnalysisSpec) -> float:
    """The slowest the canary may be where the baseline takes ``latency`` seconds.

    ``max(max_latency_ratio * latency, latency + min_latency_increase)``: the thresholds judge's
    rule, so a slowdown either judge accepts is not a regression for the other one.
    """
    return max(config.max_latency_ratio * latency, latency + config.min_latency_increase)


def share_within(window: VersionWindow, seconds: float) -> float:
    """The share of ``window``'s latencies in buckets up to the first edge above ``seconds``.

    An upper estimate of the share at or below ``seconds`` (whether a bucket includes its upper
    edge or not), so a test that needs the canary's share to be small stays valid.
    """
    n = window.latency_count
    for edge, cumulative in zip(window.latency_bounds, window.cumulative_counts(), strict=True):
        if edge > seconds:
            return cumulative / n
    return 1.0


class LatencyGap(NamedTuple):
    """Where the canary falls furthest behind the tolerated baseline distribution."""

    gap: float
    """``F_A(y) - F_B(tolerated(y))`` at its largest: a share of requests, 0..1."""
    at: float
    """The baseline latency ``y`` where it is largest (seconds)."""
    baseline_share: float
    """``F_A(y)``: the baseline's share of requests at or below ``y``."""
    canary_share: float
    """The canary's share at or below ``tolerated(y)`` (rounded up to a bucket edge)."""


def latency_gap(canary: VersionWindow, baseline: VersionWindow, config: AnalysisSpec) -> LatencyGap:
    """The largest gap between the baseline's empirical CDF and the canary's, tolerance applied.

    Read at the baseline's finite bucket edges ``y``; both histograms must hold latencies.
    """
    best = LatencyGap(gap=-1.0, at=0.0, baseline_share=0.0, canary_share=0.0)
    canary_edges = canary.latency_bounds
    canary_cumulative = canary.cumulative_counts()
    canary_n, baseline_n = canary.latency_count, baseline.latency_count
    ratio, floor = config.max_latency_ratio, config.min_latency_increase
    edges = len(canary_edges)
    j = 0  # the tolerated latency only grows with the edge: the canary index only moves up
    cumulative = 0
    for edge, count in zip(baseline.latency_bounds, baseline.latency_counts, strict=True):
        if math.isinf(edge):
            break
        cumulative += count
        # tolerated_latency(edge, config), inlined: this loop runs at every evaluation.
        j = bisect.bisect_right(canary_edges, max(ratio * edge, edge + floor), j)
        canary_share = canary_cumulative[j] / canary_n if j < edges else 1.0
        share = cumulative / baseline_n
        if share - canary_share > best.gap:
            best = LatencyGap(share - canary_share, edge, share, canary_share)
    return best


def _latency(data: AnalysisInput, config: AnalysisSpec) -> _Test:
    canary, baseline = data.canary, _usable_baseline(data, config)
    recorded = data.recorded_baseline_latency
    if not canary.latency_count:
        return _skipped_latency("no canary latencies recorded")
    if baseline is not None and baseline.latency_count:
        return _latency_against_baseline(data, baseline, config)
    if recorded is not None and math.isfinite(recorded) and recorded >= 0:
        return _latency_against_recorded(data, recorded, config)
    if data.baseline is None:
        why = "no stable version served traffic and no latency was recorded for it"
    else:
        why = (
            f"the stable version served {data.baseline.requests} requests (too few, or none "
            "with a latency) and no latency was recorded for it"
        )
    return _skipped_latency(why)


def _latency_against_baseline(
    data: AnalysisInput, baseline: VersionWindow, config: AnalysisSpec
) -> _Test:
    """Both distributions, each in its own band (alpha / 4 each)."""
    canary, name = data.canary, config.latency_quantile
    q = quantile_fraction(name)
    delta = config.alpha / _METRICS / 2
    radius = dkw_radius(canary.latency_count, delta) + dkw_radius(baseline.latency_count, delta)
    found = latency_gap(canary, baseline, config)
    rejected = found.gap > radius
    ratio = wording.ratio(config.max_latency_ratio)
    compared = f"{name} {_seconds(canary.quantile(q))} vs stable {_seconds(baseline.quantile(q))}"
    gap, bands = wording.percent(max(0.0, found.gap)), wording.percent(radius)
    if rejected:
        detail = (
            f"latency regressed ({compared}): {wording.percent(found.canary_share)} of canary "
            f"requests took up to {wording.seconds(tolerated_latency(found.at, config))} "
            f"against {wording.percent(found.baseline_share)} of stable ones up to "
            f"{wording.seconds(found.at)}, a gap beyond the ±{bands} confidence bands "
            f"(tolerance {ratio} ×, +{wording.seconds(config.min_latency_increase)} floor)"
        )
        summary = detail
    else:
        detail = (
            f"{compared}: canary latencies within {ratio} × stable's "
            f"(largest gap {gap}, bands ±{bands})"
        )
        summary = f"{compared}, latency gap {gap} < {bands}"
    measurement = Measurement(
        name="latency",
        value=max(0.0, found.gap),
        limit=radius,
        baseline=baseline.quantile(q),
        outcome=Outcome.FAIL if rejected else _pass_once_enough(data, config),
        detail=detail,
    )
    return _Test(measurement, summary)


def _latency_against_recorded(data: AnalysisInput, recorded: float, config: AnalysisSpec) -> _Test:
    """One distribution against a number: the canary's band gets all of latency's alpha."""
    canary, name = data.canary, config.latency_quantile
    q = quantile_fraction(name)
    radius = dkw_radius(canary.latency_count, config.alpha / _METRICS)
    limit = tolerated_latency(recorded, config)
    share = share_within(canary, limit)
    rejected = share + radius < q
    compared = f"{name} {_seconds(canary.quantile(q))} vs recorded {wording.seconds(recorded)}"
    shown_share, band = wording.percent(share), wording.percent(radius)
    if rejected:
        detail = (
            f"latency regressed ({compared}): only {shown_share} of canary requests took up "
            f"to {wording.seconds(limit)}, below {wording.percent(q)} by more than the "
            f"±{band} confidence band"
        )
        summary = detail
    else:
        detail = (
            f"{compared}: {shown_share} of canary requests took up to "
            f"{wording.seconds(limit)} (band ±{band})"
        )
        summary = f"{compared}, not above {wording.seconds(limit)}"
    measurement = Measurement(
        name="latency",
        value=share,
        limit=q - radius,
        baseline=recorded,
        outcome=Outcome.FAIL if rejected else _pass_once_enough(data, config),
        detail=detail,
    )
    return _Test(measurement, summary)


def _skipped_latency(why: str) -> _Test:
    skipped = Measurement(
        name="latency",
        value=None,
        limit=None,
        baseline=None,
        outcome=Outcome.INCONCLUSIVE,
        detail=f"latency not checked: {why}",
    )
    return _Test(skipped, skipped.detail)


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else wording.seconds(value)


def _number(value: float) -> str:
    """An e-value or threshold: ``3.2``, ``200``, ``4.1e+12``."""
    return f"{value:.3g}" if value < 1e6 else f"{value:.2g}"
