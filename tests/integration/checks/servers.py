"""Loopback servers the check probes talk to, each listening before its fixture returns.

``AppServer`` is a stdlib HTTP server in a thread answering a few fixed paths; ``RespServer``
speaks just enough of the Redis protocol (``AUTH``, ``PING``) to be told apart from a server
that does not, such as ``BannerServer`` (which greets first, like SMTP); ``silent_listener``
accepts connections in the kernel and never answers; ``closed_port`` is a bound port nobody
listens on, so connecting to it is refused.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port that refuses connections: bound for the test's duration, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port whose connections are accepted by the kernel and then never answered."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


class _AppHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[dict[str, Any]]]

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.server.seen.append(  # type: ignore[attr-defined]
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        if self.path == "/healthz":
            self._send(200, b"ok")
        elif self.path.startswith("/status/"):
            self._send(int(self.path.rsplit("/", 1)[1]), b"status")
        elif self.path == "/":
            self._send(200, b"<h1>shop</h1> version 2")
        elif self.path == "/api/info":
            self._json(200, {"ok": True, "data": {"version": "2", "items": [{"id": 7}]}})
        elif self.path == "/echo":
            self._json(201, {"method": self.command, "body": body, "test": self.headers["X-Test"]})
        else:
            self._send(404, b"not found")

    do_GET = do_POST = do_PUT = do_HEAD = _handle


class AppServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 that records every request it answers."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _AppHandler)
        self._server.daemon_threads = True
        self.seen: list[dict[str, Any]] = []
        self._server.seen = self.seen  # type: ignore[attr-defined]
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> AppServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


class _RespHandler(socketserver.StreamRequestHandler):
    server: RespServer

    def _command(self) -> list[str] | None:
        header = self.rfile.readline()
        if not header.startswith(b"*"):
            return None
        words: list[str] = []
        for _ in range(int(header[1:])):
            size = int(self.rfile.readline()[1:])
            words.append(self.rfile.read(size + 2)[:size].decode())
        return words

    def handle(self) -> None:
        authenticated = self.server.password is None
        while (words := self._command()) is not None:
            self.server.commands.append(words)
            name = words[0].upper()
            if name == "AUTH":
                authenticated = words[-1] == self.server.password
                self.wfile.write(
                    b"+OK\r\n" if authenticated else b"-WRONGPASS invalid password\r\n"
                )
            elif name == "PING" and not authenticated:
                self.wfile.write(b"-NOAUTH Authentication required.\r\n")
            elif name == "PING":
                self.wfile.write(b"+PONG\r\n")
            else:
                self.wfile.write(b"-ERR unknown command\r\n")


class _BannerHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(b"220 mail.example.com ESMTP ready\r\n")
        self.rfile.readline()


class BannerServer(socketserver.ThreadingTCPServer):
    """A server of another protocol that greets first, as SMTP does."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _BannerHandler)
        self.port = int(self.server_address[1])
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> BannerServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(10)


class RespServer(socketserver.ThreadingTCPServer):
    """A Redis stand-in on 127.0.0.1: ``PING`` answers ``+PONG`` (after ``AUTH`` if a password
    is set)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *, password: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _RespHandler)
        self.password = password
        self.commands: list[list[str]] = []
        self.port = int(self.server_address[1])
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> RespServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(10)
