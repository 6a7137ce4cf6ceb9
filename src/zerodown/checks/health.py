"""Health probes and the state machine that turns their results into healthy / unhealthy.

``probe`` asks one instance once, the same way for every platform: an HTTP GET that must return
the expected status, a TCP connect, or a shell command that must exit 0. A failed probe is a
result, never an exception ("connection refused", "status 503", "timed out after 1.0s"), because
providers return measurements, not exceptions: the engine decides what a failure means.

``HealthTracker`` is that decision for one instance, as a pure function of the results it is fed
and the times they were taken: ``success_threshold`` consecutive successes make it healthy,
``failure_threshold`` consecutive failures make it unhealthy, and a starting instance cannot be
declared unhealthy before its startup grace is over (it may still be booting). It never reads a
clock, so tests feed it fake times.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from enum import StrEnum
from typing import Literal

from zerodown.core.errors import InputError
from zerodown.core.types import Address

__all__ = ["HealthProbeConfig", "HealthState", "HealthTracker", "ProbeResult", "probe"]

# Enough of a command's output to say why it failed, not a whole log.
_MAX_DETAIL = 200


@dataclass(frozen=True)
class HealthProbeConfig:
    """How to probe an instance: ``http`` (GET ``path``), ``tcp`` (connect) or ``command``."""

    kind: Literal["http", "tcp", "command"]
    _: KW_ONLY
    path: str = "/healthz"
    expect_status: int = 200
    command: str | None = None
    timeout: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("http", "tcp", "command"):
            raise InputError(f"unknown health probe kind {self.kind!r} (http, tcp or command)")
        if self.timeout <= 0:
            raise InputError(f"health probe timeout must be positive, not {self.timeout}")
        if self.kind == "http" and not self.path.startswith("/"):
            raise InputError(f"health probe path {self.path!r} must start with '/'")
        if self.kind == "command" and not self.command:
            raise InputError("a command health probe needs a command")


@dataclass(frozen=True)
class ProbeResult:
    """One probe's outcome; ``detail`` says what was seen, ``latency_s`` how long it took."""

    ok: bool
    detail: str
    latency_s: float


def probe(
    check: HealthProbeConfig, address: Address, *, env: Mapping[str, str] | None = None
) -> ProbeResult:
    """Probe ``address`` once as ``check`` says. Never raises for a failed probe.

    ``env`` adds variables for command probes (which also get ``HOST`` and ``PORT``).
    """
    started = time.perf_counter()
    if check.kind == "http":
        ok, detail = _probe_http(check, address)
    elif check.kind == "tcp":
        ok, detail = _probe_tcp(check, address)
    else:
        ok, detail = _probe_command(check, address, env or {})
    return ProbeResult(ok=ok, detail=detail, latency_s=time.perf_counter() - started)


def _timed_out(timeout: float) -> str:
    return f"timed out after {float(timeout)}s"


def _describe_os_error(exc: OSError, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return _timed_out(timeout)
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror or exc}"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def _probe_http(check: HealthProbeConfig, address: Address) -> tuple[bool, str]:
    # One overall deadline: each socket step gets only the time that is left, so a server that
    # trickles bytes cannot stretch the probe beyond ``timeout``.
    deadline = time.monotonic() + check.timeout

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    conn = http.client.HTTPConnection(address.host, address.port, timeout=check.timeout)
    try:
        conn.connect()
        assert conn.sock is not None
        conn.sock.settimeout(remaining())
        conn.request(
            "GET",
            check.path,
            headers={"User-Agent": "zerodown-health", "Connection": "close"},
        )
        conn.sock.settimeout(remaining())
        response = conn.getresponse()
        status = response.status
    except OSError as exc:
        return False, _describe_os_error(exc, check.timeout)
    except http.client.HTTPException as exc:
        return False, f"bad http response: {type(exc).__name__}"
    finally:
        conn.close()
    if status != check.expect_status:
        return False, f"status {status} (expected {check.expect_status})"
    return True, f"status {status}"


def _probe_tcp(check: HealthProbeConfig, address: Address) -> tuple[bool, str]:
    try:
        with socket.create_connection((address.host, address.port), timeout=check.timeout):
            pass
    except OSError as exc:
        return False, _describe_os_error(exc, check.timeout)
    return True, "connected"


def _probe_command(
    check: HealthProbeConfig, address: Address, env: Mapping[str, str]
) -> tuple[bool, str]:
    assert check.command is not None
    full_env = {**os.environ, **env, "HOST": address.host, "PORT": str(address.port)}
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", check.command],
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, so a timeout kills what it started too
        )
    except OSError as exc:
        return False, f"cannot run command: {exc.strerror or exc}"
    try:
        output, _ = proc.communicate(timeout=check.timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        # The output pipe closes only when every process holding it is gone; don't wait on it.
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        return False, _timed_out(check.timeout)
    if proc.returncode == 0:
        return True, "exit code 0"
    last = output.decode("utf-8", errors="replace").strip().splitlines()[-1:] or [""]
    detail = f"exit code {proc.returncode}"
    if last[0]:
        detail += f": {last[0][:_MAX_DETAIL]}"
    return False, detail


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(pgid, signal.SIGKILL)


class HealthState(StrEnum):
    STARTING = "starting"  # no verdict yet: not enough successes, failures still forgiven
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class HealthTracker:
    """Consecutive-result thresholds with a startup grace, for one instance. Pure: no clock.

    * ``starting`` until ``success_threshold`` consecutive successes (-> ``healthy``), or a
      failure after the grace that makes ``failure_threshold`` consecutive ones (-> ``unhealthy``).
      Failures inside the grace are counted but cannot end it early: an instance still failing
      when its grace is over is one that did not start in time.
    * ``healthy`` -> ``unhealthy`` after ``failure_threshold`` consecutive failures.
    * ``unhealthy`` -> ``healthy`` after ``success_threshold`` consecutive successes.

    Times are any monotonic seconds, the same scale for every call.
    """

    def __init__(
        self,
        *,
        started_at: float,
        success_threshold: int = 1,
        failure_threshold: int = 3,
        startup_grace: float = 0.0,
    ) -> None:
        if success_threshold < 1 or failure_threshold < 1:
            raise InputError("health thresholds must be at least 1")
        if startup_grace < 0:
            raise InputError(f"startup grace must not be negative, not {startup_grace}")
        self.started_at = started_at
        self.success_threshold = success_threshold
        self.failure_threshold = failure_threshold
        self.startup_grace = startup_grace
        self.state = HealthState.STARTING
        self.consecutive_successes = 0
        self.consecutive_failures = 0
        self.last_detail = ""

    def in_grace(self, at: float) -> bool:
        """Is ``at`` still inside the startup grace?"""
        return at < self.started_at + self.startup_grace

    def observe(self, result: ProbeResult, at: float) -> HealthState:
        """Feed one probe result taken at time ``at``; return the state after it."""
        self.last_detail = result.detail
        if result.ok:
            self.consecutive_successes += 1
            self.consecutive_failures = 0
            if self.consecutive_successes >= self.success_threshold:
                self.state = HealthState.HEALTHY
            return self.state
        self.consecutive_successes = 0
        self.consecutive_failures += 1
        if self.state is HealthState.STARTING and self.in_grace(at):
            return self.state
        if self.consecutive_failures >= self.failure_threshold:
            self.state = HealthState.UNHEALTHY
        return self.state

    @property
    def reason(self) -> str:
        """Why the state is what it is, for events and rollback reasons."""
        if self.state is HealthState.UNHEALTHY:
            return f"{self.consecutive_failures} consecutive failed probes: {self.last_detail}"
        if self.state is HealthState.HEALTHY:
            if self.consecutive_failures:
                return (
                    f"healthy, {self.consecutive_failures}/{self.failure_threshold} failed probes:"
                    f" {self.last_detail}"
                )
            return "healthy"
        return f"starting: {self.consecutive_successes}/{self.success_threshold} good probes" + (
            f", last: {self.last_detail}" if self.last_detail else ""
        )
