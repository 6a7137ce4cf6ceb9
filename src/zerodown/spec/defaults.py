"""Every default of the spec, in one place, and the functions that resolve them.

The models take their field defaults from the constants below, and the defaults that depend on
more than one field (the canary steps when none are written, an analysis step's settings merged
over the top-level ``analysis``) are resolved by the functions here. The spec text is stored as
the user wrote it, so changing a default here never rewrites a recorded release.

The analysis defaults are the seed's automatic-rollback rules: error rate above 5 %, latency
above 2x the baseline, availability below 99 %, or a failed health check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from zerodown.spec.fields import JudgeName, LatencyQuantile, Platform, RestartPolicy
from zerodown.spec.steps import (
    AnalysisOverrides,
    AnalysisStep,
    CanaryStep,
    SetWeightStep,
)

if TYPE_CHECKING:
    from zerodown.spec.models import AnalysisSpec, HttpMethod, NotifyEvent, ServiceSpec

__all__ = [
    "DEFAULT_CANARY_WEIGHTS",
    "default_canary_steps",
    "effective_analysis",
    "effective_canary_steps",
]

DEFAULT_PLATFORM: Final[Platform] = "local"
DEFAULT_REPLICAS: Final = 1

# run (30 s rather than Docker's 10 s, so a queue worker can finish the jobs it holds)
DEFAULT_STOP_GRACE_SECONDS: Final = 30.0
DEFAULT_RESTART: Final[RestartPolicy] = "always"
DEFAULT_MAX_RESTARTS: Final = 5
DEFAULT_RESTART_WINDOW_SECONDS: Final = 300.0

# healthCheck (an omitted healthCheck is an HTTP GET of /healthz expecting 200)
DEFAULT_HEALTH_PATH: Final = "/healthz"
DEFAULT_HEALTH_STATUS: Final = 200
DEFAULT_HEALTH_INTERVAL_SECONDS: Final = 2.0
DEFAULT_HEALTH_TIMEOUT_SECONDS: Final = 1.0
DEFAULT_SUCCESS_THRESHOLD: Final = 1
DEFAULT_FAILURE_THRESHOLD: Final = 3
DEFAULT_STARTUP_GRACE_SECONDS: Final = 30.0

# traffic
DEFAULT_LISTEN: Final = "127.0.0.1:8080"
DEFAULT_STICKY_SESSIONS: Final = False

# notify (webhooks are told about failures; success is opt-in)
DEFAULT_NOTIFY_ON: Final[tuple[NotifyEvent, ...]] = ("rolled_back", "failed")
DEFAULT_NOTIFY_TIMEOUT_SECONDS: Final = 5.0

# monitor (sampled every 15 s; full resolution for 6 hours, one-minute aggregates for 7 days)
DEFAULT_MONITOR_INTERVAL_SECONDS: Final = 15.0
DEFAULT_MONITOR_RAW_RETENTION_SECONDS: Final = 6 * 3600.0
DEFAULT_MONITOR_RETENTION_SECONDS: Final = 7 * 86400.0
MIN_MONITOR_INTERVAL_SECONDS: Final = 1.0

# deploy (no windows: deployments may start at any time; a window without times is whole days)
DEFAULT_WINDOW_START: Final = "00:00"
DEFAULT_WINDOW_END: Final = "24:00"
DEFAULT_WINDOW_TIMEZONE: Final = "UTC"

# checks (an omitted checks section runs the capacity check only)
DEFAULT_CPU_PER_INSTANCE: Final = 0.1
DEFAULT_MEMORY_PER_INSTANCE: Final = 64 * 1024**2
DEFAULT_DISK_FREE: Final = 500 * 1024**2
DEFAULT_DEPENDENCY_TIMEOUT_SECONDS: Final = 2.0
DEFAULT_DEPENDENCY_STATUS: Final = 200
DEFAULT_BACKUP_MAX_AGE_SECONDS: Final = 24 * 3600.0
DEFAULT_BACKUP_TIMEOUT_SECONDS: Final = 600.0
"""How long a backup command may run before the check gives up on it (not in the spec)."""
DEFAULT_SMOKE_METHOD: Final[HttpMethod] = "GET"
DEFAULT_SMOKE_PATH: Final = "/"
DEFAULT_SMOKE_STATUS: Final = 200
DEFAULT_SMOKE_TIMEOUT_SECONDS: Final = 5.0
DEFAULT_MAX_P95_RATIO: Final = 1.5
DEFAULT_LOG_PATTERNS: Final = ("ERROR", "Traceback")
DEFAULT_LOG_MAX_MATCHES: Final = 0
DEFAULT_MAX_4XX_RATE: Final = 0.10
DEFAULT_MAX_CLIENT_ABORT_RATE: Final = 0.05

# strategy (an omitted strategy is rolling with these settings)
DEFAULT_MAX_SURGE: Final = 1
DEFAULT_MAX_UNAVAILABLE: Final = 0
DEFAULT_MIN_READY_SECONDS: Final = 5.0
DEFAULT_AUTO_PROMOTE: Final = True
DEFAULT_SCALE_DOWN_DELAY_SECONDS: Final = 30.0
DEFAULT_NATIVE_PARALLELISM: Final = 1
DEFAULT_NATIVE_DELAY_SECONDS: Final = 5.0
DEFAULT_NATIVE_ORDER: Final = "start-first"
DEFAULT_NATIVE_FAILURE_ACTION: Final = "pause"
DEFAULT_NATIVE_MONITOR_SECONDS: Final = 5.0
DEFAULT_NATIVE_MAX_FAILURE_RATIO: Final = 0.0
DEFAULT_CANARY_WEIGHTS: Final = (5, 25, 50, 100)
"""The seed's stages; an analysis step sits between each two."""

# analysis
DEFAULT_JUDGE: Final[JudgeName] = "thresholds"
DEFAULT_ANALYSIS_INTERVAL_SECONDS: Final = 5.0
DEFAULT_ANALYSIS_MAX_WAIT_SECONDS: Final = 600.0
DEFAULT_MIN_LATENCY_INCREASE_SECONDS: Final = 0.005
DEFAULT_MIN_REQUESTS: Final = 100
DEFAULT_MAX_ERROR_RATE: Final = 0.05
DEFAULT_MAX_LATENCY_RATIO: Final = 2.0
DEFAULT_LATENCY_QUANTILE: Final[LatencyQuantile] = "p95"
DEFAULT_MIN_AVAILABILITY: Final = 0.99
DEFAULT_ROLLBACK_ON_HEALTH_CHECK_FAILURE: Final = True
DEFAULT_ALPHA: Final = 0.01


def default_canary_steps() -> tuple[CanaryStep, ...]:
    """``setWeight 5, analysis, setWeight 25, analysis, setWeight 50, analysis, setWeight 100``."""
    steps: list[CanaryStep] = []
    for weight in DEFAULT_CANARY_WEIGHTS:
        if steps:
            steps.append(AnalysisStep(analysis=AnalysisOverrides()))
        steps.append(SetWeightStep(set_weight=weight))
    return tuple(steps)


def effective_canary_steps(spec: ServiceSpec) -> tuple[CanaryStep, ...]:
    """The steps a canary rollout of ``spec`` runs: the written ones, else the defaults.

    Empty for a spec whose strategy is not canary.
    """
    canary = spec.strategy.canary
    if canary is None:
        return ()
    return canary.steps if canary.steps is not None else default_canary_steps()


def effective_analysis(spec: ServiceSpec, step: AnalysisStep | None = None) -> AnalysisSpec:
    """The top-level ``analysis`` of ``spec`` with the keys written in ``step`` laid over it."""
    if step is None:
        return spec.analysis
    overrides = {
        name: value
        for name in AnalysisOverrides.model_fields
        if (value := getattr(step.analysis, name)) is not None
    }
    return spec.analysis.model_copy(update=overrides)
