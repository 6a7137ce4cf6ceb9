"""The pydantic models of ``zerodown.yaml``: the shape of a valid spec.

This is the first of the three validation tiers: types, ranges and allowed keys. Rules that
relate several fields (canary weights ending at 100, timeout <= interval, exactly one strategy)
are checked in ``validation.py``, where every problem gets its YAML line. Defaults come from
``defaults.py``. YAML keys are camelCase, attributes snake_case (see ``SpecModel``); durations
are float seconds and percentages fractions.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from zerodown.core.types import Address
from zerodown.spec import defaults
from zerodown.spec.durations import Duration, PositiveDuration
from zerodown.spec.fields import (
    Alpha,
    EnvKey,
    EnvValue,
    Fraction,
    HostPort,
    HttpPath,
    Int,
    IntOrPercent,
    JudgeName,
    LatencyQuantile,
    LatencyRatio,
    MinRequests,
    NonEmptyStr,
    Platform,
    Port,
    RestartPolicy,
    ServiceNameStr,
    SpecModel,
    StrategyName,
    resolve_int_or_percent,
    split_host_port,
)
from zerodown.spec.steps import AnalysisStep, CanaryStep

__all__ = [
    "AnalysisSpec",
    "BlueGreenSpec",
    "CanarySpec",
    "ChecksSpec",
    "HealthCheckSpec",
    "HooksSpec",
    "HttpProbe",
    "ProbeKind",
    "RollingSpec",
    "RunSpec",
    "ServiceSpec",
    "StrategySpec",
    "TcpProbe",
    "TrafficSpec",
]

ProbeKind = Literal["http", "tcp", "command"]


def _drop_nulls(data: Any, keys: tuple[str, ...]) -> Any:
    """Read ``key:`` with nothing after it (YAML null) as if the key were left out.

    Only for keys whose default is not None, so a dumped model still validates to itself.
    """
    if isinstance(data, dict) and any(key in data and data[key] is None for key in keys):
        return {key: value for key, value in data.items() if not (key in keys and value is None)}
    return data


class RunSpec(SpecModel):
    """How one instance runs: for ``local`` the command that starts it, its port in env ``PORT``."""

    command: NonEmptyStr | None = None
    workdir: NonEmptyStr | None = None
    """Relative to the folder of the spec file (see ``LoadedSpec.workdir``)."""
    image: NonEmptyStr | None = None
    stop_grace_seconds: Duration = defaults.DEFAULT_STOP_GRACE_SECONDS
    restart: RestartPolicy = defaults.DEFAULT_RESTART
    max_restarts: Int = Field(defaults.DEFAULT_MAX_RESTARTS, ge=0)
    """Restarts allowed within ``restart_window`` before the instance is given up."""
    restart_window: PositiveDuration = defaults.DEFAULT_RESTART_WINDOW_SECONDS


class HttpProbe(SpecModel):
    """GET ``path`` on the instance port; healthy when the status is ``expect_status``."""

    path: HttpPath = defaults.DEFAULT_HEALTH_PATH
    expect_status: Int = Field(defaults.DEFAULT_HEALTH_STATUS, ge=100, le=599)


class TcpProbe(SpecModel):
    """Healthy when a TCP connection to the instance port succeeds."""


class HealthCheckSpec(SpecModel):
    """One probe kind (``http``, ``tcp`` or ``command``) and its timing.

    None means "not this kind". In YAML, ``tcp:`` with nothing after it chooses the kind with
    its defaults; the loader reads it as ``tcp: {}`` (see ``validation.py``).
    """

    http: HttpProbe | None = None
    tcp: TcpProbe | None = None
    command: NonEmptyStr | None = None
    """A shell command; exit status 0 means healthy."""
    interval: PositiveDuration = defaults.DEFAULT_HEALTH_INTERVAL_SECONDS
    timeout: PositiveDuration = defaults.DEFAULT_HEALTH_TIMEOUT_SECONDS
    success_threshold: Int = Field(defaults.DEFAULT_SUCCESS_THRESHOLD, ge=1)
    failure_threshold: Int = Field(defaults.DEFAULT_FAILURE_THRESHOLD, ge=1)
    startup_grace: Duration = defaults.DEFAULT_STARTUP_GRACE_SECONDS
    """Time an instance has to become healthy for the first time."""

    @property
    def probe_kind(self) -> ProbeKind:
        """``"http"``, ``"tcp"`` or ``"command"`` (``"http"`` if none is set)."""
        if self.tcp is not None:
            return "tcp"
        if self.command is not None:
            return "command"
        return "http"


def _default_health_check() -> HealthCheckSpec:
    return HealthCheckSpec(http=HttpProbe())


class TrafficSpec(SpecModel):
    """Where the proxy serves the service, and how it spreads requests."""

    listen: HostPort = defaults.DEFAULT_LISTEN
    sticky_sessions: bool = defaults.DEFAULT_STICKY_SESSIONS

    @property
    def address(self) -> Address:
        """``listen`` as an ``Address``."""
        host, port = split_host_port(self.listen)
        return Address(host=host, port=port)


class RollingSpec(SpecModel):
    """Replace instances a few at a time, each behind its health check."""

    max_surge: IntOrPercent = defaults.DEFAULT_MAX_SURGE
    """Extra instances allowed above ``replicas`` during the rollout (count or ``"25%"``)."""
    max_unavailable: IntOrPercent = defaults.DEFAULT_MAX_UNAVAILABLE
    """Instances allowed below ``replicas`` during the rollout (count or ``"25%"``)."""
    min_ready_seconds: Duration = defaults.DEFAULT_MIN_READY_SECONDS
    """How long a new instance must stay healthy before it counts as available."""

    def surge_count(self, replicas: int) -> int:
        """``max_surge`` as a count for ``replicas`` (percentages round up, as in Kubernetes)."""
        return resolve_int_or_percent(self.max_surge, total=replicas, round_up=True)

    def unavailable_count(self, replicas: int) -> int:
        """``max_unavailable`` as a count for ``replicas`` (percentages round down)."""
        return resolve_int_or_percent(self.max_unavailable, total=replicas, round_up=False)


class BlueGreenSpec(SpecModel):
    """Start a full second environment, then switch all traffic at once."""

    auto_promote: bool = defaults.DEFAULT_AUTO_PROMOTE
    scale_down_delay_seconds: Duration = defaults.DEFAULT_SCALE_DOWN_DELAY_SECONDS
    """How long the old environment stays up after the switch, for a fast rollback."""
    preview_port: Port | None = None
    """A port serving the new environment before the switch; none if not set."""


class CanarySpec(SpecModel):
    """Shift traffic in steps; ``steps`` None means the defaults (``effective_canary_steps``)."""

    steps: tuple[CanaryStep, ...] | None = None


class StrategySpec(SpecModel):
    """Exactly one of ``rolling``, ``blueGreen``, ``canary`` (checked in ``validation.py``).

    None means "not this kind"; in YAML ``canary:`` alone chooses canary with its defaults.
    """

    rolling: RollingSpec | None = None
    blue_green: BlueGreenSpec | None = None
    canary: CanarySpec | None = None

    @property
    def name(self) -> StrategyName:
        """``"rolling"``, ``"blue-green"`` or ``"canary"`` (``"rolling"`` if none is set)."""
        if self.canary is not None:
            return "canary"
        if self.blue_green is not None:
            return "blue-green"
        return "rolling"


def _default_strategy() -> StrategySpec:
    return StrategySpec(rolling=RollingSpec())


class AnalysisSpec(SpecModel):
    """How a canary (or a new release) is judged against its baseline."""

    judge: JudgeName = defaults.DEFAULT_JUDGE
    interval: PositiveDuration = defaults.DEFAULT_ANALYSIS_INTERVAL_SECONDS
    duration: Duration | None = None
    """Shortest time an analysis observes; None: until ``min_requests`` have arrived."""
    max_wait: PositiveDuration = defaults.DEFAULT_ANALYSIS_MAX_WAIT_SECONDS
    """Longest an analysis waits for ``min_requests``; then the verdict is inconclusive."""
    min_requests: MinRequests = defaults.DEFAULT_MIN_REQUESTS
    """Canary requests needed before a verdict."""
    max_error_rate: Fraction = defaults.DEFAULT_MAX_ERROR_RATE
    max_latency_ratio: LatencyRatio = defaults.DEFAULT_MAX_LATENCY_RATIO
    """Largest allowed canary/baseline ratio of the ``latency_quantile`` latency."""
    latency_quantile: LatencyQuantile = defaults.DEFAULT_LATENCY_QUANTILE
    min_latency_increase: Duration = defaults.DEFAULT_MIN_LATENCY_INCREASE_SECONDS
    """A latency regression must also exceed the baseline by this much (noise floor)."""
    min_availability: Fraction = defaults.DEFAULT_MIN_AVAILABILITY
    rollback_on_health_check_failure: bool = defaults.DEFAULT_ROLLBACK_ON_HEALTH_CHECK_FAILURE
    alpha: Alpha = defaults.DEFAULT_ALPHA
    """False-alarm rate of the sequential judge."""


class ChecksSpec(SpecModel):
    """Pre- and post-deployment checks; each item a mapping whose keys the checks define."""

    pre: tuple[dict[str, Any], ...] = ()
    post: tuple[dict[str, Any], ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _null_is_none(cls, data: Any) -> Any:
        return _drop_nulls(data, ("pre", "post"))


class HooksSpec(SpecModel):
    """Shell commands run around a deployment."""

    pre_deploy: tuple[NonEmptyStr, ...] = ()
    post_deploy: tuple[NonEmptyStr, ...] = ()
    backup: tuple[NonEmptyStr, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _null_is_none(cls, data: Any) -> Any:
        return _drop_nulls(data, ("preDeploy", "postDeploy", "backup"))


class ServiceSpec(SpecModel):
    """A whole ``zerodown.yaml``: one service and how to deploy it."""

    service: ServiceNameStr
    version: NonEmptyStr | None = None
    """Default version label; the CLI's ``--version`` wins over it."""
    platform: Platform = defaults.DEFAULT_PLATFORM
    run: RunSpec
    replicas: Int = Field(defaults.DEFAULT_REPLICAS, ge=1, le=1000)
    env: dict[EnvKey, EnvValue] = Field(default_factory=dict)
    health_check: HealthCheckSpec = Field(default_factory=_default_health_check)
    traffic: TrafficSpec = Field(default_factory=TrafficSpec)
    strategy: StrategySpec = Field(default_factory=_default_strategy)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    checks: ChecksSpec = Field(default_factory=ChecksSpec)
    hooks: HooksSpec = Field(default_factory=HooksSpec)

    @model_validator(mode="before")
    @classmethod
    def _empty_section_means_defaults(cls, data: Any) -> Any:
        # ``hooks:`` with every line below commented out is YAML null: use the defaults.
        sections = ("env", "healthCheck", "traffic", "strategy", "analysis", "checks", "hooks")
        return _drop_nulls(data, sections)

    @property
    def strategy_name(self) -> StrategyName:
        """``"rolling"``, ``"blue-green"`` or ``"canary"``."""
        return self.strategy.name

    @property
    def canary_steps(self) -> tuple[CanaryStep, ...]:
        """The canary steps with defaults resolved; empty unless the strategy is canary."""
        return defaults.effective_canary_steps(self)

    def analysis_for(self, step: AnalysisStep | None = None) -> AnalysisSpec:
        """The analysis settings of ``step`` (the top-level ones if ``step`` is None)."""
        return defaults.effective_analysis(self, step)
