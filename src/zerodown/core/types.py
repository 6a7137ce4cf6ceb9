"""Ids and small value types shared by every layer.

Ids are ``NewType`` so that a revision number is never passed where a port is expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NewType

__all__ = ["Address", "InstanceId", "ResourceUsage", "Revision", "ServiceName", "Version"]

ServiceName = NewType("ServiceName", str)
Version = NewType("Version", str)  # the user's label for what is deployed, e.g. "v2" or a git sha
Revision = NewType("Revision", int)  # 1, 2, 3 ... per service, one per release
InstanceId = NewType("InstanceId", str)


@dataclass(frozen=True)
class Address:
    """Where an instance or a listener can be reached."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class ResourceUsage:
    """Resource use of one instance (or one host) at one moment."""

    cpu_percent: float  # of one core: 150.0 means one and a half cores busy
    memory_bytes: int
    memory_percent: float  # of the host's total memory
    net_bytes_sent: int | None = None
    net_bytes_recv: int | None = None
    disk_bytes_read: int | None = None
    disk_bytes_written: int | None = None
