"""From what zerodown measures to metric samples with Prometheus names and labels.

The monitor samples the same figures the engine judges rollouts by, and names them as
Prometheus users expect (``docs/alert-rules.md`` lists them; the default rules use them):

- the data plane's counters per service and version (the proxy counts per revision group
  ``r<N>``; groups of revisions with the same version label are added up):
  ``zerodown_requests_total{code_class}``, ``zerodown_requests_unavailable_total``,
  ``zerodown_requests_in_flight`` and the histogram ``zerodown_request_duration_seconds``;
- the latency recorded for the serving release when it was promoted (the baseline of the
  "latency above 2x baseline" rule): ``zerodown_baseline_latency_seconds{quantile}``;
- per instance, its last health check, its restarts (per release revision and slot, which
  survive a restart; two releases of one version each have their own) and the CPU, memory,
  network and disk its platform reports;
- the host: CPU, load, memory, the state folder's disk, network.

Functions here are pure: they take the figures and return ``MetricSample``s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

from zerodown.core.samples import MetricKind, MetricSample
from zerodown.core.types import ResourceUsage
from zerodown.monitor.exposition import format_bound
from zerodown.store.base import InstanceRecord
from zerodown.traffic.base import RESPONSE_CLASSES, LatencyHistogram, TrafficCounts

__all__ = [
    "LATENCY_BOUNDS",
    "baseline_samples",
    "host_samples",
    "instance_samples",
    "traffic_samples",
    "usage_samples",
]

LATENCY_BOUNDS: Final = (
    0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
    0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
)  # fmt: skip
"""Upper bounds of the latency histogram's buckets, in seconds (plus ``+Inf``).

Neighbours are at most 1.67x apart, so a quantile interpolated inside a bucket (as
``histogram_quantile`` does) is within 1.67x of the true one: never enough on its own to cross
the "twice the baseline" latency rule."""

BASELINE_QUANTILES: Final = {"p50": "0.5", "p90": "0.9", "p95": "0.95", "p99": "0.99"}

HELP: Final = {
    "zerodown_requests_total": "Requests answered per service, version and response class "
    "(5xx includes the proxy's own 502 and 504).",
    "zerodown_requests_unavailable_total": "Requests a version could not serve at all "
    "(connection refused or timed out).",
    "zerodown_requests_in_flight": "Requests being served now.",
    "zerodown_request_duration_seconds": "Time from a request's head to the end of its "
    "response, as the proxy measured it.",
    "zerodown_baseline_latency_seconds": "Latency recorded for the serving release when it was "
    "promoted (the baseline of the latency rule).",
    "zerodown_instance_healthy": "1 if the instance passed its last health check, 0 if it "
    "failed it (absent before the first verdict).",
    "zerodown_instance_restarts_total": "Restarts of the instance in this slot of this release "
    "by its platform.",
    "zerodown_instance_cpu_cores": "CPU cores the instance keeps busy (1.5 is one and a half).",
    "zerodown_instance_memory_bytes": "Memory the instance uses.",
    "zerodown_instance_network_transmit_bytes_total": "Bytes the instance sent.",
    "zerodown_instance_network_receive_bytes_total": "Bytes the instance received.",
    "zerodown_instance_disk_read_bytes_total": "Bytes the instance read from disk.",
    "zerodown_instance_disk_written_bytes_total": "Bytes the instance wrote to disk.",
    "zerodown_host_cpu_usage_ratio": "Share of all the host's CPU cores busy (0 to 1).",
    "zerodown_host_cpu_cores": "CPU cores of the host.",
    "zerodown_host_load1": "The host's load average over one minute.",
    "zerodown_host_memory_used_bytes": "Memory in use on the host (total minus available).",
    "zerodown_host_memory_size_bytes": "Memory of the host.",
    "zerodown_disk_free_bytes": "Free space of the file system holding zerodown's state.",
    "zerodown_disk_size_bytes": "Size of the file system holding zerodown's state.",
    "zerodown_host_network_transmit_bytes_total": "Bytes the host sent on every interface.",
    "zerodown_host_network_receive_bytes_total": "Bytes the host received on every interface.",
}


def _sample(
    name: str, value: float, labels: Mapping[str, str], kind: MetricKind = "gauge"
) -> MetricSample:
    family = name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in HELP:
            family = name[: -len(suffix)]
    return MetricSample(
        name=name, value=float(value), kind=kind, labels=dict(labels), help=HELP.get(family, "")
    )


def _added(parts: Iterable[TrafficCounts]) -> tuple[dict[str, int], int, int, LatencyHistogram]:
    responses = dict.fromkeys(RESPONSE_CLASSES, 0)
    unavailable = in_flight = 0
    latency = LatencyHistogram()
    for part in parts:
        for code_class in RESPONSE_CLASSES:
            responses[code_class] += part.responses.get(code_class, 0)
        unavailable += part.connect_errors + part.timeouts
        in_flight += part.in_flight
        latency = latency.merge(part.latency)
    return responses, unavailable, in_flight, latency


def traffic_samples(
    service: str, versions: Mapping[str, Iterable[TrafficCounts]]
) -> list[MetricSample]:
    """Samples of the data plane's counters, ``versions`` mapping each version label to the
    counters of its revision groups (added up: a version deployed twice keeps counting)."""
    out: list[MetricSample] = []
    for version in sorted(versions):
        responses, unavailable, in_flight, latency = _added(versions[version])
        base = {"service": service, "version": version}
        for code_class in RESPONSE_CLASSES:
            out.append(
                _sample(
                    "zerodown_requests_total",
                    responses[code_class],
                    {**base, "code_class": code_class},
                    "counter",
                )
            )
        out.append(_sample("zerodown_requests_unavailable_total", unavailable, base, "counter"))
        out.append(_sample("zerodown_requests_in_flight", in_flight, base))
        name = "zerodown_request_duration_seconds"
        for bound in LATENCY_BOUNDS:
            out.append(
                _sample(
                    f"{name}_bucket",
                    latency.count_below(bound),
                    {**base, "le": format_bound(bound)},
                    "counter",
                )
            )
        out.append(_sample(f"{name}_bucket", latency.count, {**base, "le": "+Inf"}, "counter"))
        out.append(_sample(f"{name}_sum", latency.sum_us / 1e6, base, "counter"))
        out.append(_sample(f"{name}_count", latency.count, base, "counter"))
    return out


def baseline_samples(service: str, recorded: Mapping[str, Any]) -> list[MetricSample]:
    """The serving release's recorded latency quantiles (``state["recorded"]``), in seconds."""
    out = []
    for key, quantile in BASELINE_QUANTILES.items():
        value = recorded.get(key)
        if isinstance(value, int | float) and math.isfinite(value) and value > 0:
            out.append(
                _sample(
                    "zerodown_baseline_latency_seconds",
                    float(value),
                    {"service": service, "quantile": quantile},
                )
            )
    return out


def instance_samples(
    service: str, records: Iterable[InstanceRecord], health: Mapping[str, str]
) -> list[MetricSample]:
    """Health and restarts of a service's instances; ``health`` maps an instance id to its
    health checker's state (``healthy``, ``unhealthy``; other states give no health sample).

    Restarts are counted per release revision and slot: a same-version redeploy runs two
    slot-0 instances at once, one per revision. A crashed instance and its replacement share
    their revision and slot; that series takes the larger count."""
    out = []
    restarts: dict[tuple[int, int], tuple[int, dict[str, str]]] = {}
    for record in sorted(records, key=lambda r: (int(r.revision), r.slot, r.id)):
        labels = {"service": service, "instance": record.id, "version": str(record.version)}
        state = "unhealthy" if record.state == "crashed" else health.get(record.id, "")
        if state in ("healthy", "unhealthy"):
            out.append(
                _sample("zerodown_instance_healthy", 1.0 if state == "healthy" else 0.0, labels)
            )
        slot = {
            "service": service,
            "version": str(record.version),
            "revision": str(int(record.revision)),
            "slot": str(record.slot),
        }
        known = restarts.get((int(record.revision), record.slot))
        if known is None or record.restarts > known[0]:
            restarts[(int(record.revision), record.slot)] = (record.restarts, slot)
    for count, slot in restarts.values():
        out.append(_sample("zerodown_instance_restarts_total", count, slot, "counter"))
    return out


def usage_samples(service: str, record: InstanceRecord, usage: ResourceUsage) -> list[MetricSample]:
    """What the platform reports of one instance's resource use."""
    labels = {"service": service, "instance": record.id, "version": str(record.version)}
    out = [
        _sample("zerodown_instance_cpu_cores", usage.cpu_percent / 100.0, labels),
        _sample("zerodown_instance_memory_bytes", usage.memory_bytes, labels),
    ]
    counters = (
        ("zerodown_instance_network_transmit_bytes_total", usage.net_bytes_sent),
        ("zerodown_instance_network_receive_bytes_total", usage.net_bytes_recv),
        ("zerodown_instance_disk_read_bytes_total", usage.disk_bytes_read),
        ("zerodown_instance_disk_written_bytes_total", usage.disk_bytes_written),
    )
    out.extend(_sample(name, value, labels, "counter") for name, value in counters if value)
    return out


def host_samples(host: str, mountpoint: str, figures: Mapping[str, Any]) -> list[MetricSample]:
    """The host's figures from ``HostSampler.sample()``."""
    labels = {"host": host}
    disk = {"host": host, "mountpoint": mountpoint}

    def number(key: str) -> float | None:
        value = figures.get(key)
        return float(value) if isinstance(value, int | float) else None

    wanted: list[tuple[str, float | None, dict[str, str], MetricKind]] = [
        ("zerodown_host_cpu_usage_ratio", _ratio(number("cpu_percent")), labels, "gauge"),
        ("zerodown_host_cpu_cores", number("cpu_count"), labels, "gauge"),
        ("zerodown_host_load1", number("load_1m"), labels, "gauge"),
        ("zerodown_host_memory_used_bytes", number("memory_used_bytes"), labels, "gauge"),
        ("zerodown_host_memory_size_bytes", number("memory_total_bytes"), labels, "gauge"),
        ("zerodown_disk_free_bytes", number("disk_free_bytes"), disk, "gauge"),
        ("zerodown_disk_size_bytes", number("disk_total_bytes"), disk, "gauge"),
        (
            "zerodown_host_network_transmit_bytes_total",
            number("net_sent_bytes_total"),
            labels,
            "counter",
        ),
        (
            "zerodown_host_network_receive_bytes_total",
            number("net_recv_bytes_total"),
            labels,
            "counter",
        ),
    ]
    return [_sample(n, v, lab, kind) for n, v, lab, kind in wanted if v is not None]


def _ratio(percent: float | None) -> float | None:
    return None if percent is None else percent / 100.0
