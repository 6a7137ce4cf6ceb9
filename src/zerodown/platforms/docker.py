"""The ``docker`` platform: each instance is one container on a local Docker engine.

A container runs the release's image (``run.image``, or the image built once per revision from
``run.build``) with the instance's environment, its port published on loopback at a host port the
engine picks, ``--init`` (so a PID 1 that ignores SIGTERM still stops), the spec's CPU and memory
limits, and labels naming it: ``zerodown.service``, ``.version``, ``.revision``, ``.slot`` and
``.instance``. The built-in proxy routes to ``127.0.0.1:<published port>``; logs and resource use
come from the engine. Nothing flows through the controller, so containers outlive it, and a
restarted controller adopts them: same container id, same labels, same creation time.

The identity of a container is its id *and* its creation time (``Instance.started_at``), checked
against its labels, so a record is never matched to some other container.

The engine SDK (the ``docker`` extra) is imported lazily; every SDK or connection exception is
translated here: an engine that does not answer is a ``TemporaryError``, a missing image an
``InputError``. Environment values (which may hold secrets) never appear in messages or logs.

The container settings the generic ``InstanceRequest`` lacks (container port, CPU and memory
limits, a build context) travel in ``ContainerRequest``, a subclass the engine builds for the
container platforms; a plain ``InstanceRequest`` gets the defaults (port 8080, or ``env["PORT"]``
when given, no limits).
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import math
import secrets
import shlex
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from zerodown.core.clock import Clock, SystemClock
from zerodown.core.errors import (
    InputError,
    NotFoundError,
    OperationFailedError,
    TemporaryError,
    ZerodownError,
)
from zerodown.core.types import Address, InstanceId, ResourceUsage
from zerodown.platforms.base import (
    Instance,
    InstanceRequest,
    InstanceState,
    InstanceStatus,
    LogChunk,
)

__all__ = [
    "DEFAULT_CONTAINER_PORT",
    "BuildContext",
    "BuildLocks",
    "ContainerRequest",
    "DockerPlatform",
    "build_tag",
    "container_env",
    "container_labels",
    "docker_sdk",
    "translate_errors",
]

DEFAULT_CONTAINER_PORT = 8080
LABEL_PREFIX = "zerodown."
_HOST = "127.0.0.1"
# Two readings of one creation time differ by float rounding only (the engine keeps nanoseconds).
_CREATED_TOLERANCE = 1e-5
_KEEP_EXITED = 1024
_ENGINE_RETRY = 2.0


@dataclass(frozen=True, kw_only=True)
class BuildContext:
    """``run.build``: a folder and the Dockerfile in it (relative to the folder)."""

    context: Path
    dockerfile: str = "Dockerfile"


@dataclass(frozen=True, kw_only=True)
class ContainerRequest(InstanceRequest):
    """An ``InstanceRequest`` with the container settings of ``run`` in the spec."""

    container_port: int = DEFAULT_CONTAINER_PORT
    cpus: float | None = None  # cores, e.g. 0.5
    memory_bytes: int | None = None
    build: BuildContext | None = None


def docker_sdk() -> Any:
    """The ``docker`` module, or an ``InputError`` naming the extra to install."""
    try:
        import docker  # optional: imported on first use
    except ImportError as exc:
        raise InputError(
            "platform docker needs the 'docker' extra: pip install 'zerodown[docker]'"
        ) from exc
    return docker


def _engine_unreachable(exc: BaseException) -> bool:
    """Is ``exc`` the engine not answering (as opposed to answering with an error)?"""
    try:
        import requests  # a dependency of the docker SDK
    except ImportError:  # pragma: no cover
        return False
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    text = str(exc)
    return "Error while fetching server API version" in text or "Connection refused" in text


@contextlib.contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn SDK and connection exceptions raised while doing ``what`` into zerodown errors."""
    docker = docker_sdk()
    try:
        yield
    except ZerodownError:
        raise
    except docker.errors.ImageNotFound as exc:
        raise InputError(f"{what}: image not found on the engine ({_explain(exc)})") from exc
    except docker.errors.NotFound as exc:
        raise NotFoundError(f"{what}: {_explain(exc)}") from exc
    except docker.errors.APIError as exc:
        explanation = _explain(exc)
        if "port is already allocated" in explanation or "address already in use" in explanation:
            raise TemporaryError(f"{what}: {explanation}", retry_after=1.0) from exc
        status = exc.status_code or 0
        if status >= 500 or status == 409:
            raise OperationFailedError(f"{what}: {explanation}") from exc
        raise InputError(f"{what}: {explanation}") from exc
    except Exception as exc:
        if _engine_unreachable(exc) or isinstance(exc, docker.errors.DockerException | OSError):
            raise TemporaryError(
                f"{what}: the Docker engine does not answer ({type(exc).__name__})",
                retry_after=_ENGINE_RETRY,
            ) from exc
        raise


def _explain(exc: Any) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)


def container_labels(
    request: InstanceRequest, instance_id: str, extra: Mapping[str, str]
) -> dict[str, str]:
    """The labels that name an instance (plus ``extra``, e.g. for tests)."""
    return {
        **extra,
        f"{LABEL_PREFIX}service": request.service,
        f"{LABEL_PREFIX}version": request.version,
        f"{LABEL_PREFIX}revision": str(request.revision),
        f"{LABEL_PREFIX}slot": str(request.slot),
        f"{LABEL_PREFIX}instance": instance_id,
    }


def container_port(request: InstanceRequest) -> int:
    """The port the container listens on: ``ContainerRequest.container_port``, else env PORT."""
    if isinstance(request, ContainerRequest):
        return request.container_port
    text = request.env.get("PORT")
    if text is not None and text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    return DEFAULT_CONTAINER_PORT


def container_env(request: InstanceRequest, instance_id: str, port: int) -> dict[str, str]:
    """The container's environment: the request's, ``PORT`` and the ``ZERODOWN_*`` names."""
    return {
        **request.env,
        "PORT": str(port),
        "ZERODOWN_SERVICE": request.service,
        "ZERODOWN_VERSION": request.version,
        "ZERODOWN_REVISION": str(request.revision),
        "ZERODOWN_INSTANCE": instance_id,
    }


def build_tag(request: InstanceRequest) -> str:
    """The tag of the image built from ``run.build`` for one revision."""
    return f"zerodown/{request.service.lower()}:r{request.revision}"


def new_instance_id(request: InstanceRequest) -> InstanceId:
    return InstanceId(
        f"{request.service}-r{request.revision}-{request.slot}-{secrets.token_hex(3)}"
    )


def parse_engine_time(text: str) -> float:
    """Seconds since the epoch of an engine timestamp (RFC 3339 with up to 9 decimals)."""
    seconds, nanos = parse_engine_time_ns(text)
    return seconds + nanos / 1e9


def parse_engine_time_ns(text: str) -> tuple[int, int]:
    """``(whole seconds, nanoseconds)`` of an engine timestamp, exactly."""
    stamp = text.strip()
    if stamp.endswith("Z"):
        stamp = stamp[:-1] + "+00:00"
    main, dot, rest = stamp.partition(".")
    nanos = 0
    if dot:
        digits = ""
        for char in rest:
            if not char.isdigit():
                break
            digits += char
        zone = rest[len(digits) :]
        nanos = int((digits + "000000000")[:9]) if digits else 0
        stamp = main + zone
    moment = dt.datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp()), nanos


class BuildLocks:
    """One build per image tag at a time; tags built by this process are remembered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self.built: set[str] = set()

    def lock(self, tag: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(tag, threading.Lock())


def ensure_image(client: Any, request: InstanceRequest, builds: BuildLocks) -> str:
    """The image to run: ``request.image``, or the revision's image built from its context."""
    build = request.build if isinstance(request, ContainerRequest) else None
    if build is None:
        if not request.image:
            raise InputError(f"service {request.service}: a container platform needs run.image")
        return request.image
    tag = build_tag(request)
    with builds.lock(tag):
        if tag in builds.built:
            return tag
        docker = docker_sdk()
        with translate_errors(f"building {tag}"):
            try:
                client.images.get(tag)
            except docker.errors.ImageNotFound:
                context = Path(build.context)
                if not context.is_dir():
                    raise InputError(
                        f"run.build.context {str(context)!r} is not a folder"
                    ) from None
                try:
                    client.images.build(
                        path=str(context),
                        dockerfile=build.dockerfile,
                        tag=tag,
                        rm=True,
                        pull=False,
                        labels={f"{LABEL_PREFIX}service": request.service},
                    )
                except docker.errors.BuildError as exc:
                    tail = " | ".join(
                        str(line.get("stream") or line.get("error") or "").strip()
                        for line in list(exc.build_log)[-5:]
                        if isinstance(line, dict)
                    )
                    raise InputError(f"building {tag} failed: {exc.msg} ({tail})") from exc
        builds.built.add(tag)
    return tag


def usage_from_stats(stats: Mapping[str, Any], host_memory: int) -> ResourceUsage:
    """``ResourceUsage`` from one ``stats(stream=False)`` payload (two samples a second apart)."""
    cpu = stats.get("cpu_stats") or {}
    pre = stats.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cores = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [])
    cores = cores or 1
    cpu_percent = 0.0
    if cpu_delta > 0 and system_delta > 0 and pre.get("system_cpu_usage"):
        # system_cpu_usage counts every core: the share of all cores times cores = cores busy.
        cpu_percent = 100.0 * cpu_delta / system_delta * cores
    memory = stats.get("memory_stats") or {}
    details = memory.get("stats") or {}
    # As `docker stats` does: page cache that can be dropped is not the container's own use.
    inactive = details.get("total_inactive_file", details.get("inactive_file", 0))
    used = max(int(memory.get("usage", 0)) - int(inactive), 0)
    sent: int | None = None
    received: int | None = None
    networks = stats.get("networks")
    if isinstance(networks, dict) and networks:
        sent = sum(int(n.get("tx_bytes", 0)) for n in networks.values())
        received = sum(int(n.get("rx_bytes", 0)) for n in networks.values())
    read: int | None = None
    written: int | None = None
    blkio = (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive")
    if isinstance(blkio, list):
        read = sum(int(e.get("value", 0)) for e in blkio if str(e.get("op")).lower() == "read")
        written = sum(int(e.get("value", 0)) for e in blkio if str(e.get("op")).lower() == "write")
    return ResourceUsage(
        cpu_percent=cpu_percent,
        memory_bytes=used,
        memory_percent=100.0 * used / host_memory if host_memory else 0.0,
        net_bytes_sent=sent,
        net_bytes_recv=received,
        disk_bytes_read=read,
        disk_bytes_written=written,
    )


def split_log_lines(raw: bytes) -> list[tuple[tuple[int, int], str]]:
    """``((seconds, nanos), text)`` for each line of a ``logs(timestamps=True)`` answer."""
    lines: list[tuple[tuple[int, int], str]] = []
    for line in raw.decode("utf-8", errors="replace").split("\n"):
        if not line:
            continue
        stamp, _, text = line.partition(" ")
        try:
            when = parse_engine_time_ns(stamp)
        except ValueError:
            continue
        lines.append((when, text.removesuffix("\r")))
    return lines


def parse_log_cursor(cursor: str | None) -> tuple[tuple[int, int], int] | None:
    """A log cursor is ``<seconds>.<nanos9>:<lines already read at that moment>``."""
    if cursor is None or cursor == "":
        return None
    try:
        moment, _, count = cursor.partition(":")
        seconds, _, nanos = moment.partition(".")
        parsed = ((int(seconds), int(nanos)), int(count or 0))
    except ValueError:
        raise InputError(f"log cursor {cursor!r} is not a container log position") from None
    if parsed[0][0] < 0 or parsed[1] < 0:
        raise InputError(f"log cursor {cursor!r} is not a container log position")
    return parsed


def format_log_cursor(moment: tuple[int, int], count: int) -> str:
    return f"{moment[0]}.{moment[1]:09d}:{count}"


def lines_after(
    entries: list[tuple[tuple[int, int], str]], position: tuple[tuple[int, int], int] | None
) -> LogChunk:
    """The entries after ``position`` and the cursor after the last one."""
    if position is None:
        fresh = entries
        moment, seen = (0, 0), 0
    else:
        moment, seen = position
        fresh = []
        same = 0
        for when, text in entries:
            if when < moment:
                continue
            if when == moment:
                same += 1
                if same <= seen:
                    continue
            fresh.append((when, text))
    if not fresh:
        return LogChunk(lines=[], cursor=format_log_cursor(moment, seen))
    last = fresh[-1][0]
    # Lines already read at the last moment count too when the cursor stays on it.
    count = sum(1 for when, _ in entries if when == last)
    if last == moment:
        count = seen + len(fresh)
    return LogChunk(lines=[text for _, text in fresh], cursor=format_log_cursor(last, count))


class ExitRecords:
    """Exit statuses of instances this platform removed, so ``status`` still knows them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: collections.OrderedDict[str, InstanceStatus] = collections.OrderedDict()

    def remember(self, instance_id: str, status: InstanceStatus) -> None:
        with self._lock:
            self._records[instance_id] = status
            while len(self._records) > _KEEP_EXITED:
                self._records.popitem(last=False)

    def get(self, instance_id: str) -> InstanceStatus | None:
        with self._lock:
            return self._records.get(instance_id)


def _exit_detail(state: Mapping[str, Any]) -> str:
    code = state.get("ExitCode")
    if state.get("OOMKilled"):
        return f"killed for using too much memory (exit code {code})"
    error = state.get("Error")
    if error:
        return f"exited with code {code}: {error}"
    return f"exited with code {code}"


class EngineConnection:
    """The Docker SDK client, made on first use and shared by threads: a missing engine fails
    the first call that needs it, not the platform's construction."""

    def __init__(self, factory: Callable[[], Any] | None = None) -> None:
        self._factory = factory
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                docker = docker_sdk()
                with translate_errors("connecting to the Docker engine"):
                    factory = self._factory or (lambda: docker.from_env(timeout=60))
                    self._client = factory()
            return self._client


class DockerPlatform:
    """Instances as containers on a local Docker engine, surviving the controller."""

    name = "docker"

    def __init__(
        self,
        *,
        state_dir: Path,
        clock: Clock | None = None,
        client_factory: Callable[[], Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """``client_factory`` makes the SDK client (default ``docker.from_env()``);
        ``labels`` are added to every container (tests mark theirs this way)."""
        self.state_dir = Path(state_dir)
        self._clock: Clock = clock or SystemClock()
        self._engine = EngineConnection(client_factory)
        self._labels = dict(labels or {})
        self._builds = BuildLocks()
        self._exits = ExitRecords()

    # -- the engine ------------------------------------------------------------------------

    def client(self) -> Any:
        """The SDK client (see ``EngineConnection``)."""
        return self._engine.client()

    def _container(self, instance: Instance) -> Any | None:
        """The container of ``instance`` if it still exists and is this very instance."""
        reference = instance.meta.get("container_id") or instance.id
        docker = docker_sdk()
        client = self.client()
        with translate_errors(f"inspecting {instance.id}"):
            try:
                container = client.containers.get(reference)
            except docker.errors.NotFound:
                return None
        return container if self._is_instance(container.attrs, instance) else None

    @staticmethod
    def _is_instance(attrs: Mapping[str, Any], instance: Instance) -> bool:
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        if labels.get(f"{LABEL_PREFIX}instance") != instance.id:
            return False
        if labels.get(f"{LABEL_PREFIX}service") != instance.service:
            return False
        try:
            created = parse_engine_time(str(attrs.get("Created", "")))
        except ValueError:
            return False
        return abs(created - instance.started_at) <= _CREATED_TOLERANCE

    # -- start -----------------------------------------------------------------------------

    def start(self, request: InstanceRequest) -> Instance:
        """Create and start the container; return once the engine says it started."""
        client = self.client()
        image = ensure_image(client, request, self._builds)
        instance_id = new_instance_id(request)
        port = container_port(request)
        labels = container_labels(request, instance_id, self._labels)
        options: dict[str, Any] = {}
        if isinstance(request, ContainerRequest):
            if request.cpus is not None:
                options["nano_cpus"] = round(request.cpus * 1e9)
            if request.memory_bytes is not None:
                options["mem_limit"] = request.memory_bytes
        command = shlex.split(request.command) if request.command.strip() else None
        host_port = request.port  # None: the engine picks a free one as it publishes
        with translate_errors(f"starting {instance_id} from {image}"):
            container = client.containers.create(
                image,
                command=command,
                name=instance_id,
                environment=container_env(request, instance_id, port),
                labels=labels,
                ports={f"{port}/tcp": (_HOST, host_port)},
                init=True,
                working_dir=str(request.workdir) if request.workdir else None,
                detach=True,
                **options,
            )
            try:
                container.start()
                container.reload()
            except Exception:
                with contextlib.suppress(Exception):
                    container.remove(force=True)
                raise
        attrs = container.attrs
        published = self._published_port(attrs, port)
        if published is None:
            with contextlib.suppress(Exception):
                container.remove(force=True)
            raise OperationFailedError(f"{instance_id}: the engine did not publish port {port}")
        state = attrs.get("State") or {}
        return Instance(
            id=instance_id,
            service=request.service,
            version=request.version,
            revision=request.revision,
            slot=request.slot,
            platform=self.name,
            address=Address(_HOST, published),
            pid=int(state.get("Pid") or 0) or None,
            started_at=parse_engine_time(str(attrs["Created"])),
            meta={"container_id": str(container.id), "image": image},
        )

    @staticmethod
    def _published_port(attrs: Mapping[str, Any], port: int) -> int | None:
        bindings = ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{port}/tcp")
        for binding in bindings or []:
            if binding.get("HostPort"):
                return int(binding["HostPort"])
        return None

    # -- status and adopt ------------------------------------------------------------------

    def status(self, instance: Instance) -> InstanceStatus:
        """RUNNING or EXITED (with the exit code) from the container; UNKNOWN if no engine."""
        try:
            container = self._container(instance)
        except TemporaryError as exc:
            return InstanceStatus(InstanceState.UNKNOWN, detail=exc.message)
        if container is None:
            known = self._exits.get(instance.id)
            if known is not None:
                return known
            return InstanceStatus(InstanceState.EXITED, detail="the container is gone")
        return self._status_of(container.attrs)

    @staticmethod
    def _status_of(attrs: Mapping[str, Any]) -> InstanceStatus:
        state = attrs.get("State") or {}
        status = str(state.get("Status", ""))
        if status in ("created", "running", "paused", "restarting"):
            return InstanceStatus(InstanceState.RUNNING, detail=f"container {status}")
        exit_code = state.get("ExitCode")
        return InstanceStatus(
            InstanceState.EXITED,
            exit_code=int(exit_code) if exit_code is not None else None,
            detail=_exit_detail(state),
        )

    def adopt(self, instance: Instance) -> bool:
        """True iff the container exists, carries the instance's labels and creation time, and
        runs. ``TemporaryError`` if the engine does not answer (the caller retries later)."""
        container = self._container(instance)
        if container is None:
            return False
        return self._status_of(container.attrs).state is InstanceState.RUNNING

    # -- stop ------------------------------------------------------------------------------

    def stop(self, instance: Instance, *, grace: float) -> InstanceStatus:
        """SIGTERM (via the container's init), SIGKILL after ``grace`` s, then remove it."""
        container = self._container(instance)
        if container is None:
            return self.status(instance)
        with translate_errors(f"stopping {instance.id}"):
            if self._status_of(container.attrs).state is InstanceState.RUNNING:
                container.stop(timeout=max(0, math.ceil(grace)))
            container.reload()
            result = self._status_of(container.attrs)
            container.remove(v=True, force=True)
        self._exits.remember(instance.id, result)
        return result

    # -- resources -------------------------------------------------------------------------

    def resources(self, instance: Instance) -> ResourceUsage | None:
        """CPU (over about a second), memory, network and disk I/O from the engine."""
        container = self._container(instance)
        if container is None or self._status_of(container.attrs).state is not InstanceState.RUNNING:
            return None
        docker = docker_sdk()
        with translate_errors(f"reading stats of {instance.id}"):
            try:
                stats = container.stats(stream=False)
            except docker.errors.NotFound:
                return None
        if not stats.get("read") or str(stats.get("read", "")).startswith("0001"):
            return None  # the container stopped meanwhile
        return usage_from_stats(stats, psutil.virtual_memory().total)

    # -- logs ------------------------------------------------------------------------------

    def read_logs(self, instance: Instance, cursor: str | None) -> LogChunk:
        """stdout and stderr lines since ``cursor`` (a log timestamp and a count at it)."""
        position = parse_log_cursor(cursor)
        container = self._container(instance)
        if container is None:
            return LogChunk(lines=[], cursor=cursor or "")
        options: dict[str, Any] = {"timestamps": True, "stdout": True, "stderr": True}
        if position is not None and position[0][0] > 0:
            options["since"] = position[0][0]  # whole seconds: the rest is filtered here
        with translate_errors(f"reading logs of {instance.id}"):
            raw = container.logs(**options)
        return lines_after(split_log_lines(bytes(raw)), position)
