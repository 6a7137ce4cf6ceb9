"""Log aggregation: every instance's output, merged per service with timestamps.

Platforms hand over raw lines (a local instance writes its own file, so it keeps logging while
the controller is down). The engine reads new lines at each tick and appends them here, one JSON
object per line in ``logs/<service>/service.jsonl``: ``{"ts", "instance", "revision",
"version", "line"}``. Reading positions per instance are kept in ``cursors.json`` so a restarted
controller continues where it stopped instead of duplicating lines.

Known limit: a line written while the controller was down is stamped when it is read.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zerodown.core.state import write_json_atomic

__all__ = ["LogBook", "LogEntry", "LogPage"]

ROTATE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class LogEntry:
    ts: float
    instance: str
    revision: int
    version: str
    line: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "instance": self.instance,
            "revision": self.revision,
            "version": self.version,
            "line": self.line,
        }


@dataclass(frozen=True)
class LogPage:
    entries: list[LogEntry]
    next_offset: int  # pass back as ``offset`` to read only what came after


class LogBook:
    """Aggregated, timestamped logs of every service under one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._cursors: dict[str, dict[str, str]] = {}

    def _service_dir(self, service: str) -> Path:
        return self.folder / service

    def _file(self, service: str) -> Path:
        return self._service_dir(service) / "service.jsonl"

    # cursors --------------------------------------------------------------------------------
    def cursor(self, service: str, instance: str) -> str | None:
        with self._lock:
            return self._load_cursors(service).get(instance)

    def _load_cursors(self, service: str) -> dict[str, str]:
        if service not in self._cursors:
            try:
                raw = json.loads((self._service_dir(service) / "cursors.json").read_text())
                self._cursors[service] = {str(k): str(v) for k, v in raw.items()}
            except (FileNotFoundError, ValueError):
                self._cursors[service] = {}
        return self._cursors[service]

    def forget(self, service: str, instance: str) -> None:
        """Drop an instance's reading position once the instance is gone for good."""
        with self._lock:
            cursors = self._load_cursors(service)
            if cursors.pop(instance, None) is not None:
                write_json_atomic(self._service_dir(service) / "cursors.json", cursors)

    # writing --------------------------------------------------------------------------------
    def append(
        self,
        service: str,
        *,
        instance: str,
        revision: int,
        version: str,
        lines: Iterable[str],
        cursor: str,
        ts: float,
    ) -> int:
        """Append lines read from one instance and remember the cursor after them."""
        payload = "".join(
            json.dumps(
                {
                    "ts": ts,
                    "instance": instance,
                    "revision": revision,
                    "version": version,
                    "line": line,
                },
                ensure_ascii=False,
            )
            + "\n"
            for line in lines
        )
        with self._lock:
            cursors = self._load_cursors(service)
            if not payload and cursors.get(instance) == cursor:
                return 0
            self._service_dir(service).mkdir(parents=True, exist_ok=True)
            path = self._file(service)
            if payload:
                if path.exists() and path.stat().st_size > ROTATE_BYTES:
                    os.replace(path, path.with_suffix(".jsonl.1"))
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write(payload)
            cursors[instance] = cursor
            write_json_atomic(self._service_dir(service) / "cursors.json", cursors)
        return payload.count("\n")

    # reading --------------------------------------------------------------------------------
    def read(
        self,
        service: str,
        *,
        offset: int = 0,
        since: float | None = None,
        instance: str | None = None,
        pattern: str | None = None,
        limit: int = 1000,
        tail: int | None = None,
    ) -> LogPage:
        """Entries after byte ``offset``, filtered by time, instance and regex.

        ``tail`` keeps only the last N matching entries (``logs`` without ``--follow``).
        """
        path = self._file(service)
        regex = re.compile(pattern) if pattern else None
        entries: list[LogEntry] = []
        try:
            handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return LogPage([], offset)
        with handle:
            size = os.fstat(handle.fileno()).st_size
            if offset > size:  # rotated: start over
                offset = 0
            handle.seek(offset)
            position = offset
            while True:
                raw = handle.readline()
                if not raw or not raw.endswith("\n"):
                    break
                position += len(raw.encode("utf-8"))
                try:
                    item = json.loads(raw)
                except ValueError:
                    continue
                entry = LogEntry(
                    ts=float(item["ts"]),
                    instance=str(item["instance"]),
                    revision=int(item["revision"]),
                    version=str(item["version"]),
                    line=str(item["line"]),
                )
                if since is not None and entry.ts < since:
                    continue
                if instance is not None and entry.instance != instance:
                    continue
                if regex is not None and not regex.search(entry.line):
                    continue
                entries.append(entry)
                if tail is None and len(entries) >= limit:
                    break
        if tail is not None:
            entries = entries[-tail:]
        return LogPage(entries, position)
