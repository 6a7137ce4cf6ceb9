"""Backups restored byte for byte, and corruption caught: files (restic), SQLite, PostgreSQL.

Everything is real: restic from Debian with an encrypted repository in a temporary folder,
SQLite through the standard library, and the session's throwaway PostgreSQL server with
``pg_dump``/``pg_restore``/``createdb``/``psql`` from ``postgresql-client``. A round trip is
byte-identical when the restored data's digest equals the source's: the manifest digest (every
file's path, size and SHA-256) for folders, the file's SHA-256 for SQLite, and the SHA-256 of a
plain ``pg_dump`` of the restored database against one of the original for PostgreSQL.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.backup.helpers import (
    PASSWORD,
    flip_byte,
    open_backups,
    require_tool,
    settings_for,
)
from zerodown.backup import BackupStatus, tree_manifest
from zerodown.backup.restic import Restic
from zerodown.core.errors import NotFoundError, OperationFailedError, RefusedError
from zerodown.store import SqliteStore

pytestmark = pytest.mark.integration


@pytest.fixture
def store_and_backups(tmp_path: Path) -> Iterator[tuple[SqliteStore, object]]:
    store, backups = open_backups(tmp_path)
    try:
        yield store, backups
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------
# files, through restic


def make_tree(root: Path) -> None:
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_text("hello\n")
    (root / "empty").write_bytes(b"")
    (root / "nested" / "blob.bin").write_bytes(os.urandom(300_000))
    (root / "nested" / "deeper" / "naïve ünïcode.txt").write_text("ü" * 1000)


def test_files_round_trip_is_byte_identical_and_never_overwrites_without_force(
    tmp_path: Path,
) -> None:
    require_tool("restic", "restic")
    source = tmp_path / "uploads"
    make_tree(source)
    settings = settings_for(tmp_path, "- {name: uploads, kind: files, path: ./uploads}")
    store, backups = open_backups(tmp_path)
    try:
        original = tree_manifest(source)
        record = backups.take(settings, "uploads")
        assert record.status == BackupStatus.SUCCEEDED and record.kind == "files"
        (artifact,) = record.artifacts
        assert artifact.location.startswith("restic:")
        assert artifact.sha256 == original.sha256
        assert artifact.size_bytes == original.size_bytes == 300_000 + 6 + 2000
        assert record.tools["restic"].count(".") == 2
        # The repository is encrypted: the password is needed, and no file holds the data.
        repo = settings.restic_repository
        assert (repo / "config").exists()
        assert not any(b"hello" in p.read_bytes() for p in repo.rglob("*") if p.is_file())

        report = backups.restore(settings, record.id)
        restored = tmp_path / f"uploads.restored-{record.id}"
        assert report.destination == str(restored) and not report.replaced_live
        assert tree_manifest(restored).sha256 == original.sha256
        assert report.sha256 == report.expected_sha256 == original.sha256
        assert report.bytes_written == original.size_bytes

        # The live folder is refused without force; with force it is replaced, the old kept.
        (source / "a.txt").write_text("changed after the backup\n")
        with pytest.raises(RefusedError, match="--force"):
            backups.restore(settings, record.id, destination=str(source))
        forced = backups.restore(settings, record.id, destination=str(source), force=True)
        assert forced.replaced_live
        assert tree_manifest(source).sha256 == original.sha256
        aside = Path(forced.details["previous_moved_to"])
        assert (aside / "a.txt").read_text() == "changed after the backup\n"
        # The same backup restored over it again keeps this copy too, under a name of its own.
        (source / "a.txt").write_text("changed again\n")
        again = backups.restore(settings, record.id, destination=str(source), force=True)
        second = Path(again.details["previous_moved_to"])
        assert second != aside and (second / "a.txt").read_text() == "changed again\n"
        assert (aside / "a.txt").read_text() == "changed after the backup\n"

        checked, verify = backups.verify(settings, record.id)
        assert verify.ok and checked.verify_status == "ok"
    finally:
        store.close()


def test_files_written_during_the_backup_are_described_as_the_snapshot_saved_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files change, appear and vanish between zerodown hashing the folder and restic reading
    it; the recorded digest is still the snapshot's, so verify and restore agree with it."""
    require_tool("restic", "restic")
    source = tmp_path / "uploads"
    make_tree(source)
    (source / "skip.tmp").write_text("excluded")
    settings = settings_for(
        tmp_path, "- {name: uploads, kind: files, path: ./uploads, exclude: ['*.tmp']}"
    )
    real_backup = Restic.backup

    def backup_while_writing(self: Restic, path: Path, **kwargs: Any) -> dict[str, Any]:
        (source / "a.txt").write_text("rewritten while the backup ran\n")
        (source / "new.txt").write_text("created while the backup ran\n")
        (source / "empty").unlink()
        return real_backup(self, path, **kwargs)

    monkeypatch.setattr(Restic, "backup", backup_while_writing)
    store, backups = open_backups(tmp_path)
    try:
        record = backups.take(settings, "uploads")
        (source / "skip.tmp").unlink()  # excluded: not in the backup, not in the manifest
        assert record.artifacts[0].sha256 == tree_manifest(source).sha256
        assert record.artifacts[0].meta["files_read_from_snapshot"] == 2  # a.txt and new.txt
        assert backups.verify(settings, record.id)[1].ok
        report = backups.restore(settings, record.id)
        assert report.matches
        assert (Path(report.destination) / "a.txt").read_text().startswith("rewritten")
    finally:
        store.close()


def test_a_flipped_byte_in_the_restic_repository_is_reported_corrupted(tmp_path: Path) -> None:
    require_tool("restic", "restic")
    source = tmp_path / "uploads"
    make_tree(source)
    settings = settings_for(tmp_path, "- {name: uploads, kind: files, path: ./uploads}")
    store, backups = open_backups(tmp_path)
    try:
        record = backups.take(settings, "uploads")
        packs = sorted(
            (p for p in (settings.restic_repository / "data").rglob("*") if p.is_file()),
            key=lambda p: p.stat().st_size,
        )
        flip_byte(packs[-1])  # the pack holding the 300 kB blob
        checked, report = backups.verify(settings, record.id)
        assert not report.ok and report.status == "corrupted"
        assert any("restic check" in p for p in report.problems)
        assert checked.verify_status == "corrupted" and not checked.good
        with pytest.raises(RefusedError, match="corrupted"):
            backups.restore(settings, record.id)
        assert not (tmp_path / f"uploads.restored-{record.id}").exists()
    finally:
        store.close()


def test_a_wrong_password_fails_the_backup_and_records_why(tmp_path: Path) -> None:
    require_tool("restic", "restic")
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "x").write_text("x")
    settings = settings_for(tmp_path, "- {name: uploads, kind: files, path: ./uploads}")
    store, backups = open_backups(tmp_path)
    try:
        backups.take(settings, "uploads")
        (tmp_path / "backup.key").write_text("not the password\n")
        with pytest.raises(OperationFailedError, match="restic backup"):
            backups.take(settings, "uploads")
        newest = store.list_backups(target="uploads", limit=1)[0]
        assert newest.status == BackupStatus.FAILED and newest.error
        assert PASSWORD not in newest.error and "not the password" not in newest.error
        events = [e.kind for e in store.list_events()]
        assert events == ["backup.succeeded", "backup.failed"]
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------
# SQLite


def make_database(path: Path, *, wal: bool) -> None:
    with sqlite3.connect(path) as connection:
        if wal:
            connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, data BLOB)")
        connection.execute("CREATE INDEX item_name ON item (name)")
        connection.executemany(
            "INSERT INTO item (name, data) VALUES (?, ?)",
            [(f"item-{i}", os.urandom(200)) for i in range(5000)],
        )
    connection.close()


def dump(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal"])
def test_sqlite_round_trip_is_byte_identical(tmp_path: Path, wal: bool) -> None:
    database = tmp_path / "app.db"
    make_database(database, wal=wal)
    settings = settings_for(tmp_path, "- {name: db, kind: sqlite, path: ./app.db}")
    store, backups = open_backups(tmp_path)
    try:
        # An application connection stays open (and in WAL mode, writes stay in the -wal file).
        app = sqlite3.connect(database)
        app.execute("INSERT INTO item (name) VALUES ('written just before the backup')")
        app.commit()
        record = backups.take(settings, "db")
        (artifact,) = record.artifacts
        assert artifact.meta["integrity_check"] == "ok"
        assert sha256(Path(artifact.location)) == artifact.sha256
        report = backups.restore(settings, record.id)
        restored = Path(report.destination)
        assert restored == tmp_path / f"app.restored-{record.id}.db"
        assert sha256(restored) == artifact.sha256 == report.sha256
        assert report.bytes_written == artifact.size_bytes == restored.stat().st_size
        assert dump(restored) == dump(database)
        app.close()
    finally:
        store.close()


def test_sqlite_restore_over_the_live_database_needs_force_and_keeps_connections_working(
    tmp_path: Path,
) -> None:
    database = tmp_path / "app.db"
    make_database(database, wal=True)
    settings = settings_for(tmp_path, "- {name: db, kind: sqlite, path: ./app.db}")
    store, backups = open_backups(tmp_path)
    try:
        before = dump(database)
        record = backups.take(settings, "db")
        app = sqlite3.connect(database)
        app.execute("DELETE FROM item WHERE id % 2 = 0")
        app.commit()
        with pytest.raises(RefusedError, match="live database"):
            backups.restore(settings, record.id, destination=str(database))
        report = backups.restore(settings, record.id, destination=str(database), force=True)
        assert report.replaced_live
        assert dump(database) == before
        assert app.execute("SELECT count(*) FROM item").fetchone() == (5000,)
        app.close()
    finally:
        store.close()


def test_a_flipped_byte_in_a_sqlite_artifact_is_caught_and_never_restored(tmp_path: Path) -> None:
    make_database(tmp_path / "app.db", wal=False)
    settings = settings_for(tmp_path, "- {name: db, kind: sqlite, path: ./app.db}")
    store, backups = open_backups(tmp_path)
    try:
        record = backups.take(settings, "db")
        flip_byte(Path(record.artifacts[0].location))
        # Straight to restore, without a verify first: the digest is checked anyway.
        with pytest.raises(OperationFailedError, match="corrupted"):
            backups.restore(settings, record.id)
        assert not (tmp_path / f"app.restored-{record.id}.db").exists()
        assert store.get_backup(record.id).verify_status == "corrupted"
        _, report = backups.verify(settings, record.id)
        assert report.status == "corrupted"
        assert "SHA-256" in report.artifacts[0].problem
    finally:
        store.close()


def test_a_missing_database_fails_the_backup_without_creating_it(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "- {name: db, kind: sqlite, path: ./missing.db}")
    store, backups = open_backups(tmp_path)
    try:
        with pytest.raises(OperationFailedError, match="does not exist"):
            backups.take(settings, "db")
        assert not (tmp_path / "missing.db").exists()
        (failed,) = store.list_backups()
        assert failed.status == BackupStatus.FAILED and failed.artifacts == ()
        with pytest.raises(NotFoundError, match="no backup target 'other'"):
            backups.take(settings, "other")
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------
# PostgreSQL, on a real server


def psql(url: str, sql: str) -> str:
    result = subprocess.run(
        ["psql", "--no-psqlrc", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout.strip()


def plain_dump_digest(url: str) -> str:
    result = subprocess.run(
        ["pg_dump", "--format=plain", "--no-comments", url],
        capture_output=True,
        check=True,
        timeout=300,
    )
    # pg_dump 15.14 and later fence the script with a random \restrict key per run.
    lines = [
        line
        for line in result.stdout.splitlines()
        if not line.startswith((b"\\restrict ", b"\\unrestrict "))
    ]
    return hashlib.sha256(b"\n".join(lines)).hexdigest()


def fill(url: str) -> None:
    psql(
        url,
        "CREATE TABLE account (id bigserial PRIMARY KEY, email text UNIQUE NOT NULL,"
        " balance numeric(12,2), meta jsonb, created timestamptz DEFAULT now());"
        " INSERT INTO account (email, balance, meta)"
        " SELECT 'user' || i || '@example.com', i * 1.25, jsonb_build_object('i', i)"
        " FROM generate_series(1, 20000) AS i;"
        " CREATE VIEW rich AS SELECT * FROM account WHERE balance > 100;"
        " CREATE INDEX account_balance ON account (balance);",
    )


@pytest.mark.postgres
def test_postgresql_round_trip_is_identical_by_pg_dump(
    tmp_path: Path, postgres_database_url: str
) -> None:
    require_tool("pg_dump", "postgresql-client")
    fill(postgres_database_url)
    settings = settings_for(
        tmp_path, f"- {{name: pg, kind: postgresql, url: '{postgres_database_url}'}}"
    )
    store, backups = open_backups(tmp_path)
    try:
        original = plain_dump_digest(postgres_database_url)
        record = backups.take(settings, "pg")
        (artifact,) = record.artifacts
        assert artifact.location.endswith(f"{record.id}-pg.pgdump")
        assert sha256(Path(artifact.location)) == artifact.sha256
        assert set(record.tools) == {"pg_dump", "pg_restore"}

        report = backups.restore(settings, record.id)
        live = postgres_database_url.rsplit("/", 1)[1]
        assert report.destination.endswith(f"/{live}_restored_{record.id}")
        assert report.details["created"] is True and report.details["database_size_bytes"] > 0
        assert report.sha256 == artifact.sha256 and report.bytes_written == artifact.size_bytes
        assert plain_dump_digest(report.destination) == original

        # The live database: refused, then (after a change) restored with force.
        psql(postgres_database_url, "DELETE FROM account WHERE id > 10")
        with pytest.raises(RefusedError, match="live database"):
            backups.restore(settings, record.id, destination=live)
        forced = backups.restore(settings, record.id, destination=live, force=True)
        assert forced.replaced_live
        assert plain_dump_digest(postgres_database_url) == original

        _, verify = backups.verify(settings, record.id)
        assert verify.ok
        psql(postgres_database_url, f'DROP DATABASE "{live}_restored_{record.id}"')
    finally:
        store.close()


@pytest.mark.postgres
def test_a_flipped_byte_in_a_pg_dump_archive_is_caught(
    tmp_path: Path, postgres_database_url: str
) -> None:
    require_tool("pg_dump", "postgresql-client")
    fill(postgres_database_url)
    settings = settings_for(
        tmp_path, f"- {{name: pg, kind: postgresql, url: '{postgres_database_url}'}}"
    )
    store, backups = open_backups(tmp_path)
    try:
        record = backups.take(settings, "pg")
        flip_byte(Path(record.artifacts[0].location))
        _, report = backups.verify(settings, record.id)
        assert report.status == "corrupted"
        with pytest.raises(RefusedError, match="corrupted"):
            backups.restore(settings, record.id)
        live = postgres_database_url.rsplit("/", 1)[1]
        assert (
            psql(
                postgres_database_url,
                f"SELECT count(*) FROM pg_database WHERE datname = '{live}_restored_{record.id}'",
            )
            == "0"
        )
    finally:
        store.close()


@pytest.mark.postgres
def test_a_password_in_the_url_never_reaches_the_catalogue(
    tmp_path: Path, postgres_database_url: str
) -> None:
    require_tool("pg_dump", "postgresql-client")
    with_password = postgres_database_url.replace("postgres@", "postgres:s3cret-pw@", 1)
    settings = settings_for(tmp_path, f"- {{name: pg, kind: postgresql, url: '{with_password}'}}")
    store, backups = open_backups(tmp_path)
    try:
        record = backups.take(settings, "pg")  # trust authentication ignores the password
        text = repr(record.to_dict()) + repr([e.message for e in store.list_events()])
        assert "s3cret-pw" not in text
    finally:
        store.close()


def test_a_missing_tool_fails_the_backup_on_the_record_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(
        tmp_path, "- {name: pg, kind: postgresql, url: 'postgresql://app@127.0.0.1/app'}"
    )
    store, backups = open_backups(tmp_path)
    try:
        monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump to be found
        with pytest.raises(RefusedError, match="postgresql-client"):
            backups.take(settings, "pg")
        (failed,) = store.list_backups()
        assert failed.status == BackupStatus.FAILED and "postgresql-client" in failed.error
        assert backups.failures("web", "pg") == 1
    finally:
        store.close()
