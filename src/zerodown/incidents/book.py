"""``IncidentBook``: opens incidents, moves them through their lifecycle, writes postmortems.

Who opens incidents:

- the service layer, when the engine rolled a release back by itself (``open_for_rollback``);
  the incident is recorded with the times its stages really happened: detected when the judge
  or health check decided, mitigated when traffic was back on the stable revision, recovered
  when that revision was verified healthy;
- the monitor, when a critical alert fires (``open`` with source ``alert:<name>`` and the
  alert's fingerprint as key) and again when it resolves (``advance`` to ``recovered``);
- people, through ``ack`` (assessed), ``resolve`` (recovered, mitigated first if it was not)
  and ``review`` (reviewed, once the postmortem is complete).

Opening is idempotent on the key while the incident is not recovered: a second ``open`` with
the same key returns the open incident. Every stage move is also written to the service's
event log (``incident.opened``, ``incident.assessed`` ...), so ``zerodown events`` and the
deployment report see it.

Impact figures come from measurements only (``impact.py``): for a rollback, what the proxy
counted for the rolled-back revision; for other incidents, the data plane's counters at
detection and at recovery when a ``metrics`` source is given.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from ruamel.yaml import YAML

from zerodown.core.clock import Clock
from zerodown.core.errors import InputError, PermanentError, RefusedError, TemporaryError
from zerodown.core.redact import MASK, is_secret_key, redact_text
from zerodown.core.types import Revision, ServiceName
from zerodown.incidents.impact import impact_between, not_measured, rollback_facts
from zerodown.incidents.lifecycle import (
    DEFAULT_ROLLBACK_SEVERITY,
    check_move,
    parse_severity,
    stage_index,
)
from zerodown.incidents.postmortem import MARGIN_SECONDS, TO_COMPLETE, render_postmortem
from zerodown.incidents.stats import IncidentStats, incident_stats
from zerodown.store.base import EventRecord, ReleaseRecord, Store
from zerodown.store.incidents import IncidentLog, IncidentRecord, NewStage
from zerodown.traffic.base import ServiceMetrics

__all__ = ["AUTOMATIC_ROLLBACK", "IncidentBook", "MetricsSource"]

MetricsSource = Callable[[str], ServiceMetrics | None]
"""The data plane's counters of a service now, or None when they cannot be read."""

AUTOMATIC_ROLLBACK: Final = "zerodown automatic rollback"
"""Who mitigates and recovers an incident opened for an automatic rollback."""

# A recovery stamped this close to now is measured against the counters read now.
_MEASURE_SLACK_SECONDS = 5.0
_MOVE_ATTEMPTS = 5
_MAX_TITLE = 200
_MAX_CHANGED_LINES = 40


class IncidentBook:
    """Incidents of every service a controller runs, kept in its store."""

    def __init__(self, store: Store, clock: Clock, *, metrics: MetricsSource | None = None) -> None:
        if not isinstance(store, IncidentLog):
            raise PermanentError(f"{store!r} does not keep an incident log")
        self._store = store
        self._log: IncidentLog = store
        self._clock = clock
        self._metrics = metrics

    # opening ---------------------------------------------------------------------------------
    def open(
        self,
        service: str,
        *,
        severity: str | int,
        title: str,
        source: str,
        key: str,
        detected_at: datetime | float,
        who: str,
        details: Mapping[str, Any] | None = None,
        started_at: datetime | float | None = None,
        revision: int | None = None,
        note: str | None = None,
    ) -> IncidentRecord:
        """Open an incident at ``detected``, or return the open one with the same ``key``.

        ``started_at`` is when the impact began, if the source knows (an alert's ``activeAt``);
        it must not be after ``detected_at``. The data plane's counters are saved now, so the
        impact over the incident can be measured when it recovers.
        """
        level = parse_severity(severity)
        detected = _epoch(detected_at, "detected_at")
        began = _epoch(started_at, "started_at") if started_at is not None else None
        if began is not None and began > detected:
            raise InputError("started_at: the impact cannot begin after it was detected")
        text = _required("title", title)[:_MAX_TITLE]
        snapshot = self._snapshot(service)
        impact = (
            not_measured("measured when the incident recovers")
            if snapshot is not None
            else not_measured("the data plane's counters were not available at detection")
        )
        record, created = self._log.open_incident(
            service=_required("service", service),
            key=_required("key", key),
            source=_required("source", source),
            severity=level,
            title=text,
            revision=revision,
            started_at=began,
            detected=NewStage(stage="detected", at=detected, who=_required("who", who), note=note),
            details=details,
            impact=impact,
            snapshot=snapshot,
        )
        if created:
            self._event(record, "incident.opened", f"{_name(record)} {level} opened: {text}")
        return record

    def open_for_rollback(
        self,
        release: ReleaseRecord,
        *,
        severity: str = DEFAULT_ROLLBACK_SEVERITY,
        events: builtins.list[EventRecord] | None = None,
    ) -> IncidentRecord | None:
        """The incident of a release the engine rolled back by itself, with its stages at the
        times they happened; None when the release did not end that way (a person aborted or
        rolled it back, or it succeeded). Calling it again returns the same incident."""
        service = str(release.service)
        if events is None:
            events = self._store.list_events(
                release.service, revision=release.revision, limit=100_000
            )
        facts = rollback_facts(release, events)
        if facts is None:
            return None
        key = f"rollback:{service}:{facts.revision}"
        existing = self._log.find_incident(key, open_only=False)
        if existing is not None:
            return existing
        stable = self._release(service, facts.stable)
        details: dict[str, Any] = {
            "reason": facts.reason,
            "verdict": dict(facts.verdict) if facts.verdict is not None else None,
            "strategy": facts.strategy,
            "version": facts.version,
            "stable": facts.stable,
            "stable_version": str(stable.version) if stable is not None else None,
            "onset": facts.onset,
            "mitigation": facts.mitigation,
            "verified": facts.verified,
            "rollback_s": (release.state.get("timings") or {}).get("rollback_s"),
            "changes": _spec_changes(stable, release),
        }
        later = []
        if facts.mitigated_at is not None:
            later.append(
                NewStage(
                    stage="mitigated",
                    at=facts.mitigated_at,
                    who=AUTOMATIC_ROLLBACK,
                    note=facts.mitigation,
                )
            )
        if facts.recovered_at is not None:
            later.append(
                NewStage(
                    stage="recovered",
                    at=facts.recovered_at,
                    who=AUTOMATIC_ROLLBACK,
                    note=facts.verified or f"revision {facts.stable} serving again",
                )
            )
        level = parse_severity(severity)
        title = (
            f"revision {facts.revision} ({facts.version}) of {service} rolled back: {facts.reason}"
        )[:_MAX_TITLE]
        record, created = self._log.open_incident(
            service=service,
            key=key,
            source=f"rollback:{facts.revision}",
            severity=level,
            title=title,
            revision=facts.revision,
            started_at=facts.started_at,
            detected=NewStage(
                stage="detected", at=facts.detected_at, who=facts.detector, note=facts.reason
            ),
            later=later,
            details=details,
            impact=facts.impact,
        )
        if created:
            self._event(
                record,
                "incident.opened",
                f"{_name(record)} {level} opened for the automatic rollback of revision "
                f"{facts.revision}: {facts.reason}",
            )
            for stage in record.stages[1:]:
                self._event(record, f"incident.{stage.stage}", _moved(record, stage.stage))
        return record

    # moving ----------------------------------------------------------------------------------
    def advance(
        self,
        incident_id: int,
        stage: str,
        *,
        who: str,
        note: str | None = None,
        at: datetime | float | None = None,
    ) -> IncidentRecord:
        """Move an incident forward to ``stage``, stamped now (or ``at``).

        Moving back, or to the stage it is at, is an ``InputError``; so is a time before a
        stage already reached, and ``reviewed`` before ``recovered``. Skipped stages stay
        empty. Reaching ``recovered`` measures the impact when counters were saved at
        detection.
        """
        stage_index(stage)
        actor = _required("who", who)
        given = _epoch(at, "at") if at is not None else None
        for _ in range(_MOVE_ATTEMPTS):
            record = self._log.get_incident(incident_id)
            now = self._clock.now().timestamp()
            when = check_move(record, stage, at=given, now=now)
            impact = None
            if stage == "recovered":
                impact = self._measure(record, when, now)
            moved = self._log.advance_incident(
                incident_id,
                expected_stage=record.stage,
                move=NewStage(stage=stage, at=when, who=actor, note=note),
                impact=impact,
            )
            if moved is not None:
                self._event(moved, f"incident.{stage}", _moved(moved, stage))
                return moved
        raise TemporaryError(
            f"incident {incident_id} kept changing while moving it to {stage}; try again",
            retry_after=0.5,
        )

    def ack(self, incident_id: int, *, who: str, note: str | None = None) -> IncidentRecord:
        """A person has assessed the incident (its scope and severity): ``assessed``."""
        return self.advance(incident_id, "assessed", who=who, note=note)

    def resolve(self, incident_id: int, *, who: str, note: str | None = None) -> IncidentRecord:
        """The service works again: ``recovered``, after ``mitigated`` if it was not yet."""
        record = self._log.get_incident(incident_id)
        if stage_index(record.stage) < stage_index("mitigated"):
            self.advance(incident_id, "mitigated", who=who, note=note)
        return self.advance(incident_id, "recovered", who=who, note=note)

    def review(
        self, incident_id: int, *, who: str, force: bool = False, note: str | None = None
    ) -> IncidentRecord:
        """The postmortem was reviewed: ``reviewed``. Refused while the incident has no
        postmortem file or the file still has parts marked ``[To complete]`` (``force``
        overrides)."""
        record = self._log.get_incident(incident_id)
        path = record.postmortem_path
        if not force:
            if path is None or not Path(path).is_file():
                raise RefusedError(
                    f"{_name(record)} has no postmortem yet: write it with 'zerodown incident "
                    f"postmortem {incident_id}', complete it, then mark it reviewed"
                )
            left = Path(path).read_text(encoding="utf-8").count(TO_COMPLETE)
            if left:
                raise RefusedError(
                    f"{_name(record)}: {path} still has {left} part(s) marked {TO_COMPLETE}; "
                    "complete them (or use --force)"
                )
        return self.advance(
            incident_id, "reviewed", who=who, note=note or (f"postmortem {path}" if path else None)
        )

    # reading ---------------------------------------------------------------------------------
    def get(self, incident_id: int) -> IncidentRecord:
        return self._log.get_incident(incident_id)

    def find_open(self, key: str) -> IncidentRecord | None:
        """The open incident with ``key``, if there is one (the monitor's lookup on resolve)."""
        return self._log.find_incident(key, open_only=True)

    def stats(self, service: str | None = None) -> IncidentStats:
        """MTTD and MTTR as medians, p90 and every value, with counts."""
        return incident_stats(self._log.list_incidents(service, limit=1_000_000), service=service)

    def postmortem(self, incident_id: int) -> str:
        """The postmortem draft of an incident, in Markdown."""
        record = self._log.get_incident(incident_id)
        start = (record.started_at or record.detected_at).timestamp() - MARGIN_SECONDS
        recovered = record.at("recovered")
        now = self._clock.now().timestamp()
        end = (recovered.timestamp() if recovered is not None else now) + MARGIN_SECONDS
        events = self._log.events_between(record.service, start=start, end=end)
        releases = self._store.list_releases(ServiceName(record.service), limit=1000)
        return render_postmortem(
            record, events=events, releases=releases, generated_at=self._clock.now()
        )

    def write_postmortem(self, incident_id: int, *, directory: Path) -> tuple[Path, str]:
        """Write the postmortem draft to a new file in ``directory`` (an earlier one, perhaps
        completed by hand, is never overwritten: the new draft gets a ``-2``, ``-3`` ...
        name). Returns the path and the Markdown."""
        record = self._log.get_incident(incident_id)
        markdown = self.postmortem(incident_id)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create folder {directory}: {exc.strerror}") from exc
        service = re.sub(r"[^A-Za-z0-9._-]+", "-", record.service).strip("-.") or "service"
        stem = f"postmortem-INC-{record.id}-{service}"
        for attempt in range(1, 1000):
            path = directory / (f"{stem}.md" if attempt == 1 else f"{stem}-{attempt}.md")
            if _create(path, markdown):
                break
        else:
            raise InputError(f"no free file name for {stem} in {directory}")
        updated = self._log.set_incident_postmortem(incident_id, str(path))
        self._event(
            updated,
            "incident.postmortem",
            f"{_name(updated)} postmortem draft written to {path}",
            data={"markdown": str(path)},
        )
        return path, markdown

    def list(
        self, service: str | None = None, open_only: bool = False, *, limit: int = 1000
    ) -> builtins.list[IncidentRecord]:
        """Incidents, newest first (of one service; only those not recovered)."""
        return self._log.list_incidents(service, open_only=open_only, limit=limit)

    # helpers ---------------------------------------------------------------------------------
    def _snapshot(self, service: str) -> dict[str, Any] | None:
        metrics = self._read_metrics(service)
        return metrics.to_dict() if metrics is not None else None

    def _read_metrics(self, service: str) -> ServiceMetrics | None:
        if self._metrics is None:
            return None
        try:
            return self._metrics(service)
        except Exception:  # a data plane that does not answer means "not measured"
            return None

    def _measure(self, record: IncidentRecord, when: float, now: float) -> dict[str, Any] | None:
        """The impact at recovery from the counters saved at detection; None to keep what the
        incident has (a rollback's figures, measured when it was opened)."""
        snapshot = self._log.incident_snapshot(record.id)
        if snapshot is None:
            return None
        detected = record.detected_at.timestamp()
        if abs(now - when) > _MEASURE_SLACK_SECONDS:
            return not_measured(
                "the recovery time was given after the fact: the counters at that moment are "
                "not known"
            )
        return impact_between(
            snapshot,
            self._read_metrics(record.service),
            detected_at=detected,
            recovered_at=when,
        )

    def _release(self, service: str, revision: int | None) -> ReleaseRecord | None:
        if revision is None:
            return None
        try:
            return self._store.get_release(ServiceName(service), Revision(revision))
        except InputError:
            return None

    def _event(
        self,
        record: IncidentRecord,
        kind: str,
        message: str,
        *,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        self._store.append_event(
            ServiceName(record.service),
            revision=Revision(record.revision) if record.revision is not None else None,
            kind=kind,
            message=message,
            data={"incident": record.id, "severity": record.severity, **(data or {})},
        )


def _name(record: IncidentRecord) -> str:
    return f"INC-{record.id}"


def _moved(record: IncidentRecord, stage: str) -> str:
    reached = record.reached(stage)
    who = f" by {reached.who}" if reached is not None else ""
    note = f": {reached.note}" if reached is not None and reached.note else ""
    return f"{_name(record)} {stage}{who}{note}"


def _required(field: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{field}: must be a non-empty string")
    return value.strip()


def _epoch(value: datetime | float, field: str) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InputError(f"{field}: a time needs a time zone (UTC)")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{field}: expected a time, got {type(value).__name__}")
    return float(value)


def _spec_changes(stable: ReleaseRecord | None, release: ReleaseRecord) -> builtins.list[str]:
    """The spec settings that changed from the stable release to this one, one line each:
    ``- path: old`` then ``+ path: new``. Values of environment variables and of keys that look
    secret are masked, and so are passwords inside URLs anywhere."""
    if stable is None or stable.spec_text == release.spec_text:
        return []
    before, after = _flatten_spec(stable.spec_text), _flatten_spec(release.spec_text)
    lines: builtins.list[str] = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        if old is not None:
            lines.append(f"- {path}: {_shown(path, old)}")
        if new is not None:
            lines.append(f"+ {path}: {_shown(path, new)}")
    if len(lines) > _MAX_CHANGED_LINES:
        lines = [*lines[:_MAX_CHANGED_LINES], f"... {len(lines) - _MAX_CHANGED_LINES} more"]
    return lines


def _flatten_spec(text: str) -> dict[str, str]:
    """Every leaf of a spec as ``dotted.path[index]`` -> its value as text; {} if unreadable."""
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except Exception:  # a stored spec always parsed once; never fail a postmortem over it
        return {}
    leaves: dict[str, str] = {}

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{path}[{index}]")
        else:
            leaves[path] = "null" if node is None else str(node)

    walk(data, "")
    return leaves


def _shown(path: str, value: str) -> str:
    parts = [part for part in re.split(r"[.\[\]]+", path) if part]
    if any(is_secret_key(part) for part in parts):
        return MASK
    if parts[0] == "env" and any(part.isdigit() for part in parts):
        return MASK  # a list of name/value pairs: the name that says "secret" is a sibling
    return redact_text(value)


def _create(path: Path, text: str) -> bool:
    """Write a new file atomically; False if ``path`` exists already."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
