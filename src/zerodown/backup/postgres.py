"""PostgreSQL databases: ``pg_dump`` archives in custom format, restored with ``pg_restore``.

``pg_dump --format=custom`` takes a consistent snapshot of the database in one transaction
while the application keeps working; the archive is written under a temporary name, renamed
when whole, and hashed. ``verify`` re-reads the archive's SHA-256 and has ``pg_restore --list``
read its table of contents.

A restore goes into a new database (``<name>_restored_<id>`` on the same server) unless told
otherwise: a database name (on the target's server) or a ``postgresql://`` URL, which may name
another server. Whether the destination exists is asked of the destination's own server, and
a new database is created there (never on the target's server). A database that exists is only
restored into with ``force``, and then with ``pg_restore --clean --if-exists``; every restore
runs in a single transaction (``--single-transaction --exit-on-error``), so a failed restore
leaves an existing database as it was, and a database it created is dropped again.

Secrets never reach a command line (which ``ps`` shows to everyone) or anything stored or
shown: the password of a URL (``user:PASSWORD@`` or ``?password=``) is handed over in
``PGPASSWORD``, an ``sslpassword`` in a private service file named by ``PGSERVICEFILE``, and
the URL given to the tools and kept in the catalogue has neither. The tools come from the
Debian package ``postgresql-client``.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode, urlsplit

from zerodown.backup.base import RestoreReport, VerifyReport
from zerodown.backup.digests import check_file_artifact, publish, sha256_file
from zerodown.backup.tools import ToolResult, run_tool
from zerodown.core.errors import InputError, OperationFailedError, RefusedError
from zerodown.core.redact import redact_text
from zerodown.store.backups import BackupArtifact

__all__ = ["Connection", "PostgresTarget", "split_password"]

PG_TIMEOUT_SECONDS: Final = 6 * 3600.0
_PACKAGE: Final = "postgresql-client"
_DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$-]{0,62}")
_SECRET_PARAMETERS: Final = frozenset({"password", "sslpassword"})
_LOOPBACK: Final = frozenset({"", "localhost", "127.0.0.1", "::1", "[::1]"})
_MAINTENANCE_DATABASES: Final = ("postgres", "template1")
"""Databases every server has, for checking and creating a database on another server."""


@dataclass(frozen=True)
class Connection:
    """A PostgreSQL URL split into what may be shown and the secrets it carried.

    ``url`` has no password (neither ``user:PASSWORD@`` nor ``?password=``) and no
    ``sslpassword``: it is what goes on a command line, into the catalogue and into messages.
    ``env()`` hands the secrets to libpq through the environment."""

    url: str
    password: str | None = None
    sslpassword: str | None = None

    @classmethod
    def parse(cls, url: str) -> Connection:
        try:
            parts = urlsplit(url)
            password = unquote(parts.password) if parts.password is not None else None
        except ValueError as exc:
            raise InputError(f"not a PostgreSQL URL: {exc}") from None
        netloc = parts.netloc
        if parts.password is not None:
            hosts = netloc.rpartition("@")[2]
            user = netloc.rpartition("@")[0].partition(":")[0]
            netloc = f"{user}@{hosts}" if user else hosts
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        secrets = {key.lower(): value for key, value in pairs if key.lower() in _SECRET_PARAMETERS}
        kept = [(key, value) for key, value in pairs if key.lower() not in _SECRET_PARAMETERS]
        query = (
            urlencode(kept, quote_via=quote, safe="/:") if len(kept) != len(pairs) else parts.query
        )
        clean = _unsplit(parts._replace(netloc=netloc, query=query))
        return cls(
            url=clean,
            password=password if password is not None else secrets.get("password"),
            sslpassword=secrets.get("sslpassword"),
        )

    @property
    def database(self) -> str:
        return database_name(self.url)

    @property
    def server(self) -> tuple[str, int]:
        """The server, normalised to compare two URLs: lower-case host (every loopback name
        and a local socket as ``local``) and port (5432 by default)."""
        parts = urlsplit(self.url)
        params = {k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
        location = parts.netloc.rpartition("@")[2]
        host, port_text = location, ""
        if location.startswith("["):  # [::1]:5432
            host, _, rest = location[1:].partition("]")
            port_text = rest.removeprefix(":")
        elif location.count(":") == 1:
            host, _, port_text = location.partition(":")
        host = unquote(params.get("host", host)).lower()
        port_text = params.get("port", port_text)
        if host in _LOOPBACK or host.startswith("/"):
            host = "local"
        return host, int(port_text) if port_text.isdigit() else 5432

    @property
    def user(self) -> str:
        parts = urlsplit(self.url)
        params = {k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
        return params.get("user") or unquote(parts.username or "")

    def with_database(self, database: str) -> Connection:
        """The same server and credentials, another database."""
        return replace(self, url=with_database(self.url, database))

    def same_database(self, other: Connection) -> bool:
        """Whether ``other`` names the same database on the same server (however written)."""
        return (self.server, self.database) == (other.server, other.database)

    def same_login(self, other: Connection) -> bool:
        """Whether ``other`` is the same server, user and credentials."""
        return (self.server, self.user, self.password, self.sslpassword) == (
            other.server,
            other.user,
            other.password,
            other.sslpassword,
        )

    def with_secrets_url(self) -> str:
        """The URL with its secrets put back, for a process that must connect (a drilled
        service). Never log it."""
        parts = urlsplit(self.url)
        netloc = parts.netloc
        if self.password is not None:
            user, _, hosts = netloc.rpartition("@")
            netloc = f"{user}:{quote(self.password, safe='')}@{hosts}"
        query = parts.query
        if self.sslpassword is not None:
            extra = urlencode({"sslpassword": self.sslpassword}, quote_via=quote)
            query = f"{query}&{extra}" if query else extra
        return _unsplit(parts._replace(netloc=netloc, query=query))

    @contextlib.contextmanager
    def env(self) -> Iterator[dict[str, str]]:
        """The environment that hands the secrets to libpq: ``PGPASSWORD``, and for an
        ``sslpassword`` a service file readable only by this user (libpq has no variable for
        it), removed afterwards."""
        env = {"PGPASSWORD": self.password} if self.password is not None else {}
        if self.sslpassword is None:
            yield env
            return
        if "\n" in self.sslpassword or "\r" in self.sslpassword:
            raise InputError("an sslpassword with a line break is not supported")
        with tempfile.TemporaryDirectory(prefix="zerodown-pg-") as folder:
            path = Path(folder) / "pg_service.conf"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(f"[zerodown]\nsslpassword={self.sslpassword}\n")
            yield {**env, "PGSERVICEFILE": str(path), "PGSERVICE": "zerodown"}


def _unsplit(parts: SplitResult) -> str:
    """``parts`` as a URL, always with ``//`` (``urlunsplit`` drops it before an empty host,
    and libpq needs ``postgresql:///app`` for a database on the local socket)."""
    url = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if parts.query:
        url += f"?{parts.query}"
    if parts.fragment:
        url += f"#{parts.fragment}"
    return url


def split_password(url: str) -> tuple[str, str | None]:
    """``url`` without its password and secret parameters, and the password (None if none)."""
    connection = Connection.parse(url)
    return connection.url, connection.password


def with_database(url: str, database: str) -> str:
    """``url`` naming another database on the same server."""
    parts = urlsplit(url)
    return _unsplit(parts._replace(path=f"/{quote(database, safe='')}"))


def database_name(url: str) -> str:
    name = unquote(urlsplit(url).path.lstrip("/"))
    if not name:
        raise InputError(f"the PostgreSQL URL {split_password(url)[0]} names no database")
    return name


class PostgresTarget:
    """One PostgreSQL database, named by a ``postgresql://`` URL."""

    kind = "postgresql"

    def __init__(self, *, name: str, url: str, timeout: float = PG_TIMEOUT_SECONDS) -> None:
        self.name = name
        self.connection = Connection.parse(url)
        self.url = self.connection.url  # no secrets: safe for argv, the catalogue, messages
        self.timeout = timeout

    def describe(self) -> str:
        return self.url

    def _run(
        self, *argv: str, connection: Connection | None = None, stdin_text: str | None = None
    ) -> ToolResult:
        """Run a PostgreSQL tool with ``connection``'s secrets (the target's by default) in
        its environment."""
        with (connection or self.connection).env() as secrets:
            return run_tool(
                list(argv),
                env={**secrets, "PGCONNECT_TIMEOUT": "10"},
                timeout=self.timeout,
                package=_PACKAGE,
                stdin_text=stdin_text,
            )

    def tool_versions(self) -> dict[str, str]:
        versions = {}
        for tool in ("pg_dump", "pg_restore"):
            result = run_tool([tool, "--version"], timeout=60, package=_PACKAGE)
            # "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
            match = re.search(r"\)\s+(\S+)", result.stdout)
            versions[tool] = match.group(1) if match else result.stdout.strip()
        return versions

    def back_up(self, *, backup_id: int, folder: Path) -> list[BackupArtifact]:
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{backup_id}-{self.name}.pgdump"
        temporary = folder / f".{final.name}.tmp"
        temporary.unlink(missing_ok=True)
        try:
            result = self._run(
                "pg_dump", "--format=custom", f"--file={temporary}", f"--dbname={self.url}"
            )
            if result.exit_code != 0:
                raise OperationFailedError(
                    f"pg_dump of {self.url} failed (exit code {result.exit_code}): "
                    f"{self._redact(result.last_error_line)}"
                )
            publish(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        digest, size = sha256_file(final)
        return [
            BackupArtifact(
                name="dump",
                location=str(final),
                size_bytes=size,
                sha256=digest,
                meta={"source": self.url, "format": "custom"},
            )
        ]

    def verify(self, artifacts: Sequence[BackupArtifact]) -> VerifyReport:
        checks = []
        for artifact in artifacts:
            check = check_file_artifact(artifact)
            if check.ok:
                listing = run_tool(
                    ["pg_restore", "--list", artifact.location], timeout=600, package=_PACKAGE
                )
                if listing.exit_code != 0:
                    check = check.with_problem(f"pg_restore --list: {listing.last_error_line}")
            checks.append(check)
        return VerifyReport(artifacts=tuple(checks))

    def destination(self, destination: str | None, *, backup_id: int) -> Connection:
        """Where a restore goes: a new name beside the live database (None), a database on
        the target's server (a name), or a ``postgresql://`` URL (any server; a password in it
        is used for that server only)."""
        if destination is None:
            return self.connection.with_database(f"{self.database}_restored_{backup_id}")
        if "://" in destination:
            return Connection.parse(destination)
        if _DATABASE_NAME.fullmatch(destination):
            return self.connection.with_database(destination)
        raise InputError(
            f"restore destination {destination!r}: give a database name (letters, digits, "
            "_ $ -) or a postgresql:// URL"
        )

    def restore(
        self,
        artifacts: Sequence[BackupArtifact],
        *,
        backup_id: int,
        destination: str | None,
        force: bool,
    ) -> RestoreReport:
        (artifact,) = artifacts
        check = check_file_artifact(artifact)
        if not check.ok:
            raise OperationFailedError(
                f"backup {backup_id} is corrupted ({check.problem}); nothing was restored"
            )
        target = self.destination(destination, backup_id=backup_id)
        name = target.database
        replaces_live = target.same_database(self.connection)
        admin = self._maintenance(target)  # on the destination's own server
        exists = self._exists(admin, name)
        if exists and not force:
            what = "the live database" if replaces_live else "it"
            raise RefusedError(
                f"database {name} exists on {_server_text(target)}: restoring into it would "
                f"overwrite {what}; choose another destination or pass --force"
            )
        if not exists:
            created = self._run(
                "createdb", f"--maintenance-db={admin.url}", "--", name, connection=admin
            )
            if created.exit_code != 0:
                raise OperationFailedError(
                    f"createdb {name} on {_server_text(target)} failed: "
                    f"{self._redact(created.last_error_line, target)}"
                )
        # One transaction: a failure leaves an existing database as it was and a new one empty.
        options = ["--exit-on-error", "--single-transaction", "--no-password"]
        if exists:
            options += ["--clean", "--if-exists"]
        restored = self._run(
            "pg_restore", *options, f"--dbname={target.url}", artifact.location, connection=target
        )
        if restored.exit_code != 0:
            error = self._redact(restored.last_error_line, target)
            if exists:
                raise OperationFailedError(
                    f"pg_restore into {name} failed, so nothing of it was applied (one "
                    f"transaction): {error}"
                )
            dropped = self._drop(admin, name)
            raise OperationFailedError(
                f"pg_restore into the new database {name} failed: {error}; "
                + ("it was dropped again" if dropped else f"the empty database {name} is left")
            )
        size = self._database_size(target)
        return RestoreReport(
            destination=target.url,
            replaced_live=replaces_live,
            bytes_written=check.size_bytes or 0,
            sha256=check.actual_sha256 or "",
            expected_sha256=artifact.sha256,
            details={
                "database": name,
                "server": _server_text(target),
                "created": not exists,
                "database_size_bytes": size,
                "archive_bytes_read": check.size_bytes,
            },
        )

    def _maintenance(self, target: Connection) -> Connection:
        """A database to connect to on ``target``'s server, to check for and create databases
        there: the live database when it is the target's own server and login, else the
        ``postgres`` (or ``template1``) database every server has."""
        if target.same_login(self.connection):
            return self.connection
        first_error: OperationFailedError | None = None
        for database in _MAINTENANCE_DATABASES:
            candidate = target.with_database(database)
            try:
                self._query(candidate, "SELECT 1;")
            except OperationFailedError as exc:
                first_error = first_error or exc
                continue
            return candidate
        assert first_error is not None
        raise first_error

    def _query(self, connection: Connection, sql: str, **variables: str) -> str:
        argv = ["psql", "--no-psqlrc", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        for key, value in variables.items():
            argv += ["-v", f"{key}={value}"]
        result = self._run(
            *argv, f"--dbname={connection.url}", connection=connection, stdin_text=sql
        )
        if result.exit_code != 0:
            raise OperationFailedError(
                f"cannot query {connection.url}: {self._redact(result.last_error_line, connection)}"
            )
        return result.stdout.strip()

    def _exists(self, admin: Connection, name: str) -> bool:
        found = self._query(
            admin, "SELECT count(*) FROM pg_database WHERE datname = :'name';", name=name
        )
        return found == "1"

    def _drop(self, admin: Connection, name: str) -> bool:
        dropped = self._run(
            "dropdb", "--if-exists", f"--maintenance-db={admin.url}", "--", name, connection=admin
        )
        return dropped.exit_code == 0

    def _database_size(self, connection: Connection) -> int | None:
        try:
            return int(self._query(connection, "SELECT pg_database_size(current_database());"))
        except (OperationFailedError, ValueError):
            return None

    def _redact(self, text: str, *others: Connection) -> str:
        """A tool's message with any secret of the target's (or ``others``') masked."""
        secrets = [
            value
            for connection in (self.connection, *others)
            for value in (connection.password, connection.sslpassword)
            if value
        ]
        return redact_text(text, secrets=secrets)

    def remove(self, artifacts: Sequence[BackupArtifact]) -> None:
        for artifact in artifacts:
            Path(artifact.location).unlink(missing_ok=True)

    # scratch databases (DR drills) -----------------------------------------------------------
    @property
    def database(self) -> str:
        """The live database's name."""
        return self.connection.database

    def connection_url(self, database: str) -> str:
        """A URL for ``database`` on the target's server with the target's credentials, for a
        process that must connect to it (a drilled service). Never log it: it may hold the
        password."""
        return self.connection.with_database(database).with_secrets_url()

    def database_exists(self, name: str) -> bool:
        return self._exists(self.connection, name)

    def drop_database(self, name: str) -> None:
        """Drop a scratch database, closing its connections first (``dropdb --force``, or a
        plain ``dropdb`` on servers before PostgreSQL 13). Refuses the live database."""
        if name == self.database:
            raise RefusedError(f"{name} is the live database of {self.name!r}: it is never dropped")
        base = ["dropdb", "--if-exists", f"--maintenance-db={self.url}"]
        result = self._run(*base, "--force", "--", name)
        if result.exit_code != 0 and "force" in result.stderr.lower():
            result = self._run(*base, "--", name)
        if result.exit_code != 0:
            raise OperationFailedError(f"dropdb {name} failed: {result.last_error_line}")


def _server_text(connection: Connection) -> str:
    host, port = connection.server
    return f"the server {'on this machine' if host == 'local' else host} (port {port})"
