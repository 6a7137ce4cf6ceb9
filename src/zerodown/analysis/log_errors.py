"""The log rule every judge applies when ``analysis.maxLogErrorRate`` is set.

A canary can answer 200 to every request while its log fills with errors (a failing background
job, a fallback path swallowing exceptions). ``maxLogErrorRate`` holds the canary to a most
*error-level log lines per request*: lines at level ``error`` or ``critical`` (as the log book
reads levels, see ``ops/log_levels.py``) written by the canary's instances during the analysis
window, divided by the requests routed to the canary in the same window. Per request rather
than per second, so a canary taking 5 % of the traffic is held to the same limit as the stable
version taking 95 %.

The rule is decided like the error rate of the thresholds judge:

* From ``min_requests`` canary requests on, ``log_errors / requests > maxLogErrorRate`` fails;
  exactly at the limit passes.
* Below ``min_requests`` only a certain failure is decided (*early fail*): log errors only add
  up, so ``log_errors / min_requests`` is the best rate the canary can still reach there; above
  the limit, it fails now (even before its first request). Otherwise the rule is inconclusive.

The baseline's rate over the same window is reported next to it for comparison, never used.
"""

from __future__ import annotations

from zerodown.analysis import wording
from zerodown.analysis.base import AnalysisInput, Measurement, Outcome
from zerodown.spec.models import AnalysisSpec

__all__ = ["log_error_measurement"]


def log_error_measurement(data: AnalysisInput, config: AnalysisSpec) -> Measurement | None:
    """``log_error_rate`` of the canary against ``max_log_error_rate``; None when not set."""
    limit = config.max_log_error_rate
    if limit is None:
        return None
    canary = data.canary
    errors, requests, needed = canary.log_errors, canary.requests, config.min_requests
    base = data.baseline
    baseline = base.log_errors / base.requests if base is not None and base.requests else None
    noun = "line" if errors == 1 else "lines"
    counts = f"{errors} error log {noun} in {requests} requests"
    rate = errors / requests if requests else None
    if requests >= needed and rate is not None:
        shown, shown_limit = wording.percent_pair(rate, limit)
        failed = rate > limit
        outcome = Outcome.FAIL if failed else Outcome.PASS
        detail = f"log error rate {shown} {'>' if failed else '≤'} {shown_limit} ({counts})"
    elif errors / needed > limit:
        outcome = Outcome.FAIL
        shown_limit = wording.percent(limit)
        shown = f"{wording.percent_pair(rate, limit)[0]} " if rate is not None else ""
        detail = (
            f"log error rate {shown}> {shown_limit} ({counts}): {errors} error log {noun} "
            f"already exceed {shown_limit} of the {needed} requests needed"
        )
    else:
        outcome = Outcome.INCONCLUSIVE
        shown = wording.percent(rate) if rate is not None else "unknown"
        detail = f"log error rate {shown} so far ({counts})"
    return Measurement(
        name="log_error_rate",
        value=rate,
        limit=limit,
        baseline=baseline,
        outcome=outcome,
        detail=detail,
    )
