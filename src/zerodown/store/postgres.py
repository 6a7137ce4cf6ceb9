"""The store on PostgreSQL, for controllers that share state or want a managed database.

Uses psycopg 3, imported only when a ``PostgresStore`` is made so that the embedded default
needs no PostgreSQL driver; without it the error names the extra to install. Every psycopg
exception is translated here: an unreachable or restarting server is a ``TemporaryError`` (a
broken connection is replaced on the next call), anything else an ``OperationFailedError``.
"""

from __future__ import annotations

from types import ModuleType
from typing import cast

from zerodown.core.clock import Clock
from zerodown.core.errors import InputError, OperationFailedError, TemporaryError, ZerodownError
from zerodown.core.redact import mask_url
from zerodown.store.sql import Connection, Dialect, SqlStore

__all__ = ["PostgresStore"]

CONNECT_TIMEOUT_SECONDS = 10


def _import_psycopg() -> ModuleType:
    try:
        import psycopg
    except ImportError as exc:
        raise InputError(
            "PostgreSQL support needs the 'postgres' extra: pip install 'zerodown[postgres]'"
        ) from exc
    return psycopg


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    return mask_url(url)


class PostgresDialect(Dialect):
    """PostgreSQL through psycopg 3."""

    name = "postgresql"
    for_update = " FOR UPDATE"

    def __init__(self, url: str) -> None:
        self.url = url
        self._psycopg = _import_psycopg()

    def describe(self) -> str:
        return f"PostgreSQL database {redact(self.url)}"

    def connect(self) -> Connection:
        psycopg = self._psycopg
        try:
            params = psycopg.conninfo.conninfo_to_dict(self.url)
        except psycopg.Error as exc:
            raise InputError(f"invalid PostgreSQL URL {redact(self.url)}: {exc}") from exc
        extra: dict[str, object] = {}
        if "connect_timeout" not in params:
            extra["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
        if "application_name" not in params:
            extra["application_name"] = "zerodown"
        try:
            connection = psycopg.connect(self.url, autocommit=True, **extra)
        except psycopg.Error as exc:
            raise TemporaryError(
                f"cannot connect to {self.describe()}: {_first_line(exc)}", retry_after=2.0
            ) from exc
        return cast(Connection, connection)

    def placeholders(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def serialise(self, key: int) -> str | None:
        return f"SELECT pg_advisory_xact_lock({int(key)})"

    def translate(self, exc: Exception) -> ZerodownError | None:
        psycopg = self._psycopg
        if not isinstance(exc, psycopg.Error):
            return None
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return TemporaryError(f"{self.describe()}: {_first_line(exc)}", retry_after=2.0)
        return OperationFailedError(f"{self.describe()}: {_first_line(exc)}")

    def is_conflict(self, exc: Exception) -> bool:
        return isinstance(exc, self._psycopg.errors.UniqueViolation)

    def is_broken(self, connection: Connection) -> bool:
        return bool(getattr(connection, "closed", False) or getattr(connection, "broken", False))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class PostgresStore(SqlStore):
    """The store in a PostgreSQL database given by a ``postgresql://`` URL."""

    def __init__(self, url: str, *, clock: Clock | None = None) -> None:
        self.url = url
        super().__init__(PostgresDialect(url), clock=clock)
