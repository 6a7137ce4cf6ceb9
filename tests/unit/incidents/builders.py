"""A book on an in-memory store and a frozen clock, and a canary the judge rolled back.

``rolled_back_canary`` writes what the engine writes for a canary whose analysis failed, with
the clock moved between events so every timestamp is known: the rollout starts at +0 s, the
canary gets 20 % at +2 s, traffic is sampled at +3 s and +5 s, the judge fails it at +6 s,
traffic is back on revision 1 at +6.5 s and the release ends verified at +8 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from zerodown.core.types import ServiceName, Version
from zerodown.incidents import IncidentBook
from zerodown.incidents.book import MetricsSource
from zerodown.store import ReleaseRecord, ReleaseStatus
from zerodown.store.sqlite import SqliteStore
from zerodown.testing import FrozenClock, MemoryStore

T0 = datetime(2025, 6, 2, 9, 0, 0, tzinfo=UTC)
WEB = ServiceName("web")

STABLE_SPEC = "service: web\nrun:\n  command: app\nenv:\n  DB_PASSWORD: hunter2\n"
NEW_SPEC = "service: web\nrun:\n  command: app\nenv:\n  DB_PASSWORD: s3cret\n  ERROR_RATE: '0.3'\n"

VERDICT = {
    "outcome": "fail",
    "reason": "error rate 30.0 % > 5.0 %",
    "judge": "thresholds",
    "requests_needed": 0,
    "canary_requests": 60,
    "baseline_requests": 240,
    "measurements": [
        {
            "name": "error_rate",
            "value": 0.3,
            "limit": 0.05,
            "baseline": 0.0,
            "outcome": "fail",
            "detail": "error rate 30.0 % > 5.0 %",
        },
        {
            "name": "latency",
            "value": 0.004,
            "limit": 0.01,
            "baseline": 0.003,
            "outcome": "pass",
            "detail": "p95 4.0 ms <= 10.0 ms",
        },
    ],
}


@dataclass
class Setup:
    clock: FrozenClock
    store: SqliteStore
    book: IncidentBook


def make_book(metrics: MetricsSource | None = None) -> Setup:
    clock = FrozenClock(T0)
    store = MemoryStore(clock=clock)
    return Setup(clock=clock, store=store, book=IncidentBook(store, clock, metrics=metrics))


def _sample(requests: int, errors: int, p95_ms: float) -> dict[str, object]:
    return {
        "versions": {
            "1": {"requests": requests * 4, "errors": 0, "error_rate": 0.0, "p95_ms": 3.0,
                  "weight": 80, "ready": 2},
            "2": {"requests": requests, "errors": errors, "error_rate": errors / requests,
                  "p95_ms": p95_ms, "weight": 20, "ready": 2},
        },
        "host": {"cpu_percent": 40.0, "memory_percent": 55.0},
    }  # fmt: skip


def rolled_back_canary(s: Setup, *, aborted_by: str | None = None) -> ReleaseRecord:
    """Revision 1 serving, revision 2 (v2) rolled back by the judge (or aborted by a person)."""
    store, clock = s.store, s.clock
    store.upsert_service(WEB, spec_path="/srv/web/zerodown.yaml", spec_text=STABLE_SPEC)
    stable = store.create_release(
        WEB, version=Version("v1"), spec_text=STABLE_SPEC, spec_hash="a", strategy="initial"
    )
    store.update_release(WEB, stable.revision, status=ReleaseStatus.SUCCEEDED, finished=True)
    release = store.create_release(
        WEB, version=Version("v2"), spec_text=NEW_SPEC, spec_hash="b", strategy="canary"
    )
    rev = release.revision
    started = clock.now().timestamp()
    store.append_event(WEB, revision=rev, kind="release.created", message="revision 2 (v2)")
    clock.advance(2)
    store.append_event(
        WEB, revision=rev, kind="canary.weight", message="step 1/3: canary weight 20 %",
        data={"step": 0, "weight": 20},
    )  # fmt: skip
    clock.advance(1)
    store.append_event(
        WEB, revision=rev, kind="rollout.sample", message="traffic and resources sample",
        data={"t": clock.now().timestamp(), **_sample(20, 6, 4.0)},
    )  # fmt: skip
    clock.advance(2)
    store.append_event(
        WEB, revision=rev, kind="rollout.sample", message="traffic and resources sample",
        data={"t": clock.now().timestamp(), **_sample(60, 18, 4.0)},
    )  # fmt: skip
    clock.advance(1)
    decided = clock.now().timestamp()
    if aborted_by:
        reason = f"aborted by {aborted_by}"
        store.append_event(WEB, revision=rev, kind="rollout.abort", message=reason)
        verdict = None
    else:
        reason = "analysis at step 2/3 failed: error rate 30.0 % > 5.0 %"
        store.append_event(
            WEB, revision=rev, kind="analysis.verdict", message=f"analysis: fail: {reason}",
            data={"verdict": VERDICT},
        )  # fmt: skip
        store.append_event(
            WEB, revision=rev, kind="rollback.started", message=f"automatic rollback: {reason}"
        )
        verdict = VERDICT
    clock.advance(0.5)
    store.append_event(
        WEB, revision=rev, kind="rollback.switched",
        message="traffic back on revision 1 (2 instance(s) ready)",
    )  # fmt: skip
    store.append_event(
        WEB, revision=rev, kind="traffic.rollback",
        message="rollback: routing table applied in 0.40 ms", data={"seconds": 0.0004},
    )  # fmt: skip
    clock.advance(1.5)
    finished = clock.now().timestamp()
    state = {
        "started": started,
        "stable": 1,
        "finished": finished,
        "timings": {"rollback_s": 0.012},
        "rollback": {
            "reason": reason,
            "started": decided,
            "verdict": verdict,
            "verified": "2/2 instances of revision 1 healthy",
        },
        "summary": {
            "seconds": finished - started,
            "total": {"requests": 300, "errors_5xx": 18, "error_rate": 0.06},
            "versions": {
                "1": {"requests": 240, "errors_5xx": 0, "error_rate": 0.0},
                "2": {
                    "requests": 60,
                    "errors_5xx": 18,
                    "error_rate": 0.3,
                    "connect_errors": 0,
                    "timeouts": 0,
                    "latency_p95_s": 0.004,
                },
            },
        },
    }
    store.append_event(
        WEB, revision=rev, kind="release.rolled_back", message=f"revision 2 rolled_back: {reason}"
    )
    return store.update_release(
        WEB, rev, status=ReleaseStatus.ROLLED_BACK, reason=reason, state=state, finished=True
    )
