"""The spec: ``zerodown.yaml`` parsed with line numbers and validated by pydantic models.

::

    from zerodown.spec import load_spec
    loaded = load_spec("zerodown.yaml")      # SpecError lists every problem with file:line
    loaded.spec.replicas, loaded.spec.strategy_name, loaded.spec.canary_steps

``template_text`` is the commented spec ``zerodown init`` writes.
"""

from __future__ import annotations

from zerodown.spec.durations import format_duration, parse_duration
from zerodown.spec.loader import LoadedSpec, load_spec, parse_spec
from zerodown.spec.models import (
    AnalysisSpec,
    BlueGreenSpec,
    CanarySpec,
    ChecksSpec,
    HealthCheckSpec,
    HooksSpec,
    HttpProbe,
    RollingSpec,
    RunSpec,
    ServiceSpec,
    StrategySpec,
    TcpProbe,
    TrafficSpec,
)
from zerodown.spec.steps import (
    AnalysisOverrides,
    AnalysisStep,
    CanaryStep,
    PauseSpec,
    PauseStep,
    SetWeightStep,
)
from zerodown.spec.template import template_text

__all__ = [
    "AnalysisOverrides",
    "AnalysisSpec",
    "AnalysisStep",
    "BlueGreenSpec",
    "CanarySpec",
    "CanaryStep",
    "ChecksSpec",
    "HealthCheckSpec",
    "HooksSpec",
    "HttpProbe",
    "LoadedSpec",
    "PauseSpec",
    "PauseStep",
    "RollingSpec",
    "RunSpec",
    "ServiceSpec",
    "SetWeightStep",
    "StrategySpec",
    "TcpProbe",
    "TrafficSpec",
    "format_duration",
    "load_spec",
    "parse_duration",
    "parse_spec",
    "template_text",
]
