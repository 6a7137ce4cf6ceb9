"""The client side of the data plane: one ``ClientConnection`` per accepted TCP connection.

Built on ``asyncio.Protocol`` and httptools because that is what matched HAProxy on this kind of
machine (see the lab notes): no streams, no per-chunk coroutines, and the request head is rebuilt
once into a single ``bytes`` with a ``%`` format.

A request's life: httptools calls ``on_message_begin`` .. ``on_message_complete`` while
``data_received`` feeds it. Its head is checked (one Content-Length, no Content-Length together
with Transfer-Encoding, Transfer-Encoding exactly ``chunked``, one Host, HTTP/1.0 or 1.1, size
limits) and rebuilt with hop-by-hop headers dropped and ``X-Forwarded-*`` added. The request is
dispatched only after ``feed_data`` returns, so a request that turns out malformed anywhere in
the bytes received so far is answered 400 without an instance ever seeing a byte of it.
Bodies are streamed: chunked bodies are re-chunked piece by piece, others forwarded as they come.
Pipelined requests wait in a short queue and are answered in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import httptools

from zerodown.traffic.proxy.upstream import open_upstream

if TYPE_CHECKING:
    from zerodown.traffic.proxy.balancer import BackendState, GroupState
    from zerodown.traffic.proxy.dataplane import ServiceRuntime
    from zerodown.traffic.proxy.upstream import UpstreamConnection

__all__ = ["ClientConnection", "Exchange"]

log = logging.getLogger(__name__)

# Request headers the proxy handles itself instead of copying them through.
_SPECIAL = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"host",
        b"cookie",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
    }
)
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
_REASONS = {
    400: b"Bad Request",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Content Too Large",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}
_MAX_BUFFERED = 1024 * 1024  # request body bytes held while an instance connection opens
_MAX_PIPELINED = 32
_INF = float("inf")


class Reject(Exception):
    """Raised inside a parser callback to answer the request with ``status`` and close."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Exchange:
    """One request and its response; lives from ``on_message_begin`` to the response's end.

    No ``__slots__``: the class attributes are the defaults, so creating one per request
    assigns only the four fields that are always different.
    """

    url = b""
    head = b""
    buffered = 0
    body_bytes = 0
    chunked = False
    cl_count = 0
    content_length = b"0"
    te: bytes | None = None
    host: bytes | None = None
    host_count = 0
    cookie: bytes | None = None
    xff: bytes | None = None
    upgrade: bytes | None = None
    rule_values: dict[bytes, bytes] | None = None
    http11 = True
    keep_alive = True
    is_head = False
    idempotent = False
    request_done = False
    dispatched = False
    response_started = False
    status = 0
    set_cookie = b""
    group: GroupState | None = None
    backend: BackendState | None = None
    upstream: UpstreamConnection | None = None
    tried: list[BackendState] | None = None

    def __init__(self, client: ClientConnection, start: float) -> None:
        self.client = client
        self.start = start
        self.headers = bytearray()
        self.body: list[bytes] = []


class ClientConnection(asyncio.Protocol):
    """One client TCP connection to one service's listener."""

    __slots__ = (
        "active",
        "closed",
        "closing",
        "deadline",
        "head_size",
        "limits",
        "max_head",
        "parser",
        "parsing",
        "paused_for_buffer",
        "queue",
        "rule_headers",
        "service",
        "transport",
        "tunnel",
        "xff_value",
    )

    def __init__(self, service: ServiceRuntime) -> None:
        self.service = service
        self.limits = service.plane.limits
        self.max_head = self.limits.max_header_bytes
        self.transport: Any = None
        self.parser = httptools.HttpRequestParser(self)
        self.parsing: Exchange | None = None  # the request being parsed
        self.active: Exchange | None = None  # the request being answered
        self.queue: deque[Exchange] | None = None  # pipelined requests waiting their turn
        self.tunnel: Any = None  # after an upgrade: the instance's transport
        self.closing = False  # answer the current request, then close
        self.closed = False
        self.paused_for_buffer = False
        self.head_size = 0
        self.rule_headers: frozenset[bytes] = frozenset()
        self.xff_value = b""
        self.deadline = _INF

    # --- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.xff_value = (peer[0] if peer else "unknown").encode()
        self.service.clients.add(self)
        self.deadline = time.monotonic() + self.limits.header_timeout
        if self.service.closing:
            self.closing = True
            self.deadline = time.monotonic() + self.limits.shutdown_idle_grace

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.service.clients.discard(self)
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
        ex = self.active
        if ex is not None and ex.upstream is not None:
            ex.upstream.abort_for_client()
        elif ex is not None and ex.backend is not None and ex.dispatched:
            # Still connecting: the connect task sees ``closed`` and gives up.
            pass

    def eof_received(self) -> bool | None:
        # A client that half-closes after its request still gets the response.
        self.closing = True
        if self.active is not None:
            return True
        return None

    def pause_writing(self) -> None:
        ex = self.active
        if ex is not None and ex.upstream is not None:
            ex.upstream.transport.pause_reading()
        elif self.tunnel is not None:
            self.tunnel.pause_reading()

    def resume_writing(self) -> None:
        ex = self.active
        if ex is not None and ex.upstream is not None:
            ex.upstream.transport.resume_reading()
        elif self.tunnel is not None:
            self.tunnel.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._start_upgrade(data[upgrade.args[0] :])
            return
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            if isinstance(cause, Reject):
                self.reject(cause.status)
            else:
                log.error("request handling failed", exc_info=cause)
                self.reject(400)
            return
        except httptools.HttpParserError:
            self.reject(400)
            return
        ex = self.active
        if ex is not None and not ex.dispatched:
            self._dispatch(ex)

    # --- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        now = time.monotonic()
        ex = Exchange(self, now)
        self.parsing = ex
        self.head_size = 0
        self.rule_headers = self.service.table.rule_headers
        if self.active is None:
            self.deadline = now + self.limits.header_timeout

    def on_url(self, url: bytes) -> None:
        self.head_size += len(url)
        if self.head_size > self.max_head:
            raise Reject(400, "request line too long")
        ex = self.parsing
        if ex is not None:
            ex.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        size = self.head_size + len(name) + len(value) + 4
        self.head_size = size
        if size > self.max_head:
            raise Reject(400, "headers too large")
        ex = self.parsing
        assert ex is not None
        lname = name.lower()
        if self.rule_headers and lname in self.rule_headers:
            if ex.rule_values is None:
                ex.rule_values = {}
            ex.rule_values[lname] = value
        if lname not in _SPECIAL:
            ex.headers += b"%s: %s\r\n" % (name, value)
        elif lname == b"content-length":
            ex.cl_count += 1
            ex.content_length = value
            ex.headers += b"Content-Length: %s\r\n" % value
        elif lname == b"host":
            ex.host_count += 1
            ex.host = value
            ex.headers += b"Host: %s\r\n" % value
        elif lname == b"cookie":
            ex.cookie = value if ex.cookie is None else ex.cookie + b"; " + value
            ex.headers += b"Cookie: %s\r\n" % value
        elif lname == b"transfer-encoding":
            if ex.te is not None:
                raise Reject(400, "repeated Transfer-Encoding")
            ex.te = value
        elif lname == b"x-forwarded-for":
            ex.xff = value if ex.xff is None else ex.xff + b", " + value
        elif lname == b"upgrade":
            ex.upgrade = value
        # Connection, Keep-Alive, Proxy-Connection, TE, Trailer and the client's own
        # X-Forwarded-Proto/-Host are hop-by-hop or ours to set: dropped.

    def on_headers_complete(self) -> None:
        ex = self.parsing
        assert ex is not None
        parser = self.parser
        version = parser.get_http_version()
        if version == "1.1":
            if ex.host_count != 1:
                raise Reject(400, "HTTP/1.1 needs exactly one Host header")
        elif version == "1.0":
            ex.http11 = False
            if ex.host_count > 1:
                raise Reject(400, "repeated Host header")
        else:
            raise Reject(400, f"HTTP version {version} not supported")
        te = ex.te
        if te is not None:
            if ex.cl_count:
                raise Reject(400, "Content-Length with Transfer-Encoding")
            if te.strip().lower() != b"chunked":
                raise Reject(400, "Transfer-Encoding other than chunked")
            ex.chunked = True
            framing = b"Transfer-Encoding: chunked\r\n"
        else:
            framing = b""
            if ex.cl_count > 1:
                raise Reject(400, "repeated Content-Length")
        method = parser.get_method()
        if method == b"CONNECT":
            raise Reject(405, "CONNECT is not supported")
        ex.is_head = method == b"HEAD"
        ex.idempotent = method in _IDEMPOTENT
        ex.keep_alive = parser.should_keep_alive()
        # llhttp has checked that Content-Length is all digits.
        if not ex.chunked and ex.cl_count and int(ex.content_length) > self.limits.max_body_bytes:
            raise Reject(413, "request body too large")
        xff = self.xff_value if ex.xff is None else ex.xff + b", " + self.xff_value
        if ex.upgrade is None:
            connection = b"Connection: keep-alive\r\n"
        elif parser.should_upgrade():
            connection = b"Connection: Upgrade\r\nUpgrade: %s\r\n" % ex.upgrade
        else:
            ex.upgrade = None
            connection = b"Connection: keep-alive\r\n"
        if ex.host is not None:
            ex.head = (
                b"%s %s HTTP/1.1\r\n%s%sX-Forwarded-For: %s\r\nX-Forwarded-Proto: http\r\n"
                b"X-Forwarded-Host: %s\r\n%s\r\n"
                % (method, ex.url, ex.headers, framing, xff, ex.host, connection)
            )
        else:
            ex.head = (
                b"%s %s HTTP/1.1\r\n%s%sX-Forwarded-For: %s\r\nX-Forwarded-Proto: http\r\n%s\r\n"
                % (method, ex.url, ex.headers, framing, xff, connection)
            )
        self.deadline = _INF
        if self.active is None:
            self.active = ex
        else:
            if self.queue is None:
                self.queue = deque()
            self.queue.append(ex)
            if len(self.queue) > _MAX_PIPELINED:
                self.transport.pause_reading()

    def on_body(self, data: bytes) -> None:
        ex = self.parsing
        assert ex is not None
        ex.body_bytes += len(data)
        if ex.body_bytes > self.limits.max_body_bytes:
            raise Reject(413, "request body too large")
        if ex.chunked:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        upstream = ex.upstream
        if upstream is not None and upstream.ex is ex:
            upstream.transport.write(data)
        else:
            ex.body.append(data)
            ex.buffered += len(data)
            if ex.buffered > _MAX_BUFFERED and not self.paused_for_buffer:
                self.paused_for_buffer = True
                self.transport.pause_reading()

    def on_message_complete(self) -> None:
        ex = self.parsing
        assert ex is not None
        self.parsing = None
        ex.request_done = True
        if not self.parser.should_keep_alive():
            ex.keep_alive = False
        if ex.chunked:
            upstream = ex.upstream
            if upstream is not None and upstream.ex is ex:
                upstream.transport.write(b"0\r\n\r\n")
            else:
                ex.body.append(b"0\r\n\r\n")

    # --- routing and dispatch ---------------------------------------------------------------

    def _dispatch(self, ex: Exchange) -> None:
        ex.dispatched = True
        service = self.service
        table = service.table
        if ex.rule_values is not None or (ex.cookie is not None and table.needs_cookie):
            group, give_cookie = table.choose(ex.rule_values, ex.cookie)
        else:
            # ``table.weighted()``, inlined for the common case
            schedule = table.schedule
            if schedule:
                pos = table.pos
                table.pos = pos + 1 if pos + 1 < len(schedule) else 0
                group = schedule[pos]
            else:
                group = None
            give_cookie = table.sticky
        if group is None:
            service.unrouted += 1
            self.respond_error(ex, 503)
            return
        ex.group = group
        if give_cookie:
            ex.set_cookie = group.set_cookie
        backend = group.next_backend()
        assert backend is not None  # groups in the schedule or picked by rules have backends
        self.send_to(ex, backend)

    def send_to(self, ex: Exchange, backend: BackendState) -> None:
        """Hand ``ex`` to ``backend``: a pooled connection if there is one, else a new one."""
        ex.backend = backend
        backend.counters.in_flight += 1
        idle = backend.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.attach(ex, reused=True)
                return
        open_upstream(self.service.plane, ex, backend)

    def retry_elsewhere(self, ex: Exchange, failed: BackendState) -> bool:
        """After a failure before any byte was exchanged: try another instance. False if none."""
        if self.closed:
            return True
        tried = ex.tried
        if tried is None:
            tried = ex.tried = []
        tried.append(failed)
        if len(tried) > 3:
            return False
        group = ex.group
        if group is None:
            return False
        backend = group.other_backend(tried)
        if backend is None:
            return False
        self.send_to(ex, backend)
        return True

    def retry_stale(self, ex: Exchange, backend: BackendState) -> bool:
        """A pooled connection died before answering: resend on a new connection, same instance."""
        if self.closed:
            return True
        tried = ex.tried
        if tried is None:
            tried = ex.tried = []
        tried.append(backend)
        if len(tried) > 3:
            return False
        ex.backend = backend
        backend.counters.in_flight += 1
        open_upstream(self.service.plane, ex, backend)
        return True

    def upstream_ready(self, ex: Exchange) -> None:
        """The instance connection took the buffered body: read from the client again."""
        if self.paused_for_buffer:
            self.paused_for_buffer = False
            if not self.closed:
                self.transport.resume_reading()

    # --- the end of an exchange -----------------------------------------------------------

    def response_done(self, ex: Exchange, now: float) -> None:
        """The response to ``ex`` was written out completely."""
        self.active = None
        if self.closed:
            return
        if not ex.keep_alive or not ex.request_done:
            self.transport.close()
            self.closed = True
            return
        queue = self.queue
        if queue:
            nxt = queue.popleft()
            self.active = nxt
            if len(queue) <= _MAX_PIPELINED:
                self.transport.resume_reading()
            self._dispatch(nxt)
        elif self.closing or self.service.closing:
            # The response promised keep-alive before we started closing: closing right now
            # could cut a request already on its way. Give the client a moment; a request in
            # that moment is answered with "Connection: close".
            self.deadline = now + self.limits.shutdown_idle_grace
        else:
            self.deadline = now + self.limits.keepalive_timeout

    def should_close_after(self, ex: Exchange) -> bool:
        """Whether the response to ``ex`` ends this connection (it then says so)."""
        return not ex.keep_alive or self.closing or not ex.request_done or self.service.closing

    def respond_error(self, ex: Exchange | None, status: int) -> None:
        """Answer with a short error from the proxy itself and close the connection."""
        if self.closed:
            return
        reason = _REASONS.get(status, b"Error")
        body = b"%d %s\n" % (status, reason)
        self.transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (status, reason, len(body), body)
        )
        self.transport.close()
        self.closed = True
        self.active = None

    def reject(self, status: int) -> None:
        """A request was refused before routing (malformed or too large)."""
        self.service.rejected += 1
        ex = self.active
        if ex is not None and ex.upstream is not None:
            ex.upstream.abort_for_client()
        self.respond_error(None, status)

    def expire(self, now: float) -> None:
        """Called by the sweeper when ``deadline`` has passed."""
        if self.closed or self.active is not None:
            return
        if self.parsing is not None:
            self.service.rejected += 1
            self.respond_error(None, 408)
        else:
            self.transport.close()
            self.closed = True

    def close_idle(self) -> None:
        """Close the connection if no request is being received or answered."""
        if self.active is None and self.parsing is None and not self.closed:
            self.transport.close()
            self.closed = True

    # --- upgrades (WebSocket and friends) ---------------------------------------------------

    def _start_upgrade(self, rest: bytes) -> None:
        ex = self.active
        if ex is None or ex.upgrade is None:
            self.reject(400)
            return
        if rest:
            ex.body.append(rest)
        # Until the instance answers, further client bytes wait in ``ex.body``; the parser is
        # not fed again (``tunnel`` set by the instance side on 101, or the connection closes).
        self.parser = _Swallow(ex)  # type: ignore[assignment]
        if not ex.dispatched:
            self._dispatch(ex)

    def start_tunnel(self, upstream_transport: Any) -> None:
        self.tunnel = upstream_transport
        self.deadline = _INF


class _Swallow:
    """Stands in for the parser between an upgrade request and the instance's answer."""

    __slots__ = ("ex",)

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex

    def feed_data(self, data: bytes) -> None:
        upstream = self.ex.upstream
        if upstream is not None and upstream.ex is self.ex:
            upstream.transport.write(data)
        else:
            self.ex.body.append(data)
