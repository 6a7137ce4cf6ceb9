"""Use cases: up, status, history, events, logs, stop ... the one API behind CLI, HTTP and MCP.

``Zerodown`` holds the store, the platforms, the traffic router and the reconcile loop of one
controller. The HTTP API calls these methods; so can a Python program that embeds zerodown.
Methods return frozen dataclasses with a ``to_dict()`` for JSON, and raise only
``ZerodownError``s.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from zerodown.backup.dr import DrillResult, PlanResult, drill_service, write_plan
from zerodown.backup.operations import ReportSink, ServiceBackups
from zerodown.checks.base import worst_status
from zerodown.checks.pre import run_prechecks
from zerodown.checks.windows import deploy_allowed
from zerodown.core.clock import Clock, SystemClock
from zerodown.core.errors import (
    InputError,
    LockHeldError,
    NotFoundError,
    PreflightError,
    RefusedError,
    TemporaryError,
    ZerodownError,
)
from zerodown.core.state import StateDir
from zerodown.core.types import ResourceUsage, Revision, ServiceName, Version
from zerodown.engine.faults import crash_hook_from_env
from zerodown.engine.native import runs_native
from zerodown.engine.reconciler import (
    ACTIVE_STATUSES,
    LIVE_STATES,
    LOCK_TTL,
    ROLLOUT_STATUSES,
    Reconciler,
    record_to_instance,
    release_stale_lock,
)
from zerodown.incidents import IncidentBook
from zerodown.monitor import Monitor
from zerodown.monitor.config import check_monitor_files
from zerodown.ops.log_levels import Level
from zerodown.ops.logmine import PatternReport, mine_patterns
from zerodown.ops.logs import LogBook, LogPage
from zerodown.ops.notify import send_webhooks
from zerodown.platforms.base import Platform
from zerodown.platforms.docker import DockerPlatform
from zerodown.platforms.local import LocalPlatform
from zerodown.platforms.swarm import SwarmPlatform
from zerodown.report import ReportPaths, write_report
from zerodown.report.model import ReportInput
from zerodown.spec import LoadedSpec, ServiceSpec, parse_spec
from zerodown.spec.defaults import default_canary_steps
from zerodown.store import open_store
from zerodown.store.base import EventRecord, InstanceRecord, ReleaseRecord, ReleaseStatus, Store
from zerodown.traffic.base import ServiceMetrics, TrafficRouter
from zerodown.traffic.proxy.client import ProxyRouter
from zerodown.traffic.proxy.launcher import ensure_proxy

__all__ = [
    "STRATEGY_NAMES",
    "InstanceView",
    "LiveView",
    "ReleaseView",
    "ServiceView",
    "Zerodown",
]

STRATEGY_NAMES = ("rolling", "blue-green", "canary", "native")
REPORT_FOLDER = Path(".claude/context/deployment")

log = logging.getLogger(__name__)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class ReleaseView:
    revision: int
    version: str
    strategy: str
    status: str
    reason: str
    spec_hash: str
    created_at: str | None
    finished_at: str | None
    duration_s: float | None  # from creation to the end of the rollout
    timings: dict[str, float]  # switch_s, rollback_s ... as measured

    @classmethod
    def of(cls, release: ReleaseRecord) -> ReleaseView:
        duration = release.state.get("duration_s")
        return cls(
            revision=int(release.revision),
            version=str(release.version),
            strategy=release.strategy,
            status=str(release.status),
            reason=release.reason,
            spec_hash=release.spec_hash,
            created_at=_iso(release.created_at),
            finished_at=_iso(release.finished_at),
            duration_s=float(duration) if duration is not None else None,
            timings={str(k): float(v) for k, v in (release.state.get("timings") or {}).items()},
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InstanceView:
    id: str
    revision: int
    version: str
    slot: int
    pid: int | None
    address: str
    state: str
    health: str
    restarts: int
    cpu_percent: float | None
    memory_bytes: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ServiceView:
    name: str
    desired_state: str
    spec_path: str
    listen: str | None
    replicas: int | None
    release: ReleaseView | None  # the release being rolled out or serving
    instances: list[InstanceView] = field(default_factory=list)

    @property
    def ready(self) -> int:
        return sum(1 for i in self.instances if i.state == "running")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ready"] = self.ready
        return data


@dataclass(frozen=True)
class LiveView:
    """One service as a live view shows it at this moment (the dashboard and its stream)."""

    service: ServiceView
    release: dict[str, Any] | None  # ``Zerodown.release`` of the release shown, with its state
    steps: list[dict[str, Any]]  # a canary's steps as written in YAML ({"setWeight": 20} ...)
    traffic: ServiceMetrics | None  # the data plane's counters; None without it or unanswered
    latest: ReleaseView | None = None  # the newest release when it is not the one shown


def event_to_dict(event: EventRecord) -> dict[str, Any]:
    return {
        "id": event.id,
        "service": event.service,
        "revision": event.revision,
        "ts": event.ts.isoformat(),
        "kind": event.kind,
        "message": event.message,
        "data": dict(event.data),
    }


def _release_dict(release: ReleaseRecord) -> dict[str, Any]:
    return {
        "revision": int(release.revision),
        "version": str(release.version),
        "strategy": release.strategy,
        "status": str(release.status),
        "reason": release.reason,
        "created_at": _iso(release.created_at),
        "finished_at": _iso(release.finished_at),
        # The raw metrics snapshot is the engine's bookkeeping, not a figure for people.
        "state": {k: v for k, v in release.state.items() if k != "start_metrics"},
    }


class Zerodown:
    """The use cases of one controller: a store, platforms, a router and a reconcile loop."""

    def __init__(
        self,
        *,
        state: StateDir,
        store: Store,
        platforms: dict[str, Platform],
        router: TrafficRouter | None,
        clock: Clock | None = None,
        report_dir: Path | None = None,
    ) -> None:
        self.state = state
        self.report_dir = report_dir
        self.store = store
        self.platforms = platforms
        self.router = router
        self.clock = clock or SystemClock()
        self.logbook = LogBook(state.logs)
        self.incidents = IncidentBook(store, self.clock, metrics=self._traffic_now)
        self.reconciler = Reconciler(
            store=store,
            platforms=platforms,
            router=router,
            logbook=self.logbook,
            clock=self.clock,
            crash_hook=crash_hook_from_env(),
            on_finish=self._release_ended,
        )
        self._thread: threading.Thread | None = None
        self.monitor = Monitor(
            store=store,
            router=router,
            platforms=platforms,
            clock=self.clock,
            state_dir=state.path,
            health=self._health_of,
            incidents=self.incidents,
        )
        self.monitor.add_collector(self.logbook.samples)
        # Backups need a store that keeps the catalogue (SQLite or PostgreSQL).
        self.backups = ServiceBackups.of(
            store,
            state_dir=state.path,
            clock=self.clock,
            reports=ReportSink(folder=self.report_folder, instances=self._report_instances),
        )
        if self.backups is not None:
            self.monitor.add_collector(self.backups.scheduler.collect)

    def _release_ended(self, spec: ServiceSpec, payload: dict[str, Any]) -> None:
        """After a release ends: an incident if the engine rolled it back by itself, the
        Deployment Operations Report, then the webhooks."""
        self._open_rollback_incident(spec, payload)
        try:
            operation = payload.get("operation")
            self.write_report(
                spec.service,
                revision=int(payload["revision"]),
                operation=str(operation) if operation else None,
            )
        except Exception:  # a report must never stop the loop; the event log says why
            log.exception("report of %s revision %s failed", spec.service, payload["revision"])
        self._notify(spec, payload)

    def _open_rollback_incident(self, spec: ServiceSpec, payload: dict[str, Any]) -> None:
        """An automatic rollback (judge, health check, validation; not a person's abort or
        rollback) opens an incident with the judge's reason and the measured impact."""
        if payload.get("status") != "rolled_back" or payload.get("operation") == "rollback":
            return
        if not spec.incidents.open_on_rollback:
            return
        try:
            release = self.store.get_release(
                ServiceName(spec.service), Revision(int(payload["revision"]))
            )
            self.incidents.open_for_rollback(release, severity=spec.incidents.rollback_severity)
        except Exception:  # the rollback is done; a failed record of it must not stop the loop
            log.exception("incident of %s revision %s failed", spec.service, payload["revision"])

    def _health_of(self, instance_id: str) -> str | None:
        """The health checker's state of a live instance (for the monitor)."""
        runtime = self.reconciler.live_runtime(instance_id)
        return str(runtime["health"]) if runtime is not None else None

    def _traffic_now(self, service: str) -> ServiceMetrics | None:
        """The data plane's counters of a service now (None without the proxy or an answer)."""
        if self.router is None:
            return None
        try:
            return self.router.metrics(service)
        except ZerodownError:
            return None

    def _notify(self, spec: ServiceSpec, payload: dict[str, Any]) -> None:
        """Tell the spec's webhooks how a release ended (the seed's 'notify' step), off the
        reconcile thread; the deliveries go to the event log."""
        status = str(payload.get("status"))
        if not spec.notify.notifies(status):
            return

        def deliver() -> None:
            deliveries = send_webhooks(
                list(spec.notify.webhooks), payload, timeout=spec.notify.timeout
            )
            ok = sum(1 for d in deliveries if d.ok)
            self.store.append_event(
                ServiceName(spec.service),
                revision=Revision(int(payload["revision"])),
                kind="notify.sent",
                message=f"{status}: {ok}/{len(deliveries)} webhook(s) delivered",
                data={"deliveries": [d.to_dict() for d in deliveries]},
            )

        threading.Thread(target=deliver, name="notify", daemon=True).start()

    @classmethod
    def open(
        cls,
        state: StateDir,
        *,
        store_url: str | None = None,
        proxy: bool = True,
        clock: Clock | None = None,
        report_dir: Path | None = None,
    ) -> Zerodown:
        """The embedded default: SQLite (or ``store_url``), local processes, the built-in proxy.

        The proxy is started (detached) if it does not run yet; it outlives this controller.
        """
        state.ensure()
        router: TrafficRouter | None = None
        if proxy:
            ensure_proxy(state.path)
            router = ProxyRouter(state.path)
        store = open_store(store_url, state_dir=state.path, clock=clock)
        # Container platforms connect to the engine on first use, so listing them costs nothing
        # for users who never leave ``local``.
        platforms: dict[str, Platform] = {
            "local": LocalPlatform(state_dir=state.path, clock=clock),
            "docker": DockerPlatform(state_dir=state.path, clock=clock),
            "swarm": SwarmPlatform(state_dir=state.path, clock=clock),
        }
        return cls(
            state=state,
            store=store,
            platforms=platforms,
            router=router,
            clock=clock,
            report_dir=report_dir,
        )

    # controller lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start the reconcile loop in a background thread, and the backup scheduler (after
        marking backups a crash interrupted as abandoned)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.reconciler.run, name="reconciler", daemon=True
            )
            self._thread.start()
            if self.backups is not None:
                self.backups.start()
            self.monitor.start()

    def shutdown(self, *, timeout: float = 10.0) -> None:
        """Stop the reconcile loop. Instances keep running: a new controller adopts them."""
        self.reconciler.stop()
        if self.backups is not None:
            self.backups.stop()
        self.monitor.stop(timeout=timeout)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.store.close()

    # use cases ------------------------------------------------------------------------------
    def validate(self, *, spec_text: str, spec_path: str) -> LoadedSpec:
        """The spec, checked; the monitor's rule files and routing configuration too."""
        loaded = parse_spec(spec_text, filename=spec_path)
        check_monitor_files(loaded.spec, Path(spec_path).resolve().parent)
        return loaded

    def up(self, *, spec_text: str, spec_path: str, version: str | None = None) -> ReleaseView:
        """First release of a service (or the first after ``stop``): no strategy needed."""
        loaded = self.validate(spec_text=spec_text, spec_path=spec_path)
        spec = loaded.spec
        if spec.platform not in self.platforms:
            known = ", ".join(sorted(self.platforms))
            raise RefusedError(
                f"platform {spec.platform!r} is not available in this controller (have: {known})"
            )
        name = ServiceName(spec.service)
        owner = f"up-{os.getpid()}-{threading.get_ident()}"
        self.store.acquire_lock(f"deploy:{name}", owner=owner, ttl=30)
        try:
            for release in self.store.list_releases(name, limit=50):
                if release.status in ACTIVE_STATUSES:
                    raise RefusedError(
                        f"{name} is already up (revision {release.revision}, "
                        f"{release.status}); use 'zerodown deploy' to roll out a new version"
                    )
            self.store.upsert_service(
                name,
                spec_path=str(Path(spec_path).resolve()),
                spec_text=loaded.text,
                desired_state="running",
            )
            label = version or spec.version or loaded.spec_hash[:8]
            prechecks = self._prechecks(loaded, spec_path=spec_path, stable=None)
            release = self.store.create_release(
                name,
                version=Version(label),
                spec_text=loaded.text,
                spec_hash=loaded.spec_hash,
                strategy="initial",
                state={"prechecks": prechecks},
            )
            self.store.append_event(
                name,
                revision=release.revision,
                kind="release.created",
                message=f"revision {release.revision} ({label}) created by up",
            )
            if self.backups is not None:
                self.backups.record_on_release(name, int(release.revision), prechecks)
        finally:
            self.store.release_lock(f"deploy:{name}", owner=owner)
        self.reconciler.wake()
        self.monitor.wake()
        return ReleaseView.of(release)

    def deploy(
        self,
        *,
        spec_text: str,
        spec_path: str,
        version: str | None = None,
        strategy: str | None = None,
        who: str = "user",
        force: bool = False,
    ) -> ReleaseView:
        """Create the next release of a running service and roll it out with a strategy."""
        loaded = self.validate(spec_text=spec_text, spec_path=spec_path)
        spec = loaded.spec
        name = ServiceName(spec.service)
        record = self.store.get_service(name)
        if record.desired_state != "running":
            raise RefusedError(f"{name} is stopped; bring it up with 'zerodown up'")
        chosen = strategy or spec.strategy_name
        if chosen not in STRATEGY_NAMES:
            raise InputError(
                f"unknown strategy {chosen!r}; choose one of {', '.join(STRATEGY_NAMES)}"
            )
        if spec.platform not in self.platforms:
            raise RefusedError(f"platform {spec.platform!r} is not available in this controller")
        if self.router is None and chosen in ("canary", "blue-green", "native"):
            raise RefusedError(f"a {chosen} rollout needs the built-in proxy (serve --proxy)")
        if chosen == "native" and not runs_native(spec):
            raise InputError(
                "strategy native is Swarm's own update: it needs 'platform: swarm' and "
                "'strategy: {native: {...}}' in the spec"
            )
        if runs_native(spec) and chosen != "native":
            raise RefusedError(
                f"{name} runs as one Swarm service (strategy native), which only Swarm's own "
                f"update replaces; a {chosen} rollout needs a service per instance: stop the "
                "service and bring it up with that strategy"
            )
        releases = self.store.list_releases(name, limit=50)
        active = next((r for r in releases if r.status in ROLLOUT_STATUSES), None)
        if active is not None:
            holder = active.state.get("lock_owner", "someone")
            raise LockHeldError(
                f"{name} revision {active.revision} ({active.version}) is being rolled out by "
                f"{holder}; wait for it, or 'zerodown promote'/'zerodown abort' it"
            )
        stable = next((r for r in releases if r.status == ReleaseStatus.SUCCEEDED), None)
        if stable is None:
            raise RefusedError(f"{name} has no release serving; bring it up with 'zerodown up'")
        old = parse_spec(stable.spec_text, filename=record.spec_path).spec
        if runs_native(old) != runs_native(spec):
            was, now = ("one Swarm service", "a service per instance")
            if runs_native(spec):
                was, now = now, was
            raise RefusedError(
                f"{name} runs as {was} (revision {stable.revision}); this spec would run it as "
                f"{now}: stop the service and bring it up with the new spec"
            )
        if old.traffic.listen != spec.traffic.listen:
            raise RefusedError(
                f"traffic.listen changes from {old.traffic.listen} to {spec.traffic.listen}: "
                "a rollout keeps the address; stop and up the service to move it"
            )
        self._check_window(spec, force=force)
        label = version or spec.version or loaded.spec_hash[:8]
        prechecks = self._prechecks(loaded, spec_path=spec_path, stable=stable)
        if worst_status(r["status"] for r in prechecks) == "fail" and not force:
            self._blocked(
                name,
                loaded,
                label=label,
                strategy=chosen,
                prechecks=prechecks,
                stable=stable,
                who=who,
            )
        release_stale_lock(self.store, name, releases)
        owner = f"{who} (deploy of {version or spec.version or loaded.spec_hash[:8]})"
        self.store.acquire_lock(f"deploy:{name}", owner=owner, ttl=LOCK_TTL)
        # The lock's owner is part of the release from its first write: the reconciler may
        # pick the release up at once, and whatever state it saves must keep the owner.
        release = self.store.create_release(
            name,
            version=Version(label),
            spec_text=loaded.text,
            spec_hash=loaded.spec_hash,
            strategy=chosen,
            state={"lock_owner": owner, "requested_by": who, "prechecks": prechecks},
        )
        self.store.upsert_service(
            name, spec_path=str(Path(spec_path).resolve()), spec_text=loaded.text
        )
        self.store.append_event(
            name,
            revision=release.revision,
            kind="release.created",
            message=f"revision {release.revision} ({label}) created by {who}: {chosen} rollout "
            f"replacing revision {stable.revision} ({stable.version})",
        )
        if self.backups is not None:
            self.backups.record_on_release(name, int(release.revision), prechecks)
        self.reconciler.wake()
        self.monitor.wake()
        return ReleaseView.of(release)

    def _prechecks(
        self, loaded: LoadedSpec, *, spec_path: str, stable: ReleaseRecord | None
    ) -> list[dict[str, Any]]:
        """The seed's pre-deployment checklist, measured now: capacity, dependencies, backup,
        rollback plan."""
        spec = loaded.spec
        ready = 0
        if stable is not None:
            ready = sum(
                1
                for i in self.store.list_instances(ServiceName(spec.service), states=("running",))
                if i.revision == stable.revision
            )
        results = run_prechecks(
            spec,
            spec_dir=Path(spec_path).resolve().parent,
            state_dir=self.state.path,
            instances=spec.replicas,
            previous_revision=int(stable.revision) if stable is not None else None,
            previous_version=str(stable.version) if stable is not None else None,
            previous_ready=ready,
            replicas=spec.replicas,
        )
        if self.backups is not None:
            confirmed = self.backups.before_deploy(spec, spec_dir=Path(spec_path).resolve().parent)
            if confirmed:  # real backups answer "backup confirmed" better than "not configured"
                results = [r for r in results if r.name != "backup" or r.figures.get("configured")]
                plan = [i for i, r in enumerate(results) if r.name == "rollback-plan"]
                at = plan[0] if plan else len(results)
                results = [*results[:at], *confirmed, *results[at:]]
        return [r.to_dict() for r in results]

    def _blocked(
        self,
        name: ServiceName,
        loaded: LoadedSpec,
        *,
        label: str,
        strategy: str,
        prechecks: list[dict[str, Any]],
        stable: ReleaseRecord | None,
        who: str,
    ) -> None:
        """A failed pre-deployment check: record the attempt (nothing else changes), write its
        report, and refuse."""
        failed = [c for c in prechecks if c["status"] == "fail"]
        reason = "blocked by pre-deployment checks: " + "; ".join(
            f"{c['name']}: {c['summary']}" for c in failed
        )
        now = self.clock.now().timestamp()
        release = self.store.create_release(
            name,
            version=Version(label),
            spec_text=loaded.text,
            spec_hash=loaded.spec_hash,
            strategy=strategy,
            status=ReleaseStatus.FAILED,
            state={
                "prechecks": prechecks,
                "blocked": True,
                "requested_by": who,
                "stable": int(stable.revision) if stable is not None else None,
                "started": now,
                "finished": now,
                "duration_s": 0.0,
            },
        )
        self.store.update_release(
            name, release.revision, status=ReleaseStatus.FAILED, reason=reason, finished=True
        )
        self.store.append_event(
            name,
            revision=release.revision,
            kind="release.blocked",
            message=reason,
            data={"prechecks": prechecks},
        )
        where = ""
        try:
            paths = self.write_report(name, revision=int(release.revision), operation="deploy")
            where = f"; report: {paths.markdown}"
        except Exception:  # the refusal matters more than its report
            log.exception("report of a blocked deploy failed")
        raise PreflightError(f"{reason} (nothing was changed; --force overrides){where}")

    def _check_window(self, spec: ServiceSpec, *, force: bool) -> None:
        deploy = spec.deploy
        if not deploy.windows and not deploy.freezes:
            return
        decision = deploy_allowed(deploy, self.clock.now())
        if decision.allowed or force:
            return
        when = f"; next window opens {decision.next_open.isoformat()}" if decision.next_open else ""
        raise RefusedError(f"deploy refused: {decision.reason}{when} (use --force to override)")

    def promote(self, service: str, *, full: bool = False, who: str = "user") -> str:
        """Skip the current pause or analysis (``full``: go straight to 100 %)."""
        self.store.get_service(ServiceName(service))
        return self.reconciler.command(service, "promote", full=full, who=who)

    def pause(self, service: str, *, who: str = "user") -> str:
        self.store.get_service(ServiceName(service))
        return self.reconciler.command(service, "pause", who=who)

    def resume(self, service: str, *, who: str = "user") -> str:
        self.store.get_service(ServiceName(service))
        return self.reconciler.command(service, "resume", who=who)

    def abort(self, service: str, *, reason: str | None = None, who: str = "user") -> str:
        """Stop the rollout and restore the stable release (the rollback procedure)."""
        self.store.get_service(ServiceName(service))
        return self.reconciler.command(service, "abort", reason=reason, who=who)

    def rollback(
        self,
        service: str,
        *,
        to: int | None = None,
        who: str = "user",
        with_data: bool = False,
        backup_ids: Sequence[int] | None = None,
    ) -> str:
        """Back to an earlier release: abort a rollout in progress; flip to a warm release at
        once; otherwise roll the earlier release's spec and version out again.

        ``with_data`` also restores, over the live data, the backups taken while that release
        served: ``backup_ids`` are the ones the caller confirmed (``rollback_data`` lists
        them); see ``rollback_with_data``."""
        if with_data:
            return str(
                self.rollback_with_data(service, to=to, who=who, backup_ids=backup_ids)["message"]
            )
        name = ServiceName(service)
        self.store.get_service(name)
        releases = self.store.list_releases(name, limit=200)
        if any(r.status in ROLLOUT_STATUSES for r in releases):
            if to is not None:
                raise RefusedError("a rollout is in progress: abort it first, then roll back")
            return self.abort(service, who=who)
        _, target = self._rollback_target(name, releases, to)
        try:
            return self.reconciler.command(service, "flip", revision=target.revision, who=who)
        except RefusedError:
            pass  # not warm any more: roll its spec out again
        return self._roll_out_again(name, target, releases, who=who)

    def rollback_with_data(
        self,
        service: str,
        *,
        to: int | None = None,
        who: str = "user",
        backup_ids: Sequence[int] | None = None,
    ) -> dict[str, Any]:
        """A rollback that also restores the data: the backups ``rollback_data`` lists, which
        must be exactly the ``backup_ids`` the caller confirmed (``RefusedError`` when the plan
        changed since; nothing is done). A safety backup of each target is taken first, then
        traffic flips to the earlier release (when it is still warm), then the backups are
        restored; a failure part-way puts the targets already restored back from their safety
        backups (``ServiceBackups.rollback_with_data``). The message, the safety backups and
        the restores."""
        name = ServiceName(service)
        self.store.get_service(name)
        releases = self.store.list_releases(name, limit=200)
        if any(r.status in ROLLOUT_STATUSES for r in releases):
            raise RefusedError("a rollout is in progress: abort it first, then roll back")
        _, target = self._rollback_target(name, releases, to)
        backups = self._backups()
        plan = backups.rollback_plan(service, target)
        if not plan:
            raise RefusedError(
                f"no backup was taken while revision {target.revision} served: nothing to "
                "restore (roll back without --with-data)"
            )
        planned = [b.id for b in plan]
        if backup_ids is None:
            raise InputError(
                "backup_ids: a rollback with data needs the ids of the backups you confirmed "
                f"(rollback-data lists them; now {planned})"
            )
        if sorted(backup_ids) != sorted(planned):
            raise RefusedError(
                f"the backups to restore changed since they were confirmed (confirmed "
                f"{sorted(backup_ids)}, now {planned}): nothing was done; look at the plan again"
            )

        def switch() -> str | None:
            try:
                return self.reconciler.command(service, "flip", revision=target.revision, who=who)
            except RefusedError:
                return None  # not warm any more: its spec is rolled out again after the restores

        outcome = backups.rollback_with_data(
            service, plan, to_revision=int(target.revision), who=who, switch=switch
        )
        switched = outcome["switched"]
        then = (
            switched
            if switched is not None
            else self._roll_out_again(name, target, releases, who=who)
        )
        return {**outcome, "message": f"{outcome['message']}; {then}"}

    def _roll_out_again(
        self, name: ServiceName, target: ReleaseRecord, releases: list[ReleaseRecord], *, who: str
    ) -> str:
        """Roll an earlier release's spec and version out again (it is not warm any more)."""
        serving = next((r for r in releases if r.status == ReleaseStatus.SUCCEEDED), None)
        spec_path = self.store.get_service(name).spec_path
        if serving is not None and runs_native(
            parse_spec(target.spec_text, filename=spec_path).spec
        ) != runs_native(parse_spec(serving.spec_text, filename=spec_path).spec):
            raise RefusedError(
                f"revision {target.revision} ran {name} differently (one Swarm service versus a "
                "service per instance); roll back to a revision deployed the same way"
            )
        owner = f"{who} (rollback to revision {target.revision})"
        release_stale_lock(self.store, name, releases)
        self.store.acquire_lock(f"deploy:{name}", owner=owner, ttl=LOCK_TTL)
        release = self.store.create_release(
            name,
            version=target.version,
            spec_text=target.spec_text,
            spec_hash=target.spec_hash,
            strategy="rollback",
            state={"lock_owner": owner, "rollback_of": target.revision},
        )
        self.store.append_event(
            name,
            revision=release.revision,
            kind="release.created",
            message=f"revision {release.revision} restores revision {target.revision} "
            f"({target.version}) by {who}",
        )
        self.reconciler.wake()
        return (
            f"revision {target.revision} is not warm any more: rolling its spec out again as "
            f"revision {release.revision}"
        )

    def _rollback_target(
        self, name: ServiceName, releases: list[ReleaseRecord], to: int | None
    ) -> tuple[ReleaseRecord, ReleaseRecord]:
        """The release serving and the one a rollback returns to (``to``, else the newest
        earlier release that served traffic)."""
        stable = next((r for r in releases if r.status == ReleaseStatus.SUCCEEDED), None)
        if stable is None:
            raise RefusedError(f"{name} has no release serving")
        if to is None:
            earlier = [
                r
                for r in releases
                if r.revision < stable.revision
                and r.status in (ReleaseStatus.SUPERSEDED, ReleaseStatus.ROLLED_BACK)
                and r.finished_at is not None
                and r.state.get("weights")
            ]
            if not earlier:
                raise RefusedError(f"{name} has no earlier release that served traffic")
            target = earlier[0]
        else:
            matches = [r for r in releases if r.revision == to]
            if not matches:
                raise InputError(f"{name} has no revision {to}")
            target = matches[0]
            if target.revision == stable.revision:
                raise RefusedError(f"revision {to} is the one serving already")
        return stable, target

    def rollback_data(self, service: str, *, to: int | None = None) -> dict[str, Any]:
        """What ``rollback --with-data`` would restore: for the release it returns to, the
        newest good pre-deployment backup of each target taken while that release served."""
        name = ServiceName(service)
        self.store.get_service(name)
        releases = self.store.list_releases(name, limit=200)
        stable, target = self._rollback_target(name, releases, to)
        plan = self._backups().rollback_plan(service, target)
        return {
            "service": service,
            "serving_revision": int(stable.revision),
            "target_revision": int(target.revision),
            "target_version": str(target.version),
            "backups": [b.to_dict() for b in plan],
        }

    def release(self, service: str, revision: int) -> dict[str, Any]:
        """One release with its full rollout state (weights, step, verdicts, timings)."""
        name = ServiceName(service)
        matches = [r for r in self.store.list_releases(name, limit=1000) if r.revision == revision]
        if not matches:
            raise InputError(f"{service} has no revision {revision}")
        rel = matches[0]
        state = {k: v for k, v in rel.state.items() if k not in ("start_metrics",)}
        if "analysis" in state:
            state["analysis"] = {k: v for k, v in state["analysis"].items() if k != "snapshot"}
        return {**ReleaseView.of(rel).to_dict(), "state": state}

    def live(self, service: str) -> LiveView:
        """The service, the release being rolled out (else the one serving) with its rollout
        state and canary steps, and the data plane's counters, read now."""
        name = ServiceName(service)
        view = self.status_of(service)
        detail: dict[str, Any] | None = None
        steps: list[dict[str, Any]] = []
        if view.release is not None:
            detail = self.release(service, view.release.revision)
            if view.release.strategy == "canary":
                record = self.store.get_release(name, Revision(view.release.revision))
                spec = parse_spec(record.spec_text, filename=view.spec_path).spec
                steps = [
                    step.model_dump(mode="json", by_alias=True, exclude_none=True)
                    for step in spec.canary_steps or default_canary_steps()
                ]
        traffic = None
        if self.router is not None:
            try:
                traffic = self.router.metrics(name)
            except ZerodownError:
                traffic = None  # the data plane does not answer or does not know it yet
        newest = self.history(service, limit=1)
        latest = None
        if newest and (view.release is None or newest[0].revision != view.release.revision):
            latest = newest[0]  # e.g. a rollout that just rolled back, beside the one serving
        return LiveView(service=view, release=detail, steps=steps, traffic=traffic, latest=latest)

    def reports_of(self, service: str, revision: int) -> list[dict[str, str]]:
        """The reports written for one release, oldest first, as recorded in the event log:
        ``{"markdown", "json", "svg"}`` paths."""
        name = ServiceName(service)
        self.store.get_service(name)
        return [
            {k: str(event.data[k]) for k in ("markdown", "json", "svg") if k in event.data}
            for event in self.store.list_events(name, revision=Revision(revision), limit=100_000)
            if event.kind == "report.written" and "markdown" in event.data
        ]

    def report_folder(self, service: str) -> Path:
        """Where reports of a service go: the configured folder, else
        ``.claude/context/deployment/`` beside the service's spec file."""
        if self.report_dir is not None:
            return self.report_dir
        record = self.store.get_service(ServiceName(service))
        return Path(record.spec_path).parent / REPORT_FOLDER

    def report_input(
        self, service: str, *, revision: int | None = None, operation: str | None = None
    ) -> ReportInput:
        """Everything the report of one release needs, read from the store."""
        name = ServiceName(service)
        record = self.store.get_service(name)
        releases = self.store.list_releases(name, limit=1000)
        if not releases:
            raise InputError(f"{service} has no releases yet")
        if revision is None:
            release = releases[0]
        else:
            matches = [r for r in releases if r.revision == revision]
            if not matches:
                raise InputError(f"{service} has no revision {revision}")
            release = matches[0]
        state = dict(release.state)
        previous_revision = state.get("stable") or state.get("rollback_of")
        previous = next((r for r in releases if r.revision == previous_revision), None)
        events = [
            event_to_dict(e)
            for e in self.store.list_events(name, revision=release.revision, limit=100_000)
        ]
        spec = parse_spec(release.spec_text, filename=record.spec_path).spec
        if operation is None:
            reason = str(state.get("rollback", {}).get("reason", ""))
            operation = {"initial": "up", "rollback": "rollback"}.get(release.strategy, "deploy")
            if reason.startswith("aborted by"):
                operation = "abort"
        instances = [
            {
                "id": i.id,
                "revision": i.revision,
                "state": i.state,
                "restarts": i.restarts,
                "cpu_percent": i.cpu_percent,
                "memory_bytes": i.memory_bytes,
            }
            for i in self.status_of(service, resources=True).instances
        ]
        return ReportInput(
            service=service,
            operation=operation,
            generated_at=self.clock.now(),
            release=_release_dict(release),
            previous=_release_dict(previous) if previous is not None else None,
            events=events,
            prechecks=list(state.get("prechecks") or []),
            postchecks=list(state.get("postchecks") or []),
            instances=instances,
            alerts=self._alerts_during(release, events),
            replicas=spec.replicas,
        )

    def _alerts_during(
        self, release: ReleaseRecord, events: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The alerts that fired while ``release`` rolled out (the monitor's events)."""
        if not events:
            return []
        end = release.finished_at.timestamp() if release.finished_at is not None else math.inf
        found = []
        for event in self.store.list_events(
            release.service, after_id=int(events[0]["id"]) - 1, limit=100_000
        ):
            if event.kind != "alert.firing" or event.ts.timestamp() > end:
                continue
            data = event.data
            found.append(
                {
                    "name": data.get("name"),
                    "severity": (data.get("labels") or {}).get("severity"),
                    "summary": (data.get("annotations") or {}).get("summary"),
                    "ts": event.ts.isoformat(),
                    "labels": data.get("labels") or {},
                }
            )
        return found

    def write_report(
        self,
        service: str,
        *,
        revision: int | None = None,
        operation: str | None = None,
        lang: str = "zh-TW",
        directory: Path | None = None,
    ) -> ReportPaths:
        """Render and write the Deployment Operations Report of one release (Markdown, JSON,
        SVG); the event log records where."""
        data = self.report_input(service, revision=revision, operation=operation)
        folder = directory or self.report_folder(service)
        paths = write_report(data, directory=folder, lang=lang)
        self.store.append_event(
            ServiceName(service),
            revision=Revision(int(data.release["revision"])),
            kind="report.written",
            message=f"report written to {paths.markdown}",
            data={"markdown": str(paths.markdown), "json": str(paths.json), "svg": str(paths.svg)},
        )
        return paths

    def write_postmortem(
        self, incident_id: int, *, directory: Path | None = None
    ) -> tuple[Path, str]:
        """Write the postmortem draft of an incident: into ``directory``, else the folder
        ``incidents/`` of the service's reports (the state directory's when the service is not
        one zerodown deploys). Returns the path and the Markdown."""
        record = self.incidents.get(incident_id)
        if directory is None:
            try:
                directory = self.report_folder(record.service) / "incidents"
            except NotFoundError:
                directory = self.state.path / "incidents"
        return self.incidents.write_postmortem(incident_id, directory=directory)

    def stop(self, service: str) -> ServiceView:
        """Drain and stop every instance of a service; its history stays."""
        name = ServiceName(service)
        self.store.get_service(name)
        self.store.set_desired_state(name, "stopped")
        self.store.append_event(name, kind="service.stopping", message=f"stop of {name} requested")
        self.reconciler.wake()
        return self.status_of(name)

    def services(self) -> list[ServiceView]:
        return [self.status_of(s.name) for s in self.store.list_services()]

    def status_of(self, service: str, *, resources: bool = False) -> ServiceView:
        name = ServiceName(service)
        record = self.store.get_service(name)
        releases = self.store.list_releases(name, limit=20)
        current = next((r for r in releases if r.status in ACTIVE_STATUSES), None)
        shown = current or (releases[0] if releases else None)
        spec = None
        if shown is not None:
            spec = parse_spec(shown.spec_text, filename=record.spec_path).spec
        records = self.store.list_instances(name, states=(*LIVE_STATES, "crashed"))
        usages = self._usages(records) if resources else {}
        instances = []
        for inst in records:
            runtime = self.reconciler.live_runtime(inst.id) or {}
            usage = usages.get(inst.id)
            instances.append(
                InstanceView(
                    id=inst.id,
                    revision=int(inst.revision),
                    version=str(inst.version),
                    slot=inst.slot,
                    pid=inst.pid,
                    address=f"{inst.host}:{inst.port}",
                    state=inst.state,
                    health=str(runtime.get("health", "unknown")),
                    restarts=inst.restarts,
                    cpu_percent=usage.cpu_percent if usage else None,
                    memory_bytes=usage.memory_bytes if usage else None,
                )
            )
        instances.sort(key=lambda i: (i.revision, i.slot))
        return ServiceView(
            name=name,
            desired_state=record.desired_state,
            spec_path=record.spec_path,
            listen=spec.traffic.listen if spec is not None else None,
            replicas=spec.replicas if spec is not None else None,
            release=ReleaseView.of(shown) if shown is not None else None,
            instances=instances,
        )

    def _usages(self, records: list[InstanceRecord]) -> dict[str, ResourceUsage]:
        """CPU and memory of live instances, read in parallel (a container engine takes about a
        second per stats call); an instance whose figures cannot be read is left out."""

        def read(record: InstanceRecord) -> tuple[str, ResourceUsage | None]:
            platform = self.platforms.get(record.platform)
            if platform is None or record.state not in LIVE_STATES:
                return record.id, None
            try:
                return record.id, platform.resources(record_to_instance(record))
            except ZerodownError:
                return record.id, None

        if not records:
            return {}
        with ThreadPoolExecutor(max_workers=min(8, len(records))) as pool:
            return {key: usage for key, usage in pool.map(read, records) if usage is not None}

    def history(self, service: str, *, limit: int = 50) -> list[ReleaseView]:
        name = ServiceName(service)
        self.store.get_service(name)
        return [ReleaseView.of(r) for r in self.store.list_releases(name, limit=limit)]

    def events(
        self,
        service: str | None = None,
        *,
        after_id: int = 0,
        limit: int = 500,
        revision: int | None = None,
    ) -> list[dict[str, Any]]:
        """Events oldest first, ids above ``after_id``; of one service, and of one of its
        releases with ``revision``."""
        name = ServiceName(service) if service else None
        if name is not None:
            self.store.get_service(name)
        rev = Revision(revision) if revision is not None else None
        return [
            event_to_dict(e)
            for e in self.store.list_events(name, after_id=after_id, revision=rev, limit=limit)
        ]

    def logs(
        self,
        service: str,
        *,
        offset: int = 0,
        since: float | None = None,
        instance: str | None = None,
        pattern: str | None = None,
        min_level: Level | None = None,
        version: str | None = None,
        tail: int | None = None,
        limit: int = 1000,
    ) -> LogPage:
        self.store.get_service(ServiceName(service))
        return self.logbook.read(
            service,
            offset=offset,
            since=since,
            instance=instance,
            pattern=pattern,
            min_level=min_level,
            version=version,
            tail=tail,
            limit=limit,
        )

    def log_patterns(
        self,
        service: str,
        *,
        since: float | None = None,
        instance: str | None = None,
        pattern: str | None = None,
        min_level: Level | None = None,
        version: str | None = None,
        max_lines: int = 100_000,
        top: int = 50,
    ) -> PatternReport:
        """The ``top`` templates of the newest ``max_lines`` matching lines (``ops/logmine.py``)."""
        page = self.logs(
            service,
            since=since,
            instance=instance,
            pattern=pattern,
            min_level=min_level,
            version=version,
            tail=max_lines + 1,
        )
        entries = page.entries[-max_lines:]
        return PatternReport(
            patterns=mine_patterns(entries)[:top],
            lines=len(entries),
            truncated=len(page.entries) > max_lines,
        )

    # monitoring -----------------------------------------------------------------------------
    def metrics_text(self) -> str:
        """Every metric the monitor has, in Prometheus' text exposition format."""
        return self.monitor.exposition()

    def metrics(
        self,
        service: str,
        *,
        since: float | None = None,
        until: float | None = None,
        step: float | None = None,
    ) -> dict[str, Any]:
        """A service's request rate, error rate, availability, latency (mean, p95, p99) per
        version and its instances' health and resources, from ``since`` to ``until``."""
        return self.monitor.metrics_of(service, since=since, until=until, step=step)

    def alerts(self, *, include_resolved: bool = False) -> dict[str, Any]:
        """Pending and firing alerts (resolved ones too if asked), failing rules, groups."""
        return self.monitor.alerts(include_resolved=include_resolved)

    def add_silence(
        self,
        matchers: list[str],
        *,
        ends_at: datetime,
        created_by: str,
        comment: str,
        starts_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Mute alerts matching every matcher (``service="web"``, ``alertname=~"High.*"``)
        until ``ends_at``."""
        return self.monitor.add_silence(
            matchers, ends_at=ends_at, created_by=created_by, comment=comment, starts_at=starts_at
        )

    def silences(self, *, state: str | None = None) -> list[dict[str, Any]]:
        """Silences, newest end first; ``state``: only pending, active or expired ones."""
        return self.monitor.silences(state=state)

    def expire_silence(self, silence_id: str) -> dict[str, Any]:
        """End a silence now."""
        return self.monitor.expire_silence(silence_id)

    # backups --------------------------------------------------------------------------------
    def _backups(self) -> ServiceBackups:
        if self.backups is None:
            raise RefusedError("this controller's store keeps no backup catalogue")
        return self.backups

    def backup_run(
        self, service: str, *, target: str | None = None, verify: bool = True
    ) -> dict[str, Any]:
        """Back up one target of a service now, or all of them, then re-read and check each
        backup (``verify``); the catalogue entries, the checks and the operation's report."""
        return self._backups().backup_operation(service, target=target, verify=verify)

    def backup_list(
        self, service: str, *, target: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """A service's backups, newest first."""
        records = self._backups().list_backups(service, target=target, limit=limit)
        return [r.to_dict() for r in records]

    def backup_get(self, service: str, backup_id: int) -> dict[str, Any]:
        return self._backups().get(service, backup_id).to_dict()

    def backup_verify(self, service: str, backup_id: int) -> dict[str, Any]:
        """Re-read a backup's artifacts and check their digests (and ``restic check``)."""
        return self._backups().verify(service, backup_id)

    def backup_restore(
        self,
        service: str,
        backup_id: int,
        *,
        destination: str | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """Restore a backup to a new name (default) or ``destination``; live data only with
        ``force``. Writes the operation's report."""
        return self._backups().restore_operation(
            service, backup_id, destination=destination, force=force
        )

    def backup_forget(
        self, service: str, *, target: str | None = None, dry_run: bool = False
    ) -> dict[str, Any]:
        """Apply the retention rules of one target, or of all: keep what they keep, remove the
        rest (``dry_run``: only say which and why). Writes the operation's report."""
        return self._backups().forget(service, target=target, dry_run=dry_run)

    def _report_instances(self, service: str) -> list[dict[str, Any]]:
        """The service's instances now, as a report of an operation on its data shows them."""
        return [
            {
                "id": i.id,
                "revision": i.revision,
                "state": i.state,
                "restarts": i.restarts,
                "cpu_percent": i.cpu_percent,
                "memory_bytes": i.memory_bytes,
            }
            for i in self.status_of(service, resources=True).instances
        ]

    def backup_targets(self, service: str) -> list[dict[str, Any]]:
        """Each backup target of a service: schedule, next run, newest good backup."""
        return self._backups().status(service)

    # --- disaster recovery --------------------------------------------------------------------
    def dr_plan(self, service: str, *, path: Path | None = None) -> PlanResult:
        """Write the DR plan of a service (Markdown): to ``path``, else ``dr/plan-<service>.md``
        in the service's report folder (beside the reports, not among them)."""
        target = path or self.report_folder(service) / "dr" / f"plan-{service}.md"
        return write_plan(self._backups(), service, path=target, now=self.clock.now())

    def dr_drill(self, service: str) -> DrillResult:
        """Restore the newest backups into a scratch folder, run the service on them, smoke-test
        it, measure RTO and RPO, clean up and write the report (``zerodown.backup.dr``)."""
        return drill_service(self._backups(), service, report_dir=self.report_folder(service))

    def wait_for(
        self, service: str, *, revision: int, timeout: float, poll: float = 0.1
    ) -> ReleaseView:
        """Block until a release leaves pending/progressing (in-process use and tests)."""
        name = ServiceName(service)
        deadline = time.monotonic() + timeout
        while True:
            release = self.store.get_release(name, revision)  # type: ignore[arg-type]
            if release.status not in (ReleaseStatus.PENDING, ReleaseStatus.PROGRESSING):
                return ReleaseView.of(release)
            if time.monotonic() > deadline:
                raise TemporaryError(
                    f"revision {revision} of {service} did not settle in {timeout:g}s"
                )
            self.clock.sleep(poll)
