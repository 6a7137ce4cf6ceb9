"""Log aggregation: every instance's output, merged per service with timestamps and levels.

Platforms hand over raw lines (a local instance writes its own file, so it keeps logging while
the controller is down; Docker and Swarm instances are read through the container log API).
The engine reads new lines at each tick and appends them here, one JSON object per line in
``logs/<service>/service.jsonl``::

    {"ts": 1714557600.25, "instance": "web-r2-0-1a2b3c", "revision": 2, "version": "v2",
     "level": "error", "line": "ERROR payment failed for order 1234"}

``level`` is read from the line when it is appended (``log_levels.py`` says how; continuation
lines such as stack frames take the level of the line above them). Entries written before
levels were stored have none: reading them infers it from the line alone.

``logs/<service>/book.json`` holds, in one atomic write after each append, the reading position
per instance (so a restarted controller continues where it stopped instead of duplicating
lines) and how many lines each (revision, version, level) has written since the service's
logs began. Those counts only grow: they are the ``zerodown_log_lines_total`` counter
(``samples``) and what the canary analysis differences into log errors per request
(``error_lines``). A state folder from before ``book.json`` has ``cursors.json`` instead: it is
read, and the counts are rebuilt once from the JSONL files.

The file rotates to ``service.jsonl.1`` past ``ROTATE_BYTES``; reading covers the current file.

Known limits: a line written while the controller was down is stamped when it is read; a crash
between appending lines and writing ``book.json`` reads those lines again (and counts them
twice) after the restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zerodown.core.samples import MetricSample
from zerodown.core.state import write_json_atomic
from zerodown.ops.log_levels import DEFAULT_LEVEL, Level, LevelReader, level_of

__all__ = ["LINES_METRIC", "LineCount", "LogBook", "LogEntry", "LogPage"]

ROTATE_BYTES = 64 * 1024 * 1024

LINES_METRIC = "zerodown_log_lines_total"


@dataclass(frozen=True)
class LogEntry:
    ts: float
    instance: str
    revision: int
    version: str
    line: str
    level: Level = DEFAULT_LEVEL

    def to_dict(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "instance": self.instance,
            "revision": self.revision,
            "version": self.version,
            "level": self.level.value,
            "line": self.line,
        }

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> LogEntry:
        """An entry as stored; one without a (known) level gets the level its line states."""
        line = str(item["line"])
        try:
            level = Level(item["level"])
        except (KeyError, ValueError):
            level = level_of(line) or DEFAULT_LEVEL
        return cls(
            ts=float(item["ts"]),
            instance=str(item["instance"]),
            revision=int(item["revision"]),
            version=str(item["version"]),
            line=line,
            level=level,
        )


@dataclass(frozen=True)
class LogPage:
    entries: list[LogEntry]
    next_offset: int  # pass back as ``offset`` to read only what came after


@dataclass(frozen=True)
class LineCount:
    """Lines one release wrote at one level since the service's logs began."""

    revision: int
    version: str
    level: Level
    count: int


@dataclass
class _Book:
    """What ``book.json`` holds for one service, in memory."""

    cursors: dict[str, str] = field(default_factory=dict)
    counts: dict[tuple[int, str, Level], int] = field(default_factory=dict)
    readers: dict[str, LevelReader] = field(default_factory=dict)  # not persisted

    def to_json(self) -> dict[str, Any]:
        return {
            "cursors": self.cursors,
            "lines": [
                {"revision": rev, "version": ver, "level": lvl.value, "count": n}
                for (rev, ver, lvl), n in sorted(self.counts.items())
            ],
        }


class LogBook:
    """Aggregated, timestamped, levelled logs of every service under one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._books: dict[str, _Book] = {}

    def _service_dir(self, service: str) -> Path:
        return self.folder / service

    def _file(self, service: str) -> Path:
        return self._service_dir(service) / "service.jsonl"

    # book.json ------------------------------------------------------------------------------
    def _book(self, service: str) -> _Book:
        """The service's cursors and counts, loaded on first use (call with the lock held)."""
        book = self._books.get(service)
        if book is None:
            book = self._load_book(service)
            self._books[service] = book
        return book

    def _load_book(self, service: str) -> _Book:
        folder = self._service_dir(service)
        try:
            raw = json.loads((folder / "book.json").read_text())
            return _Book(
                cursors={str(k): str(v) for k, v in raw.get("cursors", {}).items()},
                counts={
                    (int(c["revision"]), str(c["version"]), Level(c["level"])): int(c["count"])
                    for c in raw.get("lines", [])
                },
            )
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # damaged: rebuilt below, as for a folder from before book.json
        book = _Book()
        with contextlib.suppress(FileNotFoundError, ValueError, AttributeError):
            legacy = json.loads((folder / "cursors.json").read_text())
            book.cursors = {str(k): str(v) for k, v in legacy.items()}
        for path in (self._file(service).with_suffix(".jsonl.1"), self._file(service)):
            for entry, _ in _scan(path, 0):
                key = (entry.revision, entry.version, entry.level)
                book.counts[key] = book.counts.get(key, 0) + 1
        return book

    def _save_book(self, service: str, book: _Book) -> None:
        write_json_atomic(self._service_dir(service) / "book.json", book.to_json())
        with contextlib.suppress(FileNotFoundError):
            (self._service_dir(service) / "cursors.json").unlink()  # superseded

    # cursors --------------------------------------------------------------------------------
    def cursor(self, service: str, instance: str) -> str | None:
        with self._lock:
            return self._book(service).cursors.get(instance)

    def forget(self, service: str, instance: str) -> None:
        """Drop an instance's reading position once the instance is gone for good."""
        with self._lock:
            book = self._book(service)
            book.readers.pop(instance, None)
            if book.cursors.pop(instance, None) is not None:
                self._save_book(service, book)

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
        """Append lines read from one instance, count them and remember the cursor after them."""
        with self._lock:
            book = self._book(service)
            reader = book.readers.setdefault(instance, LevelReader())
            records: list[str] = []
            for line in lines:
                level = reader.read(line)
                key = (revision, version, level)
                book.counts[key] = book.counts.get(key, 0) + 1
                records.append(
                    json.dumps(
                        {
                            "ts": ts,
                            "instance": instance,
                            "revision": revision,
                            "version": version,
                            "level": level.value,
                            "line": line,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
            if not records and book.cursors.get(instance) == cursor:
                return 0
            self._service_dir(service).mkdir(parents=True, exist_ok=True)
            if records:
                path = self._file(service)
                if path.exists() and path.stat().st_size > ROTATE_BYTES:
                    os.replace(path, path.with_suffix(".jsonl.1"))
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write("".join(records))
            book.cursors[instance] = cursor
            self._save_book(service, book)
        return len(records)

    # counting -------------------------------------------------------------------------------
    def line_counts(self, service: str) -> list[LineCount]:
        """Lines per (revision, version, level) since the service's logs began (only grow)."""
        with self._lock:
            counts = dict(self._book(service).counts)
        return [LineCount(rev, ver, lvl, n) for (rev, ver, lvl), n in sorted(counts.items())]

    def error_lines(self, service: str) -> dict[int, int]:
        """Lines at level ``error`` or above per revision, since the service's logs began."""
        totals: dict[int, int] = {}
        for count in self.line_counts(service):
            if count.level.at_least(Level.ERROR):
                totals[count.revision] = totals.get(count.revision, 0) + count.count
        return totals

    def services(self) -> list[str]:
        """Services that have logs in this folder."""
        try:
            folders = sorted(p for p in self.folder.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []
        return [
            p.name for p in folders if (p / "book.json").exists() or (p / "service.jsonl").exists()
        ]

    def samples(self) -> list[MetricSample]:
        """``zerodown_log_lines_total{service,version,level}`` for every service (a collector).

        Revisions of the same version add up. Never raises: a folder that cannot be read is
        left out of this scrape.
        """
        out: list[MetricSample] = []
        for service in self.services():
            try:
                counts = self.line_counts(service)
            except OSError:
                continue
            summed: dict[tuple[str, Level], int] = {}
            for count in counts:
                key = (count.version, count.level)
                summed[key] = summed.get(key, 0) + count.count
            out.extend(
                MetricSample(
                    name=LINES_METRIC,
                    value=float(n),
                    kind="counter",
                    labels={"service": service, "version": version, "level": level.value},
                    help="Log lines the instances of a service wrote, by version and level.",
                )
                for (version, level), n in sorted(summed.items())
            )
        return out

    # reading --------------------------------------------------------------------------------
    def read(
        self,
        service: str,
        *,
        offset: int = 0,
        since: float | None = None,
        instance: str | None = None,
        pattern: str | None = None,
        min_level: Level | None = None,
        version: str | None = None,
        limit: int = 1000,
        tail: int | None = None,
    ) -> LogPage:
        """Entries after byte ``offset``, filtered by time, instance, regex, level and version.

        ``pattern`` is searched in the line (``re.search``); ``min_level`` keeps lines at that
        level or above. ``tail`` keeps only the last N matching entries (``logs`` without
        ``--follow``); otherwise at most ``limit`` entries are returned and ``next_offset``
        points after the last one read.
        """
        path = self._file(service)
        regex = re.compile(pattern) if pattern else None
        kept: deque[LogEntry] | list[LogEntry] = deque(maxlen=tail) if tail is not None else []
        position = offset
        size = _size(path)
        if size is None:
            return LogPage([], offset)
        if offset > size:  # rotated: start over
            offset = position = 0
        for entry, after in _scan(path, offset):
            position = after
            if since is not None and entry.ts < since:
                continue
            if instance is not None and entry.instance != instance:
                continue
            if version is not None and entry.version != version:
                continue
            if min_level is not None and not entry.level.at_least(min_level):
                continue
            if regex is not None and not regex.search(entry.line):
                continue
            kept.append(entry)
            if tail is None and len(kept) >= limit:
                break
        return LogPage(list(kept), position)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _scan(path: Path, offset: int) -> Iterator[tuple[LogEntry, int]]:
    """Complete entries of one JSONL file from byte ``offset``, each with the offset after it.

    A last line without its newline is being written: it is left for the next read. Lines that
    are not entries (damaged by a crash) are skipped.
    """
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    with handle:
        handle.seek(offset)
        position = offset
        while True:
            raw = handle.readline()
            if not raw or not raw.endswith("\n"):
                return
            position += len(raw.encode("utf-8"))
            try:
                entry = LogEntry.from_dict(json.loads(raw))
            except (ValueError, KeyError, TypeError):
                continue
            yield entry, position
