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
from zerodown.analysis.mann_whitney import MannWhitneyJudge
from zerodown.analysis.sequential import SequentialJudge
from zerodown.analysis.thresholds import ThresholdJudge
from zerodown.core.plugins import Registry

__all__ = [
    "AnalysisInput",
    "Judge",
    "MannWhitneyJudge",
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
_JUDGES.register(MannWhitneyJudge.name, MannWhitneyJudge)


def judge_names() -> list[str]:
    """The judges that can be used, sorted."""
    return _JUDGES.names()


def judge_for(name: str) -> Judge:
    """A new judge registered under ``name``; ``InputError`` listing the known ones otherwise.

    Every name the spec accepts (``JudgeName``) has a judge; a test pins it.
    """
    return _JUDGES.create(name)
