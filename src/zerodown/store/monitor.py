"""The monitor's tables: time series with downsampling, silences and the notification log.

Series are stored in two resolutions (migration 0003):

- ``monitor_samples``: every sample as taken, for a short window (the service's
  ``monitor.rawRetention``). A NULL value is a staleness marker.
- ``monitor_rollups``: one row per series and minute (count, sum, min, max, last value and its
  time), kept much longer (``monitor.retention``). ``roll_up_samples`` builds them from the
  complete minutes that are not rolled up yet; the mark ``rolled_until`` says how far it got,
  and ``trim_samples`` never deletes a raw sample that is not rolled up, so a crash between the
  two loses nothing. A sample written late, in a minute already rolled up (it waited in the
  monitor's queue while the store was away), is added to that minute's aggregate by
  ``write_samples`` in the same transaction.
- ``monitor_alert_states``: the alerts each scope's rule evaluator holds (pending, firing and
  recently resolved, as Prometheus' ``ALERTS_FOR_STATE``), so a restarted controller picks up
  where it left off instead of sending every alert through ``for`` again.

A series is named by ``key``, the canonical JSON of its label set (the metric name as
``__name__``); ``service`` (empty for host series) picks the retention that applies to it. A key
is at most ``MAX_SERIES_KEY_BYTES`` long (PostgreSQL cannot index a longer one); the monitor
keeps longer series in memory only.

``SqlMonitorTables`` is a mixin of ``SqlStore``; ``MonitorTables`` is the Protocol the monitor
programs against. Records are plain values: the store knows nothing of the monitor's types.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from zerodown.store.sql import _Transaction

__all__ = [
    "MAX_SERIES_KEY_BYTES",
    "AlertStateRecord",
    "MonitorTables",
    "NotificationLogRecord",
    "RollupRow",
    "SampleRow",
    "SeriesKey",
    "SilenceRecord",
    "SqlMonitorTables",
]

T = TypeVar("T")

MINUTE: Final = 60.0
_ROLLED_UNTIL: Final = "rolled_until"
_CHUNK: Final = 200  # rows per multi-row INSERT (well under SQLite's 32766 parameters)
MAX_SERIES_KEY_BYTES: Final = 2000
"""Longest series key (UTF-8 bytes) the store takes: a PostgreSQL B-tree entry must fit in a
third of a page (2704 bytes), and the key is indexed for uniqueness."""


@dataclass(frozen=True)
class SeriesKey:
    """What identifies a series, and what the store needs to keep it."""

    key: str  # canonical JSON of the label set, with "__name__"
    name: str
    service: str  # "" for series of the host
    kind: str  # counter, gauge


@dataclass(frozen=True)
class SampleRow:
    """One stored sample; ``value`` None is a staleness marker."""

    key: str
    kind: str
    ts: float
    value: float | None


@dataclass(frozen=True)
class RollupRow:
    """One minute of one series."""

    key: str
    kind: str
    minute: float
    samples: int
    total: float
    low: float
    high: float
    last: float
    last_ts: float

    @property
    def mean(self) -> float:
        return self.total / self.samples if self.samples else math.nan


@dataclass(frozen=True)
class SilenceRecord:
    """A silence as stored: matchers as ``(name, op, value)`` triples."""

    id: str
    matchers: tuple[tuple[str, str, str], ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str


@dataclass(frozen=True)
class NotificationLogRecord:
    """What one integration of one receiver was last told about one group (its scope is the
    service whose routing configuration it belongs to, "" for the host's)."""

    scope: str
    group_key: str
    receiver: str
    integration: int
    firing: tuple[str, ...]
    resolved: tuple[str, ...]
    at: float


@dataclass(frozen=True)
class AlertStateRecord:
    """One alert of a scope's rule evaluator as saved: ``rule_id`` names the rule and what
    decides its alerts (group, name, expression, labels); times are epoch seconds."""

    scope: str
    rule_id: str
    rule: str
    fingerprint: str
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]
    state: str
    value: float
    active_at: float
    fired_at: float | None
    resolved_at: float | None
    keep_firing_since: float | None


@runtime_checkable
class MonitorTables(Protocol):
    """Persistence of the monitor. Safe to call from several threads."""

    def series_ids(self, series: Sequence[SeriesKey]) -> dict[str, int]:
        """The id of each series (created when new), by key."""
        ...

    def write_samples(self, rows: Sequence[tuple[int, float, float | None]]) -> None:
        """Store ``(series_id, ts, value)`` samples; a sample at a stored time replaces it (of
        two at the same time in ``rows``, the last one is kept). A sample in a minute already
        rolled up is added to that minute's aggregate."""
        ...

    def ping(self) -> None:
        """Return if the store answers; raise ``TemporaryError`` if it cannot be reached."""
        ...

    def read_samples(
        self, *, since: float, until: float, service: str | None, names: Sequence[str] = ()
    ) -> list[SampleRow]:
        """Raw samples in ``[since, until]`` of one service's series (all with None; the
        host's with ""), only of metrics ``names`` if given; by series, then time."""
        ...

    def read_rollups(
        self, *, since: float, until: float, service: str | None, names: Sequence[str] = ()
    ) -> list[RollupRow]:
        """Minutes starting in ``[since, until]``, selected as ``read_samples`` does."""
        ...

    def roll_up_samples(self, *, until: float, horizon: float) -> int:
        """Aggregate the complete minutes before ``until`` (rounded down to a minute) that are
        not rolled up yet, none before ``horizon``; the number of minutes written."""
        ...

    def trim_samples(
        self,
        *,
        raw_before: Mapping[str, float],
        rollups_before: Mapping[str, float],
        default_raw_before: float,
        default_rollups_before: float,
    ) -> tuple[int, int]:
        """Delete raw samples (only rolled-up ones) and rollups older than the limit of their
        series' service (``default_*`` for services not named); the numbers deleted."""
        ...

    def prune_series(self) -> list[int]:
        """Forget series left with no sample and no rollup; their ids."""
        ...

    def save_silence(self, silence: SilenceRecord) -> None: ...

    def list_silences(self) -> list[SilenceRecord]: ...

    def delete_silences(self, *, ended_before: float) -> int:
        """Forget silences that ended before ``ended_before``; how many."""
        ...

    def save_notification_log(self, records: Sequence[NotificationLogRecord]) -> None: ...

    def notification_log(self) -> list[NotificationLogRecord]: ...

    def delete_notification_log(self, *, before: float) -> int:
        """Forget entries last written before ``before``; how many."""
        ...

    def save_alert_states(self, scope: str, records: Sequence[AlertStateRecord]) -> None:
        """Make ``records`` the saved alerts of ``scope`` (replacing what was saved)."""
        ...

    def alert_states(self) -> list[AlertStateRecord]:
        """The saved alerts of every scope, by scope, rule and fingerprint."""
        ...


def _placeholders(count: int, width: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return ", ".join([row] * count)


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _value(raw: Any) -> float | None:
    return None if raw is None else float(raw)


class SqlMonitorTables:
    """``MonitorTables`` over the tables of migration 0003; mixed into ``SqlStore``, whose
    ``_run`` gives each call one transaction."""

    if TYPE_CHECKING:

        def _run(
            self,
            work: Callable[[_Transaction], T],
            *,
            write: bool = True,
            conflict_attempts: int = 1,
        ) -> T: ...

        def _now(self) -> float: ...

    # series and samples ---------------------------------------------------------------------
    def series_ids(self, series: Sequence[SeriesKey]) -> dict[str, int]:
        unique = list({s.key: s for s in series}.values())

        def work(tx: _Transaction) -> dict[str, int]:
            found: dict[str, int] = {}
            for chunk in _chunks(unique):
                tx.execute(
                    "INSERT INTO monitor_series (key, name, service, kind) VALUES "
                    + _placeholders(len(chunk), 4)
                    + " ON CONFLICT (key) DO NOTHING",
                    [v for s in chunk for v in (s.key, s.name, s.service, s.kind)],
                )
                rows = tx.all(
                    "SELECT key, id FROM monitor_series WHERE key IN ("
                    + ", ".join("?" * len(chunk))
                    + ")",
                    [s.key for s in chunk],
                )
                found.update({str(row[0]): int(row[1]) for row in rows})
            return found

        return self._run(work, conflict_attempts=3) if unique else {}

    def write_samples(self, rows: Sequence[tuple[int, float, float | None]]) -> None:
        if not rows:
            return
        # One row per (series, time), the last one given: PostgreSQL refuses an upsert that
        # touches the same row twice ("ON CONFLICT DO UPDATE command cannot affect row a
        # second time"), which would fail the whole batch.
        latest: dict[tuple[int, float], float | None] = {}
        for series_id, ts, value in rows:
            latest[(int(series_id), float(ts))] = value
        unique = [(series_id, ts, value) for (series_id, ts), value in latest.items()]

        def work(tx: _Transaction) -> None:
            mark = tx.one("SELECT value FROM monitor_marks WHERE name = ?", [_ROLLED_UNTIL])
            rolled = float(mark[0]) if mark else -math.inf
            late = [row for row in unique if row[1] < rolled]
            before = _stored_values(tx, late, rolled) if late else {}
            for chunk in _chunks(unique):
                tx.execute(
                    "INSERT INTO monitor_samples (series_id, ts, value) VALUES "
                    + _placeholders(len(chunk), 3)
                    + " ON CONFLICT (series_id, ts) DO UPDATE SET value = excluded.value",
                    [v for row in chunk for v in row],
                )
            if late:
                _add_to_rollups(tx, late, before)

        self._run(work)

    def ping(self) -> None:
        self._run(lambda tx: tx.one("SELECT 1"), write=False)

    @staticmethod
    def _series_filter(service: str | None, names: Sequence[str]) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if service is not None:
            where.append("s.service = ?")
            params.append(service)
        if names:
            where.append("s.name IN (" + ", ".join("?" * len(names)) + ")")
            params.extend(names)
        return "".join(f" AND {clause}" for clause in where), params

    def read_samples(
        self, *, since: float, until: float, service: str | None, names: Sequence[str] = ()
    ) -> list[SampleRow]:
        extra, params = self._series_filter(service, names)
        rows = self._run(
            lambda tx: tx.all(
                "SELECT s.key, s.kind, m.ts, m.value FROM monitor_samples m"
                " JOIN monitor_series s ON s.id = m.series_id"
                f" WHERE m.ts >= ? AND m.ts <= ?{extra} ORDER BY s.id, m.ts",
                [since, until, *params],
            ),
            write=False,
        )
        return [SampleRow(str(r[0]), str(r[1]), float(r[2]), _value(r[3])) for r in rows]

    def read_rollups(
        self, *, since: float, until: float, service: str | None, names: Sequence[str] = ()
    ) -> list[RollupRow]:
        extra, params = self._series_filter(service, names)
        rows = self._run(
            lambda tx: tx.all(
                "SELECT s.key, s.kind, r.minute, r.samples, r.total, r.low, r.high, r.last,"
                " r.last_ts FROM monitor_rollups r JOIN monitor_series s ON s.id = r.series_id"
                f" WHERE r.minute >= ? AND r.minute <= ?{extra} ORDER BY s.id, r.minute",
                [since, until, *params],
            ),
            write=False,
        )
        return [
            RollupRow(
                key=str(r[0]),
                kind=str(r[1]),
                minute=float(r[2]),
                samples=int(r[3]),
                total=float(r[4]),
                low=float(r[5]),
                high=float(r[6]),
                last=float(r[7]),
                last_ts=float(r[8]),
            )
            for r in rows
        ]

    # downsampling and retention -------------------------------------------------------------
    def roll_up_samples(self, *, until: float, horizon: float) -> int:
        end = math.floor(until / MINUTE) * MINUTE

        def work(tx: _Transaction) -> int:
            row = tx.one("SELECT value FROM monitor_marks WHERE name = ?", [_ROLLED_UNTIL])
            start = max(float(row[0]) if row else horizon, math.floor(horizon / MINUTE) * MINUTE)
            if start >= end:
                return 0
            samples = tx.all(
                "SELECT series_id, ts, value FROM monitor_samples"
                " WHERE ts >= ? AND ts < ? AND value IS NOT NULL ORDER BY series_id, ts",
                [start, end],
            )
            minutes: dict[tuple[int, float], list[float]] = {}
            for series_id, ts, value in samples:
                if math.isnan(float(value)):
                    continue
                minute = math.floor(float(ts) / MINUTE) * MINUTE
                entry = minutes.get((int(series_id), minute))
                if entry is None:
                    # samples, total, low, high, last, last_ts
                    minutes[(int(series_id), minute)] = [
                        1,
                        float(value),
                        float(value),
                        float(value),
                        float(value),
                        float(ts),
                    ]
                else:
                    entry[0] += 1
                    entry[1] += float(value)
                    entry[2] = min(entry[2], float(value))
                    entry[3] = max(entry[3], float(value))
                    entry[4] = float(value)
                    entry[5] = float(ts)
            items = [(sid, minute, *agg) for (sid, minute), agg in minutes.items()]
            for chunk in _chunks(items, 100):
                tx.execute(
                    "INSERT INTO monitor_rollups"
                    " (series_id, minute, samples, total, low, high, last, last_ts) VALUES "
                    + _placeholders(len(chunk), 8)
                    + " ON CONFLICT (series_id, minute) DO UPDATE SET samples = excluded.samples,"
                    " total = excluded.total, low = excluded.low, high = excluded.high,"
                    " last = excluded.last, last_ts = excluded.last_ts",
                    [v for item in chunk for v in item],
                )
            tx.execute(
                "INSERT INTO monitor_marks (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [_ROLLED_UNTIL, end],
            )
            return len(items)

        return self._run(work)

    def trim_samples(
        self,
        *,
        raw_before: Mapping[str, float],
        rollups_before: Mapping[str, float],
        default_raw_before: float,
        default_rollups_before: float,
    ) -> tuple[int, int]:
        def delete(
            tx: _Transaction, table: str, column: str, limits: Mapping[str, float], default: float
        ) -> int:
            count = 0
            named = sorted(limits)
            for service in named:
                count += _rowcount(
                    tx.execute(
                        f"DELETE FROM {table} WHERE {column} < ? AND series_id IN"
                        " (SELECT id FROM monitor_series WHERE service = ?)",
                        [limits[service], service],
                    )
                )
            others = (
                " AND series_id IN (SELECT id FROM monitor_series WHERE service NOT IN ("
                + ", ".join("?" * len(named))
                + "))"
                if named
                else ""
            )
            count += _rowcount(
                tx.execute(f"DELETE FROM {table} WHERE {column} < ?{others}", [default, *named])
            )
            return count

        def work(tx: _Transaction) -> tuple[int, int]:
            row = tx.one("SELECT value FROM monitor_marks WHERE name = ?", [_ROLLED_UNTIL])
            rolled = float(row[0]) if row else -math.inf
            # A raw sample goes only once its minute is rolled up.
            raw = {k: min(v, rolled) for k, v in raw_before.items()}
            raw_count = delete(tx, "monitor_samples", "ts", raw, min(default_raw_before, rolled))
            rollup_count = delete(
                tx, "monitor_rollups", "minute", rollups_before, default_rollups_before
            )
            return raw_count, rollup_count

        return self._run(work)

    def prune_series(self) -> list[int]:
        def work(tx: _Transaction) -> list[int]:
            rows = tx.all(
                "SELECT id FROM monitor_series s WHERE NOT EXISTS"
                " (SELECT 1 FROM monitor_samples m WHERE m.series_id = s.id) AND NOT EXISTS"
                " (SELECT 1 FROM monitor_rollups r WHERE r.series_id = s.id)"
            )
            ids = [int(row[0]) for row in rows]
            for chunk in _chunks(ids):
                tx.execute(
                    "DELETE FROM monitor_series WHERE id IN (" + ", ".join("?" * len(chunk)) + ")",
                    list(chunk),
                )
            return ids

        return self._run(work)

    # silences ---------------------------------------------------------------------------------
    def save_silence(self, silence: SilenceRecord) -> None:
        matchers = json.dumps([list(m) for m in silence.matchers])
        self._run(
            lambda tx: tx.execute(
                "INSERT INTO monitor_silences"
                " (id, matchers, starts_at, ends_at, created_by, comment, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " matchers = excluded.matchers, starts_at = excluded.starts_at,"
                " ends_at = excluded.ends_at, created_by = excluded.created_by,"
                " comment = excluded.comment, updated_at = excluded.updated_at",
                [
                    silence.id,
                    matchers,
                    silence.starts_at,
                    silence.ends_at,
                    silence.created_by,
                    silence.comment,
                    self._now(),
                ],
            )
        )

    def list_silences(self) -> list[SilenceRecord]:
        rows = self._run(
            lambda tx: tx.all(
                "SELECT id, matchers, starts_at, ends_at, created_by, comment"
                " FROM monitor_silences ORDER BY ends_at DESC, id"
            ),
            write=False,
        )
        return [
            SilenceRecord(
                id=str(r[0]),
                matchers=tuple((str(n), str(o), str(v)) for n, o, v in json.loads(r[1])),
                starts_at=float(r[2]),
                ends_at=float(r[3]),
                created_by=str(r[4]),
                comment=str(r[5]),
            )
            for r in rows
        ]

    def delete_silences(self, *, ended_before: float) -> int:
        return self._run(
            lambda tx: _rowcount(
                tx.execute("DELETE FROM monitor_silences WHERE ends_at < ?", [ended_before])
            )
        )

    # the notification log ---------------------------------------------------------------------
    def save_notification_log(self, records: Sequence[NotificationLogRecord]) -> None:
        if not records:
            return

        def work(tx: _Transaction) -> None:
            for chunk in _chunks(records, 100):
                tx.execute(
                    "INSERT INTO monitor_nflog"
                    " (scope, group_key, receiver, integration, firing, resolved, at) VALUES "
                    + _placeholders(len(chunk), 7)
                    + " ON CONFLICT (scope, group_key, receiver, integration) DO UPDATE SET"
                    " firing = excluded.firing, resolved = excluded.resolved, at = excluded.at",
                    [
                        v
                        for r in chunk
                        for v in (
                            r.scope,
                            r.group_key,
                            r.receiver,
                            r.integration,
                            json.dumps(sorted(r.firing)),
                            json.dumps(sorted(r.resolved)),
                            r.at,
                        )
                    ],
                )

        self._run(work)

    def notification_log(self) -> list[NotificationLogRecord]:
        rows = self._run(
            lambda tx: tx.all(
                "SELECT scope, group_key, receiver, integration, firing, resolved, at"
                " FROM monitor_nflog ORDER BY scope, group_key, receiver, integration"
            ),
            write=False,
        )
        return [
            NotificationLogRecord(
                scope=str(r[0]),
                group_key=str(r[1]),
                receiver=str(r[2]),
                integration=int(r[3]),
                firing=tuple(json.loads(r[4])),
                resolved=tuple(json.loads(r[5])),
                at=float(r[6]),
            )
            for r in rows
        ]

    def delete_notification_log(self, *, before: float) -> int:
        return self._run(
            lambda tx: _rowcount(tx.execute("DELETE FROM monitor_nflog WHERE at < ?", [before]))
        )

    # alert states -------------------------------------------------------------------------------
    def save_alert_states(self, scope: str, records: Sequence[AlertStateRecord]) -> None:
        def work(tx: _Transaction) -> None:
            tx.execute("DELETE FROM monitor_alert_states WHERE scope = ?", [scope])
            for chunk in _chunks(records, 50):
                tx.execute(
                    "INSERT INTO monitor_alert_states (scope, rule_id, fingerprint, rule,"
                    " labels, annotations, state, value, active_at, fired_at, resolved_at,"
                    " keep_firing_since) VALUES " + _placeholders(len(chunk), 12),
                    [
                        v
                        for r in chunk
                        for v in (
                            scope,
                            r.rule_id,
                            r.fingerprint,
                            r.rule,
                            json.dumps([list(pair) for pair in r.labels]),
                            json.dumps([list(pair) for pair in r.annotations]),
                            r.state,
                            r.value if math.isfinite(r.value) else None,
                            r.active_at,
                            r.fired_at,
                            r.resolved_at,
                            r.keep_firing_since,
                        )
                    ],
                )

        self._run(work)

    def alert_states(self) -> list[AlertStateRecord]:
        rows = self._run(
            lambda tx: tx.all(
                "SELECT scope, rule_id, rule, fingerprint, labels, annotations, state, value,"
                " active_at, fired_at, resolved_at, keep_firing_since FROM monitor_alert_states"
                " ORDER BY scope, rule_id, fingerprint"
            ),
            write=False,
        )
        return [
            AlertStateRecord(
                scope=str(r[0]),
                rule_id=str(r[1]),
                rule=str(r[2]),
                fingerprint=str(r[3]),
                labels=tuple((str(n), str(v)) for n, v in json.loads(r[4])),
                annotations=tuple((str(n), str(v)) for n, v in json.loads(r[5])),
                state=str(r[6]),
                value=math.nan if r[7] is None else float(r[7]),
                active_at=float(r[8]),
                fired_at=_value(r[9]),
                resolved_at=_value(r[10]),
                keep_firing_since=_value(r[11]),
            )
            for r in rows
        ]


def _counted(value: float | None) -> bool:
    """Whether a stored value counts in a minute's aggregate (not a staleness marker)."""
    return value is not None and not math.isnan(value)


def _stored_values(
    tx: _Transaction, rows: Sequence[tuple[int, float, float | None]], rolled: float
) -> dict[tuple[int, float], float | None]:
    """The values stored now at the times of ``rows`` (all before ``rolled``), if any."""
    wanted = {(series_id, ts) for series_id, ts, _ in rows}
    since = min(ts for _, ts, _ in rows)
    found: dict[tuple[int, float], float | None] = {}
    for chunk in _chunks(sorted({series_id for series_id, _, _ in rows})):
        for series_id, ts, value in tx.all(
            "SELECT series_id, ts, value FROM monitor_samples WHERE ts >= ? AND ts < ?"
            " AND series_id IN (" + ", ".join("?" * len(chunk)) + ")",
            [since, rolled, *chunk],
        ):
            point = (int(series_id), float(ts))
            if point in wanted:
                found[point] = _value(value)
    return found


def _add_to_rollups(
    tx: _Transaction,
    rows: Sequence[tuple[int, float, float | None]],
    before: Mapping[tuple[int, float], float | None],
) -> None:
    """Add late samples to the aggregates of the minutes they fall in (already rolled up).

    A new sample adds to the count, the sum, the bounds and perhaps the last value; one that
    replaces a stored value changes the sum by the difference (the bounds can only widen: the
    value it replaces is not known to have been the minimum or maximum)."""
    # (series, minute) -> [count change, sum change, low, high, last, last_ts]
    changes: dict[tuple[int, float], list[float]] = {}
    for series_id, ts, value in sorted(rows, key=lambda row: row[1]):
        old = before.get((series_id, ts))
        minute = math.floor(ts / MINUTE) * MINUTE
        change = changes.setdefault(
            (series_id, minute), [0.0, 0.0, math.inf, -math.inf, math.nan, -math.inf]
        )
        if _counted(old):
            assert old is not None
            change[0] -= 1
            change[1] -= old
        if value is not None and _counted(value):
            change[0] += 1
            change[1] += value
            change[2] = min(change[2], value)
            change[3] = max(change[3], value)
            change[4], change[5] = value, ts
    added = [(key, c) for key, c in changes.items() if math.isfinite(c[2])]
    for chunk in _chunks(added, 100):
        tx.execute(
            "INSERT INTO monitor_rollups"
            " (series_id, minute, samples, total, low, high, last, last_ts) VALUES "
            + _placeholders(len(chunk), 8)
            + " ON CONFLICT (series_id, minute) DO UPDATE SET"
            " samples = monitor_rollups.samples + excluded.samples,"
            " total = monitor_rollups.total + excluded.total,"
            " low = CASE WHEN excluded.low < monitor_rollups.low"
            " THEN excluded.low ELSE monitor_rollups.low END,"
            " high = CASE WHEN excluded.high > monitor_rollups.high"
            " THEN excluded.high ELSE monitor_rollups.high END,"
            " last = CASE WHEN excluded.last_ts >= monitor_rollups.last_ts"
            " THEN excluded.last ELSE monitor_rollups.last END,"
            " last_ts = CASE WHEN excluded.last_ts >= monitor_rollups.last_ts"
            " THEN excluded.last_ts ELSE monitor_rollups.last_ts END",
            [
                v
                for (series_id, minute), c in chunk
                for v in (series_id, minute, int(c[0]), c[1], c[2], c[3], c[4], c[5])
            ],
        )
    # Stored values only taken back (replaced by staleness markers): the count and sum shrink,
    # and a minute left with no sample goes.
    for (series_id, minute), c in changes.items():
        if math.isfinite(c[2]) or not c[0]:
            continue
        tx.execute(
            "UPDATE monitor_rollups SET samples = samples + ?, total = total + ?"
            " WHERE series_id = ? AND minute = ?",
            [int(c[0]), c[1], series_id, minute],
        )
        tx.execute(
            "DELETE FROM monitor_rollups WHERE series_id = ? AND minute = ? AND samples <= 0",
            [series_id, minute],
        )


def _rowcount(cursor: Any) -> int:
    count = getattr(cursor, "rowcount", -1)
    return int(count) if isinstance(count, int) and count > 0 else 0
