"""One ``Store`` written once over DB-API, shared by SQLite and PostgreSQL.

``SqlStore`` holds every query; a small ``Dialect`` holds what differs between databases: how to
connect, the placeholder style, how a write transaction begins, how writers of one kind are
serialised, and how driver exceptions map onto zerodown's error tree.

How the store stays correct when threads and processes share a database:

- One connection per store, used under a lock, so a store is safe to share between threads.
- Every call runs in one transaction. SQLite writes begin with ``BEGIN IMMEDIATE`` (the database
  write lock is taken up front, so concurrent writers wait on ``busy_timeout`` instead of failing
  half-way); PostgreSQL uses row and advisory locks where an order matters.
- Revisions: the next revision is ``MAX + 1`` under the primary key ``(service, revision)``; a
  writer that loses a race gets a unique violation and retries with a fresh transaction.
- Event ids: appends are serialised, so ids are handed out and committed in the same order and a
  reader polling with ``after_id`` never skips an event that commits late.
- Locks: one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` statement takes, renews or refuses.
- Migrations: numbered ``NNNN_name.<dialect>.sql`` files in ``migrations/``, applied in order
  inside one transaction under the dialect's migration lock and recorded in ``schema_version``,
  so opening a database twice, or from two processes at once, applies each migration once.

Times are stored as epoch seconds and returned as aware UTC datetimes; mappings as JSON text.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from zerodown.core.clock import Clock, SystemClock
from zerodown.core.errors import (
    InputError,
    LockHeldError,
    NotFoundError,
    PermanentError,
    TemporaryError,
    ZerodownError,
)
from zerodown.core.types import InstanceId, Revision, ServiceName, Version
from zerodown.store.backups import SqlBackupCatalogue
from zerodown.store.base import (
    EventRecord,
    InstanceRecord,
    LockRecord,
    ReleaseRecord,
    ReleaseStatus,
    ServiceRecord,
)
from zerodown.store.incidents import SqlIncidentLog
from zerodown.store.monitor import SqlMonitorTables

__all__ = ["Connection", "Cursor", "Dialect", "Migration", "SqlStore", "load_migrations"]

T = TypeVar("T")

# Keys of the PostgreSQL advisory locks that serialise migrations and event appends.
MIGRATION_LOCK_KEY = 0x7A64_0001
EVENT_LOCK_KEY = 0x7A64_0002

# A revision race lost this many times in a row means something else is wrong.
_REVISION_ATTEMPTS = 50


class Cursor(Protocol):
    """The part of a DB-API cursor the store uses."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Sequence[Any]: ...


class Connection(Protocol):
    """The part of a DB-API connection the store uses (``execute`` as sqlite3 and psycopg 3
    both offer it). Connections are in autocommit mode; the store issues BEGIN and COMMIT."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...

    def close(self) -> None: ...


class Dialect(ABC):
    """What differs between the databases the store runs on."""

    #: picks the migration files: ``NNNN_name.<name>.sql``
    name: str
    #: the statement that begins a transaction that will write
    begin_write: str = "BEGIN"
    #: appended to a SELECT to lock the rows it reads until the transaction ends
    for_update: str = ""

    @abstractmethod
    def connect(self) -> Connection:
        """A new connection in autocommit mode, with session settings applied.

        Raises a ``ZerodownError`` (never a driver exception) when the database is unreachable.
        """

    @abstractmethod
    def describe(self) -> str:
        """Where the data lives, for messages (never with a password)."""

    @abstractmethod
    def translate(self, exc: Exception) -> ZerodownError | None:
        """The zerodown error for a driver exception, or None if ``exc`` is not the driver's."""

    @abstractmethod
    def is_conflict(self, exc: Exception) -> bool:
        """True if ``exc`` is a unique-constraint violation (a lost race worth retrying)."""

    def serialise(self, key: int) -> str | None:
        """A statement that makes concurrent transactions using ``key`` run one after another,
        or None when every write transaction is serialised anyway."""
        return None

    def placeholders(self, sql: str) -> str:
        """Queries are written with ``?``; dialects with another paramstyle rewrite them."""
        return sql

    def is_broken(self, connection: Connection) -> bool:
        """True if the connection cannot be used again and must be replaced."""
        return False


@dataclass(frozen=True)
class Migration:
    """One numbered schema change."""

    version: int
    name: str
    statements: tuple[str, ...]


def load_migrations(dialect_name: str) -> list[Migration]:
    """The migrations for one dialect, oldest first."""
    folder = resources.files("zerodown.store").joinpath("migrations")
    suffix = f".{dialect_name}.sql"
    migrations: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(suffix):
            continue
        stem = entry.name[: -len(suffix)]
        number, _, name = stem.partition("_")
        if not number.isdigit() or not name:
            raise ValueError(f"migration file {entry.name!r} is not named NNNN_name{suffix}")
        version = int(number)
        if version in migrations:
            raise ValueError(f"two migrations numbered {version} for {dialect_name}")
        statements = _split_statements(entry.read_text(encoding="utf-8"))
        migrations[version] = Migration(version, name, statements)
    return [migrations[v] for v in sorted(migrations)]


def _split_statements(script: str) -> tuple[str, ...]:
    """Statements of a migration script: ``--`` comment lines dropped, split on ``;``.

    Migration files must not put a ``;`` inside a string literal or a comment."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return tuple(part.strip() for part in "\n".join(lines).split(";") if part.strip())


class _Transaction:
    """Runs the store's ``?``-style queries on a connection inside one transaction."""

    def __init__(self, connection: Connection, dialect: Dialect) -> None:
        self._connection = connection
        self._dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Cursor:
        """Run one statement. Without ``params`` the text goes to the driver untouched, so
        migration scripts may use ``?`` and ``%`` freely."""
        if params is None:
            return self._connection.execute(sql)
        return self._connection.execute(self._dialect.placeholders(sql), tuple(params))

    def one(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] | None = None) -> Sequence[Any]:
        return self.execute(sql, params).fetchall()

    def serialise(self, key: int) -> None:
        statement = self._dialect.serialise(key)
        if statement is not None:
            self.execute(statement)


_SERVICE_COLUMNS = "name, spec_path, spec_text, desired_state, created_at, updated_at"
_RELEASE_COLUMNS = (
    "service, revision, version, spec_hash, spec_text, strategy, status, reason, state,"
    " created_at, updated_at, finished_at"
)
_EVENT_COLUMNS = "id, service, revision, ts, kind, message, data"
_INSTANCE_COLUMNS = (
    "id, service, revision, version, slot, platform, host, port, pid, started_at, log_path,"
    " state, restarts, meta"
)
_LOCK_COLUMNS = "name, owner, acquired_at, expires_at"


class SqlStore(SqlBackupCatalogue, SqlIncidentLog, SqlMonitorTables):
    """The ``Store`` Protocol over a DB-API database; see the module docstring for how it
    stays consistent. Use ``SqliteStore`` or ``PostgresStore`` rather than this class.
    It is also the backup catalogue (``store/backups.py``), the incident log
    (``store/incidents.py``) and the monitor's tables (``store/monitor.py``)."""

    def __init__(self, dialect: Dialect, *, clock: Clock | None = None) -> None:
        self._dialect = dialect
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.RLock()
        self._connection: Connection | None = None
        self._closed = False
        self._migrations = load_migrations(dialect.name)
        try:
            self._run(self._migrate)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._dialect.describe()}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection. Idempotent; any later call raises ``PermanentError``."""
        with self._lock:
            self._closed = True
            connection, self._connection = self._connection, None
            if connection is not None:
                with suppress(Exception):  # closing a broken connection must not raise
                    connection.close()

    def schema_version(self) -> int:
        """The newest migration applied to the database."""
        row = self._run(lambda tx: tx.one("SELECT MAX(version) FROM schema_version"), write=False)
        return int(row[0] or 0)

    # services -------------------------------------------------------------------------------
    def upsert_service(
        self, name: ServiceName, *, spec_path: str, spec_text: str, desired_state: str = "running"
    ) -> ServiceRecord:
        now = self._now()
        row = self._run(
            lambda tx: tx.one(
                f"INSERT INTO services ({_SERVICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET spec_path = excluded.spec_path,"
                " spec_text = excluded.spec_text, desired_state = excluded.desired_state,"
                f" updated_at = excluded.updated_at RETURNING {_SERVICE_COLUMNS}",
                (name, spec_path, spec_text, desired_state, now, now),
            )
        )
        return _service(row)

    def get_service(self, name: ServiceName) -> ServiceRecord:
        row = self._run(
            lambda tx: tx.one(f"SELECT {_SERVICE_COLUMNS} FROM services WHERE name = ?", (name,)),
            write=False,
        )
        if row is None:
            raise _unknown_service(name)
        return _service(row)

    def list_services(self) -> list[ServiceRecord]:
        rows = self._run(
            lambda tx: tx.all(f"SELECT {_SERVICE_COLUMNS} FROM services ORDER BY name"),
            write=False,
        )
        return [_service(row) for row in rows]

    def set_desired_state(self, name: ServiceName, desired_state: str) -> ServiceRecord:
        row = self._run(
            lambda tx: tx.one(
                "UPDATE services SET desired_state = ?, updated_at = ? WHERE name = ?"
                f" RETURNING {_SERVICE_COLUMNS}",
                (desired_state, self._now(), name),
            )
        )
        if row is None:
            raise _unknown_service(name)
        return _service(row)

    # releases -------------------------------------------------------------------------------
    def create_release(
        self,
        service: ServiceName,
        *,
        version: Version,
        spec_text: str,
        spec_hash: str,
        strategy: str,
        status: ReleaseStatus = ReleaseStatus.PENDING,
        state: Mapping[str, Any] | None = None,
    ) -> ReleaseRecord:
        def insert_next(tx: _Transaction) -> Any:
            # On PostgreSQL the service row is locked, so creators for one service queue here;
            # the primary key and the retry in _run catch any race this does not prevent.
            found = tx.one(
                f"SELECT 1 FROM services WHERE name = ?{self._dialect.for_update}", (service,)
            )
            if found is None:
                raise _unknown_service(service)
            (revision,) = tx.one(
                "SELECT COALESCE(MAX(revision), 0) + 1 FROM releases WHERE service = ?", (service,)
            )
            now = self._now()
            return tx.one(
                f"INSERT INTO releases ({_RELEASE_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                f" RETURNING {_RELEASE_COLUMNS}",
                (service, revision, version, spec_hash, spec_text, strategy,
                 ReleaseStatus(status).value, "", _to_json(state or {}), now, now, None),
            )  # fmt: skip

        return _release(self._run(insert_next, conflict_attempts=_REVISION_ATTEMPTS))

    def get_release(self, service: ServiceName, revision: Revision) -> ReleaseRecord:
        row = self._run(
            lambda tx: tx.one(
                f"SELECT {_RELEASE_COLUMNS} FROM releases WHERE service = ? AND revision = ?",
                (service, revision),
            ),
            write=False,
        )
        if row is None:
            raise _unknown_release(service, revision)
        return _release(row)

    def list_releases(self, service: ServiceName, *, limit: int = 100) -> list[ReleaseRecord]:
        rows = self._run(
            lambda tx: tx.all(
                f"SELECT {_RELEASE_COLUMNS} FROM releases WHERE service = ?"
                " ORDER BY revision DESC LIMIT ?",
                (service, _limit(limit)),
            ),
            write=False,
        )
        return [_release(row) for row in rows]

    def update_release(
        self,
        service: ServiceName,
        revision: Revision,
        *,
        status: ReleaseStatus | None = None,
        reason: str | None = None,
        state: Mapping[str, Any] | None = None,
        finished: bool = False,
    ) -> ReleaseRecord:
        now = self._now()
        assignments: list[tuple[str, Any]] = [("updated_at", now)]
        if status is not None:
            assignments.append(("status", ReleaseStatus(status).value))
        if reason is not None:
            assignments.append(("reason", reason))
        if state is not None:
            assignments.append(("state", _to_json(state)))
        if finished:
            assignments.append(("finished_at", now))
        columns = ", ".join(f"{column} = ?" for column, _ in assignments)
        values = [value for _, value in assignments]
        row = self._run(
            lambda tx: tx.one(
                f"UPDATE releases SET {columns} WHERE service = ? AND revision = ?"
                f" RETURNING {_RELEASE_COLUMNS}",
                (*values, service, revision),
            )
        )
        if row is None:
            raise _unknown_release(service, revision)
        return _release(row)

    # events ---------------------------------------------------------------------------------
    def append_event(
        self,
        service: ServiceName,
        *,
        kind: str,
        message: str,
        revision: Revision | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> EventRecord:
        payload = _to_json(data or {})

        def insert(tx: _Transaction) -> Any:
            tx.serialise(EVENT_LOCK_KEY)
            return tx.one(
                "INSERT INTO events (service, revision, ts, kind, message, data)"
                f" VALUES (?, ?, ?, ?, ?, ?) RETURNING {_EVENT_COLUMNS}",
                (service, revision, self._now(), kind, message, payload),
            )

        return _event(self._run(insert))

    def list_events(
        self,
        service: ServiceName | None = None,
        *,
        after_id: int = 0,
        revision: Revision | None = None,
        limit: int = 1000,
    ) -> list[EventRecord]:
        conditions = ["id > ?"]
        params: list[Any] = [after_id]
        if service is not None:
            conditions.append("service = ?")
            params.append(service)
        if revision is not None:
            conditions.append("revision = ?")
            params.append(revision)
        where = " AND ".join(conditions)
        rows = self._run(
            lambda tx: tx.all(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE {where} ORDER BY id LIMIT ?",
                (*params, _limit(limit)),
            ),
            write=False,
        )
        return [_event(row) for row in rows]

    # instances ------------------------------------------------------------------------------
    def save_instance(self, record: InstanceRecord) -> None:
        updates = ", ".join(
            f"{column} = excluded.{column}"
            for column in (c.strip() for c in _INSTANCE_COLUMNS.split(","))
            if column != "id"
        )
        values = (
            record.id, record.service, record.revision, record.version, record.slot,
            record.platform, record.host, record.port, record.pid, record.started_at,
            record.log_path, record.state, record.restarts, _to_json(record.meta),
        )  # fmt: skip
        self._run(
            lambda tx: tx.execute(
                f"INSERT INTO instances ({_INSTANCE_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                f" ON CONFLICT (id) DO UPDATE SET {updates}",
                values,
            )
        )

    def list_instances(
        self, service: ServiceName | None = None, *, states: tuple[str, ...] = ("running",)
    ) -> list[InstanceRecord]:
        """Instances in any of ``states`` (an empty tuple means every state), ordered by
        service, revision, slot and id."""
        conditions: list[str] = []
        params: list[Any] = []
        if service is not None:
            conditions.append("service = ?")
            params.append(service)
        if states:
            conditions.append(f"state IN ({', '.join('?' for _ in states)})")
            params.extend(states)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._run(
            lambda tx: tx.all(
                f"SELECT {_INSTANCE_COLUMNS} FROM instances{where}"
                " ORDER BY service, revision, slot, id",
                params,
            ),
            write=False,
        )
        return [_instance(row) for row in rows]

    def delete_instance(self, instance_id: InstanceId) -> None:
        """Forget an instance; deleting an unknown id does nothing."""
        self._run(lambda tx: tx.execute("DELETE FROM instances WHERE id = ?", (instance_id,)))

    # locks ----------------------------------------------------------------------------------
    def acquire_lock(self, name: str, *, owner: str, ttl: float) -> LockRecord:
        if not owner:
            raise InputError(f"lock {name!r}: the owner must not be empty")
        if not ttl > 0:
            raise InputError(f"lock {name!r}: ttl must be positive, got {ttl!r}")

        def take(tx: _Transaction) -> Any:
            now = self._now()
            # One statement decides: insert if free, take over if expired, renew if ours.
            taken = tx.one(
                f"INSERT INTO locks ({_LOCK_COLUMNS}) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
                " acquired_at = CASE WHEN locks.owner = excluded.owner"
                " THEN locks.acquired_at ELSE excluded.acquired_at END,"
                " expires_at = excluded.expires_at"
                " WHERE locks.owner = excluded.owner OR locks.expires_at <= ?"
                f" RETURNING {_LOCK_COLUMNS}",
                (name, owner, now, now + ttl, now),
            )
            if taken is not None:
                return taken
            holder = tx.one(f"SELECT {_LOCK_COLUMNS} FROM locks WHERE name = ?", (name,))
            if holder is None:  # released between the two statements: the caller may retry
                raise TemporaryError(f"lock {name!r} changed hands; try again", retry_after=0)
            held = _lock(holder)
            raise LockHeldError(
                f"lock {name!r} is held by {held.owner!r} until {held.expires_at.isoformat()}"
            )

        return _lock(self._run(take))

    def release_lock(self, name: str, *, owner: str) -> None:
        """Release the lock if ``owner`` holds it; otherwise do nothing."""
        self._run(
            lambda tx: tx.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))
        )

    def get_lock(self, name: str) -> LockRecord | None:
        """The lock's current holder, or None if it is free or has expired."""
        row = self._run(
            lambda tx: tx.one(
                f"SELECT {_LOCK_COLUMNS} FROM locks WHERE name = ? AND expires_at > ?",
                (name, self._now()),
            ),
            write=False,
        )
        return None if row is None else _lock(row)

    # machinery ------------------------------------------------------------------------------
    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _migrate(self, tx: _Transaction) -> None:
        tx.serialise(MIGRATION_LOCK_KEY)
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at DOUBLE PRECISION NOT NULL)"
        )
        applied = {int(row[0]) for row in tx.all("SELECT version FROM schema_version")}
        known = max((m.version for m in self._migrations), default=0)
        if applied and max(applied) > known:
            raise InputError(
                f"{self._dialect.describe()} has schema version {max(applied)}, newer than this"
                f" zerodown knows ({known}); upgrade zerodown to use it"
            )
        for migration in self._migrations:
            if migration.version in applied:
                continue
            for statement in migration.statements:
                tx.execute(statement)
            tx.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, self._now()),
            )

    def _connect(self) -> Connection:
        if self._closed:
            raise PermanentError(f"the store for {self._dialect.describe()} is closed")
        if self._connection is None:
            self._connection = self._dialect.connect()
        return self._connection

    def _run(
        self, work: Callable[[_Transaction], T], *, write: bool = True, conflict_attempts: int = 1
    ) -> T:
        """Run ``work`` in one transaction and commit it; roll back on any error.

        Driver exceptions are translated into zerodown's error tree. A unique violation is
        retried with a fresh transaction up to ``conflict_attempts`` times in all."""
        with self._lock:
            attempt = 0
            while True:
                attempt += 1
                connection = self._connect()
                try:
                    connection.execute(self._dialect.begin_write if write else "BEGIN")
                    result = work(_Transaction(connection, self._dialect))
                    connection.execute("COMMIT")
                    return result
                except ZerodownError:
                    self._rollback(connection)
                    raise
                except Exception as exc:
                    self._rollback(connection)
                    if attempt < conflict_attempts and self._dialect.is_conflict(exc):
                        continue
                    translated = self._dialect.translate(exc)
                    if translated is None:
                        raise
                    raise translated from exc
                except BaseException:  # KeyboardInterrupt and friends: leave no open transaction
                    self._rollback(connection)
                    raise

    def _rollback(self, connection: Connection) -> None:
        """Roll back whatever is open; replace the connection if it is broken."""
        with suppress(Exception):  # no transaction open, or the connection is gone
            connection.execute("ROLLBACK")
        if self._dialect.is_broken(connection):
            self._connection = None
            with suppress(Exception):
                connection.close()


# rows -> records ----------------------------------------------------------------------------
def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _to_json(mapping: Mapping[str, Any]) -> str:
    return json.dumps(dict(mapping))


def _from_json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def _limit(limit: int) -> int:
    if limit < 0:
        raise InputError(f"limit must not be negative, got {limit}")
    return limit


def _unknown_service(name: str) -> NotFoundError:
    return NotFoundError(f"service {name!r} not found")


def _unknown_release(service: str, revision: int) -> NotFoundError:
    return NotFoundError(f"service {service!r} has no release with revision {revision}")


def _service(row: Sequence[Any]) -> ServiceRecord:
    name, spec_path, spec_text, desired_state, created_at, updated_at = row
    return ServiceRecord(
        name=ServiceName(name),
        spec_path=spec_path,
        spec_text=spec_text,
        desired_state=desired_state,
        created_at=_time(created_at),
        updated_at=_time(updated_at),
    )


def _release(row: Sequence[Any]) -> ReleaseRecord:
    (service, revision, version, spec_hash, spec_text, strategy, status, reason, state,
     created_at, updated_at, finished_at) = row  # fmt: skip
    return ReleaseRecord(
        service=ServiceName(service),
        revision=Revision(int(revision)),
        version=Version(version),
        spec_hash=spec_hash,
        spec_text=spec_text,
        strategy=strategy,
        status=ReleaseStatus(status),
        reason=reason,
        created_at=_time(created_at),
        updated_at=_time(updated_at),
        finished_at=None if finished_at is None else _time(finished_at),
        state=_from_json(state),
    )


def _event(row: Sequence[Any]) -> EventRecord:
    event_id, service, revision, ts, kind, message, data = row
    return EventRecord(
        id=int(event_id),
        service=ServiceName(service),
        revision=None if revision is None else Revision(int(revision)),
        ts=_time(ts),
        kind=kind,
        message=message,
        data=_from_json(data),
    )


def _instance(row: Sequence[Any]) -> InstanceRecord:
    (instance_id, service, revision, version, slot, platform, host, port, pid, started_at,
     log_path, state, restarts, meta) = row  # fmt: skip
    return InstanceRecord(
        id=InstanceId(instance_id),
        service=ServiceName(service),
        revision=Revision(int(revision)),
        version=Version(version),
        slot=int(slot),
        platform=platform,
        host=host,
        port=int(port),
        pid=None if pid is None else int(pid),
        started_at=float(started_at),
        log_path=log_path,
        state=state,
        restarts=int(restarts),
        meta=_from_json(meta),
    )


def _lock(row: Sequence[Any]) -> LockRecord:
    name, owner, acquired_at, expires_at = row
    return LockRecord(
        name=name, owner=owner, acquired_at=_time(acquired_at), expires_at=_time(expires_at)
    )
