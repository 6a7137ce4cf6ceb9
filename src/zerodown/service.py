"""Use cases: up, status, history, events, logs, stop ... the one API behind CLI, HTTP and MCP.

``Zerodown`` holds the store, the platforms, the traffic router and the reconcile loop of one
controller. The HTTP API calls these methods; so can a Python program that embeds zerodown.
Methods return frozen dataclasses with a ``to_dict()`` for JSON, and raise only
``ZerodownError``s.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from zerodown.checks.base import worst_status
from zerodown.checks.pre import run_prechecks
from zerodown.checks.windows import deploy_allowed
from zerodown.core.clock import Clock, SystemClock
from zerodown.core.errors import (
    InputError,
    LockHeldError,
    PreflightError,
    RefusedError,
    TemporaryError,
    ZerodownError,
)
from zerodown.core.state import StateDir
from zerodown.core.types import ResourceUsage, Revision, ServiceName, Version
from zerodown.engine.faults import crash_hook_from_env
from zerodown.engine.reconciler import (
    ACTIVE_STATUSES,
    LIVE_STATES,
    LOCK_TTL,
    ROLLOUT_STATUSES,
    Reconciler,
    record_to_instance,
    release_stale_lock,
)
from zerodown.ops.logs import LogBook, LogPage
from zerodown.ops.notify import send_webhooks
from zerodown.platforms.base import Platform
from zerodown.platforms.docker import DockerPlatform
from zerodown.platforms.local import LocalPlatform
from zerodown.platforms.swarm import SwarmPlatform
from zerodown.report import ReportPaths, write_report
from zerodown.report.model import ReportInput
from zerodown.spec import LoadedSpec, ServiceSpec, parse_spec
from zerodown.store import open_store
from zerodown.store.base import EventRecord, InstanceRecord, ReleaseRecord, ReleaseStatus, Store
from zerodown.traffic.base import TrafficRouter
from zerodown.traffic.proxy.client import ProxyRouter
from zerodown.traffic.proxy.launcher import ensure_proxy

__all__ = ["STRATEGY_NAMES", "InstanceView", "ReleaseView", "ServiceView", "Zerodown"]

STRATEGY_NAMES = ("rolling", "blue-green", "canary")
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

    def _release_ended(self, spec: ServiceSpec, payload: dict[str, Any]) -> None:
        """After a release ends: the Deployment Operations Report, then the webhooks."""
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
        """Start the reconcile loop in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.reconciler.run, name="reconciler", daemon=True
            )
            self._thread.start()

    def shutdown(self, *, timeout: float = 10.0) -> None:
        """Stop the reconcile loop. Instances keep running: a new controller adopts them."""
        self.reconciler.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.store.close()

    # use cases ------------------------------------------------------------------------------
    def validate(self, *, spec_text: str, spec_path: str) -> LoadedSpec:
        return parse_spec(spec_text, filename=spec_path)

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
        finally:
            self.store.release_lock(f"deploy:{name}", owner=owner)
        self.reconciler.wake()
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
        if self.router is None and chosen in ("canary", "blue-green"):
            raise RefusedError(f"a {chosen} rollout needs the built-in proxy (serve --proxy)")
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
        self.reconciler.wake()
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

    def rollback(self, service: str, *, to: int | None = None, who: str = "user") -> str:
        """Back to an earlier release: abort a rollout in progress; flip to a warm release at
        once; otherwise roll the earlier release's spec and version out again."""
        name = ServiceName(service)
        self.store.get_service(name)
        releases = self.store.list_releases(name, limit=200)
        if any(r.status in ROLLOUT_STATUSES for r in releases):
            if to is not None:
                raise RefusedError("a rollout is in progress: abort it first, then roll back")
            return self.abort(service, who=who)
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
        try:
            return self.reconciler.command(service, "flip", revision=target.revision, who=who)
        except RefusedError:
            pass  # not warm any more: roll its spec out again
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
            alerts=[],
            replicas=spec.replicas,
        )

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
        self, service: str | None = None, *, after_id: int = 0, limit: int = 500
    ) -> list[dict[str, Any]]:
        name = ServiceName(service) if service else None
        if name is not None:
            self.store.get_service(name)
        return [
            event_to_dict(e) for e in self.store.list_events(name, after_id=after_id, limit=limit)
        ]

    def logs(
        self,
        service: str,
        *,
        offset: int = 0,
        since: float | None = None,
        instance: str | None = None,
        pattern: str | None = None,
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
            tail=tail,
            limit=limit,
        )

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
