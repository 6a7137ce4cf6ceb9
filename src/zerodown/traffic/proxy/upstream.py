"""The instance side of the data plane: pooled keep-alive connections to backends.

An ``UpstreamConnection`` carries one exchange at a time. It writes the rebuilt request head
(and any buffered body), parses the response with httptools, rewrites its head (hop-by-hop
headers dropped, framing chosen for the client, the sticky cookie added) and streams the body
to the client, re-chunking where the client needs chunks. ``should_keep_alive()`` is read in
``on_headers_complete``: httptools reports False once the message is complete, which would
silently turn off pooling (lab notes). When the response ends the connection goes back to its
backend's idle list (LIFO) unless the backend was removed meanwhile.

Failures: a connect error is counted and the request retried on another instance of the same
group; a pooled connection that dies before answering an idempotent, body-less request is
retried the same way (the instance closed an idle connection as we reused it); anything else
after bytes were sent is a 502 (or 504 on timeout), or an aborted client connection if the
response had already started.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import TYPE_CHECKING, Any

import httptools

from zerodown.traffic.base import MAX_LATENCY_US

if TYPE_CHECKING:
    from zerodown.traffic.proxy.balancer import BackendState
    from zerodown.traffic.proxy.dataplane import DataPlane
    from zerodown.traffic.proxy.server import Exchange

__all__ = ["UpstreamConnection", "open_upstream", "record"]

# Response header lines that are hop-by-hop (or framing the proxy sets itself).
_HOP_LINES = re.compile(
    rb"\r\n(?:connection|keep-alive|proxy-connection|transfer-encoding|trailer|te|upgrade)"
    rb"[ \t]*:[^\r]*",
    re.IGNORECASE,
)
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:", re.IGNORECASE)
_TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding[ \t]*:", re.IGNORECASE)
_UPGRADE = re.compile(rb"\r\nupgrade[ \t]*:([^\r]*)", re.IGNORECASE)
_INF = float("inf")


def record(backend: BackendState, ex: Exchange, status: int, now: float) -> None:
    """Count a finished request on its instance: class, latency bucket, in-flight gauge."""
    c = backend.counters
    c.requests += 1
    c.in_flight -= 1
    if status:
        cls = status // 100
        c.classes[cls if 0 < cls < 6 else 5] += 1
    us = int((now - ex.start) * 1_000_000)
    if us < 64:
        index = us if us > 0 else 0
    else:
        if us > MAX_LATENCY_US:
            us = MAX_LATENCY_US
        shift = us.bit_length() - 6
        index = (shift << 5) + (us >> shift)
    c.hist[index] += 1
    c.sum_us += us


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive connection to one instance."""

    __slots__ = (
        "backend",
        "close_delimited",
        "closed",
        "deadline",
        "ex",
        "got_bytes",
        "has_length",
        "head_scan",
        "in_body",
        "interim",
        "keep_alive",
        "limits",
        "out",
        "parser",
        "plane",
        "progress",
        "raw",
        "rechunk",
        "reused",
        "transport",
        "tunnel",
    )

    def __init__(self, plane: DataPlane, backend: BackendState) -> None:
        self.plane = plane
        self.limits = plane.limits
        self.backend = backend
        self.transport: Any = None
        self.parser = httptools.HttpResponseParser(self)
        self.ex: Exchange | None = None
        self.closed = False
        self.reused = False
        self.got_bytes = False
        self.raw: bytes | None = None  # bytes of the response head(s) received so far
        self.head_scan = 0  # where the next head starts in ``raw`` (after a 1xx)
        self.in_body = False
        self.progress = False  # bytes arrived since the sweeper last looked
        self.keep_alive = False
        self.rechunk = False
        self.has_length = False
        self.close_delimited = False
        self.interim = False
        self.out: bytes | None = None  # bytes for the client, written once per read
        self.tunnel: Any = None  # after a 101: the client's transport
        self.deadline = _INF

    # --- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.plane.upstreams.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.plane.upstreams.discard(self)
        with contextlib.suppress(ValueError):
            self.backend.idle.remove(self)
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
            return
        ex = self.ex
        if ex is None:
            return
        if not ex.response_started:
            if (
                not self.got_bytes
                and self.reused
                and ex.idempotent
                and ex.body_bytes == 0
                and ex.upgrade is None
            ):
                # A pooled connection the instance had closed: nothing was answered, safe to resend.
                self.ex = None
                ex.upstream = None
                self.backend.counters.in_flight -= 1
                if ex.client.retry_stale(ex, self.backend):
                    return
                self.backend.counters.in_flight += 1
                self.ex = ex
            self._fail(502)
        elif self.close_delimited:
            # The response's length was "until the instance closes": it is complete now.
            if self.rechunk:
                self.out = (self.out or b"") + b"0\r\n\r\n"
            self._finish(reuse=False)
        else:
            self._abort_client()

    def pause_writing(self) -> None:
        ex = self.ex
        if ex is not None and not ex.client.closed:
            ex.client.transport.pause_reading()
        elif self.tunnel is not None:
            self.tunnel.pause_reading()

    def resume_writing(self) -> None:
        ex = self.ex
        if ex is not None and not ex.client.closed:
            ex.client.transport.resume_reading()
        elif self.tunnel is not None:
            self.tunnel.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        if self.ex is None:
            # Nothing was asked: an idle connection must stay silent.
            self._close()
            return
        self.got_bytes = True
        self.progress = True
        if not self.in_body:
            raw = self.raw
            self.raw = data if raw is None else raw + data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._start_tunnel(data[upgrade.args[0] :])
            return
        except httptools.HttpParserError:
            if self.ex is not None:
                if self.ex.response_started:
                    self._abort_client()
                else:
                    self._fail(502)
            self._close()
            return
        if self.out is not None:
            self._flush()

    def _flush(self) -> None:
        """Write what this read produced for the client in one call (one syscall, mostly)."""
        out = self.out
        self.out = None
        ex = self.ex
        if out is not None and ex is not None and not ex.client.closed:
            ex.client.transport.write(out)

    # --- httptools callbacks ----------------------------------------------------------------
    # No ``on_header``: httptools then makes no call per header. The response head is taken
    # from the raw bytes instead, and its hop-by-hop lines removed by one regular expression.

    def on_headers_complete(self) -> None:
        parser = self.parser
        status = parser.get_status_code()
        self.keep_alive = parser.should_keep_alive()
        ex = self.ex
        assert ex is not None
        client = ex.client
        raw = self.raw
        assert raw is not None
        start = self.head_scan
        end = raw.find(b"\r\n\r\n", start)
        line_end = raw.find(b"\r\n", start)
        # llhttp checked "HTTP/x.y NNN ...": keep code and reason, answer as HTTP/1.1.
        status_line = raw[start + 8 : line_end]
        fields = raw[line_end:end]  # "\r\nName: value" lines
        if status < 200 and status != 101:
            # Interim response (100 Continue, 103 Early Hints): pass it on, wait for the final.
            if ex.http11 and not client.closed:
                client.transport.write(
                    b"HTTP/1.1%s%s\r\n\r\n" % (status_line, _HOP_LINES.sub(b"", fields))
                )
            self.head_scan = end + 4
            self.interim = True
            return
        self.raw = None
        self.in_body = True
        ex.status = status
        self.has_length = _CONTENT_LENGTH.search(fields) is not None
        if status == 101:
            upgrade = _UPGRADE.search(fields)
            if ex.upgrade is None or upgrade is None:
                raise ValueError("101 Switching Protocols without an upgrade request")
            framing = b"Connection: Upgrade\r\nUpgrade: %s\r\n" % upgrade.group(1).strip()
        else:
            # (``ClientConnection.should_close_after``, inlined)
            close = (
                not ex.keep_alive
                or client.closing
                or not ex.request_done
                or client.service.closing
                or ex.upgrade is not None  # upgrade refused: the client side is not parsed anymore
            )
            if ex.is_head or status == 204 or status == 304 or self.has_length:
                framing = b""
            else:
                # Chunked from the instance, or delimited by its closing: chunk it for 1.1
                # clients, close-delimit it for 1.0 clients.
                self.close_delimited = _TRANSFER_ENCODING.search(fields) is None
                if ex.http11:
                    self.rechunk = True
                    framing = b"Transfer-Encoding: chunked\r\n"
                else:
                    framing = b""
                    close = True
            if close:
                ex.keep_alive = False
                framing += b"Connection: close\r\n"
            else:
                framing += b"Connection: keep-alive\r\n"
        ex.response_started = True
        # Held back so that head and body leave in one write (see ``_flush``).
        self.out = b"HTTP/1.1%s%s\r\n%s%s\r\n" % (
            status_line,
            _HOP_LINES.sub(b"", fields),
            ex.set_cookie,
            framing,
        )
        if ex.is_head:
            # httptools cannot be told that a HEAD response has no body: finish here and give
            # the next response a fresh parser.
            self.parser = httptools.HttpResponseParser(self)
            self._finish(reuse=self.keep_alive)

    def on_body(self, data: bytes) -> None:
        if self.rechunk:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        out = self.out
        self.out = data if out is None else out + data

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        ex = self.ex
        if ex is None or ex.status == 101:
            return  # HEAD already finished; a 101 goes on as a tunnel (``_start_tunnel``)
        if self.rechunk:
            out = self.out
            self.out = b"0\r\n\r\n" if out is None else out + b"0\r\n\r\n"
        self._finish(reuse=True)

    # --- the exchange ---------------------------------------------------------------------

    def attach(self, ex: Exchange, *, reused: bool) -> None:
        """Send ``ex`` on this connection."""
        self.ex = ex
        ex.upstream = self
        self.reused = reused
        self.got_bytes = False
        self.progress = False
        self.has_length = False
        self.rechunk = False
        self.close_delimited = False
        self.raw = None
        self.head_scan = 0
        self.in_body = False
        self.deadline = ex.start + self.limits.response_timeout
        body = ex.body
        if body:
            self.transport.writelines([ex.head, *body])
            body.clear()
            ex.buffered = 0
            ex.client.upstream_ready(ex)
        else:
            self.transport.write(ex.head)

    def _finish(self, *, reuse: bool) -> None:
        ex = self.ex
        assert ex is not None
        out = self.out
        if out is not None:
            self.out = None
            if not ex.client.closed:
                ex.client.transport.write(out)
        self.ex = None
        ex.upstream = None
        backend = self.backend
        now = time.monotonic()
        # ``record``, inlined: this runs once per request.
        c = backend.counters
        c.requests += 1
        c.in_flight -= 1
        cls = ex.status // 100
        c.classes[cls if 0 < cls < 6 else 5] += 1
        us = int((now - ex.start) * 1_000_000)
        if us < 64:
            index = us if us > 0 else 0
        else:
            if us > MAX_LATENCY_US:
                us = MAX_LATENCY_US
            shift = us.bit_length() - 6
            index = (shift << 5) + (us >> shift)
        c.hist[index] += 1
        c.sum_us += us
        limits = self.limits
        if (
            reuse
            and self.keep_alive
            and ex.request_done
            and not backend.retired
            and not self.closed
            and len(backend.idle) < limits.max_idle_per_backend
        ):
            self.deadline = now + limits.upstream_idle_timeout
            backend.idle.append(self)
        else:
            self._close()
        ex.client.response_done(ex, now)

    def _fail(self, status: int) -> None:
        """Nothing reached the client yet: answer it ``status`` from the proxy."""
        ex = self.ex
        assert ex is not None
        self.ex = None
        ex.upstream = None
        record(self.backend, ex, status, time.monotonic())
        ex.client.respond_error(ex, status)
        self._close()

    def _abort_client(self) -> None:
        """The response broke off midway: the client must see a broken connection, not a hang."""
        self.out = None
        ex = self.ex
        assert ex is not None
        self.ex = None
        ex.upstream = None
        record(self.backend, ex, 0, time.monotonic())
        client = ex.client
        if not client.closed:
            client.closed = True
            client.transport.abort()
        self._close()

    def abort_for_client(self) -> None:
        """The client went away (or was refused) mid-exchange: drop this connection."""
        ex = self.ex
        if ex is not None:
            self.ex = None
            ex.upstream = None
            record(self.backend, ex, 0, time.monotonic())
        self._close()

    def expire(self, now: float) -> None:
        """Called by the sweeper when ``deadline`` has passed."""
        ex = self.ex
        if ex is None or self.tunnel is not None:
            self._close()
            return
        if self.progress:
            # Bytes came since the deadline was set: the timeout counts from the last ones
            # (approximately: the sweeper notices progress, the hot path never reads the clock).
            self.progress = False
            self.deadline = now + self.plane.limits.response_timeout
            return
        self.backend.counters.timeouts += 1
        if ex.response_started:
            self._abort_client()
        else:
            self._fail(504)
        self._close()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    def _start_tunnel(self, rest: bytes) -> None:
        self._flush()  # the 101 head
        ex = self.ex
        assert ex is not None
        self.ex = None
        ex.upstream = None
        record(self.backend, ex, 101, time.monotonic())
        client = ex.client
        client.active = None
        if client.closed:
            self._close()
            return
        self.tunnel = client.transport
        self.deadline = _INF
        client.start_tunnel(self.transport)
        if rest:
            client.transport.write(rest)


def open_upstream(plane: DataPlane, ex: Exchange, backend: BackendState) -> None:
    """Open a new connection to ``backend`` and send ``ex`` on it (in a task)."""
    task = plane.loop.create_task(_connect(plane, ex, backend))
    plane.tasks.add(task)
    task.add_done_callback(plane.tasks.discard)


async def _connect(plane: DataPlane, ex: Exchange, backend: BackendState) -> None:
    loop = plane.loop
    try:
        async with asyncio.timeout(plane.limits.connect_timeout):
            _, conn = await loop.create_connection(
                lambda: UpstreamConnection(plane, backend), backend.host, backend.port
            )
    except (OSError, TimeoutError):
        backend.counters.connect_errors += 1
        backend.counters.in_flight -= 1
        client = ex.client
        if client.closed or client.retry_elsewhere(ex, backend):
            return
        backend.counters.in_flight += 1
        record(backend, ex, 502, time.monotonic())
        client.respond_error(ex, 502)
        return
    if ex.client.closed:
        record(backend, ex, 0, time.monotonic())
        conn.deadline = time.monotonic() + plane.limits.upstream_idle_timeout
        backend.idle.append(conn)
        return
    conn.attach(ex, reused=False)
