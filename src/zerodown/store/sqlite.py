"""The embedded default store: one SQLite file under the state directory.

WAL mode lets readers (the dashboard, ``zerodown status``) run while the controller writes;
``busy_timeout`` makes a second process wait for the write lock instead of failing; foreign keys
are on so a release cannot point at an unknown service. ``":memory:"`` gives a private database
for tests (it lives as long as the store).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import cast

from zerodown.core.clock import Clock
from zerodown.core.errors import InputError, OperationFailedError, TemporaryError, ZerodownError
from zerodown.store.sql import Connection, Dialect, SqlStore

__all__ = ["SqliteStore"]

MEMORY = ":memory:"

# How long a writer waits for another process's write lock before giving up.
BUSY_TIMEOUT_SECONDS = 30.0


class SqliteDialect(Dialect):
    """SQLite through the standard library's ``sqlite3``."""

    name = "sqlite"
    # Take the write lock when the transaction begins: a deferred transaction that later
    # upgrades to a writer can fail with SQLITE_BUSY without waiting on busy_timeout.
    begin_write = "BEGIN IMMEDIATE"

    def __init__(self, path: Path | str) -> None:
        self.path = path

    def describe(self) -> str:
        return f"SQLite database {self.path}"

    def connect(self) -> Connection:
        if isinstance(self.path, Path):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"cannot create the folder for {self.describe()}: {exc}") from exc
        try:
            connection = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,  # autocommit: the store issues BEGIN and COMMIT itself
                check_same_thread=False,  # the store serialises use with its own lock
            )
        except sqlite3.Error as exc:
            raise self._translate_or_fail(exc) from exc
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            connection.execute("PRAGMA foreign_keys = ON")
            if self.path != MEMORY:
                connection.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            connection.close()
            raise self._translate_or_fail(exc) from exc
        return cast(Connection, connection)

    def translate(self, exc: Exception) -> ZerodownError | None:
        if not isinstance(exc, sqlite3.Error):
            return None
        return self._translate_or_fail(exc)

    def is_conflict(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc).upper()

    def _translate_or_fail(self, exc: sqlite3.Error) -> ZerodownError:
        text = str(exc)
        lowered = text.lower()
        if "locked" in lowered or "busy" in lowered:
            return TemporaryError(f"{self.describe()} is busy: {text}", retry_after=1.0)
        if "unable to open" in lowered or "not a database" in lowered or "readonly" in lowered:
            return InputError(f"cannot use {self.describe()}: {text}")
        return OperationFailedError(f"{self.describe()}: {text}")


class SqliteStore(SqlStore):
    """The store in one SQLite file (created with its parent folders if missing)."""

    def __init__(self, path: str | Path, *, clock: Clock | None = None) -> None:
        self.path: Path | str = MEMORY if str(path) == MEMORY else Path(path).expanduser()
        super().__init__(SqliteDialect(self.path), clock=clock)
