"""Deployment windows and freezes: may a deployment start now, and if not, when?

A pure function of the ``deploy`` section and a time: it never reads a clock, so tests pass
fixed datetimes (DST changes included) and the engine passes ``clock.now()``.

The rules, in order:

1. Inside a freeze (``start <= now < end``) nothing starts, even within a window.
2. With no windows, deployments may start at any other time.
3. Otherwise ``now`` must fall inside one window: one of its ``days`` at a wall-clock time from
   ``start`` (included) to ``end`` (excluded) in its time zone. An ``end`` at or before the
   ``start`` wraps past midnight, so ``fri 22:00-02:00`` runs to Saturday 02:00.

Window edges are wall-clock times, resolved the way a person reading the clock would: on the
night the clocks go back, a time that happens twice means its first occurrence; on the night
they go forward, a time that never happens means the moment the clocks jump (a window from
02:30 opens at 03:00). ``next_open`` is the first moment, after ``now``, that is inside a window
and outside every freeze; the search looks 14 days ahead, counted from the end of the freeze
in force if there is one, and gives None when nothing opens in that time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from zerodown.core.errors import InputError
from zerodown.spec.models import WEEKDAYS, DeploySpec, DeployWindow, FreezeSpec

__all__ = ["SEARCH_AHEAD", "WindowDecision", "deploy_allowed", "describe_window"]

SEARCH_AHEAD: Final = dt.timedelta(days=14)
"""How far ahead ``next_open`` is looked for."""

_UTC: Final = dt.UTC


@dataclass(frozen=True)
class WindowDecision:
    """Whether a deployment may start, why, and when it next may if not now."""

    allowed: bool
    reason: str
    next_open: dt.datetime | None = None
    """When not allowed: the first moment a deployment may start (UTC); None if none is
    found within the search. Always None when allowed."""


def deploy_allowed(spec_deploy: DeploySpec, now: dt.datetime) -> WindowDecision:
    """Decide for ``now`` (timezone-aware); ``InputError`` for a naive datetime."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise InputError(f"expected a timezone-aware time, got {now.isoformat()}")
    now = now.astimezone(_UTC)
    freezes = spec_deploy.freezes
    windows = spec_deploy.windows
    frozen_by = _freeze_at(freezes, now)
    if frozen_by is not None:
        until = _frozen_until(freezes, now)
        reason = f"frozen until {_format_instant(until)}"
        if frozen_by.reason:
            reason += f": {frozen_by.reason}"
        next_open = until if not windows else _next_open(spec_deploy, now, search_from=until)
        return WindowDecision(allowed=False, reason=reason, next_open=next_open)
    if not windows:
        return WindowDecision(
            allowed=True, reason="no deployment window is set: deployments may start any time"
        )
    for window in windows:
        if _inside(window, now):
            return WindowDecision(allowed=True, reason=f"inside window {describe_window(window)}")
    return WindowDecision(
        allowed=False,
        reason="outside every deployment window",
        next_open=_next_open(spec_deploy, now, search_from=now),
    )


def describe_window(window: DeployWindow) -> str:
    """``mon-fri 09:00-17:00 Europe/Berlin``, ``sat,sun 22:00-02:00 UTC``, ``every day ...``."""
    return f"{_describe_days(window.days)} {window.start}-{window.end} {window.timezone}"


def _describe_days(days: Sequence[str]) -> str:
    chosen = [index for index, day in enumerate(WEEKDAYS) if day in days]
    if len(chosen) == len(WEEKDAYS):
        return "every day"
    runs: list[list[int]] = []
    for index in chosen:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    parts: list[str] = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{WEEKDAYS[run[0]]}-{WEEKDAYS[run[-1]]}")
        else:
            parts.extend(WEEKDAYS[index] for index in run)
    return ",".join(parts)


def _format_instant(moment: dt.datetime) -> str:
    """UTC, to the minute (to the second if it has seconds): ``2027-01-04T00:00Z``."""
    moment = moment.astimezone(_UTC)
    pattern = "%Y-%m-%dT%H:%M:%SZ" if moment.second or moment.microsecond else "%Y-%m-%dT%H:%MZ"
    return moment.strftime(pattern)


# ---------------------------------------------------------------------------------------------
# Freezes


def _freeze_at(freezes: Sequence[FreezeSpec], moment: dt.datetime) -> FreezeSpec | None:
    """The freeze in force at ``moment`` that lasts longest (None if none is)."""
    active = [freeze for freeze in freezes if freeze.start <= moment < freeze.end]
    return max(active, key=lambda freeze: freeze.end) if active else None


def _frozen_until(freezes: Sequence[FreezeSpec], moment: dt.datetime) -> dt.datetime:
    """The end of the frozen stretch around ``moment``, following freezes that touch."""
    until = moment
    while (freeze := _freeze_at(freezes, until)) is not None:
        until = freeze.end
    return until


# ---------------------------------------------------------------------------------------------
# Windows on the wall clock


def _wall_instant(day: dt.date, minute: int, zone: ZoneInfo) -> dt.datetime:
    """The first instant at which the wall clock in ``zone`` reads ``day`` + ``minute`` or later.

    ``minute`` 1440 is midnight at the end of ``day``.
    """
    wall = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(_UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant  # an ordinary time, or the first of a time that happens twice
    # A time the clocks skip: find the jump, between the readings with either offset.
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = int(instant.timestamp())
    low, high = min(low, high), max(low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if dt.datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return dt.datetime.fromtimestamp(high, _UTC)


def _openings(
    window: DeployWindow, first: dt.date, last: dt.date
) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """The window's ``[open, close)`` intervals for the days it opens from ``first`` to ``last``."""
    zone = window.zone
    start, end = window.start_minute, window.end_minute
    day = first
    while day <= last:
        if WEEKDAYS[day.weekday()] in window.days:
            close_day = day + dt.timedelta(days=1) if window.wraps else day
            yield _wall_instant(day, start, zone), _wall_instant(close_day, end, zone)
        day += dt.timedelta(days=1)


def _local_date(window: DeployWindow, moment: dt.datetime) -> dt.date:
    return moment.astimezone(window.zone).date()


def _inside(window: DeployWindow, moment: dt.datetime) -> bool:
    today = _local_date(window, moment)
    # Yesterday's opening may wrap into today.
    return any(
        opens <= moment < closes
        for opens, closes in _openings(window, today - dt.timedelta(days=1), today)
    )


def _next_open(
    spec_deploy: DeploySpec, now: dt.datetime, *, search_from: dt.datetime
) -> dt.datetime | None:
    """The first moment after ``now`` inside a window and outside every freeze.

    The allowed time is the windows minus the freezes, so each stretch of it begins where a
    window opens or where a freeze ends: only those moments need checking.
    """
    horizon = max(now, search_from) + SEARCH_AHEAD
    intervals: list[tuple[dt.datetime, dt.datetime]] = []
    for window in spec_deploy.windows:
        first = _local_date(window, now) - dt.timedelta(days=1)
        last = _local_date(window, horizon)
        intervals.extend(_openings(window, first, last))
    candidates = sorted(
        {opens for opens, _ in intervals} | {freeze.end for freeze in spec_deploy.freezes}
    )
    for moment in candidates:
        if not now < moment <= horizon:
            continue
        inside = any(opens <= moment < closes for opens, closes in intervals)
        if inside and _freeze_at(spec_deploy.freezes, moment) is None:
            return moment.astimezone(_UTC)
    return None
