"""HTTP/1.1 behaviour of the proxy on real sockets: framing, limits, streaming, upgrades."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx
import pytest

from tests.integration.traffic.conftest import ProxyHandle
from tests.integration.traffic.helpers import TinyUpstream, raw_exchange, wait_for
from zerodown.traffic.base import Backend, ServiceRoutes, parse_address

pytestmark = pytest.mark.integration


@pytest.fixture
def one_backend(
    proxy: ProxyHandle, upstream: Callable[[str], TinyUpstream], listen: str
) -> TinyUpstream:
    server = upstream("solo")
    proxy.router.apply(
        ServiceRoutes(
            service="web",
            listen=parse_address(listen),
            groups={"stable": (Backend("solo", parse_address(server.address)),)},
            weights={"stable": 100},
        )
    )
    return server


H = b"Host: example\r\n"
MALFORMED: dict[str, bytes] = {
    "content-length and chunked": b"POST / HTTP/1.1\r\n" + H
    + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two content-lengths": b"POST / HTTP/1.1\r\n" + H
    + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "equal content-lengths twice": b"POST / HTTP/1.1\r\n" + H
    + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "transfer-encoding not chunked": b"POST / HTTP/1.1\r\n" + H
    + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "transfer-encoding identity": b"POST / HTTP/1.1\r\n" + H
    + b"Transfer-Encoding: identity\r\n\r\nhello",
    "two transfer-encodings": b"POST / HTTP/1.1\r\n" + H
    + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "space before colon": b"POST / HTTP/1.1\r\n" + H + b"Content-Length : 5\r\n\r\nhello",
    "negative content-length": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n",
    "content-length list": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\nhello",
    "bad chunk size": b"POST / HTTP/1.1\r\n" + H
    + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk size overflow": b"POST / HTTP/1.1\r\n" + H
    + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    "chunk without CR": b"POST / HTTP/1.1\r\n" + H
    + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
    "obsolete line folding": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n",
    "NUL in header value": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x00c\r\n\r\n",
    "bare LF line endings": b"GET / HTTP/1.1\nHost: example\n\n",
    "missing Host in HTTP/1.1": b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n",
    "two Host headers": b"GET / HTTP/1.1\r\n" + H + b"Host: other\r\n\r\n",
    "HTTP/2.0 in an HTTP/1 request line": b"GET / HTTP/2.0\r\n" + H + b"\r\n",
    "invalid method token": b"G(T / HTTP/1.1\r\n" + H + b"\r\n",
    "headers over 64 KiB": b"GET / HTTP/1.1\r\n" + H
    + b"X-Big: " + b"a" * (70 * 1024) + b"\r\n\r\n",
    "many headers over 64 KiB": b"GET / HTTP/1.1\r\n" + H
    + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(700)) + b"\r\n",
    "request line over 64 KiB": b"GET /" + b"a" * (70 * 1024) + b" HTTP/1.1\r\n" + H + b"\r\n",
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_gets_400_and_never_reaches_an_instance(
    one_backend: TinyUpstream, listen: str, case: str
) -> None:
    answer = raw_exchange(listen, MALFORMED[case])
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
    assert b"Connection: close" in answer
    assert one_backend.seen == [] and one_backend.raw_bytes == 0


def test_at_least_ten_malformed_cases() -> None:
    assert len(MALFORMED) >= 10


def test_request_body_over_the_limit_gets_413(
    proxy: ProxyHandle, upstream: Callable[[str], TinyUpstream], listen: str
) -> None:
    proxy.cleanup()
    proxy.start(extra_args=["--max-body-bytes", "1000"])
    server = upstream("solo")
    proxy.router.apply(
        ServiceRoutes(
            service="web",
            listen=parse_address(listen),
            groups={"g": (Backend("solo", parse_address(server.address)),)},
            weights={"g": 1},
        )
    )
    declared = raw_exchange(
        listen, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n"
    )
    assert declared.startswith(b"HTTP/1.1 413 ")
    assert server.seen == []
    body = b"%x\r\n%s\r\n" % (600, b"a" * 600)
    chunked = raw_exchange(
        listen, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body * 2
    )
    assert chunked.startswith(b"HTTP/1.1 413 ")
    ok = httpx.post(f"http://{listen}/echo", content=b"b" * 1000)
    assert ok.status_code == 200 and ok.content == b"b" * 1000


def test_connect_method_is_refused(one_backend: TinyUpstream, listen: str) -> None:
    answer = raw_exchange(listen, b"CONNECT example:443 HTTP/1.1\r\nHost: example:443\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 405 ")
    assert one_backend.seen == []


def test_forwarded_headers_and_hop_by_hop_headers(one_backend: TinyUpstream, listen: str) -> None:
    r = httpx.get(
        f"http://{listen}/",
        headers={"X-Forwarded-For": "10.1.2.3", "Keep-Alive": "timeout=5", "X-Custom": "kept"},
    )
    assert r.status_code == 200
    seen = one_backend.seen[-1].headers
    assert seen["x-forwarded-for"] == "10.1.2.3, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == listen
    assert seen["host"] == listen
    assert seen["x-custom"] == "kept"
    assert "keep-alive" not in seen


def test_keep_alive_on_both_sides(one_backend: TinyUpstream, listen: str) -> None:
    with httpx.Client(base_url=f"http://{listen}") as client:
        for _ in range(50):
            assert client.get("/").status_code == 200
    assert one_backend.connections == 1


def test_chunked_request_and_response_bodies_are_streamed(
    one_backend: TinyUpstream, listen: str
) -> None:
    r = httpx.get(f"http://{listen}/chunked")
    assert r.content == b"hello chunked world"
    assert r.headers["transfer-encoding"] == "chunked"

    def parts() -> object:
        for i in range(20):
            yield b"part-%d;" % i

    r = httpx.post(f"http://{listen}/echo", content=parts())  # type: ignore[arg-type]
    assert r.content == b"".join(b"part-%d;" % i for i in range(20))
    assert one_backend.seen[-1].headers["transfer-encoding"] == "chunked"


def test_request_body_streams_before_it_is_complete(one_backend: TinyUpstream, listen: str) -> None:
    host, port = listen.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"
        )
        # the instance receives the first chunk while the request is still open
        assert wait_for(lambda: one_backend.raw_bytes > 0, timeout=5)
        assert one_backend.seen == []
        s.sendall(b"4\r\nlast\r\n0\r\n\r\n")
        data = b""
        while b"firstlast" not in data:
            chunk = s.recv(65536)
            assert chunk
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ")


def test_large_body_round_trip(one_backend: TinyUpstream, listen: str) -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB
    r = httpx.post(f"http://{listen}/echo", content=payload, timeout=20)
    assert r.status_code == 200 and r.content == payload


def test_head_and_http10(one_backend: TinyUpstream, listen: str) -> None:
    with httpx.Client(base_url=f"http://{listen}") as client:
        r = client.head("/")
        assert r.status_code == 200 and r.headers["content-length"] == "4"
        assert client.get("/").content == b"solo"  # the connection survived the HEAD
    answer = raw_exchange(listen, b"GET /chunked HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b"hello chunked world")
    assert b"Transfer-Encoding" not in answer


def test_pipelined_requests_are_answered_in_order(one_backend: TinyUpstream, listen: str) -> None:
    payload = b"".join(b"GET /sleep/%d HTTP/1.1\r\nHost: x\r\n\r\n" % ms for ms in (30, 1, 10))
    answer = raw_exchange(
        listen, payload + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert answer.count(b"HTTP/1.1 200 ") == 4
    assert answer.endswith(b"solo")
    assert [s.path for s in one_backend.seen] == ["/sleep/30", "/sleep/1", "/sleep/10", "/"]


def test_websocket_upgrade_is_passed_through(one_backend: TinyUpstream, listen: str) -> None:
    host, port = listen.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"Upgrade: websocket" in head
        for message in (b"\x81\x05hello", b"\x82\x03abc", b"x" * 100_000):
            s.sendall(message)
            got = b""
            deadline = time.monotonic() + 5
            while len(got) < len(message) and time.monotonic() < deadline:
                got += s.recv(65536)
            assert got == message
    assert one_backend.seen[-1].headers["upgrade"] == "websocket"


def test_slow_instance_times_out_with_504(
    proxy: ProxyHandle, upstream: Callable[[str], TinyUpstream], listen: str
) -> None:
    proxy.cleanup()
    proxy.start(extra_args=["--response-timeout", "0.5"])
    server = upstream("slow")
    proxy.router.apply(
        ServiceRoutes(
            service="web",
            listen=parse_address(listen),
            groups={"g": (Backend("slow", parse_address(server.address)),)},
            weights={"g": 1},
        )
    )
    assert httpx.get(f"http://{listen}/sleep/3000", timeout=10).status_code == 504
    assert httpx.get(f"http://{listen}/sleep/10").status_code == 200
    metrics = proxy.router.metrics("web")
    assert metrics.group("g").timeouts == 1
