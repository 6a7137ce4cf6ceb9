"""The live stream ``GET /v1/services/{name}/stream`` through real HTTP from a real controller.

Events arrive with their ids, snapshots carry the release and the per-version figures, a
client resumes with ``Last-Event-ID``, bad input is a 400 naming the field, and a controller
that stops ends its open streams with ``event: shutdown`` instead of waiting on them.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.zerodown import Controller, wait_until
from zerodown.core.state import StateDir

pytestmark = pytest.mark.integration


@dataclass
class Message:
    event: str = "message"
    id: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


def _connection(controller: Controller) -> tuple[str, dict[str, str]]:
    state = StateDir(str(controller.env.home))
    info, token = state.read_controller(), state.token()
    assert info is not None and token is not None
    return info.url, {"Authorization": f"Bearer {token}"}


def _messages(lines: Iterator[str]) -> Iterator[Message]:
    """Server-Sent Events parsed as the standard says (comments kept for the test)."""
    current = Message()
    data: list[str] = []
    for line in lines:
        if line == "":
            if data or current.comments or current.id is not None or current.event != "message":
                current.data = "\n".join(data)
                yield current
            current, data = Message(), []
            continue
        if line.startswith(":"):
            current.comments.append(line[1:].strip())
            continue
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "data":
            data.append(value)
        elif key == "event":
            current.event = value
        elif key == "id":
            current.id = value


@contextmanager
def _stream(
    url: str, headers: dict[str, str], path: str, **extra: str
) -> Iterator[Iterator[Message]]:
    # The read timeout bounds every wait: a stream that goes silent fails the test.
    with (
        httpx.Client(base_url=url, timeout=httpx.Timeout(10.0)) as client,
        client.stream("GET", path, headers={**headers, **extra}) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        yield _messages(response.iter_lines())


def _take(messages: Iterator[Message], count: int, kind: str, *, timeout: float) -> list[Message]:
    """The next ``count`` messages of ``kind`` (others skipped), within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    taken: list[Message] = []
    for message in messages:
        if message.event == kind:
            taken.append(message)
            if len(taken) == count:
                return taken
        assert time.monotonic() < deadline, f"only {len(taken)} {kind} message(s) in {timeout}s"
    raise AssertionError(f"the stream ended after {len(taken)} {kind} message(s)")


@pytest.fixture
def service(controller: Controller, tmp_path: Path) -> Controller:
    env = controller.env
    spec = env.write_spec(tmp_path, replicas=1)
    result = env.cli("up", str(spec), "--version", "v1")
    assert result.code == 0, result.stderr
    return controller


def test_events_arrive_with_ids_then_snapshots_with_the_release(service: Controller) -> None:
    url, auth = _connection(service)
    logged = httpx.get(f"{url}/v1/events", params={"service": "demo"}, headers=auth).json()
    expected = logged["events"]
    assert len(expected) >= 4
    with _stream(url, auth, "/v1/services/demo/stream?interval=0.2") as messages:
        first = next(messages)
        assert "live stream of demo" in first.comments
        events = _take(messages, len(expected), "event", timeout=20)
        assert [m.json() for m in events] == expected
        assert [m.id for m in events] == [str(e["id"]) for e in expected]
        snapshots = _take(messages, 2, "snapshot", timeout=20)
    snap = snapshots[-1].json()
    assert snap["service"]["name"] == "demo"
    assert snap["release"]["revision"] == 1 and snap["release"]["status"] == "succeeded"
    assert [(v["revision"], v["version"], v["share"]) for v in snap["versions"]] == [
        (1, "v1", 100.0)
    ]
    assert len(snap["instances"]) == 1 and snap["instances"][0]["state"] == "running"
    assert snap["traffic_measured"] is True


def test_a_new_event_arrives_live_and_a_client_resumes_with_last_event_id(
    service: Controller,
) -> None:
    env = service.env
    url, auth = _connection(service)
    logged = httpx.get(f"{url}/v1/events", params={"service": "demo"}, headers=auth).json()
    ids = [e["id"] for e in logged["events"]]
    newest = ids[-1]
    with _stream(url, auth, f"/v1/services/demo/stream?after={newest}") as messages:
        report = env.cli("report", "demo", "--json")
        assert report.code == 0, report.stderr
        (arrived,) = _take(messages, 1, "event", timeout=20)
    written = arrived.json()
    assert written["kind"] == "report.written" and int(arrived.id or 0) > newest

    # Last-Event-ID (what a browser sends on reconnect) wins over ?after=.
    with _stream(
        url, auth, "/v1/services/demo/stream?after=0", **{"Last-Event-ID": str(ids[2])}
    ) as messages:
        resumed = _take(messages, len(ids) - 3 + 1, "event", timeout=20)
    assert [int(m.id or 0) for m in resumed] == [*ids[3:], written["id"]]


def test_the_stream_refuses_bad_requests_with_the_field_at_fault(service: Controller) -> None:
    url, auth = _connection(service)
    with httpx.Client(base_url=url, timeout=10) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            response = client.get("/v1/services/demo/stream", headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthorized"
        missing = client.get("/v1/services/nosuch/stream", headers=auth)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        cases = [
            ("/v1/services/demo/stream", {"Last-Event-ID": "abc"}, "Last-Event-ID"),
            ("/v1/services/demo/stream?after=-1", {}, "after"),
            ("/v1/services/demo/stream?interval=0.01", {}, "interval"),
            ("/v1/services/demo/stream?interval=nan", {}, "interval"),
            ("/v1/services/Bad/stream", {}, "name"),
        ]
        for path, headers, fault in cases:
            response = client.get(path, headers={**auth, **headers})
            assert response.status_code == 400, (path, response.text)
            error = response.json()["error"]
            assert error["code"] == "bad_input" and error["field"] == fault, error


def test_a_stopping_controller_ends_its_open_streams(service: Controller) -> None:
    """SIGTERM with two streams open: each gets ``event: shutdown`` and the process exits
    (uvicorn would otherwise wait for the responses to finish)."""
    env = service.env
    url, auth = _connection(service)
    assert env.cli("stop", "demo").code == 0  # nothing may outlive the controller here
    received: list[list[str]] = [[], []]
    connected = [threading.Event(), threading.Event()]

    def follow(index: int) -> None:
        with _stream(url, auth, "/v1/services/demo/stream?interval=0.5") as messages:
            for message in messages:
                received[index].append(message.event)
                if message.event == "snapshot":
                    connected[index].set()

    threads = [threading.Thread(target=follow, args=(i,), daemon=True) for i in range(2)]
    for thread in threads:
        thread.start()
    for event in connected:
        assert event.wait(20), "a stream did not start"
    service.process.send_signal(signal.SIGTERM)
    service.process.wait(timeout=30)
    for thread in threads:
        thread.join(timeout=20)
        assert not thread.is_alive()
    for events in received:
        assert events[-1] == "shutdown", events
    wait_until(lambda: service.process.poll() is not None, timeout=5, what="the exit")
