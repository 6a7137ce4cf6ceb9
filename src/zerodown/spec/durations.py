"""Durations in the spec: ``30s``, ``500ms``, ``5m``, ``1h``, ``1m30s`` or a number of seconds.

Every duration in ``zerodown.yaml`` becomes a ``float`` of seconds in the models, so the engine
never parses text. ``parse_duration`` is the one parser (the CLI reuses it for options such as
``--timeout 2m``); ``format_duration`` writes seconds back in the same notation for messages
and reports.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

__all__ = [
    "Duration",
    "PositiveDuration",
    "format_duration",
    "parse_duration",
]

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# One number followed by one unit; a duration is one or more of these with nothing between.
_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)")
_PLAIN_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")

DURATION_EXPECTED = "expected a duration such as 30s, 500ms, 5m, 1h, 1m30s or a number of seconds"


def parse_duration(value: object) -> float:
    """Seconds in ``value``; ``ValueError`` saying what was expected if it is not a duration.

    Accepts an int or float (seconds), a numeric string (seconds) or a string of number+unit
    parts with units ``ms``, ``s``, ``m``, ``h``, ``d`` (``1m30s`` is 90.0). Negative and
    non-finite values are refused: no wait in zerodown can last less than nothing or forever.
    """
    if isinstance(value, bool):
        raise ValueError(DURATION_EXPECTED)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if _PLAIN_NUMBER.fullmatch(text):
            seconds = float(text)
        else:
            parts = _PART.findall(text)
            if not parts or "".join(number + unit for number, unit in parts) != text:
                raise ValueError(DURATION_EXPECTED)
            seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    else:
        raise ValueError(DURATION_EXPECTED)
    if not math.isfinite(seconds):
        raise ValueError(DURATION_EXPECTED)
    if seconds < 0:
        raise ValueError("expected a duration that is not negative")
    return seconds


def format_duration(seconds: float) -> str:
    """``90.0`` -> ``"1m30s"``, ``0.5`` -> ``"500ms"``, ``0`` -> ``"0s"``: the spec's notation."""
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    whole_minutes, rest = divmod(seconds, 60.0)
    hours, minutes = divmod(int(whole_minutes), 60)
    text = ""
    if hours:
        text += f"{hours}h"
    if minutes:
        text += f"{minutes}m"
    if rest or not text:
        text += f"{rest:g}s"
    return text


def _validate_duration(value: object) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("spec_value", str(exc)) from None


def _validate_positive_duration(value: object) -> float:
    seconds = _validate_duration(value)
    if seconds == 0:
        raise PydanticCustomError("spec_value", "expected a duration greater than zero")
    return seconds


_DURATION_SCHEMA = WithJsonSchema(
    {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": r"^(\d|\.)"}]}
)

Duration = Annotated[float, BeforeValidator(_validate_duration), _DURATION_SCHEMA]
"""Seconds >= 0, written as a number or with units."""

PositiveDuration = Annotated[float, BeforeValidator(_validate_positive_duration), _DURATION_SCHEMA]
"""Seconds > 0 (intervals and timeouts, where zero would spin)."""
