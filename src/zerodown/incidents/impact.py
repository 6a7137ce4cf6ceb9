"""What an incident's records say about it: when it began, when each stage happened, its impact.

Two sources, both measured by zerodown itself, never estimated:

- **A release that the engine rolled back** (``rollback_facts``). The event log and the
  release's state tell when the new revision first took traffic (the first canary weight above
  zero, the blue-green switch, or the first traffic sample that counted requests for it), when
  the judge or the health check decided to roll back, when traffic was back on the stable
  revision and when the stable revision was verified healthy. The impact is what the proxy
  counted for the rolled-back revision over the rollout (the release summary), else its last
  traffic sample.
- **Traffic counters around an incident** (``impact_between``): the data plane's counters
  saved when the incident was detected and read again when it recovered; their difference is
  what the whole service served in between (requests, 5xx, unserved requests, p95 from the
  latency histogram).

Figures that cannot be known say so: ``{"measured": False, "reason": ...}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from zerodown.store.base import EventRecord, ReleaseRecord, ReleaseStatus
from zerodown.traffic.base import ServiceMetrics

__all__ = ["RollbackFacts", "impact_between", "not_measured", "rollback_facts"]


def not_measured(reason: str, **known: Any) -> dict[str, Any]:
    """Impact figures that could not be measured, and why."""
    return {"measured": False, "reason": reason, **known}


@dataclass(frozen=True, kw_only=True)
class RollbackFacts:
    """An automatic rollback of one release, as its records tell it (epoch seconds)."""

    revision: int
    version: str
    strategy: str
    stable: int | None
    reason: str
    detector: str  # who detected it: "zerodown judge (thresholds)", "zerodown health check" ...
    verdict: Mapping[str, Any] | None
    started_at: float
    onset: str  # how ``started_at`` was found, in words
    detected_at: float
    mitigated_at: float | None
    mitigation: str | None
    recovered_at: float | None
    verified: str | None
    impact: dict[str, Any] = field(default_factory=dict)


def rollback_facts(release: ReleaseRecord, events: Sequence[EventRecord]) -> RollbackFacts | None:
    """The facts of ``release`` if the engine rolled it back by itself (its judge, health check
    or post-deployment validation decided), else None: a rollout that succeeded, failed
    without a release to go back to, or was aborted or rolled back by a person."""
    if release.status != ReleaseStatus.ROLLED_BACK:
        return None
    own = [e for e in events if e.revision == release.revision]
    kinds = {e.kind for e in own}
    if "rollback.started" not in kinds or "rollout.abort" in kinds:
        return None
    state = release.state
    rollback = state.get("rollback") if isinstance(state.get("rollback"), Mapping) else None
    rollback = rollback or {}
    reason = str(rollback.get("reason") or release.reason)
    verdict = rollback.get("verdict") if isinstance(rollback.get("verdict"), Mapping) else None
    revision = int(release.revision)
    stable = _int(state.get("stable"))

    started_event = next(e for e in own if e.kind == "rollback.started")
    detected_at = _float(rollback.get("started")) or started_event.ts.timestamp()
    started_at, onset = _onset(release, own, revision, detected_at)

    # Mitigated when the proxy applied the routing table that sends everything back to the
    # stable revision (``traffic.rollback``), else when the engine decided to switch.
    applied = next((e for e in own if e.kind == "traffic.rollback"), None)
    switched = next((e for e in own if e.kind == "rollback.switched"), None)
    moment = applied or switched
    mitigated_at = moment.ts.timestamp() if moment is not None else None
    mitigation = "; ".join(e.message for e in (switched, applied) if e is not None) or None
    finished = _float(state.get("finished"))
    if finished is None and release.finished_at is not None:
        finished = release.finished_at.timestamp()
    # Times only move forward: events are written when a tick ends, a hair after the decision.
    if mitigated_at is not None:
        mitigated_at = max(mitigated_at, detected_at)
    recovered_at = None
    if finished is not None:
        recovered_at = max(finished, mitigated_at or detected_at)
    return RollbackFacts(
        revision=revision,
        version=str(release.version),
        strategy=release.strategy,
        stable=stable,
        reason=reason,
        detector=_detector(reason, verdict),
        verdict=verdict,
        started_at=min(started_at, detected_at),
        onset=onset,
        detected_at=detected_at,
        mitigated_at=mitigated_at,
        mitigation=mitigation,
        recovered_at=recovered_at,
        verified=str(rollback["verified"]) if rollback.get("verified") else None,
        impact=_release_impact(release, own, revision, started_at, recovered_at),
    )


def _detector(reason: str, verdict: Mapping[str, Any] | None) -> str:
    if verdict is not None:
        return f"zerodown judge ({verdict.get('judge') or 'analysis'})"
    if reason.startswith("health check"):
        return "zerodown health check"
    if reason.startswith("post-deployment validation"):
        return "zerodown post-deployment validation"
    return "zerodown rollout"


def _onset(
    release: ReleaseRecord, events: Sequence[EventRecord], revision: int, detected_at: float
) -> tuple[float, str]:
    """When the new revision first took traffic, and how that is known."""
    candidates: list[tuple[float, str]] = []
    for event in events:
        if event.kind == "canary.weight" and (_int(event.data.get("weight")) or 0) > 0:
            candidates.append((event.ts.timestamp(), f"canary weight {event.data.get('weight')} %"))
        elif event.kind == "bluegreen.switched":
            candidates.append((event.ts.timestamp(), "blue-green switch to the new revision"))
        elif event.kind == "rollout.sample":
            figures = _version_figures(event, revision)
            if (_int(figures.get("requests")) or 0) > 0:
                moment = _float(event.data.get("t")) or event.ts.timestamp()
                candidates.append((moment, "first traffic sample counting its requests"))
    if candidates:
        return min(candidates)
    started = _float(release.state.get("started")) or release.created_at.timestamp()
    return min(started, detected_at), "rollout start (the new revision never took traffic)"


def _release_impact(
    release: ReleaseRecord,
    events: Sequence[EventRecord],
    revision: int,
    started_at: float,
    recovered_at: float | None,
) -> dict[str, Any]:
    window = _window(started_at, recovered_at)
    scope = f"the rolled-back revision {revision} ({release.version})"
    summary = release.state.get("summary")
    if isinstance(summary, Mapping) and isinstance(summary.get("versions"), Mapping):
        figures = summary["versions"].get(str(revision))
        raw_total = summary.get("total")
        total: Mapping[str, Any] = raw_total if isinstance(raw_total, Mapping) else {}
        if isinstance(figures, Mapping):
            requests = _int(figures.get("requests"))
            service_requests = _int(total.get("requests"))
            unserved = (_int(figures.get("connect_errors")) or 0) + (
                _int(figures.get("timeouts")) or 0
            )
            p95 = _float(figures.get("latency_p95_s"))
            return {
                "measured": True,
                "source": "proxy counters over the rollout (release summary)",
                "scope": scope,
                **window,
                "requests": requests,
                "errors": _int(figures.get("errors_5xx")),
                "error_rate": _float(figures.get("error_rate")),
                "unserved": min(unserved, requests) if requests is not None else unserved,
                "p95_ms": p95 * 1000 if p95 is not None else None,
                "service_requests": service_requests,
                "exposure": (
                    requests / service_requests
                    if requests is not None and service_requests
                    else None
                ),
            }
    samples = [e for e in events if e.kind == "rollout.sample" and _version_figures(e, revision)]
    if samples:
        last = samples[-1]
        figures = _version_figures(last, revision)
        versions = last.data.get("versions")
        service_requests = None
        if isinstance(versions, Mapping):
            service_requests = sum(
                _int(v.get("requests")) or 0 for v in versions.values() if isinstance(v, Mapping)
            )
        requests = _int(figures.get("requests"))
        return {
            "measured": True,
            "source": "the last traffic sample of the rollout",
            "scope": scope,
            **window,
            "requests": requests,
            "errors": _int(figures.get("errors")),
            "error_rate": _float(figures.get("error_rate")),
            "unserved": None,
            "p95_ms": _float(figures.get("p95_ms")),
            "service_requests": service_requests,
            "exposure": (
                requests / service_requests if requests is not None and service_requests else None
            ),
        }
    return not_measured(
        "no traffic figures were recorded for this rollout (the controller ran without the "
        "data plane, or the release ended before its first sample)",
        scope=scope,
        **window,
    )


def impact_between(
    before: Mapping[str, Any] | None,
    after: ServiceMetrics | None,
    *,
    detected_at: float,
    recovered_at: float,
) -> dict[str, Any]:
    """What the whole service served between two snapshots of the data plane's counters."""
    window = _window(detected_at, recovered_at)
    scope = "the whole service between detection and recovery"
    if before is None:
        return not_measured(
            "the data plane's counters were not available when the incident was detected",
            scope=scope,
            **window,
        )
    if after is None:
        return not_measured(
            "the data plane's counters were not available when the incident recovered",
            scope=scope,
            **window,
        )
    start = ServiceMetrics.from_dict(before)
    for name, group in start.groups.items():
        current = after.groups.get(name)
        if current is not None and current.requests < group.requests:
            return not_measured(
                "the data plane restarted during the incident: its counters started again",
                scope=scope,
                **window,
            )
    delta = after.delta(start).total
    requests = delta.requests
    p95 = delta.latency.quantile(0.95)
    return {
        "measured": True,
        "source": "proxy counters at detection and at recovery",
        "scope": scope,
        **window,
        "requests": requests,
        "errors": delta.errors,
        "error_rate": delta.error_rate,
        "unserved": min(delta.connect_errors + delta.timeouts, requests),
        "p95_ms": p95 * 1000 if p95 is not None else None,
        "service_requests": requests,
        "exposure": None,
    }


def _window(start: float, end: float | None) -> dict[str, Any]:
    return {
        "from": _iso(start),
        "to": _iso(end) if end is not None else None,
        "seconds": max(0.0, end - start) if end is not None else None,
    }


def _version_figures(event: EventRecord, revision: int) -> Mapping[str, Any]:
    versions = event.data.get("versions")
    if not isinstance(versions, Mapping):
        return {}
    figures = versions.get(str(revision))
    return figures if isinstance(figures, Mapping) else {}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if math.isfinite(value) else None
