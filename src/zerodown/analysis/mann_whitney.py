"""The ``mann-whitney`` judge: a fixed-horizon comparison with the baseline, as Kayenta does it.

Spinnaker's Kayenta compares each metric of the canary with the baseline over the same window
with a Mann-Whitney U test, classifies it High, Low or Pass, and fails the canary when a metric
that matters is High by more than it tolerates. This judge does the same with the two metrics the
proxy measures per request, under the spec's limits:

Latency
    Each latency counts as the midpoint of its histogram bucket (the lower edge for a last bucket
    without upper edge), so equal buckets are ties. The rank-sum statistic ``U`` (canary over
    baseline, ties counting half) is compared with its normal approximation under "no shift",
    mean ``mn / 2`` and the tie-corrected variance

        var U = m n / 12 * ((N + 1) - sum(t^3 - t) / (N (N - 1)))

    (t: the size of each group of ties, N = m + n), with a continuity correction of 1/2. The
    metric is High when the one-sided p-value for "canary slower" is at most ``alpha``, Low when
    the one for "canary faster" is, else Pass. The size of a shift is the Hodges-Lehmann
    estimate on the log scale, the median of all canary/baseline latency ratios, with the
    distribution-free interval between the k-th smallest and k-th largest ratio,
    ``k = mn / 2 - z(1 - alpha) sd(U)``: a 98 % interval at the default ``alpha`` 0.01, as
    Kayenta's. High latency fails the canary when the estimated ratio is beyond the spec's
    tolerance, the thresholds judge's rule applied to the baseline's ``latency_quantile``: more
    than ``max_latency_ratio`` times it *and* more than ``min_latency_increase`` above it.

Errors
    A two-proportion z-test (pooled variance) of the canary's error rate against the baseline's:
    High when the one-sided p-value for "canary higher" is at most ``alpha``, Low for "lower".
    High errors fail the canary when its error rate is also above ``max_error_rate``: a rise
    the spec tolerates is reported, not rolled back.

Without a baseline that served ``min(min_requests, 50)`` requests, errors are tested against
``max_error_rate`` alone (a one-sample z-test) and latency against the latency recorded for the
previous release: the canary fails when the share of its requests within the tolerated latency
is significantly below ``latency_quantile`` (a one-sample z-test on that share). Without either,
latency is not checked and the verdict says so.

Verdicts
    An unhealthy canary instance fails at once. Below ``min_requests`` canary requests the
    verdict is ``inconclusive`` whatever the numbers: the tests are sized for a fixed sample and
    are not valid for early stopping. From there on, ``fail`` if a metric is High beyond its
    tolerance, else ``pass``; ``inconclusive`` also when every request of both versions failed
    (nothing to compare).

What this judge is not: checked again and again on a growing window, a fixed-horizon test's
false alarms add up far beyond ``alpha`` (Netflix reports 66 false rejections in 100 A/A runs of
Kayenta-style analyses); ``bench/judges.py`` measures it. The shift estimate describes the bulk of
the distribution, so a slowdown confined to the slowest few percent of requests goes unseen.
Computing the interval takes a few milliseconds on the proxy's fine histograms, so it is only
computed when the test finds a shift.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist
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
from zerodown.spec.models import AnalysisSpec

__all__ = [
    "Classification",
    "MannWhitneyJudge",
    "RankSumTest",
    "ShiftInterval",
    "bucket_values",
    "rank_sum_test",
    "ratio_interval",
    "two_proportion_z",
]

_NORMAL = NormalDist()
_SMALLEST_LATENCY = 1e-6  # seconds: the proxy's resolution; zero latencies count as this
_LOG_TOLERANCE = 1e-9  # bisection stops when the bracket is this narrow (log of a ratio)

WeightedValues = Sequence[tuple[float, int]]
"""``(value, count)`` pairs in ascending order of value, every count positive."""


class Classification(StrEnum):
    """A metric's class, as Kayenta names them."""

    HIGH = "high"
    LOW = "low"
    PASS = "pass"


@dataclass(frozen=True, kw_only=True)
class RankSumTest:
    """The Mann-Whitney U test of canary against baseline (normal approximation, ties corrected).

    ``u`` counts the (canary, baseline) pairs where the canary's value is larger, ties counting
    one half. ``p_greater`` is the one-sided p-value for "the canary's values are larger",
    ``p_less`` for "smaller".
    """

    u: float
    mean: float
    sd: float
    p_greater: float
    p_less: float


@dataclass(frozen=True, kw_only=True)
class ShiftInterval:
    """A Hodges-Lehmann ratio (canary / baseline) and its distribution-free interval."""

    estimate: float
    lower: float
    upper: float
    confidence: float


def bucket_values(window: VersionWindow) -> list[tuple[float, int]]:
    """The histogram as ``(value, count)``: each bucket's midpoint, or a last bucket's lower edge.

    Only buckets that counted something; the first bucket starts at 0.
    """
    values: list[tuple[float, int]] = []
    lower = 0.0
    for upper, count in zip(window.latency_bounds, window.latency_counts, strict=True):
        if count:
            values.append((lower if math.isinf(upper) else (lower + upper) / 2, count))
        lower = upper
    return values


def rank_sum_test(canary: WeightedValues, baseline: WeightedValues) -> RankSumTest | None:
    """The U test of ``canary`` against ``baseline``; None without values on both sides or spread.

    Every value that occurs more than once (in either sample) is a group of ties sharing its
    mean rank; the variance is corrected for them. When every value is equal there is nothing to
    rank: None.
    """
    counts: dict[float, list[int]] = {}
    for value, count in canary:
        counts.setdefault(value, [0, 0])[0] += count
    for value, count in baseline:
        counts.setdefault(value, [0, 0])[1] += count
    m = sum(count for _, count in canary)
    n = sum(count for _, count in baseline)
    if not m or not n:
        return None
    rank_sum = 0.0
    seen = 0
    ties = 0
    for value in sorted(counts):
        in_canary, in_baseline = counts[value]
        tied = in_canary + in_baseline
        rank_sum += in_canary * (seen + (tied + 1) / 2)
        ties += tied**3 - tied
        seen += tied
    total = m + n
    variance = m * n / 12 * ((total + 1) - ties / (total * (total - 1)))
    if variance <= 0:
        return None
    u = rank_sum - m * (m + 1) / 2
    mean = m * n / 2
    sd = math.sqrt(variance)
    return RankSumTest(
        u=u,
        mean=mean,
        sd=sd,
        p_greater=_NORMAL.cdf(-(u - mean - 0.5) / sd),
        p_less=_NORMAL.cdf((u - mean + 0.5) / sd),
    )


def ratio_interval(
    canary: WeightedValues, baseline: WeightedValues, *, sd: float, confidence: float
) -> ShiftInterval:
    """The Hodges-Lehmann estimate of canary / baseline, on the log scale, with its interval.

    The estimate is the median of the ``m n`` ratios of a canary value to a baseline value;
    the interval runs from the k-th smallest to the k-th largest ratio with
    ``k = mn / 2 - z sd`` (``sd`` of U, from ``rank_sum_test``; z the normal quantile for the
    ``confidence``). Each order statistic is found by bisection on the log ratio, counting the
    pairs below a candidate with one binary search per canary value, then snapped to the exact
    ratio it brackets: fast enough for histograms with hundreds of buckets.
    """
    xs = [math.log(max(value, _SMALLEST_LATENCY)) for value, _ in canary]
    xw = [count for _, count in canary]
    ys = [math.log(max(value, _SMALLEST_LATENCY)) for value, _ in baseline]
    at_least = [0] * (len(baseline) + 1)  # at_least[j]: baseline count with log value >= ys[j]
    for j in range(len(baseline) - 1, -1, -1):
        at_least[j] = at_least[j + 1] + baseline[j][1]
    pairs = sum(xw) * at_least[0]

    def pairs_up_to(t: float) -> int:
        """How many pairs have log(canary) - log(baseline) <= t."""
        return sum(w * at_least[bisect.bisect_left(ys, x - t)] for x, w in zip(xs, xw, strict=True))

    def smallest(k: int) -> float:
        """The k-th smallest log ratio (1-based)."""
        low, high = xs[0] - ys[-1] - 1.0, xs[-1] - ys[0]
        while high - low > _LOG_TOLERANCE:
            middle = (low + high) / 2
            if pairs_up_to(middle) >= k:
                high = middle
            else:
                low = middle
        # Snap to the largest pair difference at or below ``high``: the exact order statistic.
        best = -math.inf
        for x in xs:
            j = bisect.bisect_left(ys, x - high)
            if j < len(ys):
                best = max(best, x - ys[j])
        return best

    z = _NORMAL.inv_cdf(1 - (1 - confidence) / 2)
    k = min(max(1, round(pairs / 2 - z * sd)), pairs)
    if pairs % 2:
        middle = smallest((pairs + 1) // 2)
    else:
        middle = (smallest(pairs // 2) + smallest(pairs // 2 + 1)) / 2
    return ShiftInterval(
        estimate=math.exp(middle),
        lower=math.exp(smallest(k)),
        upper=math.exp(smallest(pairs + 1 - k)),
        confidence=confidence,
    )


def two_proportion_z(
    canary_hits: int, canary_n: int, baseline_hits: int, baseline_n: int
) -> float | None:
    """The pooled two-proportion z statistic (canary minus baseline); None when it is undefined.

    Undefined without requests on either side, or when the pooled rate is 0 or 1.
    """
    if not canary_n or not baseline_n:
        return None
    pooled = (canary_hits + baseline_hits) / (canary_n + baseline_n)
    if pooled <= 0.0 or pooled >= 1.0:
        return None
    se = math.sqrt(pooled * (1 - pooled) * (1 / canary_n + 1 / baseline_n))
    return (canary_hits / canary_n - baseline_hits / baseline_n) / se


class _Metric(NamedTuple):
    measurement: Measurement
    summary: str  # the short form for a passing verdict's reason
    undecidable: bool = False  # the data cannot support a pass: the verdict stays inconclusive


class MannWhitneyJudge:
    """Kayenta-style fixed-horizon comparison with the baseline (see the module docstring)."""

    name = "mann-whitney"

    def judge(self, data: AnalysisInput, config: AnalysisSpec) -> Verdict:
        canary = data.canary
        health = health_measurement(data, config)
        metrics: tuple[_Metric, ...] = (_errors(data, config), _latency(data, config))
        needed = max(0, config.min_requests - canary.requests)
        if needed:
            metrics = tuple(_so_far(metric, config) for metric in metrics)
        log_errors = log_error_measurement(data, config)
        extra = (log_errors,) if log_errors is not None else ()
        measurements = (health, *(metric.measurement for metric in metrics), *extra)
        failed = [m for m in measurements if m.outcome is Outcome.FAIL]
        undecidable = [metric.measurement for metric in metrics if metric.undecidable]
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
                f"({canary.requests} of {config.min_requests}) before testing"
            )
        else:
            outcome = Outcome.PASS
            reason = ", ".join(
                [metric.summary for metric in metrics]
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


def _so_far(metric: _Metric, config: AnalysisSpec) -> _Metric:
    """Below ``min_requests`` a metric decides nothing: its numbers are shown as they stand."""
    m = metric.measurement
    if m.outcome is Outcome.INCONCLUSIVE:
        return metric
    detail = f"{m.detail} (so far: tested from {config.min_requests} canary requests)"
    shown = Measurement(
        name=m.name,
        value=m.value,
        limit=m.limit,
        baseline=m.baseline,
        outcome=Outcome.INCONCLUSIVE,
        detail=detail,
    )
    return _Metric(shown, detail, metric.undecidable)


def _usable_baseline(data: AnalysisInput, config: AnalysisSpec) -> VersionWindow | None:
    baseline = data.baseline
    needed = min(config.min_requests, BASELINE_MIN_REQUESTS)
    return baseline if baseline is not None and baseline.requests >= needed else None


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _classify(p_greater: float, p_less: float, alpha: float) -> Classification:
    if p_greater <= alpha:
        return Classification.HIGH
    if p_less <= alpha:
        return Classification.LOW
    return Classification.PASS


# -- errors ------------------------------------------------------------------------------------


def _errors(data: AnalysisInput, config: AnalysisSpec) -> _Metric:
    canary, baseline, limit = data.canary, _usable_baseline(data, config), config.max_error_rate
    rate = canary.error_rate()
    if rate is None:
        unknown = Measurement(
            name="error_rate",
            value=None,
            limit=limit,
            baseline=data.baseline.error_rate() if data.baseline is not None else None,
            outcome=Outcome.INCONCLUSIVE,
            detail="error rate unknown: no canary requests yet",
        )
        return _Metric(unknown, unknown.detail)
    shown = f"error rate {wording.percent(rate)} ({canary.errors} of {canary.requests})"
    shown_limit = wording.percent_pair(rate, limit)[1]
    if baseline is None:
        return _errors_against_limit(canary, rate, shown, config)
    base_rate = baseline.error_rate() or 0.0
    against = f"stable {wording.percent(base_rate)} ({baseline.errors} of {baseline.requests})"
    z = two_proportion_z(canary.errors, canary.requests, baseline.errors, baseline.requests)
    if z is None:
        if canary.errors == 0:  # no errors on either version
            detail = f"{shown} vs {against}: no errors"
            passed = _error_measurement(rate, base_rate, Outcome.PASS, detail, config)
            return _Metric(passed, "no errors on either version")
        detail = (
            f"every request failed on both versions (canary {canary.errors} of "
            f"{canary.requests}, stable {baseline.errors} of {baseline.requests}): nothing to "
            "compare the canary with"
        )
        inconclusive = _error_measurement(rate, base_rate, Outcome.INCONCLUSIVE, detail, config)
        return _Metric(inconclusive, detail, undecidable=True)
    p_greater, p_less = _NORMAL.cdf(-z), _NORMAL.cdf(z)
    found = _classify(p_greater, p_less, config.alpha)
    outcome = Outcome.PASS
    if found is Classification.HIGH:
        if rate > limit:
            outcome = Outcome.FAIL
            verdict = f"higher ({_p(p_greater)}) and above the {shown_limit} limit"
            short = verdict
        else:
            verdict = f"higher ({_p(p_greater)}) but within the {shown_limit} limit"
            short = f"higher but within the {shown_limit} limit"
    elif found is Classification.LOW:
        verdict, short = f"lower ({_p(p_less)})", "lower"
    else:
        verdict = f"no significant difference ({_p(p_greater)} for a higher rate)"
        short = "no significant difference"
    detail = f"{shown} vs {against}: {verdict}"
    summary = f"error rate {wording.percent(rate)} vs stable {wording.percent(base_rate)}, {short}"
    return _Metric(_error_measurement(rate, base_rate, outcome, detail, config), summary)


def _errors_against_limit(
    canary: VersionWindow, rate: float, shown: str, config: AnalysisSpec
) -> _Metric:
    """No baseline: is the canary's error rate significantly above ``max_error_rate``?"""
    limit = config.max_error_rate
    shown_limit = wording.percent_pair(rate, limit)[1]
    where = f"limit {shown_limit} (no stable version to compare with)"
    if limit <= 0.0 or limit >= 1.0:
        above = rate > limit
        p = 0.0 if above else 1.0
    else:
        z = (rate - limit) / math.sqrt(limit * (1 - limit) / canary.requests)
        p = _NORMAL.cdf(-z)
        above = p <= config.alpha
    outcome = Outcome.FAIL if above else Outcome.PASS
    verdict = f"above it ({_p(p)})" if above else f"not significantly above it ({_p(p)})"
    detail = f"{shown} vs {where}: {verdict}"
    summary = f"{shown}, {'above' if above else 'not significantly above'} the {shown_limit} limit"
    return _Metric(_error_measurement(rate, None, outcome, detail, config), summary)


def _error_measurement(
    rate: float, baseline: float | None, outcome: Outcome, detail: str, config: AnalysisSpec
) -> Measurement:
    return Measurement(
        name="error_rate",
        value=rate,
        limit=config.max_error_rate,
        baseline=baseline,
        outcome=outcome,
        detail=detail,
    )


# -- latency -----------------------------------------------------------------------------------


def _tolerated(latency: float, config: AnalysisSpec) -> float:
    """The thresholds judge's limit: ``max(ratio * latency, latency + min_latency_increase)``."""
    return max(config.max_latency_ratio * latency, latency + config.min_latency_increase)


def _latency(data: AnalysisInput, config: AnalysisSpec) -> _Metric:
    canary, baseline = data.canary, _usable_baseline(data, config)
    recorded = data.recorded_baseline_latency
    if not canary.latency_count:
        return _skipped_latency("no canary latencies recorded")
    if baseline is not None and baseline.latency_count:
        return _latency_against_baseline(canary, baseline, config)
    if recorded is not None and math.isfinite(recorded) and recorded >= 0:
        return _latency_against_recorded(canary, recorded, config)
    if data.baseline is None:
        why = "no stable version served traffic and no latency was recorded for it"
    else:
        why = (
            f"the stable version served {data.baseline.requests} requests (too few, or none "
            "with a latency) and no latency was recorded for it"
        )
    return _skipped_latency(why)


def _latency_against_baseline(
    canary: VersionWindow, baseline: VersionWindow, config: AnalysisSpec
) -> _Metric:
    name, q = config.latency_quantile, quantile_fraction(config.latency_quantile)
    canary_q, baseline_q = canary.quantile(q), baseline.quantile(q)
    assert canary_q is not None and baseline_q is not None  # both histograms hold latencies
    compared = f"{name} {wording.seconds(canary_q)} vs stable {wording.seconds(baseline_q)}"
    limit = _tolerated(baseline_q, config)
    canary_values, baseline_values = bucket_values(canary), bucket_values(baseline)
    test = rank_sum_test(canary_values, baseline_values)
    if test is None:
        detail = f"{compared}: every latency of both versions in one bucket, no shift to rank"
        measurement = _latency_measurement(canary_q, limit, baseline_q, Outcome.PASS, detail)
        return _Metric(measurement, f"{compared}, one bucket on both")
    found = _classify(test.p_greater, test.p_less, config.alpha)
    if found is Classification.PASS:
        detail = f"{compared}: no significant shift (Mann-Whitney {_p(test.p_greater)} for slower)"
        measurement = _latency_measurement(canary_q, limit, baseline_q, Outcome.PASS, detail)
        return _Metric(measurement, f"{compared}, no significant shift")
    confidence = 1 - 2 * config.alpha
    shift = ratio_interval(canary_values, baseline_values, sd=test.sd, confidence=confidence)
    interval = (
        f"about {shift.estimate:.3g} × stable ({wording.percent(confidence)} interval "
        f"{shift.lower:.3g}-{shift.upper:.3g} ×, Mann-Whitney "
    )
    tolerance = f"{wording.ratio(config.max_latency_ratio)} ×"
    outcome = Outcome.PASS
    if found is Classification.LOW:
        detail = f"{compared}: canary faster, {interval}{_p(test.p_less)})"
        summary = f"{compared}, canary faster"
    else:
        increase = (shift.estimate - 1) * baseline_q
        beyond = (
            shift.estimate > config.max_latency_ratio and increase > config.min_latency_increase
        )
        floor = wording.seconds(config.min_latency_increase)
        if beyond:
            outcome = Outcome.FAIL
            detail = (
                f"latency regressed ({compared}): canary {interval}{_p(test.p_greater)}), "
                f"beyond the {tolerance} tolerance"
            )
        elif shift.estimate > config.max_latency_ratio:
            detail = (
                f"{compared}: canary slower, {interval}{_p(test.p_greater)}), but within the "
                f"{floor} noise floor"
            )
        else:
            detail = (
                f"{compared}: canary slower, {interval}{_p(test.p_greater)}), within the "
                f"{tolerance} tolerance"
            )
        summary = detail if beyond else f"{compared}, canary slower but within tolerance"
    measurement = _latency_measurement(canary_q, limit, baseline_q, outcome, detail)
    return _Metric(measurement, summary)


def _latency_against_recorded(
    canary: VersionWindow, recorded: float, config: AnalysisSpec
) -> _Metric:
    """No baseline: is the canary's quantile significantly above the tolerated recorded one?"""
    name, q = config.latency_quantile, quantile_fraction(config.latency_quantile)
    canary_q = canary.quantile(q)
    assert canary_q is not None
    limit = _tolerated(recorded, config)
    share = _share_within(canary, limit)
    n = canary.latency_count
    z = (q - share) / math.sqrt(q * (1 - q) / n)
    p = _NORMAL.cdf(-z)
    above = p <= config.alpha
    compared = f"{name} {wording.seconds(canary_q)} vs recorded {wording.seconds(recorded)}"
    within = f"{wording.percent(share)} of canary requests took up to {wording.seconds(limit)}"
    if above:
        detail = (
            f"latency regressed ({compared}): only {within}, below {wording.percent(q)} ({_p(p)})"
        )
        summary = detail
    else:
        detail = f"{compared}: {within} ({_p(p)} for fewer than {wording.percent(q)})"
        summary = f"{compared}, not above {wording.seconds(limit)}"
    outcome = Outcome.FAIL if above else Outcome.PASS
    return _Metric(_latency_measurement(canary_q, limit, recorded, outcome, detail), summary)


def _share_within(window: VersionWindow, seconds: float) -> float:
    """The share of latencies in buckets up to the first edge above ``seconds`` (errs high)."""
    n = window.latency_count
    for edge, cumulative in zip(window.latency_bounds, window.cumulative_counts(), strict=True):
        if edge > seconds:
            return cumulative / n
    return 1.0


def _latency_measurement(
    value: float, limit: float, baseline: float, outcome: Outcome, detail: str
) -> Measurement:
    return Measurement(
        name="latency", value=value, limit=limit, baseline=baseline, outcome=outcome, detail=detail
    )


def _skipped_latency(why: str) -> _Metric:
    skipped = Measurement(
        name="latency",
        value=None,
        limit=None,
        baseline=None,
        outcome=Outcome.INCONCLUSIVE,
        detail=f"latency not checked: {why}",
    )
    return _Metric(skipped, skipped.detail)
