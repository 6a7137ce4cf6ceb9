"""How judges print numbers: enough decimals to tell a value from its limit, readable units."""

from __future__ import annotations

import math

import pytest

from zerodown.analysis.wording import percent, percent_pair, ratio, seconds


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        (0.05, 0.05, ("5 %", "5 %")),
        (0.051, 0.05, ("5.1 %", "5 %")),
        (39 / 494, 0.05, ("7.9 %", "5 %")),
        (0.9995, 0.9999, ("99.95 %", "99.99 %")),
        (1.0, 0.99, ("100 %", "99 %")),
        (0.0, 0.05, ("0 %", "5 %")),
        (0.0002, 0.05, ("0.02 %", "5 %")),
    ],
)
def test_percent_pair_shows_just_enough_decimals(
    value: float, limit: float, expected: tuple[str, str]
) -> None:
    assert percent_pair(value, limit) == expected


def test_percent_alone_uses_one_decimal() -> None:
    assert percent(0.123) == "12.3 %"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.000526, "526 µs"),
        (0.001, "1 ms"),
        (0.0123, "12.3 ms"),
        (0.012, "12 ms"),
        (0.25, "250 ms"),
        (1.25, "1.25 s"),
        (250.0, "250 s"),
        (math.inf, "∞"),
    ],
)
def test_seconds_picks_a_readable_unit(value: float, expected: str) -> None:
    assert seconds(value) == expected


def test_ratio_prints_like_the_spec() -> None:
    assert ratio(2.0) == "2.0"
    assert ratio(1.25) == "1.25"
