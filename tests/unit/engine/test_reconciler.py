"""The reconcile loop on fakes: virtual time, in-memory store, recording router.

These pin the decisions (start, route, succeed, fail, restart, give up, stop, adopt) without
processes or sockets; the integration and e2e suites run the same paths for real.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from zerodown.checks.health import HealthProbeConfig, ProbeResult
from zerodown.core.types import Address, ServiceName, Version
from zerodown.engine.reconciler import Reconciler
from zerodown.ops.logs import LogBook
from zerodown.spec import parse_spec
from zerodown.store.base import ReleaseStatus
from zerodown.testing import (
    FakePlatform,
    FrozenClock,
    InlineExecutor,
    MemoryStore,
    RecordingRouter,
    always_healthy,
)

SPEC = """\
service: web
platform: local
run:
  command: serve
  restart: {restart}
  maxRestarts: 2
  restartWindow: 1m
replicas: {replicas}
healthCheck:
  http: {{path: /healthz}}
  interval: 1s
  timeout: 500ms
  failureThreshold: 2
  startupGrace: 5s
traffic:
  listen: 127.0.0.1:18080
"""


class World:
    def __init__(self, tmp_path: Path, prober: Callable[..., ProbeResult]) -> None:
        self.clock = FrozenClock()
        self.store = MemoryStore(clock=self.clock)
        self.platform = FakePlatform(clock=self.clock, name="local")
        self.router = RecordingRouter()
        self.prober = prober
        self.tmp_path = tmp_path
        self.reconciler = self._reconciler()

    def _reconciler(self) -> Reconciler:
        return Reconciler(
            store=self.store,
            platforms={"local": self.platform},
            router=self.router,
            logbook=LogBook(self.tmp_path / "logs"),
            clock=self.clock,
            prober=lambda *a, **k: self.prober(*a, **k),
            executor=InlineExecutor(),
        )

    def up(self, *, replicas: int = 3, restart: str = "always") -> int:
        text = SPEC.format(replicas=replicas, restart=restart)
        loaded = parse_spec(text, filename=str(self.tmp_path / "zerodown.yaml"))
        name = ServiceName("web")
        self.store.upsert_service(
            name, spec_path=str(self.tmp_path / "zerodown.yaml"), spec_text=text
        )
        release = self.store.create_release(
            name,
            version=Version("v1"),
            spec_text=text,
            spec_hash=loaded.spec_hash,
            strategy="initial",
        )
        return int(release.revision)

    def ticks(self, n: int, step: float = 0.5) -> None:
        for _ in range(n):
            self.reconciler.tick()
            self.clock.advance(step)

    def status(self, revision: int = 1) -> ReleaseStatus:
        return self.store.get_release(ServiceName("web"), revision).status  # type: ignore[arg-type]

    def kinds(self) -> list[str]:
        return [e.kind for e in self.store.list_events(ServiceName("web"))]

    def live(self) -> list[Any]:
        return self.store.list_instances(
            ServiceName("web"), states=("starting", "running", "unhealthy")
        )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, always_healthy)
    yield w
    w.store.close()


def test_up_starts_replicas_routes_them_and_succeeds(world: World) -> None:
    world.up(replicas=3)
    world.ticks(4)
    assert world.status() == ReleaseStatus.SUCCEEDED
    assert len(world.live()) == 3
    table = world.router.routes("web")
    assert table is not None
    assert len(table.groups["r1"]) == 3 and table.weights == {"r1": 100}
    assert world.kinds().count("instance.started") == 3
    assert "release.succeeded" in world.kinds()


def test_nothing_is_routed_before_an_instance_is_healthy(tmp_path: Path) -> None:
    w = World(tmp_path, lambda *a, **k: ProbeResult(ok=False, detail="status 503", latency_s=0))
    w.up(replicas=2)
    w.ticks(4)
    assert w.router.applied == []
    assert w.status() == ReleaseStatus.PROGRESSING


def test_unhealthy_past_startup_grace_fails_the_release_and_stops_instances(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, lambda *a, **k: ProbeResult(ok=False, detail="status 503", latency_s=0))
    w.up(replicas=2)
    w.ticks(20)
    release = w.store.get_release(ServiceName("web"), 1)  # type: ignore[arg-type]
    assert release.status == ReleaseStatus.FAILED
    assert "did not become healthy" in release.reason
    assert w.live() == []
    assert len(w.platform.stop_calls) == 2


def test_crash_during_startup_fails_the_release(world: World) -> None:
    world.up(replicas=2)
    world.reconciler.tick()
    first = world.live()[0]
    world.platform.crash(first.id, exit_code=3)
    world.ticks(3)
    release = world.store.get_release(ServiceName("web"), 1)  # type: ignore[arg-type]
    assert release.status == ReleaseStatus.FAILED
    assert "exited with code 3" in release.reason


def test_crash_after_success_is_restarted_then_given_up_after_max_restarts(world: World) -> None:
    world.up(replicas=1, restart="always")
    world.ticks(4)
    assert world.status() == ReleaseStatus.SUCCEEDED
    for _ in range(2):
        victim = world.live()[0]
        world.platform.crash(victim.id, exit_code=1)
        world.ticks(4)
        assert world.live() and world.live()[0].id != victim.id
    victim = world.live()[0]
    assert victim.restarts == 2
    world.platform.crash(victim.id, exit_code=1)
    world.ticks(4)
    assert world.live() == []
    assert "instance.gave_up" in world.kinds()
    assert world.router.routes("web") is not None
    assert world.router.routes("web").groups.get("r1", ()) == ()  # type: ignore[union-attr]


def test_restart_never_leaves_the_slot_down(world: World) -> None:
    world.up(replicas=1, restart="never")
    world.ticks(4)
    world.platform.crash(world.live()[0].id, exit_code=0)
    world.ticks(4)
    assert world.live() == []
    assert "instance.restarted" not in world.kinds()


def test_unhealthy_instance_leaves_rotation_and_returns_when_healthy(tmp_path: Path) -> None:
    healthy = {"ok": True}

    def prober(check: HealthProbeConfig, address: Address, **_: Any) -> ProbeResult:
        return ProbeResult(ok=healthy["ok"], detail="ok" if healthy["ok"] else "503", latency_s=0)

    w = World(tmp_path, prober)
    w.up(replicas=1)
    w.ticks(4)
    assert len(w.router.routes("web").groups["r1"]) == 1  # type: ignore[union-attr]
    healthy["ok"] = False
    w.ticks(6)
    assert w.router.routes("web").groups.get("r1", ()) == ()  # type: ignore[union-attr]
    assert "instance.unhealthy" in w.kinds()
    healthy["ok"] = True
    w.ticks(4)
    assert len(w.router.routes("web").groups["r1"]) == 1  # type: ignore[union-attr]


def test_stop_removes_routes_and_stops_every_instance(world: World) -> None:
    world.up(replicas=2)
    world.ticks(4)
    world.store.set_desired_state(ServiceName("web"), "stopped")
    world.ticks(2)
    assert world.live() == []
    assert world.router.removed == ["web"]
    assert world.status() == ReleaseStatus.STOPPED


def test_a_new_reconciler_adopts_live_instances_without_restarting(world: World) -> None:
    world.up(replicas=2)
    world.ticks(4)
    before = {r.id for r in world.live()}
    started = len(world.platform.started)
    world.reconciler = world._reconciler()
    world.ticks(4)
    assert {r.id for r in world.live()} == before
    assert len(world.platform.started) == started
    assert world.kinds().count("instance.adopted") == 2


def test_a_promote_taken_in_the_same_tick_as_a_state_write_is_not_lost(world: World) -> None:
    """The command's write must not be overwritten by the tick's stale copy of the release."""
    import threading

    world.up(replicas=1)
    world.ticks(4)
    steps = "strategy:\n  canary:\n    steps: [{setWeight: 30}, {pause: {}}, {setWeight: 100}]\n"
    text = SPEC.format(replicas=1, restart="always") + steps
    loaded = parse_spec(text, filename=str(world.tmp_path / "zerodown.yaml"))
    world.store.create_release(
        ServiceName("web"),
        version=Version("v2"),
        spec_text=text,
        spec_hash=loaded.spec_hash,
        strategy="canary",
    )
    world.ticks(8)
    assert world.status(2) == ReleaseStatus.PAUSED
    world.clock.advance(60)  # a traffic sample is due: the tick will write the release's state
    result: list[str] = []
    worker = threading.Thread(
        target=lambda: result.append(world.reconciler.command("web", "promote", timeout=10))
    )
    worker.start()
    deadline = 200
    while not result and deadline:
        world.reconciler.tick()
        deadline -= 1
        worker.join(0.01)
    worker.join(10)
    world.ticks(6)
    assert world.status(2) == ReleaseStatus.SUCCEEDED


def test_a_canary_whose_log_fills_with_errors_is_rolled_back_by_max_log_error_rate(
    world: World,
) -> None:
    """Error lines count from the analysis start, per revision; the stable's errors do not."""
    world.up(replicas=1)
    world.ticks(4)
    (stable,) = world.live()
    world.platform.write_log(stable.id, *["ERROR stable is noisy"] * 50)
    steps = (
        "strategy:\n  canary:\n    steps: [{setWeight: 30}, {analysis: {}}, {setWeight: 100}]\n"
        "analysis: {interval: 1s, minRequests: 100, maxWait: 1h, maxLogErrorRate: 5%}\n"
    )
    text = SPEC.format(replicas=1, restart="always") + steps
    loaded = parse_spec(text, filename=str(world.tmp_path / "zerodown.yaml"))
    world.store.create_release(
        ServiceName("web"),
        version=Version("v2"),
        spec_text=text,
        spec_hash=loaded.spec_hash,
        strategy="canary",
    )
    world.ticks(12)
    assert world.status(2) == ReleaseStatus.PROGRESSING  # no request yet: waiting
    (canary,) = [i for i in world.live() if int(i.revision) == 2]
    world.platform.write_log(canary.id, *["ERROR payment failed for order 7"] * 5)
    world.ticks(6)
    assert world.status(2) == ReleaseStatus.PROGRESSING  # 5 of 100 requests: not certain yet
    world.platform.write_log(canary.id, "ERROR payment failed for order 8", "INFO fine")
    world.ticks(6)
    release = world.store.get_release(ServiceName("web"), 2)  # type: ignore[arg-type]
    assert release.status == ReleaseStatus.ROLLED_BACK
    assert "log error rate" in release.reason
    assert "6 error log lines already exceed 5 % of the 100 requests needed" in release.reason
