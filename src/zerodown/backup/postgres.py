"""PostgreSQL databases: ``pg_dump`` archives in custom format, restored with ``pg_restore``.

``pg_dump --format=custom`` takes a consistent snapshot of the database in one transaction
while the application keeps working; the archive is written under a temporary name, renamed
when whole, and hashed. ``verify`` re-reads the archive's SHA-256 and has ``pg_restore --list``
read its table of contents.

A restore goes into a new database (``<name>_restored_<id>`` on the same server) unless told
otherwise; a database that exists is only restored into with ``force``, and then in a single
transaction (``pg_restore --clean --if-exists --single-transaction``), so a failed restore
leaves it as it was. The tools come from the Debian package ``postgresql-client``. A password
in the URL is handed over in ``PGPASSWORD`` and never appears in a command line or a message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from zerodown.backup.base import RestoreReport, VerifyReport
from zerodown.backup.digests import check_file_artifact, publish, sha256_file
from zerodown.backup.tools import ToolResult, run_tool
from zerodown.core.errors import InputError, OperationFailedError, RefusedError
from zerodown.store.backups import BackupArtifact

__all__ = ["PostgresTarget", "split_password"]

PG_TIMEOUT_SECONDS: Final = 6 * 3600.0
_PACKAGE: Final = "postgresql-client"
_DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$-]{0,62}")


def split_password(url: str) -> tuple[str, str | None]:
    """``url`` without its password, and the password (None if it has none)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    hosts = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    netloc = f"{user}@{hosts}" if user else hosts
    return urlunsplit(parts._replace(netloc=netloc)), unquote(parts.password)


def with_database(url: str, database: str) -> str:
    """``url`` naming another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


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
        self.url, self._password = split_password(url)
        self.timeout = timeout

    def describe(self) -> str:
        return self.url

    def _env(self) -> dict[str, str]:
        return {"PGPASSWORD": self._password} if self._password is not None else {}

    def _run(self, *argv: str, stdin_text: str | None = None) -> ToolResult:
        return run_tool(
            list(argv),
            env={**self._env(), "PGCONNECT_TIMEOUT": "10"},
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
                    f"{result.last_error_line}"
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
        live = database_name(self.url)
        if destination is None:
            target_url = with_database(self.url, f"{live}_restored_{backup_id}")
        elif "://" in destination:
            target_url, password = split_password(destination)
            if password is not None and password != self._password:
                raise InputError(
                    "a destination URL with its own password is not supported: use the same "
                    "credentials as the target, or a PGPASSFILE"
                )
        elif _DATABASE_NAME.fullmatch(destination):
            target_url = with_database(self.url, destination)
        else:
            raise InputError(
                f"restore destination {destination!r}: give a database name (letters, digits, "
                "_ $ -) or a postgresql:// URL"
            )
        name = database_name(target_url)
        replaces_live = target_url == self.url
        exists = self._exists(name)
        if exists and not force:
            what = "the live database" if replaces_live else "it"
            raise RefusedError(
                f"database {name} exists: restoring into it would overwrite {what}; choose "
                "another destination or pass --force"
            )
        if not exists:
            created = self._run("createdb", f"--maintenance-db={self.url}", "--", name)
            if created.exit_code != 0:
                raise OperationFailedError(f"createdb {name} failed: {created.last_error_line}")
        options = ["--exit-on-error", "--no-password"]
        if exists:
            options += ["--clean", "--if-exists", "--single-transaction"]
        restored = self._run("pg_restore", *options, f"--dbname={target_url}", artifact.location)
        if restored.exit_code != 0:
            raise OperationFailedError(
                f"pg_restore into {name} failed: {restored.last_error_line}"
                + ("" if exists else f" (the new database {name} is left for inspection)")
            )
        size = self._database_size(target_url)
        return RestoreReport(
            destination=target_url,
            replaced_live=replaces_live,
            bytes_written=check.size_bytes or 0,
            sha256=check.actual_sha256 or "",
            expected_sha256=artifact.sha256,
            details={
                "database": name,
                "created": not exists,
                "database_size_bytes": size,
                "archive_bytes_read": check.size_bytes,
            },
        )

    def _query(self, url: str, sql: str, **variables: str) -> str:
        argv = ["psql", "--no-psqlrc", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        for key, value in variables.items():
            argv += ["-v", f"{key}={value}"]
        result = self._run(*argv, f"--dbname={url}", stdin_text=sql)
        if result.exit_code != 0:
            raise OperationFailedError(
                f"cannot query {split_password(url)[0]}: {result.last_error_line}"
            )
        return result.stdout.strip()

    def _exists(self, name: str) -> bool:
        found = self._query(
            self.url, "SELECT count(*) FROM pg_database WHERE datname = :'name';", name=name
        )
        return found == "1"

    def _database_size(self, url: str) -> int | None:
        try:
            return int(self._query(url, "SELECT pg_database_size(current_database());"))
        except (OperationFailedError, ValueError):
            return None

    def remove(self, artifacts: Sequence[BackupArtifact]) -> None:
        for artifact in artifacts:
            Path(artifact.location).unlink(missing_ok=True)

    # scratch databases (DR drills) -----------------------------------------------------------
    @property
    def database(self) -> str:
        """The live database's name."""
        return database_name(self.url)

    def connection_url(self, database: str) -> str:
        """A URL for ``database`` on the target's server with the target's credentials, for a
        process that must connect to it (a drilled service). Never log it: it may hold the
        password."""
        url = with_database(self.url, database)
        if self._password is None:
            return url
        parts = urlsplit(url)
        user = quote(parts.username or "", safe="")
        netloc = f"{user}:{quote(self._password, safe='')}@{parts.netloc.rpartition('@')[2]}"
        return urlunsplit(parts._replace(netloc=netloc))

    def database_exists(self, name: str) -> bool:
        return self._exists(name)

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
