"""Webhook notifications: a JSON POST to each configured URL when a release ends.

A notification is a side effect that must never change a rollout's outcome, so
``send_webhooks`` never raises for a delivery that fails: each URL gets a ``Delivery`` saying
whether it arrived, the HTTP status, what went wrong and how many attempts were made. A
connection error or a 5xx answer is retried once after a short backoff (the receiver may be
restarting); a 4xx answer, a redirect, or a request that timed out after it was sent is not
(repeating a POST the receiver may already have acted on is worse than reporting it).

URLs are posted one after another, so the whole call takes at most about
``len(urls) * (2 * timeout + backoff)``. The backoff goes through the injected ``Clock``, so
tests pin it without waiting.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from zerodown.core.clock import Clock, SystemClock
from zerodown.core.errors import InputError

__all__ = ["DEFAULT_BACKOFF_SECONDS", "Delivery", "send_webhooks"]

DEFAULT_BACKOFF_SECONDS: Final = 0.5
"""Wait before the one retry."""
_USER_AGENT: Final = "zerodown-notify"


@dataclass(frozen=True)
class Delivery:
    """What happened to one webhook."""

    url: str
    ok: bool
    """True when the receiver answered 2xx."""
    status: int | None
    """The last HTTP status received; None if no answer came."""
    error: str | None
    """Why the delivery failed (None when ``ok``)."""
    attempts: int
    """Requests made: 1, 2 after a retry, 0 for a URL that was not tried."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "ok": self.ok,
            "status": self.status,
            "error": self.error,
            "attempts": self.attempts,
        }


def send_webhooks(
    urls: Sequence[str],
    payload: Mapping[str, Any],
    *,
    timeout: float,
    backoff: float = DEFAULT_BACKOFF_SECONDS,
    clock: Clock | None = None,
) -> list[Delivery]:
    """POST ``payload`` as JSON to each of ``urls``; one ``Delivery`` per URL, in order.

    ``timeout`` bounds each attempt (connect, send and answer). Values JSON cannot hold are
    written as text (datetimes in ISO 8601). ``InputError`` only for a ``timeout`` or
    ``backoff`` that is not a positive number; a failed delivery is a result, never raised.
    """
    if not (math.isfinite(timeout) and timeout > 0):
        raise InputError(f"timeout must be a number of seconds above 0, got {timeout!r}")
    if not (math.isfinite(backoff) and backoff >= 0):
        raise InputError(f"backoff must be a number of seconds >= 0, got {backoff!r}")
    clock = clock or SystemClock()
    body = json.dumps(payload, default=_json_default, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": _USER_AGENT}
    deliveries: list[Delivery] = []
    with httpx.Client(timeout=timeout, follow_redirects=False, headers=headers) as client:
        for url in urls:
            deliveries.append(
                _deliver(client, url, body, timeout=timeout, backoff=backoff, clock=clock)
            )
    return deliveries


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, PurePath):
        return str(value)
    return str(value)


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (reading it validates the port)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _deliver(
    client: httpx.Client,
    url: str,
    body: bytes,
    *,
    timeout: float,
    backoff: float,
    clock: Clock,
) -> Delivery:
    if not _is_http_url(url):
        return Delivery(url, ok=False, status=None, error="not an http(s) URL", attempts=0)
    status: int | None = None
    error: str | None = None
    for attempt in (1, 2):
        if attempt == 2:
            clock.sleep(backoff)
        retry = False
        try:
            response = client.post(url, content=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            status, error, retry = None, _connect_error(exc, timeout), True
        except httpx.RemoteProtocolError:
            # Typically a kept-alive connection the receiver had closed: nothing was handled.
            status, error, retry = (
                None,
                "the receiver closed the connection without answering",
                True,
            )
        except httpx.TimeoutException:
            status, error = None, f"no answer within {timeout:g}s"
        except httpx.HTTPError as exc:
            status, error = None, f"request failed: {exc or type(exc).__name__}"
        else:
            status = response.status_code
            if 200 <= status < 300:
                return Delivery(url, ok=True, status=status, error=None, attempts=attempt)
            error = f"HTTP {status}"
            retry = status >= 500
        if not retry:
            return Delivery(url, ok=False, status=status, error=error, attempts=attempt)
    return Delivery(url, ok=False, status=status, error=error, attempts=2)


def _connect_error(exc: httpx.HTTPError, timeout: float) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"cannot connect: no answer within {timeout:g}s"
    cause = exc.__cause__ or exc.__context__
    text = str(cause or exc)
    if isinstance(cause, ConnectionRefusedError) or "refused" in text.lower():
        return "cannot connect: connection refused"
    return f"cannot connect: {text or type(exc).__name__}"
