"""Where the proxy keeps its files, its limits, and how its routing tables are persisted.

Everything lives under ``<state-dir>/proxy/``:

    proxy.json     pid, admin address and start time of the running proxy (rewritten by each)
    token          the admin API bearer token (mode 0600, created once)
    config.json    the last applied routing tables; reloaded at start
    proxy.log      stdout/stderr of a proxy started by the launcher
    handover.sock  Unix socket a new proxy uses to take over the listening sockets

Files are written atomically (temp file, fsync, rename, fsync of the directory), so a crash
at any point leaves either the old or the new content, never a torn file.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zerodown.core.errors import InputError
from zerodown.traffic.base import ServiceRoutes, routes_from_dict, routes_to_dict

__all__ = [
    "MIB",
    "ProxyLimits",
    "ProxyPaths",
    "load_config",
    "read_or_create_token",
    "save_config",
    "write_json_atomic",
]

MIB = 1024 * 1024
CONFIG_FORMAT = 1


@dataclass(frozen=True, kw_only=True)
class ProxyLimits:
    """Sizes and timeouts of the data plane (seconds, bytes)."""

    max_header_bytes: int = 64 * 1024  # request line + all headers
    max_body_bytes: int = 100 * MIB
    connect_timeout: float = 5.0  # to an instance
    response_timeout: float = 60.0  # no byte from an instance for this long: 504
    header_timeout: float = 30.0  # a client must send its whole head within this
    keepalive_timeout: float = 60.0  # an idle client connection is closed after this
    upstream_idle_timeout: float = 30.0  # an idle pooled connection is closed after this
    drain_timeout: float = 30.0  # in-flight requests of a removed instance are cut after this
    shutdown_idle_grace: float = 1.0  # when stopping: idle keep-alive clients get this long
    max_idle_per_backend: int = 256


@dataclass(frozen=True)
class ProxyPaths:
    """The files of one proxy, derived from the zerodown state directory."""

    state_dir: Path

    @property
    def dir(self) -> Path:
        return self.state_dir / "proxy"

    @property
    def info(self) -> Path:
        return self.dir / "proxy.json"

    @property
    def token(self) -> Path:
        return self.dir / "token"

    @property
    def config(self) -> Path:
        return self.dir / "config.json"

    @property
    def log(self) -> Path:
        return self.dir / "proxy.log"

    @property
    def handover(self) -> Path:
        return self.dir / "handover.sock"

    def ensure(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so that readers see the old or the new file, whole."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_config(path: Path, services: Mapping[str, ServiceRoutes]) -> None:
    """Persist every service's routing table atomically."""
    write_json_atomic(
        path,
        {
            "format": CONFIG_FORMAT,
            "services": {name: routes_to_dict(r) for name, r in sorted(services.items())},
        },
    )


def load_config(path: Path) -> dict[str, ServiceRoutes]:
    """The tables saved by ``save_config``; empty if the file does not exist."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read proxy config {path}: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") != CONFIG_FORMAT:
        raise InputError(f"proxy config {path} has an unknown format")
    return {str(name): routes_from_dict(r) for name, r in raw.get("services", {}).items()}


def read_or_create_token(path: Path) -> str:
    """The admin token at ``path``; a new random one (mode 0600) if there is none yet."""
    try:
        token = path.read_text(encoding="ascii").strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    fd, tmp = tempfile.mkstemp(prefix=".token.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(token + "\n")
            f.flush()
            os.fsync(f.fileno())
        # link() fails if another process created the token meanwhile: then use theirs.
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_text(encoding="ascii").strip()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return token
