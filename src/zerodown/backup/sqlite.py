"""SQLite databases, copied with SQLite's online backup API and checked before they count.

The backup API copies the database page by page through SQLite's own locking, so the
application keeps reading and writing while it runs and the copy is a consistent snapshot (a
plain file copy of a live database, with its ``-wal`` file, is not). The copy is written under
a temporary name, switched to rollback-journal mode so it is one self-contained file, checked
with ``PRAGMA integrity_check``, flushed, hashed and renamed.

A restore to a new path copies the artifact's bytes (so the restored file has the artifact's
digest). A forced restore over an existing database goes through the backup API again, into
that database: connections the application holds see the change as one write transaction
instead of a file swapped under them. Its pages are written anew (in WAL mode partly into the
``-wal`` file), so it is checked by content instead: the SQL dump of the database read back
must equal the backup's (``content_digest``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Final
from urllib.parse import quote

from zerodown.backup.base import RestoreReport, VerifyReport
from zerodown.backup.digests import check_file_artifact, publish, sha256_file
from zerodown.core.errors import OperationFailedError, RefusedError
from zerodown.store.backups import BackupArtifact

__all__ = ["SqliteTarget"]

PAGES_PER_STEP: Final = 1024
"""Pages copied per step of the online backup; writers get the lock between steps."""
BUSY_TIMEOUT_SECONDS: Final = 30.0


class SqliteTarget:
    """One SQLite database file."""

    kind = "sqlite"

    def __init__(self, *, name: str, database: Path, pages_per_step: int = PAGES_PER_STEP) -> None:
        self.name = name
        self.database = database
        self.pages_per_step = pages_per_step

    def describe(self) -> str:
        return str(self.database)

    def tool_versions(self) -> dict[str, str]:
        return {"sqlite": sqlite3.sqlite_version}

    def back_up(self, *, backup_id: int, folder: Path) -> list[BackupArtifact]:
        if not self.database.is_file():
            raise OperationFailedError(
                f"backup target {self.name!r}: the SQLite database {self.database} does not exist"
            )
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{backup_id}-{self.name}.sqlite"
        temporary = folder / f".{final.name}.tmp"
        temporary.unlink(missing_ok=True)
        try:
            self._copy(temporary)
            problems = _integrity_problems(temporary)
            if problems:
                raise OperationFailedError(
                    f"the copy of {self.database} fails PRAGMA integrity_check: {problems[0]}"
                )
            publish(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        digest, size = sha256_file(final)
        return [
            BackupArtifact(
                name="database",
                location=str(final),
                size_bytes=size,
                sha256=digest,
                meta={"source": str(self.database), "integrity_check": "ok"},
            )
        ]

    def _copy(self, destination: Path) -> None:
        try:
            source = sqlite3.connect(
                f"file:{quote(str(self.database))}?mode=rw",
                uri=True,
                timeout=BUSY_TIMEOUT_SECONDS,
            )
        except sqlite3.Error as exc:
            raise OperationFailedError(f"cannot open {self.database}: {exc}") from exc
        try:
            with contextlib.closing(sqlite3.connect(destination)) as copy:
                source.backup(copy, pages=self.pages_per_step)
                # One self-contained file: the copy must not need a -wal file beside it.
                copy.execute("PRAGMA journal_mode = DELETE")
        except sqlite3.Error as exc:
            raise OperationFailedError(f"SQLite backup of {self.database} failed: {exc}") from exc
        finally:
            source.close()

    def verify(self, artifacts: Sequence[BackupArtifact]) -> VerifyReport:
        checks = []
        for artifact in artifacts:
            check = check_file_artifact(artifact)
            if check.ok:
                problems = _integrity_problems(Path(artifact.location), read_only=True)
                if problems:
                    check = check.with_problem(f"PRAGMA integrity_check: {problems[0]}")
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
        live = self.database
        target = (
            Path(destination).expanduser().resolve()
            if destination
            else live.with_name(f"{live.stem}.restored-{backup_id}{live.suffix}")
        )
        replaces_live = target == live
        if target.exists():
            if not force:
                what = "the live database" if replaces_live else "it"
                raise RefusedError(
                    f"{target} exists: restoring there would overwrite {what}; choose another "
                    "destination or pass --force"
                )
            expected_content = content_digest(Path(artifact.location), immutable=True)
            self._restore_into(Path(artifact.location), target)
            method = "online backup API into the existing database"
            # The pages are written anew (and in WAL mode partly into the -wal file), so the
            # file's digest says nothing: the content read back is compared with the backup's.
            content = content_digest(target)
            digest, size = sha256_file(target)
            return RestoreReport(
                destination=str(target),
                replaced_live=replaces_live,
                bytes_written=size,
                sha256=content,
                expected_sha256=artifact.sha256,
                content_matches=content == expected_content,
                details={
                    "method": method,
                    "artifact_sha256_checked": check.actual_sha256,
                    "content_sha256": content,
                    "expected_content_sha256": expected_content,
                    "file_sha256": digest,
                },
            )
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.restore-{os.getpid()}.tmp")
            try:
                shutil.copyfile(artifact.location, temporary)
                publish(temporary, target)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
            method = "file copy"
        digest, size = sha256_file(target)
        return RestoreReport(
            destination=str(target),
            replaced_live=replaces_live,
            bytes_written=size,
            sha256=digest,
            expected_sha256=artifact.sha256,
            details={"method": method, "artifact_sha256_checked": check.actual_sha256},
        )

    def _restore_into(self, artifact: Path, target: Path) -> None:
        try:
            with (
                contextlib.closing(
                    sqlite3.connect(f"file:{quote(str(artifact))}?mode=ro&immutable=1", uri=True)
                ) as source,
                contextlib.closing(sqlite3.connect(target, timeout=BUSY_TIMEOUT_SECONDS)) as live,
            ):
                source.backup(live)
        except sqlite3.Error as exc:
            raise OperationFailedError(f"restoring into {target} failed: {exc}") from exc

    def remove(self, artifacts: Sequence[BackupArtifact]) -> None:
        for artifact in artifacts:
            Path(artifact.location).unlink(missing_ok=True)


def content_digest(path: Path, *, immutable: bool = False) -> str:
    """SHA-256 of the database's content as SQL (``iterdump``: schema and every row), read
    through SQLite (so committed data still in a ``-wal`` file counts). Two databases with the
    same content have the same digest however their pages are laid out."""
    uri = f"file:{quote(str(path))}?mode=ro" + ("&immutable=1" if immutable else "")
    digest = hashlib.sha256()
    try:
        with contextlib.closing(
            sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        ) as connection:
            for line in connection.iterdump():
                digest.update(line.encode())
                digest.update(b"\n")
    except sqlite3.Error as exc:
        raise OperationFailedError(f"cannot read back {path}: {exc}") from exc
    return digest.hexdigest()


def _integrity_problems(path: Path, *, read_only: bool = False) -> list[str]:
    """What ``PRAGMA integrity_check`` reports, or ``[]`` when it says ``ok``."""
    uri = f"file:{quote(str(path))}" + ("?mode=ro&immutable=1" if read_only else "")
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
            rows = connection.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.Error as exc:
        return [str(exc)]
    found = [str(row[0]) for row in rows]
    return [] if found == ["ok"] else found
