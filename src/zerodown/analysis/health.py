"""The health rule every judge applies first: unhealthy canary instances fail a rollout at once.

With ``rollback_on_health_check_failure`` on (the default) a canary instance failing its health
checks, or crashed, is a failure however few requests it has served: waiting for traffic would
only serve more users a broken version. With it off the instances are still reported, so the
verdict never hides them.
"""

from __future__ import annotations

from zerodown.analysis.base import AnalysisInput, Measurement, Outcome
from zerodown.spec.models import AnalysisSpec

__all__ = ["health_measurement"]


def health_measurement(data: AnalysisInput, config: AnalysisSpec) -> Measurement:
    """``health``: the number of unhealthy canary instances, failing if any (and configured)."""
    unhealthy = data.unhealthy_instances
    count = len(unhealthy)
    if not unhealthy:
        detail, outcome = "all canary instances healthy", Outcome.PASS
    else:
        noun = "instance" if count == 1 else "instances"
        detail = f"{count} canary {noun} failing health checks: {', '.join(unhealthy)}"
        if config.rollback_on_health_check_failure:
            outcome = Outcome.FAIL
        else:
            outcome = Outcome.PASS
            detail += " (ignored: rollbackOnHealthCheckFailure is off)"
    return Measurement(
        name="health", value=float(count), limit=0.0, baseline=None, outcome=outcome, detail=detail
    )
