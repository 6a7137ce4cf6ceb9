"""Canary steps: single-key YAML items parsed into a discriminated union, as in Argo Rollouts.

::

    steps:
      - setWeight: 5              # send 5 % of the traffic to the new version
      - pause: {duration: 30s}    # wait; ``pause: {}`` waits until ``zerodown promote``
      - analysis: {minRequests: 200}   # judge the canary; keys override the top-level analysis

The key of each item picks its model. ``step_kind`` is the discriminator; its tags are the
class names, which never collide with YAML keys, so ``validation.py`` can drop them from error
locations and report ``strategy.canary.steps[2].setWeight``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag, field_validator

from zerodown.spec.durations import Duration, PositiveDuration
from zerodown.spec.fields import (
    Alpha,
    Fraction,
    Int,
    JudgeName,
    LatencyQuantile,
    LatencyRatio,
    MinRequests,
    SpecModel,
)

__all__ = [
    "STEP_KEYS",
    "STEP_TAGS",
    "AnalysisOverrides",
    "AnalysisStep",
    "CanaryStep",
    "PauseSpec",
    "PauseStep",
    "SetWeightStep",
    "step_kind",
]


class SetWeightStep(SpecModel):
    """``- setWeight: 25``: route this percentage of the traffic to the new version."""

    set_weight: Int = Field(ge=0, le=100)


class PauseSpec(SpecModel):
    """How long a pause lasts; no duration means until ``zerodown promote``."""

    duration: Duration | None = None


class PauseStep(SpecModel):
    """``- pause: {duration: 30s}`` or ``- pause: {}`` (wait for a manual promote)."""

    pause: PauseSpec = PauseSpec()

    @field_validator("pause", mode="before")
    @classmethod
    def _null_is_indefinite(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def indefinite(self) -> bool:
        """True when the pause lasts until someone promotes."""
        return self.pause.duration is None


class AnalysisOverrides(SpecModel):
    """Keys of an analysis step; each one left out falls back to the top-level ``analysis``."""

    judge: JudgeName | None = None
    interval: PositiveDuration | None = None
    duration: Duration | None = None
    max_wait: PositiveDuration | None = None
    min_requests: MinRequests | None = None
    max_error_rate: Fraction | None = None
    max_latency_ratio: LatencyRatio | None = None
    latency_quantile: LatencyQuantile | None = None
    min_latency_increase: Duration | None = None
    min_availability: Fraction | None = None
    rollback_on_health_check_failure: bool | None = None
    alpha: Alpha | None = None
    max_log_error_rate: Fraction | None = None


class AnalysisStep(SpecModel):
    """``- analysis: {...}``: judge the canary against the baseline before going on."""

    analysis: AnalysisOverrides = AnalysisOverrides()

    @field_validator("analysis", mode="before")
    @classmethod
    def _null_is_no_override(cls, value: Any) -> Any:
        return {} if value is None else value


STEP_KEYS: dict[str, type[SpecModel]] = {
    "setWeight": SetWeightStep,
    "pause": PauseStep,
    "analysis": AnalysisStep,
}
"""The YAML key of each step kind and its model."""

STEP_TAGS: frozenset[str] = frozenset(model.__name__ for model in STEP_KEYS.values())
"""Discriminator tags as they appear in pydantic error locations."""


def step_kind(value: Any) -> str | None:
    """The tag of a step given as YAML data or as a model; None if it is not one step."""
    if isinstance(value, SetWeightStep | PauseStep | AnalysisStep):
        return type(value).__name__
    if isinstance(value, dict) and len(value) == 1:
        model = STEP_KEYS.get(next(iter(value)))
        return model.__name__ if model else None
    return None


CanaryStep = Annotated[
    Annotated[SetWeightStep, Tag("SetWeightStep")]
    | Annotated[PauseStep, Tag("PauseStep")]
    | Annotated[AnalysisStep, Tag("AnalysisStep")],
    Discriminator(step_kind),
]
"""One canary step: ``SetWeightStep | PauseStep | AnalysisStep``."""
