"""Real-socket helpers for the proxy tests: a tiny upstream server and a bounded load client.

``TinyUpstream`` runs an asyncio HTTP/1.1 server in a thread of the test process and records
every request it receives (so a test can prove a malformed request never reached it). Routes:
``/`` answers its name, ``/chunked`` answers a chunked body, ``/echo`` echoes the request body
(chunked or not), ``/sleep/<ms>`` answers after a delay, ``/ws`` upgrades and echoes raw bytes.

``run_load`` is a keep-alive client on raw sockets: ``concurrency`` connections send requests
until ``requests`` were made, ``stop`` is set, or ``max_seconds`` pass, and report every
status, every answering backend and every failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httptools

from tests.fixtures.net import free_port


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _UpstreamProtocol(asyncio.Protocol):
    def __init__(self, server: TinyUpstream) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.tunnel = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.server.connections += 1

    def data_received(self, data: bytes) -> None:
        if self.tunnel:
            self.transport.write(data)
            return
        self.server.raw_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as up:
            self.tunnel = True
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\n"
                b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
            )
            rest = data[up.args[0] :]
            if rest:
                self.transport.write(rest)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.body = bytearray()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        path = self.url.decode()
        method = self.parser.get_method().decode()
        self.server.seen.append(Seen(method, path, dict(self.headers), bytes(self.body)))
        if path == "/ws":
            return  # answered in data_received (upgrade)
        name = self.server.name.encode()
        if path.startswith("/sleep/"):
            delay = int(path.rsplit("/", 1)[1]) / 1000
            asyncio.get_running_loop().call_later(delay, self._answer, b"slept", 200)
            return
        if path == "/chunked":
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Backend: %s\r\n\r\n" % name
            )
            for part in (b"hello ", b"chunked ", b"world"):
                self.transport.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.transport.write(b"0\r\n\r\n")
            return
        if path == "/echo":
            self._answer(bytes(self.body), 200)
            return
        if path.startswith("/status/"):
            self._answer(b"", int(path.rsplit("/", 1)[1]))
            return
        self._answer(name, 200)

    def _answer(self, body: bytes, status: int) -> None:
        if self.transport.is_closing():
            return
        self.transport.write(
            b"HTTP/1.1 %d OK\r\nContent-Length: %d\r\nX-Backend: %s\r\n\r\n%s"
            % (status, len(body), self.server.name.encode(), body)
        )


class TinyUpstream:
    """An HTTP/1.1 server on 127.0.0.1 in its own thread and event loop."""

    def __init__(self, name: str, port: int | None = None) -> None:
        self.name = name
        self.port = port or free_port()
        self.seen: list[Seen] = []
        self.connections = 0
        self.raw_bytes = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"upstream-{name}", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TinyUpstream:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("upstream did not start")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            self._server = await self._loop.create_server(
                lambda: _UpstreamProtocol(self), "127.0.0.1", self.port, reuse_address=True
            )
            self._ready.set()

        self._loop.run_until_complete(serve())
        self._loop.run_forever()
        self._loop.close()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(shutdown)
        self._thread.join(10)


@dataclass
class LoadResult:
    statuses: Counter[int] = field(default_factory=Counter)
    backends: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    cookies: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + len(self.failures)


class _Response:
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.done = False
        self.keep_alive = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True


async def _worker(
    host: str,
    port: int,
    request: bytes,
    result: LoadResult,
    budget: list[int],
    stop: threading.Event,
    deadline: float,
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while budget[0] > 0 and not stop.is_set() and time.monotonic() < deadline:
        budget[0] -= 1
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            writer.write(request)
            response = _Response()
            while not response.done:
                data = await asyncio.wait_for(reader.read(65536), 10)
                if not data:
                    raise ConnectionError("connection closed before the response ended")
                response.parser.feed_data(data)
        except (OSError, TimeoutError, httptools.HttpParserError, ConnectionError) as exc:
            result.failures.append(f"{type(exc).__name__}: {exc}")
            if writer is not None:
                writer.close()
            writer = None
            continue
        result.statuses[response.parser.get_status_code()] += 1
        result.backends[response.headers.get("x-backend", "?")] += 1
        if "set-cookie" in response.headers:
            result.cookies[response.headers["set-cookie"]] += 1
        if not response.keep_alive:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def run_load(
    address: str,
    *,
    requests: int,
    concurrency: int = 8,
    path: str = "/",
    headers: dict[str, str] | None = None,
    stop: threading.Event | None = None,
    max_seconds: float = 60.0,
    result: LoadResult | None = None,
) -> LoadResult:
    """Send up to ``requests`` GETs over ``concurrency`` keep-alive connections."""
    host, port = address.rsplit(":", 1)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    request = f"GET {path} HTTP/1.1\r\nHost: {address}\r\n{extra}\r\n".encode()
    result = result if result is not None else LoadResult()
    budget = [requests]
    deadline = time.monotonic() + max_seconds

    async def main() -> None:
        await asyncio.gather(
            *(
                _worker(
                    host, int(port), request, result, budget, stop or threading.Event(), deadline
                )
                for _ in range(concurrency)
            )
        )

    asyncio.run(main())
    return result


class BackgroundLoad:
    """``run_load`` in a thread until ``finish()``, bounded by ``requests`` and ``max_seconds``."""

    def __init__(self, address: str, **kwargs: Any) -> None:
        self.stop = threading.Event()
        self.result = LoadResult()
        self._thread = threading.Thread(
            target=self._run, args=(address,), kwargs=kwargs, daemon=True
        )

    def _run(self, address: str, **kwargs: Any) -> None:
        run_load(address, stop=self.stop, result=self.result, **kwargs)

    def __enter__(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def finish(self) -> LoadResult:
        self.stop.set()
        self._thread.join(90)
        assert not self._thread.is_alive(), "load did not stop"
        return self.result


def raw_exchange(address: str, payload: bytes, *, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes (or ``timeout``); return what came back."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(payload)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
        return data


def wait_for(condition: Any, timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())
