"""Deployment windows and freezes, decided for fixed times: inside and outside windows, their
edges, overnight windows, freezes over windows, DST changes, and when the next window opens."""

from __future__ import annotations

import datetime as dt
from textwrap import dedent

import pytest

from zerodown.checks.windows import deploy_allowed, describe_window
from zerodown.core.errors import InputError
from zerodown.spec import parse_spec
from zerodown.spec.models import DeploySpec, DeployWindow, FreezeSpec

UTC = dt.UTC


def utc(text: str) -> dt.datetime:
    """``"2026-06-10 08:00"`` as an aware UTC datetime."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


OFFICE_BERLIN = DeployWindow(
    days=("mon", "tue", "wed", "thu", "fri"), start="09:00", end="17:00", timezone="Europe/Berlin"
)
OFFICE_UTC = DeployWindow(days=("mon", "tue", "wed", "thu", "fri"), start="09:00", end="17:00")
FRIDAY_NIGHT = DeployWindow(days=("fri",), start="22:00", end="02:00")


def deploy(*windows: DeployWindow, freezes: tuple[FreezeSpec, ...] = ()) -> DeploySpec:
    return DeploySpec(windows=windows, freezes=freezes)


def freeze(start: str, end: str, reason: str | None = None) -> FreezeSpec:
    return FreezeSpec(start=utc(start), end=utc(end), reason=reason)


def test_no_windows_and_no_freezes_allow_any_time() -> None:
    decision = deploy_allowed(DeploySpec(), utc("2026-06-13 03:00"))
    assert decision.allowed
    assert "no deployment window" in decision.reason
    assert decision.next_open is None


def test_inside_a_window_in_its_time_zone() -> None:
    """Wednesday 10:00 in Berlin (summer, UTC+2) is 08:00 UTC."""
    decision = deploy_allowed(deploy(OFFICE_BERLIN), utc("2026-06-10 08:00"))
    assert decision.allowed
    assert decision.reason == "inside window mon-fri 09:00-17:00 Europe/Berlin"
    assert decision.next_open is None


def test_before_the_window_opens_today() -> None:
    decision = deploy_allowed(deploy(OFFICE_BERLIN), utc("2026-06-10 06:00"))
    assert not decision.allowed
    assert decision.reason == "outside every deployment window"
    assert decision.next_open == utc("2026-06-10 07:00")


def test_friday_evening_waits_for_monday_morning() -> None:
    decision = deploy_allowed(deploy(OFFICE_BERLIN), utc("2026-06-12 16:00"))
    assert not decision.allowed
    assert decision.next_open == utc("2026-06-15 07:00")


def test_the_start_is_inside_and_the_end_is_not() -> None:
    window = deploy(OFFICE_UTC)
    assert deploy_allowed(window, utc("2026-06-10 09:00")).allowed
    assert deploy_allowed(window, utc("2026-06-10 16:59:59")).allowed
    assert not deploy_allowed(window, utc("2026-06-10 17:00")).allowed


def test_now_may_be_given_in_any_offset() -> None:
    berlin_ten = dt.datetime(2026, 6, 10, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert deploy_allowed(deploy(OFFICE_BERLIN), berlin_ten).allowed


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(InputError, match="timezone-aware"):
        deploy_allowed(deploy(OFFICE_UTC), dt.datetime(2026, 6, 10, 10, 0))


# Overnight windows


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        ("2026-06-12 21:59", False),  # Friday, before it opens
        ("2026-06-12 22:00", True),  # Friday, opening
        ("2026-06-12 23:30", True),
        ("2026-06-13 01:59", True),  # Saturday morning still belongs to Friday's window
        ("2026-06-13 02:00", False),  # closed
        ("2026-06-12 01:00", False),  # Friday morning: Thursday has no window
        ("2026-06-11 23:00", False),  # Thursday night
    ],
)
def test_an_overnight_window_wraps_past_midnight(now: str, allowed: bool) -> None:
    assert deploy_allowed(deploy(FRIDAY_NIGHT), utc(now)).allowed is allowed


def test_an_overnight_window_opens_next_on_friday_evening() -> None:
    decision = deploy_allowed(deploy(FRIDAY_NIGHT), utc("2026-06-13 02:00"))
    assert decision.next_open == utc("2026-06-19 22:00")
    assert describe_window(FRIDAY_NIGHT) == "fri 22:00-02:00 UTC"


def test_a_whole_day_window_ends_at_midnight() -> None:
    weekend = DeployWindow(days=("sat", "sun"))
    assert deploy_allowed(deploy(weekend), utc("2026-06-14 23:59")).allowed  # Sunday
    decision = deploy_allowed(deploy(weekend), utc("2026-06-15 00:00"))  # Monday
    assert not decision.allowed
    assert decision.next_open == utc("2026-06-20 00:00")


def test_any_of_several_windows_will_do() -> None:
    windows = deploy(OFFICE_UTC, FRIDAY_NIGHT)
    decision = deploy_allowed(windows, utc("2026-06-12 23:00"))
    assert decision.allowed
    assert decision.reason == "inside window fri 22:00-02:00 UTC"
    # Friday after the office window closes: the night window opens first.
    assert deploy_allowed(windows, utc("2026-06-12 18:00")).next_open == utc("2026-06-12 22:00")


# Freezes

YEAR_END = freeze("2026-12-20 00:00", "2027-01-04 00:00", "year-end freeze")


def test_a_freeze_overlapping_a_window_wins() -> None:
    """Monday 10:00 is inside the office window, but the year-end freeze holds until Jan 4."""
    decision = deploy_allowed(deploy(OFFICE_UTC, freezes=(YEAR_END,)), utc("2026-12-21 10:00"))
    assert not decision.allowed
    assert decision.reason == "frozen until 2027-01-04T00:00Z: year-end freeze"
    # Jan 4 2027 is a Monday: the first window after the freeze opens at 09:00.
    assert decision.next_open == utc("2027-01-04 09:00")


def test_the_search_for_the_next_window_starts_where_a_long_freeze_ends() -> None:
    """The freeze lasts 15 days; the two-week search counts from its end, not from now."""
    decision = deploy_allowed(deploy(OFFICE_UTC, freezes=(YEAR_END,)), utc("2026-12-20 00:00"))
    assert decision.next_open == utc("2027-01-04 09:00")


def test_a_freeze_ending_inside_a_window_opens_it_at_the_freeze_end() -> None:
    lunch = freeze("2026-06-10 11:00", "2026-06-10 12:30")
    decision = deploy_allowed(deploy(OFFICE_UTC, freezes=(lunch,)), utc("2026-06-10 11:15"))
    assert not decision.allowed
    assert decision.reason == "frozen until 2026-06-10T12:30Z"
    assert decision.next_open == utc("2026-06-10 12:30")


def test_outside_windows_the_next_opening_skips_frozen_ones() -> None:
    """Before Monday's window, with Monday and Tuesday frozen: Wednesday 09:00."""
    frozen = freeze("2026-06-15 00:00", "2026-06-17 00:00", "release train")
    decision = deploy_allowed(deploy(OFFICE_UTC, freezes=(frozen,)), utc("2026-06-14 12:00"))
    assert decision.reason == "outside every deployment window"
    assert decision.next_open == utc("2026-06-17 09:00")


def test_freezes_that_touch_are_one_frozen_stretch() -> None:
    first = freeze("2026-06-10 00:00", "2026-06-11 00:00", "db migration")
    second = freeze("2026-06-11 00:00", "2026-06-12 06:00", "db migration, part 2")
    decision = deploy_allowed(deploy(freezes=(first, second)), utc("2026-06-10 10:00"))
    assert decision.reason == "frozen until 2026-06-12T06:00Z: db migration"
    assert decision.next_open == utc("2026-06-12 06:00")  # no windows: open when it thaws


def test_a_freeze_is_inclusive_at_its_start_and_over_at_its_end() -> None:
    spec = deploy(freezes=(YEAR_END,))
    assert not deploy_allowed(spec, utc("2026-12-20 00:00")).allowed
    assert deploy_allowed(spec, utc("2027-01-04 00:00")).allowed
    assert deploy_allowed(spec, utc("2026-12-19 23:59")).allowed


def test_nothing_opening_within_two_weeks_gives_no_next_open() -> None:
    """Outside the window, and every opening of the next 14 days is frozen."""
    month = freeze("2026-06-10 09:00", "2026-07-10 00:00", "audit")
    decision = deploy_allowed(deploy(OFFICE_UTC, freezes=(month,)), utc("2026-06-10 08:00"))
    assert not decision.allowed
    assert decision.reason == "outside every deployment window"
    assert decision.next_open is None


def test_freeze_times_with_offsets_are_compared_as_instants() -> None:
    berlin = dt.timezone(dt.timedelta(hours=1))
    spec = deploy(
        freezes=(
            FreezeSpec(
                start=dt.datetime(2026, 12, 20, 1, 0, tzinfo=berlin),
                end=dt.datetime(2026, 12, 20, 2, 0, tzinfo=berlin),
            ),
        )
    )
    assert not deploy_allowed(spec, utc("2026-12-20 00:30")).allowed
    assert deploy_allowed(spec, utc("2026-12-20 01:00")).allowed


# Daylight saving time (Europe/Berlin: forward 2026-03-29 02:00 CET, back 2026-10-25 03:00 CEST)


def test_the_same_wall_clock_window_moves_in_utc_across_spring_forward() -> None:
    """09:00 Berlin is 08:00 UTC on Friday (CET) and 07:00 UTC on Monday (CEST)."""
    spec = deploy(OFFICE_BERLIN)
    assert deploy_allowed(spec, utc("2026-03-27 08:00")).allowed
    assert not deploy_allowed(spec, utc("2026-03-27 07:30")).allowed
    decision = deploy_allowed(spec, utc("2026-03-28 12:00"))
    assert decision.next_open == utc("2026-03-30 07:00")
    assert deploy_allowed(spec, utc("2026-03-30 07:00")).allowed
    assert not deploy_allowed(spec, utc("2026-03-30 15:00")).allowed  # 17:00 CEST


def test_the_same_wall_clock_window_moves_in_utc_across_fall_back() -> None:
    decision = deploy_allowed(deploy(OFFICE_BERLIN), utc("2026-10-24 12:00"))
    assert decision.next_open == utc("2026-10-26 08:00")  # 09:00 CET


def test_a_window_starting_in_the_skipped_hour_opens_when_the_clocks_jump() -> None:
    """02:30 never happens on 2026-03-29 in Berlin; the window opens at 03:00 CEST (01:00Z)."""
    night = DeployWindow(days=("sun",), start="02:30", end="04:00", timezone="Europe/Berlin")
    decision = deploy_allowed(deploy(night), utc("2026-03-29 00:45"))  # 01:45 CET
    assert not decision.allowed
    assert decision.next_open == utc("2026-03-29 01:00")
    assert deploy_allowed(deploy(night), utc("2026-03-29 01:00")).allowed
    assert not deploy_allowed(deploy(night), utc("2026-03-29 02:00")).allowed  # 04:00 CEST


def test_a_window_in_the_repeated_hour_starts_at_its_first_occurrence() -> None:
    """02:30 happens twice on 2026-10-25 in Berlin: first at 00:30Z (CEST), again at 01:30Z."""
    night = DeployWindow(days=("sun",), start="02:30", end="03:30", timezone="Europe/Berlin")
    spec = deploy(night)
    assert not deploy_allowed(spec, utc("2026-10-25 00:29")).allowed
    assert deploy_allowed(spec, utc("2026-10-25 00:30")).allowed
    assert deploy_allowed(spec, utc("2026-10-25 01:45")).allowed  # 02:45 CET, second pass
    assert not deploy_allowed(spec, utc("2026-10-25 02:30")).allowed  # 03:30 CET


def test_an_overnight_window_across_the_spring_forward_night() -> None:
    """Saturday 22:00 CET to Sunday 06:00 CEST: one hour shorter in real time."""
    night = DeployWindow(days=("sat",), start="22:00", end="06:00", timezone="Europe/Berlin")
    spec = deploy(night)
    assert deploy_allowed(spec, utc("2026-03-28 21:00")).allowed  # 22:00 CET
    assert deploy_allowed(spec, utc("2026-03-29 03:59")).allowed  # 05:59 CEST
    assert not deploy_allowed(spec, utc("2026-03-29 04:00")).allowed  # 06:00 CEST


# Descriptions and the spec


@pytest.mark.parametrize(
    ("days", "text"),
    [
        (("mon", "tue", "wed", "thu", "fri"), "mon-fri"),
        (("sat", "sun"), "sat,sun"),
        (("fri", "mon", "wed"), "mon,wed,fri"),
        (("mon", "tue", "wed", "fri", "sat", "sun"), "mon-wed,fri-sun"),
        (("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "every day"),
    ],
)
def test_days_are_described_in_week_order_with_ranges(days: tuple[str, ...], text: str) -> None:
    window = DeployWindow.model_validate({"days": days, "start": "08:00", "end": "20:00"})
    assert describe_window(window) == f"{text} 08:00-20:00 UTC"


def test_decides_on_a_deploy_section_read_from_yaml() -> None:
    spec = parse_spec(
        dedent(
            """\
            service: web
            run: {command: python app.py}
            deploy:
              windows:
                - {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00", timezone: "Europe/Berlin"}
              freezes:
                - {start: "2026-12-20T00:00:00Z", end: "2027-01-04T00:00:00Z", reason: "year-end freeze"}
            """  # noqa: E501
        )
    ).spec
    inside = deploy_allowed(spec.deploy, utc("2026-12-01 10:00"))
    assert inside.allowed and inside.reason == "inside window mon-fri 09:00-17:00 Europe/Berlin"
    frozen = deploy_allowed(spec.deploy, utc("2026-12-22 10:00"))
    assert frozen.reason == "frozen until 2027-01-04T00:00Z: year-end freeze"
    assert frozen.next_open == utc("2027-01-04 08:00")  # 09:00 CET
