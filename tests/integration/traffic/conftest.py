"""Fixtures for the proxy integration tests: a real proxy process and tiny upstreams.

Every proxy started under a test's state directory is stopped at teardown, and any process
that was ever recorded in its ``proxy.json`` is killed if still alive, so no test leaves a
stray process behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.integration.traffic.helpers import TinyUpstream, free_port
from zerodown.traffic.proxy.client import ProxyRouter
from zerodown.traffic.proxy.launcher import ensure_proxy, read_proxy_info, stop_proxy


class ProxyHandle:
    """A running proxy process plus the router that configures it."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.pids: set[int] = set()
        self.start()
        self.router = ProxyRouter(state_dir)

    def start(self, extra_args: list[str] | None = None) -> None:
        info = ensure_proxy(self.state_dir, timeout=15, extra_args=extra_args)
        self.pids.add(info.pid)

    @property
    def pid(self) -> int:
        info = read_proxy_info(self.state_dir)
        assert info is not None
        self.pids.add(info.pid)
        return info.pid

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            info = read_proxy_info(self.state_dir)
            if info is not None:
                self.pids.add(info.pid)
            stop_proxy(self.state_dir, timeout=10)
        for pid in self.pids:
            with contextlib.suppress(psutil.Error, ProcessLookupError, ChildProcessError):
                proc = psutil.Process(pid)
                if "zerodown.traffic.proxy" in " ".join(proc.cmdline()):
                    os.kill(pid, signal.SIGKILL)
                    proc.wait(5)


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[ProxyHandle]:
    handle = ProxyHandle(tmp_path / "state")
    try:
        yield handle
    finally:
        handle.cleanup()


@pytest.fixture
def upstream() -> Iterator[Callable[[str], TinyUpstream]]:
    started: list[TinyUpstream] = []

    def start(name: str) -> TinyUpstream:
        server = TinyUpstream(name).start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def listen() -> str:
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def dead_address() -> Iterator[str]:
    """An address where nothing listens (a bound, non-listening socket holds the port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{s.getsockname()[1]}"
