"""``--since`` accepts durations and ISO times and rejects the rest with a clear error."""

from __future__ import annotations

import time

import pytest

from zerodown.cli.app import parse_since
from zerodown.core.errors import InputError


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("2h", 7200)])
def test_durations_count_back_from_now(text: str, seconds: float) -> None:
    assert abs((time.time() - parse_since(text)) - seconds) < 5


def test_iso_time() -> None:
    assert parse_since("2026-01-02T03:04:05+00:00") == 1767323045.0


def test_garbage_is_an_input_error() -> None:
    with pytest.raises(InputError, match="expected a duration"):
        parse_since("yesterday-ish")
