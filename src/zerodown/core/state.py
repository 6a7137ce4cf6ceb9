"""The state directory: where the controller keeps its database, token, logs and proxy files.

Resolved once, in this order: an explicit path, ``$ZERODOWN_HOME``, then ``./.zerodown``.
The API token is created on first use with mode 0600 and never printed. ``controller.json``
says where a running controller listens, so clients find it without configuration.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zerodown.core.errors import InputError

__all__ = ["ControllerInfo", "StateDir"]


@dataclass(frozen=True)
class ControllerInfo:
    """Where a controller listens, as written to ``controller.json`` by ``zerodown serve``."""

    pid: int
    url: str
    started_at: float


class StateDir:
    """Paths and small files inside one zerodown state directory."""

    def __init__(self, path: str | Path | None = None) -> None:
        chosen = path or os.environ.get("ZERODOWN_HOME") or ".zerodown"
        self.path = Path(chosen).expanduser().resolve()

    def ensure(self) -> StateDir:
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise InputError(f"cannot create state directory {self.path}: {exc.strerror}") from exc
        return self

    @property
    def database(self) -> Path:
        return self.path / "zerodown.db"

    @property
    def token_file(self) -> Path:
        return self.path / "token"

    @property
    def controller_file(self) -> Path:
        return self.path / "controller.json"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def token(self, *, create: bool = False) -> str | None:
        """The API token; created (0600) when ``create`` is set and none exists yet."""
        try:
            return self.token_file.read_text().strip() or None
        except FileNotFoundError:
            if not create:
                return None
        self.ensure()
        value = secrets.token_urlsafe(32)
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
        return value

    def write_controller(self, info: ControllerInfo) -> None:
        write_json_atomic(self.controller_file, info.__dict__)

    def read_controller(self) -> ControllerInfo | None:
        try:
            data = json.loads(self.controller_file.read_text())
            return ControllerInfo(
                pid=int(data["pid"]), url=str(data["url"]), started_at=float(data["started_at"])
            )
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def clear_controller(self, pid: int) -> None:
        """Remove ``controller.json`` if it still names this process."""
        info = self.read_controller()
        if info is not None and info.pid == pid:
            self.controller_file.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file, fsync, and rename over ``path``: readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
