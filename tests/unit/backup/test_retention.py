"""Retention by restic's ``forget --keep-*`` rules, on hand-written vectors.

The differential test against the real ``restic forget`` (tests/integration/backup) covers what
Debian's restic 0.14 does. These vectors pin what it cannot: behaviour that changed in restic
0.16 (``unlimited``) and 0.17 (the oldest backup kept while a rule has room left), plus edges
worth naming: ISO weeks across New Year, a span ending on the 31st of a month, a day that is 23
hours long, backups dated in the future, and periods read in a time zone other than UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from textwrap import dedent
from zoneinfo import ZoneInfo

import pytest

from zerodown.backup.retention import (
    UNLIMITED,
    Decision,
    RetentionPolicy,
    apply_policy,
    describe_decisions,
)
from zerodown.core.errors import SpecError
from zerodown.spec import parse_spec
from zerodown.spec.retention import CalendarSpan, parse_calendar_span

BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")


@dataclass(frozen=True)
class Backup:
    time: dt.datetime


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def backups(*times: str) -> list[Backup]:
    return [Backup(utc(text)) for text in times]


def kept(decisions: list[Decision[Backup]]) -> list[str]:
    return [f"{d.snapshot.time:%Y-%m-%d %H:%M:%S}" for d in decisions if d.keep]


def reasons(decisions: list[Decision[Backup]]) -> dict[str, list[str]]:
    return {
        f"{d.snapshot.time:%Y-%m-%d %H:%M:%S}": [str(r) for r in d.reasons]
        for d in decisions
        if d.keep
    }


def kept_without_oldest(decisions: list[Decision[Backup]]) -> list[str]:
    """What restic before 0.17 keeps: the same decisions minus the ``oldest`` reasons."""
    return [
        f"{d.snapshot.time:%Y-%m-%d %H:%M:%S}"
        for d in decisions
        if any(not reason.oldest for reason in d.reasons)
    ]


NOW = utc("2026-01-01 00:00")


def test_restic_documentation_example_keep_daily_4_of_twelve_sundays() -> None:
    sundays = [dt.date(2019, 9, 1) + dt.timedelta(weeks=week) for week in range(12)]
    snapshots = [Backup(dt.datetime.combine(day, dt.time(11), dt.UTC)) for day in sundays]
    decisions = apply_policy(snapshots, RetentionPolicy(daily=4), now=NOW)
    assert kept(decisions) == [
        "2019-11-17 11:00:00",
        "2019-11-10 11:00:00",
        "2019-11-03 11:00:00",
        "2019-10-27 11:00:00",
    ]
    assert all(str(r) == "daily snapshot" for d in decisions for r in d.reasons)
    assert len(decisions) == 12, "one decision per backup, forgotten ones included"


def test_decisions_come_newest_first_whatever_the_input_order() -> None:
    decisions = apply_policy(
        backups("2024-01-01 00:00", "2024-03-01 00:00", "2024-02-01 00:00"),
        RetentionPolicy(last=1),
        now=NOW,
    )
    assert [f"{d.snapshot.time:%m}" for d in decisions] == ["03", "02", "01"]
    assert [d.keep for d in decisions] == [True, False, False]


def test_a_backup_kept_by_several_rules_is_counted_by_each() -> None:
    """The newest backup of a Sunday at the end of June is the last, hourly, daily, weekly,
    monthly and yearly one; every counter spends its one slot on it, so nothing else is kept."""
    decisions = apply_policy(
        backups("2024-06-30 18:00", "2024-06-30 17:00", "2024-06-23 12:00"),
        RetentionPolicy(last=1, hourly=1, daily=1, weekly=1, monthly=1, yearly=1),
        now=NOW,
    )
    assert reasons(decisions) == {
        "2024-06-30 18:00:00": [
            "last snapshot",
            "hourly snapshot",
            "daily snapshot",
            "weekly snapshot",
            "monthly snapshot",
            "yearly snapshot",
        ]
    }
    assert [r.rule for r in decisions[0].reasons] == [
        "keepLast",
        "keepHourly",
        "keepDaily",
        "keepWeekly",
        "keepMonthly",
        "keepYearly",
    ]


def test_weeks_are_iso_weeks_across_new_year() -> None:
    """30 Dec 2024 (Monday) is in week 1 of 2025 with 5 Jan 2025; 31 Dec 2020 (Thursday) and
    3 Jan 2021 (Sunday) are both in week 53 of 2020."""
    snapshots = backups(
        "2025-01-05 12:00",
        "2024-12-30 12:00",
        "2024-12-29 12:00",
        "2021-01-04 12:00",
        "2021-01-03 12:00",
        "2020-12-31 12:00",
    )
    assert kept(apply_policy(snapshots, RetentionPolicy(weekly=3), now=NOW)) == [
        "2025-01-05 12:00:00",
        "2024-12-29 12:00:00",
        "2021-01-04 12:00:00",
    ]
    # A fourth week is 2020-W53, whose newest backup is 3 Jan 2021; 31 Dec 2020 shares it.
    assert kept(apply_policy(snapshots, RetentionPolicy(weekly=4), now=NOW))[-1] == (
        "2021-01-03 12:00:00"
    )


def test_periods_without_backups_are_not_counted() -> None:
    decisions = apply_policy(
        backups("2024-05-10 00:00", "2024-01-10 00:00", "2020-01-10 00:00", "2019-06-10 00:00"),
        RetentionPolicy(monthly=3),
        now=NOW,
    )
    assert kept(decisions) == ["2024-05-10 00:00:00", "2024-01-10 00:00:00", "2020-01-10 00:00:00"]


def test_keep_within_counts_from_the_newest_backup_not_from_now() -> None:
    snapshots = backups("2020-01-10 00:00", "2020-01-05 00:00", "2019-12-01 00:00")
    decisions = apply_policy(snapshots, RetentionPolicy(within=CalendarSpan(days=7)), now=NOW)
    assert kept(decisions) == ["2020-01-10 00:00:00", "2020-01-05 00:00:00"]
    assert reasons(decisions)["2020-01-05 00:00:00"] == ["within 7d"]


def test_keep_within_one_month_back_from_the_31st_rolls_over_like_go() -> None:
    """A month before 31 March 2024 is "31 February", which Go's AddDate (and restic) reads as
    2 March in a leap year. The span's start itself is outside (restic keeps what is *after*)."""
    snapshots = backups(
        "2024-03-31 12:00:00",
        "2024-03-02 12:00:01",
        "2024-03-02 12:00:00",
        "2024-03-01 12:00:00",
    )
    decisions = apply_policy(snapshots, RetentionPolicy(within=CalendarSpan(months=1)), now=NOW)
    assert kept(decisions) == ["2024-03-31 12:00:00", "2024-03-02 12:00:01"]
    assert CalendarSpan(months=1).before(utc("2023-03-31 12:00")) == utc("2023-03-03 12:00")


def test_a_day_is_a_calendar_day_and_an_hour_is_elapsed_time() -> None:
    """On 31 March 2024 Berlin moved its clocks forward: the day before 12:00 CEST is 12:00 CET,
    23 hours earlier. ``1d`` and ``24h`` differ by one hour there."""
    newest = dt.datetime(2024, 3, 31, 12, tzinfo=BERLIN)
    assert CalendarSpan(days=1).before(newest) == dt.datetime(2024, 3, 30, 12, tzinfo=BERLIN)
    snapshots = [Backup(newest), Backup(utc("2024-03-30 10:30"))]  # 11:30 CET, 23.5 h before
    one_day = RetentionPolicy(within=CalendarSpan(days=1), zone=BERLIN)
    hours = RetentionPolicy(within=CalendarSpan(hours=24), zone=BERLIN)
    assert not apply_policy(snapshots, one_day, now=NOW)[1].keep
    assert apply_policy(snapshots, hours, now=NOW)[1].keep


def test_periods_are_read_in_the_policy_zone() -> None:
    """14:00 and 16:00 UTC on 1 January are one day in UTC but two in Tokyo (23:00 and 01:00)."""
    snapshots = backups("2024-01-01 16:00", "2024-01-01 14:00", "2023-12-31 12:00")
    in_utc = apply_policy(snapshots, RetentionPolicy(daily=2), now=NOW)
    in_tokyo = apply_policy(snapshots, RetentionPolicy(daily=2, zone=TOKYO), now=NOW)
    assert kept(in_utc) == ["2024-01-01 16:00:00", "2023-12-31 12:00:00"]
    assert kept(in_tokyo) == ["2024-01-01 16:00:00", "2024-01-01 14:00:00"]


def test_backups_dated_in_the_future_do_not_move_the_span_and_are_kept() -> None:
    now = utc("2024-06-01 00:00")
    snapshots = backups(
        "2030-01-01 00:00", "2024-05-31 12:00", "2024-05-30 12:00", "2024-05-20 00:00"
    )
    decisions = apply_policy(snapshots, RetentionPolicy(within=CalendarSpan(days=3)), now=now)
    assert kept(decisions) == ["2030-01-01 00:00:00", "2024-05-31 12:00:00", "2024-05-30 12:00:00"]
    # The counting rules take the future backup as the newest, as restic does.
    assert kept(apply_policy(snapshots, RetentionPolicy(last=1), now=now)) == [
        "2030-01-01 00:00:00"
    ]


def test_all_backups_in_the_future_are_all_within_every_span() -> None:
    snapshots = backups("2031-01-01 00:00", "2030-01-01 00:00")
    policy = RetentionPolicy(within=CalendarSpan(hours=1))
    assert len(kept(apply_policy(snapshots, policy, now=utc("2024-01-01 00:00")))) == 2


def test_restic_017_keeps_the_oldest_backup_while_a_count_has_room() -> None:
    """keep-daily 5 over two days: restic 0.14-0.16 keep one backup per day (two), restic 0.17
    and later also keep the oldest backup, marked ``oldest daily snapshot``."""
    snapshots = backups("2024-05-02 09:00", "2024-05-01 12:00", "2024-05-01 10:00")
    decisions = apply_policy(snapshots, RetentionPolicy(daily=5), now=NOW)
    assert kept(decisions) == ["2024-05-02 09:00:00", "2024-05-01 12:00:00", "2024-05-01 10:00:00"]
    assert reasons(decisions)["2024-05-01 10:00:00"] == ["oldest daily snapshot"]
    assert decisions[-1].reasons[0].oldest
    assert kept_without_oldest(decisions) == ["2024-05-02 09:00:00", "2024-05-01 12:00:00"]


def test_the_oldest_is_not_kept_once_a_count_is_spent() -> None:
    snapshots = backups("2024-05-02 09:00", "2024-05-01 12:00", "2024-05-01 10:00")
    assert kept(apply_policy(snapshots, RetentionPolicy(daily=2), now=NOW)) == [
        "2024-05-02 09:00:00",
        "2024-05-01 12:00:00",
    ]


def test_restic_017_keeps_the_oldest_backup_inside_a_period_span() -> None:
    snapshots = backups(
        "2024-05-03 10:00", "2024-05-03 08:00", "2024-05-02 20:00", "2024-05-02 07:00"
    )
    policy = RetentionPolicy(within_daily=CalendarSpan(days=5))
    decisions = apply_policy(snapshots, policy, now=NOW)
    assert reasons(decisions) == {
        "2024-05-03 10:00:00": ["daily within 5d"],
        "2024-05-02 20:00:00": ["daily within 5d"],
        "2024-05-02 07:00:00": ["oldest daily within 5d"],
    }
    assert kept_without_oldest(decisions) == ["2024-05-03 10:00:00", "2024-05-02 20:00:00"]


def test_a_period_span_keeps_nothing_outside_the_span() -> None:
    snapshots = backups("2024-05-10 10:00", "2024-05-01 08:00")
    policy = RetentionPolicy(within_daily=CalendarSpan(days=5))
    assert kept(apply_policy(snapshots, policy, now=NOW)) == ["2024-05-10 10:00:00"]


def test_unlimited_keeps_every_period_and_the_oldest_backup() -> None:
    """``--keep-monthly unlimited`` (restic 0.16+): the newest backup of every month; with
    restic 0.17's rule the oldest backup too, since an unlimited count always has room."""
    snapshots = backups(
        *(f"2024-{month:02d}-{day:02d} 03:00" for month in (4, 3, 2, 1) for day in (15, 1))
    )
    decisions = apply_policy(snapshots, RetentionPolicy(monthly=UNLIMITED), now=NOW)
    assert reasons(decisions) == {
        "2024-04-15 03:00:00": ["monthly snapshot"],
        "2024-03-15 03:00:00": ["monthly snapshot"],
        "2024-02-15 03:00:00": ["monthly snapshot"],
        "2024-01-15 03:00:00": ["monthly snapshot"],
        "2024-01-01 03:00:00": ["oldest monthly snapshot"],
    }


def test_a_negative_count_is_refused_rather_than_read_as_keep_nothing() -> None:
    """restic 0.14 read ``--keep-daily -1`` as a rule that keeps nothing (and forgot every
    snapshot); 0.16 refuses negative counts. So does zerodown, except ``UNLIMITED``."""
    with pytest.raises(ValueError, match="UNLIMITED"):
        RetentionPolicy(daily=-2)


def test_a_policy_without_rules_keeps_everything() -> None:
    snapshots = backups("2024-05-02 09:00", "2024-05-01 12:00")
    for policy in (RetentionPolicy(), RetentionPolicy(daily=0, last=0)):
        decisions = apply_policy(snapshots, policy, now=NOW)
        assert [d.keep for d in decisions] == [True, True]
        assert decisions[0].reasons[0].rule == "emptyPolicy"
    assert str(RetentionPolicy()) == "keep everything (no rule is set)"


def test_no_backups_no_decisions() -> None:
    assert apply_policy([], RetentionPolicy(daily=3), now=NOW) == []


def test_backups_with_the_same_time_keep_their_given_order() -> None:
    first, second = Backup(utc("2024-05-01 10:00")), Backup(utc("2024-05-01 10:00"))
    decisions = apply_policy([first, second], RetentionPolicy(last=1), now=NOW)
    assert decisions[0].snapshot is first and decisions[0].keep
    assert decisions[1].snapshot is second and not decisions[1].keep


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="without a time zone"):
        apply_policy([Backup(dt.datetime(2024, 1, 1))], RetentionPolicy(last=1), now=NOW)


def test_dry_run_lines_name_the_rules_that_keep_each_backup() -> None:
    snapshots = backups("2024-05-02 09:00", "2024-05-01 12:00", "2024-04-01 12:00")
    lines = describe_decisions(
        apply_policy(snapshots, RetentionPolicy(daily=1, monthly=2), now=NOW)
    )
    assert lines == [
        "keep    2024-05-02 09:00:00 UTC  keepDaily (daily snapshot), "
        "keepMonthly (monthly snapshot)",
        "forget  2024-05-01 12:00:00 UTC",
        "keep    2024-04-01 12:00:00 UTC  keepMonthly (monthly snapshot)",
    ]


def test_policy_reads_like_the_rules() -> None:
    policy = RetentionPolicy(
        last=3,
        daily=7,
        monthly=UNLIMITED,
        within=parse_calendar_span("1y"),
        within_weekly=CalendarSpan(months=2),
    )
    assert str(policy) == (
        "keep the last 3, 7 daily, unlimited monthly, weekly within 2m and all within 1y "
        "of the newest"
    )


# ---------------------------------------------------------------------------------------------
# The spec's retention section

MINIMAL = "service: web\nrun:\n  command: python app.py\n"


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, filename="zerodown.yaml")
    return [problem.render() for problem in caught.value.problems]


def test_the_spec_takes_restic_style_rules() -> None:
    text = MINIMAL + dedent(
        """\
        backups:
          retention:
            keepLast: 3
            keepDaily: 7
            keepMonthly: unlimited
            keepWithin: 1y2m3d4h
            keepWithinWeekly: 2m
            timezone: Europe/Berlin
        """
    )
    spec = parse_spec(text).spec.backups.retention
    policy = RetentionPolicy.from_spec(spec)
    assert policy == RetentionPolicy(
        last=3,
        daily=7,
        monthly=UNLIMITED,
        within=CalendarSpan(years=1, months=2, days=3, hours=4),
        within_weekly=CalendarSpan(months=2),
    )
    assert policy.zone == BERLIN
    assert spec.model_dump(mode="json", by_alias=True, exclude_none=True) == {
        "keepLast": 3,
        "keepDaily": 7,
        "keepMonthly": "unlimited",
        "keepWithin": "1y2m3d4h",
        "keepWithinWeekly": "2m",
        "timezone": "Europe/Berlin",
    }


@pytest.mark.parametrize(
    ("rule", "value", "message"),
    [
        ("keepDaily", "-1", "write 'unlimited' to keep them all"),
        ("keepDaily", "lots", "expected a number of backups to keep (0 or more) or 'unlimited'"),
        ("keepWithin", "2w", "write 14d"),
        ("keepWithin", "30s", "the smallest unit of a retention span is the hour"),
        ("keepWithin", "7", "add a unit, such as 7d"),
        ("keepWithin", "0d", "expected a span longer than zero"),
        ("keepWithin", "1d1d", "each unit at most once"),
        ("timezone", "Berlin", "expected an IANA time zone name"),
    ],
)
def test_retention_mistakes_are_named_at_their_line(rule: str, value: str, message: str) -> None:
    text = MINIMAL + f"backups:\n  retention:\n    {rule}: {value}\n"
    found = problems(text)
    assert len(found) == 1
    assert found[0].startswith(f"zerodown.yaml:6: backups.retention.{rule}: ")
    assert message in found[0]
