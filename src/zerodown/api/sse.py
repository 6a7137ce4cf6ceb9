"""``GET /v1/services/{name}/stream``: a rollout's events and live figures as Server-Sent Events.

The stream carries two kinds of messages:

``event: event``
    One entry of the event log (the same JSON as ``GET /v1/events``), with ``id:`` set to the
    event's id. A client that reconnects sends ``Last-Event-ID`` (browsers do it on their own)
    and gets exactly the events it missed; ``?after=N`` does the same for a first connection.
``event: snapshot``
    Every ``interval`` seconds: the release being rolled out (else the one serving) with its
    phase, step, weights, pause and the judge's latest verdicts; the instances; and per version
    the request rate, error rate and p95 latency over the last ``WINDOW_S`` seconds, computed
    from the data plane's counters. Snapshots carry no ``id`` so they never move the cursor.

A comment line (``: heartbeat``) goes out after ``HEARTBEAT_S`` seconds of silence, so proxies
and clients can tell a quiet stream from a dead one. When the controller stops, every stream
gets ``event: shutdown`` and ends within ``POLL_S`` seconds: ``StreamHub.close`` is called from
the server's signal handler, so open streams never hold up the controller's exit.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from zerodown.core.errors import ZerodownError
from zerodown.engine.metrics_window import counters_went_back
from zerodown.service import LiveView, Zerodown
from zerodown.traffic.base import ServiceMetrics, TrafficCounts

__all__ = [
    "DEFAULT_INTERVAL_S",
    "MAX_INTERVAL_S",
    "MIN_INTERVAL_S",
    "StreamHub",
    "TrafficWindow",
    "event_stream",
    "live_snapshot",
]

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 1.0
MIN_INTERVAL_S = 0.2
MAX_INTERVAL_S = 60.0
WINDOW_S = 10.0  # rates, error rates and p95 are over this trailing window
HEARTBEAT_S = 15.0
POLL_S = 0.25  # how often a stream looks for new events and for the controller stopping
PAGE = 500  # events read per query while catching up
RETRY_MS = 2000  # what browsers wait before reconnecting
VERDICTS_SHOWN = 10


class StreamHub:
    """The open streams of one controller, and the switch that ends them all."""

    def __init__(self) -> None:
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._open = 0

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    @property
    def open_streams(self) -> int:
        return self._open

    def close(self) -> None:
        """End every stream (safe to call from a signal handler: it only sets a flag)."""
        self._closing.set()

    def _opened(self) -> None:
        with self._lock:
            self._open += 1

    def _closed(self) -> None:
        with self._lock:
            self._open -= 1


class TrafficWindow:
    """Snapshots of a service's counters over a trailing window, to turn them into rates."""

    def __init__(self, span: float = WINDOW_S) -> None:
        self.span = span
        self._samples: deque[tuple[float, ServiceMetrics]] = deque()

    def add(self, t: float, metrics: ServiceMetrics | None) -> None:
        if metrics is None:
            self._samples.clear()
            return
        if self._samples and counters_went_back(metrics, self._samples[-1][1]):
            self._samples.clear()  # the data plane restarted: start over
        self._samples.append((t, metrics))
        # Keep the newest sample that is at least ``span`` old as the window's start.
        while len(self._samples) > 2 and t - self._samples[1][0] >= self.span:
            self._samples.popleft()

    def per_group(self) -> dict[str, dict[str, Any]]:
        """``{group: {rate, error_rate, p95_ms, requests, in_flight}}`` over the window;
        empty until two snapshots exist."""
        if len(self._samples) < 2:
            return {}
        (t0, first), (t1, last) = self._samples[0], self._samples[-1]
        seconds = t1 - t0
        if seconds <= 0:
            return {}
        delta = last.delta(first)
        return {name: _figures(group, seconds) for name, group in delta.groups.items()} | {
            "": _figures(delta.total, seconds)
        }

    @property
    def seconds(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        return self._samples[-1][0] - self._samples[0][0]


def _figures(counts: TrafficCounts, seconds: float) -> dict[str, Any]:
    p95 = counts.latency.quantile(0.95)
    return {
        "rate": counts.requests / seconds,
        "error_rate": counts.error_rate,
        "p95_ms": p95 * 1000 if p95 is not None else None,
        "requests": counts.requests,
        "in_flight": counts.in_flight,
    }


def _finite(value: Any) -> Any:
    """JSON has no inf or nan: they become null, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def live_snapshot(view: LiveView, window: TrafficWindow, *, now: float) -> dict[str, Any]:
    """The ``snapshot`` message: what the live page draws, from one ``LiveView`` and the
    traffic window (``now`` is epoch seconds)."""
    service = view.service
    release = view.release
    state: Mapping[str, Any] = release["state"] if release is not None else {}
    weights = {int(k): int(v) for k, v in (state.get("weights") or {}).items()}
    total_weight = sum(weights.values())
    stable = state.get("stable")
    rolling = release is not None and release["status"] in ("pending", "progressing", "paused")
    figures = window.per_group()

    versions_seen: dict[int, str] = {}
    if release is not None:
        versions_seen[int(release["revision"])] = str(release["version"])
    for inst in service.instances:
        versions_seen.setdefault(inst.revision, inst.version)
    revisions = set(weights) | set(versions_seen)
    if rolling and isinstance(stable, int):
        revisions.add(stable)
    versions = []
    for revision in sorted(revisions):
        mine = [i for i in service.instances if i.revision == revision]
        role = ""
        if release is not None and revision == release["revision"]:
            role = "new" if rolling and stable else "serving"
        elif revision == stable:
            role = "stable" if rolling else "previous"
        share = 100.0 * weights.get(revision, 0) / total_weight if total_weight else 0.0
        versions.append(
            {
                "revision": revision,
                "version": versions_seen.get(revision, f"r{revision}"),
                "role": role,
                "weight": weights.get(revision, 0),
                "share": share,
                "instances": len(mine),
                "ready": sum(1 for i in mine if i.state == "running"),
                "traffic": figures.get(f"r{revision}"),
            }
        )

    release_part: dict[str, Any] | None = None
    if release is not None:
        analysis = state.get("analysis")
        verdicts = list(state.get("verdicts") or [])[-VERDICTS_SHOWN:]
        release_part = {
            "revision": release["revision"],
            "version": release["version"],
            "strategy": release["strategy"],
            "status": release["status"],
            "reason": release["reason"],
            "active": rolling,
            "phase": state.get("phase"),
            "step": state.get("step"),
            "steps": view.steps,
            "stable": stable,
            "paused": state.get("paused"),
            "analysis": analysis.get("label") if isinstance(analysis, Mapping) else None,
            "rollback": state.get("rollback"),
            "verdicts": verdicts,
        }
    snapshot: dict[str, Any] = _finite(
        {
            "ts": now,
            "service": {
                "name": service.name,
                "desired_state": service.desired_state,
                "listen": service.listen,
                "replicas": service.replicas,
                "ready": service.ready,
            },
            "release": release_part,
            "latest": view.latest.to_dict() if view.latest is not None else None,
            "versions": versions,
            "total": figures.get(""),
            "window_s": window.seconds,
            "traffic_measured": view.traffic is not None,
            "instances": [
                {
                    "id": i.id,
                    "revision": i.revision,
                    "version": i.version,
                    "slot": i.slot,
                    "pid": i.pid,
                    "address": i.address,
                    "state": i.state,
                    "health": i.health,
                    "restarts": i.restarts,
                }
                for i in service.instances
            ],
        }
    )
    return snapshot


def _message(kind: str, data: Any, *, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def event_stream(
    zd: Zerodown, hub: StreamHub, *, service: str, after: int, interval: float
) -> StreamingResponse:
    """The streaming response of one client (inputs already checked by the route)."""

    async def body() -> AsyncIterator[str]:
        hub._opened()
        try:
            async for chunk in _run(zd, hub, service=service, after=after, interval=interval):
                yield chunk
        finally:
            hub._closed()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _run(
    zd: Zerodown, hub: StreamHub, *, service: str, after: int, interval: float
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n: live stream of {service}\n\n"
    cursor = after
    window = TrafficWindow()
    next_snapshot = time.monotonic()
    last_sent = time.monotonic()
    while not hub.closing:
        try:
            batch = await run_in_threadpool(zd.events, service, after_id=cursor, limit=PAGE)
            for event in batch:
                cursor = int(event["id"])
                yield _message("event", event, event_id=cursor)
                last_sent = time.monotonic()
            now = time.monotonic()
            if now >= next_snapshot:
                view = await run_in_threadpool(zd.live, service)
                window.add(now, view.traffic)
                yield _message("snapshot", live_snapshot(view, window, now=time.time()))
                last_sent = now
                next_snapshot = now + interval
            elif now - last_sent >= HEARTBEAT_S:
                yield ": heartbeat\n\n"
                last_sent = now
        except ZerodownError as exc:
            # The client sees why, then the stream ends; a browser reconnects after RETRY_MS
            # and resumes from its last event id.
            yield _message("stream_error", {"error": exc.to_dict()})
            return
        if len(batch) == PAGE:
            continue  # catching up: read the next page at once
        await anyio.sleep(max(0.0, min(POLL_S, next_snapshot - time.monotonic())))
    yield _message("shutdown", {"reason": "the controller is stopping"})
