"""Real HTTP servers on 127.0.0.1 for the ops tests, each in its own thread.

``ScriptedServer`` is a small asyncio HTTP/1.1 server that records every request (method, path,
headers, body) and answers by path, so a test can provoke each thing a client must cope with:

    /                 200 with ``X-Version`` (the server's ``version``)
    /status/<code>    that status, empty body
    /chunked          200 with a chunked body
    /hang             never answers
    /close            200 with ``Connection: close``, then closes
    /drop             200 as if keep-alive, then closes the connection without saying so
    anything else     the next status in ``statuses`` (then 200), for scripted sequences

``on_request`` runs on the server thread after each request is recorded (tests use it to set
an event at the Nth request, instead of sleeping). ``ExampleApp`` runs ``examples/app.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import selectors
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.net import free_port

APP = Path(__file__).resolve().parents[3] / "examples" / "app.py"


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port that refuses connections: bound for the test's duration, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


class ScriptedServer:
    """An HTTP/1.1 server on 127.0.0.1 in its own thread and event loop."""

    def __init__(
        self,
        *,
        version: str = "test",
        statuses: list[int] | None = None,
        on_request: Callable[[ScriptedServer], None] | None = None,
    ) -> None:
        self.version = version
        self.statuses = list(statuses or [])
        self.on_request = on_request
        self.seen: list[Seen] = []
        self.connections = 0
        self.port = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scripted-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.call_soon(self._loop.stop)

        self._loop.call_soon_threadsafe(shutdown)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=128)
            self.port = int(self._server.sockets[0].getsockname()[1])
            self._ready.set()

        self._loop.run_until_complete(serve())
        self._loop.run_forever()
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                request_line, *lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                with self._lock:
                    self.seen.append(Seen(method, path, headers, body))
                    status = self.statuses.pop(0) if self.statuses else 200
                if self.on_request is not None:
                    self.on_request(self)
                if not await self._answer(writer, path, status):
                    return
        finally:
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, path: str, status: int) -> bool:
        """Write the answer for ``path``; False when the connection is to be closed."""
        version = self.version.encode()
        if path == "/hang":
            await asyncio.Event().wait()
        if path == "/chunked":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for part in (b"hello ", b"chunked ", b"world"):
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        if path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
        elif path == "/":
            status = 200
        body = b"ok"
        close = path == "/close"
        writer.write(
            b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nX-Version: %s\r\n%s\r\n%s"
            % (status, len(body), version, b"Connection: close\r\n" if close else b"", body)
        )
        await writer.drain()
        return path not in ("/close", "/drop")


class ExampleApp:
    """``examples/app.py`` in a child process, ready once it says it is listening."""

    def __init__(self, *, version: str = "v1", env: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        environment = {**os.environ, "PORT": str(self.port), "APP_VERSION": version, **(env or {})}
        self._proc = subprocess.Popen(
            [sys.executable, str(APP)],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> ExampleApp:
        assert self._proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=15):
                self.__exit__()
                raise RuntimeError("example app did not start within 15 s")
        line = self._proc.stdout.readline()
        if b"listening" not in line:
            self.__exit__()
            raise RuntimeError(f"example app did not start: {line!r}")
        # The app logs a line per request; drain them so its pipe never fills up.
        threading.Thread(target=self._proc.stdout.read, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
