"""The incident log: every incident with the lifecycle stages it reached, when and by whom.

An incident moves through five stages, in this order: ``detected`` -> ``assessed`` ->
``mitigated`` -> ``recovered`` -> ``reviewed``. Each stage it reaches is one row of
``incident_stages`` (when, who or what moved it, an optional note); the ``incidents`` row holds
the current stage. The rules of the lifecycle (forward only, times never going back) live in
``zerodown.incidents``; this module stores what those rules allowed, and keeps two promises of
its own:

- **One open incident per key.** A unique index over ``incident_key`` for rows still
  detected, assessed or mitigated makes ``open_incident`` idempotent even when two processes
  open the same alert at once: the loser's insert conflicts, its retry finds the winner's row.
- **No lost moves.** ``advance_incident`` changes the stage only if it is still the one the
  caller based its decision on (compare and set); otherwise it answers None and the caller
  reads again and decides again.

``SqlIncidentLog`` is a mixin of ``SqlStore``, so SQLite and PostgreSQL stores both keep the
log; ``IncidentLog`` is the Protocol the incident code programs against.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, runtime_checkable

from zerodown.core.errors import InputError, NotFoundError
from zerodown.core.types import Revision, ServiceName
from zerodown.store.base import EventRecord

if TYPE_CHECKING:
    from zerodown.store.sql import _Transaction

__all__ = [
    "OPEN_STAGES",
    "STAGES",
    "IncidentLog",
    "IncidentRecord",
    "NewStage",
    "SqlIncidentLog",
    "StageRecord",
]

T = TypeVar("T")

STAGES: Final = ("detected", "assessed", "mitigated", "recovered", "reviewed")
"""The lifecycle, in order: the seed's detect, assess, respond, recover, learn."""
OPEN_STAGES: Final = ("detected", "assessed", "mitigated")
"""Stages of an incident that is not recovered yet (its key is taken)."""

# Attempts at one open: a lost insert race is retried once with the winner's row in sight.
_OPEN_ATTEMPTS = 3


@dataclass(frozen=True, kw_only=True)
class StageRecord:
    """One stage an incident reached: when (``at``), who or what moved it, and a note.
    ``recorded_at`` is when the move was written (an automatic rollback records its stages
    after the fact, at the times they happened)."""

    stage: str
    at: datetime
    who: str
    note: str | None
    recorded_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "at": self.at.isoformat(),
            "who": self.who,
            "note": self.note,
            "recorded_at": self.recorded_at.isoformat(),
        }


@dataclass(frozen=True, kw_only=True)
class NewStage:
    """A stage to write: epoch seconds, who, note."""

    stage: str
    at: float
    who: str
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class IncidentRecord:
    """One incident as stored. ``started_at`` is when its impact began, if known (before or at
    ``detected_at``); ``stages`` are in lifecycle order, each at most once."""

    id: int
    service: str
    key: str
    source: str  # "rollback:<revision>", "alert:<name>" ...
    severity: str  # "SEV1" .. "SEV5"
    title: str
    revision: int | None  # the release it concerns, if any
    stage: str  # the furthest stage reached
    started_at: datetime | None
    detected_at: datetime
    stages: tuple[StageRecord, ...]
    details: Mapping[str, Any] = field(default_factory=dict)
    impact: Mapping[str, Any] = field(default_factory=dict)
    postmortem_path: str | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def is_open(self) -> bool:
        """True until the incident is recovered."""
        return self.stage in OPEN_STAGES

    def reached(self, stage: str) -> StageRecord | None:
        """The record of ``stage``, or None if the incident never reached it (or skipped it)."""
        return next((s for s in self.stages if s.stage == stage), None)

    def at(self, stage: str) -> datetime | None:
        """When the incident reached ``stage``, or None."""
        found = self.reached(stage)
        return found.at if found is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "service": self.service,
            "key": self.key,
            "source": self.source,
            "severity": self.severity,
            "title": self.title,
            "revision": self.revision,
            "stage": self.stage,
            "open": self.is_open,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "detected_at": self.detected_at.isoformat(),
            **{f"{stage}_at": _iso(self.at(stage)) for stage in STAGES[1:]},
            "stages": [s.to_dict() for s in self.stages],
            "details": dict(self.details),
            "impact": dict(self.impact),
            "postmortem_path": self.postmortem_path,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@runtime_checkable
class IncidentLog(Protocol):
    """Persistence of incidents. Safe to call from several threads."""

    def open_incident(
        self,
        *,
        service: str,
        key: str,
        source: str,
        severity: str,
        title: str,
        revision: int | None,
        started_at: float | None,
        detected: NewStage,
        later: Sequence[NewStage] = (),
        details: Mapping[str, Any] | None = None,
        impact: Mapping[str, Any] | None = None,
        snapshot: Mapping[str, Any] | None = None,
    ) -> tuple[IncidentRecord, bool]:
        """Insert an incident at ``detected`` (and the ``later`` stages, in the same
        transaction), or find the open one with that key: ``(record, created)``."""
        ...

    def get_incident(self, incident_id: int) -> IncidentRecord:
        """Raises ``NotFoundError`` for an unknown id."""
        ...

    def find_incident(self, key: str, *, open_only: bool = True) -> IncidentRecord | None:
        """The newest incident with ``key`` (only an open one with ``open_only``), or None."""
        ...

    def list_incidents(
        self, service: str | None = None, *, open_only: bool = False, limit: int = 1000
    ) -> list[IncidentRecord]:
        """Newest first."""
        ...

    def advance_incident(
        self,
        incident_id: int,
        *,
        expected_stage: str,
        move: NewStage,
        impact: Mapping[str, Any] | None = None,
    ) -> IncidentRecord | None:
        """Record ``move`` if the incident is still at ``expected_stage`` (else None: read it
        again); ``impact``, when given, replaces the impact figures in the same transaction."""
        ...

    def set_incident_impact(
        self, incident_id: int, impact: Mapping[str, Any]
    ) -> IncidentRecord: ...

    def set_incident_postmortem(self, incident_id: int, path: str) -> IncidentRecord: ...

    def incident_snapshot(self, incident_id: int) -> Mapping[str, Any] | None:
        """The traffic counters saved when the incident was opened, if any."""
        ...

    def events_between(
        self, service: str, *, start: float, end: float, limit: int = 100_000
    ) -> list[EventRecord]:
        """The service's events from ``start`` to ``end`` (epoch seconds), oldest first: the
        material of a postmortem's timeline."""
        ...


_COLUMNS = (
    "id, service, incident_key, source, severity, title, revision, stage, started_at,"
    " detected_at, details, impact, postmortem_path, created_at, updated_at"
)
_STAGE_COLUMNS = "incident_id, stage, reached_at, who, note, recorded_at"


class SqlIncidentLog:
    """``IncidentLog`` over the ``incidents`` and ``incident_stages`` tables (migration 0002);
    mixed into ``SqlStore``, whose ``_run`` gives each call one transaction."""

    if TYPE_CHECKING:

        def _run(
            self,
            work: Callable[[_Transaction], T],
            *,
            write: bool = True,
            conflict_attempts: int = 1,
        ) -> T: ...

        def _now(self) -> float: ...

    def open_incident(
        self,
        *,
        service: str,
        key: str,
        source: str,
        severity: str,
        title: str,
        revision: int | None,
        started_at: float | None,
        detected: NewStage,
        later: Sequence[NewStage] = (),
        details: Mapping[str, Any] | None = None,
        impact: Mapping[str, Any] | None = None,
        snapshot: Mapping[str, Any] | None = None,
    ) -> tuple[IncidentRecord, bool]:
        if not key:
            raise InputError("an incident needs a key")
        if detected.stage != STAGES[0]:
            raise InputError(f"an incident opens at 'detected', not {detected.stage!r}")
        moves = [detected, *later]
        final = moves[-1].stage

        def open_or_find(tx: _Transaction) -> tuple[IncidentRecord, bool]:
            found = tx.one(
                f"SELECT {_COLUMNS} FROM incidents WHERE incident_key = ?"
                f" AND stage IN ({_OPEN_IN}) ORDER BY id DESC LIMIT 1",
                (key, *OPEN_STAGES),
            )
            if found is not None:
                return _load(tx, found), False
            now = self._now()
            row = tx.one(
                "INSERT INTO incidents (service, incident_key, source, severity, title, revision,"
                " stage, started_at, detected_at, details, impact, snapshot, postmortem_path,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                f" RETURNING {_COLUMNS}",
                (
                    service, key, source, severity, title, revision, final, started_at,
                    detected.at, _to_json(details), _to_json(impact),
                    None if snapshot is None else _to_json(snapshot), None, now, now,
                ),
            )  # fmt: skip
            for move in moves:
                _insert_stage(tx, int(row[0]), move, now)
            return _load(tx, row), True

        return self._run(open_or_find, conflict_attempts=_OPEN_ATTEMPTS)

    def get_incident(self, incident_id: int) -> IncidentRecord:
        def read(tx: _Transaction) -> IncidentRecord:
            row = tx.one(f"SELECT {_COLUMNS} FROM incidents WHERE id = ?", (incident_id,))
            if row is None:
                raise _unknown(incident_id)
            return _load(tx, row)

        return self._run(read, write=False)

    def find_incident(self, key: str, *, open_only: bool = True) -> IncidentRecord | None:
        where = f" AND stage IN ({_OPEN_IN})" if open_only else ""
        params = (key, *OPEN_STAGES) if open_only else (key,)

        def read(tx: _Transaction) -> IncidentRecord | None:
            row = tx.one(
                f"SELECT {_COLUMNS} FROM incidents WHERE incident_key = ?{where}"
                " ORDER BY id DESC LIMIT 1",
                params,
            )
            return None if row is None else _load(tx, row)

        return self._run(read, write=False)

    def list_incidents(
        self, service: str | None = None, *, open_only: bool = False, limit: int = 1000
    ) -> list[IncidentRecord]:
        if limit < 0:
            raise InputError(f"limit must not be negative, got {limit}")
        conditions: list[str] = []
        params: list[Any] = []
        if service is not None:
            conditions.append("service = ?")
            params.append(service)
        if open_only:
            conditions.append(f"stage IN ({_OPEN_IN})")
            params.extend(OPEN_STAGES)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""

        def read(tx: _Transaction) -> list[IncidentRecord]:
            rows = tx.all(
                f"SELECT {_COLUMNS} FROM incidents{where} ORDER BY id DESC LIMIT ?",
                (*params, limit),
            )
            if not rows:
                return []
            stages = tx.all(
                f"SELECT {_STAGE_COLUMNS} FROM incident_stages WHERE incident_id IN"
                f" (SELECT id FROM incidents{where} ORDER BY id DESC LIMIT ?)",
                (*params, limit),
            )
            by_incident: dict[int, list[Sequence[Any]]] = {}
            for stage_row in stages:
                by_incident.setdefault(int(stage_row[0]), []).append(stage_row)
            return [_incident(row, by_incident.get(int(row[0]), [])) for row in rows]

        return self._run(read, write=False)

    def advance_incident(
        self,
        incident_id: int,
        *,
        expected_stage: str,
        move: NewStage,
        impact: Mapping[str, Any] | None = None,
    ) -> IncidentRecord | None:
        if move.stage not in STAGES:
            raise InputError(f"unknown incident stage {move.stage!r}")

        def compare_and_set(tx: _Transaction) -> IncidentRecord | None:
            now = self._now()
            assignments = "stage = ?, updated_at = ?"
            values: list[Any] = [move.stage, now]
            if impact is not None:
                assignments += ", impact = ?"
                values.append(_to_json(impact))
            row = tx.one(
                f"UPDATE incidents SET {assignments} WHERE id = ? AND stage = ?"
                f" RETURNING {_COLUMNS}",
                (*values, incident_id, expected_stage),
            )
            if row is None:
                if tx.one("SELECT 1 FROM incidents WHERE id = ?", (incident_id,)) is None:
                    raise _unknown(incident_id)
                return None
            _insert_stage(tx, incident_id, move, now)
            return _load(tx, row)

        return self._run(compare_and_set)

    def set_incident_impact(self, incident_id: int, impact: Mapping[str, Any]) -> IncidentRecord:
        return self._set(incident_id, "impact", _to_json(impact))

    def set_incident_postmortem(self, incident_id: int, path: str) -> IncidentRecord:
        return self._set(incident_id, "postmortem_path", path)

    def incident_snapshot(self, incident_id: int) -> Mapping[str, Any] | None:
        row = self._run(
            lambda tx: tx.one("SELECT snapshot FROM incidents WHERE id = ?", (incident_id,)),
            write=False,
        )
        if row is None:
            raise _unknown(incident_id)
        return None if row[0] is None else _from_json(row[0])

    def events_between(
        self, service: str, *, start: float, end: float, limit: int = 100_000
    ) -> list[EventRecord]:
        if limit < 0:
            raise InputError(f"limit must not be negative, got {limit}")
        rows = self._run(
            lambda tx: tx.all(
                "SELECT id, service, revision, ts, kind, message, data FROM events"
                " WHERE service = ? AND ts >= ? AND ts <= ? ORDER BY id LIMIT ?",
                (service, start, end, limit),
            ),
            write=False,
        )
        return [
            EventRecord(
                id=int(event_id),
                service=ServiceName(name),
                revision=None if revision is None else Revision(int(revision)),
                ts=_time(ts),
                kind=kind,
                message=message,
                data=_from_json(data),
            )
            for event_id, name, revision, ts, kind, message, data in rows
        ]

    def _set(self, incident_id: int, column: str, value: Any) -> IncidentRecord:
        def update(tx: _Transaction) -> IncidentRecord:
            row = tx.one(
                f"UPDATE incidents SET {column} = ?, updated_at = ? WHERE id = ?"
                f" RETURNING {_COLUMNS}",
                (value, self._now(), incident_id),
            )
            if row is None:
                raise _unknown(incident_id)
            return _load(tx, row)

        return self._run(update)


_OPEN_IN = ", ".join("?" for _ in OPEN_STAGES)


def _insert_stage(tx: _Transaction, incident_id: int, move: NewStage, now: float) -> None:
    tx.execute(
        f"INSERT INTO incident_stages ({_STAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (incident_id, move.stage, move.at, move.who, move.note, now),
    )


def _load(tx: _Transaction, row: Sequence[Any]) -> IncidentRecord:
    stages = tx.all(
        f"SELECT {_STAGE_COLUMNS} FROM incident_stages WHERE incident_id = ?", (int(row[0]),)
    )
    return _incident(row, stages)


def _incident(row: Sequence[Any], stage_rows: Sequence[Sequence[Any]]) -> IncidentRecord:
    (incident_id, service, key, source, severity, title, revision, stage, started_at,
     detected_at, details, impact, postmortem_path, created_at, updated_at) = row  # fmt: skip
    stages = sorted((_stage(s) for s in stage_rows), key=lambda s: STAGES.index(s.stage))
    return IncidentRecord(
        id=int(incident_id),
        service=service,
        key=key,
        source=source,
        severity=severity,
        title=title,
        revision=None if revision is None else int(revision),
        stage=stage,
        started_at=None if started_at is None else _time(started_at),
        detected_at=_time(detected_at),
        stages=tuple(stages),
        details=_from_json(details),
        impact=_from_json(impact),
        postmortem_path=postmortem_path,
        created_at=_time(created_at),
        updated_at=_time(updated_at),
    )


def _stage(row: Sequence[Any]) -> StageRecord:
    _, stage, reached_at, who, note, recorded_at = row
    return StageRecord(
        stage=stage, at=_time(reached_at), who=who, note=note, recorded_at=_time(recorded_at)
    )


def _unknown(incident_id: int) -> NotFoundError:
    return NotFoundError(f"incident {incident_id} not found")


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(float(epoch), UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _to_json(mapping: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(mapping or {}))


def _from_json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}
