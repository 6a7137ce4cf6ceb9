"""Routing decisions: which version group, then which instance, gets a request.

A ``RoutingTable`` is compiled once from a ``ServiceRoutes`` and then only read on the hot path;
``apply`` swaps the whole table in one assignment, which is what makes a weight change atomic.

Groups are chosen by smooth weighted round-robin (the nginx algorithm), precomputed into a
schedule of ``sum(weights) / gcd`` slots: every window of that many requests holds each group
exactly ``weight`` times (so 1 % steps are exact over 100 requests) and the picks are spread
evenly, never in bursts. Before the weights come the match rules (header or cookie equals a
value) and, when ``sticky`` is on, the group named by the client's cookie. Inside a group,
instances take turns (round-robin).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from zerodown.core.types import Address
from zerodown.traffic.base import ServiceRoutes
from zerodown.traffic.proxy.metrics import Counters

__all__ = [
    "BackendState",
    "GroupState",
    "RoutingTable",
    "cookie_value",
    "smooth_weighted_schedule",
    "sticky_cookie_name",
]


class BackendState:
    """One instance as the data plane sees it: its address, counters and idle connections.

    The object survives ``apply`` as long as the same id stays in the same group at the same
    address, so its pool and counters carry over a weight change.
    """

    __slots__ = ("address", "counters", "group", "host", "id", "idle", "port", "retired")

    def __init__(self, id: str, group: str, address: Address) -> None:
        self.id = id
        self.group = group
        self.address = address
        self.host = address.host
        self.port = address.port
        self.counters = Counters()
        self.idle: list[Any] = []  # pooled upstream connections, most recently used last
        self.retired = False  # removed from the table: no new requests, connections not pooled


class GroupState:
    """A version group inside one table: its live instances and its round-robin cursor."""

    __slots__ = ("backends", "name", "name_bytes", "rr", "set_cookie")

    def __init__(self, name: str, backends: tuple[BackendState, ...], set_cookie: bytes) -> None:
        self.name = name
        self.name_bytes = name.encode()
        self.backends = backends
        self.rr = 0
        self.set_cookie = set_cookie  # the whole "Set-Cookie: ...\r\n" line, or b""

    def next_backend(self) -> BackendState | None:
        backends = self.backends
        n = len(backends)
        if n == 0:
            return None
        i = self.rr
        self.rr = i + 1 if i + 1 < n else 0
        return backends[i] if i < n else backends[0]

    def other_backend(self, tried: list[BackendState]) -> BackendState | None:
        """The next instance not yet tried for this request (for a retry), if any."""
        for _ in range(len(self.backends)):
            b = self.next_backend()
            if b is not None and b not in tried:
                return b
        return None


def smooth_weighted_schedule(weights: Mapping[str, int]) -> list[str]:
    """One full cycle of smooth weighted round-robin over ``weights`` (zero weights left out)."""
    live = {k: w for k, w in weights.items() if w > 0}
    if not live:
        return []
    divisor = 0
    for w in live.values():
        divisor = math.gcd(divisor, w)
    reduced = {k: w // divisor for k, w in live.items()}
    total = sum(reduced.values())
    current = dict.fromkeys(reduced, 0)
    order = list(reduced)  # ties go to the first listed group
    schedule: list[str] = []
    for _ in range(total):
        for k in order:
            current[k] += reduced[k]
        best = max(order, key=lambda k: current[k])
        current[best] -= total
        schedule.append(best)
    return schedule


def sticky_cookie_name(service: str) -> str:
    return f"zerodown_{service.replace('.', '_').replace('-', '_')}"


def cookie_value(header: bytes, name: bytes) -> bytes | None:
    """The value of cookie ``name`` in a ``Cookie`` header value, or None."""
    for part in header.split(b";"):
        key, sep, value = part.partition(b"=")
        if sep and key.strip() == name:
            return value.strip().strip(b'"')
    return None


class RoutingTable:
    """The compiled, read-mostly form of one ``ServiceRoutes``."""

    __slots__ = (
        "cookie_name",
        "cookie_rules",
        "groups",
        "header_rules",
        "needs_cookie",
        "pos",
        "routes",
        "rule_headers",
        "schedule",
        "sticky",
    )

    def __init__(self, routes: ServiceRoutes, backends: Mapping[str, BackendState]) -> None:
        """``backends`` maps every backend id of ``routes`` to its (possibly reused) state."""
        self.routes = routes
        self.sticky = routes.sticky
        cookie = sticky_cookie_name(routes.service)
        self.cookie_name = cookie.encode()
        self.groups: dict[str, GroupState] = {}
        for name, members in routes.groups.items():
            set_cookie = (
                f"Set-Cookie: {cookie}={name}; Path=/; HttpOnly; SameSite=Lax\r\n".encode()
                if routes.sticky
                else b""
            )
            self.groups[name] = GroupState(name, tuple(backends[b.id] for b in members), set_cookie)
        eligible = {name: routes.weight_of(name) for name, g in self.groups.items() if g.backends}
        self.schedule = tuple(self.groups[n] for n in smooth_weighted_schedule(eligible))
        self.pos = 0
        self.header_rules = tuple(
            (r.header.lower().encode(), r.value.encode(), self.groups[r.group])
            for r in routes.rules
            if r.header is not None
        )
        self.rule_headers = frozenset(h for h, _, _ in self.header_rules)
        self.cookie_rules = tuple(
            (r.cookie.encode(), r.value.encode(), self.groups[r.group])
            for r in routes.rules
            if r.cookie is not None
        )
        self.needs_cookie = self.sticky or bool(self.cookie_rules)

    def weighted(self) -> GroupState | None:
        """The next group by weight (None if no group has both weight and instances)."""
        schedule = self.schedule
        if not schedule:
            return None
        p = self.pos
        self.pos = p + 1 if p + 1 < len(schedule) else 0
        return schedule[p]

    def choose(
        self, rule_values: Mapping[bytes, bytes] | None, cookie: bytes | None
    ) -> tuple[GroupState | None, bool]:
        """The group for a request, and whether the client should get the sticky cookie.

        ``rule_values`` holds the request's values of the headers named in rules (lower-case
        names); ``cookie`` its ``Cookie`` header.
        """
        if rule_values:
            for header, value, group in self.header_rules:
                if rule_values.get(header) == value and group.backends:
                    return group, False
        if cookie is not None:
            for name, value, group in self.cookie_rules:
                if group.backends and cookie_value(cookie, name) == value:
                    return group, False
            if self.sticky:
                chosen = cookie_value(cookie, self.cookie_name)
                if chosen is not None:
                    kept = self.groups.get(chosen.decode("latin-1"))
                    if kept is not None and kept.backends and self.routes.weight_of(kept.name) > 0:
                        return kept, False
        return self.weighted(), self.sticky
