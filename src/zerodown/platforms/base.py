"""The ``Platform`` Protocol: where instances of a service run.

A platform starts, stops and inspects instances; it knows nothing of releases, traffic or
health policy (the engine owns those). ``local`` (processes on this machine) is the embedded
default; ``docker``, ``swarm`` and ``kubernetes`` implement the same Protocol.

An ``Instance`` is a plain record the store can persist; a restarted controller hands the
records back to ``adopt`` which confirms that each one is still the very same live instance
(for local processes: same PID *and* same process start time, so a reused PID is never adopted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from zerodown.core.types import Address, InstanceId, ResourceUsage, Revision, ServiceName, Version

__all__ = [
    "Instance",
    "InstanceRequest",
    "InstanceState",
    "InstanceStatus",
    "LogChunk",
    "Platform",
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
