"""Fakes that zerodown ships for tests: users' tests of their own automation, and ours.

These are product code, not test helpers: each fake implements the same Protocol as the real
thing and passes the same contract tests (``tests/contract``), so a test written against a fake
says something true about the real plugin. They work in memory and in virtual time, so a whole
rollout can be exercised in milliseconds.

* ``FrozenClock``: a ``Clock`` whose time moves only when told to (``advance``) or when someone
  sleeps on it, which returns at once with the time moved forward.
* ``FakePlatform``: a ``Platform`` that "runs" instances in a dict; ``crash`` one to simulate a
  failure, ``write_log`` to give it output, and read ``stop_calls`` to see what was stopped.
* ``RecordingRouter``: a ``TrafficRouter`` that records every routing table applied.
* ``MemoryStore``: the real SQLite store in memory.
* ``InlineExecutor`` and ``always_healthy``: deterministic health probing for engine tests.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from zerodown.checks.health import HealthProbeConfig, ProbeResult
from zerodown.core.clock import Clock
from zerodown.core.errors import InputError, NotFoundError
from zerodown.core.types import Address, InstanceId, ResourceUsage
from zerodown.platforms.base import (
    Instance,
    InstanceRequest,
    InstanceState,
    InstanceStatus,
    LogChunk,
)
from zerodown.store.sqlite import SqliteStore
from zerodown.traffic.base import ServiceMetrics, ServiceRoutes

__all__ = [
    "FakePlatform",
    "FrozenClock",
    "InlineExecutor",
    "MemoryStore",
    "RecordingRouter",
    "StopCall",
    "always_healthy",
]

T = TypeVar("T")


class FrozenClock:
    """A ``Clock`` in virtual time: ``sleep`` advances it instantly instead of waiting.

    ``sleep`` returns True (without advancing) if ``wakeup`` is already set, as a real sleep
    would return at once; otherwise it advances by ``delay`` and returns whether ``wakeup`` is
    set by then. ``sleeps`` records every requested delay, for tests that pin a retry schedule.
    """

    def __init__(self, start: datetime | None = None, *, monotonic_start: float = 1000.0) -> None:
        start = start or datetime(2024, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware start time")
        self._lock = threading.Lock()
        self._start = start
        self._monotonic_start = monotonic_start
        self._elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic_start + self._elapsed

    def sleep(self, delay: float, wakeup: threading.Event | None = None) -> bool:
        with self._lock:
            self.sleeps.append(delay)
        if wakeup is not None and wakeup.is_set():
            return True
        self.advance(max(delay, 0.0))
        return wakeup is not None and wakeup.is_set()

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (never back)."""
        if seconds < 0:
            raise ValueError(f"time does not go back (advance by {seconds})")
        with self._lock:
            self._elapsed += seconds


@dataclass(frozen=True)
class StopCall:
    """One call to ``FakePlatform.stop``."""

    instance_id: InstanceId
    grace: float


@dataclass
class _FakeProcess:
    instance: Instance
    state: InstanceState = InstanceState.RUNNING
    exit_code: int | None = None
    detail: str = ""
    log: list[str] = field(default_factory=list)
    usage: ResourceUsage = field(
        default_factory=lambda: ResourceUsage(
            cpu_percent=1.0, memory_bytes=32 * 1024 * 1024, memory_percent=0.5
        )
    )


class FakePlatform:
    """A ``Platform`` in memory: instances "run" until stopped or ``crash``ed.

    Instances get loopback addresses with made-up ports (nothing listens there) and made-up
    pids. A graceful ``stop`` exits with code 0; ``crash`` exits with the code given. ``adopt``
    is True for a running instance this fake started (like a controller that restarted on the
    same host), False for anything else. ``stop_calls`` and ``started`` record what the code
    under test asked for.
    """

    name = "fake"

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        first_port: int = 20000,
        name: str = "fake",
    ) -> None:
        self.name = name
        self.clock: Clock = clock or FrozenClock()
        self.host = host
        self._lock = threading.Lock()
        self._ports = itertools.count(first_port)
        self._pids = itertools.count(40000)
        self._ids = itertools.count(1)
        self._processes: dict[InstanceId, _FakeProcess] = {}
        self.started: list[InstanceRequest] = []
        self.stop_calls: list[StopCall] = []

    # -- Platform --------------------------------------------------------------------------

    def start(self, request: InstanceRequest) -> Instance:
        with self._lock:
            port = request.port if request.port is not None else next(self._ports)
            instance = Instance(
                id=InstanceId(
                    f"{request.service}-r{request.revision}-{request.slot}-{next(self._ids):06x}"
                ),
                service=request.service,
                version=request.version,
                revision=request.revision,
                slot=request.slot,
                platform=self.name,
                address=Address(self.host, port),
                pid=next(self._pids),
                started_at=self.clock.now().timestamp(),
            )
            self._processes[instance.id] = _FakeProcess(instance=instance)
            self.started.append(request)
        return instance

    def stop(self, instance: Instance, *, grace: float) -> InstanceStatus:
        with self._lock:
            self.stop_calls.append(StopCall(instance_id=instance.id, grace=grace))
            process = self._processes.get(instance.id)
            if process is not None and process.state is InstanceState.RUNNING:
                process.state = InstanceState.EXITED
                process.exit_code = 0
                process.detail = "stopped"
        return self.status(instance)

    def status(self, instance: Instance) -> InstanceStatus:
        with self._lock:
            process = self._known(instance)
            if process is None:
                return InstanceStatus(InstanceState.EXITED, detail="unknown to this platform")
            return InstanceStatus(process.state, process.exit_code, process.detail)

    def adopt(self, instance: Instance) -> bool:
        with self._lock:
            process = self._known(instance)
            return process is not None and process.state is InstanceState.RUNNING

    def resources(self, instance: Instance) -> ResourceUsage | None:
        with self._lock:
            process = self._known(instance)
            if process is None or process.state is not InstanceState.RUNNING:
                return None
            return process.usage

    def read_logs(self, instance: Instance, cursor: str | None) -> LogChunk:
        """Lines since ``cursor``, which counts lines; a cursor past the end starts over."""
        try:
            position = int(cursor) if cursor else 0
        except ValueError:
            raise InputError(f"log cursor {cursor!r} is not a line number") from None
        with self._lock:
            process = self._known(instance)
            lines = list(process.log) if process is not None else []
        if position > len(lines) or position < 0:
            position = 0  # the log was replaced: start again, as the local platform does
        return LogChunk(lines=lines[position:], cursor=str(len(lines)))

    # -- what tests use to drive it --------------------------------------------------------

    def crash(self, instance_id: InstanceId | str, exit_code: int = 1) -> None:
        """Make a running instance exit on its own with ``exit_code``."""
        with self._lock:
            process = self._get(instance_id)
            process.state = InstanceState.EXITED
            process.exit_code = exit_code
            process.detail = f"crashed with exit code {exit_code}"

    def write_log(self, instance_id: InstanceId | str, *lines: str) -> None:
        """Append lines to an instance's log, as if it had printed them."""
        with self._lock:
            self._get(instance_id).log.extend(lines)

    def set_resources(self, instance_id: InstanceId | str, usage: ResourceUsage) -> None:
        """What ``resources`` reports for the instance from now on."""
        with self._lock:
            self._get(instance_id).usage = usage

    def instances(self, *, running_only: bool = True) -> list[Instance]:
        """Instances this fake started, in start order (only running ones by default)."""
        with self._lock:
            return [
                p.instance
                for p in self._processes.values()
                if not running_only or p.state is InstanceState.RUNNING
            ]

    def _get(self, instance_id: InstanceId | str) -> _FakeProcess:
        try:
            return self._processes[InstanceId(instance_id)]
        except KeyError:
            raise NotFoundError(f"no instance {instance_id!r} on the fake platform") from None

    def _known(self, instance: Instance) -> _FakeProcess | None:
        """The process of ``instance`` if this fake started that very instance."""
        process = self._processes.get(instance.id)
        if process is None:
            return None
        mine = process.instance
        if (mine.pid, mine.started_at) != (instance.pid, instance.started_at):
            return None  # same id, different process: like a reused PID, not ours
        return process


class InlineExecutor(Executor):
    """An ``Executor`` that runs each call at once in the caller's thread.

    Hand it to code that fans work out to threads (health probes) so a test sees results on the
    very next step, deterministically.
    """

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # the caller reads it from the future, as with threads
            future.set_exception(exc)
        return future


class RecordingRouter:
    """A ``TrafficRouter`` that remembers every table applied, in memory."""

    name = "recording"

    def __init__(self) -> None:
        self.applied: list[ServiceRoutes] = []
        self.removed: list[str] = []
        self.drained: list[tuple[str, str]] = []
        self._tables: dict[str, ServiceRoutes] = {}

    def apply(self, routes: ServiceRoutes) -> None:
        self.applied.append(routes)
        self._tables[routes.service] = routes

    def routes(self, service: str) -> ServiceRoutes | None:
        return self._tables.get(service)

    def drain(self, service: str, backend_id: str, *, timeout: float) -> bool:
        self.drained.append((service, backend_id))
        return True

    def remove_service(self, service: str) -> None:
        self.removed.append(service)
        self._tables.pop(service, None)

    def metrics(self, service: str) -> ServiceMetrics:
        return ServiceMetrics(service=service)


def MemoryStore(*, clock: Clock | None = None) -> SqliteStore:
    """A ``Store`` in memory: the SQLite store on ``:memory:``, so it behaves exactly alike."""
    return SqliteStore(":memory:", clock=clock)


def always_healthy(check: HealthProbeConfig, address: Address, **_: Any) -> ProbeResult:
    """A health prober for tests that treats every instance as healthy."""
    return ProbeResult(ok=True, detail="ok", latency_s=0.0)
