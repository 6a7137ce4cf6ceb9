"""The proxy process: ``python -m zerodown.traffic.proxy --state-dir DIR [--admin HOST:PORT]``.

Startup: take the listeners of a running proxy of the same state directory if there is one
(zero-gap restart), reload the last routing tables from ``config.json``, open the admin API,
write ``proxy.json`` (pid, admin address, start time), then let the predecessor go. SIGTERM or
SIGINT stops accepting, lets in-flight requests finish (bounded by the drain timeout) and exits.
A successor taking over has the same effect.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from zerodown.core.errors import ZerodownError
from zerodown.traffic.base import parse_address
from zerodown.traffic.proxy.admin import AdminServer
from zerodown.traffic.proxy.config import (
    ProxyLimits,
    ProxyPaths,
    load_config,
    read_or_create_token,
    write_json_atomic,
)
from zerodown.traffic.proxy.dataplane import DataPlane
from zerodown.traffic.proxy.handover import HandoverListener, take_over

__all__ = ["main"]

log = logging.getLogger("zerodown.proxy")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zerodown proxy", description=__doc__.splitlines()[0])
    p.add_argument("--state-dir", required=True, help="zerodown state directory")
    p.add_argument("--admin", default="127.0.0.1:0", help="admin API address (loopback)")
    p.add_argument("--max-body-bytes", type=int, default=ProxyLimits.max_body_bytes)
    p.add_argument("--max-header-bytes", type=int, default=ProxyLimits.max_header_bytes)
    p.add_argument("--connect-timeout", type=float, default=ProxyLimits.connect_timeout)
    p.add_argument("--response-timeout", type=float, default=ProxyLimits.response_timeout)
    p.add_argument("--keepalive-timeout", type=float, default=ProxyLimits.keepalive_timeout)
    p.add_argument("--drain-timeout", type=float, default=ProxyLimits.drain_timeout)
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the proxy until it is stopped or replaced; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    limits = ProxyLimits(
        max_body_bytes=args.max_body_bytes,
        max_header_bytes=args.max_header_bytes,
        connect_timeout=args.connect_timeout,
        response_timeout=args.response_timeout,
        keepalive_timeout=args.keepalive_timeout,
        drain_timeout=args.drain_timeout,
    )
    try:
        admin = parse_address(args.admin)
        paths = ProxyPaths(_abspath(args.state_dir))
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(_serve(paths, admin, limits))
    except ZerodownError as exc:
        log.error("%s", exc.message)
        return exc.exit_code


def _abspath(path: str) -> Path:
    return Path(path).resolve()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _serve(paths: ProxyPaths, admin_address: object, limits: ProxyLimits) -> int:
    from zerodown.core.types import Address

    assert isinstance(admin_address, Address)
    loop = asyncio.get_running_loop()
    paths.ensure()
    token = read_or_create_token(paths.token)
    inherited = await loop.run_in_executor(None, take_over, paths.handover)
    plane = DataPlane(limits=limits, loop=loop, config_path=paths.config)
    if inherited is not None:
        plane.inherited = inherited.sockets
        log.info(
            "took over %d listener(s) from pid %d",
            len(inherited.sockets),
            inherited.predecessor_pid,
        )
    for routes in load_config(paths.config).values():
        try:
            await plane.apply(routes, persist=False)
        except ZerodownError as exc:
            log.error("service %s not started: %s", routes.service, exc.message)
    for sock in plane.inherited.values():
        sock.close()  # listeners of services no longer configured
    plane.inherited.clear()
    plane.start()
    admin = AdminServer(plane, token)
    bound = await admin.start(admin_address)
    if inherited is not None:
        await loop.run_in_executor(None, inherited.release_predecessor)

    stopped = asyncio.Event()

    async def handed_over() -> None:
        plane.stop_accepting()
        stopped.set()

    handover = HandoverListener(
        paths.handover, loop=loop, listeners=plane.listeners, handed_over=handed_over
    )
    handover.start()
    write_json_atomic(
        paths.info,
        {"pid": os.getpid(), "admin": str(bound), "started_at": time.time()},
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    log.info("proxy %d serving %d service(s); admin on %s", os.getpid(), len(plane.services), bound)

    await stopped.wait()
    log.info("stopping: no new connections, draining in-flight requests")
    admin.close()
    await loop.run_in_executor(None, handover.close)
    plane.stop_accepting()
    plane.begin_drain()
    drained = await plane.wait_drained(limits.drain_timeout)
    _forget_info(paths)
    log.info("stopped (%s)", "drained" if drained else "drain timeout, connections cut")
    return 0


def _forget_info(paths: ProxyPaths) -> None:
    """Remove ``proxy.json`` unless a successor already replaced it."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(paths.info.read_text()).get("pid") == os.getpid():
            paths.info.unlink()
