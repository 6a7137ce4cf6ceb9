"""Counters the data plane bumps on every request, and their snapshots and Prometheus form.

The hot path touches one ``Counters`` object per request (the instance's): plain integer
increments and one histogram slot found by arithmetic (``zerodown.traffic.base.latency_bucket``,
inlined by the server). Group and service numbers are sums made only when someone asks, and the
counters of removed instances are folded into their group so group totals never go backwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from zerodown.core.types import Address
from zerodown.traffic.base import (
    LATENCY_BUCKETS,
    RESPONSE_CLASSES,
    GroupMetrics,
    InstanceMetrics,
    LatencyHistogram,
    ServiceMetrics,
)

__all__ = ["Counters", "render_prometheus"]


class Counters:
    """Mutable counters of one instance (or the folded remains of removed ones)."""

    __slots__ = ("classes", "connect_errors", "hist", "in_flight", "requests", "sum_us", "timeouts")

    def __init__(self) -> None:
        self.requests = 0
        self.classes = [0, 0, 0, 0, 0, 0]  # index status // 100; 0 unused
        self.connect_errors = 0
        self.timeouts = 0
        self.in_flight = 0
        self.hist = [0] * LATENCY_BUCKETS
        self.sum_us = 0

    def add(self, other: Counters) -> None:
        """Fold ``other``'s monotonic counters into this one (not the in-flight gauge)."""
        self.requests += other.requests
        self.connect_errors += other.connect_errors
        self.timeouts += other.timeouts
        self.sum_us += other.sum_us
        for i, c in enumerate(other.classes):
            self.classes[i] += c
        hist = self.hist
        for i, c in enumerate(other.hist):
            if c:
                hist[i] += c

    def _fields(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "responses": {name: self.classes[i + 1] for i, name in enumerate(RESPONSE_CLASSES)},
            "connect_errors": self.connect_errors,
            "timeouts": self.timeouts,
            "in_flight": self.in_flight,
            "latency": LatencyHistogram.from_counts(self.hist, self.sum_us),
        }

    def instance_snapshot(self, *, id: str, group: str, address: Address) -> InstanceMetrics:
        return InstanceMetrics(id=id, group=group, address=address, **self._fields())  # type: ignore[arg-type]

    def group_snapshot(self, group: str) -> GroupMetrics:
        return GroupMetrics(group=group, **self._fields())  # type: ignore[arg-type]


def sum_counters(parts: Iterable[Counters]) -> Counters:
    total = Counters()
    for p in parts:
        total.add(p)
        total.in_flight += p.in_flight
    return total


# Cumulative ``le`` bounds exported to Prometheus (seconds); the fine histogram stays in JSON.
PROMETHEUS_BOUNDS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(snapshots: Mapping[str, ServiceMetrics]) -> str:
    """The Prometheus text exposition (format 0.0.4) of every service's counters."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    rows: list[tuple[str, str, str, InstanceMetrics | GroupMetrics]] = []
    for svc, m in sorted(snapshots.items()):
        for g in m.groups.values():
            rows.append(("group", svc, f'group="{_label(g.group)}"', g))
        for i in m.instances.values():
            labels = f'group="{_label(i.group)}",instance="{_label(i.id)}"'
            rows.append(("instance", svc, labels, i))

    for level in ("group", "instance"):
        prefix = f"zerodown_proxy_{level}"
        selected = [(svc, labels, c) for lv, svc, labels, c in rows if lv == level]
        family(f"{prefix}_requests_total", "counter", f"Requests finished per {level}.")
        for svc, labels, c in selected:
            out.append(f'{prefix}_requests_total{{service="{_label(svc)}",{labels}}} {c.requests}')
        family(f"{prefix}_responses_total", "counter", f"Responses per {level} and class.")
        for svc, labels, c in selected:
            for cls in RESPONSE_CLASSES:
                out.append(
                    f'{prefix}_responses_total{{service="{_label(svc)}",{labels},code="{cls}"}} '
                    f"{c.responses.get(cls, 0)}"
                )
        family(f"{prefix}_connect_errors_total", "counter", "Failed connections to instances.")
        for svc, labels, c in selected:
            out.append(
                f'{prefix}_connect_errors_total{{service="{_label(svc)}",{labels}}} '
                f"{c.connect_errors}"
            )
        family(f"{prefix}_timeouts_total", "counter", "Instances that did not answer in time.")
        for svc, labels, c in selected:
            out.append(f'{prefix}_timeouts_total{{service="{_label(svc)}",{labels}}} {c.timeouts}')
        family(f"{prefix}_in_flight", "gauge", "Requests being served now.")
        for svc, labels, c in selected:
            out.append(f'{prefix}_in_flight{{service="{_label(svc)}",{labels}}} {c.in_flight}')
        name = f"{prefix}_request_duration_seconds"
        family(name, "histogram", "Time from request head to the end of the response.")
        for svc, labels, c in selected:
            base = f'service="{_label(svc)}",{labels}'
            for bound in PROMETHEUS_BOUNDS:
                out.append(f'{name}_bucket{{{base},le="{bound}"}} {c.latency.count_below(bound)}')
            total = c.latency.count
            out.append(f'{name}_bucket{{{base},le="+Inf"}} {total}')
            out.append(f"{name}_sum{{{base}}} {c.latency.sum_us / 1e6}")
            out.append(f"{name}_count{{{base}}} {total}")

    family("zerodown_proxy_rejected_total", "counter", "Requests refused before routing.")
    for svc, m in sorted(snapshots.items()):
        out.append(f'zerodown_proxy_rejected_total{{service="{_label(svc)}"}} {m.rejected}')
    family("zerodown_proxy_unrouted_total", "counter", "Requests that found no backend (503).")
    for svc, m in sorted(snapshots.items()):
        out.append(f'zerodown_proxy_unrouted_total{{service="{_label(svc)}"}} {m.unrouted}')
    return "\n".join(out) + "\n"
