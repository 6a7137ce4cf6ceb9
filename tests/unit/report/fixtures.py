"""Hand-built report inputs shaped like what the engine records, one per kind of operation.

Each builder returns a ``ReportInput`` the way the service layer would fill it from the store:
a succeeded canary, a canary rolled back by its analysis, a blue-green rolled back after the
switch (with the switch and rollback timings), a rolling update with an instance restart
(partial success), an ``up`` with no previous release and no samples, and a canary aborted by
hand. Times start at 2024-05-01T12:00:00Z; events and samples follow the engine's shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from zerodown.report import ReportInput

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
EPOCH0 = T0.timestamp()

GIB = 1024**3
MIB = 1024**2


def at(offset: float) -> str:
    return (T0 + timedelta(seconds=offset)).isoformat().replace("+00:00", "Z")


class Recorder:
    """Events of one release, oldest first, with the engine's kinds and data."""

    def __init__(self, revision: int) -> None:
        self.revision = revision
        self.events: list[dict[str, Any]] = []

    def add(self, offset: float, kind: str, message: str, **data: Any) -> None:
        self.events.append(
            {
                "id": len(self.events) + 1,
                "ts": at(offset),
                "kind": kind,
                "message": message,
                "data": data,
            }
        )

    def sample(self, offset: float, versions: dict[str, dict[str, Any]], index: int) -> None:
        self.add(
            offset,
            "rollout.sample",
            "traffic and resources sample",
            t=EPOCH0 + offset,
            versions=versions,
            host=host(index),
        )


def host(index: int, *, cpu: float = 22.0, first: bool = False) -> dict[str, Any]:
    """A host sample like ``HostSampler.sample()``; the first has no bandwidth yet."""
    return {
        "cpu_percent": cpu + 3.5 * (index % 4),
        "cpu_count": 8,
        "load_1m": 1.2 + 0.1 * index,
        "memory_percent": 41.0 + 0.4 * index,
        "memory_used_bytes": int(6.5 * GIB) + index * 20 * MIB,
        "memory_total_bytes": 16 * GIB,
        "disk_percent": 63.2,
        "disk_free_bytes": 180 * GIB - index * MIB,
        "net_sent_bytes_per_s": None if index == 0 else 250_000.0 + 10_000 * index,
        "net_recv_bytes_per_s": None if index == 0 else 180_000.0 + 8_000 * index,
    }


def figures(
    *,
    requests: int,
    errors: int,
    seconds: float,
    p95: float,
    unserved: int = 0,
    client: int = 0,
) -> dict[str, Any]:
    """A per-version figures dict as the engine's ``_summary`` writes it."""
    return {
        "requests": requests,
        "errors_5xx": errors,
        "responses_4xx": client,
        "error_rate": errors / requests if requests else None,
        "availability": (requests - unserved) / requests if requests else None,
        "connect_errors": unserved,
        "timeouts": 0,
        "rps": requests / seconds,
        "latency_avg_s": p95 * 0.45,
        "latency_p50_s": p95 * 0.4,
        "latency_p90_s": p95 * 0.85,
        "latency_p95_s": p95,
        "latency_p99_s": p95 * 1.6,
    }


def summary(seconds: float, versions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    total_requests = sum(v["requests"] for v in versions.values())
    total_errors = sum(v["errors_5xx"] for v in versions.values())
    unserved = sum(v["connect_errors"] for v in versions.values())
    p95 = max(v["latency_p95_s"] for v in versions.values())
    return {
        "seconds": seconds,
        "total": figures(
            requests=total_requests,
            errors=total_errors,
            seconds=seconds,
            p95=p95,
            unserved=unserved,
            client=sum(v["responses_4xx"] for v in versions.values()),
        ),
        "versions": versions,
    }


def measurement(name: str, value: float, limit: float, outcome: str, detail: str) -> dict[str, Any]:
    return {
        "name": name,
        "value": value,
        "limit": limit,
        "baseline": None,
        "outcome": outcome,
        "detail": detail,
    }


def verdict(
    t: float, label: str, outcome: str, reason: str, *, canary: int, needed: int = 0, **rates: Any
) -> dict[str, Any]:
    measurements = [
        measurement(
            "error_rate",
            rates.get("error_rate", 0.002),
            0.05,
            rates.get("error_outcome", "pass"),
            rates.get("error_detail", "error rate 0.2 % ≤ 5 %"),
        ),
        measurement("availability", 1.0, 0.99, "pass", "availability 100 % ≥ 99 %"),
    ]
    return {
        "t": EPOCH0 + t,
        "label": label,
        "outcome": outcome,
        "reason": reason,
        "judge": "thresholds",
        "measurements": measurements,
        "canary_requests": canary,
        "baseline_requests": canary * 4,
        "requests_needed": needed,
    }


def instance(
    service: str, revision: int, slot: int, *, state: str = "running", restarts: int = 0
) -> dict[str, Any]:
    return {
        "id": f"{service}-r{revision}-{slot}-a1b2c3",
        "revision": revision,
        "state": state,
        "restarts": restarts,
        "cpu_percent": 3.2 + slot,
        "memory_bytes": 48 * MIB + slot * 3 * MIB,
    }


def previous_release(revision: int, version: str, strategy: str = "canary") -> dict[str, Any]:
    return {
        "revision": revision,
        "version": version,
        "strategy": strategy,
        "status": "superseded",
        "reason": f"replaced by revision {revision + 1}",
        "created_at": at(-86_400),
        "finished_at": at(-86_000),
        "state": {"recorded": {"requests": 5000, "error_rate": 0.001, "p95": 0.021}},
    }


def checks_pre() -> list[dict[str, Any]]:
    return [
        {
            "name": "capacity",
            "status": "pass",
            "summary": "2 more instances fit: 5.8 cores and 9.1 GiB free",
            "figures": {"cpu_free_cores": 5.8, "memory_free_gib": 9.1, "needed_instances": 2},
        },
        {
            "name": "dependencies",
            "status": "pass",
            "summary": "postgres:5432 answered in 1.2 ms",
            "figures": {"latency_ms": 1.2},
        },
        {
            "name": "backup",
            "status": "warn",
            "summary": "last backup is 26 h old (limit 24 h)",
            "figures": {"age_hours": 26, "limit_hours": 24},
        },
    ]


def canary_succeeded() -> ReportInput:
    service = "checkout"
    rec = Recorder(3)
    rec.add(0, "release.created", "revision 3 (v1.5.0) created: canary")
    rec.add(
        0.4,
        "instance.started",
        "started checkout-r3-0-a1b2c3 (pid 4101) on 127.0.0.1:41001",
        instance="checkout-r3-0-a1b2c3",
        pid=4101,
        port=41001,
        slot=0,
    )
    rec.add(
        0.5,
        "instance.started",
        "started checkout-r3-1-a1b2c3 (pid 4102) on 127.0.0.1:41002",
        instance="checkout-r3-1-a1b2c3",
        pid=4102,
        port=41002,
        slot=1,
    )
    rec.add(
        2.9, "instance.healthy", "checkout-r3-0-a1b2c3 is healthy", instance="checkout-r3-0-a1b2c3"
    )
    rec.add(
        3.1, "instance.healthy", "checkout-r3-1-a1b2c3 is healthy", instance="checkout-r3-1-a1b2c3"
    )
    rec.add(3.2, "canary.ready", "2 canary instance(s) healthy; running the steps")
    verdicts = []
    offset = 3.2
    cumulative = {"2": [0, 0], "3": [0, 0]}
    sample_index = 0
    for step, weight in enumerate((5, 25, 50)):
        rec.add(
            offset,
            "canary.weight",
            f"step {2 * step + 1}/7: canary weight {weight} %",
            step=2 * step,
            weight=weight,
        )
        label = f"canary analysis {step + 1}"
        rec.add(offset, "analysis.started", f"{label}: measuring (judge thresholds)")
        for tick in range(2):
            offset += 5
            new = 40 * weight // 5 * (tick + 1)
            cumulative["3"][0] += new
            cumulative["2"][0] += new * (100 - weight) // weight
            cumulative["3"][1] += tick
            rec.sample(
                offset,
                {
                    "2": {
                        "requests": cumulative["2"][0],
                        "errors": cumulative["2"][1],
                        "error_rate": cumulative["2"][1] / cumulative["2"][0],
                        "p95_ms": 21.4,
                        "weight": 100 - weight,
                        "ready": 2,
                    },
                    "3": {
                        "requests": cumulative["3"][0],
                        "errors": cumulative["3"][1],
                        "error_rate": cumulative["3"][1] / cumulative["3"][0],
                        "p95_ms": 23.0 + step,
                        "weight": weight,
                        "ready": 2,
                    },
                },
                sample_index,
            )
            sample_index += 1
            if tick == 0:
                v = verdict(
                    offset,
                    label,
                    "inconclusive",
                    "error rate 0 % so far; 60 more canary requests needed",
                    canary=40,
                    needed=60,
                )
                rec.add(
                    offset, "analysis.verdict", f"{label}: inconclusive: {v['reason']}", verdict=v
                )
            else:
                v = verdict(
                    offset,
                    label,
                    "pass",
                    "error rate 0.2 % ≤ 5 %, availability 100 % ≥ 99 %, p95 23 ms ≤ 2.0 × 21.4 ms",
                    canary=120,
                )
                rec.add(offset, "analysis.verdict", f"{label}: pass: {v['reason']}", verdict=v)
                rec.add(offset, "analysis.passed", f"{label} passed: {v['reason']}", verdict=v)
            verdicts.append(v)
    rec.add(offset + 0.1, "canary.weight", "step 7/7: canary weight 100 %", step=6, weight=100)
    rec.add(
        offset + 0.6,
        "release.succeeded",
        "revision 3 (v1.5.0) succeeded: all steps done",
        status="succeeded",
        reason="all steps done",
        duration_s=offset + 0.6,
        timings={},
    )
    duration = offset + 0.6
    versions = {
        "2": figures(requests=5230, errors=3, seconds=duration, p95=0.0214),
        "3": figures(requests=1890, errors=4, seconds=duration, p95=0.0241, client=12),
    }
    state = {
        "started": EPOCH0,
        "finished": EPOCH0 + duration,
        "duration_s": duration,
        "stable": 2,
        "weights": {"3": 100},
        "timings": {},
        "verdicts": verdicts,
        "summary": summary(duration, versions),
        "recorded": {"requests": 1890, "error_rate": 0.0021, "p95": 0.0241},
    }
    return ReportInput(
        service=service,
        operation="deploy",
        generated_at=T0 + timedelta(seconds=duration + 1),
        release={
            "revision": 3,
            "version": "v1.5.0",
            "strategy": "canary",
            "status": "succeeded",
            "reason": "all steps done",
            "created_at": at(0),
            "finished_at": at(duration),
            "state": state,
        },
        previous=previous_release(2, "v1.4.2"),
        events=rec.events,
        prechecks=checks_pre(),
        postchecks=[
            {
                "name": "smoke",
                "status": "pass",
                "summary": "GET /healthz and GET /api/cart answered 200",
                "figures": {"requests": 2},
            },
        ],
        instances=[
            instance(service, 3, 0),
            instance(service, 3, 1),
            instance(service, 2, 0, state="stopping"),
        ],
        alerts=[],
        replicas=2,
    )


def canary_rolled_back() -> ReportInput:
    service = "checkout"
    rec = Recorder(4)
    rec.add(0, "release.created", "revision 4 (v1.6.0) created: canary")
    for slot in range(2):
        rec.add(
            0.3,
            "instance.started",
            f"started checkout-r4-{slot}-a1b2c3 (pid 52{slot}0) on 127.0.0.1:4200{slot}",
            instance=f"checkout-r4-{slot}-a1b2c3",
            slot=slot,
        )
        rec.add(
            2.8,
            "instance.healthy",
            f"checkout-r4-{slot}-a1b2c3 is healthy",
            instance=f"checkout-r4-{slot}-a1b2c3",
        )
    rec.add(3.0, "canary.ready", "2 canary instance(s) healthy; running the steps")
    rec.add(3.0, "canary.weight", "step 1/7: canary weight 5 %", step=0, weight=5)
    rec.add(3.0, "analysis.started", "canary analysis 1: measuring (judge thresholds)")
    rec.sample(
        8.0,
        {
            "3": {
                "requests": 760,
                "errors": 0,
                "error_rate": 0.0,
                "p95_ms": 21.0,
                "weight": 95,
                "ready": 2,
            },
            "4": {
                "requests": 40,
                "errors": 5,
                "error_rate": 0.125,
                "p95_ms": 24.0,
                "weight": 5,
                "ready": 2,
            },
        },
        0,
    )
    reason = (
        "error rate 12.5 % > 5 % (5 of 40 requests): 5 errors already exceed 5 % of the "
        "100 requests needed"
    )
    failing = verdict(
        8.0,
        "canary analysis 1",
        "fail",
        reason,
        canary=40,
        error_rate=0.125,
        error_outcome="fail",
        error_detail="error rate 12.5 % > 5 % (5 of 40 requests)",
    )
    rec.add(8.0, "analysis.verdict", f"canary analysis 1: fail: {reason}", verdict=failing)
    rec.add(8.0, "rollback.started", f"automatic rollback: canary analysis 1 failed: {reason}")
    rec.add(8.1, "rollback.switched", "traffic back on revision 3 (2 instance(s) ready)")
    rec.add(
        8.1,
        "traffic.rollback",
        "rollback: routing table applied in 0.41 ms",
        seconds=0.00041,
        rollback_apply_s=0.00041,
        rollback_s=0.036,
    )
    rec.sample(
        10.0,
        {
            "3": {
                "requests": 1010,
                "errors": 0,
                "error_rate": 0.0,
                "p95_ms": 21.0,
                "weight": 100,
                "ready": 2,
            },
            "4": {
                "requests": 41,
                "errors": 5,
                "error_rate": 0.122,
                "p95_ms": 24.0,
                "weight": 0,
                "ready": 2,
            },
        },
        1,
    )
    for slot in range(2):
        rec.add(
            11.5,
            "instance.stopped",
            f"drained and stopped checkout-r4-{slot}-a1b2c3 (exit code 0)",
            instance=f"checkout-r4-{slot}-a1b2c3",
            exit_code=0,
        )
    rec.add(
        11.6,
        "release.rolled_back",
        f"revision 4 (v1.6.0) rolled_back: canary analysis 1 failed: {reason}",
    )
    duration = 11.6
    versions = {
        "3": figures(requests=1010, errors=0, seconds=duration, p95=0.021),
        "4": figures(requests=41, errors=5, seconds=duration, p95=0.024),
    }
    state = {
        "started": EPOCH0,
        "finished": EPOCH0 + duration,
        "duration_s": duration,
        "stable": 3,
        "weights": {"3": 100, "4": 0},
        "timings": {"rollback_apply_s": 0.00041, "rollback_s": 0.036},
        "verdicts": [failing],
        "rollback": {
            "reason": f"canary analysis 1 failed: {reason}",
            "started": EPOCH0 + 8.0,
            "verdict": failing,
            "verified": "2/2 instances of revision 3 healthy",
        },
        "summary": summary(duration, versions),
    }
    return ReportInput(
        service=service,
        operation="deploy",
        generated_at=T0 + timedelta(seconds=12),
        release={
            "revision": 4,
            "version": "v1.6.0",
            "strategy": "canary",
            "status": "rolled_back",
            "reason": f"canary analysis 1 failed: {reason}",
            "created_at": at(0),
            "finished_at": at(duration),
            "state": state,
        },
        previous=previous_release(3, "v1.5.0"),
        events=rec.events,
        prechecks=checks_pre()[:2],
        postchecks=[],
        instances=[instance(service, 3, 0), instance(service, 3, 1)],
        alerts=[
            {
                "name": "HighErrorRate",
                "severity": "critical",
                "message": "checkout revision 4 error rate 12.5 % over 5 %",
                "ts": at(8.0),
            }
        ],
        replicas=2,
    )


def bluegreen_rolled_back() -> ReportInput:
    service = "billing"
    rec = Recorder(7)
    rec.add(0, "release.created", "revision 7 (v3.0.0) created: blue-green")
    for slot in range(3):
        rec.add(
            0.2,
            "instance.started",
            f"started billing-r7-{slot}-a1b2c3",
            instance=f"billing-r7-{slot}-a1b2c3",
            slot=slot,
        )
        rec.add(
            4.0 + slot / 10,
            "instance.healthy",
            f"billing-r7-{slot}-a1b2c3 is healthy",
            instance=f"billing-r7-{slot}-a1b2c3",
        )
    rec.add(4.3, "bluegreen.ready", "green: 3 instance(s) healthy")
    rec.add(
        4.3,
        "traffic.switch",
        "switch: routing table applied in 0.90 ms",
        seconds=0.0009,
        switch_s=0.0009,
        switch_apply_s=0.0009,
    )
    rec.add(4.3, "bluegreen.switched", "traffic switched to green (100 %)")
    rec.add(4.4, "analysis.started", "post-switch analysis: measuring (judge thresholds)")
    samples = [
        (5.0, 0, 0, 0, 0),
        (10.0, 0, 420, 0, 95.0),
        (15.0, 0, 880, 1, 130.0),
    ]
    for index, (offset, old, new, errors, p95) in enumerate(samples):
        rec.sample(
            offset,
            {
                "6": {
                    "requests": 300 + old,
                    "errors": 0,
                    "error_rate": 0.0,
                    "p95_ms": 40.0,
                    "weight": 100 if offset < 4.3 else 0,
                    "ready": 3,
                },
                "7": {
                    "requests": new,
                    "errors": errors,
                    "error_rate": errors / new if new else None,
                    "p95_ms": p95 if new else None,
                    "weight": 100,
                    "ready": 3,
                },
            },
            index,
        )
    reason = (
        "p95 130 ms > 2.0 × 40 ms (recorded for the previous release), 90 ms slower "
        "(more than the 5 ms noise floor)"
    )
    failing = verdict(15.0, "post-switch analysis", "fail", reason, canary=880, error_rate=0.0011)
    failing["measurements"].append(
        {
            "name": "latency",
            "value": 0.13,
            "limit": 0.08,
            "baseline": 0.04,
            "outcome": "fail",
            "detail": reason,
        }
    )
    rec.add(15.0, "analysis.verdict", f"post-switch analysis: fail: {reason}", verdict=failing)
    rec.add(15.0, "rollback.started", f"automatic rollback: post-switch analysis failed: {reason}")
    rec.add(15.0, "rollback.switched", "traffic back on revision 6 (3 instance(s) ready)")
    rec.add(
        15.04,
        "traffic.rollback",
        "rollback: routing table applied in 0.40 ms",
        seconds=0.0004,
        switch_s=0.0009,
        switch_apply_s=0.0009,
        rollback_apply_s=0.0004,
        rollback_s=0.036,
    )
    rec.add(
        17.2,
        "release.rolled_back",
        f"revision 7 (v3.0.0) rolled_back: post-switch analysis failed: {reason}",
    )
    duration = 17.2
    versions = {
        "6": figures(requests=300, errors=0, seconds=duration, p95=0.040),
        "7": figures(requests=880, errors=1, seconds=duration, p95=0.130),
    }
    state = {
        "started": EPOCH0,
        "finished": EPOCH0 + duration,
        "duration_s": duration,
        "stable": 6,
        "timings": {
            "switch_s": 0.0009,
            "switch_apply_s": 0.0009,
            "rollback_s": 0.036,
            "rollback_apply_s": 0.0004,
        },
        "verdicts": [failing],
        "rollback": {
            "reason": f"post-switch analysis failed: {reason}",
            "started": EPOCH0 + 15.0,
            "verdict": failing,
            "verified": "3/3 instances of revision 6 healthy",
        },
        "summary": summary(duration, versions),
    }
    previous = previous_release(6, "v2.9.1", "blue-green")
    previous["state"] = {"recorded": {"requests": 9000, "p95": 0.040}}
    return ReportInput(
        service=service,
        operation="deploy",
        generated_at=T0 + timedelta(seconds=18),
        release={
            "revision": 7,
            "version": "v3.0.0",
            "strategy": "blue-green",
            "status": "rolled_back",
            "reason": f"post-switch analysis failed: {reason}",
            "created_at": at(0),
            "finished_at": at(duration),
            "state": state,
        },
        previous=previous,
        events=rec.events,
        prechecks=checks_pre(),
        postchecks=[],
        instances=[instance(service, 6, s) for s in range(3)]
        + [instance(service, 7, s, state="stopping") for s in range(3)],
        alerts=[],
        replicas=3,
    )


def rolling_with_restart() -> ReportInput:
    service = "worker-api"
    rec = Recorder(5)
    rec.add(0, "release.created", "revision 5 (v2.2.0) created: rolling")
    rec.add(0, "analysis.started", "rolling analysis: measuring (judge thresholds)")
    moves = [(0.1, 3, 3, 0, 1), (4.0, 3, 2, 1, 2), (8.0, 2, 1, 2, 3), (12.0, 1, 0, 3, 3)]
    for offset, old, old_next, new, new_next in moves:
        rec.add(
            offset,
            "rolling.step",
            f"old {old} -> {old_next}, new {new} -> {new_next} ({new} new ready, {old} old ready)",
            old=old_next,
            new=new_next,
        )
        if new_next > new:
            slot = new
            rec.add(
                offset + 0.1,
                "instance.started",
                f"started worker-api-r5-{slot}-a1b2c3",
                instance=f"worker-api-r5-{slot}-a1b2c3",
                slot=slot,
            )
            rec.add(
                offset + 3.0,
                "instance.healthy",
                f"worker-api-r5-{slot}-a1b2c3 is healthy",
                instance=f"worker-api-r5-{slot}-a1b2c3",
            )
    rec.add(
        6.0,
        "instance.crashed",
        "worker-api-r5-1-a1b2c3 exited with code 137",
        instance="worker-api-r5-1-a1b2c3",
        exit_code=137,
        slot=1,
    )
    rec.add(
        6.5,
        "instance.restarted",
        "started worker-api-r5-1-d4e5f6, replacing worker-api-r5-1-a1b2c3",
        instance="worker-api-r5-1-d4e5f6",
        slot=1,
    )
    for index in range(4):
        offset = 3.0 + index * 3.5
        ready_new = min(index + 1, 3)
        rec.sample(
            offset,
            {
                "4": {
                    "requests": 900 * (index + 1),
                    "errors": index,
                    "error_rate": index / (900 * (index + 1)),
                    "p95_ms": 12.0,
                    "weight": 3 - ready_new + 1 if index < 3 else 0,
                    "ready": 3 - index,
                },
                "5": {
                    "requests": 300 * (index + 1) ** 2,
                    "errors": 0,
                    "error_rate": 0.0,
                    "p95_ms": 12.6,
                    "weight": ready_new,
                    "ready": ready_new,
                },
            },
            index,
        )
    last = verdict(
        14.0,
        "rolling analysis",
        "pass",
        "error rate 0.08 % ≤ 5 %, availability 100 % ≥ 99 %",
        canary=4800,
    )
    rec.add(14.0, "analysis.verdict", f"rolling analysis: pass: {last['reason']}", verdict=last)
    rec.add(14.2, "release.succeeded", "revision 5 (v2.2.0) succeeded: all 3 instances replaced")
    duration = 14.2
    versions = {
        "4": figures(requests=3600, errors=3, seconds=duration, p95=0.012),
        "5": figures(requests=4800, errors=0, seconds=duration, p95=0.0126),
    }
    state = {
        "started": EPOCH0,
        "finished": EPOCH0 + duration,
        "duration_s": duration,
        "stable": 4,
        "weights": {"5": 100},
        "verdicts": [last],
        "summary": summary(duration, versions),
        "recorded": {"p95": 0.0126},
    }
    return ReportInput(
        service=service,
        operation="deploy",
        generated_at=T0 + timedelta(seconds=15),
        release={
            "revision": 5,
            "version": "v2.2.0",
            "strategy": "rolling",
            "status": "succeeded",
            "reason": "all 3 instances replaced; last analysis pass: error rate 0.08 % ≤ 5 %",
            "created_at": at(0),
            "finished_at": at(duration),
            "state": state,
        },
        previous=previous_release(4, "v2.1.9", "rolling"),
        events=rec.events,
        prechecks=checks_pre(),
        postchecks=[
            {"name": "smoke", "status": "pass", "summary": "GET / answered 200", "figures": {}}
        ],
        instances=[
            instance(service, 5, 0),
            instance(service, 5, 1, restarts=1),
            instance(service, 5, 2),
        ],
        alerts=[],
        replicas=3,
    )


def initial_up() -> ReportInput:
    service = "web"
    rec = Recorder(1)
    rec.add(0, "release.created", "revision 1 (v0.1.0) created: initial")
    rec.add(
        0.2,
        "instance.started",
        "started web-r1-0-a1b2c3 (pid 3001) on 127.0.0.1:40100",
        instance="web-r1-0-a1b2c3",
        slot=0,
    )
    rec.add(1.4, "instance.healthy", "web-r1-0-a1b2c3 is healthy", instance="web-r1-0-a1b2c3")
    rec.add(1.5, "release.succeeded", "revision 1 (v0.1.0) succeeded: 1/1 instances healthy")
    state = {"started": EPOCH0, "finished": EPOCH0 + 1.5, "duration_s": 1.5, "weights": {"1": 100}}
    return ReportInput(
        service=service,
        operation="up",
        generated_at=T0 + timedelta(seconds=2),
        release={
            "revision": 1,
            "version": "v0.1.0",
            "strategy": "initial",
            "status": "succeeded",
            "reason": "1/1 instances healthy",
            "created_at": at(0),
            "finished_at": at(1.5),
            "state": state,
        },
        previous=None,
        events=rec.events,
        prechecks=[],
        postchecks=[],
        instances=[instance(service, 1, 0)],
        alerts=[],
        replicas=1,
    )


def canary_aborted() -> ReportInput:
    """A canary a user aborted at 25 %: no verdict failed, no summary (no data plane)."""
    service = "search"
    rec = Recorder(9)
    rec.add(0, "release.created", "revision 9 (v4.1.0) created: canary")
    rec.add(2.0, "canary.weight", "step 1/7: canary weight 5 %", step=0, weight=5)
    rec.add(2.0, "analysis.started", "canary analysis 1: measuring (judge thresholds)")
    rec.add(
        7.0,
        "analysis.verdict",
        "canary analysis 1: inconclusive: no traffic metrics: the controller runs without "
        "the data plane",
    )
    rec.add(9.0, "rollout.abort", "aborted by alice")
    rec.add(9.0, "rollback.started", "automatic rollback: aborted by alice")
    rec.add(9.2, "rollback.switched", "traffic back on revision 8 (2 instance(s) ready)")
    rec.add(10.0, "release.rolled_back", "revision 9 (v4.1.0) rolled_back: aborted by alice")
    state = {
        "started": EPOCH0,
        "finished": EPOCH0 + 10,
        "duration_s": 10.0,
        "stable": 8,
        "timings": {"rollback_s": 0.2},
        "rollback": {
            "reason": "aborted by alice",
            "started": EPOCH0 + 9,
            "verdict": None,
            "verified": "2/2 instances of revision 8 healthy",
        },
    }
    return ReportInput(
        service=service,
        operation="abort",
        generated_at=T0 + timedelta(seconds=11),
        release={
            "revision": 9,
            "version": "v4.1.0",
            "strategy": "canary",
            "status": "rolled_back",
            "reason": "aborted by alice",
            "created_at": at(0),
            "finished_at": at(10),
            "state": state,
        },
        previous=previous_release(8, "v4.0.3"),
        events=rec.events,
        prechecks=[],
        postchecks=[],
        instances=[instance(service, 8, 0), instance(service, 8, 1, state="unhealthy")],
        alerts=[],
        replicas=2,
    )


FIXTURES: dict[str, Callable[[], ReportInput]] = {
    "canary_succeeded": canary_succeeded,
    "canary_rolled_back": canary_rolled_back,
    "bluegreen_rolled_back": bluegreen_rolled_back,
    "rolling_with_restart": rolling_with_restart,
    "initial_up": initial_up,
    "canary_aborted": canary_aborted,
}
