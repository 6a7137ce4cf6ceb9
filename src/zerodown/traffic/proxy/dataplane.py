"""The state of the running data plane: services, their listeners, tables and counters.

``DataPlane`` is what the admin API drives. It runs in the proxy's event loop (uvloop) and is
only touched from there, so swapping ``ServiceRuntime.table`` is one atomic step for the hot
path. Removed instances are *retired*: out of the table at once, their idle connections closed,
their in-flight requests allowed to finish until the drain timeout, their counters then folded
into their group so group totals never go backwards. A sweeper task enforces every timeout
(client header and keep-alive, instance response and idle pool, drain) by comparing deadlines,
so the hot path sets a float instead of arming a timer per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zerodown.core.errors import NotFoundError, TemporaryError
from zerodown.core.types import Address
from zerodown.traffic.base import (
    Backend,
    ServiceMetrics,
    ServiceRoutes,
    validate_routes,
)
from zerodown.traffic.proxy.balancer import BackendState, RoutingTable
from zerodown.traffic.proxy.config import ProxyLimits, save_config
from zerodown.traffic.proxy.metrics import Counters, sum_counters
from zerodown.traffic.proxy.server import ClientConnection
from zerodown.traffic.proxy.upstream import UpstreamConnection

__all__ = ["DataPlane", "ServiceRuntime", "bind_listener"]

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 0.2


class ServiceRuntime:
    """One service inside the data plane."""

    __slots__ = (
        "backends",
        "clients",
        "closing",
        "listen",
        "name",
        "plane",
        "rejected",
        "retired_counters",
        "retiring",
        "server",
        "table",
        "unrouted",
    )

    def __init__(self, plane: DataPlane, routes: ServiceRoutes) -> None:
        self.plane = plane
        self.name = routes.service
        self.listen = routes.listen
        self.backends: dict[str, BackendState] = {}
        empty = ServiceRoutes(service=routes.service, listen=routes.listen, groups={}, weights={})
        self.table = RoutingTable(empty, {})  # replaced by the first ``apply``
        self.retiring: dict[BackendState, float] = {}  # removed, in-flight not yet done -> deadline
        self.retired_counters: dict[str, Counters] = {}  # group -> counters of removed instances
        self.clients: set[ClientConnection] = set()
        self.server: asyncio.Server | None = None
        self.closing = False
        self.rejected = 0
        self.unrouted = 0


def bind_listener(address: Address, *, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket on ``address``; ``TemporaryError`` if the port is taken."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address.host, address.port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise TemporaryError(f"cannot listen on {address}: {exc.strerror or exc}") from exc
    return sock


class DataPlane:
    """All services of one proxy process."""

    def __init__(
        self,
        *,
        limits: ProxyLimits,
        loop: asyncio.AbstractEventLoop,
        config_path: Path | None = None,
    ) -> None:
        self.limits = limits
        self.loop = loop
        self.config_path = config_path
        self.services: dict[str, ServiceRuntime] = {}
        self.removed: list[ServiceRuntime] = []  # removed services whose clients are still open
        self.upstreams: set[UpstreamConnection] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.inherited: dict[str, socket.socket] = {}  # listen address -> socket from a predecessor
        self.accepting = True
        self._sweeper: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # --- configuration ----------------------------------------------------------------------

    async def apply(self, routes: ServiceRoutes, *, persist: bool = True) -> None:
        """Install ``routes`` as the whole table of its service, in one step."""
        validate_routes(routes)
        async with self._lock:
            svc = self.services.get(routes.service)
            if svc is None:
                svc = ServiceRuntime(self, routes)
                if self.accepting:
                    svc.server = await self._listen(svc, routes.listen)
                self.services[routes.service] = svc
            elif routes.listen != svc.listen:
                new_server = await self._listen(svc, routes.listen) if self.accepting else None
                if svc.server is not None:
                    svc.server.close()
                svc.server = new_server
                svc.listen = routes.listen
            self._install(svc, routes)
            if persist:
                self._persist()

    def _install(self, svc: ServiceRuntime, routes: ServiceRoutes) -> None:
        backends: dict[str, BackendState] = {}
        for group, members in routes.groups.items():
            for b in members:
                old = svc.backends.get(b.id)
                if old is not None and old.group == group and old.address == b.address:
                    backends[b.id] = old
                else:
                    backends[b.id] = BackendState(b.id, group, b.address)
        table = RoutingTable(routes, backends)
        deadline = time.monotonic() + self.limits.drain_timeout
        for backend_id, old in svc.backends.items():
            if backends.get(backend_id) is not old:
                self._retire(svc, old, deadline)
        svc.backends = backends
        svc.table = table  # the atomic switch: the hot path reads this attribute per request

    def _retire(self, svc: ServiceRuntime, backend: BackendState, deadline: float) -> None:
        backend.retired = True
        idle, backend.idle = backend.idle, []
        for conn in idle:
            conn.expire(0.0)
        svc.retiring[backend] = deadline

    async def _listen(self, svc: ServiceRuntime, address: Address) -> asyncio.Server:
        sock = self.inherited.pop(str(address), None) or bind_listener(address)
        try:
            return await self.loop.create_server(
                lambda: ClientConnection(svc), sock=sock, backlog=1024
            )
        except OSError as exc:
            sock.close()
            raise TemporaryError(f"cannot serve on {address}: {exc}") from exc

    def _persist(self) -> None:
        if self.config_path is not None:
            save_config(self.config_path, {n: s.table.routes for n, s in self.services.items()})

    def routes(self, service: str) -> ServiceRoutes | None:
        svc = self.services.get(service)
        return None if svc is None else svc.table.routes

    def _service(self, service: str) -> ServiceRuntime:
        svc = self.services.get(service)
        if svc is None:
            raise NotFoundError(f"the proxy has no service {service!r}")
        return svc

    async def set_weights(self, service: str, weights: dict[str, int]) -> ServiceRoutes:
        routes = self._service(service).table.routes
        new = ServiceRoutes(
            service=routes.service,
            listen=routes.listen,
            groups=routes.groups,
            weights=weights,
            sticky=routes.sticky,
            rules=routes.rules,
        )
        await self.apply(new)
        return new

    async def add_backend(self, service: str, group: str, backend: Backend) -> ServiceRoutes:
        routes = self._service(service).table.routes
        groups = {g: tuple(b for b in m if b.id != backend.id) for g, m in routes.groups.items()}
        groups[group] = (*groups.get(group, ()), backend)
        new = ServiceRoutes(
            service=routes.service,
            listen=routes.listen,
            groups=groups,
            weights=routes.weights,
            sticky=routes.sticky,
            rules=routes.rules,
        )
        await self.apply(new)
        return new

    async def remove_backend(self, service: str, backend_id: str) -> BackendState:
        """Take an instance out of the table now; returns its state (to watch it drain)."""
        svc = self._service(service)
        state = svc.backends.get(backend_id)
        if state is None:
            for retiring in svc.retiring:
                if retiring.id == backend_id:
                    return retiring
            raise NotFoundError(f"service {service!r} has no instance {backend_id!r}")
        routes = svc.table.routes
        new = ServiceRoutes(
            service=routes.service,
            listen=routes.listen,
            groups={g: tuple(b for b in m if b.id != backend_id) for g, m in routes.groups.items()},
            weights=routes.weights,
            sticky=routes.sticky,
            rules=routes.rules,
        )
        await self.apply(new)
        return state

    async def drain(self, service: str, backend_id: str, *, timeout: float) -> bool:
        """Remove an instance and wait until its in-flight requests are done."""
        state = await self.remove_backend(service, backend_id)
        svc = self._service(service)
        deadline = time.monotonic() + timeout
        svc.retiring[state] = max(svc.retiring.get(state, 0.0), deadline)
        return await _poll(lambda: state.counters.in_flight <= 0, deadline)

    async def remove_service(self, service: str) -> None:
        async with self._lock:
            svc = self._service(service)
            del self.services[service]
            if svc.server is not None:
                svc.server.close()
                svc.server = None
            self._close_service(svc)
            self.removed.append(svc)
            self._persist()

    def _close_service(self, svc: ServiceRuntime) -> None:
        svc.closing = True
        grace = time.monotonic() + self.limits.shutdown_idle_grace
        for client in svc.clients:
            if client.active is None and client.parsing is None:
                client.deadline = min(client.deadline, grace)
        deadline = time.monotonic() + self.limits.drain_timeout
        for backend in list(svc.backends.values()):
            self._retire(svc, backend, deadline)

    # --- metrics ----------------------------------------------------------------------------

    def metrics(self, service: str) -> ServiceMetrics:
        svc = self._service(service)
        groups: dict[str, list[Counters]] = {g: [] for g in svc.table.routes.groups}
        instances = {}
        for backend in [*svc.retiring, *svc.backends.values()]:
            instances[backend.id] = backend.counters.instance_snapshot(
                id=backend.id, group=backend.group, address=backend.address
            )
            groups.setdefault(backend.group, []).append(backend.counters)
        for group, counters in svc.retired_counters.items():
            groups.setdefault(group, []).append(counters)
        return ServiceMetrics(
            service=service,
            groups={g: sum_counters(cs).group_snapshot(g) for g, cs in groups.items()},
            instances=instances,
            rejected=svc.rejected,
            unrouted=svc.unrouted,
        )

    # --- timeouts ---------------------------------------------------------------------------

    def start(self) -> None:
        self._sweeper = self.loop.create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                self.sweep(time.monotonic())
            except Exception:  # the sweeper must outlive any one bad connection
                log.exception("sweep failed")

    def sweep(self, now: float) -> None:
        """Close whatever passed its deadline; finish retirements."""
        for svc in [*self.services.values(), *self.removed]:
            for client in [c for c in svc.clients if c.deadline < now]:
                client.expire(now)
            for backend, deadline in list(svc.retiring.items()):
                if backend.counters.in_flight <= 0:
                    svc.retired_counters.setdefault(backend.group, Counters()).add(backend.counters)
                    del svc.retiring[backend]
                elif deadline < now:
                    for conn in [u for u in self.upstreams if u.backend is backend]:
                        conn.expire(now)
        for conn in [u for u in self.upstreams if u.deadline < now]:
            conn.expire(now)
        self.removed = [s for s in self.removed if s.clients]

    # --- stopping and handing over ----------------------------------------------------------

    def listeners(self) -> list[tuple[str, Address, int]]:
        """``(service, address, fd)`` of every listening socket (for a successor)."""
        out = []
        for svc in self.services.values():
            if svc.server is not None:
                for sock in svc.server.sockets:
                    out.append((svc.name, svc.listen, sock.fileno()))
        return out

    def stop_accepting(self) -> None:
        """Close the listeners (a successor may hold the same sockets and keep accepting)."""
        self.accepting = False
        for svc in self.services.values():
            if svc.server is not None:
                svc.server.close()
                svc.server = None

    def begin_drain(self) -> None:
        """Finish what is in flight, close keep-alive connections as they go idle."""
        for svc in self.services.values():
            svc.closing = True
            grace = time.monotonic() + self.limits.shutdown_idle_grace
            for client in svc.clients:
                if client.active is None and client.parsing is None:
                    client.deadline = min(client.deadline, grace)

    async def wait_drained(self, timeout: float) -> bool:
        ok = await _poll(
            lambda: not any(s.clients for s in [*self.services.values(), *self.removed]),
            time.monotonic() + timeout,
        )
        for svc in [*self.services.values(), *self.removed]:
            for client in list(svc.clients):
                with contextlib.suppress(Exception):
                    client.transport.abort()
        for conn in list(self.upstreams):
            conn.expire(0.0)
        if self._sweeper is not None:
            self._sweeper.cancel()
        return ok


async def _poll(done: Callable[[], bool], deadline: float, interval: float = 0.005) -> bool:
    while not done():
        if time.monotonic() >= deadline:
            return done()
        await asyncio.sleep(interval)
    return True
