"""The ``swarm`` platform: each instance is a one-replica Docker Swarm service.

Why one service per instance, not one per version with ``replicas: N``: the engine asks a
platform for one instance per slot and routes traffic to each instance by its address, and on
this kind of host that address must be a host-mode published port (the Swarm routing mesh and
service virtual IPs need IPVS, which these kernels lack, so ingress ports refuse connections).
A host-mode port is fixed per service, so N replicas of one service could not share a node, and
the engine could not stop *one* chosen replica (Swarm picks which task goes when scaling down).
A service per instance keeps every instance addressable, stoppable and adoptable on its own,
exactly like ``local`` and ``docker``, so rolling, blue-green and canary work unchanged.

What it costs: Swarm's own rollout machinery (``update_config``, rollback, ``start-first``) is
unused — zerodown is the orchestrator; ``docker service ls`` shows one line per instance; each
start is a control-plane write (about 0.7 s from create to a running task here); and host-mode
ports are bound on every interface of the node (Swarm cannot bind them to loopback alone).

Each service is named after the instance (``<service>-r<revision>-<slot>-<hex>``), uses
``endpoint_mode=dnsrr`` (no virtual IP), publishes ``<host port>:<container port>`` in host
mode, carries the ``zerodown.*`` labels on the service and its containers, runs with ``--init``
and Swarm's restart policy ``none`` (restarting is the engine's decision, and a crash must be
seen as EXITED with its exit code). Images are used as given, never resolved against a registry:
the SDK's high-level ``services.create`` has no ``--no-resolve-image``, but the low-level
``create_service`` sends the task template as is, and engines on API >= 1.30 do not query a
registry unless asked to, so local images from ``docker import`` or ``docker build`` work.

The task's state, exit code and published port come from ``service.tasks()``. Logs, stats and a
graceful stop with a chosen grace period use the task's container on this node (single-node
swarms, the case the tests cover); on a multi-node swarm a task on another node is stopped by
removing its service (Swarm then applies the service's stop grace period, 10 s by default).

``strategy: native`` is the other way round: the platform also implements ``InPlaceUpdates``,
running a release as ONE service of ``replicas`` tasks that Swarm's own ``update_config``
replaces (see ``swarm_tasks.py`` for the service's shape). There each running task is an
instance (``task_instance``, marked by ``meta["swarm_task"]``): ``status``, ``adopt``,
``resources`` and ``read_logs`` follow the task and its container, and ``stop`` waits for Swarm
to end the task (stopping its container first only if Swarm still wants it running, in which
case Swarm starts a replacement by the service's restart policy).
"""

from __future__ import annotations

import collections
import contextlib
import math
import shlex
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil

from zerodown.core.clock import Clock, SystemClock
from zerodown.core.errors import OperationFailedError, TemporaryError
from zerodown.core.types import Address, InstanceId, ResourceUsage, Revision, ServiceName, Version
from zerodown.platforms.base import (
    Instance,
    InstanceRequest,
    InstanceState,
    InstanceStatus,
    LogChunk,
    ReplicatedRequest,
    ReplicatedView,
    TaskView,
)
from zerodown.platforms.docker import (
    LABEL_PREFIX,
    BuildLocks,
    ContainerRequest,
    EngineConnection,
    ExitRecords,
    container_env,
    container_labels,
    container_port,
    docker_sdk,
    ensure_image,
    lines_after,
    new_instance_id,
    parse_engine_time,
    parse_log_cursor,
    split_log_lines,
    translate_errors,
    usage_from_stats,
)
from zerodown.platforms.swarm_tasks import (
    NATIVE_LABEL,
    is_native_service,
    replicated_view,
    service_spec_of,
    task_view,
)

__all__ = ["SwarmPlatform", "task_container"]

_HOST = "127.0.0.1"
_CREATED_TOLERANCE = 1e-5
_POLL_INTERVAL = 0.1
# Create to a running task took 0.7 s here; a task still not running after this is failed.
_START_TIMEOUT = 60.0
# After a container stops, Swarm records the task's final state within a second or so.
_SETTLE_TIMEOUT = 15.0
_ACTIVE_TASK_STATES = frozenset(
    {"new", "allocated", "pending", "assigned", "accepted", "ready", "preparing", "starting"}
)
_ENDED_TASK_STATES = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})


class _HostPorts:
    """Free host ports for host-mode publishing, never the same one twice in a row."""

    def __init__(self, remember: int = 4096) -> None:
        self._lock = threading.Lock()
        self._recent: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._remember = remember

    def take(self) -> int:
        with self._lock:
            for _ in range(100):
                try:
                    # Host mode binds every interface, so the port must be free on all of them.
                    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                        sock.bind(("0.0.0.0", 0))  # probing only
                        port = int(sock.getsockname()[1])
                except OSError as exc:
                    raise OperationFailedError(f"cannot find a free host port: {exc}") from exc
                if port not in self._recent:
                    self._recent[port] = None
                    while len(self._recent) > self._remember:
                        self._recent.popitem(last=False)
                    return port
        raise TemporaryError("no free host port found", retry_after=1.0)


_ports = _HostPorts()


def _latest_task(tasks: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest task (with restart policy ``none`` there is only ever one)."""
    if not tasks:
        return None
    return max(tasks, key=lambda task: int((task.get("Version") or {}).get("Index", 0)))


def _task_status(task: Mapping[str, Any] | None) -> InstanceStatus:
    if task is None:
        return InstanceStatus(InstanceState.RUNNING, detail="no task scheduled yet")
    status = task.get("Status") or {}
    state = str(status.get("State", ""))
    error = str(status.get("Err") or "")
    if state == "running":
        return InstanceStatus(InstanceState.RUNNING, detail="task running")
    if state in _ACTIVE_TASK_STATES:
        detail = f"task {state}" + (f": {error}" if error else "")
        return InstanceStatus(InstanceState.RUNNING, detail=detail)
    container = status.get("ContainerStatus") or {}
    code = container.get("ExitCode")
    if state in ("rejected", "orphaned") and not container.get("ContainerID"):
        code = None  # never ran: no exit code
    detail = f"task {state}" + (f" (exit code {code})" if code is not None else "")
    if error:
        detail += f": {error}"
    return InstanceStatus(
        InstanceState.EXITED, exit_code=int(code) if code is not None else None, detail=detail
    )


def _published_port(task: Mapping[str, Any] | None) -> int | None:
    ports = ((task or {}).get("Status") or {}).get("PortStatus") or {}
    for port in ports.get("Ports") or []:
        if port.get("PublishedPort"):
            return int(port["PublishedPort"])
    return None


class SwarmPlatform:
    """Instances as one-replica Swarm services with host-mode published ports."""

    name = "swarm"

    def __init__(
        self,
        *,
        state_dir: Path,
        clock: Clock | None = None,
        client_factory: Callable[[], Any] | None = None,
        labels: Mapping[str, str] | None = None,
        start_timeout: float = _START_TIMEOUT,
    ) -> None:
        """``client_factory`` makes the SDK client (default ``docker.from_env()``);
        ``labels`` are added to every service and container (tests mark theirs this way)."""
        self.state_dir = Path(state_dir)
        self._clock: Clock = clock or SystemClock()
        self._engine = EngineConnection(client_factory)
        self._labels = dict(labels or {})
        self._builds = BuildLocks()
        self._exits = ExitRecords()
        self._start_timeout = start_timeout

    # -- the engine ------------------------------------------------------------------------

    def client(self) -> Any:
        """The SDK client (see ``EngineConnection``)."""
        return self._engine.client()

    def _service(self, instance: Instance) -> Any | None:
        """The service of ``instance`` if it exists and is this very instance."""
        reference = instance.meta.get("service_id") or instance.id
        docker = docker_sdk()
        client = self.client()
        with translate_errors(f"inspecting service {instance.id}"):
            try:
                service = client.services.get(reference)
            except docker.errors.NotFound:
                return None
        attrs = service.attrs
        labels = (attrs.get("Spec") or {}).get("Labels") or {}
        if labels.get(f"{LABEL_PREFIX}instance") != instance.id:
            return None
        if labels.get(f"{LABEL_PREFIX}service") != instance.service:
            return None
        try:
            created = parse_engine_time(str(attrs.get("CreatedAt", "")))
        except ValueError:
            return None
        return service if abs(created - instance.started_at) <= _CREATED_TOLERANCE else None

    def _task(self, service: Any, what: str) -> Mapping[str, Any] | None:
        with translate_errors(what):
            tasks: list[Mapping[str, Any]] = list(service.tasks())
        return _latest_task(tasks)

    def container_of(self, instance: Instance) -> Any | None:
        """The container of the instance's current task, if it is on this node."""
        if instance.meta.get("swarm_task"):
            return self._container(str(instance.meta.get("container_id") or ""))
        service = self._service(instance)
        if service is None:
            return None
        task = self._task(service, f"listing tasks of {instance.id}")
        container_id = (((task or {}).get("Status") or {}).get("ContainerStatus") or {}).get(
            "ContainerID"
        )
        if not container_id:
            return None
        docker = docker_sdk()
        with translate_errors(f"inspecting the container of {instance.id}"):
            try:
                return self.client().containers.get(container_id)
            except docker.errors.NotFound:
                return None

    # -- start -----------------------------------------------------------------------------

    def start(self, request: InstanceRequest) -> Instance:
        """Create the service and wait until its task runs (about 0.7 s), then return."""
        docker = docker_sdk()
        client = self.client()
        image = ensure_image(client, request, self._builds)
        instance_id = new_instance_id(request)
        port = container_port(request)
        host_port = request.port if request.port is not None else _ports.take()
        labels = container_labels(request, instance_id, self._labels)
        limits: dict[str, int] = {}
        if isinstance(request, ContainerRequest):
            if request.cpus is not None:
                limits["cpu_limit"] = round(request.cpus * 1e9)
            if request.memory_bytes is not None:
                limits["mem_limit"] = request.memory_bytes
        types = docker.types
        container_spec = types.ContainerSpec(
            image=image,
            args=None,
            command=None,
            env=container_env(request, instance_id, port),
            labels=labels,
            init=True,
            workdir=str(request.workdir) if request.workdir else None,
        )
        if request.command.strip():
            # As on ``docker``: the command replaces the image's CMD, its ENTRYPOINT stays.
            container_spec["Args"] = shlex.split(request.command)
        template = types.TaskTemplate(
            container_spec=container_spec,
            restart_policy=types.RestartPolicy(condition="none"),
            resources=types.Resources(**limits) if limits else None,
        )
        endpoint = types.EndpointSpec(
            mode="dnsrr",
            ports=[
                {
                    "Protocol": "tcp",
                    "TargetPort": port,
                    "PublishedPort": host_port,
                    "PublishMode": "host",
                }
            ],
        )
        with translate_errors(f"creating service {instance_id} from {image}"):
            created = client.api.create_service(
                template,
                name=instance_id,
                labels=labels,
                mode=types.ServiceMode("replicated", replicas=1),
                endpoint_spec=endpoint,
            )
            service = client.services.get(created["ID"])
        try:
            task = self._wait_running(service, instance_id)
        except BaseException:
            with contextlib.suppress(Exception):
                service.remove()
            raise
        status = task.get("Status") or {}
        pid = (status.get("ContainerStatus") or {}).get("PID")
        return Instance(
            id=instance_id,
            service=request.service,
            version=request.version,
            revision=request.revision,
            slot=request.slot,
            platform=self.name,
            address=Address(_HOST, _published_port(task) or host_port),
            pid=int(pid) if pid else None,
            started_at=parse_engine_time(str(service.attrs["CreatedAt"])),
            meta={"service_id": str(service.id), "image": image},
        )

    def _wait_running(self, service: Any, instance_id: str) -> Mapping[str, Any]:
        deadline = self._clock.monotonic() + self._start_timeout
        while True:
            task = self._task(service, f"waiting for service {instance_id}")
            status = _task_status(task)
            if task is not None and (task.get("Status") or {}).get("State") == "running":
                return task
            if status.state is InstanceState.EXITED:
                raise OperationFailedError(f"service {instance_id} did not start: {status.detail}")
            error = str(((task or {}).get("Status") or {}).get("Err") or "")
            if "port" in error and "in use" in error:
                raise TemporaryError(f"service {instance_id}: {error}", retry_after=1.0)
            if self._clock.monotonic() >= deadline:
                raise OperationFailedError(
                    f"service {instance_id} has no running task after "
                    f"{self._start_timeout:.0f}s ({status.detail})"
                )
            self._clock.sleep(_POLL_INTERVAL)

    # -- status and adopt ------------------------------------------------------------------

    def status(self, instance: Instance) -> InstanceStatus:
        """From the service's task: RUNNING, or EXITED with the container's exit code."""
        if instance.meta.get("swarm_task"):
            return self._task_status_of(instance)
        try:
            service = self._service(instance)
            if service is None:
                known = self._exits.get(instance.id)
                if known is not None:
                    return known
                return InstanceStatus(InstanceState.EXITED, detail="the service is gone")
            return _task_status(self._task(service, f"listing tasks of {instance.id}"))
        except TemporaryError as exc:
            return InstanceStatus(InstanceState.UNKNOWN, detail=exc.message)

    def adopt(self, instance: Instance) -> bool:
        """True iff the service exists with the instance's labels and creation time and its
        task runs. ``TemporaryError`` if the engine does not answer."""
        if instance.meta.get("swarm_task"):
            return self._adopt_task(instance)
        service = self._service(instance)
        if service is None:
            return False
        task = self._task(service, f"listing tasks of {instance.id}")
        return _task_status(task).state is InstanceState.RUNNING

    # -- stop ------------------------------------------------------------------------------

    def stop(self, instance: Instance, *, grace: float) -> InstanceStatus:
        """Stop the task's container with ``grace`` (SIGTERM, then SIGKILL), remove the service."""
        if instance.meta.get("swarm_task"):
            return self._stop_task(instance, grace)
        service = self._service(instance)
        if service is None:
            return self.status(instance)
        container = self.container_of(instance)
        with translate_errors(f"stopping service {instance.id}"):
            if container is not None and container.status in ("running", "paused", "created"):
                container.stop(timeout=max(0, math.ceil(grace)))
            elif (
                _task_status(self._task(service, f"listing tasks of {instance.id}")).state
                is InstanceState.RUNNING
            ):
                service.scale(0)  # not on this node: Swarm stops it with the spec's grace
        result = self._settle(service, instance, grace)
        with translate_errors(f"removing service {instance.id}"):
            service.remove()
        self._exits.remember(instance.id, result)
        return result

    def _settle(self, service: Any, instance: Instance, grace: float) -> InstanceStatus:
        """Wait until the task's end is recorded; its status (exit code included)."""
        deadline = self._clock.monotonic() + grace + _SETTLE_TIMEOUT
        while True:
            status = _task_status(self._task(service, f"waiting for {instance.id} to stop"))
            if status.state is InstanceState.EXITED or self._clock.monotonic() >= deadline:
                return status
            self._clock.sleep(_POLL_INTERVAL)

    # -- resources -------------------------------------------------------------------------

    def resources(self, instance: Instance) -> ResourceUsage | None:
        """CPU (over about a second), memory, network and disk I/O of the task's container."""
        container = self.container_of(instance)
        if container is None or container.status != "running":
            return None
        docker = docker_sdk()
        with translate_errors(f"reading stats of {instance.id}"):
            try:
                stats = container.stats(stream=False)
            except docker.errors.NotFound:
                return None
        if not stats.get("read") or str(stats.get("read", "")).startswith("0001"):
            return None
        return usage_from_stats(stats, psutil.virtual_memory().total)

    # -- logs ------------------------------------------------------------------------------

    def read_logs(self, instance: Instance, cursor: str | None) -> LogChunk:
        """The service's stdout and stderr lines since ``cursor`` (as on ``docker``)."""
        position = parse_log_cursor(cursor)
        if instance.meta.get("swarm_task"):
            container = self.container_of(instance)
            if container is None:
                return LogChunk(lines=[], cursor=cursor or "")
            since: dict[str, Any] = {}
            if position is not None and position[0][0] > 0:
                since["since"] = position[0][0]
            with translate_errors(f"reading logs of {instance.id}"):
                raw_task = container.logs(timestamps=True, stdout=True, stderr=True, **since)
            return lines_after(split_log_lines(bytes(raw_task)), position)
        service = self._service(instance)
        if service is None:
            return LogChunk(lines=[], cursor=cursor or "")
        options: dict[str, Any] = {"timestamps": True, "stdout": True, "stderr": True}
        if position is not None and position[0][0] > 0:
            options["since"] = position[0][0]
        with translate_errors(f"reading logs of {instance.id}"):
            raw = b"".join(
                bytes(chunk)
                for chunk in self.client().api.service_logs(
                    service.id, is_tty=False, follow=False, **options
                )
            )
        return lines_after(split_log_lines(raw), position)

    # -- replicated services (strategy: native) --------------------------------------------

    def _replicated(self, service: str) -> Any | None:
        """The replicated service zerodown made for ``service``, or None if there is none."""
        docker = docker_sdk()
        with translate_errors(f"inspecting Swarm service {service}"):
            try:
                found = self.client().services.get(service)
            except docker.errors.NotFound:
                return None
        if found.name != service:
            return None  # an id prefix, not the name
        if not is_native_service(found.attrs, service):
            raise OperationFailedError(
                f"a Swarm service named {service!r} exists that zerodown did not create (it has "
                f"no {NATIVE_LABEL}=1 label); remove or rename it, then deploy again"
            )
        return found

    def observe_replicated(self, service: ServiceName) -> ReplicatedView:
        """The service's spec revisions, Swarm's ``UpdateStatus`` and every task it keeps."""
        found = self._replicated(service)
        if found is None:
            return ReplicatedView(exists=False)
        with translate_errors(f"listing tasks of Swarm service {service}"):
            tasks: list[Mapping[str, Any]] = list(
                self.client().api.tasks(filters={"service": found.id})
            )
        return replicated_view(found.attrs, tasks)

    def apply_replicated(self, request: ReplicatedRequest) -> None:
        """Create the service, or update it in place (Swarm replaces its tasks by the spec's
        ``UpdateConfig``). Local images are used as they are, never resolved in a registry."""
        name = request.instance.service
        client = self.client()
        image = ensure_image(client, request.instance, self._builds)
        spec = service_spec_of(request, image, self._labels)
        found = self._replicated(name)
        if found is None:
            self._engine_post(
                "/services/create", {}, spec, what=f"creating Swarm service {name} from {image}"
            )
            return
        version = int((found.attrs.get("Version") or {}).get("Index") or 0)
        self._engine_post(
            f"/services/{found.id}/update",
            {"version": version},
            spec,
            what=f"updating Swarm service {name} to revision {request.instance.revision}",
        )

    def rollback_replicated(self, service: ServiceName) -> None:
        """``docker service update --rollback``: Swarm goes back to the service's previous spec
        with its ``RollbackConfig``."""
        found = self._replicated(service)
        if found is None:
            raise OperationFailedError(f"Swarm service {service} is gone: nothing to roll back")
        attrs = found.attrs
        version = int((attrs.get("Version") or {}).get("Index") or 0)
        self._engine_post(
            f"/services/{found.id}/update",
            {"version": version, "rollback": "previous"},
            attrs.get("Spec") or {},
            what=f"rolling Swarm service {service} back",
        )

    def remove_replicated(self, service: ServiceName) -> None:
        """Remove the service; Swarm stops its tasks with their stop grace period."""
        found = self._replicated(service)
        if found is None:
            return
        docker = docker_sdk()
        with translate_errors(f"removing Swarm service {service}"):
            try:
                found.remove()
            except docker.errors.NotFound:
                return

    def task_instance(self, service: ServiceName, view: ReplicatedView, task: TaskView) -> Instance:
        """A running task as an instance, addressed by its dynamic host-mode port."""
        if task.port is None or task.revision is None:
            raise OperationFailedError(f"task {task.id} of {service} has no published port yet")
        return Instance(
            id=InstanceId(f"{service}-r{task.revision}-{task.slot}-{task.id[:6]}"),
            service=service,
            version=Version(task.version),
            revision=Revision(task.revision),
            slot=task.slot,
            platform=self.name,
            address=Address(_HOST, task.port),
            pid=task.pid,
            started_at=task.created_at,
            meta={
                "swarm_task": task.id,
                "swarm_service": view.service_id,
                "container_id": task.container_id or "",
            },
        )

    def _engine_post(
        self, path: str, params: Mapping[str, Any], body: Mapping[str, Any], *, what: str
    ) -> None:
        """POST a whole spec to the engine. The SDK's ``update_service`` cannot ask for Swarm's
        rollback (``rollback=previous``) and rebuilds the spec from arguments; this sends the
        spec as it is, on the SDK's own connection and API version."""
        docker = docker_sdk()
        import requests  # a dependency of the docker SDK

        api = self.client().api
        with translate_errors(what):
            response = api.post(
                f"{api.base_url}/v{api.api_version}{path}", params=dict(params), json=dict(body)
            )
            try:
                response.raise_for_status()
            except requests.exceptions.HTTPError as exc:
                error = docker.errors.create_api_error_from_http_exception(exc)
                if "out of sequence" in str(error):
                    raise TemporaryError(
                        f"{what}: the service changed meanwhile; trying again", retry_after=0.5
                    ) from exc
                raise error from exc

    def _container(self, container_id: str) -> Any | None:
        if not container_id:
            return None
        docker = docker_sdk()
        with translate_errors(f"inspecting container {container_id[:12]}"):
            try:
                return self.client().containers.get(container_id)
            except docker.errors.NotFound:
                return None

    def _task_of(self, instance: Instance) -> TaskView | None:
        docker = docker_sdk()
        with translate_errors(f"inspecting the task of {instance.id}"):
            try:
                attrs = self.client().api.inspect_task(str(instance.meta["swarm_task"]))
            except docker.errors.NotFound:
                return None
        return task_view(attrs)

    def _task_status_of(self, instance: Instance) -> InstanceStatus:
        try:
            task = self._task_of(instance)
            if task is None:
                return self._gone_task_status(instance)
        except TemporaryError as exc:
            return InstanceStatus(InstanceState.UNKNOWN, detail=exc.message)
        if task.state == "running" or task.state in _ACTIVE_TASK_STATES:
            return InstanceStatus(
                InstanceState.RUNNING, detail=f"task {task.state}, Swarm wants it {task.desired}"
            )
        detail = f"task {task.state}" + (
            f" (exit code {task.exit_code})" if task.exit_code is not None else ""
        )
        if task.error:
            detail += f": {task.error}"
        return InstanceStatus(InstanceState.EXITED, exit_code=task.exit_code, detail=detail)

    def _gone_task_status(self, instance: Instance) -> InstanceStatus:
        """A task Swarm forgot (its service was removed): what its container says, if kept."""
        container = self.container_of(instance)
        if container is None:
            known = self._exits.get(instance.id)
            return known or InstanceStatus(InstanceState.EXITED, detail="the task is gone")
        state = container.attrs.get("State") or {}
        if state.get("Status") == "running":
            return InstanceStatus(InstanceState.RUNNING, detail="container running")
        code = state.get("ExitCode")
        return InstanceStatus(
            InstanceState.EXITED,
            exit_code=int(code) if code is not None else None,
            detail=f"the task is gone; its container exited with code {code}",
        )

    def _adopt_task(self, instance: Instance) -> bool:
        task = self._task_of(instance)
        return (
            task is not None
            and task.desired == "running"
            and task.state == "running"
            and (task.container_id or "") == instance.meta.get("container_id", "")
        )

    def _stop_task(self, instance: Instance, grace: float) -> InstanceStatus:
        """Wait for Swarm to end the task; stop its container first only if Swarm still wants
        it running (then Swarm starts a replacement by the service's restart policy)."""
        task = self._task_of(instance)
        container = self.container_of(instance)
        if container is None:
            return self.status(instance)
        docker = docker_sdk()
        with translate_errors(f"stopping {instance.id}"):
            if task is not None and task.desired == "running" and container.status == "running":
                container.stop(timeout=max(0, math.ceil(grace)))
        deadline = self._clock.monotonic() + grace + _SETTLE_TIMEOUT
        while self._clock.monotonic() < deadline:
            with translate_errors(f"waiting for {instance.id} to stop"):
                try:
                    container.reload()
                except docker.errors.NotFound:
                    break
            if container.status not in ("running", "paused", "restarting", "created"):
                break
            self._clock.sleep(_POLL_INTERVAL)
        result = self.status(instance)
        if result.state is InstanceState.EXITED:
            self._exits.remember(instance.id, result)
        return result


def task_container(platform: SwarmPlatform, instance: Instance) -> Any | None:
    """The Docker SDK container of an instance's task on this node (tests kill it)."""
    return platform.container_of(instance)
