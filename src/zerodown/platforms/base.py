"""The ``Platform`` Protocol: where instances of a service run.

A platform starts, stops and inspects instances; it knows nothing of releases, traffic or
health policy (the engine owns those). ``local`` (processes on this machine) is the embedded
default; ``docker``, ``swarm`` and ``kubernetes`` implement the same Protocol.

An ``Instance`` is a plain record the store can persist; a restarted controller hands the
records back to ``adopt`` which confirms that each one is still the very same live instance
(for local processes: same PID *and* same process start time, so a reused PID is never adopted).

``InPlaceUpdates`` is an optional capability (``swarm`` has it): the platform runs every
instance of a service as the tasks of one replicated service and replaces them itself with its
own update machinery. The engine then observes tasks (``ReplicatedView``) instead of starting
and stopping instances, and makes each running task an ``Instance`` (``task_instance``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from zerodown.core.types import Address, InstanceId, ResourceUsage, Revision, ServiceName, Version

__all__ = [
    "InPlaceUpdates",
    "Instance",
    "InstanceRequest",
    "InstanceState",
    "InstanceStatus",
    "LogChunk",
    "Platform",
    "ReplicatedRequest",
    "ReplicatedView",
    "TaskView",
    "UpdatePolicy",
]


@dataclass(frozen=True, kw_only=True)
class InstanceRequest:
    """What the engine asks a platform to run: one instance of one release."""

    service: ServiceName
    version: Version
    revision: Revision
    slot: int  # 0..replicas-1 within the release; names and log files use it
    command: str  # local: a shell command line; containers: the container command (may be "")
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: Path | None = None
    port: int | None = None  # None: the platform picks a free loopback port
    image: str | None = None  # container platforms only


@dataclass(frozen=True, kw_only=True)
class Instance:
    """One running (or once running) instance, as recorded in the store."""

    id: InstanceId
    service: ServiceName
    version: Version
    revision: Revision
    slot: int
    platform: str
    address: Address
    pid: int | None = None
    started_at: float = 0.0  # process/container creation time, seconds since the epoch
    log_path: Path | None = None
    meta: Mapping[str, str] = field(default_factory=dict)  # e.g. container id


class InstanceState(StrEnum):
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"  # the platform cannot tell (e.g. engine unreachable)


@dataclass(frozen=True)
class InstanceStatus:
    state: InstanceState
    exit_code: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class LogChunk:
    """Lines read since ``cursor``; pass the returned cursor to continue where this stopped."""

    lines: list[str]
    cursor: str


class Platform(Protocol):
    """Start, stop and inspect instances. Implementations raise only ``ZerodownError``s."""

    name: str

    def start(self, request: InstanceRequest) -> Instance:
        """Start one instance and return at once (readiness is the engine's health check)."""
        ...

    def stop(self, instance: Instance, *, grace: float) -> InstanceStatus:
        """Ask the instance to stop (SIGTERM or equivalent), force it after ``grace`` seconds."""
        ...

    def status(self, instance: Instance) -> InstanceStatus:
        """Is the instance still running? Never raises for an instance that is gone."""
        ...

    def adopt(self, instance: Instance) -> bool:
        """True if ``instance`` (from the store) is still the same live instance."""
        ...

    def resources(self, instance: Instance) -> ResourceUsage | None:
        """CPU, memory (and network where known) of the instance; None if it is gone."""
        ...

    def read_logs(self, instance: Instance, cursor: str | None) -> LogChunk:
        """Log lines written since ``cursor`` (None: from the beginning)."""
        ...


@dataclass(frozen=True, kw_only=True)
class UpdatePolicy:
    """How a platform replaces the tasks of a replicated service (Swarm's ``UpdateConfig``)."""

    parallelism: int  # tasks replaced at once; 0: all
    delay: float  # seconds between two batches
    order: str  # "start-first" or "stop-first"
    failure_action: str  # "pause", "rollback" or "continue"
    monitor: float  # seconds each new task is watched for a failure
    max_failure_ratio: float  # share of new tasks that may fail before failure_action applies


@dataclass(frozen=True, kw_only=True)
class ReplicatedRequest:
    """One release run as ``replicas`` tasks of one replicated service."""

    instance: InstanceRequest  # what each task runs (slot is unused)
    replicas: int
    policy: UpdatePolicy
    stop_grace: float  # seconds from SIGTERM to SIGKILL when a task stops
    restart: str  # "always", "on-failure" or "never"
    max_restarts: int  # 0: unlimited
    restart_window: float  # seconds over which ``max_restarts`` counts
    force: int = 0  # a higher value than the service has makes the platform redo the update


@dataclass(frozen=True, kw_only=True)
class TaskView:
    """One task of a replicated service as the platform last saw it."""

    id: str
    slot: int
    revision: int | None  # from the task's labels; None for a task zerodown did not make
    version: str
    desired: str  # the state the orchestrator wants: "running", "shutdown", ...
    state: str  # the state it is in: "pending", "running", "shutdown", "failed", ...
    port: int | None  # the host port its container port is published on, once running
    exit_code: int | None
    error: str
    container_id: str | None
    pid: int | None
    created_at: float


@dataclass(frozen=True, kw_only=True)
class ReplicatedView:
    """One observation of the replicated service of a zerodown service."""

    exists: bool
    service_id: str = ""
    revision: int | None = None  # the revision the service's spec runs
    previous_revision: int | None = None  # the one its rollback would return to
    replicas: int = 0
    force: int = 0  # the spec's force-update counter
    update_state: str = ""  # "updating", "paused", "completed", "rollback_started", ... or ""
    update_message: str = ""
    update_started: float | None = None
    update_completed: float | None = None
    tasks: tuple[TaskView, ...] = ()


@runtime_checkable
class InPlaceUpdates(Protocol):
    """A platform that runs a release as one replicated service and updates it in place."""

    def observe_replicated(self, service: ServiceName) -> ReplicatedView:
        """The service and all its tasks (``TemporaryError`` if the platform does not answer)."""
        ...

    def apply_replicated(self, request: ReplicatedRequest) -> None:
        """Create the service running ``request``, or update it in place to run it."""
        ...

    def rollback_replicated(self, service: ServiceName) -> None:
        """Ask the platform to roll the service back to its previous spec, its own way."""
        ...

    def remove_replicated(self, service: ServiceName) -> None:
        """Remove the service; its tasks stop with the service's stop grace period."""
        ...

    def task_instance(self, service: ServiceName, view: ReplicatedView, task: TaskView) -> Instance:
        """The ``Instance`` record of a running task (the engine routes to its address)."""
        ...
