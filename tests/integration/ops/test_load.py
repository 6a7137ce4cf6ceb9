"""The load generator on real sockets: paced, bounded in count and time, stoppable, and
counting what the target answered (status classes, codes, errors, a version header)."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from tests.integration.ops.servers import ExampleApp, ScriptedServer, closed_port
from zerodown.core.errors import InputError
from zerodown.ops.load import LoadStats, run_load

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def assert_every_request_accounted_for(stats: LoadStats) -> None:
    ended = stats.completed + stats.connection_errors + stats.timeouts + stats.cancelled
    assert stats.sent == ended
    assert sum(stats.by_status.values()) == stats.completed
    assert sum(stats.by_class.values()) == stats.completed


def test_reaches_the_target_rate_against_the_example_app() -> None:
    """200 rps for 2 s: 400 requests, sent within 10 % of the target rate, all answered by v1."""
    with ExampleApp(version="v1") as app:
        stats = run_load(app.url, rps=200, duration=2.0, count_header="X-Version")
    assert stats.sent == 400
    assert stats.achieved_rps == pytest.approx(200, rel=0.10)
    assert stats.completed == 400
    assert stats.by_class == {"2xx": 400}
    assert stats.header_counts == {"v1": 400}
    assert stats.latency_p50_ms is not None and stats.latency_max_ms is not None
    assert 0 < stats.latency_p50_ms <= stats.latency_max_ms
    # Open-loop pacing: the run takes the duration, not "as fast as possible".
    assert 1.9 <= stats.elapsed < 3.0
    assert_every_request_accounted_for(stats)


def test_counts_answers_by_status_class_and_code() -> None:
    """With ERROR_RATE=0.5 about half the answers are 500s, and both kinds are counted."""
    with ExampleApp(version="v2", env={"ERROR_RATE": "0.5"}) as app:
        stats = run_load(app.url, rps=200, duration=1.0, count_header="X-Version")
    assert stats.completed == 200
    assert set(stats.by_status) == {200, 500}
    assert stats.by_class == {"2xx": stats.by_status[200], "5xx": stats.by_status[500]}
    assert 0.3 < stats.server_errors / stats.completed < 0.7
    assert stats.failed == stats.server_errors
    assert stats.header_counts == {"v2": 200}
    assert_every_request_accounted_for(stats)


def test_exact_codes_of_a_scripted_server() -> None:
    with ScriptedServer() as server:
        not_found = run_load(server.url + "/status/404", rps=100, duration=0.2)
        created = run_load(server.url + "/status/201", rps=100, duration=0.2)
    assert not_found.by_status == {404: 20} and not_found.by_class == {"4xx": 20}
    assert created.by_status == {201: 20} and created.by_class == {"2xx": 20}
    assert not_found.failed == 0


def test_counts_connection_errors_against_a_closed_port() -> None:
    with closed_port() as port:
        stats = run_load(f"http://127.0.0.1:{port}/", rps=100, duration=0.5, timeout=1.0)
    assert stats.sent == 50
    assert stats.connection_errors == 50
    assert stats.completed == 0 and stats.timeouts == 0
    assert stats.latency_p50_ms is None
    assert_every_request_accounted_for(stats)


def test_stops_when_the_stop_event_is_set() -> None:
    """The server sets ``stop`` at its 50th request; a 30 s run then ends at once."""
    stop = threading.Event()

    def stop_at_fifty(server: ScriptedServer) -> None:
        if len(server.seen) >= 50:
            stop.set()

    with ScriptedServer(on_request=stop_at_fifty) as server:
        stats = run_load(server.url, rps=200, duration=30.0, stop=stop)
        seen = len(server.seen)
    assert stop.is_set()
    assert stats.elapsed < 5.0
    assert 50 <= stats.sent <= 90
    assert seen == stats.sent
    assert_every_request_accounted_for(stats)


def test_a_stop_event_set_before_the_start_sends_nothing() -> None:
    stop = threading.Event()
    stop.set()
    with ScriptedServer() as server:
        stats = run_load(server.url, rps=100, duration=5.0, stop=stop)
        assert server.seen == []
    assert stats.sent == 0 and stats.elapsed < 1.0


def test_never_sends_more_than_max_requests() -> None:
    with ScriptedServer() as server:
        stats = run_load(server.url, rps=1000, duration=2.0, max_requests=37)
        seen = len(server.seen)
    assert stats.sent == 37 == seen == stats.completed
    # The count bound ends the run early: 37 slots at 1 ms, not 2 s.
    assert stats.elapsed < 1.0


def test_max_requests_zero_sends_nothing() -> None:
    with ScriptedServer() as server:
        stats = run_load(server.url, rps=100, duration=1.0, max_requests=0)
        assert server.seen == []
    assert stats.sent == 0 and stats.achieved_rps == 0.0


def test_requests_that_are_never_answered_time_out_and_the_run_still_ends() -> None:
    """Hard stop at duration + timeout: a server that never answers cannot hold the run."""
    with ScriptedServer() as server:
        stats = run_load(server.url + "/hang", rps=20, duration=0.5, timeout=0.3)
    assert stats.sent == 10
    assert stats.timeouts == 10
    assert stats.completed == 0
    assert stats.elapsed < 0.5 + 0.3 + 0.5
    assert_every_request_accounted_for(stats)


def test_keeps_connections_alive_and_reads_chunked_bodies() -> None:
    with ScriptedServer() as server:
        stats = run_load(server.url + "/chunked", rps=200, duration=0.5, concurrency=2)
        connections = server.connections
    assert stats.completed == 100 and stats.by_status == {200: 100}
    assert connections <= 2


def test_reconnects_after_connection_close() -> None:
    with ScriptedServer() as server:
        stats = run_load(server.url + "/close", rps=100, duration=0.3, concurrency=2)
        connections = server.connections
    assert stats.completed == 30 and stats.connection_errors == 0
    assert connections == 30


def test_retries_once_when_an_idle_keep_alive_connection_was_closed() -> None:
    """A server that drops the connection after each answer is not a failure of the target."""
    with ScriptedServer() as server:
        stats = run_load(server.url + "/drop", rps=100, duration=0.3, concurrency=1)
        seen = len(server.seen)
    assert stats.completed == 30 and stats.connection_errors == 0
    assert seen == 30


def test_sends_method_headers_and_body() -> None:
    with ScriptedServer() as server:
        run_load(
            server.url + "/echo?x=1",
            rps=50,
            duration=0.1,
            method="POST",
            headers={"X-Canary": "1", "Content-Type": "application/json"},
            body=b'{"a": 1}',
        )
        seen = list(server.seen)
    assert len(seen) == 5
    first = seen[0]
    assert (first.method, first.path, first.body) == ("POST", "/echo?x=1", b'{"a": 1}')
    assert first.headers["x-canary"] == "1"
    assert first.headers["host"] == f"127.0.0.1:{server.port}"


def test_reports_progress_about_once_a_second() -> None:
    snapshots: list[LoadStats] = []
    with ScriptedServer() as server:
        final = run_load(server.url, rps=100, duration=2.5, on_progress=snapshots.append)
    assert len(snapshots) == 2
    assert snapshots[0].sent < snapshots[1].sent < final.sent == 250
    assert snapshots[0].elapsed == pytest.approx(1.0, abs=0.2)


def test_an_exception_in_on_progress_ends_the_run_and_is_raised() -> None:
    def fail(stats: LoadStats) -> None:
        raise RuntimeError("progress sink broke")

    with ScriptedServer() as server, pytest.raises(RuntimeError, match="sink broke"):
        run_load(server.url, rps=100, duration=5.0, on_progress=fail)


def test_runs_when_called_from_inside_an_event_loop() -> None:
    async def caller(url: str) -> LoadStats:
        return run_load(url, rps=100, duration=0.2)

    with ScriptedServer() as server:
        stats = asyncio.run(caller(server.url))
    assert stats.completed == 20


def test_statistics_serialise_to_json() -> None:
    with ScriptedServer(version="v9") as server:
        stats = run_load(server.url, rps=100, duration=0.1, count_header="x-version")
    data = json.loads(json.dumps(stats.to_dict()))
    assert data["sent"] == 10
    assert data["by_status"] == {"200": 10}
    assert data["header_counts"] == {"v9": 10}
    assert set(data["latency_ms"]) == {"p50", "p95", "p99", "max"}


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/x", "file:///etc/passwd", "127.0.0.1:8080", "unix:///run/x.sock", "http://"],
)
def test_refuses_anything_but_an_http_url(url: str) -> None:
    with pytest.raises(InputError):
        run_load(url, rps=10, duration=1.0)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"rps": 0, "duration": 1.0}, "rps"),
        ({"rps": 10, "duration": -1.0}, "duration"),
        ({"rps": 10, "duration": 1.0, "timeout": 0}, "timeout"),
        ({"rps": 10, "duration": 1.0, "concurrency": 0}, "concurrency"),
        ({"rps": 10, "duration": 1.0, "max_requests": -1}, "max_requests"),
        ({"rps": 10, "duration": 1.0, "headers": {"X-A": "1\r\nX-B: 2"}}, "line breaks"),
        ({"rps": 10, "duration": 1.0, "method": "GET /x"}, "method"),
    ],
)
def test_refuses_bounds_that_are_not_positive_and_unsafe_headers(
    kwargs: dict[str, object], word: str
) -> None:
    with pytest.raises(InputError, match=word):
        run_load("http://127.0.0.1:9/", **kwargs)  # type: ignore[arg-type]
