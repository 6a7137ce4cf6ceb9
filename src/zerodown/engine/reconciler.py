"""The reconcile loop: move every service from what is running toward what the store asks for.

One thread runs ``Reconciler.run``; each ``tick`` observes (instance processes, health probes,
new log lines), decides with small pure functions, acts, and writes every transition to the store
*before* acting on it, so a controller killed at any point resumes from the store when restarted.

What the store asks for, per service:

- ``desired_state == "stopped"``: drain and stop every instance, remove the routes, mark the
  current release ``stopped``.
- the newest release ``pending``/``progressing`` with no release serving yet (``zerodown up``):
  start ``replicas`` instances, wait until each is healthy, route traffic, mark it ``succeeded``;
  an instance that does not become healthy within the startup grace fails the release.
- a ``succeeded`` release: keep ``replicas`` healthy instances: a crashed instance is restarted by
  the spec's restart policy (``maxRestarts`` within ``restartWindow``); an unhealthy one is taken
  out of rotation until it recovers.

Instances found in the store at start are *adopted* (same PID and start time) rather than
restarted, and the routes they were serving are kept as they are.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from zerodown.checks.health import HealthProbeConfig, HealthTracker, ProbeResult, probe
from zerodown.core.clock import Clock, SystemClock
from zerodown.core.errors import ZerodownError
from zerodown.core.types import Address, InstanceId, Revision, ServiceName, Version
from zerodown.ops.logs import LogBook
from zerodown.platforms.base import Instance, InstanceRequest, InstanceState, Platform
from zerodown.spec import LoadedSpec, ServiceSpec, parse_spec
from zerodown.store.base import (
    InstanceRecord,
    ReleaseRecord,
    ReleaseStatus,
    ServiceRecord,
    Store,
)
from zerodown.traffic.base import Backend, ServiceRoutes, TrafficRouter

__all__ = ["LIVE_STATES", "Reconciler"]

log = logging.getLogger(__name__)

LIVE_STATES: tuple[str, ...] = ("starting", "running", "unhealthy")
ACTIVE_STATUSES = (ReleaseStatus.PENDING, ReleaseStatus.PROGRESSING, ReleaseStatus.SUCCEEDED)
STABLE_GROUP = "stable"


@dataclass
class _Runtime:
    """What the reconciler knows of one live instance beyond its store record."""

    record: InstanceRecord
    tracker: HealthTracker
    next_probe: float = 0.0
    probe: Future[ProbeResult] | None = None
    ready: bool = False  # has been healthy at least once: may receive traffic


@dataclass
class _ServiceRuntime:
    restarts: dict[int, deque[float]] = field(default_factory=dict)  # slot -> restart times
    applied_routes: ServiceRoutes | None = None


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
        meta={str(k): str(v) for k, v in record.meta.items()},
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
    ) -> None:
        self.store = store
        self.platforms = platforms
        self.router = router
        self.logbook = logbook
        self.clock = clock or SystemClock()
        self.tick_interval = tick_interval
        self.owner = owner or f"controller-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._runtimes: dict[InstanceId, _Runtime] = {}
        self._services: dict[ServiceName, _ServiceRuntime] = {}
        self._specs: dict[tuple[ServiceName, Revision], ServiceSpec] = {}
        self._prober = prober
        self._probes = executor or ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")
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
        for record in self.store.list_instances(None, states=LIVE_STATES):
            platform = self.platforms.get(record.platform)
            instance = record_to_instance(record)
            spec = self._spec_for(record.service, record.revision)
            if platform is not None and spec is not None and platform.adopt(instance):
                runtime = _Runtime(record, self._tracker(spec, adopted=True))
                runtime.ready = record.state == "running"
                self._runtimes[record.id] = runtime
                self.store.append_event(
                    record.service,
                    revision=record.revision,
                    kind="instance.adopted",
                    message=f"adopted {record.id} (pid {record.pid})",
                    data={"instance": record.id, "pid": record.pid},
                )
            else:
                self._set_state(record, "crashed")
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
        live = [rt for rt in self._runtimes.values() if rt.record.service == name]
        self._observe(live)
        live = [rt for rt in self._runtimes.values() if rt.record.service == name]
        self._collect_logs(live)

        releases = self.store.list_releases(name, limit=20)
        active = next((r for r in releases if r.status in ACTIVE_STATUSES), None)

        if service.desired_state == "stopped":
            self._stop_service(service, active, live, srt)
            return
        if active is None:
            return
        spec = self._spec_for(name, active.revision)
        if spec is None:
            return
        if active.status == ReleaseStatus.PENDING:
            active = self.store.update_release(
                name, active.revision, status=ReleaseStatus.PROGRESSING, reason="starting instances"
            )
            self.store.append_event(
                name,
                revision=active.revision,
                kind="release.progressing",
                message=f"revision {active.revision} ({active.version}): starting "
                f"{spec.replicas} instance(s)",
            )
        self._keep_replicas(service, active, spec, live, srt)
        active = self.store.get_release(name, active.revision)
        if active.status not in ACTIVE_STATUSES:
            return
        live = [rt for rt in self._runtimes.values() if rt.record.service == name]
        if active.status == ReleaseStatus.PROGRESSING:
            self._progress_initial(active, spec, live)
        self._apply_routes(name, spec, srt)

    # observing ------------------------------------------------------------------------------
    def _observe(self, live: list[_Runtime]) -> None:
        now = self.clock.monotonic()
        for rt in live:
            record = rt.record
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
            result = rt.probe.result()
            rt.probe = None
            before = rt.tracker.state
            rt.tracker.observe(result, now)
            after = rt.tracker.state
            if after != before or (after == "healthy" and not rt.ready):
                self._health_changed(rt, before, after, result)
        elif rt.probe is None and now >= rt.next_probe:
            rt.next_probe = now + spec.health_check.interval
            env = {"PORT": str(rt.record.port), "HOST": rt.record.host}
            rt.probe = self._probes.submit(
                self._prober, probe_config(spec), Address(rt.record.host, rt.record.port), env=env
            )

    def _health_changed(self, rt: _Runtime, before: str, after: str, result: ProbeResult) -> None:
        record = rt.record
        if after == "healthy":
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

    # acting ---------------------------------------------------------------------------------
    def _keep_replicas(
        self,
        service: ServiceRecord,
        release: ReleaseRecord,
        spec: ServiceSpec,
        live: list[_Runtime],
        srt: _ServiceRuntime,
    ) -> None:
        """Start an instance for every slot of ``release`` that has none (by restart policy)."""
        have = {rt.record.slot for rt in live if rt.record.revision == release.revision}
        crashed = {
            r.slot: r
            for r in self.store.list_instances(service.name, states=("crashed",))
            if r.revision == release.revision
        }
        if release.status == ReleaseStatus.PROGRESSING and crashed:
            first = next(iter(crashed.values()))
            mine = [rt for rt in live if rt.record.revision == release.revision]
            self._fail_release(
                release,
                mine,
                f"{first.id} exited with code {first.meta.get('exit_code')} before it became "
                "healthy",
            )
            return
        for slot in range(spec.replicas):
            if slot in have:
                continue
            previous = crashed.get(slot)
            if previous is not None and not self._may_restart(
                service, release, spec, previous, srt
            ):
                continue
            self._start_instance(service, release, spec, slot, previous)

    def _may_restart(
        self,
        service: ServiceRecord,
        release: ReleaseRecord,
        spec: ServiceSpec,
        previous: InstanceRecord,
        srt: _ServiceRuntime,
    ) -> bool:
        policy = spec.run.restart
        if policy == "never":
            return False
        if policy == "on-failure" and previous.meta.get("exit_code") == 0:
            return False
        now = self.clock.monotonic()
        history = srt.restarts.setdefault(previous.slot, deque())
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
        workdir = Path(service.spec_path).parent
        if spec.run.workdir:
            workdir = (workdir / spec.run.workdir).resolve()
        request = InstanceRequest(
            service=ServiceName(service.name),
            version=Version(release.version),
            revision=release.revision,
            slot=slot,
            command=spec.run.command or "",
            env={k: str(v) for k, v in spec.env.items()},
            workdir=workdir,
            image=spec.run.image,
        )
        instance = platform.start(request)
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

    def _progress_initial(
        self, release: ReleaseRecord, spec: ServiceSpec, live: list[_Runtime]
    ) -> None:
        mine = [rt for rt in live if rt.record.revision == release.revision]
        failed = [rt for rt in mine if rt.tracker.state == "unhealthy" and not rt.ready]
        if failed:
            rt = failed[0]
            reason = (
                f"{rt.record.id} did not become healthy within its startup grace "
                f"({spec.health_check.startup_grace:g}s)"
            )
            self._fail_release(release, mine, reason)
            return
        ready = [rt for rt in mine if rt.ready]
        if len(ready) >= spec.replicas:
            self.store.update_release(
                release.service,
                release.revision,
                status=ReleaseStatus.SUCCEEDED,
                reason=f"{len(ready)}/{spec.replicas} instances healthy",
                finished=True,
            )
            self.store.append_event(
                release.service,
                revision=release.revision,
                kind="release.succeeded",
                message=f"revision {release.revision} ({release.version}) is serving with "
                f"{len(ready)} healthy instance(s)",
            )

    def _fail_release(self, release: ReleaseRecord, mine: list[_Runtime], reason: str) -> None:
        self.store.update_release(
            release.service,
            release.revision,
            status=ReleaseStatus.FAILED,
            reason=reason,
            finished=True,
        )
        self.store.append_event(
            release.service, revision=release.revision, kind="release.failed", message=reason
        )
        for rt in mine:
            self._stop_instance(rt, grace=self._grace(rt))
        for record in self.store.list_instances(release.service, states=("crashed",)):
            if record.revision == release.revision:
                self.store.delete_instance(record.id)

    def _stop_service(
        self,
        service: ServiceRecord,
        active: ReleaseRecord | None,
        live: list[_Runtime],
        srt: _ServiceRuntime,
    ) -> None:
        if live:
            if self.router is not None and srt.applied_routes is not None:
                self.router.remove_service(service.name)
                srt.applied_routes = None
            with ThreadPoolExecutor(max_workers=max(1, min(8, len(live)))) as pool:
                list(pool.map(lambda rt: self._stop_instance(rt, grace=self._grace(rt)), live))
        for record in self.store.list_instances(service.name, states=("crashed",)):
            self.store.delete_instance(record.id)
        if active is not None:
            self.store.update_release(
                service.name,
                active.revision,
                status=ReleaseStatus.STOPPED,
                reason="service stopped",
                finished=True,
            )
            self.store.append_event(
                service.name,
                revision=active.revision,
                kind="service.stopped",
                message=f"{service.name} stopped ({len(live)} instance(s))",
            )

    def _stop_instance(self, rt: _Runtime, *, grace: float) -> None:
        record = rt.record
        self._probe_cancel(rt)
        platform = self.platforms[record.platform]
        self._set_state(record, "stopping")
        status = platform.stop(record_to_instance(record), grace=grace)
        self._collect_logs([rt])
        self._runtimes.pop(record.id, None)
        self.store.delete_instance(record.id)
        self.logbook.forget(record.service, record.id)
        self.store.append_event(
            record.service,
            revision=record.revision,
            kind="instance.stopped",
            message=f"stopped {record.id} (exit code {status.exit_code})",
            data={"instance": record.id, "exit_code": status.exit_code},
        )

    def _apply_routes(self, name: ServiceName, spec: ServiceSpec, srt: _ServiceRuntime) -> None:
        if self.router is None:
            return
        backends = tuple(
            Backend(id=rt.record.id, address=Address(rt.record.host, rt.record.port))
            for rt in sorted(self._runtimes.values(), key=lambda r: (r.record.slot, r.record.id))
            if rt.record.service == name and rt.ready and rt.tracker.state != "unhealthy"
        )
        routes = ServiceRoutes(
            service=name,
            listen=parse_listen(spec.traffic.listen),
            groups={STABLE_GROUP: backends},
            weights={STABLE_GROUP: 100},
            sticky=spec.traffic.sticky_sessions,
        )
        if srt.applied_routes is None and not backends:
            return
        if routes != srt.applied_routes:
            self.router.apply(routes)
            srt.applied_routes = routes

    # helpers --------------------------------------------------------------------------------
    def _spec_for(self, service: ServiceName, revision: Revision) -> ServiceSpec | None:
        key = (service, revision)
        if key not in self._specs:
            try:
                release = self.store.get_release(service, revision)
                svc = self.store.get_service(service)
            except ZerodownError:
                return None
            loaded: LoadedSpec = parse_spec(release.spec_text, filename=svc.spec_path)
            self._specs[key] = loaded.spec
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
        updated = replace(record, state=state)
        self.store.save_instance(updated)
        rt = self._runtimes.get(record.id)
        if rt is not None:
            rt.record = updated

    def live_runtime(self, instance_id: str) -> dict[str, object] | None:
        """Health and readiness of a live instance, for status views."""
        rt = self._runtimes.get(InstanceId(instance_id))
        if rt is None:
            return None
        return {"health": rt.tracker.state, "ready": rt.ready}
