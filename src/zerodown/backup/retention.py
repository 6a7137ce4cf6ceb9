"""Retention: which backups to keep, by restic's ``forget --keep-*`` rules, for every kind.

One implementation for every kind of backup (restic snapshots of files, SQLite copies,
PostgreSQL dumps, Docker volume archives). ``apply_policy`` is the pure part: given one
target's backups (anything with a ``time``), it says which to keep and every rule that keeps
each one. ``apply_retention`` applies a target's rules to its catalogue entries and removes the
rest through ``Backups.prune`` (marked ``pruning`` first, so a crash never loses track of a
removal; restic snapshots forgotten, then ``restic prune`` once per repository); with
``dry_run`` it removes nothing, and ``RetentionRun.lines`` (``describe_decisions``) says which
rule keeps each backup.

The rules are restic's (``restic forget``, documented in its "Removing backup snapshots"):

- Backups are taken newest first. ``keep_last n`` keeps the n newest.
- ``keep_hourly``/``daily``/``weekly``/``monthly``/``yearly n`` put each backup in the hour,
  day, ISO week (Monday to Sunday; the ISO year, so 30 December 2024 is in week 1 of 2025),
  month or year it was taken in, and keep the newest backup of each of the n newest such
  periods that hold a backup. Periods without backups are not counted.
- ``keep_within span`` keeps every backup taken less than ``span`` before the newest backup
  (not before now: a service that stopped backing up keeps its history). ``keep_within_daily
  span`` and its hourly, weekly, monthly and yearly kin keep the newest backup of each period,
  for the periods of the backups inside the span.
- A backup is kept when any rule keeps it, and every rule that keeps it says so: the newest
  backup on a Sunday is counted by the daily and the weekly rule alike.
- Backups dated in the future (clocks go wrong) are not "the newest backup" the spans count
  from, and any ``keep_within*`` rule keeps them.
- ``UNLIMITED`` (``unlimited`` in YAML) keeps every period (restic 0.16 and later).
- When a counting rule still has periods left after the oldest backup, or a span rule reaches
  the oldest backup, the oldest backup is kept too, marked ``oldest`` (restic 0.17 and later):
  the longest history the policy allows.
- A policy with no rule keeps everything.

Periods are read on the wall clock of one time zone, UTC unless the spec says otherwise
(restic uses each snapshot's own zone, which is the same thing when the machine runs in UTC).
Backups with the same time are taken in the order given (restic sorts stably, too).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, Protocol, TypeVar
from zoneinfo import ZoneInfo

from zerodown.core.errors import LockHeldError
from zerodown.core.types import ServiceName
from zerodown.spec.retention import UNLIMITED, CalendarSpan, format_keep_count
from zerodown.store.backups import BackupStatus

if TYPE_CHECKING:
    from zerodown.backup.runner import Backups
    from zerodown.backup.settings import BackupSettings
    from zerodown.spec.models import RetentionSpec
    from zerodown.store.backups import BackupRecord

__all__ = [
    "UNLIMITED",
    "Dated",
    "Decision",
    "KeepReason",
    "Period",
    "RetentionPass",
    "RetentionPolicy",
    "RetentionRun",
    "RuleName",
    "apply_policy",
    "apply_retention",
    "apply_retention_to",
    "describe_decisions",
]

Period = Literal["hourly", "daily", "weekly", "monthly", "yearly"]
PERIODS: Final[tuple[Period, ...]] = ("hourly", "daily", "weekly", "monthly", "yearly")

RuleName = Literal[
    "keepLast",
    "keepHourly",
    "keepDaily",
    "keepWeekly",
    "keepMonthly",
    "keepYearly",
    "keepWithin",
    "keepWithinHourly",
    "keepWithinDaily",
    "keepWithinWeekly",
    "keepWithinMonthly",
    "keepWithinYearly",
    "emptyPolicy",
]
"""A rule by the spec key that sets it; ``emptyPolicy`` when no rule is set (all is kept)."""

_COUNT_RULES: Final[dict[Period, RuleName]] = {
    "hourly": "keepHourly",
    "daily": "keepDaily",
    "weekly": "keepWeekly",
    "monthly": "keepMonthly",
    "yearly": "keepYearly",
}
_SPAN_RULES: Final[dict[Period, RuleName]] = {
    "hourly": "keepWithinHourly",
    "daily": "keepWithinDaily",
    "weekly": "keepWithinWeekly",
    "monthly": "keepWithinMonthly",
    "yearly": "keepWithinYearly",
}


class Dated(Protocol):
    """Anything with the time it was taken: a catalogue entry, a restic snapshot, a test row."""

    @property
    def time(self) -> dt.datetime:
        """When the backup was taken (timezone-aware)."""
        ...


SnapshotT = TypeVar("SnapshotT", bound=Dated)


@dataclass(frozen=True, kw_only=True)
class RetentionPolicy:
    """The ``--keep-*`` rules. Counts are 0 (rule off), a positive number, or ``UNLIMITED``."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: CalendarSpan | None = None
    within_hourly: CalendarSpan | None = None
    within_daily: CalendarSpan | None = None
    within_weekly: CalendarSpan | None = None
    within_monthly: CalendarSpan | None = None
    within_yearly: CalendarSpan | None = None
    zone: dt.tzinfo = field(default=dt.UTC, compare=False)
    """The zone whose wall clock the hours, days, weeks, months and years are read on."""

    def __post_init__(self) -> None:
        for name in ("last", *PERIODS):
            count = getattr(self, name)
            if count < 0 and count != UNLIMITED:
                raise ValueError(f"keep {name}: {count} is negative; use UNLIMITED to keep all")

    @classmethod
    def from_spec(cls, spec: RetentionSpec) -> RetentionPolicy:
        """The policy a spec's ``retention`` section describes (rules left out are off)."""
        return cls(
            last=spec.keep_last or 0,
            hourly=spec.keep_hourly or 0,
            daily=spec.keep_daily or 0,
            weekly=spec.keep_weekly or 0,
            monthly=spec.keep_monthly or 0,
            yearly=spec.keep_yearly or 0,
            within=spec.keep_within,
            within_hourly=spec.keep_within_hourly,
            within_daily=spec.keep_within_daily,
            within_weekly=spec.keep_within_weekly,
            within_monthly=spec.keep_within_monthly,
            within_yearly=spec.keep_within_yearly,
            zone=ZoneInfo(spec.timezone),
        )

    def count(self, period: Period) -> int:
        """The ``keep_<period>`` count."""
        value: int = getattr(self, period)
        return value

    def span(self, period: Period) -> CalendarSpan | None:
        """The ``keep_within_<period>`` span, None when that rule is off."""
        value: CalendarSpan | None = getattr(self, f"within_{period}")
        return None if value is None or value.zero else value

    @property
    def empty(self) -> bool:
        """True when no rule is set: such a policy keeps every backup."""
        counts = (self.last, *(self.count(period) for period in PERIODS))
        spans = (self.within, *(self.span(period) for period in PERIODS))
        return not any(counts) and all(span is None or span.zero for span in spans)

    def __str__(self) -> str:
        """``keep the last 3, 7 daily, unlimited monthly and all within 1y of the newest``."""
        if self.empty:
            return "keep everything (no rule is set)"
        counts = [f"the last {format_keep_count(self.last)}"] if self.last else []
        counts += [
            f"{format_keep_count(self.count(period))} {period}"
            for period in PERIODS
            if self.count(period)
        ]
        spans = [f"{period} within {span}" for period in PERIODS if (span := self.span(period))]
        if self.within is not None and not self.within.zero:
            spans.append(f"all within {self.within}")
        parts = counts + spans
        text = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
        return f"keep {text}" + (" of the newest" if spans else "")


@dataclass(frozen=True)
class KeepReason:
    """One rule that keeps a backup."""

    rule: RuleName
    text: str
    """restic's wording: ``daily snapshot``, ``within 1y``, ``oldest weekly within 3m``."""
    oldest: bool = False
    """Kept as the oldest backup because the rule had room left (restic 0.17 and later)."""

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Decision(Generic[SnapshotT]):
    """What retention does with one backup, and why."""

    snapshot: SnapshotT
    reasons: tuple[KeepReason, ...]
    """Every rule that keeps it; empty when it is forgotten."""

    @property
    def keep(self) -> bool:
        """True when at least one rule keeps the backup."""
        return bool(self.reasons)


def _period_key(period: Period) -> Callable[[dt.datetime, int], object]:
    """The period a wall-clock time falls in (the index is ignored)."""

    def key(moment: dt.datetime, _index: int) -> object:
        if period == "hourly":
            return (moment.year, moment.month, moment.day, moment.hour)
        if period == "daily":
            return (moment.year, moment.month, moment.day)
        if period == "weekly":
            iso = moment.isocalendar()
            return (iso.year, iso.week)
        if period == "monthly":
            return (moment.year, moment.month)
        return moment.year

    return key


def _position(_moment: dt.datetime, index: int) -> object:
    """A period of its own for every backup (keepLast, keepWithin)."""
    return index


@dataclass
class _Rule:
    """One rule's state while the backups go by, newest first.

    ``left`` counts the periods a counting rule may still keep (``UNLIMITED``: no end; None for
    a span rule); ``cutoff`` is where a span rule's span begins (backups after it are inside;
    None: all are). ``last`` is the period of the last backup the rule kept.
    """

    rule: RuleName
    text: str
    period_of: Callable[[dt.datetime, int], object]
    left: int | None = None
    cutoff: dt.datetime | None = None
    last: object = None

    def judge(self, moment: dt.datetime, index: int, *, is_oldest: bool) -> KeepReason | None:
        """The reason this rule keeps the backup, or None."""
        if self.left == 0 or (self.cutoff is not None and moment <= self.cutoff):
            return None
        period = self.period_of(moment, index)
        if period == self.last and not is_oldest:
            return None
        oldest = period == self.last
        self.last = period
        if self.left is not None and self.left > 0:
            self.left -= 1
        return KeepReason(self.rule, f"oldest {self.text}" if oldest else self.text, oldest)


def _span_start(newest: dt.datetime | None, span: CalendarSpan) -> dt.datetime | None:
    """Backups after the returned moment are within ``span`` of ``newest``; None: all are."""
    return None if newest is None else span.before(newest)


def apply_policy(
    snapshots: Iterable[SnapshotT],
    policy: RetentionPolicy,
    *,
    now: dt.datetime | None = None,
) -> list[Decision[SnapshotT]]:
    """One decision per backup, newest first: kept with the rules that keep it, or forgotten.

    ``now`` (default: the current time) only tells which backups are dated in the future; the
    spans count from the newest backup before ``now``. Every time must be timezone-aware.
    """
    moments = [(snapshot, snapshot.time) for snapshot in snapshots]
    for snapshot, moment in moments:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"backup {snapshot!r} has a time without a time zone")
    # Newest first; sorted() is stable, so equal times keep the order they came in.
    ordered = sorted(moments, key=lambda pair: pair[1], reverse=True)
    if policy.empty:
        reason = KeepReason("emptyPolicy", "policy is empty")
        return [Decision(snapshot, (reason,)) for snapshot, _ in ordered]
    current = now if now is not None else dt.datetime.now(dt.UTC)
    before_now = [moment for _, moment in ordered if moment < current]
    newest = max(before_now).astimezone(policy.zone) if before_now else None

    # restic's order of reasons: keepWithin, then the counting rules, then the span rules.
    rules: list[_Rule] = []
    if policy.within is not None and not policy.within.zero:
        start = _span_start(newest, policy.within)
        rules.append(_Rule("keepWithin", f"within {policy.within}", _position, cutoff=start))
    rules.append(_Rule("keepLast", "last snapshot", _position, left=policy.last))
    for period in PERIODS:
        text = f"{period} snapshot"
        count = policy.count(period)
        rules.append(_Rule(_COUNT_RULES[period], text, _period_key(period), left=count))
    for period in PERIODS:
        span = policy.span(period)
        if span is not None:
            text = f"{period} within {span}"
            start = _span_start(newest, span)
            rules.append(_Rule(_SPAN_RULES[period], text, _period_key(period), cutoff=start))

    decisions: list[Decision[SnapshotT]] = []
    for index, (snapshot, moment) in enumerate(ordered):
        local = moment.astimezone(policy.zone)
        is_oldest = index == len(ordered) - 1
        reasons = (rule.judge(local, index, is_oldest=is_oldest) for rule in rules)
        decisions.append(Decision(snapshot, tuple(reason for reason in reasons if reason)))
    return decisions


def describe_decisions(
    decisions: Sequence[Decision[SnapshotT]],
    *,
    label: Callable[[SnapshotT], str] | None = None,
) -> list[str]:
    """One line per backup for a dry run: ``keep    2024-05-01 03:00  daily snapshot, ...``.

    ``label`` names a backup (default: its time in UTC, to the second).
    """

    def default_label(snapshot: SnapshotT) -> str:
        return snapshot.time.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    name = label or default_label
    lines = []
    for decision in decisions:
        verdict = "keep  " if decision.keep else "forget"
        why = ", ".join(f"{reason.rule} ({reason})" for reason in decision.reasons)
        lines.append(f"{verdict}  {name(decision.snapshot)}" + (f"  {why}" if why else ""))
    return lines


# ---------------------------------------------------------------------------------------------
# Retention of a target's backups in the catalogue


@dataclass(frozen=True)
class _Entry:
    """A catalogue entry seen by ``apply_policy``: taken when the backup started."""

    record: BackupRecord

    @property
    def time(self) -> dt.datetime:
        return self.record.started_at


@dataclass(frozen=True, kw_only=True)
class RetentionRun:
    """What retention decided for one target's backups, and what it removed."""

    service: str
    target: str
    policy: str
    dry_run: bool
    decisions: tuple[Decision[_Entry], ...]
    removed: tuple[int, ...]
    errors: tuple[str, ...] = ()
    removed_bytes: int = 0
    """Bytes the removed backups held, as the catalogue recorded them when they were taken."""
    freed_bytes: int = 0
    """Bytes of this target's files deleted, measured on disk. What ``restic prune`` freed is
    the repository's (several targets may share one): see ``repositories``."""
    repositories: tuple[Mapping[str, Any], ...] = ()
    """Each ``restic prune`` this target's snapshots took part in: repository, duration, size
    on disk before and after, bytes freed, and the backups it was run for."""
    resumed: tuple[int, ...] = ()
    """Backups an earlier, interrupted removal had marked ``pruning``, finished by this run."""
    duration_s: float = 0.0

    @property
    def kept(self) -> int:
        return len([d for d in self.decisions if d.keep])

    @property
    def forgotten(self) -> tuple[int, ...]:
        """The backups the policy does not keep (removed by a real run, listed by a dry one)."""
        return tuple(d.snapshot.record.id for d in self.decisions if not d.keep)

    def lines(self) -> list[str]:
        """The dry-run listing: one line per backup, with the rules that keep it."""
        return describe_decisions(
            self.decisions,
            label=lambda entry: (
                f"#{entry.record.id} "
                + entry.time.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            ),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "service": self.service,
            "target": self.target,
            "policy": self.policy,
            "dry_run": self.dry_run,
            "decisions": [
                {
                    "backup_id": d.snapshot.record.id,
                    "started_at": d.snapshot.time.isoformat(),
                    "size_bytes": d.snapshot.record.size_bytes,
                    "keep": d.keep,
                    "reasons": [
                        {"rule": r.rule, "text": r.text, "oldest": r.oldest} for r in d.reasons
                    ],
                }
                for d in self.decisions
            ],
            "kept": self.kept,
            "forgotten": list(self.forgotten),
            "removed": list(self.removed),
            "removed_bytes": self.removed_bytes,
            "freed_bytes": self.freed_bytes,
            "repositories": [dict(r) for r in self.repositories],
            "resumed": list(self.resumed),
            "errors": list(self.errors),
            "duration_s": self.duration_s,
        }


def apply_retention(
    backups: Backups,
    settings: BackupSettings,
    target: str,
    *,
    dry_run: bool = True,
    now: dt.datetime | None = None,
) -> RetentionRun:
    """Apply the target's retention rules to its good backups; remove the others unless
    ``dry_run``.

    The same rules for every kind of target: the candidates are the target's backups that
    succeeded and were not found corrupted (a corrupted backup is no backup: it never takes a
    slot a good one needs, and it is left for a person to look at). Running, failed and
    abandoned backups are not retention's. A real run is ``apply_retention_to`` for this one
    target (``LockHeldError`` when a backup of it is running).
    """
    if not dry_run:
        (run,) = apply_retention_to(backups, settings, [target], now=now).runs
        return run
    policy = RetentionPolicy.from_spec(settings.retention(target))
    began = time.monotonic()
    decisions = _decide(backups, settings, target, policy, now)
    return RetentionRun(
        service=settings.service,
        target=target,
        policy=str(policy),
        dry_run=True,
        decisions=tuple(decisions),
        removed=(),
        duration_s=round(time.monotonic() - began, 6),
    )


@dataclass(frozen=True, kw_only=True)
class RetentionPass:
    """Retention applied for real to several targets of a service at once."""

    runs: tuple[RetentionRun, ...]
    skipped: tuple[str, ...] = ()
    """``target: why`` for each target left alone because a backup of it was running."""
    repositories: tuple[Mapping[str, Any], ...] = ()
    """Each ``restic prune``: one per repository, whatever the number of targets in it."""

    @property
    def freed_bytes(self) -> int:
        """Measured on disk: the files deleted and what each ``restic prune`` freed."""
        pruned = sum(int(repository["freed_bytes"]) for repository in self.repositories)
        return sum(run.freed_bytes for run in self.runs) + pruned


def apply_retention_to(
    backups: Backups,
    settings: BackupSettings,
    targets: Sequence[str],
    *,
    now: dt.datetime | None = None,
    skip_locked: bool = False,
) -> RetentionPass:
    """Apply each target's rules and remove the backups they do not keep, in one pass.

    Every target's lock is held throughout (no backup of it completes meanwhile); a target
    whose lock is held raises ``LockHeldError``, or with ``skip_locked`` is left alone and
    named in ``skipped``. Removal goes through ``Backups.mark_pruning`` and
    ``Backups.finish_pruning``: every forgotten backup is marked ``pruning`` in the catalogue
    before anything is deleted, files are deleted and restic snapshots forgotten, ``restic
    prune`` runs once per repository (for all the targets together), and only then are the
    rows marked ``pruned`` (kept as history, with the policy as the reason). Backups an
    interrupted run left ``pruning`` are finished in the same pass. A removal that fails is
    reported in its target's ``errors`` and the others go on.
    """
    began = time.monotonic()
    service = ServiceName(settings.service)
    skipped: list[str] = []
    with ExitStack() as locks:
        held: list[str] = []
        for target in targets:
            try:
                locks.enter_context(backups.target_lock(settings.service, target))
            except LockHeldError as exc:
                if not skip_locked:
                    raise
                skipped.append(f"{target}: {exc.message}")
                continue
            held.append(target)
        plans = []
        for target in held:
            policy = RetentionPolicy.from_spec(settings.retention(target))
            interrupted = backups.catalogue.list_backups(
                service, target=target, statuses=(BackupStatus.PRUNING,), limit=1_000_000
            )
            decisions = _decide(backups, settings, target, policy, now)
            plans.append((target, policy, interrupted, decisions))
        pending = []
        for _target, policy, interrupted, decisions in plans:
            forgotten = [d.snapshot.record for d in decisions if not d.keep]
            pending += [
                *interrupted,
                *backups.mark_pruning(forgotten, reason=f"retention: {policy}"),
            ]
        # One pass, so each repository is pruned once for every target and every removal.
        outcome = backups.finish_pruning(settings, pending)
    done = {record.id: record for record in outcome.removed}
    targets_of: dict[str, set[int]] = {}
    for record in pending:
        targets_of.setdefault(record.target, set()).add(record.id)
    runs = []
    for target, policy, interrupted, decisions in plans:
        earlier = {record.id for record in interrupted}
        mine = {i for i in targets_of.get(target, set()) if i in done}
        removed = [done[i] for i in mine]
        runs.append(
            RetentionRun(
                service=settings.service,
                target=target,
                policy=str(policy),
                dry_run=False,
                decisions=tuple(decisions),
                removed=tuple(
                    d.snapshot.record.id
                    for d in decisions
                    if not d.keep and d.snapshot.record.id in mine
                ),
                errors=tuple(
                    message
                    for message, ids in outcome.failures
                    if set(ids) & targets_of.get(target, set())
                ),
                removed_bytes=sum(r.size_bytes or 0 for r in removed if r.id not in earlier),
                freed_bytes=sum(_freed_files(r) for r in removed),
                repositories=tuple(
                    repository
                    for repository in outcome.repositories
                    if mine & set(repository.get("backup_ids") or ())
                ),
                resumed=tuple(sorted(i for i in mine if i in earlier)),
                duration_s=round(time.monotonic() - began, 6),
            )
        )
    return RetentionPass(
        runs=tuple(runs), skipped=tuple(skipped), repositories=outcome.repositories
    )


def _freed_files(record: BackupRecord) -> int:
    detail = dict(dict(record.meta.get("pruned") or {}).get("detail") or {})
    return int(detail.get("freed_bytes") or 0)


def _decide(
    backups: Backups,
    settings: BackupSettings,
    target: str,
    policy: RetentionPolicy,
    now: dt.datetime | None,
) -> list[Decision[_Entry]]:
    records = backups.catalogue.list_backups(
        ServiceName(settings.service),
        target=target,
        statuses=(BackupStatus.SUCCEEDED,),
        limit=1_000_000,
    )
    entries = [_Entry(record) for record in records if record.good]
    return apply_policy(entries, policy, now=now or backups.clock.now())
