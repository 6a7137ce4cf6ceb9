"""Health probes against real loopback servers; HealthTracker on fake times."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from zerodown.checks.health import (
    HealthProbeConfig,
    HealthState,
    HealthTracker,
    ProbeResult,
    probe,
)
from zerodown.core.errors import InputError
from zerodown.core.types import Address

GOOD = ProbeResult(ok=True, detail="status 200", latency_s=0.001)
BAD = ProbeResult(ok=False, detail="status 503", latency_s=0.001)


# -- HealthTracker -------------------------------------------------------------------------


def feed(tracker: HealthTracker, results: list[ProbeResult], *, start: float, step: float) -> None:
    for i, result in enumerate(results):
        tracker.observe(result, start + i * step)


def test_tracker_starts_in_starting() -> None:
    assert HealthTracker(started_at=0.0).state is HealthState.STARTING


def test_tracker_becomes_healthy_after_success_threshold_consecutive_successes() -> None:
    tracker = HealthTracker(started_at=0.0, success_threshold=3)
    assert tracker.observe(GOOD, 1.0) is HealthState.STARTING
    assert tracker.observe(GOOD, 2.0) is HealthState.STARTING
    assert tracker.observe(GOOD, 3.0) is HealthState.HEALTHY


def test_tracker_a_failure_breaks_a_run_of_successes() -> None:
    tracker = HealthTracker(started_at=0.0, success_threshold=2, startup_grace=100.0)
    feed(tracker, [GOOD, BAD, GOOD], start=1.0, step=1.0)
    assert tracker.state is HealthState.STARTING
    assert tracker.observe(GOOD, 4.0) is HealthState.HEALTHY


def test_tracker_healthy_turns_unhealthy_only_after_failure_threshold_failures() -> None:
    tracker = HealthTracker(started_at=0.0, failure_threshold=3)
    tracker.observe(GOOD, 1.0)
    assert tracker.observe(BAD, 2.0) is HealthState.HEALTHY
    assert tracker.observe(BAD, 3.0) is HealthState.HEALTHY
    assert tracker.observe(BAD, 4.0) is HealthState.UNHEALTHY
    assert "3 consecutive failed probes: status 503" in tracker.reason


def test_tracker_a_success_resets_the_failure_count() -> None:
    tracker = HealthTracker(started_at=0.0, failure_threshold=2)
    feed(tracker, [GOOD, BAD, GOOD, BAD, GOOD, BAD], start=1.0, step=1.0)
    assert tracker.state is HealthState.HEALTHY


def test_tracker_unhealthy_recovers_after_success_threshold_successes() -> None:
    tracker = HealthTracker(started_at=0.0, success_threshold=2, failure_threshold=1)
    feed(tracker, [GOOD, GOOD, BAD], start=1.0, step=1.0)
    assert tracker.state is HealthState.UNHEALTHY
    assert tracker.observe(GOOD, 4.0) is HealthState.UNHEALTHY
    assert tracker.observe(GOOD, 5.0) is HealthState.HEALTHY


def test_tracker_failures_inside_startup_grace_do_not_make_it_unhealthy() -> None:
    tracker = HealthTracker(started_at=100.0, failure_threshold=2, startup_grace=10.0)
    feed(tracker, [BAD] * 9, start=100.0, step=1.0)  # 100 .. 108, all inside the grace
    assert tracker.state is HealthState.STARTING
    assert tracker.in_grace(109.9)
    assert not tracker.in_grace(110.0)


def test_tracker_still_failing_when_grace_ends_is_unhealthy_at_the_first_failure_after() -> None:
    tracker = HealthTracker(started_at=100.0, failure_threshold=3, startup_grace=10.0)
    feed(tracker, [BAD] * 5, start=101.0, step=1.0)
    assert tracker.state is HealthState.STARTING
    assert tracker.observe(BAD, 110.0) is HealthState.UNHEALTHY


def test_tracker_a_success_inside_grace_restarts_the_failure_count() -> None:
    tracker = HealthTracker(
        started_at=0.0, success_threshold=2, failure_threshold=3, startup_grace=5.0
    )
    feed(tracker, [BAD, GOOD], start=4.0, step=1.0)
    assert tracker.observe(BAD, 6.0) is HealthState.STARTING
    assert tracker.observe(BAD, 7.0) is HealthState.STARTING
    assert tracker.observe(BAD, 8.0) is HealthState.UNHEALTHY


def test_tracker_grace_does_not_protect_an_instance_that_was_healthy() -> None:
    tracker = HealthTracker(started_at=0.0, failure_threshold=1, startup_grace=60.0)
    tracker.observe(GOOD, 1.0)
    assert tracker.observe(BAD, 2.0) is HealthState.UNHEALTHY


@pytest.mark.parametrize(
    "kwargs",
    [{"success_threshold": 0}, {"failure_threshold": 0}, {"startup_grace": -1.0}],
)
def test_tracker_rejects_impossible_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(InputError):
        HealthTracker(started_at=0.0, **kwargs)  # type: ignore[arg-type]


# -- HealthProbeConfig ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "command"},
        {"kind": "http", "path": "healthz"},
        {"kind": "http", "timeout": 0.0},
        {"kind": "udp"},
    ],
)
def test_probe_config_rejects_incomplete_or_invalid_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(InputError):
        HealthProbeConfig(**kwargs)  # type: ignore[arg-type]


# -- probes against real sockets -------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        status = 503 if self.path == "/sick" else 200
        body = b"{}"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def http_server() -> Iterator[Address]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Address("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def silent_server() -> Iterator[Address]:
    """Accepts connections (the kernel completes the handshake) but never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield Address("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()


@pytest.fixture
def closed_port() -> Address:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return Address("127.0.0.1", port)


def test_http_probe_ok_when_status_matches(http_server: Address) -> None:
    result = probe(HealthProbeConfig("http", path="/healthz"), http_server)
    assert result.ok
    assert result.detail == "status 200"
    assert result.latency_s >= 0


def test_http_probe_fails_with_the_status_seen(http_server: Address) -> None:
    result = probe(HealthProbeConfig("http", path="/sick"), http_server)
    assert not result.ok
    assert result.detail.startswith("status 503")


def test_http_probe_expect_status_can_be_anything(http_server: Address) -> None:
    assert probe(HealthProbeConfig("http", path="/sick", expect_status=503), http_server).ok
    assert not probe(HealthProbeConfig("http", expect_status=204), http_server).ok


def test_http_probe_reports_connection_refused(closed_port: Address) -> None:
    result = probe(HealthProbeConfig("http"), closed_port)
    assert not result.ok
    assert result.detail == "connection refused"


def test_http_probe_times_out_on_a_server_that_never_answers(silent_server: Address) -> None:
    result = probe(HealthProbeConfig("http", timeout=0.3), silent_server)
    assert not result.ok
    assert result.detail == "timed out after 0.3s"


def test_tcp_probe_ok_when_something_listens(silent_server: Address) -> None:
    result = probe(HealthProbeConfig("tcp"), silent_server)
    assert result.ok
    assert result.detail == "connected"


def test_tcp_probe_reports_connection_refused(closed_port: Address) -> None:
    result = probe(HealthProbeConfig("tcp"), closed_port)
    assert not result.ok
    assert result.detail == "connection refused"


def test_command_probe_gets_host_port_and_extra_env() -> None:
    check = HealthProbeConfig(
        "command",
        command='test "$HOST" = 127.0.0.1 && test "$PORT" = 4321 && test "$EXTRA" = yes',
    )
    result = probe(check, Address("127.0.0.1", 4321), env={"EXTRA": "yes"})
    assert result.ok, result.detail


def test_command_probe_fails_on_nonzero_exit_with_its_last_output_line() -> None:
    check = HealthProbeConfig("command", command="echo first; echo database down; exit 3")
    result = probe(check, Address("127.0.0.1", 1))
    assert not result.ok
    assert result.detail == "exit code 3: database down"


def test_command_probe_is_killed_after_the_timeout_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    check = HealthProbeConfig(
        "command", command=f"sleep 30 & echo $! > {pid_file}; sleep 30; wait", timeout=0.3
    )
    result = probe(check, Address("127.0.0.1", 1))
    assert not result.ok
    assert result.detail == "timed out after 0.3s"
    assert result.latency_s < 10  # killed, not waited for: a generous bound, not a speed claim
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, f"background child {child} survived the timeout"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
