"""The value types of retention rules, written as restic's ``forget --keep-*`` options read them.

Two types, so that a policy copied from a restic command line means the same thing here:

- ``KeepCount``: how many hours, days, weeks... keep a backup: a number, or ``unlimited`` for
  all of them (restic 0.16 and later spell it so; restic refuses negative counts, and 0.14
  read ``-1`` as "keep none", so zerodown refuses negatives too).
- ``CalendarSpan``: the ``--keep-within`` notation ``1y2m3d4h``. Here ``m`` is **months**, as in
  restic, not minutes as in the rest of the spec; there is no unit smaller than an hour. Spans
  are calendar arithmetic (a month back from 31 March is 3 March, Go's ``AddDate`` rule), then
  the hours are taken off as elapsed time.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from zerodown.spec.fields import spec_value_error

__all__ = [
    "CALENDAR_SPAN_EXPECTED",
    "KEEP_COUNT_EXPECTED",
    "UNLIMITED",
    "CalendarSpan",
    "KeepCount",
    "KeepWithin",
    "format_keep_count",
    "parse_calendar_span",
    "parse_keep_count",
]

UNLIMITED: Final = -1
"""A ``KeepCount`` that keeps every hour, day, week... (``unlimited`` in YAML)."""

KEEP_COUNT_EXPECTED: Final = "expected a number of backups to keep (0 or more) or 'unlimited'"
CALENDAR_SPAN_EXPECTED: Final = (
    "expected a span of years, months, days and hours such as 1y, 6m, 7d, 12h or 1y2m3d4h "
    "(m is months, as in restic's --keep-within)"
)

_SPAN_PART = re.compile(r"(\d+)([ymdh])")


@dataclass(frozen=True)
class CalendarSpan:
    """Years, months, days and hours, as restic's ``--keep-within`` counts them."""

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    def __post_init__(self) -> None:
        if min(self.years, self.months, self.days, self.hours) < 0:
            raise ValueError("a calendar span cannot be negative")

    def __str__(self) -> str:
        """``1y2m3d4h`` with the zero parts left out (restic's wording; ``0h`` when empty)."""
        parts = zip((self.years, self.months, self.days, self.hours), "ymdh", strict=True)
        return "".join(f"{number}{unit}" for number, unit in parts if number) or "0h"

    @property
    def zero(self) -> bool:
        """True when every part is zero: a rule with this span is switched off."""
        return not (self.years or self.months or self.days or self.hours)

    def before(self, moment: dt.datetime) -> dt.datetime | None:
        """The moment this span before ``moment``, or None if that is before year 1.

        The years, months and days go back on the calendar in ``moment``'s own zone, and a day
        past the end of its month rolls over (a month before 31 March is 3 March, or 2 March
        in a leap year), as Go's ``time.AddDate`` does; the hours are then elapsed time.
        """
        month_index = (moment.year - self.years) * 12 + (moment.month - 1) - self.months
        year, month = divmod(month_index, 12)
        if year < 1:
            return None
        try:
            day = dt.date(year, month + 1, 1) + dt.timedelta(days=moment.day - 1 - self.days)
        except OverflowError:
            return None
        wall = dt.datetime.combine(day, moment.timetz())
        try:
            return (wall.astimezone(dt.UTC) - dt.timedelta(hours=self.hours)).astimezone(
                moment.tzinfo
            )
        except OverflowError:
            return None


def parse_calendar_span(value: object) -> CalendarSpan:
    """``"1y2m3d4h"`` as a ``CalendarSpan``; ``ValueError`` for anything else.

    Each unit may appear once, in any order; ``y`` years, ``m`` months, ``d`` days, ``h`` hours.
    """
    if isinstance(value, CalendarSpan):
        return value
    if not isinstance(value, str):
        raise ValueError(CALENDAR_SPAN_EXPECTED)
    text = value.strip()
    parts = _SPAN_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(CALENDAR_SPAN_EXPECTED)
    units = [unit for _, unit in parts]
    if len(set(units)) != len(units):
        raise ValueError(CALENDAR_SPAN_EXPECTED + "; each unit at most once")
    amounts = {unit: int(number) for number, unit in parts}
    return CalendarSpan(
        years=amounts.get("y", 0),
        months=amounts.get("m", 0),
        days=amounts.get("d", 0),
        hours=amounts.get("h", 0),
    )


def parse_keep_count(value: object) -> int:
    """A count of 0 or more, or ``UNLIMITED`` for ``"unlimited"``; ``ValueError`` otherwise."""
    if isinstance(value, str) and value.strip().lower() == "unlimited":
        return UNLIMITED
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(KEEP_COUNT_EXPECTED)
    return value


def format_keep_count(count: int) -> str:
    """``7`` -> ``"7"``, ``UNLIMITED`` -> ``"unlimited"``."""
    return "unlimited" if count == UNLIMITED else str(count)


def _keep_count_json(count: int) -> int | str:
    return "unlimited" if count == UNLIMITED else count


def _keep_count(value: Any) -> int:
    try:
        return parse_keep_count(value)
    except ValueError:
        hint = None
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            hint = "write 'unlimited' to keep them all (restic 0.16 and later do the same)"
        raise spec_value_error(KEEP_COUNT_EXPECTED, hint=hint) from None


def _keep_within(value: Any) -> CalendarSpan:
    try:
        span = parse_calendar_span(value)
    except ValueError as exc:
        hint = None
        text = value.strip() if isinstance(value, str) else ""
        if re.fullmatch(r"\d+w", text):
            hint = f"weeks are not a unit here (nor in restic): write {int(text[:-1]) * 7}d"
        elif re.search(r"\d(s|ms|min)$", text):
            hint = "the smallest unit of a retention span is the hour (h)"
        elif isinstance(value, int | float) and not isinstance(value, bool):
            hint = f"add a unit, such as {value}d"
        raise spec_value_error(str(exc), hint=hint) from None
    if span.zero:
        raise spec_value_error("expected a span longer than zero", hint="leave the rule out")
    return span


KeepCount = Annotated[
    int,
    BeforeValidator(_keep_count),
    PlainSerializer(_keep_count_json, when_used="json"),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "enum": ["unlimited"]}]}
    ),
]
"""0 or more, or ``UNLIMITED`` (``unlimited`` in YAML and JSON)."""

KeepWithin = Annotated[
    CalendarSpan,
    BeforeValidator(_keep_within),
    PlainSerializer(str),
    WithJsonSchema({"type": "string", "pattern": r"^(\d+[ymdh])+$"}),
]
"""A non-zero ``CalendarSpan`` written as ``1y2m3d4h``."""
