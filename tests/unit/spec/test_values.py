"""Value parsers shared with other packages: durations, percentages, counts, hints."""

from __future__ import annotations

import pytest

from zerodown.spec import format_duration, parse_duration
from zerodown.spec.fields import resolve_int_or_percent, split_host_port
from zerodown.spec.validation import did_you_mean


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (30, 30.0),
        (0.5, 0.5),
        ("45", 45.0),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h2m3.5s", 3723.5),
        ("2d", 172800.0),
        (" 10s ", 10.0),
    ],
)
def test_parse_duration_reads_numbers_and_units(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "10 s", "10x", "-5s", "1m-30s", True, None, [], "inf"])
def test_parse_duration_refuses_what_is_not_a_duration(text: object) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.5, "500ms"), (1.5, "1.5s"), (90, "1m30s"), (3600, "1h"), (3723, "1h2m3s")],
)
def test_format_duration_writes_the_spec_notation(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_percentages_round_up_for_surge_and_down_for_unavailable() -> None:
    assert resolve_int_or_percent("25%", total=6, round_up=True) == 2
    assert resolve_int_or_percent("25%", total=6, round_up=False) == 1
    assert resolve_int_or_percent(3, total=6, round_up=False) == 3


def test_split_host_port() -> None:
    assert split_host_port("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert split_host_port("[::1]:80") == ("::1", 80)
    with pytest.raises(ValueError):
        split_host_port("localhost:0")


def test_did_you_mean_prefers_case_and_camel_case_matches() -> None:
    keys = ["replicas", "healthCheck", "stopGraceSeconds"]
    assert did_you_mean("healthcheck", keys) == "did you mean 'healthCheck'?"
    assert did_you_mean("stop_grace_seconds", keys) == (
        "did you mean 'stopGraceSeconds'? keys are camelCase"
    )
    assert did_you_mean("replica", keys) == "did you mean 'replicas'?"
    assert did_you_mean("zzz", keys) is None
