"""A small HTTP service whose behaviour is set by environment variables.

Used by ``make demo`` and the tests as the thing being deployed. Standard library only.

    PORT                 port to listen on (127.0.0.1)              required
    APP_VERSION          version label it reports (falls back to ZERODOWN_VERSION, then "dev")
    ERROR_RATE           fraction of requests to / answered with 500  default 0
    LOG_ERROR_RATE       fraction of requests to / that log an ERROR line on stderr
                         and are still answered 200 (a failure only the log shows)  default 0
    LATENCY_MS           added latency per request to /, milliseconds  default 0
    HEALTH               "ok" | "fail" | "fail-after:N" (fail after N seconds)  default ok
    STARTUP_DELAY_S      seconds to wait before listening                      default 0
    CRASH_AFTER_S        exit(3) after this many seconds                      default never

Routes: ``/`` (JSON with version, pid, port), ``/healthz``, ``/status/<code>``,
``/sleep/<ms>``, ``/echo`` (POST body back). SIGTERM stops accepting, lets in-flight
requests finish, and exits 0.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("APP_VERSION") or os.environ.get("ZERODOWN_VERSION") or "dev"
ERROR_RATE = float(os.environ.get("ERROR_RATE", "0") or 0)
LOG_ERROR_RATE = float(os.environ.get("LOG_ERROR_RATE", "0") or 0)
LATENCY_S = float(os.environ.get("LATENCY_MS", "0") or 0) / 1000.0
HEALTH = os.environ.get("HEALTH", "ok")
STARTED = time.monotonic()


def healthy() -> bool:
    if HEALTH == "ok":
        return True
    if HEALTH == "fail":
        return False
    if HEALTH.startswith("fail-after:"):
        return time.monotonic() - STARTED < float(HEALTH.split(":", 1)[1])
    return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, delayed ACKs add ~40 ms
    # to each response on a busy keep-alive connection.
    disable_nagle_algorithm = True
    server_version = f"example-app/{VERSION}"

    def log_message(self, format: str, *args: object) -> None:
        # One line per request on stdout: the log collector and the log error scan read it.
        if self.path == "/healthz":
            return
        sys.stdout.write(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")
        sys.stdout.flush()

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Version", VERSION)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            ok = healthy()
            self._send(200 if ok else 503, b'{"ok":true}' if ok else b'{"ok":false}')
            return
        if self.path.startswith("/status/"):
            self._send(int(self.path.rsplit("/", 1)[1]), b"{}")
            return
        if self.path.startswith("/sleep/"):
            time.sleep(int(self.path.rsplit("/", 1)[1]) / 1000.0)
            self._send(200, b"{}")
            return
        if LATENCY_S:
            time.sleep(LATENCY_S)
        if ERROR_RATE and random.random() < ERROR_RATE:
            sys.stderr.write(f"ERROR simulated failure on {self.path}\n")
            sys.stderr.flush()
            self._send(500, b'{"error":"simulated"}')
            return
        if LOG_ERROR_RATE and random.random() < LOG_ERROR_RATE:
            order = random.randint(1000, 99999)
            sys.stderr.write(f"ERROR order {order} not saved: ledger write timed out\n")
            sys.stderr.flush()
        body = {"version": VERSION, "pid": os.getpid(), "port": self.server.server_address[1]}
        self._send(200, json.dumps(body).encode())

    do_HEAD = do_GET

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        self._send(200, data, self.headers.get("Content-Type") or "application/octet-stream")


def main() -> None:
    port = int(os.environ["PORT"])
    delay = float(os.environ.get("STARTUP_DELAY_S", "0") or 0)
    if delay:
        time.sleep(delay)
    ThreadingHTTPServer.daemon_threads = False
    ThreadingHTTPServer.block_on_close = True
    ThreadingHTTPServer.request_queue_size = 128  # the default backlog of 5 drops connections
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)

    def on_term(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    crash = os.environ.get("CRASH_AFTER_S")
    if crash:
        threading.Timer(float(crash), lambda: os._exit(3)).start()
    print(f"example app {VERSION} listening on 127.0.0.1:{port} pid {os.getpid()}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    print("example app stopped", flush=True)


if __name__ == "__main__":
    main()
