"""The ``TrafficRouter`` Protocol: who gets which request.

The engine decides *what* share of traffic each version gets; a router makes it so. A router
holds one routing table per service (``ServiceRoutes``): the backends (instances) grouped by
version label (``stable``, ``canary``, ``blue``...), an integer weight per group, optional
sticky assignment and exact-match rules for A/B tests. ``apply`` replaces a service's whole
table at once, so a weight change is never seen half-applied.

Routers also report what they saw, per group and per instance: request counts, responses by
class, connect errors, timeouts, requests in flight and a latency histogram. Every counter only
grows, so a consumer takes two snapshots and diffs them (``ServiceMetrics.delta``) to get the
numbers of a window, e.g. the last 30 seconds of a canary step.

The latency histogram is log-linear (HDR style): exact below 64 us, then 32 sub-buckets per power
of two, so any quantile is within about 3 % of the true value. Bucket arithmetic lives here so
that the data plane (which counts) and every consumer (which reads) agree on the bounds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from zerodown.core.errors import InputError
from zerodown.core.types import Address

__all__ = [
    "LATENCY_BUCKETS",
    "RESPONSE_CLASSES",
    "Backend",
    "GroupMetrics",
    "InstanceMetrics",
    "LatencyHistogram",
    "MatchRule",
    "ServiceMetrics",
    "ServiceRoutes",
    "TrafficCounts",
    "TrafficRouter",
    "latency_bucket",
    "latency_bucket_bounds",
    "parse_address",
    "routes_from_dict",
    "routes_to_dict",
]

# --- latency histogram bucket arithmetic -------------------------------------------------------

SUB_BUCKET_BITS = 5  # 32 sub-buckets per power of two: bucket width <= 1/32 of its lower bound
_LINEAR_LIMIT = 1 << (SUB_BUCKET_BITS + 1)  # values below this (64 us) get one bucket each
MAX_LATENCY_US = (1 << 32) - 1  # about 71 minutes; longer latencies are counted in the last bucket


def latency_bucket(micros: int) -> int:
    """Index of the bucket that counts a latency of ``micros`` microseconds."""
    if micros < _LINEAR_LIMIT:
        return micros if micros > 0 else 0
    if micros > MAX_LATENCY_US:
        micros = MAX_LATENCY_US
    shift = micros.bit_length() - (SUB_BUCKET_BITS + 1)
    return (shift << SUB_BUCKET_BITS) + (micros >> shift)


def latency_bucket_bounds(index: int) -> tuple[int, int]:
    """``[lower, upper)`` of bucket ``index``, in microseconds."""
    if index < _LINEAR_LIMIT:
        return index, index + 1
    shift = (index >> SUB_BUCKET_BITS) - 1
    mantissa = index - (shift << SUB_BUCKET_BITS)
    return mantissa << shift, (mantissa + 1) << shift


LATENCY_BUCKETS = latency_bucket(MAX_LATENCY_US) + 1

RESPONSE_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


@dataclass(frozen=True)
class LatencyHistogram:
    """Counts of latencies per log-linear bucket (sparse: only buckets that counted something).

    ``buckets`` holds ``(index, count)`` pairs sorted by index; ``latency_bucket_bounds(index)``
    gives each bucket's bounds in microseconds. ``sum_us`` is the sum of all latencies.
    """

    buckets: tuple[tuple[int, int], ...] = ()
    sum_us: int = 0

    @classmethod
    def from_counts(
        cls, counts: list[int] | Mapping[int, int], sum_us: int = 0
    ) -> LatencyHistogram:
        """Build from a dense list (index -> count) or a sparse mapping."""
        items = counts.items() if isinstance(counts, Mapping) else enumerate(counts)
        return cls(tuple(sorted((i, c) for i, c in items if c)), sum_us)

    @property
    def count(self) -> int:
        return sum(c for _, c in self.buckets)

    @property
    def mean(self) -> float | None:
        """Mean latency in seconds, or None when nothing was counted."""
        n = self.count
        return self.sum_us / n / 1e6 if n else None

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) in seconds, interpolated inside its bucket; None if empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be within [0, 1], got {q}")
        total = self.count
        if not total:
            return None
        rank = q * total
        seen = 0
        for index, count in self.buckets:
            if seen + count >= rank:
                lower, upper = latency_bucket_bounds(index)
                fraction = (rank - seen) / count
                return (lower + (upper - lower) * fraction) / 1e6
            seen += count
        lower, upper = latency_bucket_bounds(self.buckets[-1][0])
        return upper / 1e6

    def count_below(self, seconds: float) -> int:
        """How many latencies fell in buckets entirely below ``seconds`` (for ``le`` buckets)."""
        limit = seconds * 1e6
        return sum(c for i, c in self.buckets if latency_bucket_bounds(i)[1] <= limit)

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        counts = dict(self.buckets)
        for index, count in other.buckets:
            counts[index] = counts.get(index, 0) + count
        return LatencyHistogram.from_counts(counts, self.sum_us + other.sum_us)

    def delta(self, older: LatencyHistogram) -> LatencyHistogram:
        """What was counted since ``older`` (a snapshot of the same histogram)."""
        counts = dict(self.buckets)
        for index, count in older.buckets:
            counts[index] = counts.get(index, 0) - count
        return LatencyHistogram.from_counts(
            {i: c for i, c in counts.items() if c > 0}, max(0, self.sum_us - older.sum_us)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": "us",
            "scheme": f"log-linear-{SUB_BUCKET_BITS}",
            "sum_us": self.sum_us,
            "buckets": [[i, c] for i, c in self.buckets],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyHistogram:
        return cls(
            tuple((int(i), int(c)) for i, c in data.get("buckets", ())), int(data.get("sum_us", 0))
        )


# --- metrics snapshots ---------------------------------------------------------------------------


def _zero_classes() -> dict[str, int]:
    return dict.fromkeys(RESPONSE_CLASSES, 0)


@dataclass(frozen=True, kw_only=True)
class TrafficCounts:
    """Monotonic counters of one instance, one group or a whole service (plus ``in_flight``)."""

    requests: int = 0  # requests finished (answered or failed) by this part of the service
    responses: Mapping[str, int] = field(default_factory=_zero_classes)  # "2xx" -> count ...
    connect_errors: int = 0  # failed connection attempts to an instance (retried or not)
    timeouts: int = 0  # an instance did not answer in time (the client got a 504)
    in_flight: int = 0  # a gauge: requests being served now
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    @property
    def errors(self) -> int:
        """Responses of class 5xx (including the proxy's own 502/504)."""
        return self.responses.get("5xx", 0)

    @property
    def error_rate(self) -> float | None:
        answered = sum(self.responses.values())
        return self.errors / answered if answered else None

    def _counts_delta(self, older: TrafficCounts) -> dict[str, Any]:
        return {
            "requests": self.requests - older.requests,
            "responses": {
                k: self.responses.get(k, 0) - older.responses.get(k, 0) for k in RESPONSE_CLASSES
            },
            "connect_errors": self.connect_errors - older.connect_errors,
            "timeouts": self.timeouts - older.timeouts,
            "in_flight": self.in_flight,
            "latency": self.latency.delta(older.latency),
        }

    def _counts_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "responses": dict(self.responses),
            "connect_errors": self.connect_errors,
            "timeouts": self.timeouts,
            "in_flight": self.in_flight,
            "latency": self.latency.to_dict(),
            "p50": self.latency.quantile(0.5),
            "p95": self.latency.quantile(0.95),
            "p99": self.latency.quantile(0.99),
        }

    @staticmethod
    def _counts_from(data: Mapping[str, Any]) -> dict[str, Any]:
        responses = _zero_classes()
        responses.update({k: int(v) for k, v in data.get("responses", {}).items()})
        return {
            "requests": int(data.get("requests", 0)),
            "responses": responses,
            "connect_errors": int(data.get("connect_errors", 0)),
            "timeouts": int(data.get("timeouts", 0)),
            "in_flight": int(data.get("in_flight", 0)),
            "latency": LatencyHistogram.from_dict(data.get("latency", {})),
        }


@dataclass(frozen=True, kw_only=True)
class InstanceMetrics(TrafficCounts):
    """Counters of one backend instance."""

    id: str
    group: str
    address: Address

    def delta(self, older: InstanceMetrics) -> InstanceMetrics:
        return InstanceMetrics(
            id=self.id, group=self.group, address=self.address, **self._counts_delta(older)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "group": self.group, "address": str(self.address)} | (
            self._counts_dict()
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InstanceMetrics:
        return cls(
            id=str(data["id"]),
            group=str(data["group"]),
            address=parse_address(str(data["address"])),
            **cls._counts_from(data),
        )


@dataclass(frozen=True, kw_only=True)
class GroupMetrics(TrafficCounts):
    """Counters of one version group (all its instances, including removed ones)."""

    group: str

    def delta(self, older: GroupMetrics) -> GroupMetrics:
        return GroupMetrics(group=self.group, **self._counts_delta(older))

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group} | self._counts_dict()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupMetrics:
        return cls(group=str(data["group"]), **cls._counts_from(data))


@dataclass(frozen=True, kw_only=True)
class ServiceMetrics:
    """Everything a router counted for one service.

    ``rejected`` counts requests refused before routing (malformed, too large); ``unrouted``
    counts requests that found no backend (answered 503). Both never reach an instance.
    """

    service: str
    groups: Mapping[str, GroupMetrics] = field(default_factory=dict)
    instances: Mapping[str, InstanceMetrics] = field(default_factory=dict)
    rejected: int = 0
    unrouted: int = 0

    def group(self, name: str) -> GroupMetrics:
        """The counters of group ``name`` (zeros if it never served anything)."""
        return self.groups.get(name) or GroupMetrics(group=name)

    @property
    def total(self) -> TrafficCounts:
        """All groups added up."""
        responses = _zero_classes()
        latency = LatencyHistogram()
        requests = connect_errors = timeouts = in_flight = 0
        for g in self.groups.values():
            requests += g.requests
            connect_errors += g.connect_errors
            timeouts += g.timeouts
            in_flight += g.in_flight
            for k in RESPONSE_CLASSES:
                responses[k] += g.responses.get(k, 0)
            latency = latency.merge(g.latency)
        return TrafficCounts(
            requests=requests,
            responses=responses,
            connect_errors=connect_errors,
            timeouts=timeouts,
            in_flight=in_flight,
            latency=latency,
        )

    def delta(self, older: ServiceMetrics) -> ServiceMetrics:
        """What happened between ``older`` and this snapshot (gauges are taken from this one)."""
        groups = {
            name: g.delta(older.groups.get(name) or GroupMetrics(group=name))
            for name, g in self.groups.items()
        }
        instances = {}
        for key, i in self.instances.items():
            before = older.instances.get(key)
            if before is None or before.group != i.group:
                before = InstanceMetrics(id=i.id, group=i.group, address=i.address)
            instances[key] = i.delta(before)
        return ServiceMetrics(
            service=self.service,
            groups=groups,
            instances=instances,
            rejected=self.rejected - older.rejected,
            unrouted=self.unrouted - older.unrouted,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "rejected": self.rejected,
            "unrouted": self.unrouted,
            "groups": {k: v.to_dict() for k, v in self.groups.items()},
            "instances": {k: v.to_dict() for k, v in self.instances.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceMetrics:
        return cls(
            service=str(data["service"]),
            rejected=int(data.get("rejected", 0)),
            unrouted=int(data.get("unrouted", 0)),
            groups={k: GroupMetrics.from_dict(v) for k, v in data.get("groups", {}).items()},
            instances={
                k: InstanceMetrics.from_dict(v) for k, v in data.get("instances", {}).items()
            },
        )


# --- routing tables ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """One instance that can take requests."""

    id: str
    address: Address


@dataclass(frozen=True)
class MatchRule:
    """Requests whose header (or cookie) equals ``value`` exactly go to ``group``.

    Exactly one of ``header`` (case-insensitive name) and ``cookie`` (case-sensitive name) is set.
    Rules are tried in order; the first whose group has backends wins.
    """

    group: str
    header: str | None = None
    cookie: str | None = None
    value: str = ""


@dataclass(frozen=True)
class ServiceRoutes:
    """The whole routing table of one service, applied at once.

    ``groups`` maps a version label to its backends; ``weights`` maps a label to an integer
    share (a group missing from ``weights`` gets 0). Weights need not add up to 100: the shares
    are ``weight / sum(weights)``. With ``sticky`` a client keeps the group it was first given
    (by cookie) for as long as that group has a positive weight.
    """

    service: str
    listen: Address
    groups: Mapping[str, tuple[Backend, ...]]
    weights: Mapping[str, int]
    sticky: bool = False
    rules: tuple[MatchRule, ...] = ()

    def weight_of(self, group: str) -> int:
        return self.weights.get(group, 0)

    def backend(self, backend_id: str) -> tuple[str, Backend] | None:
        """The group and backend with this id, if any."""
        for group, backends in self.groups.items():
            for b in backends:
                if b.id == backend_id:
                    return group, b
        return None


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")
_MAX_WEIGHT_TOTAL = 1_000_000


def parse_address(text: str) -> Address:
    """``host:port`` (``[v6]:port`` too) into an ``Address``; ``InputError`` if malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InputError(f"not a host:port address: {text!r}")
    return Address(host.strip("[]"), int(port))


def validate_routes(routes: ServiceRoutes) -> None:
    """Raise ``InputError`` naming the first problem of a routing table."""
    problems: list[str] = []
    if not _NAME.match(routes.service):
        problems.append(f"service name {routes.service!r} is not a simple name")
    seen: set[str] = set()
    for group, backends in routes.groups.items():
        if not _NAME.match(group):
            problems.append(f"group name {group!r} is not a simple name")
        for b in backends:
            if not b.id or len(b.id) > 200:
                problems.append(f"backend id {b.id!r} in group {group!r} is empty or too long")
            if b.id in seen:
                problems.append(f"backend id {b.id!r} appears twice")
            seen.add(b.id)
            if not 0 < b.address.port <= 65535:
                problems.append(f"backend {b.id!r} has port {b.address.port}")
    for group, weight in routes.weights.items():
        if group not in routes.groups:
            problems.append(f"weight for unknown group {group!r}")
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            problems.append(f"weight of {group!r} must be an integer >= 0, got {weight!r}")
    if sum(w for w in routes.weights.values() if isinstance(w, int)) > _MAX_WEIGHT_TOTAL:
        problems.append(f"weights add up to more than {_MAX_WEIGHT_TOTAL}")
    for n, rule in enumerate(routes.rules):
        if rule.group not in routes.groups:
            problems.append(f"rule {n} sends to unknown group {rule.group!r}")
        if (rule.header is None) == (rule.cookie is None):
            problems.append(f"rule {n} needs exactly one of header and cookie")
    if not 0 < routes.listen.port <= 65535:
        problems.append(f"listen port {routes.listen.port} is not a port")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputError(f"routes of {routes.service!r}: {problems[0]}{more}")


def routes_to_dict(routes: ServiceRoutes) -> dict[str, Any]:
    """A JSON-ready form of a routing table (used by the admin API and the config file)."""
    return {
        "service": routes.service,
        "listen": str(routes.listen),
        "groups": {
            g: [{"id": b.id, "address": str(b.address)} for b in backends]
            for g, backends in routes.groups.items()
        },
        "weights": dict(routes.weights),
        "sticky": routes.sticky,
        "rules": [
            {k: v for k, v in vars(r).items() if v is not None or k == "group"}
            for r in routes.rules
        ],
    }


def routes_from_dict(data: Mapping[str, Any]) -> ServiceRoutes:
    """Parse and validate the form ``routes_to_dict`` writes; ``InputError`` if it is wrong."""
    try:
        routes = ServiceRoutes(
            service=str(data["service"]),
            listen=parse_address(str(data["listen"])),
            groups={
                str(g): tuple(
                    Backend(id=str(b["id"]), address=parse_address(str(b["address"])))
                    for b in backends
                )
                for g, backends in dict(data.get("groups", {})).items()
            },
            weights={str(g): w for g, w in dict(data.get("weights", {})).items()},
            sticky=bool(data.get("sticky", False)),
            rules=tuple(
                MatchRule(
                    group=str(r["group"]),
                    header=None if r.get("header") is None else str(r["header"]),
                    cookie=None if r.get("cookie") is None else str(r["cookie"]),
                    value=str(r.get("value", "")),
                )
                for r in data.get("rules", ())
            ),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"malformed routes: {exc!r}") from exc
    validate_routes(routes)
    return routes


# --- the Protocol --------------------------------------------------------------------------------


@runtime_checkable
class TrafficRouter(Protocol):
    """What the engine needs from a data plane."""

    name: str

    def apply(self, routes: ServiceRoutes) -> None:
        """Replace the whole routing table of ``routes.service`` at once (creating it if new).

        Backends that disappear stop getting new requests immediately; their in-flight
        requests finish.
        """
        ...

    def routes(self, service: str) -> ServiceRoutes | None:
        """The table in force for ``service``, or None if the router does not know it."""
        ...

    def drain(self, service: str, backend_id: str, *, timeout: float) -> bool:
        """Take ``backend_id`` out of the table now and wait until its in-flight requests end.

        True if they ended within ``timeout`` seconds.
        """
        ...

    def remove_service(self, service: str) -> None:
        """Stop serving ``service`` (its listener closes; in-flight requests finish)."""
        ...

    def metrics(self, service: str) -> ServiceMetrics:
        """A snapshot of the counters of ``service`` (``NotFoundError`` if unknown)."""
        ...
