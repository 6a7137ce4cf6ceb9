"""judge_for: the names a spec may use, and the errors for the others."""

from __future__ import annotations

from typing import get_args

import pytest

from zerodown.analysis import (
    MannWhitneyJudge,
    SequentialJudge,
    ThresholdJudge,
    judge_for,
    judge_names,
)
from zerodown.core.errors import InputError
from zerodown.spec.fields import JudgeName


def test_thresholds_judge_is_registered_under_its_name() -> None:
    judge = judge_for("thresholds")
    assert isinstance(judge, ThresholdJudge)
    assert judge.name == "thresholds"
    assert "thresholds" in judge_names()


def test_sequential_judge_is_registered_under_its_name() -> None:
    judge = judge_for("sequential")
    assert isinstance(judge, SequentialJudge)
    assert judge.name == "sequential"


def test_mann_whitney_judge_is_registered_under_its_name() -> None:
    judge = judge_for("mann-whitney")
    assert isinstance(judge, MannWhitneyJudge)
    assert judge.name == "mann-whitney"


def test_every_judge_name_the_spec_accepts_has_a_judge() -> None:
    assert judge_names() == sorted(get_args(JudgeName))
    for name in judge_names():
        assert judge_for(name).name == name


def test_each_lookup_returns_a_new_judge() -> None:
    assert judge_for("thresholds") is not judge_for("thresholds")


def test_an_unknown_judge_lists_the_known_ones() -> None:
    with pytest.raises(
        InputError, match=r"unknown judge 'nope' \(known: mann-whitney, sequential, thresholds\)"
    ):
        judge_for("nope")
