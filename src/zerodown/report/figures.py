"""Every figure of the report, computed once from a ``ReportInput``, language-neutral.

The result is the JSON twin's ``sections``: one entry per field of the seed's template, holding
numbers (already rounded to what the Markdown prints), rule ids and the engine's own words
(event messages, reasons). The Markdown renderer only formats what is here, so a test can
check every number of the Markdown against the JSON.

Where a figure cannot be known, its entry says ``"measured": false`` with a ``reason`` code
(``no_samples``, ``no_traffic``...) that the renderer turns into a sentence.

The rules that turn figures into findings (bottlenecks, advice, scaling) are constants below;
each finding carries the threshold it was held to, so the report states the rule it applied.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from zerodown.report.model import ReportInput
from zerodown.spec import defaults

__all__ = [
    "FIELD_PATHS",
    "HEALTH_FORMULA",
    "HEALTH_WEIGHTS",
    "SCHEMA",
    "Facts",
    "build_sections",
    "iso",
    "release_header",
    "report_timestamp",
]

JSON = dict[str, Any]

SCHEMA: Final = "zerodown.deployment-report/1"

FIELD_PATHS: Final[tuple[tuple[str, ...], ...]] = (
    ("timestamp",),
    ("sections", "deployment_summary", "deployment_type"),
    ("sections", "deployment_summary", "deployment_status"),
    ("sections", "deployment_summary", "deployment_time"),
    ("sections", "deployment_summary", "impact"),
    ("sections", "infrastructure", "health_score"),
    ("sections", "infrastructure", "resource_usage", "cpu"),
    ("sections", "infrastructure", "resource_usage", "memory"),
    ("sections", "infrastructure", "resource_usage", "storage"),
    ("sections", "infrastructure", "resource_usage", "network"),
    ("sections", "execution", "pre_deployment_checks"),
    ("sections", "execution", "deployment_execution"),
    ("sections", "execution", "health_checks"),
    ("sections", "execution", "post_deployment_validation"),
    ("sections", "monitoring", "availability"),
    ("sections", "monitoring", "response_time"),
    ("sections", "monitoring", "error_rate"),
    ("sections", "monitoring", "throughput"),
    ("sections", "performance", "bottlenecks"),
    ("sections", "performance", "resource_optimization"),
    ("sections", "performance", "scaling"),
    ("sections", "events", "deployment_events"),
    ("sections", "events", "alerts"),
    ("sections", "events", "incident_response"),
    ("sections", "events", "lessons_learned"),
    ("sections", "recommendations", "urgent_actions"),
    ("sections", "recommendations", "improvements"),
    ("sections", "recommendations", "preventive_actions"),
    ("sections", "recommendations", "capacity_planning"),
)
"""Where each ``{placeholder}`` of the template (in template order) finds its figures."""

# Rules (stated in the report next to what they found) ----------------------------------------
CPU_PEAK_HIGH: Final = 80.0
"""Host CPU peak at or above this (%): CPU-bound."""
CPU_PEAK_LOW: Final = 20.0
MEMORY_PEAK_LOW: Final = 50.0
"""CPU peak below ``CPU_PEAK_LOW`` and memory peak below this: over-provisioned."""
MEMORY_PEAK_HIGH: Final = 85.0
DISK_PEAK_HIGH: Final = 90.0
LOAD_PER_CORE_HIGH: Final = 1.0
"""1-minute load average per core at or above this: runnable work waits for a CPU."""
LATENCY_REGRESSION_RATIO: Final = 1.5
"""New version's p95 above this multiple of the previous version's: slower release."""
ERROR_RATE_WARN_PERCENT: Final = 1.0
"""New version's error rate at or above this (%): worth a look even under the rollback limit."""
TARGET_CPU_PERCENT: Final = 70.0
"""CPU a service is sized for: scale out above it, estimate capacity against it."""
MIN_REPLICAS: Final = 2
"""Never advise fewer instances than this: one instance has no redundancy."""
MEMORY_LIMIT_FACTOR: Final = 1.5
"""A memory limit suggested as this multiple of an instance's measured memory."""
ROLLBACK_TARGET_S: Final = 30.0
"""The seed's rollback time target ("< 30 seconds")."""
BASELINE_MIN_REQUESTS: Final = 50
"""A same-window baseline latency is trusted from this many requests (as the judges do)."""

# Health score ---------------------------------------------------------------------------------
HEALTH_WEIGHTS: Final = {"availability": 30, "error_rate": 30, "latency": 20, "instances": 20}
SCORE_MAX: Final = 100
SCORE_AT_LIMIT: Final = 50
PENALTY_SPAN: Final = 2
HEALTH_FORMULA: Final = (
    "score = sum(weight x component) / sum(weight) over measured components (0-100 each); "
    "availability = 100 x (1 - unavailability / (2 x (1 - min availability))); "
    "error rate = 100 x (1 - error rate / (2 x max error rate)); "
    "latency = 100 x (1 - (p95 ratio - 1) / (2 x (max ratio - 1))), 100 when the ratio <= 1; "
    "instances = 100 x healthy / expected; each component is 50 at its rollback limit"
)

_STEP_KINDS: Final = frozenset(
    {
        "release.created",
        "canary.ready",
        "canary.weight",
        "canary.pause",
        "canary.promoted",
        "bluegreen.ready",
        "bluegreen.switched",
        "rolling.step",
        "native.requested",
        "native.issued",
        "native.completed",
        "native.redo",
        "swarm.update",
        "swarm.rollback",
        "rollback.swarm",
        "rollback.paused",
        "traffic.switch",
        "traffic.rollback",
        "analysis.started",
        "analysis.verdict",
        "analysis.passed",
        "analysis.skipped",
        "analysis.reset",
        "rollout.paused",
        "rollout.promote",
        "rollout.pause",
        "rollout.resume",
        "rollout.abort",
        "rollback.started",
        "rollback.waiting",
        "rollback.switched",
        "release.restored",
        "release.succeeded",
        "release.rolled_back",
        "release.failed",
    }
)
_TIMELINE_LIMIT: Final = 80
_TYPE_BY_STRATEGY: Final = {
    "canary": "Canary",
    "blue-green": "Blue-Green",
    "bluegreen": "Blue-Green",
    "blue_green": "Blue-Green",
    "rolling": "Rolling",
    "native": "Swarm Native",
    "initial": "Initial",
    "rollback": "Rollback",
    "dr-drill": "DR Drill",
    "backup": "Backup",
    "restore": "Restore",
    "retention": "Retention",
}
_DRILL_STEP_KINDS: Final = frozenset(
    {
        "dr.drill.started",
        "dr.drill.restored",
        "dr.drill.restore_failed",
        "dr.drill.instance_started",
        "dr.drill.serving",
        "dr.drill.smoke_failed",
        "dr.drill.error",
        "dr.drill.cleaned",
        "dr.drill.cleanup_failed",
        "dr.drill.passed",
        "dr.drill.failed",
    }
)
"""A DR drill's steps (``zerodown.backup.dr``): the operation ``drill`` shows these."""
DATA_OPERATIONS: Final = frozenset({"backup", "restore", "retention"})
"""Operations on a service's data (``zerodown.backup``), not deployments: their figures are in
the release's ``state["operation"]``, their steps are the backup events below."""
_DATA_STEP_KINDS: Final = frozenset(
    {
        "backup.operation.started",
        "backup.succeeded",
        "backup.failed",
        "backup.verified",
        "backup.corrupted",
        "backup.restored",
        "backup.retention",
        "backup.pruned",
        "backup.repository_pruned",
        "backup.prune_failed",
        "backup.operation.finished",
    }
)
_INSTANCE_REVISION = re.compile(r"-r(\d+)-")


# Small readers --------------------------------------------------------------------------------
def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None


def _epoch(value: Any) -> float | None:
    """Epoch seconds from an ISO text, a datetime or a number; None when unreadable."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return _float(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso(epoch: float) -> str:
    """``2024-05-01T12:04:55Z``: the one way the report writes a moment."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def report_timestamp(data: ReportInput) -> str:
    return iso(data.generated_at.timestamp())


def _round(value: float | None) -> float | None:
    """Seconds, milliseconds, rates: 1 decimal from 100, 2 from 1, else 3 significant digits."""
    if value is None or not math.isfinite(value):
        return None
    size = abs(value)
    if size >= 100:
        return round(value, 1)
    if size >= 1:
        return round(value, 2)
    if size == 0:
        return 0.0
    return float(f"{value:.3g}")


def _percent(fraction: float | None) -> float | None:
    """A fraction as a percentage with up to three decimals (99.951, 0.05)."""
    if fraction is None or not math.isfinite(fraction):
        return None
    return round(fraction * 100, 3)


def _usage(value: float | None) -> float | None:
    """A resource percentage with one decimal."""
    return round(value, 1) if value is not None else None


def _ms(seconds: float | None) -> float | None:
    return _round(seconds * 1000) if seconds is not None else None


_BYTE_UNITS: Final = ("B", "KiB", "MiB", "GiB", "TiB")


def _bytes(count: float | None) -> JSON | None:
    """``{"value": 7.4, "unit": "GiB", "bytes": 7945689498}`` in the unit that reads best."""
    if count is None:
        return None
    value, unit = float(count), 0
    while abs(value) >= 1024 and unit < len(_BYTE_UNITS) - 1:
        value /= 1024
        unit += 1
    return {"value": round(value, 1), "unit": _BYTE_UNITS[unit], "bytes": int(count)}


def _rate(bytes_per_s: float | None) -> JSON | None:
    shown = _bytes(bytes_per_s)
    if shown is None:
        return None
    return {"value": shown["value"], "unit": f"{shown['unit']}/s", "bytes_per_s": shown["bytes"]}


def _hms(seconds: float) -> str:
    whole = max(0, int(seconds))  # truncated, like the ISO times beside it
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy: mappings with text keys, lists, finite numbers, text."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return iso(_epoch(value) or 0.0)
    return str(value)


# What the release says, parsed once ----------------------------------------------------------
@dataclass(frozen=True)
class _Event:
    t: float | None
    offset: float | None
    kind: str
    message: str
    data: Mapping[str, Any]
    revision: int | None


@dataclass(frozen=True)
class _Sample:
    t: float
    versions: Mapping[str, Mapping[str, Any]]
    host: Mapping[str, Any] | None


@dataclass(frozen=True)
class _Limits:
    max_error_rate: float
    min_availability: float
    max_latency_ratio: float
    source: str  # "analysis" (read from a verdict) or "defaults"


class Facts:
    """The input, read once: revisions, times, events, samples, summary, verdicts, limits."""

    def __init__(self, data: ReportInput) -> None:
        self.data = data
        release = data.release
        self.state = _mapping(release.get("state"))
        self.new = _int(release.get("revision")) or 0
        self.version = str(release.get("version") or "")
        self.strategy = str(release.get("strategy") or "")
        self.status = str(release.get("status") or "")
        self.reason = str(release.get("reason") or "")
        previous = data.previous
        stable = _int(self.state.get("stable"))
        if stable is None and previous is not None:
            stable = _int(previous.get("revision"))
        self.stable = stable if stable != self.new else None
        self.stable_version: str | None = None
        if previous is not None and _int(previous.get("revision")) == self.stable:
            self.stable_version = str(previous.get("version") or "")
        raw_events = [e for e in data.events if isinstance(e, Mapping)]
        first_ts = next((t for t in (_epoch(e.get("ts")) for e in raw_events) if t), None)
        self.generated = data.generated_at.timestamp()
        self.started: float = (
            _float(self.state.get("started"))
            or _epoch(release.get("created_at"))
            or first_ts
            or self.generated
        )
        self.finished = _float(self.state.get("finished")) or _epoch(release.get("finished_at"))
        # Oldest first (the store's order); a stable sort keeps events of one moment in order.
        self.events = sorted(
            (self._event(e) for e in raw_events),
            key=lambda e: e.t if e.t is not None else math.inf,
        )
        self.samples = sorted(
            (s for s in (self._sample(e) for e in self.events) if s is not None),
            key=lambda s: s.t,
        )
        summary = _mapping(self.state.get("summary"))
        self.total = _mapping(summary.get("total"))
        self.versions = {str(k): _mapping(v) for k, v in _mapping(summary.get("versions")).items()}
        self.window_s = _float(summary.get("seconds"))
        self.verdicts = [
            _mapping(v) for v in self.state.get("verdicts") or () if isinstance(v, Mapping)
        ]
        self.timings = _mapping(self.state.get("timings"))
        rollback = self.state.get("rollback")
        self.rollback = _mapping(rollback) if isinstance(rollback, Mapping) else None
        self.limits = self._limits()

    def _event(self, raw: Mapping[str, Any]) -> _Event:
        t = _epoch(raw.get("ts"))
        data = _mapping(raw.get("data"))
        revision = _int(raw.get("revision"))
        if revision is None:
            match = _INSTANCE_REVISION.search(str(data.get("instance") or ""))
            revision = int(match.group(1)) if match else None
        return _Event(
            t=t,
            offset=t - self.started if t is not None else None,
            kind=str(raw.get("kind") or ""),
            message=" ".join(str(raw.get("message") or "").split()),
            data=data,
            revision=revision,
        )

    @staticmethod
    def _sample(event: _Event) -> _Sample | None:
        if event.kind != "rollout.sample":
            return None
        t = _float(event.data.get("t")) or event.t
        if t is None:
            return None
        versions = {str(k): _mapping(v) for k, v in _mapping(event.data.get("versions")).items()}
        host = event.data.get("host")
        return _Sample(t=t, versions=versions, host=_mapping(host) if host else None)

    def _limits(self) -> _Limits:
        error_rate = availability = None
        for verdict in reversed(self.verdicts):
            for measurement in verdict.get("measurements") or ():
                m = _mapping(measurement)
                if m.get("name") == "error_rate" and error_rate is None:
                    error_rate = _float(m.get("limit"))
                if m.get("name") == "availability" and availability is None:
                    availability = _float(m.get("limit"))
        return _Limits(
            max_error_rate=error_rate or defaults.DEFAULT_MAX_ERROR_RATE,
            min_availability=availability or defaults.DEFAULT_MIN_AVAILABILITY,
            max_latency_ratio=defaults.DEFAULT_MAX_LATENCY_RATIO,
            source="analysis" if error_rate is not None or availability is not None else "defaults",
        )

    # helpers over the parsed input
    def of_kind(self, *kinds: str) -> list[_Event]:
        return [e for e in self.events if e.kind in kinds]

    def is_new(self, event: _Event) -> bool:
        return event.revision is None or event.revision == self.new

    def host_values(self, key: str) -> list[float]:
        return [
            v for v in (_float(s.host.get(key)) for s in self.samples if s.host) if v is not None
        ]

    @property
    def operation(self) -> str:
        return self.data.operation

    @property
    def serving_revision(self) -> int:
        """The revision that serves traffic once the operation ended."""
        if self.status in ("rolled_back", "failed") and self.stable is not None:
            return self.stable
        return self.new

    def instances_of(self, revision: int) -> list[Mapping[str, Any]]:
        return [i for i in self.data.instances if _int(i.get("revision")) == revision]

    def traffic(self) -> _Traffic:
        return _Traffic.read(self)


@dataclass(frozen=True)
class _Traffic:
    """Requests and errors over the rollout, from the summary or else from the last sample."""

    source: str | None  # "summary", "samples" or None (not measured)
    requests: int | None
    new_requests: int | None
    errors: int | None
    error_rate: float | None

    @classmethod
    def read(cls, f: Facts) -> _Traffic:
        requests = _int(f.total.get("requests"))
        if requests is not None:
            new = _int(f.versions.get(str(f.new), {}).get("requests"))
            errors = _int(f.total.get("errors_5xx"))
            rate = _float(f.total.get("error_rate"))
            if rate is None and errors is not None and requests:
                rate = errors / requests
            return cls("summary", requests, new, errors, rate)
        if f.samples:
            last = f.samples[-1].versions
            total = sum(_int(v.get("requests")) or 0 for v in last.values())
            errors = sum(_int(v.get("errors")) or 0 for v in last.values())
            new = _int(last.get(str(f.new), {}).get("requests"))
            return cls("samples", total, new, errors, errors / total if total else None)
        return cls(None, None, None, None, None)


def _not_measured(reason: str, **figures: Any) -> JSON:
    return {"measured": False, "reason": reason, **figures}


def _release_ref(revision: int | None, version: str | None) -> JSON | None:
    if revision is None:
        return None
    return {"revision": revision, "version": version or ""}


# Sections -------------------------------------------------------------------------------------
def build_sections(data: ReportInput) -> JSON:
    """The JSON twin's ``sections``: every field of the template, in template order."""
    f = Facts(data)
    status = _deployment_status(f)
    performance = _performance(f)
    sections: JSON = {
        "deployment_summary": {
            "deployment_type": _deployment_type(f),
            "deployment_status": status,
            "deployment_time": _deployment_time(f),
            "impact": _impact(f, status),
        },
        "infrastructure": {
            "health_score": _health_score(f),
            "resource_usage": _resource_usage(f),
        },
        "execution": {
            "pre_deployment_checks": _checks(data.prechecks),
            "deployment_execution": _execution(f),
            "health_checks": _health_checks(f),
            "post_deployment_validation": _post_validation(f),
        },
        "monitoring": _monitoring(f),
        "performance": performance,
        "events": {
            "deployment_events": _timeline(f),
            "alerts": _alerts(data.alerts, f),
            "incident_response": _incident(f, status),
            "lessons_learned": _lessons(f, status),
        },
    }
    sections["recommendations"] = _recommendations(f, sections)
    sections["next_actions"] = _next_actions(f, sections)
    return _jsonable(sections)  # type: ignore[no-any-return]


def release_header(data: ReportInput) -> JSON:
    """The release and the one it replaced, for the JSON twin's top level."""
    f = Facts(data)
    release = {
        "revision": f.new,
        "version": f.version,
        "strategy": f.strategy,
        "status": f.status,
        "reason": f.reason,
        "created_at": iso(f.started),
        "finished_at": iso(f.finished) if f.finished is not None else None,
    }
    previous = None
    if data.previous is not None:
        previous = {
            "revision": _int(data.previous.get("revision")),
            "version": str(data.previous.get("version") or ""),
            "strategy": str(data.previous.get("strategy") or ""),
            "status": str(data.previous.get("status") or ""),
        }
    return _jsonable({"release": release, "previous": previous})  # type: ignore[no-any-return]


def _deployment_type(f: Facts) -> JSON:
    if f.operation == "rollback" or f.strategy == "rollback":
        kind = "Rollback"
    elif f.operation == "up" or f.strategy == "initial":
        kind = "Initial"
    else:
        kind = _TYPE_BY_STRATEGY.get(f.strategy) or (f.strategy or f.operation).title()
    weights = [w for w in (_int(e.data.get("weight")) for e in f.of_kind("canary.weight")) if w]
    return {
        "type": kind,
        "strategy": f.strategy,
        "operation": f.operation,
        "replicas": f.data.replicas,
        "weights_reached": weights,
        "analyses": len(f.of_kind("analysis.started")),
        "swarm_update": next(
            (str(e.data.get("how") or "") for e in f.of_kind("native.requested")), None
        ),
        "rollback_to": _int(f.state.get("rollback_of"))
        or (f.new if f.operation == "rollback" else None),
        "new": _release_ref(f.new, f.version),
        "previous": _release_ref(f.stable, f.stable_version),
    }


def _analysis_outcomes(f: Facts) -> dict[str, JSON]:
    """The last verdict of each analysis (by label), and the analyses skipped by a promote."""
    last: dict[str, JSON] = {}
    for verdict in f.verdicts:
        label = str(verdict.get("label") or "analysis")
        last[label] = {
            "label": label,
            "outcome": str(verdict.get("outcome") or ""),
            "reason": str(verdict.get("reason") or ""),
            "judge": str(verdict.get("judge") or ""),
            "requests_needed": _int(verdict.get("requests_needed")) or 0,
            "canary_requests": _int(verdict.get("canary_requests")),
        }
    for event in f.of_kind("analysis.passed"):
        label = event.message.split(" passed")[0]
        if label in last:
            last[label]["outcome"] = "pass"
    for event in f.of_kind("analysis.skipped"):
        label = event.message.split(": skipped")[0]
        last[label] = {"label": label, "outcome": "skipped", "reason": event.message}
    return last


def _restarts(f: Facts) -> tuple[int, int]:
    """(restarts of the new revision's instances, crashes of them during the operation)."""
    restarts = sum(_int(i.get("restarts")) or 0 for i in f.instances_of(f.new))
    events = len([e for e in f.of_kind("instance.restarted") if f.is_new(e)])
    crashes = len([e for e in f.of_kind("instance.crashed") if f.is_new(e)])
    return max(restarts, events), crashes


def _deployment_status(f: Facts) -> JSON:
    partial: list[JSON] = []
    rollback: str | None = None
    if f.status in ("succeeded", "superseded"):
        for analysis in _analysis_outcomes(f).values():
            if analysis["outcome"] == "inconclusive":
                partial.append({"code": "analysis_inconclusive", **analysis})
            elif analysis["outcome"] == "skipped":
                partial.append({"code": "analysis_skipped", "label": analysis["label"]})
        restarts, crashes = _restarts(f)
        if restarts or crashes:
            partial.append({"code": "restarts", "restarts": restarts, "crashes": crashes})
        for check in f.data.postchecks:
            if check.get("status") == "fail":
                partial.append({"code": "postcheck_failed", "name": str(check.get("name"))})
        outcome = "partial" if partial else "success"
    elif f.status == "rolled_back":
        outcome = "failure"
        manual = f.operation == "abort" or bool(f.of_kind("rollout.abort"))
        rollback = "manual" if manual else "automatic"
    elif f.status == "failed":
        outcome = "failure"
    elif f.status in ("pending", "progressing", "paused", "stopped"):
        outcome = "in_progress" if f.status != "stopped" else "stopped"
    else:
        outcome = "unknown"
    return {
        "outcome": outcome,
        "release_status": f.status,
        "reason": f.reason,
        "rollback": rollback,
        "partial_reasons": partial,
    }


def _deployment_time(f: Facts) -> JSON:
    duration = _float(f.state.get("duration_s"))
    finished = f.finished
    running = False
    if duration is None and finished is not None:
        duration = finished - f.started
    if duration is None:
        running = True
        duration = f.generated - f.started
    duration = max(duration, 0.0)
    return {
        "seconds": _round(duration),
        "hms": _hms(duration),
        "started": iso(f.started),
        "finished": iso(finished) if finished is not None else None,
        "running": running,
    }


def _impact(f: Facts, status: JSON) -> JSON:
    started = [e for e in f.of_kind("instance.started") if f.is_new(e)]
    stopped = [e for e in f.of_kind("instance.stopped") if f.is_new(e)]
    replaced = 0
    if status["outcome"] in ("success", "partial") and f.stable is not None:
        replaced = f.data.replicas
    traffic = f.traffic()
    share = None
    if traffic.requests and traffic.new_requests is not None:
        share = _percent(traffic.new_requests / traffic.requests)
    drill = _mapping(f.state.get("drill")) if f.operation == "drill" else {}
    return {
        "service": f.data.service,
        "drill": dict(drill) if drill else None,
        "operation": _operation_impact(f),
        "new": _release_ref(f.new, f.version),
        "previous": _release_ref(f.stable, f.stable_version),
        "instances_replaced": replaced,
        "new_instances_started": len(started),
        "new_instances_stopped": len(stopped),
        "requests": traffic.requests,
        "requests_to_new": traffic.new_requests,
        "new_share_percent": share,
        "traffic_source": traffic.source,
        "traffic_reason": None if traffic.source else "no_traffic",
        "users": _not_measured("no_user_identity"),
    }


def _operation(f: Facts) -> Mapping[str, Any]:
    """The figures of an operation on the data (``DATA_OPERATIONS``); empty for others."""
    if f.operation not in DATA_OPERATIONS:
        return {}
    return _mapping(f.state.get("operation"))


def _operation_impact(f: Facts) -> JSON | None:
    """What an operation on the data did to what users see: nothing, except a restore over
    the live data."""
    op = _operation(f)
    if not op:
        return None
    backups = [_mapping(b) for b in op.get("backups") or ()]
    done = [b for b in backups if b.get("status") == "succeeded"]
    return {
        "kind": f.operation,
        "targets": ", ".join(str(t) for t in op.get("targets") or ()) or "-",
        "backups": len(done),
        "bytes": sum(_int(b.get("size_bytes")) or 0 for b in done),
        "backup_id": _int(op.get("backup_id")),
        "target": str(op.get("target") or ""),
        "destination": str(op.get("destination") or ""),
        "replaced_live": bool(op.get("replaced_live")),
        "bytes_written": _int(op.get("bytes_written")),
        "data_age_s": _round(_float(op.get("data_age_s"))),
        "moved_aside": str(op.get("moved_aside") or "") or None,
        "kept": _int(op.get("kept")),
        "removed": _int(op.get("removed")),
        "removed_bytes": _int(op.get("removed_bytes")),
    }


# Infrastructure -------------------------------------------------------------------------------
def _latency_pair(f: Facts) -> JSON:
    """The new version's p95 and the previous version's, with where the baseline came from."""
    new = _float(f.versions.get(str(f.new), {}).get("latency_p95_s"))
    source_new = "summary" if new is not None else None
    if new is None and f.samples:
        p95_ms = _float(f.samples[-1].versions.get(str(f.new), {}).get("p95_ms"))
        new = p95_ms / 1000 if p95_ms is not None else None
        source_new = "samples" if new is not None else None
    baseline = None
    source = None
    if f.stable is not None:
        stable = f.versions.get(str(f.stable), {})
        if (_int(stable.get("requests")) or 0) >= BASELINE_MIN_REQUESTS:
            baseline = _float(stable.get("latency_p95_s"))
            source = "same_window" if baseline is not None else None
        if baseline is None and f.data.previous is not None:
            recorded = _mapping(_mapping(f.data.previous.get("state")).get("recorded"))
            baseline = _float(recorded.get("p95"))
            source = "recorded" if baseline is not None else None
    if baseline is None and f.stable is not None:
        for verdict in reversed(f.verdicts):
            for measurement in verdict.get("measurements") or ():
                m = _mapping(measurement)
                if m.get("name") == "latency" and _float(m.get("baseline")) is not None:
                    baseline = _float(m.get("baseline"))
                    source = "analysis"
                    break
            if baseline is not None:
                break
    ratio = new / baseline if new is not None and baseline else None
    return {
        "new_p95_ms": _ms(new),
        "new_source": source_new,
        "baseline_p95_ms": _ms(baseline),
        "baseline_source": source,
        "ratio": _round(ratio),
    }


def _clamp_score(value: float) -> float:
    return round(min(max(value, 0.0), 1.0) * SCORE_MAX, 1)


def _health_score(f: Facts) -> JSON:
    limits = f.limits
    components: list[JSON] = []
    missing: list[JSON] = []
    availability = _float(f.total.get("availability"))
    if availability is not None:
        allowed = 1 - limits.min_availability
        components.append(
            {
                "name": "availability",
                "weight": HEALTH_WEIGHTS["availability"],
                "value_percent": _percent(availability),
                "limit_percent": _percent(limits.min_availability),
                "score": _clamp_score(1 - (1 - availability) / (PENALTY_SPAN * allowed)),
            }
        )
    else:
        missing.append({"name": "availability", "reason": "no_traffic"})
    traffic = f.traffic()
    if traffic.error_rate is not None:
        components.append(
            {
                "name": "error_rate",
                "weight": HEALTH_WEIGHTS["error_rate"],
                "value_percent": _percent(traffic.error_rate),
                "limit_percent": _percent(limits.max_error_rate),
                "score": _clamp_score(
                    1 - traffic.error_rate / (PENALTY_SPAN * limits.max_error_rate)
                ),
            }
        )
    else:
        missing.append({"name": "error_rate", "reason": "no_traffic"})
    latency = _latency_pair(f)
    if latency["ratio"] is not None:
        ratio = float(latency["ratio"])
        over = max(ratio - 1, 0.0) / (PENALTY_SPAN * (limits.max_latency_ratio - 1))
        components.append(
            {
                "name": "latency",
                "weight": HEALTH_WEIGHTS["latency"],
                "ratio": ratio,
                "limit_ratio": limits.max_latency_ratio,
                "new_p95_ms": latency["new_p95_ms"],
                "baseline_p95_ms": latency["baseline_p95_ms"],
                "score": _clamp_score(1 - over),
            }
        )
    else:
        if f.stable is None:
            reason = "no_previous"
        elif latency["new_p95_ms"] is None:
            reason = "no_latency_new"
        else:
            reason = "no_latency"
        missing.append({"name": "latency", "reason": reason})
    serving = f.serving_revision
    instances = f.instances_of(serving)
    expected = max(f.data.replicas, len(instances))
    healthy = len([i for i in instances if i.get("state") == "running"])
    if expected:
        components.append(
            {
                "name": "instances",
                "weight": HEALTH_WEIGHTS["instances"],
                "revision": serving,
                "healthy": healthy,
                "expected": expected,
                "score": _clamp_score(healthy / expected),
            }
        )
    else:
        missing.append({"name": "instances", "reason": "no_instances"})
    weight = sum(int(c["weight"]) for c in components)
    score = (
        round(sum(int(c["weight"]) * float(c["score"]) for c in components) / weight, 1)
        if weight
        else None
    )
    return {
        "measured": score is not None,
        "score": score,
        "max": SCORE_MAX,
        "components": components,
        "missing": missing,
        "limits_source": limits.source,
        "score_at_limit": SCORE_AT_LIMIT,
        "penalty_span": PENALTY_SPAN,
        "formula": HEALTH_FORMULA,
    }


def _no_host_reason(f: Facts) -> str:
    if not f.samples:
        return "no_samples"
    return "no_host_data"


def _avg_peak(values: Sequence[float]) -> tuple[float, float]:
    return sum(values) / len(values), max(values)


def _resource_usage(f: Facts) -> JSON:
    instances = [
        {
            "id": str(i.get("id") or ""),
            "revision": _int(i.get("revision")),
            "cpu_percent": _usage(_float(i.get("cpu_percent"))),
            "memory": _bytes(_float(i.get("memory_bytes"))),
        }
        for i in f.data.instances
        if _float(i.get("cpu_percent")) is not None or _float(i.get("memory_bytes")) is not None
    ]
    cpu_values = f.host_values("cpu_percent")
    cpu: JSON
    if cpu_values:
        average, peak = _avg_peak(cpu_values)
        loads = f.host_values("load_1m")
        cores = max((_int(s.host.get("cpu_count")) or 0 for s in f.samples if s.host), default=0)
        cpu = {
            "measured": True,
            "scope": "host",
            "average_percent": _usage(average),
            "peak_percent": _usage(peak),
            "samples": len(cpu_values),
            "cpu_count": cores or None,
            "load_1m_peak": _round(max(loads)) if loads else None,
            "instances": [i for i in instances if i["cpu_percent"] is not None],
        }
    else:
        cpu = _not_measured(
            _no_host_reason(f), instances=[i for i in instances if i["cpu_percent"] is not None]
        )
    memory_values = f.host_values("memory_percent")
    memory: JSON
    if memory_values:
        average, peak = _avg_peak(memory_values)
        used = f.host_values("memory_used_bytes")
        total = f.host_values("memory_total_bytes")
        memory = {
            "measured": True,
            "scope": "host",
            "average_percent": _usage(average),
            "peak_percent": _usage(peak),
            "used_peak": _bytes(max(used)) if used else None,
            "total": _bytes(max(total)) if total else None,
            "instances": [i for i in instances if i["memory"] is not None],
        }
    else:
        memory = _not_measured(
            _no_host_reason(f), instances=[i for i in instances if i["memory"] is not None]
        )
    disk_values = f.host_values("disk_percent")
    storage: JSON
    if disk_values:
        average, peak = _avg_peak(disk_values)
        free = f.host_values("disk_free_bytes")
        storage = {
            "measured": True,
            "scope": "host",
            "average_percent": _usage(average),
            "peak_percent": _usage(peak),
            "free_min": _bytes(min(free)) if free else None,
        }
    else:
        storage = _backup_disk(f) or _not_measured(_no_host_reason(f))
    return {"cpu": cpu, "memory": memory, "storage": storage, "network": _network(f)}


def _backup_disk(f: Facts) -> JSON | None:
    """The file system the backups went to, measured once when the operation ended
    (operations on the data, which take no host samples)."""
    storage = _backup_storage(_operation(f))
    if storage is None or storage["used_percent"] is None:
        return None
    return {
        "measured": True,
        "scope": "backup_storage",
        "path": storage["path"],
        "average_percent": storage["used_percent"],
        "peak_percent": storage["used_percent"],
        "free_min": storage["free"],
        "samples": 1,
    }


def _network(f: Facts) -> JSON:
    sent = f.host_values("net_sent_bytes_per_s")
    recv = f.host_values("net_recv_bytes_per_s")
    if not sent and not recv:
        hosts = len([s for s in f.samples if s.host])
        if hosts == 1:
            return _not_measured("single_sample")
        return _not_measured(_no_host_reason(f) if hosts == 0 else "no_network_counters")
    result: JSON = {"measured": True, "scope": "host", "samples": max(len(sent), len(recv))}
    for name, values in (("sent", sent), ("recv", recv)):
        if values:
            average, peak = _avg_peak(values)
            result[f"{name}_average"] = _rate(average)
            result[f"{name}_peak"] = _rate(peak)
        else:
            result[f"{name}_average"] = result[f"{name}_peak"] = None
    return result


# Execution ------------------------------------------------------------------------------------
def _checks(checks: Sequence[Mapping[str, Any]]) -> JSON:
    items = [
        {
            "name": str(c.get("name") or "check"),
            "status": str(c.get("status") or "unknown"),
            "summary": " ".join(str(c.get("summary") or "").split()),
            "figures": _jsonable(_mapping(c.get("figures"))),
        }
        for c in checks
    ]
    counts = Counter(str(i["status"]) for i in items)
    return {
        "configured": len(items),
        "pass": counts.get("pass", 0),
        "warn": counts.get("warn", 0),
        "fail": counts.get("fail", 0),
        "checks": items,
    }


def _step(event: _Event) -> JSON:
    return {
        "offset_s": _round(event.offset) if event.offset is not None else None,
        "kind": event.kind,
        "message": event.message,
    }


def _execution(f: Facts) -> JSON:
    steps: list[JSON] = []
    omitted = 0
    for event in f.events:
        if (
            event.kind not in _STEP_KINDS
            and event.kind not in _DRILL_STEP_KINDS
            and event.kind not in _DATA_STEP_KINDS
        ):
            continue
        if event.kind == "analysis.verdict":
            outcome = _mapping(event.data.get("verdict")).get("outcome")
            if outcome is None and ": inconclusive:" in event.message:
                outcome = "inconclusive"
            if outcome == "inconclusive":
                omitted += 1
                continue
        steps.append(_step(event))
    timings = {
        f"{name.removesuffix('_s')}_ms": _ms(value)
        for name, value in ((str(k), _float(v)) for k, v in f.timings.items())
        if value is not None
    }
    for event in f.of_kind("release.restored"):
        seconds = _float(event.data.get("rollback_s"))
        if seconds is not None:
            timings.setdefault("rollback_ms", _ms(seconds))
    return {
        "steps": steps,
        "count": len(steps),
        "inconclusive_verdicts_omitted": omitted,
        "timings": timings,
    }


def _instance_counts(f: Facts, revision: int) -> JSON:
    instances = f.instances_of(revision)
    states = Counter(str(i.get("state") or "unknown") for i in instances)
    return {
        "revision": revision,
        "healthy": states.get("running", 0),
        "total": len(instances),
        "expected": f.data.replicas,
        "states": dict(sorted(states.items())),
        "restarts": sum(_int(i.get("restarts")) or 0 for i in instances),
    }


def _health_checks(f: Facts) -> JSON:
    problems = [
        {**_step(e), "instance": str(e.data.get("instance") or "")}
        for e in f.of_kind("instance.unhealthy", "instance.crashed", "instance.gave_up")
    ]
    return {
        "events": {
            "healthy": len(f.of_kind("instance.healthy")),
            "unhealthy": len(f.of_kind("instance.unhealthy")),
            "crashed": len(f.of_kind("instance.crashed")),
            "restarted": len(f.of_kind("instance.restarted")),
        },
        "new": _instance_counts(f, f.new),
        "stable": _instance_counts(f, f.stable) if f.stable is not None else None,
        "serving_revision": f.serving_revision,
        "rollback_verified": str(f.rollback.get("verified")) if f.rollback else None,
        "problems": problems,
    }


def _final_analysis(f: Facts) -> JSON | None:
    if not f.verdicts:
        return None
    last = f.verdicts[-1]
    offset = None
    t = _float(last.get("t"))
    if t is not None:
        offset = _round(t - f.started)
    return {
        "label": str(last.get("label") or "analysis"),
        "outcome": str(last.get("outcome") or ""),
        "reason": " ".join(str(last.get("reason") or "").split()),
        "judge": str(last.get("judge") or ""),
        "offset_s": offset,
        "verdicts": len(f.verdicts),
    }


def _post_validation(f: Facts) -> JSON:
    return {**_checks(f.data.postchecks), "final_analysis": _final_analysis(f)}


# Monitoring -----------------------------------------------------------------------------------
def _version_figures(figures: Mapping[str, Any]) -> JSON:
    requests = _int(figures.get("requests"))
    unserved = (_int(figures.get("connect_errors")) or 0) + (_int(figures.get("timeouts")) or 0)
    return {
        "requests": requests,
        "availability_percent": _percent(_float(figures.get("availability"))),
        "unserved": min(unserved, requests) if requests is not None else unserved,
        "connect_errors": _int(figures.get("connect_errors")),
        "timeouts": _int(figures.get("timeouts")),
        "errors_5xx": _int(figures.get("errors_5xx")),
        "responses_4xx": _int(figures.get("responses_4xx")),
        "error_rate_percent": _percent(_float(figures.get("error_rate"))),
        "rps": _round(_float(figures.get("rps"))),
        "average_ms": _ms(_float(figures.get("latency_avg_s"))),
        "p50_ms": _ms(_float(figures.get("latency_p50_s"))),
        "p90_ms": _ms(_float(figures.get("latency_p90_s"))),
        "p95_ms": _ms(_float(figures.get("latency_p95_s"))),
        "p99_ms": _ms(_float(figures.get("latency_p99_s"))),
    }


def _versions(f: Facts) -> list[JSON]:
    out = []
    for revision in (f.stable, f.new):
        if revision is None or str(revision) not in f.versions:
            continue
        version = f.version if revision == f.new else f.stable_version
        out.append(
            {
                "revision": revision,
                "version": version or "",
                "role": "new" if revision == f.new else "previous",
                **_version_figures(f.versions[str(revision)]),
            }
        )
    return out


def _sample_versions(f: Facts) -> list[JSON]:
    """Per-version figures from the last sample, when no summary was written."""
    if not f.samples:
        return []
    out = []
    for key, figures in sorted(f.samples[-1].versions.items()):
        revision = _int(int(key)) if key.isdigit() else None
        requests = _int(figures.get("requests"))
        errors = _int(figures.get("errors"))
        out.append(
            {
                "revision": revision,
                "version": (f.version if revision == f.new else f.stable_version) or "",
                "role": "new" if revision == f.new else "previous",
                "requests": requests,
                "errors_5xx": errors,
                "error_rate_percent": _percent(_float(figures.get("error_rate"))),
                "p95_ms": _round(_float(figures.get("p95_ms"))),
            }
        )
    return out


def _monitoring(f: Facts) -> JSON:
    limits = f.limits
    if f.total.get("requests") is not None:
        total = _version_figures(f.total)
        versions = _versions(f)
        seconds = _round(f.window_s)
        replicas = f.data.replicas
        per_instance = (
            _round(float(total["rps"]) / replicas)
            if total["rps"] is not None and replicas
            else None
        )
        return {
            "availability": {
                "measured": total["availability_percent"] is not None,
                "reason": None if total["availability_percent"] is not None else "no_requests",
                "source": "summary",
                "percent": total["availability_percent"],
                "requests": total["requests"],
                "unserved": total["unserved"],
                "connect_errors": total["connect_errors"],
                "timeouts": total["timeouts"],
                "limit_percent": _percent(limits.min_availability),
                "versions": [
                    _pick(v, "availability_percent", "requests", "unserved") for v in versions
                ],
            },
            "response_time": {
                "measured": total["p95_ms"] is not None,
                "reason": None if total["p95_ms"] is not None else "no_requests",
                "source": "summary",
                **_pick(total, "average_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms"),
                "versions": [_pick(v, "average_ms", "p95_ms", "p99_ms") for v in versions],
            },
            "error_rate": {
                "measured": total["error_rate_percent"] is not None,
                "reason": None if total["error_rate_percent"] is not None else "no_requests",
                "source": "summary",
                "percent": total["error_rate_percent"],
                "errors_5xx": total["errors_5xx"],
                "requests": total["requests"],
                "responses_4xx": total["responses_4xx"],
                "limit_percent": _percent(limits.max_error_rate),
                "limits_source": limits.source,
                "versions": [
                    _pick(v, "error_rate_percent", "errors_5xx", "requests") for v in versions
                ],
            },
            "throughput": {
                "measured": total["rps"] is not None,
                "reason": None if total["rps"] is not None else "no_requests",
                "source": "summary",
                "rps": total["rps"],
                "requests": total["requests"],
                "seconds": seconds,
                "replicas": replicas,
                "per_instance_rps": per_instance,
                "versions": [_pick(v, "rps", "requests") for v in versions],
            },
        }
    return _monitoring_from_samples(f)


def _pick(figures: Mapping[str, Any], *names: str) -> JSON:
    picked = {name: figures.get(name) for name in names}
    for key in ("revision", "version", "role"):
        if key in figures:
            picked[key] = figures[key]
    return picked


def _monitoring_from_samples(f: Facts) -> JSON:
    limits = f.limits
    versions = _sample_versions(f)
    if not versions:
        reason = "no_traffic"
        return {
            "availability": _not_measured(reason, limit_percent=_percent(limits.min_availability)),
            "response_time": _not_measured(reason),
            "error_rate": _not_measured(reason, limit_percent=_percent(limits.max_error_rate)),
            "throughput": _not_measured(reason, replicas=f.data.replicas),
        }
    traffic = f.traffic()
    span = f.samples[-1].t - f.started
    rps = _round(traffic.requests / span) if traffic.requests is not None and span > 0 else None
    return {
        "availability": _not_measured(
            "no_unserved_counts", limit_percent=_percent(limits.min_availability)
        ),
        "response_time": {
            "measured": True,
            "source": "samples",
            "average_ms": None,
            "p95_ms": None,
            "p99_ms": None,
            "versions": [_pick(v, "p95_ms") for v in versions],
        },
        "error_rate": {
            "measured": traffic.error_rate is not None,
            "reason": None if traffic.error_rate is not None else "no_requests",
            "source": "samples",
            "percent": _percent(traffic.error_rate),
            "errors_5xx": traffic.errors,
            "requests": traffic.requests,
            "responses_4xx": None,
            "limit_percent": _percent(limits.max_error_rate),
            "limits_source": limits.source,
            "versions": [
                _pick(v, "error_rate_percent", "errors_5xx", "requests") for v in versions
            ],
        },
        "throughput": {
            "measured": rps is not None,
            "reason": None if rps is not None else "no_requests",
            "source": "samples",
            "rps": rps,
            "requests": traffic.requests,
            "seconds": _round(span),
            "replicas": f.data.replicas,
            "per_instance_rps": _round(rps / f.data.replicas) if rps and f.data.replicas else None,
            "versions": [],
        },
    }


# Performance ----------------------------------------------------------------------------------
def _rule(
    rule_id: str, value: float | None, threshold: float, triggered: bool, **extra: Any
) -> JSON:
    return {
        "id": rule_id,
        "value": value,
        "threshold": threshold,
        "measured": value is not None,
        "triggered": bool(triggered) and value is not None,
        **extra,
    }


def _peak(f: Facts, key: str) -> float | None:
    values = f.host_values(key)
    return _usage(max(values)) if values else None


def _load_per_core(f: Facts) -> float | None:
    ratios = []
    for sample in f.samples:
        if not sample.host:
            continue
        load = _float(sample.host.get("load_1m"))
        cores = _float(sample.host.get("cpu_count"))
        if load is not None and cores:
            ratios.append(load / cores)
    return _round(max(ratios)) if ratios else None


def _new_version_error_rate(f: Facts) -> float | None:
    figures = f.versions.get(str(f.new))
    if figures:
        return _percent(_float(figures.get("error_rate")))
    if f.samples:
        return _percent(_float(f.samples[-1].versions.get(str(f.new), {}).get("error_rate")))
    return None


def _performance(f: Facts) -> JSON:
    cpu_peak = _peak(f, "cpu_percent")
    memory_peak = _peak(f, "memory_percent")
    disk_peak = _peak(f, "disk_percent")
    load = _load_per_core(f)
    latency = _latency_pair(f)
    error_rate = _new_version_error_rate(f)
    unserved = (_int(f.total.get("connect_errors")) or 0) + (_int(f.total.get("timeouts")) or 0)
    restarts, crashes = _restarts(f)
    rules = [
        _rule("cpu_peak", cpu_peak, CPU_PEAK_HIGH, (cpu_peak or 0) >= CPU_PEAK_HIGH),
        _rule("load_per_core", load, LOAD_PER_CORE_HIGH, (load or 0) >= LOAD_PER_CORE_HIGH),
        _rule("memory_peak", memory_peak, MEMORY_PEAK_HIGH, (memory_peak or 0) >= MEMORY_PEAK_HIGH),
        _rule("disk_peak", disk_peak, DISK_PEAK_HIGH, (disk_peak or 0) >= DISK_PEAK_HIGH),
        _rule(
            "latency_regression",
            latency["ratio"],
            LATENCY_REGRESSION_RATIO,
            (latency["ratio"] or 0) > LATENCY_REGRESSION_RATIO,
            new_p95_ms=latency["new_p95_ms"],
            baseline_p95_ms=latency["baseline_p95_ms"],
        ),
        _rule(
            "new_error_rate",
            error_rate,
            ERROR_RATE_WARN_PERCENT,
            (error_rate or 0) >= ERROR_RATE_WARN_PERCENT,
        ),
        _rule(
            "unserved_requests",
            float(unserved) if f.total.get("requests") is not None else None,
            0,
            unserved > 0,
        ),
        # A crash and the restart that follows it are one incident: count the larger of the two.
        _rule("instance_restarts", float(max(restarts, crashes)), 0, max(restarts, crashes) > 0),
    ]
    triggered = [r["id"] for r in rules if r["triggered"]]
    measured = len([r for r in rules if r["measured"]])
    return {
        "bottlenecks": {
            "rules": rules,
            "triggered": triggered,
            "count": len(triggered),
            "measured": measured,
            "total": len(rules),
        },
        "resource_optimization": _resource_advice(f, cpu_peak, memory_peak, disk_peak, latency),
        "scaling": _scaling(f, cpu_peak),
    }


def _instance_memory_peak(f: Facts) -> float | None:
    values = [_float(i.get("memory_bytes")) for i in f.instances_of(f.serving_revision)]
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _resource_advice(
    f: Facts,
    cpu_peak: float | None,
    memory_peak: float | None,
    disk_peak: float | None,
    latency: JSON,
) -> JSON:
    items: list[JSON] = []
    if cpu_peak is not None and cpu_peak >= CPU_PEAK_HIGH:
        items.append({"id": "add_cpu", "value": cpu_peak, "threshold": CPU_PEAK_HIGH})
    if memory_peak is not None and memory_peak >= MEMORY_PEAK_HIGH:
        items.append({"id": "add_memory", "value": memory_peak, "threshold": MEMORY_PEAK_HIGH})
    if disk_peak is not None and disk_peak >= DISK_PEAK_HIGH:
        items.append({"id": "free_disk", "value": disk_peak, "threshold": DISK_PEAK_HIGH})
    if (
        cpu_peak is not None
        and memory_peak is not None
        and cpu_peak < CPU_PEAK_LOW
        and memory_peak < MEMORY_PEAK_LOW
    ):
        items.append(
            {
                "id": "over_provisioned",
                "cpu_peak": cpu_peak,
                "cpu_threshold": CPU_PEAK_LOW,
                "memory_peak": memory_peak,
                "memory_threshold": MEMORY_PEAK_LOW,
            }
        )
    if (latency["ratio"] or 0) > LATENCY_REGRESSION_RATIO:
        items.append(
            {
                "id": "profile_latency",
                "ratio": latency["ratio"],
                "threshold": LATENCY_REGRESSION_RATIO,
                "new_p95_ms": latency["new_p95_ms"],
                "baseline_p95_ms": latency["baseline_p95_ms"],
            }
        )
    memory = _instance_memory_peak(f)
    if memory is not None:
        items.append(
            {
                "id": "memory_limit",
                "instance_peak": _bytes(memory),
                "factor": MEMORY_LIMIT_FACTOR,
                "suggested": _bytes(memory * MEMORY_LIMIT_FACTOR),
            }
        )
    if not any(i["id"] != "memory_limit" for i in items):
        if cpu_peak is None and memory_peak is None:
            items.insert(0, {"id": "not_measured", "reason": _no_host_reason(f)})
        else:
            items.insert(
                0,
                {
                    "id": "within_range",
                    "cpu_peak": cpu_peak,
                    "cpu_low": CPU_PEAK_LOW,
                    "cpu_high": CPU_PEAK_HIGH,
                    "memory_peak": memory_peak,
                    "memory_high": MEMORY_PEAK_HIGH,
                    "disk_peak": disk_peak,
                    "disk_high": DISK_PEAK_HIGH,
                },
            )
    return {"items": items, "count": len(items)}


def _capacity_estimate(f: Facts) -> JSON:
    """rps served, CPU used and a linear estimate of the rps at ``TARGET_CPU_PERCENT``."""
    cpu = f.host_values("cpu_percent")
    traffic = f.traffic()
    rps = _float(f.total.get("rps"))
    if rps is None and traffic.requests is not None and f.samples:
        span = f.samples[-1].t - f.started
        rps = traffic.requests / span if span > 0 else None
    cpu_average = sum(cpu) / len(cpu) if cpu else None
    capacity = None
    headroom = None
    if rps and cpu_average:
        capacity = rps * TARGET_CPU_PERCENT / cpu_average
        headroom = capacity / rps
    replicas = f.data.replicas
    return {
        "replicas": replicas,
        "rps": _round(rps),
        "per_instance_rps": _round(rps / replicas) if rps is not None and replicas else None,
        "cpu_average_percent": _usage(cpu_average),
        "target_cpu_percent": TARGET_CPU_PERCENT,
        "estimated_capacity_rps": _round(capacity),
        "headroom_factor": _round(headroom),
    }


def _scaling(f: Facts, cpu_peak: float | None) -> JSON:
    estimate = _capacity_estimate(f)
    replicas = f.data.replicas
    if cpu_peak is None:
        return {
            **estimate,
            "measured": False,
            "reason": _no_host_reason(f),
            "recommendation": "not_measured",
        }
    needed = max(1, math.ceil(replicas * cpu_peak / TARGET_CPU_PERCENT)) if replicas else 1
    if cpu_peak > TARGET_CPU_PERCENT:
        recommendation = "scale_out"
    elif replicas > MIN_REPLICAS and needed < replicas and cpu_peak < TARGET_CPU_PERCENT / 2:
        recommendation = "scale_in"
        needed = max(MIN_REPLICAS, needed)
    else:
        recommendation = "keep"
        needed = replicas
    return {
        **estimate,
        "measured": True,
        "cpu_peak_percent": cpu_peak,
        "scale_in_below_percent": TARGET_CPU_PERCENT / 2,
        "min_replicas": MIN_REPLICAS,
        "recommendation": recommendation,
        "recommended_replicas": needed,
    }


# Events ---------------------------------------------------------------------------------------
def _timeline(f: Facts) -> JSON:
    shown = [e for e in f.events if e.kind != "rollout.sample"]
    kinds = Counter(e.kind for e in shown)
    # The steps are listed under Deployment Execution: the timeline holds everything else.
    timeline = [_step(e) for e in shown if e.kind not in _STEP_KINDS]
    omitted = 0
    if len(timeline) > _TIMELINE_LIMIT:
        half = _TIMELINE_LIMIT // 2
        omitted = len(timeline) - _TIMELINE_LIMIT
        timeline = [*timeline[:half], *timeline[-half:]]
    return {
        "count": len(shown),
        "samples": len(f.events) - len(shown),
        "by_kind": dict(kinds.most_common()),
        "timeline": timeline,
        "omitted": omitted,
        "omitted_after": _TIMELINE_LIMIT // 2 if omitted else None,
    }


def _alert_text(alert: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = alert.get(key)
        if value not in (None, ""):
            return " ".join(str(value).split())
    return ""


def _alerts(alerts: Sequence[Mapping[str, Any]], f: Facts) -> JSON:
    items = []
    for alert in alerts:
        moment = _epoch(alert.get("ts") or alert.get("fired_at") or alert.get("started_at"))
        items.append(
            {
                "name": _alert_text(alert, "name", "rule", "title", "kind") or "alert",
                "severity": _alert_text(alert, "severity", "level"),
                "message": _alert_text(alert, "message", "summary", "detail", "description"),
                "offset_s": _round(moment - f.started) if moment is not None else None,
                "raw": _jsonable(alert),
            }
        )
    return {"count": len(items), "alerts": items}


def _incident(f: Facts, status: JSON) -> JSON:
    rollback_ms = _ms(_float(f.timings.get("rollback_s")))
    apply_ms = _ms(_float(f.timings.get("rollback_apply_s")))
    restored = f.of_kind("release.restored")
    if f.rollback is not None or f.status == "rolled_back":
        rb = f.rollback or {}
        started = _float(rb.get("started"))
        started_events = f.of_kind("rollback.started", "rollout.abort")
        offset = None
        if started is not None:
            offset = started - f.started
        elif started_events and started_events[0].offset is not None:
            offset = started_events[0].offset
        return {
            "incident": True,
            "kind": "manual_abort" if status["rollback"] == "manual" else "automatic_rollback",
            "reason": str(rb.get("reason") or f.reason),
            "started_offset_s": _round(offset),
            "rollback_ms": rollback_ms,
            "rollback_apply_ms": apply_ms,
            "target_s": ROLLBACK_TARGET_S,
            "within_target": rollback_ms is not None and rollback_ms < ROLLBACK_TARGET_S * 1000,
            "restored_revision": f.stable,
            "restored": _release_ref(f.stable, f.stable_version),
            "verified": str(rb.get("verified")) if rb.get("verified") else None,
        }
    if restored or f.operation == "rollback":
        seconds = _float(restored[0].data.get("rollback_s")) if restored else None
        took = _ms(seconds)
        return {
            "incident": True,
            "kind": "manual_rollback",
            "reason": f.reason,
            "rollback_ms": took,
            "target_s": ROLLBACK_TARGET_S,
            "within_target": took is not None and took < ROLLBACK_TARGET_S * 1000,
            "restored_revision": f.new,
            "restored": _release_ref(f.new, f.version),
        }
    if f.status == "failed" and f.operation == "drill":
        return {"incident": False, "kind": "drill_failed", "reason": f.reason}
    if f.operation in DATA_OPERATIONS:
        # A failed backup, restore or removal is no outage: the live service kept serving.
        replaced = bool(_operation(f).get("replaced_live"))
        return {
            "incident": False,
            "kind": f"{f.operation}_failed" if f.status == "failed" else f.operation,
            "replaced_live": replaced,
            "reason": f.reason,
        }
    if f.status == "failed":
        return {"incident": True, "kind": "failed", "reason": f.reason, "restored_revision": None}
    if f.operation == "drill":
        return {"incident": False, "kind": "drill"}
    return {"incident": False, "kind": None}


def _failing_measurements(verdict: Mapping[str, Any]) -> list[JSON]:
    out = []
    for measurement in verdict.get("measurements") or ():
        m = _mapping(measurement)
        if m.get("outcome") == "fail":
            out.append(
                {"name": str(m.get("name")), "detail": " ".join(str(m.get("detail")).split())}
            )
    return out


def _weight_at(f: Facts, moment: float | None) -> int | None:
    """The canary weight in force at ``moment`` (from ``canary.weight`` events)."""
    weight = None
    for event in f.of_kind("canary.weight"):
        if moment is None or event.t is None or event.t <= moment:
            weight = _int(event.data.get("weight"))
    return weight


def _lessons(f: Facts, status: JSON) -> JSON:
    items: list[JSON] = []
    traffic = f.traffic()
    exposure = None
    if traffic.requests and traffic.new_requests is not None:
        exposure = _percent(traffic.new_requests / traffic.requests)
    if f.rollback is not None:
        verdict = _mapping(f.rollback.get("verdict"))
        started = _float(f.rollback.get("started"))
        if verdict:
            items.append(
                {
                    "id": "rollback_by_analysis",
                    "failed": _failing_measurements(verdict),
                    "weight_percent": _weight_at(f, started),
                    "canary_requests": _int(verdict.get("canary_requests")),
                    "exposure_percent": exposure,
                    "new_requests": traffic.new_requests,
                }
            )
        elif status["rollback"] == "manual":
            items.append({"id": "rollback_by_user", "reason": str(f.rollback.get("reason") or "")})
        else:
            items.append(
                {
                    "id": "rollback_by_health",
                    "reason": str(f.rollback.get("reason") or f.reason),
                    "exposure_percent": exposure,
                    "new_requests": traffic.new_requests,
                }
            )
    elif f.status == "failed":
        items.append({"id": "failed", "reason": f.reason})
    if f.operation in DATA_OPERATIONS:
        items.extend(_operation_lessons(f))
        return {"items": items, "count": len(items)}
    if f.operation == "drill":
        drill = _mapping(f.state.get("drill"))
        for objective in ("rto", "rpo"):
            items.append(
                {
                    "id": f"drill_{objective}",
                    "achieved_s": _float(drill.get(f"{objective}_s")),
                    "target_s": _float(drill.get(f"{objective}_target_s")),
                }
            )
        return {"items": items, "count": len(items)}
    analyses = _analysis_outcomes(f)
    passed = [a for a in analyses.values() if a["outcome"] == "pass"]
    inconclusive = [a for a in analyses.values() if a["outcome"] == "inconclusive"]
    if passed and f.rollback is None:
        latency = _latency_pair(f)
        items.append(
            {
                "id": "analyses_passed",
                "count": len(passed),
                "new_p95_ms": latency["new_p95_ms"],
                "baseline_p95_ms": latency["baseline_p95_ms"],
                "ratio": latency["ratio"],
            }
        )
    for analysis in inconclusive:
        items.append(
            {
                "id": "analysis_inconclusive",
                "label": analysis["label"],
                "requests_needed": analysis.get("requests_needed"),
                "canary_requests": analysis.get("canary_requests"),
            }
        )
    for analysis in analyses.values():
        if analysis["outcome"] == "skipped":
            items.append({"id": "analysis_skipped", "label": analysis["label"]})
    restarts, crashes = _restarts(f)
    if restarts or crashes:
        items.append({"id": "instance_restarts", "restarts": restarts, "crashes": crashes})
    if f.stable is None and f.status == "succeeded" and f.operation != "rollback":
        items.append({"id": "first_baseline", "recorded": bool(f.state.get("recorded"))})
    if not items:
        items.append({"id": "nothing_notable"})
    return {"items": items, "count": len(items)}


def _operation_lessons(f: Facts) -> list[JSON]:
    """What an operation on the data measured, as the baseline for the next one."""
    op = _operation(f)
    items: list[JSON] = []
    if f.operation == "backup":
        for backup in (_mapping(b) for b in op.get("backups") or ()):
            if backup.get("status") != "succeeded":
                continue
            size = _int(backup.get("size_bytes")) or 0
            seconds = _float(backup.get("duration_s"))
            previous = _int(backup.get("previous_size_bytes"))
            items.append(
                {
                    "id": "backup_measured",
                    "target": str(backup.get("target") or ""),
                    "backup_id": _int(backup.get("backup_id")),
                    "size": _bytes(size),
                    "seconds": _round(seconds),
                    "rate": _rate(size / seconds) if seconds else None,
                    "previous_size": _bytes(previous),
                    "growth_percent": _percent((size - previous) / previous) if previous else None,
                }
            )
    elif f.operation == "restore" and op.get("bytes_written") is not None:
        seconds = _float(op.get("duration_s"))
        written = _int(op.get("bytes_written")) or 0
        items.append(
            {
                "id": "restore_measured",
                "backup_id": _int(op.get("backup_id")),
                "target": str(op.get("target") or ""),
                "size": _bytes(written),
                "seconds": _round(seconds),
                "rate": _rate(written / seconds) if seconds else None,
                "data_age_s": _round(_float(op.get("data_age_s"))),
            }
        )
    elif f.operation == "retention":
        items.append(
            {
                "id": "retention_measured",
                "kept": _int(op.get("kept")) or 0,
                "removed": _int(op.get("removed")) or 0,
                "removed_size": _bytes(_int(op.get("removed_bytes")) or 0),
                "freed": _bytes(_int(op.get("freed_bytes")) or 0),
                "prune_s": _round(_float(op.get("prune_s"))),
            }
        )
    return items


# Recommendations ------------------------------------------------------------------------------
def _triggered(sections: JSON, rule_id: str) -> JSON | None:
    for rule in sections["performance"]["bottlenecks"]["rules"]:
        if rule["id"] == rule_id and rule["triggered"]:
            return rule  # type: ignore[no-any-return]
    return None


def _recommendations(f: Facts, sections: JSON) -> JSON:
    health = sections["execution"]["health_checks"]
    serving = health["new"] if f.serving_revision == f.new else health["stable"]
    alerts = sections["events"]["alerts"]
    urgent: list[JSON] = []
    if f.status == "rolled_back":
        manual = sections["deployment_summary"]["deployment_status"]["rollback"] == "manual"
        urgent.append(
            {
                "id": "review_abort" if manual else "fix_release",
                "revision": f.new,
                "version": f.version,
                "reason": f.reason,
            }
        )
    elif f.status == "failed" and f.operation == "drill":
        urgent.append({"id": "drill_failed", "reason": f.reason})
    elif f.status == "failed" and f.operation in DATA_OPERATIONS:
        urgent.append({"id": f"{f.operation}_failed", "reason": f.reason})
    elif f.status == "failed":
        urgent.append({"id": "service_down", "revision": f.new, "reason": f.reason})
    # A drill's copy is stopped on purpose when the drill ends: that is no missing instance.
    drilled = f.operation == "drill"
    if not drilled and serving is not None and serving["healthy"] < serving["expected"]:
        urgent.append(
            {
                "id": "restore_instances",
                "revision": serving["revision"],
                "healthy": serving["healthy"],
                "expected": serving["expected"],
            }
        )
    for check in f.data.postchecks:
        if check.get("status") == "fail":
            urgent.append({"id": "postcheck_failed", "name": str(check.get("name"))})
    if alerts["count"]:
        urgent.append({"id": "review_alerts", "count": alerts["count"]})
    disk = _triggered(sections, "disk_peak")
    if disk is not None:
        urgent.append({"id": "free_disk", "value": disk["value"], "threshold": disk["threshold"]})
    if not urgent:
        urgent.append({"id": "none"})

    improvements: list[JSON] = []
    for rule_id in ("latency_regression", "new_error_rate", "cpu_peak", "memory_peak"):
        rule = _triggered(sections, rule_id)
        if rule is not None:
            improvements.append(
                {"id": rule_id, "value": rule["value"], "threshold": rule["threshold"]}
            )
    incident = sections["events"]["incident_response"]
    if incident.get("rollback_ms") is not None and not incident.get("within_target"):
        improvements.append(
            {
                "id": "slow_rollback",
                "rollback_ms": incident["rollback_ms"],
                "target_s": incident["target_s"],
            }
        )
    for item in sections["events"]["lessons_learned"]["items"]:
        if item["id"] == "analysis_inconclusive":
            improvements.append(
                {
                    "id": "more_analysis_traffic",
                    "label": item["label"],
                    "requests_needed": item["requests_needed"],
                }
            )
    if not improvements:
        improvements.append({"id": "none"})

    preventive: list[JSON] = []
    if not f.data.prechecks:
        preventive.append({"id": "configure_prechecks"})
    if not f.data.postchecks:
        preventive.append({"id": "configure_postchecks"})
    latency = sections["infrastructure"]["health_score"]
    if any(m["name"] == "latency" and m["reason"] == "no_latency" for m in latency["missing"]):
        preventive.append({"id": "record_baseline"})
    if f.rollback is not None and f.rollback.get("verdict"):
        preventive.append({"id": "reproduce_in_test", "revision": f.new})
    restarts = _triggered(sections, "instance_restarts")
    if restarts is not None:
        preventive.append({"id": "check_restarts", "value": restarts["value"]})
    if not f.data.alerts and f.status in ("rolled_back", "failed"):
        preventive.append({"id": "alert_rules"})
    op = _operation(f)
    for key in ("unverified", "unscheduled", "no_retention"):
        names = [str(name) for name in op.get(key) or ()]
        if names:
            preventive.append({"id": f"backups_{key}", "names": ", ".join(names)})
    if not preventive:
        preventive.append({"id": "keep_guards"})

    scaling = sections["performance"]["scaling"]
    storage = sections["infrastructure"]["resource_usage"]["storage"]
    memory = sections["infrastructure"]["resource_usage"]["memory"]
    host_disk = storage.get("scope") == "host"  # the backups' file system is shown apart
    capacity = {
        "measured": bool(scaling.get("measured")),
        "reason": scaling.get("reason"),
        "replicas": scaling["replicas"],
        "rps": scaling["rps"],
        "per_instance_rps": scaling["per_instance_rps"],
        "cpu_average_percent": scaling["cpu_average_percent"],
        "target_cpu_percent": scaling["target_cpu_percent"],
        "estimated_capacity_rps": scaling["estimated_capacity_rps"],
        "headroom_factor": scaling["headroom_factor"],
        "recommended_replicas": scaling.get("recommended_replicas"),
        "disk_free": storage.get("free_min") if host_disk else None,
        "disk_peak_percent": storage.get("peak_percent") if host_disk else None,
        "memory_peak_percent": memory.get("peak_percent"),
        "memory_total": memory.get("total"),
        "backup_storage": _backup_storage(op),
    }
    return {
        "urgent_actions": {"items": urgent, "count": len(urgent)},
        "improvements": {"items": improvements, "count": len(improvements)},
        "preventive_actions": {"items": preventive, "count": len(preventive)},
        "capacity_planning": capacity,
    }


def _backup_storage(op: Mapping[str, Any]) -> JSON | None:
    """Where backups are kept and how much room is left there (operations on the data)."""
    storage = _mapping(op.get("storage"))
    total = _int(storage.get("total_bytes"))
    free = _int(storage.get("free_bytes"))
    if not storage or total is None or free is None:
        return None
    return {
        "path": str(storage.get("path") or ""),
        "free": _bytes(free),
        "total": _bytes(total),
        "used_percent": _usage(100 * (total - free) / total) if total else None,
        "service_backups": _bytes(_int(storage.get("service_bytes"))),
        "service_backup_count": _int(storage.get("service_backups")),
    }


def _next_actions(f: Facts, sections: JSON) -> JSON:
    extra: list[JSON] = []
    for item in sections["recommendations"]["urgent_actions"]["items"]:
        if item["id"] != "none":
            extra.append(item)
    for item in sections["recommendations"]["preventive_actions"]["items"]:
        if item["id"] in ("configure_prechecks", "configure_postchecks"):
            extra.append(item)
    return {
        "standard": [
            "monitor_key_metrics",
            "performance_optimization",
            "update_operations_docs",
            "plan_next_deployment",
        ],
        "extra": extra,
    }
