"""The reconcile loop: move every service from what is running toward what the store asks for.

One thread runs ``Reconciler.run``; each ``tick`` observes (instance processes, health probes,
new log lines), lets the active rollout's strategy decide (``strategies/``), writes the decision
to the store, and only then acts: starts and retires instances to match each revision's target
and applies the routing table. A controller killed at any point resumes from the store.

Per service, the store says:

- ``desired_state == "stopped"``: every target is 0; routes are removed; the release serving is
  marked ``stopped`` once the last instance is gone.
- the newest release ``pending``/``progressing``/``paused`` is the *rollout*; the newest
  ``succeeded`` one is the *stable* release. The rollout's strategy sets per-revision targets
  and weights in the rollout's persisted state. When it succeeds, the stable release becomes
  ``superseded`` (kept warm for the strategy's delay); when it fails, the automatic rollback
  procedure restores the stable release (weights back first, then the new instances go),
  verifies its health and notifies.
- a ``succeeded`` release with no rollout keeps ``replicas`` healthy instances: a crashed
  instance is restarted by the spec's restart policy; an unhealthy one leaves rotation until it
  recovers.

Instances found in the store at start are *adopted* (same PID and start time) rather than
restarted; the data plane kept serving them meanwhile.

A service whose spec says ``platform: swarm`` with ``strategy: native`` runs as one replicated
Swarm service instead (``engine/native.py``): each tick observes its tasks and makes instances
of them (drained as soon as Swarm stops them), the strategy decides on that observation, and
only after the decision is persisted is Swarm asked to create, update, roll back or remove the
service. Swarm, not the reconciler, starts and restarts the tasks.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zerodown.analysis import judge_for
from zerodown.analysis.base import AnalysisInput, Outcome, Verdict
from zerodown.checks.base import CheckResult, worst
from zerodown.checks.health import HealthProbeConfig, HealthTracker, ProbeResult, probe
from zerodown.checks.post import run_postchecks
from zerodown.core.clock import Clock, SystemClock
from zerodown.core.errors import RefusedError, TemporaryError, ZerodownError
from zerodown.core.types import Address, InstanceId, Revision, ServiceName, Version
from zerodown.engine.metrics_window import counters_went_back, log_errors_since, version_window
from zerodown.engine.native import (
    ENDED_BY_SWARM,
    SwarmAction,
    next_action,
    replicated_request,
    runs_native,
    task_changes,
)
from zerodown.engine.strategies import STRATEGIES, group_of
from zerodown.engine.strategies import native as native_strategy
from zerodown.engine.strategies.common import health_guard
from zerodown.metrics.system import HostSampler
from zerodown.ops.logs import LogBook
from zerodown.platforms.base import (
    InPlaceUpdates,
    Instance,
    InstanceRequest,
    InstanceState,
    Platform,
    ReplicatedView,
    TaskView,
)
from zerodown.platforms.docker import BuildContext, ContainerRequest
from zerodown.spec import ServiceSpec, parse_spec
from zerodown.spec.defaults import default_canary_steps
from zerodown.spec.models import AnalysisSpec
from zerodown.store.base import (
    InstanceRecord,
    ReleaseRecord,
    ReleaseStatus,
    ServiceRecord,
    Store,
)
from zerodown.traffic.base import (
    Backend,
    MatchRule,
    ServiceMetrics,
    ServiceRoutes,
    TrafficCounts,
    TrafficRouter,
)

__all__ = [
    "ACTIVE_STATUSES",
    "LIVE_STATES",
    "ROLLOUT_STATUSES",
    "Reconciler",
    "release_stale_lock",
]

log = logging.getLogger(__name__)

LIVE_STATES: tuple[str, ...] = ("starting", "running", "unhealthy")
ROLLOUT_STATUSES = (ReleaseStatus.PENDING, ReleaseStatus.PROGRESSING, ReleaseStatus.PAUSED)
ACTIVE_STATUSES = (*ROLLOUT_STATUSES, ReleaseStatus.SUCCEEDED)
LOCK_TTL = 120.0
MAX_VERDICTS = 30
QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


@dataclass
class _Runtime:
    """What the reconciler knows of one live instance beyond its store record."""

    record: InstanceRecord
    tracker: HealthTracker
    next_probe: float = 0.0
    probe: Future[ProbeResult] | None = None
    ready: bool = False  # has been healthy at least once: may receive traffic
    ready_at: float = 0.0  # monotonic time it first became healthy
    retiring: Future[None] | None = None  # being drained and stopped
    gone: bool = False


@dataclass
class _ServiceRuntime:
    restarts: dict[tuple[int, int], deque[float]] = field(default_factory=dict)
    applied_routes: ServiceRoutes | None = None
    applied_preview: ServiceRoutes | None = None
    commands: list[_Command] = field(default_factory=list)
    swarm_error: str = ""  # the last error talking to Swarm (recorded once, not every tick)


@dataclass
class _Command:
    name: str
    args: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: str = ""
    error: str = ""


def instance_to_record(instance: Instance, *, state: str, restarts: int = 0) -> InstanceRecord:
    return InstanceRecord(
        id=instance.id,
        service=instance.service,
        revision=instance.revision,
        version=instance.version,
        slot=instance.slot,
        platform=instance.platform,
        host=instance.address.host,
        port=instance.address.port,
        pid=instance.pid,
        started_at=instance.started_at,
        log_path=str(instance.log_path) if instance.log_path else None,
        state=state,
        restarts=restarts,
        meta=dict(instance.meta),
    )


def record_to_instance(record: InstanceRecord) -> Instance:
    return Instance(
        id=record.id,
        service=record.service,
        version=record.version,
        revision=record.revision,
        slot=record.slot,
        platform=record.platform,
        address=Address(record.host, record.port),
        pid=record.pid,
        started_at=record.started_at,
        log_path=Path(record.log_path) if record.log_path else None,
        meta={str(k): str(v) for k, v in record.meta.items() if k not in ("exit_code",)},
    )


def probe_config(spec: ServiceSpec) -> HealthProbeConfig:
    """The health probe of a spec, as the checks package wants it."""
    hc = spec.health_check
    if hc.tcp is not None:
        return HealthProbeConfig(kind="tcp", timeout=hc.timeout)
    if hc.command is not None:
        return HealthProbeConfig(kind="command", command=hc.command, timeout=hc.timeout)
    http = hc.http
    path = http.path if http is not None else "/healthz"
    status = http.expect_status if http is not None else 200
    return HealthProbeConfig(kind="http", path=path, expect_status=status, timeout=hc.timeout)


def instance_request(
    spec: ServiceSpec,
    *,
    service: ServiceName,
    version: Version,
    revision: Revision,
    slot: int,
    spec_dir: Path,
    workdir: Path,
) -> InstanceRequest:
    """What to ask a platform for: a process (``local``) or a container with the spec's image
    or build, port and limits (``docker``, ``swarm``)."""
    common: dict[str, Any] = {
        "service": service,
        "version": version,
        "revision": revision,
        "slot": slot,
        "command": spec.run.command or "",
        "env": {k: str(v) for k, v in spec.env.items()},
        "workdir": workdir,
        "image": spec.run.image,
    }
    if spec.platform not in ("docker", "swarm"):
        return InstanceRequest(**common)
    build = None
    if spec.run.build is not None:
        build = BuildContext(
            context=(spec_dir / spec.run.build.context).resolve(),
            dockerfile=spec.run.build.dockerfile,
        )
    return ContainerRequest(
        **common,
        container_port=spec.run.container_port,
        cpus=spec.run.cpus,
        memory_bytes=int(spec.run.memory) if spec.run.memory is not None else None,
        build=build,
    )


def needs_validation(spec: ServiceSpec) -> bool:
    """True when the spec configures any post-deployment check."""
    post = spec.checks.post
    return bool(post.smoke) or any(
        check is not None for check in (post.performance, post.logs, post.feedback)
    )


def release_stale_lock(store: Store, name: ServiceName, releases: list[ReleaseRecord]) -> None:
    """Let go of a deploy lock whose rollout has ended (it ended as the lock was being freed,
    or a crash came in between): only a release still rolling out holds the lock."""
    lock = store.get_lock(f"deploy:{name}")
    if lock is None:
        return
    for release in releases:
        if release.state.get("lock_owner") == lock.owner and release.status not in ROLLOUT_STATUSES:
            store.release_lock(f"deploy:{name}", owner=lock.owner)
            return


def parse_listen(listen: str) -> Address:
    host, _, port = listen.rpartition(":")
    return Address(host or "127.0.0.1", int(port))


class Reconciler:
    """Drives every service toward the state the store asks for. One thread calls ``run``."""

    def __init__(
        self,
        *,
        store: Store,
        platforms: Mapping[str, Platform],
        router: TrafficRouter | None,
        logbook: LogBook,
        clock: Clock | None = None,
        tick_interval: float = 0.2,
        owner: str | None = None,
        prober: Callable[..., ProbeResult] = probe,
        executor: Executor | None = None,
        on_finish: Callable[[ServiceSpec, dict[str, Any]], None] | None = None,
        crash_hook: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.platforms = platforms
        self.router = router
        self.logbook = logbook
        self.clock = clock or SystemClock()
        self.tick_interval = tick_interval
        self.owner = owner or f"controller-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        # Called when a release ends (notify, report); must not raise.
        self.on_finish = on_finish
        # Called with a label at each persisted transition; tests inject a crash there.
        self.crash_hook = crash_hook
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._runtimes: dict[InstanceId, _Runtime] = {}
        self._services: dict[ServiceName, _ServiceRuntime] = {}
        self._specs: dict[tuple[ServiceName, Revision], ServiceSpec] = {}
        self._prober = prober
        self._probes = executor or ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")
        self._stoppers = executor or ThreadPoolExecutor(max_workers=8, thread_name_prefix="stop")
        self._commands_lock = threading.Lock()
        self._validations: dict[tuple[ServiceName, int], Future[list[CheckResult]]] = {}
        # The replicated Swarm service of each native service, as observed this tick.
        self._swarm_views: dict[ServiceName, ReplicatedView | None] = {}
        self._host = HostSampler(
            disk_path=logbook.folder.parent if logbook.folder.parent.exists() else "/"
        )
        self._adopted = False

    # lifecycle ------------------------------------------------------------------------------
    def wake(self) -> None:
        """Run the next tick now (after a change in the store)."""
        self._wakeup.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    def run(self) -> None:
        """Tick until ``stop``; errors in one tick are logged and the loop goes on."""
        while not self._stopping.is_set():
            self._wakeup.clear()
            try:
                self.tick()
            except Exception:  # one bad tick must not kill the controller
                log.exception("reconcile tick failed")
            self.clock.sleep(self.tick_interval, self._wakeup)
        self._probes.shutdown(wait=False, cancel_futures=True)
        self._stoppers.shutdown(wait=False, cancel_futures=True)

    def command(self, service: str, name: str, *, timeout: float = 15.0, **args: Any) -> str:
        """Hand a user command (promote, pause, resume, abort, flip) to the loop; wait for it."""
        cmd = _Command(name, args)
        with self._commands_lock:
            self._services.setdefault(ServiceName(service), _ServiceRuntime()).commands.append(cmd)
        self.wake()
        if not cmd.done.wait(timeout):
            raise TemporaryError(f"the controller did not take '{name}' within {timeout:g}s")
        if cmd.error:
            raise RefusedError(cmd.error)
        return cmd.result

    # the tick -------------------------------------------------------------------------------
    def tick(self) -> None:
        if not self._adopted:
            self.adopt_all()
            self._adopted = True
        for service in self.store.list_services():
            try:
                self.reconcile_service(service)
            except ZerodownError as exc:
                self.store.append_event(service.name, kind="reconcile.error", message=exc.message)
                log.warning("reconcile of %s: %s", service.name, exc.message)

    def adopt_all(self) -> None:
        """Take over instances recorded by an earlier controller, if they are still the same."""
        for record in self.store.list_instances(None, states=(*LIVE_STATES, "stopping")):
            platform = self.platforms.get(record.platform)
            instance = record_to_instance(record)
            spec = self._spec_for(record.service, record.revision)
            if platform is not None and spec is not None and platform.adopt(instance):
                runtime = _Runtime(record, self._tracker(spec, adopted=True))
                runtime.ready = record.state in ("running", "stopping")
                runtime.ready_at = self.clock.monotonic() - 3600 if runtime.ready else 0.0
                self._runtimes[record.id] = runtime
                if record.state == "stopping":  # it was being retired: finish that
                    self._set_state(record, "running")
                self.store.append_event(
                    record.service,
                    revision=record.revision,
                    kind="instance.adopted",
                    message=f"adopted {record.id} (pid {record.pid})",
                    data={"instance": record.id, "pid": record.pid},
                )
            else:
                self.store.save_instance(replace(record, state="crashed"))
                self.store.append_event(
                    record.service,
                    revision=record.revision,
                    kind="instance.lost",
                    message=f"{record.id} (pid {record.pid}) is gone; it will be replaced",
                    data={"instance": record.id, "pid": record.pid},
                )

    def reconcile_service(self, service: ServiceRecord) -> None:
        name = service.name
        srt = self._services.setdefault(name, _ServiceRuntime())
        self._finish_retirements(name)
        self._observe(self._live(name))
        self._collect_logs(self._live(name))

        releases = self.store.list_releases(name, limit=50)
        if self._one_stable(name, releases):
            releases = self.store.list_releases(name, limit=50)
        native = self._in_place(name, releases)
        if native is not None:
            self._sync_tasks(name, native, releases, srt)
        rollout = next((r for r in releases if r.status in ROLLOUT_STATUSES), None)
        stable = next((r for r in releases if r.status == ReleaseStatus.SUCCEEDED), None)
        if rollout is None:
            release_stale_lock(self.store, name, releases)
        if self._take_commands(name, srt, rollout, stable):
            # A command changed a release: act on what it wrote, never on the copy read before
            # (a stale copy saved later would undo the command).
            releases = self.store.list_releases(name, limit=50)
            rollout = next((r for r in releases if r.status in ROLLOUT_STATUSES), None)
            stable = next((r for r in releases if r.status == ReleaseStatus.SUCCEEDED), None)
        if service.desired_state == "stopped":
            self._stop_service(service, releases, srt, native)
            return
        if rollout is not None:
            self._drive(service, rollout, stable)
            releases = self.store.list_releases(name, limit=50)
            rollout = next((r for r in releases if r.status in ROLLOUT_STATUSES), None)
            stable = next((r for r in releases if r.status == ReleaseStatus.SUCCEEDED), None)
        retiring: list[_Runtime] = []
        if native is None:
            retiring = self._maintain_instances(service, releases, rollout, srt)
        else:
            self._act_on_swarm(service, native, releases, rollout, stable, srt)
        self._apply_routes(name, releases, rollout, stable, srt)
        for rt in retiring:
            self._retire(rt)

    # observing ------------------------------------------------------------------------------
    def _live(self, name: ServiceName) -> list[_Runtime]:
        return [rt for rt in self._runtimes.values() if rt.record.service == name and not rt.gone]

    def _observe(self, live: list[_Runtime]) -> None:
        now = self.clock.monotonic()
        for rt in live:
            if rt.retiring is not None:
                continue
            record = rt.record
            if record.meta.get("swarm_task"):
                self._probe_step(rt, now)  # whether the task runs: _sync_tasks asks Swarm
                continue
            platform = self.platforms[record.platform]
            status = platform.status(record_to_instance(record))
            if status.state == InstanceState.EXITED:
                self._probe_cancel(rt)
                platform.stop(record_to_instance(record), grace=0)  # leftovers of its group
                self._collect_logs([rt])
                del self._runtimes[record.id]
                self.store.save_instance(
                    replace(
                        record, state="crashed", meta={**record.meta, "exit_code": status.exit_code}
                    )
                )
                self.store.append_event(
                    record.service,
                    revision=record.revision,
                    kind="instance.crashed",
                    message=f"{record.id} exited with code {status.exit_code}",
                    data={
                        "instance": record.id,
                        "exit_code": status.exit_code,
                        "slot": record.slot,
                    },
                )
                continue
            self._probe_step(rt, now)

    def _probe_step(self, rt: _Runtime, now: float) -> None:
        spec = self._spec_for(rt.record.service, rt.record.revision)
        if spec is None:
            return
        if rt.probe is not None and rt.probe.done():
            try:
                result = rt.probe.result()
            except Exception as exc:  # a prober must not raise; treat it as a failed probe
                result = ProbeResult(ok=False, detail=f"probe error: {exc}", latency_s=0.0)
            rt.probe = None
            before = str(rt.tracker.state)
            rt.tracker.observe(result, now)
            after = str(rt.tracker.state)
            if after != before or (after == "healthy" and not rt.ready):
                self._health_changed(rt, before, after, result, now)
        elif rt.probe is None and now >= rt.next_probe:
            rt.next_probe = now + spec.health_check.interval
            env = {"PORT": str(rt.record.port), "HOST": rt.record.host}
            rt.probe = self._probes.submit(
                self._prober, probe_config(spec), Address(rt.record.host, rt.record.port), env=env
            )

    def _health_changed(
        self, rt: _Runtime, before: str, after: str, result: ProbeResult, now: float
    ) -> None:
        record = rt.record
        if after == "healthy":
            if not rt.ready:
                rt.ready_at = now
            rt.ready = True
            self._set_state(record, "running")
            kind, message = "instance.healthy", f"{record.id} is healthy"
        elif after == "unhealthy":
            self._set_state(record, "unhealthy")
            kind = "instance.unhealthy"
            message = f"{record.id} failed its health check: {result.detail}"
        else:
            return
        self.store.append_event(
            record.service,
            revision=record.revision,
            kind=kind,
            message=message,
            data={"instance": record.id, "detail": result.detail, "from": before},
        )

    def _probe_cancel(self, rt: _Runtime) -> None:
        if rt.probe is not None:
            rt.probe.cancel()
            rt.probe = None

    def _collect_logs(self, live: list[_Runtime]) -> None:
        for rt in live:
            record = rt.record
            platform = self.platforms[record.platform]
            cursor = self.logbook.cursor(record.service, record.id)
            try:
                chunk = platform.read_logs(record_to_instance(record), cursor)
            except ZerodownError:
                continue
            self.logbook.append(
                record.service,
                instance=record.id,
                revision=record.revision,
                version=record.version,
                lines=chunk.lines,
                cursor=chunk.cursor,
                ts=self.clock.now().timestamp(),
            )

    # user commands --------------------------------------------------------------------------
    def _take_commands(
        self,
        name: ServiceName,
        srt: _ServiceRuntime,
        rollout: ReleaseRecord | None,
        stable: ReleaseRecord | None,
    ) -> bool:
        """Apply queued user commands; True if there were any."""
        with self._commands_lock:
            commands, srt.commands = srt.commands, []
        for cmd in commands:
            try:
                cmd.result = self._apply_command(name, cmd, rollout, stable)
            except _Refused as exc:
                cmd.error = str(exc)
            finally:
                cmd.done.set()
            # Commands change statuses: read again for the next one.
            releases = self.store.list_releases(name, limit=50)
            rollout = next((r for r in releases if r.status in ROLLOUT_STATUSES), None)
            stable = next((r for r in releases if r.status == ReleaseStatus.SUCCEEDED), None)
        return bool(commands)

    def _apply_command(
        self,
        name: ServiceName,
        cmd: _Command,
        rollout: ReleaseRecord | None,
        stable: ReleaseRecord | None,
    ) -> str:
        if cmd.name == "flip":
            return self._flip_to(name, int(cmd.args["revision"]), stable, str(cmd.args["who"]))
        if rollout is None:
            raise _Refused(f"{name} has no rollout in progress")
        state = copy.deepcopy(dict(rollout.state))
        if state.get("phase") == "rolling_back":
            raise _Refused(f"revision {rollout.revision} is already rolling back")
        who = str(cmd.args.get("who", "user"))
        if cmd.name == "promote":
            state["promote"] = True
            if cmd.args.get("full"):
                state["promote_full"] = True
            state.pop("paused", None)
            message = f"promote requested by {who}"
        elif cmd.name == "pause":
            spec = self._spec_for(name, rollout.revision)
            if spec is not None and runs_native(spec):
                raise _Refused(
                    "Swarm cannot hold an update on request: a native rollout goes on until it "
                    "ends; 'zerodown abort' rolls it back with Swarm's rollback"
                )
            state["paused"] = {"reason": f"paused by {who}", "kind": "user"}
            message = f"paused by {who}"
        elif cmd.name == "resume":
            paused = state.pop("paused", None)
            if paused is None:
                raise _Refused(f"revision {rollout.revision} is not paused")
            if paused.get("kind") == "step":
                state["promote"] = True
            message = f"resumed by {who}"
        elif cmd.name == "abort":
            reason = str(cmd.args.get("reason") or f"aborted by {who}")
            self._begin_rollback(state, reason, None)
            message = reason
        else:
            raise _Refused(f"unknown command {cmd.name!r}")
        status = ReleaseStatus.PAUSED if state.get("paused") else ReleaseStatus.PROGRESSING
        reason_text = state["paused"]["reason"] if state.get("paused") else message
        self.store.update_release(
            name, rollout.revision, state=state, status=status, reason=reason_text
        )
        self.store.append_event(
            name, revision=rollout.revision, kind=f"rollout.{cmd.name}", message=message
        )
        return message

    def _flip_to(
        self, name: ServiceName, revision: int, stable: ReleaseRecord | None, who: str
    ) -> str:
        """Instant rollback: route to a warm earlier release and make it the stable one."""
        target = self.store.get_release(name, Revision(revision))
        ready = [
            rt
            for rt in self._live(name)
            if rt.record.revision == revision and rt.ready and rt.retiring is None
        ]
        spec = self._spec_for(name, target.revision)
        if spec is None or len(ready) < spec.replicas:
            raise _Refused(f"revision {revision} is not warm any more")
        started = time.monotonic()
        state = copy.deepcopy(dict(target.state))
        state["weights"] = {str(revision): 100}
        state.pop("retire_at", None)
        self.store.update_release(
            name,
            target.revision,
            status=ReleaseStatus.SUCCEEDED,
            reason=f"restored by {who} (instant rollback)",
            state=state,
        )
        if stable is not None and stable.revision != revision:
            self._retire_release(
                name,
                int(stable.revision),
                status=ReleaseStatus.ROLLED_BACK,
                reason=f"rolled back by {who} to revision {revision}",
                after=self._warm_delay(name, int(stable.revision)),
            )
        srt = self._services.setdefault(name, _ServiceRuntime())
        releases = self.store.list_releases(name, limit=50)
        new_stable = next((r for r in releases if r.status == ReleaseStatus.SUCCEEDED), None)
        self._apply_routes(name, releases, None, new_stable, srt)
        seconds = time.monotonic() - started
        if stable is not None and stable.revision != revision:
            rolled_state = copy.deepcopy(dict(self.store.get_release(name, stable.revision).state))
            rolled_state["timings"] = {**(rolled_state.get("timings") or {}), "rollback_s": seconds}
            self.store.update_release(name, stable.revision, state=rolled_state)
        if stable is not None and stable.revision != revision and self.on_finish is not None:
            rolled = self._spec_for(name, stable.revision)
            if rolled is not None:
                try:
                    self.on_finish(
                        rolled,
                        {
                            "service": name,
                            "revision": int(stable.revision),
                            "version": stable.version,
                            "strategy": stable.strategy,
                            "status": "rolled_back",
                            "reason": f"rolled back by {who} to revision {revision}",
                            "operation": "rollback",
                            "timings": {"rollback_s": seconds},
                        },
                    )
                except Exception:
                    log.exception("after-release work failed")
        self.store.append_event(
            name,
            revision=target.revision,
            kind="release.restored",
            message=f"traffic back on revision {revision} in {seconds * 1000:.1f} ms ({who})",
            data={"rollback_s": seconds},
        )
        return f"revision {revision} serves all traffic again ({seconds * 1000:.1f} ms)"

    # rollouts -------------------------------------------------------------------------------
    def _drive(
        self, service: ServiceRecord, rollout: ReleaseRecord, stable: ReleaseRecord | None
    ) -> None:
        name = service.name
        spec = self._spec_for(name, rollout.revision)
        if spec is None:
            return
        original = copy.deepcopy(dict(rollout.state))
        state = copy.deepcopy(original)
        status = rollout.status
        if status == ReleaseStatus.PENDING or "started" not in state:
            state.setdefault("started", rollout.created_at.timestamp())
            state["stable"] = stable.revision if stable is not None else None
            snapshot = self._metrics(name)
            if snapshot is not None:
                state["start_metrics"] = snapshot.to_dict()
                if stable is not None:
                    state["baseline_latency"] = self._lifetime_latency(
                        snapshot, stable.revision, spec.analysis
                    )
            status = ReleaseStatus.PROGRESSING
        stable_rev = state.get("stable")
        ctx = _Context(self, service, rollout, spec, state, stable_rev)
        lock = state.get("lock_owner")
        if lock:
            # Taken over after expiry? The rollout itself is still ours to finish.
            with contextlib.suppress(ZerodownError):
                self.store.acquire_lock(f"deploy:{name}", owner=str(lock), ttl=LOCK_TTL)
        if state.get("phase") == "rolling_back":
            self._advance_rollback(ctx)
        elif "validating" in state:
            self._validate(ctx)
        elif state.get("paused", {}).get("kind") == "user":
            health_guard(ctx)
        elif runs_native(spec) and rollout.strategy != "initial":
            # Any rollout of a native service (a deploy, or a rollback to an earlier spec)
            # is an in-place Swarm update.
            native_strategy.advance(ctx)
        else:
            strategy = STRATEGIES[rollout.strategy]
            if state.get("promote_full") and rollout.strategy == "canary" and stable_rev:
                state["step"] = len(spec.canary_steps or default_canary_steps())
                state["phase"] = "steps"
                state.pop("analysis", None)
                state.pop("promote_full", None)
            strategy(ctx)
        self._sample(ctx)
        outcome = state.pop("outcome", None)
        if (
            outcome is not None
            and outcome["status"] == "succeeded"
            and needs_validation(spec)
            and "postchecks" not in state
        ):
            # Traffic is on the new release now; validate it before calling it done.
            state["validating"] = {"started": ctx.now, "outcome": outcome}
            ctx.emit("validation.started", "post-deployment validation of the new release")
            outcome = None
        if outcome is not None:
            self._finish(ctx, outcome)
            return
        if state.get("paused"):
            status = ReleaseStatus.PAUSED
            reason = str(state["paused"]["reason"])
        else:
            status = ReleaseStatus.PROGRESSING
            reason = self._progress_reason(ctx)
        # Events first, then the state: a crash in between repeats a transition's events on
        # restart rather than losing them.
        for kind, message, data in ctx.events:
            self.store.append_event(
                name, revision=rollout.revision, kind=kind, message=message, data=data
            )
        if state != original or status != rollout.status or reason != rollout.reason:
            self.store.update_release(
                name, rollout.revision, status=status, reason=reason, state=state
            )
            self._hook(f"{rollout.strategy}:{state.get('phase')}:{state.get('step', '')}")

    def _progress_reason(self, ctx: _Context) -> str:
        state = ctx.state
        phase = state.get("phase") or "starting"
        weights = state.get("weights") or {}
        new_weight = weights.get(str(ctx.new), 0)
        total = sum(int(v) for v in weights.values()) or 1
        share = round(100 * int(new_weight) / total)
        if phase == "rolling_back":
            return f"rolling back: {state['rollback']['reason']}"
        if phase == "steps":
            steps = len(ctx.spec.canary_steps or default_canary_steps())
            return f"step {min(int(state.get('step', 0)) + 1, steps)}/{steps}, {share} % traffic"
        return f"{phase}, {share} % traffic on the new release"

    def _validate(self, ctx: _Context) -> None:
        """Post-deployment validation (smoke tests, performance baseline, log scan, user
        feedback), run off the loop's thread; a failure starts the rollback."""
        key = (ctx.service.name, ctx.new)
        future = self._validations.get(key)
        if future is None:
            inputs = self._validation_inputs(ctx)
            self._validations[key] = self._stoppers.submit(run_postchecks, ctx.spec, **inputs)
            return
        if not future.done():
            return
        del self._validations[key]
        try:
            results = future.result()
        except Exception as exc:  # a check must not raise; if one does, it failed
            results = [CheckResult("validation", "fail", f"{type(exc).__name__}: {exc}")]
        pending = ctx.state.pop("validating")
        ctx.state["postchecks"] = [r.to_dict() for r in results]
        failed = [r for r in results if r.status == "fail"]
        ctx.emit(
            "validation.finished",
            f"post-deployment validation: {worst(results)}"
            + (f" ({'; '.join(f'{r.name}: {r.summary}' for r in failed)})" if failed else ""),
            results=ctx.state["postchecks"],
        )
        if failed:
            ctx.rollback(
                "post-deployment validation failed: "
                + "; ".join(f"{r.name}: {r.summary}" for r in failed)
            )
        else:
            ctx.state["outcome"] = pending["outcome"]

    def _validation_inputs(self, ctx: _Context) -> dict[str, Any]:
        """What post-deployment validation measures against: the service address, the new
        release's traffic over the rollout, the previous release's p95, the new logs."""
        spec = ctx.spec
        summary = self._summary(ctx) or {}
        new = (summary.get("versions") or {}).get(str(ctx.new)) or {}
        previous_p95 = ctx.state.get("baseline_latency")
        if ctx.stable is not None:
            stable_figures = (summary.get("versions") or {}).get(str(ctx.stable)) or {}
            previous_p95 = stable_figures.get("latency_p95_s") or previous_p95
        started = float(ctx.state.get("started", ctx.now))
        page = self.logbook.read(ctx.service.name, since=started, limit=100_000)
        lines = [(e.ts, e.instance, e.line) for e in page.entries if e.revision == ctx.new]
        return {
            "base_url": parse_listen(spec.traffic.listen).url,
            "p95_new": new.get("latency_p95_s"),
            "p95_previous": previous_p95,
            "log_lines": lines,
            "requests": new.get("requests"),
            "responses_4xx": int(new.get("responses_4xx") or 0),
            "client_aborts": None,
        }

    def _begin_rollback(self, state: dict[str, Any], reason: str, verdict: Verdict | None) -> None:
        state["phase"] = "rolling_back"
        state["rollback"] = {
            "reason": reason,
            "started": self.clock.now().timestamp(),
            "started_mono": time.monotonic(),
            "verdict": verdict.to_dict() if verdict is not None else None,
        }
        state.pop("analysis", None)
        state.pop("paused", None)
        state.pop("promote", None)
        state.pop("validating", None)

    def _advance_rollback(self, ctx: _Context) -> None:
        """The seed's rollback procedure: stop the rollout, restore the previous version,
        verify its health, notify."""
        if runs_native(ctx.spec):
            native_strategy.advance_rollback(ctx)
            return
        state = ctx.state
        rb = state["rollback"]
        stable = ctx.stable
        if stable is None:
            ctx.set_targets({ctx.new: 0})
            if ctx.live(ctx.new) == 0:
                state["outcome"] = {"status": "failed", "reason": rb["reason"]}
            return
        if not rb.get("switched"):
            ctx.set_targets({stable: ctx.replicas, ctx.new: ctx.live(ctx.new)})
            ready = ctx.ready(stable)
            waited = ctx.now - float(rb["started"])
            if ready >= ctx.replicas or (
                ready > 0 and waited > ctx.spec.health_check.startup_grace
            ):
                ctx.set_weights({stable: 100, ctx.new: 0}, measure="rollback")
                rb["switched"] = True
                ctx.emit(
                    "rollback.switched",
                    f"traffic back on revision {stable} ({ready} instance(s) ready)",
                )
            elif not rb.get("waiting_noted"):
                rb["waiting_noted"] = True
                ctx.emit(
                    "rollback.waiting",
                    f"waiting for revision {stable} to be healthy before switching back "
                    f"({ready}/{ctx.replicas} ready)",
                )
            return
        ctx.set_targets({stable: ctx.replicas, ctx.new: 0})
        if ctx.live(ctx.new) > 0:
            return
        healthy = ctx.ready(stable)
        waited = ctx.now - float(rb["started"])
        if healthy < ctx.replicas and waited < ctx.spec.health_check.startup_grace + 30:
            return
        rb["verified"] = f"{healthy}/{ctx.replicas} instances of revision {stable} healthy"
        state["outcome"] = {"status": "rolled_back", "reason": rb["reason"]}

    def _finish(self, ctx: _Context, outcome: dict[str, Any]) -> None:
        name = ctx.service.name
        state = ctx.state
        status = ReleaseStatus(outcome["status"])
        reason = str(outcome["reason"])
        state["finished"] = self.clock.now().timestamp()
        state["duration_s"] = state["finished"] - float(state.get("started", state["finished"]))
        state.pop("analysis", None)
        state.pop("paused", None)
        recorded = self._record_latency(ctx)
        if recorded:
            state["recorded"] = recorded
        summary = self._summary(ctx)
        if summary:
            state["summary"] = summary
        if status == ReleaseStatus.SUCCEEDED:
            state["weights"] = {str(ctx.new): 100}
        data: dict[str, Any] = {
            "status": str(status),
            "reason": reason,
            "duration_s": state["duration_s"],
            "timings": state.get("timings", {}),
        }
        if "rollback" in state:
            data["verdict"] = state["rollback"].get("verdict")
            data["verified"] = state["rollback"].get("verified")
        kind = {
            ReleaseStatus.SUCCEEDED: "release.succeeded",
            ReleaseStatus.ROLLED_BACK: "release.rolled_back",
            ReleaseStatus.FAILED: "release.failed",
        }[status]
        for event_kind, event_message, event_data in [
            *ctx.events,
            (kind, f"revision {ctx.new} ({ctx.release.version}) {status}: {reason}", data),
        ]:
            self.store.append_event(
                name,
                revision=ctx.release.revision,
                kind=event_kind,
                message=event_message,
                data=event_data,
            )
        # The new release first: a crash before the old one is marked leaves two succeeded
        # releases, which ``_one_stable`` repairs; the other order would leave none.
        self.store.update_release(
            name, ctx.release.revision, status=status, reason=reason, state=state, finished=True
        )
        if status == ReleaseStatus.SUCCEEDED and ctx.stable is not None:
            self._supersede(
                name, ctx.stable, by=ctx.new, after=float(outcome.get("retire_after", 0))
            )
        self._hook(f"{ctx.release.strategy}:finished:{status}")
        lock = state.get("lock_owner")
        if lock:
            self.store.release_lock(f"deploy:{name}", owner=str(lock))
        if self.on_finish is not None:
            payload = {
                "service": name,
                "revision": ctx.new,
                "version": ctx.release.version,
                "strategy": ctx.release.strategy,
                **data,
            }
            try:
                self.on_finish(ctx.spec, payload)
            except Exception:  # notifications and reports must never break the loop
                log.exception("after-release work failed")

    def _supersede(self, name: ServiceName, revision: int, *, by: int, after: float) -> None:
        self._retire_release(
            name,
            revision,
            status=ReleaseStatus.SUPERSEDED,
            reason=f"replaced by revision {by}",
            after=after,
        )

    def _retire_release(
        self, name: ServiceName, revision: int, *, status: ReleaseStatus, reason: str, after: float
    ) -> None:
        """End a release that served: its instances stay warm ``after`` seconds, then go."""
        old = self.store.get_release(name, Revision(revision))
        old_state = copy.deepcopy(dict(old.state))
        old_state["retire_at"] = self.clock.now().timestamp() + after
        self.store.update_release(
            name, old.revision, status=status, reason=reason, state=old_state, finished=True
        )

    def _warm_delay(self, name: ServiceName, revision: int) -> float:
        """How long a release replaced by a flip stays warm: blue-green's scale-down delay."""
        spec = self._spec_for(name, Revision(revision))
        if spec is not None and spec.strategy.blue_green is not None:
            return spec.strategy.blue_green.scale_down_delay_seconds
        return 0.0

    def _one_stable(self, name: ServiceName, releases: list[ReleaseRecord]) -> bool:
        """Repair two succeeded releases (a crash inside ``_finish``): the newest one wins."""
        succeeded = [r for r in releases if r.status == ReleaseStatus.SUCCEEDED]
        for older in succeeded[1:]:
            newest = int(succeeded[0].revision)
            delay = self._warm_delay(name, newest)
            self._supersede(name, int(older.revision), by=newest, after=delay)
        return len(succeeded) > 1

    def _sample(self, ctx: _Context) -> None:
        """During a rollout, record per-version traffic figures at the analysis interval."""
        state = ctx.state
        now = ctx.now
        if now < float(state.get("next_sample", 0)):
            return
        state["next_sample"] = now + ctx.spec.analysis.interval
        current = self._metrics(ctx.service.name)
        if current is None or "start_metrics" not in state:
            return
        start = ServiceMetrics.from_dict(state["start_metrics"])
        if counters_went_back(current, start):
            return
        delta = current.delta(start)
        versions: dict[str, Any] = {}
        for revision in filter(None, (ctx.stable, ctx.new)):
            group = delta.group(group_of(revision))
            p95 = group.latency.quantile(0.95)
            versions[str(revision)] = {
                "requests": group.requests,
                "errors": group.errors,
                "error_rate": group.error_rate,
                "p95_ms": p95 * 1000 if p95 is not None else None,
                "weight": (state.get("weights") or {}).get(str(revision), 0),
                "ready": ctx.ready(revision),
            }
        ctx.emit(
            "rollout.sample",
            "traffic and resources sample",
            t=now,
            versions=versions,
            host=self._host.sample(),
        )

    def _metrics(self, name: ServiceName) -> ServiceMetrics | None:
        if self.router is None:
            return None
        try:
            return self.router.metrics(name)
        except ZerodownError:
            return None

    def _lifetime_latency(
        self, snapshot: ServiceMetrics, revision: int, config: AnalysisSpec
    ) -> float | None:
        group = snapshot.groups.get(group_of(revision))
        if group is None or group.requests == 0:
            return None
        return group.latency.quantile(QUANTILES[config.latency_quantile])

    def _summary(self, ctx: _Context) -> dict[str, Any] | None:
        """Per-version and total traffic figures over the whole rollout, for the report."""
        current = self._metrics(ctx.service.name)
        if current is None or "start_metrics" not in ctx.state:
            return None
        start = ServiceMetrics.from_dict(ctx.state["start_metrics"])
        if counters_went_back(current, start):
            return None
        delta = current.delta(start)
        span = max(ctx.now - float(ctx.state.get("started", ctx.now)), 1e-9)

        def figures(counts: TrafficCounts) -> dict[str, Any]:
            latency = counts.latency
            requests = counts.requests
            unavailable = min(counts.connect_errors + counts.timeouts, requests)
            return {
                "requests": requests,
                "errors_5xx": counts.responses.get("5xx", 0),
                "responses_4xx": counts.responses.get("4xx", 0),
                "error_rate": counts.error_rate,
                "availability": (requests - unavailable) / requests if requests else None,
                "connect_errors": counts.connect_errors,
                "timeouts": counts.timeouts,
                "rps": requests / span,
                "latency_avg_s": latency.mean,
                **{f"latency_{n}_s": latency.quantile(q) for n, q in QUANTILES.items()},
            }

        versions = {}
        for revision in filter(None, (ctx.stable, ctx.new)):
            versions[str(revision)] = figures(delta.group(group_of(revision)))
        return {"seconds": span, "total": figures(delta.total), "versions": versions}

    def _record_latency(self, ctx: _Context) -> dict[str, Any] | None:
        """The new release's figures over the rollout, kept as a baseline for the next one."""
        current = self._metrics(ctx.service.name)
        if current is None or "start_metrics" not in ctx.state:
            return None
        start = ServiceMetrics.from_dict(ctx.state["start_metrics"])
        if counters_went_back(current, start):
            return None
        group = current.delta(start).group(group_of(ctx.new))
        if group.requests == 0:
            return None
        return {
            "requests": group.requests,
            "error_rate": group.error_rate,
            **{name: group.latency.quantile(q) for name, q in QUANTILES.items()},
        }

    # instances ------------------------------------------------------------------------------
    def _targets(
        self, releases: list[ReleaseRecord], rollout: ReleaseRecord | None
    ) -> dict[int, int | None]:
        """Instances wanted per revision; None means 'keep what runs, start nothing'."""
        now = self.clock.now().timestamp()
        rollout_targets = dict(rollout.state.get("targets") or {}) if rollout else {}
        targets: dict[int, int | None] = {}
        for release in releases:
            rev = int(release.revision)
            if str(rev) in rollout_targets:
                targets[rev] = int(rollout_targets[str(rev)])
            elif release.status == ReleaseStatus.SUCCEEDED:
                spec = self._spec_for(release.service, release.revision)
                targets[rev] = spec.replicas if spec is not None else 0
            elif release.status in ROLLOUT_STATUSES:
                targets[rev] = 0
            else:
                retire_at = release.state.get("retire_at")
                targets[rev] = None if retire_at is not None and now < float(retire_at) else 0
        return targets

    def _maintain_instances(
        self,
        service: ServiceRecord,
        releases: list[ReleaseRecord],
        rollout: ReleaseRecord | None,
        srt: _ServiceRuntime,
    ) -> list[_Runtime]:
        """Start missing instances and pick extra ones to retire; returns those to retire."""
        targets = self._targets(releases, rollout)
        by_revision = {int(r.revision): r for r in releases}
        live = self._live(service.name)
        crashed = self.store.list_instances(service.name, states=("crashed",))
        retire: list[_Runtime] = []
        for rev, release in by_revision.items():
            target = targets.get(rev, 0)
            mine = sorted(
                (rt for rt in live if rt.record.revision == rev and rt.retiring is None),
                key=lambda rt: rt.record.slot,
            )
            dead = [c for c in crashed if c.revision == rev]
            if target is None:
                for record in dead:
                    self.store.delete_instance(record.id)
                continue
            if len(mine) > target:
                retire.extend(mine[target:])
                mine = mine[:target]
            spec = self._spec_for(service.name, release.revision)
            if spec is None:
                continue
            have = {rt.record.slot for rt in mine}
            dead_by_slot = {c.slot: c for c in dead}
            for record in dead:
                if record.slot >= target:
                    self.store.delete_instance(record.id)
                    self.logbook.forget(service.name, record.id)
            for slot in range(target):
                if slot in have:
                    continue
                previous = dead_by_slot.get(slot)
                if previous is not None and not self._may_restart(
                    service, release, spec, previous, srt
                ):
                    continue
                self._start_instance(service, release, spec, slot, previous)
        for rt in live:  # instances of releases no longer listed at all
            if rt.retiring is None and int(rt.record.revision) not in by_revision:
                retire.append(rt)
        return retire

    def _may_restart(
        self,
        service: ServiceRecord,
        release: ReleaseRecord,
        spec: ServiceSpec,
        previous: InstanceRecord,
        srt: _ServiceRuntime,
    ) -> bool:
        if release.status in ROLLOUT_STATUSES:
            return False  # during a rollout a crash is a health failure: the strategy decides
        policy = spec.run.restart
        if policy == "never":
            return False
        if policy == "on-failure" and previous.meta.get("exit_code") == 0:
            return False
        now = self.clock.monotonic()
        history = srt.restarts.setdefault((int(previous.revision), previous.slot), deque())
        while history and now - history[0] > spec.run.restart_window:
            history.popleft()
        if len(history) >= spec.run.max_restarts:
            if previous.meta.get("gave_up") != "yes":
                self.store.save_instance(
                    replace(previous, meta={**previous.meta, "gave_up": "yes"})
                )
                self.store.append_event(
                    service.name,
                    revision=release.revision,
                    kind="instance.gave_up",
                    message=f"slot {previous.slot} crashed {len(history)} times within "
                    f"{spec.run.restart_window:g}s; not restarting it",
                    data={"slot": previous.slot},
                )
            return False
        history.append(now)
        return True

    def _start_instance(
        self,
        service: ServiceRecord,
        release: ReleaseRecord,
        spec: ServiceSpec,
        slot: int,
        previous: InstanceRecord | None,
    ) -> None:
        platform = self.platforms[spec.platform]
        instance = platform.start(self._request(service, release, spec, slot))
        restarts = previous.restarts + 1 if previous is not None else 0
        record = instance_to_record(instance, state="starting", restarts=restarts)
        self.store.save_instance(record)
        if previous is not None:
            self.store.delete_instance(previous.id)
            self.logbook.forget(service.name, previous.id)
        self._runtimes[record.id] = _Runtime(record, self._tracker(spec, adopted=False))
        self.store.append_event(
            service.name,
            revision=release.revision,
            kind="instance.restarted" if previous is not None else "instance.started",
            message=f"started {record.id} (pid {record.pid}) on {instance.address}"
            + (f", replacing {previous.id}" if previous is not None else ""),
            data={"instance": record.id, "pid": record.pid, "port": record.port, "slot": slot},
        )

    def _request(
        self, service: ServiceRecord, release: ReleaseRecord, spec: ServiceSpec, slot: int
    ) -> InstanceRequest:
        workdir = Path(service.spec_path).parent
        if spec.run.workdir:
            workdir = (workdir / spec.run.workdir).resolve()
        return instance_request(
            spec,
            service=ServiceName(service.name),
            version=Version(release.version),
            revision=release.revision,
            slot=slot,
            spec_dir=Path(service.spec_path).parent,
            workdir=workdir,
        )

    def _retire(self, rt: _Runtime) -> None:
        """Drain (no new requests, in-flight ones finish) and stop, off the loop's thread."""
        if rt.retiring is not None:
            return
        record = rt.record
        self._probe_cancel(rt)
        self._set_state(record, "stopping")
        grace = self._grace(rt)
        drain_timeout = min(grace, 30.0)

        def work() -> None:
            if self.router is not None and rt.ready:
                # Out of the table either way; stopping is still right if draining failed.
                with contextlib.suppress(ZerodownError):
                    self.router.drain(record.service, record.id, timeout=drain_timeout)
            status = self.platforms[record.platform].stop(record_to_instance(record), grace=grace)
            rt.record = replace(rt.record, meta={**rt.record.meta, "exit_code": status.exit_code})

        rt.retiring = self._stoppers.submit(work)

    def _finish_retirements(self, name: ServiceName) -> None:
        for rt in list(self._runtimes.values()):
            if rt.record.service != name or rt.retiring is None or not rt.retiring.done():
                continue
            record = rt.record
            error = rt.retiring.exception()
            self._collect_logs([rt])
            self._runtimes.pop(record.id, None)
            self.store.delete_instance(record.id)
            self.logbook.forget(record.service, record.id)
            exit_code = record.meta.get("exit_code")
            self.store.append_event(
                record.service,
                revision=record.revision,
                kind="instance.stopped",
                message=f"drained and stopped {record.id} (exit code {exit_code})"
                + (f"; {error}" if error else ""),
                data={"instance": record.id, "exit_code": exit_code},
            )

    def _stop_service(
        self,
        service: ServiceRecord,
        releases: list[ReleaseRecord],
        srt: _ServiceRuntime,
        native: InPlaceUpdates | None = None,
    ) -> None:
        name = service.name
        live = self._live(name)
        if self.router is not None and srt.applied_routes is not None:
            self.router.remove_service(name)
            srt.applied_routes = None
        if self.router is not None and srt.applied_preview is not None:
            self.router.remove_service(srt.applied_preview.service)
            srt.applied_preview = None
        view = self._swarm_views.get(name)
        if native is not None and (view is None or view.exists):
            # Swarm stops the tasks (with their stop grace period) once the service is gone;
            # stopping one while its service lives would only make Swarm start another.
            action = SwarmAction("remove", None, f"{name} stops: removing its Swarm service")
            if not self._ask_swarm(service, native, releases, action, srt):
                return
        for rt in live:
            self._retire(rt)
        if any(rt.retiring is not None for rt in self._live(name)):
            return
        for record in self.store.list_instances(name, states=("crashed",)):
            self.store.delete_instance(record.id)
        for release in releases:
            if release.status in ACTIVE_STATUSES:
                self.store.update_release(
                    name,
                    release.revision,
                    status=ReleaseStatus.STOPPED,
                    reason="service stopped",
                    finished=True,
                )
                self.store.append_event(
                    name,
                    revision=release.revision,
                    kind="service.stopped",
                    message=f"{name} stopped",
                )
                lock = release.state.get("lock_owner")
                if lock:
                    self.store.release_lock(f"deploy:{name}", owner=str(lock))

    # services run by Swarm (strategy: native) ----------------------------------------------
    def _in_place(self, name: ServiceName, releases: list[ReleaseRecord]) -> InPlaceUpdates | None:
        """The platform that runs the service as one replicated service, if its newest release
        says so (a deploy never switches a service between the two ways)."""
        if not releases:
            return None
        spec = self._spec_for(name, releases[0].revision)
        if spec is None or not runs_native(spec):
            self._swarm_views.pop(name, None)
            return None
        platform = self.platforms.get(spec.platform)
        return platform if isinstance(platform, InPlaceUpdates) else None

    def _sync_tasks(
        self,
        name: ServiceName,
        platform: InPlaceUpdates,
        releases: list[ReleaseRecord],
        srt: _ServiceRuntime,
    ) -> None:
        """Observe the Swarm service; make instances of the tasks it started, drain the ones it
        stops, record the ones that crashed."""
        try:
            view = platform.observe_replicated(name)
        except ZerodownError as exc:
            self._swarm_views[name] = None
            self._swarm_failed(name, f"observing the Swarm service: {exc.message}", srt)
            return
        self._swarm_views[name] = view
        live = {
            str(rt.record.meta["swarm_task"]): rt
            for rt in self._live(name)
            if rt.record.meta.get("swarm_task")
        }
        changes = task_changes(view, {tid: rt.retiring is not None for tid, rt in live.items()})
        for task in changes.crashed:
            self._task_crashed(live[task.id], task)
        for task_id in changes.stopping:
            self._retire(live[task_id])
        rolling_out = {int(r.revision) for r in releases if r.status in ROLLOUT_STATUSES}
        crashed = [
            record
            for record in self.store.list_instances(name, states=("crashed",))
            if record.meta.get("swarm_task")
        ]
        for task in changes.started:
            assert task.revision is not None
            spec = self._spec_for(name, Revision(task.revision))
            if spec is None:
                continue  # not a revision of ours
            # A crash during a rollout stays on record for the strategy to see.
            previous = next(
                (
                    c
                    for c in crashed
                    if int(c.revision) == task.revision
                    and c.slot == task.slot
                    and task.revision not in rolling_out
                ),
                None,
            )
            if previous is not None:
                crashed.remove(previous)
            self._task_started(name, platform, view, task, spec, previous)
        tasks = {task.id: task for task in view.tasks}
        for record in crashed:
            ended = tasks.get(str(record.meta["swarm_task"]))
            replaced = ended is None or ended.state in ENDED_BY_SWARM  # lost while no one watched
            if replaced or int(record.revision) not in rolling_out:
                self.store.delete_instance(record.id)
                self.logbook.forget(name, record.id)

    def _task_started(
        self,
        name: ServiceName,
        platform: InPlaceUpdates,
        view: ReplicatedView,
        task: TaskView,
        spec: ServiceSpec,
        previous: InstanceRecord | None,
    ) -> None:
        instance = platform.task_instance(name, view, task)
        restarts = previous.restarts + 1 if previous is not None else 0
        record = instance_to_record(instance, state="starting", restarts=restarts)
        self.store.save_instance(record)
        if previous is not None:
            self.store.delete_instance(previous.id)
            self.logbook.forget(name, previous.id)
        self._runtimes[record.id] = _Runtime(record, self._tracker(spec, adopted=False))
        self.store.append_event(
            name,
            revision=record.revision,
            kind="instance.restarted" if previous is not None else "instance.started",
            message=f"Swarm started task {task.id[:12]} (slot {task.slot}) as {record.id} on "
            f"{instance.address}" + (f", replacing {previous.id}" if previous is not None else ""),
            data={"instance": record.id, "port": record.port, "slot": task.slot, "task": task.id},
        )

    def _task_crashed(self, rt: _Runtime, task: TaskView) -> None:
        record = rt.record
        self._probe_cancel(rt)
        self._collect_logs([rt])
        del self._runtimes[record.id]
        self.store.save_instance(
            replace(record, state="crashed", meta={**record.meta, "exit_code": task.exit_code})
        )
        detail = f"task {task.state}" + (f": {task.error}" if task.error else "")
        self.store.append_event(
            record.service,
            revision=record.revision,
            kind="instance.crashed",
            message=f"{record.id} exited with code {task.exit_code} ({detail})",
            data={"instance": record.id, "exit_code": task.exit_code, "slot": record.slot},
        )

    def _act_on_swarm(
        self,
        service: ServiceRecord,
        platform: InPlaceUpdates,
        releases: list[ReleaseRecord],
        rollout: ReleaseRecord | None,
        stable: ReleaseRecord | None,
        srt: _ServiceRuntime,
    ) -> None:
        """Ask Swarm for what the persisted state wants (read after the strategy wrote it)."""
        view = self._swarm_views.get(service.name)
        if view is None:
            return
        want: int | None = None
        rollback_to: int | None = None
        remove = False
        force = 0
        settle = False
        if rollout is not None:
            state = rollout.state
            if state.get("phase") == "rolling_back":
                remove = stable is None
                rollback_to = int(stable.revision) if stable is not None else None
            elif rollout.strategy == "initial" or stable is None:
                want = int(rollout.revision)
            elif "native" in state:
                want = int(rollout.revision)
                force = int(state["native"].get("force", 0))
            else:  # the strategy has not decided yet
                want, settle = int(stable.revision), True
        elif stable is not None:
            want, settle = int(stable.revision), True
        action = next_action(
            view,
            want=want,
            force=force,
            rollback_to=rollback_to,
            remove=remove,
            settle_first=settle,
        )
        if action is not None:
            # The event belongs to the rollout that asked for it (its report shows it).
            on = rollout.revision if rollout is not None else None
            if on is None and want is not None:
                on = Revision(want)
            self._ask_swarm(service, platform, releases, action, srt, on=on)

    def _ask_swarm(
        self,
        service: ServiceRecord,
        platform: InPlaceUpdates,
        releases: list[ReleaseRecord],
        action: SwarmAction,
        srt: _ServiceRuntime,
        *,
        on: Revision | None = None,
    ) -> bool:
        name = service.name
        try:
            if action.kind == "remove":
                platform.remove_replicated(name)
            elif action.kind == "rollback":
                platform.rollback_replicated(name)
            else:
                release = next(r for r in releases if int(r.revision) == action.revision)
                spec = self._spec_for(name, release.revision)
                if spec is None:
                    return False
                request = self._request(service, release, spec, 0)
                platform.apply_replicated(replicated_request(spec, request, force=action.force))
        except ZerodownError as exc:
            self._swarm_failed(name, f"{action.why}: {exc.message}", srt)
            return False
        srt.swarm_error = ""
        self._swarm_views[name] = None  # what was observed is out of date now
        self.store.append_event(
            name,
            revision=on,
            kind=f"swarm.{action.kind}",
            message=action.why,
            data={"revision": action.revision, "force": action.force},
        )
        return True

    def _swarm_failed(self, name: ServiceName, message: str, srt: _ServiceRuntime) -> None:
        """Record a failure to talk to Swarm once (the next ticks try again quietly)."""
        if message != srt.swarm_error:
            srt.swarm_error = message
            self.store.append_event(name, kind="swarm.error", message=message)
            log.warning("%s: %s", name, message)

    # routes ---------------------------------------------------------------------------------
    def _apply_routes(
        self,
        name: ServiceName,
        releases: list[ReleaseRecord],
        rollout: ReleaseRecord | None,
        stable: ReleaseRecord | None,
        srt: _ServiceRuntime,
    ) -> None:
        if self.router is None:
            return
        anchor = stable or rollout
        if anchor is None:
            return
        spec = self._spec_for(name, anchor.revision)
        if spec is None:
            return
        groups: dict[str, list[Backend]] = {}
        for rt in sorted(self._live(name), key=lambda r: (r.record.revision, r.record.slot)):
            if rt.ready and rt.retiring is None and str(rt.tracker.state) != "unhealthy":
                groups.setdefault(group_of(int(rt.record.revision)), []).append(
                    Backend(id=rt.record.id, address=Address(rt.record.host, rt.record.port))
                )
        source = rollout if rollout is not None else stable
        raw = dict((source.state.get("weights") if source is not None else None) or {})
        if not raw and stable is not None:
            raw = {str(stable.revision): 100}
        weights = {group_of(int(rev)): int(w) for rev, w in raw.items()}
        # Never send traffic to a group that has nobody to serve it: its share goes to the
        # others (a safety net; strategies only shift weight to ready instances).
        served = {g: w for g, w in weights.items() if w > 0 and groups.get(g)}
        if not served and groups:
            fallback = group_of(int(stable.revision)) if stable is not None else None
            if fallback not in groups:
                fallback = max(groups)
            served = {fallback: 100}
        rules: tuple[MatchRule, ...] = ()
        if rollout is not None and rollout.strategy == "canary" and stable is not None:
            rollout_spec = self._spec_for(name, rollout.revision)
            matches = getattr(rollout_spec.traffic, "canary_match", ()) if rollout_spec else ()
            rules = tuple(
                MatchRule(
                    group=group_of(int(rollout.revision)),
                    header=getattr(m, "header", None),
                    cookie=getattr(m, "cookie", None),
                    value=str(getattr(m, "value", "")),
                )
                for m in matches or ()
            )
        routes = ServiceRoutes(
            service=name,
            listen=parse_listen(spec.traffic.listen),
            groups={g: tuple(b) for g, b in groups.items()},
            weights=served,
            sticky=spec.traffic.sticky_sessions,
            rules=rules,
        )
        if srt.applied_routes is None and not groups:
            return
        if routes != srt.applied_routes:
            started = time.monotonic()
            self.router.apply(routes)
            took = time.monotonic() - started
            srt.applied_routes = routes
            self._measured(name, rollout, took)
        self._apply_preview(name, rollout, groups, srt)

    def _measured(self, name: ServiceName, rollout: ReleaseRecord | None, took: float) -> None:
        """Record the duration of a switch or rollback that the strategy asked to measure."""
        if rollout is None:
            return
        fresh = self.store.get_release(name, rollout.revision)
        measure = fresh.state.get("measure")
        if not measure:
            return
        state = copy.deepcopy(dict(fresh.state))
        state.pop("measure", None)
        timings = dict(state.get("timings") or {})
        timings[f"{measure}_apply_s"] = took
        if measure == "rollback" and "rollback" in state:
            decided = float(state["rollback"].get("started_mono", time.monotonic()))
            timings["rollback_s"] = max(time.monotonic() - decided, took)
        else:
            timings[f"{measure}_s"] = took
        state["timings"] = timings
        self.store.update_release(name, rollout.revision, state=state)
        self.store.append_event(
            name,
            revision=rollout.revision,
            kind=f"traffic.{measure}",
            message=f"{measure}: routing table applied in {took * 1000:.2f} ms",
            data={"seconds": took, **timings},
        )

    def _apply_preview(
        self,
        name: ServiceName,
        rollout: ReleaseRecord | None,
        groups: dict[str, list[Backend]],
        srt: _ServiceRuntime,
    ) -> None:
        assert self.router is not None
        preview: ServiceRoutes | None = None
        if rollout is not None and rollout.strategy == "blue-green":
            spec = self._spec_for(name, rollout.revision)
            bg = spec.strategy.blue_green if spec is not None else None
            group = group_of(int(rollout.revision))
            if bg is not None and bg.preview_port and groups.get(group):
                preview = ServiceRoutes(
                    service=f"{name}-preview",
                    listen=Address("127.0.0.1", bg.preview_port),
                    groups={group: tuple(groups[group])},
                    weights={group: 100},
                )
        if preview == srt.applied_preview:
            return
        if preview is None:
            assert srt.applied_preview is not None
            self.router.remove_service(srt.applied_preview.service)
        else:
            self.router.apply(preview)
        srt.applied_preview = preview

    # helpers --------------------------------------------------------------------------------
    def _spec_for(self, service: ServiceName, revision: Revision) -> ServiceSpec | None:
        key = (service, revision)
        if key not in self._specs:
            try:
                release = self.store.get_release(service, revision)
                svc = self.store.get_service(service)
            except ZerodownError:
                return None
            self._specs[key] = parse_spec(release.spec_text, filename=svc.spec_path).spec
        return self._specs[key]

    def _tracker(self, spec: ServiceSpec, *, adopted: bool) -> HealthTracker:
        hc = spec.health_check
        return HealthTracker(
            success_threshold=hc.success_threshold,
            failure_threshold=hc.failure_threshold,
            startup_grace=0.0 if adopted else hc.startup_grace,
            started_at=self.clock.monotonic(),
        )

    def _grace(self, rt: _Runtime) -> float:
        spec = self._spec_for(rt.record.service, rt.record.revision)
        return spec.run.stop_grace_seconds if spec is not None else 10.0

    def _set_state(self, record: InstanceRecord, state: str) -> None:
        rt = self._runtimes.get(record.id)
        current = rt.record if rt is not None else record
        updated = replace(current, state=state)
        self.store.save_instance(updated)
        if rt is not None:
            rt.record = updated

    def _hook(self, label: str) -> None:
        if self.crash_hook is not None:
            self.crash_hook(label)

    def live_runtime(self, instance_id: str) -> dict[str, object] | None:
        """Health and readiness of a live instance, for status views."""
        rt = self._runtimes.get(InstanceId(instance_id))
        if rt is None:
            return None
        return {"health": str(rt.tracker.state), "ready": rt.ready}


class _Refused(Exception):
    """A user command that cannot be applied now (the message says why)."""


class _Context:
    """The ``RolloutContext`` of one rollout during one tick."""

    def __init__(
        self,
        reconciler: Reconciler,
        service: ServiceRecord,
        release: ReleaseRecord,
        spec: ServiceSpec,
        state: dict[str, Any],
        stable: int | None,
    ) -> None:
        self._r = reconciler
        self.service = service
        self.release = release
        self.spec = spec
        self.state = state
        self.new = int(release.revision)
        self.stable = stable
        self.now = reconciler.clock.now().timestamp()
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    @property
    def replicas(self) -> int:
        return self.spec.replicas

    def _mine(self, revision: int) -> list[_Runtime]:
        return [
            rt
            for rt in self._r._live(self.service.name)
            if int(rt.record.revision) == revision and rt.retiring is None
        ]

    def available(self, revision: int) -> int:
        min_ready = 0.0
        if self.spec.strategy.rolling is not None:
            min_ready = self.spec.strategy.rolling.min_ready_seconds
        now = self._r.clock.monotonic()
        return sum(
            1
            for rt in self._mine(revision)
            if rt.ready and str(rt.tracker.state) != "unhealthy" and now - rt.ready_at >= min_ready
        )

    def ready(self, revision: int) -> int:
        return sum(
            1 for rt in self._mine(revision) if rt.ready and str(rt.tracker.state) != "unhealthy"
        )

    def live(self, revision: int) -> int:
        return len(self._mine(revision))

    def failing(self) -> list[str]:
        crashed = [
            f"{r.id} exited with code {r.meta.get('exit_code')}"
            for r in self._r.store.list_instances(self.service.name, states=("crashed",))
            if int(r.revision) == self.new
        ]
        unhealthy = [
            f"{rt.record.id} failed its health check ({rt.tracker.last_detail})"
            for rt in self._mine(self.new)
            if rt.ready and str(rt.tracker.state) == "unhealthy"
        ]
        return crashed + unhealthy

    def never_healthy(self) -> list[str]:
        return [
            str(rt.record.id)
            for rt in self._mine(self.new)
            if not rt.ready and str(rt.tracker.state) == "unhealthy"
        ]

    def set_targets(self, targets: dict[int, int]) -> None:
        self.state["targets"] = {str(k): int(v) for k, v in targets.items()}

    def set_weights(self, weights: dict[int, int], *, measure: str | None = None) -> None:
        new = {str(k): int(v) for k, v in weights.items()}
        if new != self.state.get("weights"):
            self.state["weights"] = new
            if measure:
                self.state["measure"] = measure

    def weights(self) -> dict[int, int]:
        return {int(k): int(v) for k, v in (self.state.get("weights") or {}).items()}

    def start_analysis(self, config: AnalysisSpec, *, label: str) -> None:
        snapshot = self._r._metrics(self.service.name)
        self.state["analysis"] = {
            "label": label,
            "started": self.now,
            "next_eval": self.now + config.interval,
            "config": config.model_dump(mode="json"),
            "snapshot": snapshot.to_dict() if snapshot is not None else None,
            "log_errors": self._log_errors(),
        }
        self.emit("analysis.started", f"{label}: measuring (judge {config.judge})")

    def _log_errors(self) -> dict[int, int]:
        """Error-level log lines per revision so far (the analysis window differences them)."""
        return self._r.logbook.error_lines(self.service.name)

    def analysis_running(self) -> bool:
        return "analysis" in self.state

    def stop_analysis(self) -> None:
        self.state.pop("analysis", None)

    def evaluate_analysis(self) -> Verdict | None:
        window = self.state.get("analysis")
        if window is None or self.now < float(window["next_eval"]):
            return None
        config = AnalysisSpec.model_validate(window["config"])
        window["next_eval"] = self.now + config.interval
        current = self._r._metrics(self.service.name)
        if current is None:
            verdict = Verdict(
                outcome=Outcome.INCONCLUSIVE,
                reason="no traffic metrics: the controller runs without the data plane",
                measurements=(),
                judge=config.judge,
                requests_needed=config.min_requests,
            )
        else:
            if window.get("snapshot") is None:
                window["snapshot"] = current.to_dict()
                window["log_errors"] = self._log_errors()
                return None
            start = ServiceMetrics.from_dict(window["snapshot"])
            if counters_went_back(current, start):
                window["snapshot"] = current.to_dict()
                window["log_errors"] = self._log_errors()
                window["started"] = self.now
                self.emit("analysis.reset", "the data plane restarted: measuring again")
                return None
            delta = current.delta(start)
            logs_now = self._log_errors()
            logs_then = {int(k): int(v) for k, v in (window.get("log_errors") or {}).items()}
            if "log_errors" not in window:  # started before log errors were measured
                window["log_errors"] = logs_then = logs_now
            baseline = None
            if self.stable is not None:
                baseline = version_window(
                    delta.group(group_of(self.stable)),
                    log_errors=log_errors_since(logs_now, logs_then, self.stable),
                )
            data = AnalysisInput(
                canary=version_window(
                    delta.group(group_of(self.new)),
                    log_errors=log_errors_since(logs_now, logs_then, self.new),
                ),
                baseline=baseline,
                recorded_baseline_latency=self.state.get("baseline_latency"),
                unhealthy_instances=tuple(self.failing()),
                elapsed=self.now - float(window["started"]),
            )
            verdict = judge_for(config.judge).judge(data, config)
        verdicts = list(self.state.get("verdicts") or [])
        verdicts.append({"t": self.now, "label": window["label"], **verdict.to_dict()})
        self.state["verdicts"] = verdicts[-MAX_VERDICTS:]
        self.emit(
            "analysis.verdict",
            f"{window['label']}: {verdict.outcome}: {verdict.reason}",
            verdict=verdict.to_dict(),
        )
        return verdict

    def take_promote(self) -> bool:
        return bool(self.state.pop("promote", False))

    def pause(self, reason: str, *, kind: str = "step") -> None:
        if self.state.get("paused", {}).get("reason") != reason:
            self.emit("rollout.paused", reason)
        self.state["paused"] = {"reason": reason, "kind": kind}

    def unpause(self) -> None:
        self.state.pop("paused", None)

    def paused(self) -> bool:
        return "paused" in self.state

    def succeed(self, reason: str, *, retire_stable_after: float = 0.0) -> None:
        self.state["outcome"] = {
            "status": "succeeded",
            "reason": reason,
            "retire_after": retire_stable_after,
        }

    def rollback(self, reason: str, verdict: Verdict | None = None) -> None:
        self._r._begin_rollback(self.state, reason, verdict)
        self.emit("rollback.started", f"automatic rollback: {reason}")
        self._r._advance_rollback(self)

    def emit(self, kind: str, message: str, **data: Any) -> None:
        self.events.append((kind, message, data))

    def swarm(self) -> ReplicatedView | None:
        return self._r._swarm_views.get(self.service.name)
