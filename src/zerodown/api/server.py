"""``zerodown serve``: run the controller (reconcile loop + HTTP API) in this process.

The API listens on loopback; the chosen address and the PID go to ``controller.json`` in the
state directory so clients find it. SIGTERM/SIGINT stop the API and the loop; instances and the
data plane keep running, and the next controller adopts them.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from types import FrameType

import uvicorn

from zerodown.api.app import create_app
from zerodown.api.sse import StreamHub
from zerodown.core.errors import InputError
from zerodown.core.process import pid_alive
from zerodown.core.state import ControllerInfo, StateDir
from zerodown.service import Zerodown

__all__ = ["serve"]

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn waits for open responses before it exits; an SSE stream never ends on its own,
    so the signal that stops the server also tells every stream to end."""

    def __init__(self, config: uvicorn.Config, streams: StreamHub) -> None:
        super().__init__(config)
        self.streams = streams

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.streams.close()
        super().handle_exit(sig, frame)


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(
    state: StateDir,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    store_url: str | None = None,
    proxy: bool = True,
    report_dir: Path | None = None,
) -> int:
    """Run the controller until a signal; returns the process exit code."""
    state.ensure()
    running = state.read_controller()
    if running is not None and pid_alive(running.pid) and running.pid != os.getpid():
        raise InputError(
            f"a controller (pid {running.pid}) already serves {state.path} at {running.url}"
        )
    token = state.token(create=True)
    assert token is not None
    sock = bind(host, port)
    actual_host, actual_port = sock.getsockname()[:2]
    logging.getLogger("httpx").setLevel(logging.WARNING)
    zd = Zerodown.open(state, store_url=store_url, proxy=proxy, report_dir=report_dir)
    app = create_app(zd, token=token)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=10,  # a backstop: streams end within a second of the signal
    )
    server = _Server(config, app.state.streams)
    url = f"http://{actual_host}:{actual_port}"
    state.write_controller(ControllerInfo(pid=os.getpid(), url=url, started_at=time.time()))
    zd.monitor.external_url = url  # alerts link back here
    zd.start()
    log.info("controller listening on %s (state %s)", url, state.path)
    try:
        server.run(sockets=[sock])
    finally:
        zd.shutdown()
        state.clear_controller(os.getpid())
        sock.close()
    return 0
