"""Webhook deliveries against real HTTP servers on 127.0.0.1: JSON bodies as sent, one retry
for connection errors and 5xx answers, and every failure reported, never raised."""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum

import pytest

from tests.integration.ops.servers import ScriptedServer, closed_port
from zerodown.core.errors import InputError
from zerodown.ops.notify import Delivery, send_webhooks
from zerodown.testing import FrozenClock

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

PAYLOAD = {"service": "web", "revision": 7, "outcome": "rolled_back", "reason": "error rate 9 %"}


def test_posts_the_payload_as_json_to_every_webhook() -> None:
    clock = FrozenClock()
    with ScriptedServer() as first, ScriptedServer() as second:
        urls = [first.url + "/hook", second.url + "/other?token=abc"]
        deliveries = send_webhooks(urls, PAYLOAD, timeout=5.0, clock=clock)
        seen = [first.seen, second.seen]
    assert deliveries == [
        Delivery(urls[0], ok=True, status=200, error=None, attempts=1),
        Delivery(urls[1], ok=True, status=200, error=None, attempts=1),
    ]
    for requests, path in zip(seen, ["/hook", "/other?token=abc"], strict=True):
        (request,) = requests
        assert (request.method, request.path) == ("POST", path)
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.body) == PAYLOAD
    assert clock.sleeps == []  # no retry, no wait


def test_a_500_is_retried_once_after_the_backoff() -> None:
    clock = FrozenClock()
    with ScriptedServer(statuses=[500, 200]) as server:
        (delivery,) = send_webhooks([server.url + "/hook"], PAYLOAD, timeout=5.0, clock=clock)
        bodies = [json.loads(request.body) for request in server.seen]
    assert delivery == Delivery(server.url + "/hook", ok=True, status=200, error=None, attempts=2)
    assert bodies == [PAYLOAD, PAYLOAD]
    assert clock.sleeps == [0.5]


def test_a_second_5xx_is_a_failed_delivery_not_an_exception() -> None:
    clock = FrozenClock()
    with ScriptedServer(statuses=[503, 502, 200]) as server:
        (delivery,) = send_webhooks(
            [server.url + "/hook"], PAYLOAD, timeout=5.0, backoff=0.1, clock=clock
        )
        requests = len(server.seen)
    assert (delivery.ok, delivery.status, delivery.error, delivery.attempts) == (
        False,
        502,
        "HTTP 502",
        2,
    )
    assert requests == 2
    assert clock.sleeps == [0.1]


def test_a_4xx_is_not_retried() -> None:
    with ScriptedServer(statuses=[404]) as server:
        (delivery,) = send_webhooks([server.url + "/hook"], PAYLOAD, timeout=5.0)
        requests = len(server.seen)
    assert (delivery.ok, delivery.status, delivery.error, delivery.attempts) == (
        False,
        404,
        "HTTP 404",
        1,
    )
    assert requests == 1


def test_a_refused_connection_is_retried_once_and_reported() -> None:
    clock = FrozenClock()
    with closed_port() as port:
        url = f"http://127.0.0.1:{port}/hook"
        (delivery,) = send_webhooks([url], PAYLOAD, timeout=2.0, clock=clock)
    assert not delivery.ok
    assert delivery.status is None
    assert delivery.error == "cannot connect: connection refused"
    assert delivery.attempts == 2
    assert clock.sleeps == [0.5]


def test_a_receiver_that_never_answers_times_out_without_a_retry() -> None:
    """The POST may have been acted on, so it is not sent twice."""
    with ScriptedServer() as server:
        (delivery,) = send_webhooks([server.url + "/hang"], PAYLOAD, timeout=0.3)
        requests = len(server.seen)
    assert (delivery.ok, delivery.status, delivery.attempts) == (False, None, 1)
    assert delivery.error == "no answer within 0.3s"
    assert requests == 1


def test_one_failing_webhook_does_not_stop_the_others() -> None:
    clock = FrozenClock()
    with closed_port() as port, ScriptedServer() as server:
        urls = [f"http://127.0.0.1:{port}/a", "ftp://127.0.0.1/b", server.url + "/c"]
        deliveries = send_webhooks(urls, PAYLOAD, timeout=2.0, clock=clock)
    assert [d.url for d in deliveries] == urls
    assert [d.ok for d in deliveries] == [False, False, True]
    assert deliveries[1] == Delivery(
        urls[1], ok=False, status=None, error="not an http(s) URL", attempts=0
    )


def test_values_json_cannot_hold_are_sent_as_text() -> None:
    class Outcome(StrEnum):
        FAILED = "failed"

    payload = {
        "at": dt.datetime(2026, 6, 10, 8, 0, tzinfo=dt.UTC),
        "outcome": Outcome.FAILED,
        "versions": {"v1"},
        "note": "ünïcode",
    }
    with ScriptedServer() as server:
        (delivery,) = send_webhooks([server.url + "/hook"], payload, timeout=5.0)
        body = json.loads(server.seen[0].body)
    assert delivery.ok
    assert body == {
        "at": "2026-06-10T08:00:00+00:00",
        "outcome": "failed",
        "versions": ["v1"],
        "note": "ünïcode",
    }


def test_no_urls_sends_nothing() -> None:
    assert send_webhooks([], PAYLOAD, timeout=1.0) == []


@pytest.mark.parametrize(("timeout", "backoff"), [(0.0, 0.5), (float("nan"), 0.5), (1.0, -1.0)])
def test_bounds_that_make_no_sense_are_refused(timeout: float, backoff: float) -> None:
    with pytest.raises(InputError):
        send_webhooks(["http://127.0.0.1:9/h"], PAYLOAD, timeout=timeout, backoff=backoff)


def test_delivery_serialises() -> None:
    delivery = Delivery("http://127.0.0.1:9/h", ok=False, status=500, error="HTTP 500", attempts=2)
    assert json.loads(json.dumps(delivery.to_dict())) == {
        "url": "http://127.0.0.1:9/h",
        "ok": False,
        "status": 500,
        "error": "HTTP 500",
        "attempts": 2,
    }
