"""Analysis: judges that turn measurements into pass / fail / inconclusive.

``judge_for(name)`` returns the judge a spec names (``analysis.judge``). Every judge is a pure
function of an ``AnalysisInput`` and the spec's limits; see ``base.py`` for the types and each
judge's module for its rules.
"""

from __future__ import annotations

from zerodown.analysis.base import (
    AnalysisInput,
    Judge,
    Measurement,
    Outcome,
    Verdict,
    VersionWindow,
    latency_histogram,
    quantile_fraction,
)
from zerodown.analysis.sequential import SequentialJudge
from zerodown.analysis.thresholds import ThresholdJudge
from zerodown.core.errors import InputError
from zerodown.core.plugins import Registry

__all__ = [
    "AnalysisInput",
    "Judge",
    "Measurement",
    "Outcome",
    "SequentialJudge",
    "ThresholdJudge",
    "Verdict",
    "VersionWindow",
    "judge_for",
    "judge_names",
    "latency_histogram",
    "quantile_fraction",
]

_JUDGES: Registry[Judge] = Registry("judge")
_JUDGES.register(ThresholdJudge.name, ThresholdJudge)
_JUDGES.register(SequentialJudge.name, SequentialJudge)

# Names the spec accepts whose judges are not written yet.
_PLANNED = ("sequential", "mann-whitney")


def judge_names() -> list[str]:
    """The judges that can be used, sorted."""
    return _JUDGES.names()


def judge_for(name: str) -> Judge:
    """A new judge registered under ``name``; ``InputError`` for a name that has none."""
    if name in _PLANNED and name not in _JUDGES.names():
        available = ", ".join(_JUDGES.names())
        raise InputError(f"judge {name!r} is not available yet (available: {available})")
    return _JUDGES.create(name)
