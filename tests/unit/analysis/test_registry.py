"""judge_for: the names a spec may use, and the errors for the others."""

from __future__ import annotations

import pytest

from zerodown.analysis import SequentialJudge, ThresholdJudge, judge_for, judge_names
from zerodown.core.errors import InputError


def test_thresholds_judge_is_registered_under_its_name() -> None:
    judge = judge_for("thresholds")
    assert isinstance(judge, ThresholdJudge)
    assert judge.name == "thresholds"
    assert "thresholds" in judge_names()


def test_sequential_judge_is_registered_under_its_name() -> None:
    judge = judge_for("sequential")
    assert isinstance(judge, SequentialJudge)
    assert judge_names() == ["sequential", "thresholds"]


def test_each_lookup_returns_a_new_judge() -> None:
    assert judge_for("thresholds") is not judge_for("thresholds")


def test_a_judge_the_spec_knows_but_not_yet_written_says_so() -> None:
    with pytest.raises(InputError, match=r"judge 'mann-whitney' is not available yet"):
        judge_for("mann-whitney")


def test_an_unknown_judge_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match=r"unknown judge 'nope' \(known: .*thresholds"):
        judge_for("nope")
