"""Zero-gap restarts: a new proxy process takes the listening sockets of the running one.

The running proxy listens on ``<state-dir>/proxy/handover.sock``. A starting proxy connects,
says ``takeover`` and receives every listening socket (``SCM_RIGHTS``) with the service and
address of each. It serves on them, then says ``ready``; only then does the old process close
its copies and drain: both processes share the same kernel sockets (and so the same accept
queue), so no connection is refused or reset during the switch, unlike two ``SO_REUSEPORT``
sockets where closing one drops what waits in its queue. The old process answers ``bye``
once it has stopped accepting and removed its Unix socket, and the new one binds its own.

The old side runs in a thread (blocking socket calls, ``send_fds``) and talks to its event loop
with ``run_coroutine_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zerodown.core.types import Address

__all__ = ["HandoverListener", "Inherited", "take_over"]

log = logging.getLogger(__name__)

_STEP_TIMEOUT = 30.0


@dataclass
class Inherited:
    """Sockets received from a predecessor, and the line to tell it we are serving."""

    sockets: dict[str, socket.socket]  # "host:port" -> listening socket
    predecessor_pid: int
    _conn: socket.socket = field(repr=False)

    def release_predecessor(self, timeout: float = _STEP_TIMEOUT) -> bool:
        """Tell the old process we serve; wait until it stopped accepting. True if it said so."""
        try:
            self._conn.settimeout(timeout)
            self._conn.sendall(b"ready\n")
            return _read_line(self._conn) == b"bye"
        except OSError as exc:
            log.warning("predecessor did not confirm the hand-over: %s", exc)
            return False
        finally:
            self._conn.close()


def take_over(path: Path, *, timeout: float = _STEP_TIMEOUT) -> Inherited | None:
    """Ask a running proxy for its listening sockets; None if no proxy answers at ``path``."""
    if not path.exists():
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        with contextlib.suppress(OSError):
            path.unlink()  # nobody listens: a leftover of a killed proxy
        return None
    try:
        conn.sendall(b"takeover\n")
        data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 256)
        while not data.endswith(b"\n"):
            more = conn.recv(1 << 16)
            if not more:
                raise ConnectionError("predecessor closed the hand-over connection")
            data += more
        message = json.loads(data)
    except (OSError, ValueError) as exc:
        log.warning("hand-over from the running proxy failed: %s", exc)
        conn.close()
        return None
    sockets = {}
    for entry, fd in zip(message["listeners"], fds, strict=False):
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        sockets[entry["listen"]] = sock
    return Inherited(sockets=sockets, predecessor_pid=int(message["pid"]), _conn=conn)


class HandoverListener:
    """In a serving proxy: hands the listeners to a successor that asks for them."""

    def __init__(
        self,
        path: Path,
        *,
        loop: asyncio.AbstractEventLoop,
        listeners: Callable[[], list[tuple[str, Address, int]]],
        handed_over: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        self.path = path
        self._loop = loop
        self._listeners = listeners
        self._handed_over = handed_over
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._sock.bind(str(path))
        os.chmod(path, 0o600)
        self._inode = path.stat().st_ino
        self._removed = False
        self._sock.listen(4)
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, name="handover", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop listening (and remove the socket file if it is still ours)."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._remove()

    def _remove(self) -> None:
        # Only once: after a hand-over the successor binds a new socket at the same path, and
        # the file system may give it the inode number ours had, so a second look could
        # mistake the successor's socket for ours.
        if self._removed:
            return
        self._removed = True
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(OSError):
            if self.path.stat().st_ino == self._inode:
                self.path.unlink()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    if self._serve(conn):
                        return
                except Exception:
                    log.exception("hand-over failed; still serving")

    def _serve(self, conn: socket.socket) -> bool:
        conn.settimeout(_STEP_TIMEOUT)
        if _read_line(conn) != b"takeover":
            return False
        listeners = asyncio.run_coroutine_threadsafe(_call(self._listeners), self._loop).result(
            _STEP_TIMEOUT
        )
        message = {
            "pid": os.getpid(),
            "listeners": [{"service": s, "listen": str(a)} for s, a, _ in listeners],
        }
        socket.send_fds(
            conn, [json.dumps(message).encode() + b"\n"], [fd for _, _, fd in listeners]
        )
        if _read_line(conn) != b"ready":
            log.warning("successor did not confirm; keeping the listeners")
            return False
        asyncio.run_coroutine_threadsafe(self._handed_over(), self._loop).result(_STEP_TIMEOUT)
        # Stop answering on the Unix socket before the successor binds its own there.
        self._remove()
        conn.sendall(b"bye\n")
        log.info("listeners handed over to a successor")
        return True


async def _call(fn: Callable[[], list[tuple[str, Address, int]]]) -> list[tuple[str, Address, int]]:
    return fn()


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(256)
        if not chunk:
            break
        data += chunk
        if len(data) > 4096:
            break
    return data.strip()
