"""System resources of this host: CPU, memory, storage and network, sampled with psutil.

``HostSampler.sample()`` returns one JSON-ready dict. CPU is the share of all cores busy since
the previous sample (the first sample measures over a short 0.1 s interval); network is the
bandwidth since the previous sample, in bytes per second, and the byte counters since boot.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil

__all__ = ["HostSampler"]


class HostSampler:
    """Successive samples of the host's resource use."""

    def __init__(self, disk_path: Path | str = "/") -> None:
        self.disk_path = str(disk_path)
        self._last_net: tuple[float, int, int] | None = None
        self._primed = False

    def sample(self) -> dict[str, Any]:
        if not self._primed:
            cpu = psutil.cpu_percent(interval=0.1)
            self._primed = True
        else:
            cpu = psutil.cpu_percent(interval=None)
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(self.disk_path)
        net = psutil.net_io_counters()
        now = time.monotonic()
        sent_rate = recv_rate = None
        if self._last_net is not None:
            then, sent, recv = self._last_net
            span = now - then
            if span > 0:
                sent_rate = max(0.0, (net.bytes_sent - sent) / span)
                recv_rate = max(0.0, (net.bytes_recv - recv) / span)
        self._last_net = (now, net.bytes_sent, net.bytes_recv)
        return {
            "cpu_percent": cpu,
            "cpu_count": psutil.cpu_count() or 1,
            "load_1m": psutil.getloadavg()[0],
            "memory_percent": memory.percent,
            "memory_used_bytes": memory.total - memory.available,
            "memory_total_bytes": memory.total,
            "disk_percent": disk.percent,
            "disk_free_bytes": disk.free,
            "disk_total_bytes": disk.total,
            "net_sent_bytes_per_s": sent_rate,
            "net_recv_bytes_per_s": recv_rate,
            "net_sent_bytes_total": net.bytes_sent,
            "net_recv_bytes_total": net.bytes_recv,
        }
