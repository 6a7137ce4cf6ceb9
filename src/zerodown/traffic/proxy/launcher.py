"""Start, stop and restart the proxy process of a state directory.

The proxy runs detached (its own session, output to ``proxy/proxy.log``) so that it outlives
whoever started it: killing the controller leaves traffic flowing. ``ensure_proxy`` is
idempotent: it returns the running proxy if its admin API answers, and starts one otherwise.
``restart_proxy`` starts a successor, which takes over the listening sockets before the old
process stops accepting (see ``handover``), so a restart under load loses no request.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from zerodown.core.errors import OperationFailedError, TemporaryError
from zerodown.core.process import pid_alive
from zerodown.core.types import Address
from zerodown.traffic.base import parse_address
from zerodown.traffic.proxy.config import ProxyPaths

__all__ = [
    "ProxyProcessInfo",
    "ensure_proxy",
    "read_proxy_info",
    "restart_proxy",
    "stop_proxy",
]

_POLL = 0.05


@dataclass(frozen=True)
class ProxyProcessInfo:
    """The running proxy of a state directory, as it wrote itself in ``proxy.json``."""

    pid: int
    admin: Address
    started_at: float
    state_dir: Path


def read_proxy_info(state_dir: Path) -> ProxyProcessInfo | None:
    """What ``proxy.json`` says, or None if there is no (readable) file."""
    try:
        data = json.loads(ProxyPaths(state_dir).info.read_text(encoding="utf-8"))
        return ProxyProcessInfo(
            pid=int(data["pid"]),
            admin=parse_address(str(data["admin"])),
            started_at=float(data["started_at"]),
            state_dir=state_dir,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        # Reap it if it is our own exited child, so it does not linger as a zombie.
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    return pid_alive(pid)


def _answers(info: ProxyProcessInfo, timeout: float = 1.0) -> bool:
    try:
        r = httpx.get(f"{info.admin.url}/v1/health", timeout=timeout)
        return r.status_code == 200 and r.json().get("pid") == info.pid
    except (httpx.HTTPError, ValueError):
        return False


def _spawn(state_dir: Path, extra_args: list[str]) -> subprocess.Popen[bytes]:
    paths = ProxyPaths(state_dir)
    paths.ensure()
    with open(paths.log, "ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "zerodown.traffic.proxy",
                "--state-dir",
                str(state_dir),
                *extra_args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


def _wait_started(
    state_dir: Path, proc: subprocess.Popen[bytes], timeout: float
) -> ProxyProcessInfo:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_proxy_info(state_dir)
        if info is not None and info.pid == proc.pid and _answers(info):
            return info
        if proc.poll() is not None:
            raise OperationFailedError(
                f"the proxy exited with code {proc.returncode} while starting; "
                f"see {ProxyPaths(state_dir).log}:\n{_log_tail(state_dir)}"
            )
        time.sleep(_POLL)
    raise TemporaryError(
        f"the proxy did not answer within {timeout:.0f} s; see {ProxyPaths(state_dir).log}",
        retry_after=timeout,
    )


def _log_tail(state_dir: Path, lines: int = 10) -> str:
    try:
        return "\n".join(ProxyPaths(state_dir).log.read_text().splitlines()[-lines:])
    except OSError:
        return ""


def ensure_proxy(
    state_dir: Path, *, timeout: float = 10, extra_args: list[str] | None = None
) -> ProxyProcessInfo:
    """The running proxy of ``state_dir``; starts one (detached) if none answers."""
    state_dir = Path(state_dir).resolve()
    info = read_proxy_info(state_dir)
    if info is not None and _alive(info.pid) and _answers(info):
        return info
    proc = _spawn(state_dir, extra_args or [])
    return _wait_started(state_dir, proc, timeout)


def stop_proxy(state_dir: Path, *, timeout: float = 35) -> bool:
    """Stop the proxy gracefully (SIGTERM, then SIGKILL after ``timeout``). True if one ran."""
    state_dir = Path(state_dir).resolve()
    info = read_proxy_info(state_dir)
    if info is None or not _alive(info.pid):
        return False
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    if not _wait_exit(info.pid, timeout):
        os.kill(info.pid, signal.SIGKILL)
        _wait_exit(info.pid, 5)
    return True


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


def restart_proxy(
    state_dir: Path,
    *,
    timeout: float = 10,
    wait_old: float = 35,
    extra_args: list[str] | None = None,
) -> ProxyProcessInfo:
    """Replace the running proxy without a gap; starts one if none runs.

    The successor takes over the listening sockets, then the old process stops accepting and
    drains (up to its drain timeout; this waits up to ``wait_old`` seconds for it to exit).
    """
    state_dir = Path(state_dir).resolve()
    old = read_proxy_info(state_dir)
    proc = _spawn(state_dir, extra_args or [])
    info = _wait_started(state_dir, proc, timeout)
    if (
        old is not None
        and old.pid != info.pid
        and _alive(old.pid)
        and not _wait_exit(old.pid, wait_old)
    ):
        raise OperationFailedError(
            f"the old proxy (pid {old.pid}) still runs {wait_old:.0f} s after its successor "
            f"(pid {info.pid}) started: the hand-over failed; see {ProxyPaths(state_dir).log}"
        )
    return info
