"""A process killed with SIGKILL in the middle of a backup leaves no half-registered backup.

Each test runs a real child process that takes a backup into a SQLite catalogue and is killed
at a chosen moment: by the ``ZERODOWN_CRASH_FILE`` fault hook right after the artifact is on
disk but before the catalogue says so (the worst moment), or from outside while SQLite's online
backup is stuck half-way behind a write lock the test holds. Reopening the catalogue then shows
the backup ``running`` until recovery marks it ``abandoned``; its files are removed and nothing
that could be restored is left in the catalogue.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fixtures.zerodown import wait_until
from tests.integration.backup.helpers import open_backups, settings_for
from zerodown.backup import BackupStatus
from zerodown.store import SqliteStore

pytestmark = pytest.mark.integration

TARGET = "- {name: db, kind: sqlite, path: ./app.db}"

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tests.integration.backup.helpers import open_backups, settings_for

    folder = Path(sys.argv[1])
    settings = settings_for(folder, {target!r})
    store, backups = open_backups(folder)
    backups.take(settings, "db", reason="crash test")
    print("finished", flush=True)
    """
).format(target=TARGET)


def make_database(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, data BLOB)")
        connection.executemany(
            "INSERT INTO item (data) VALUES (?)", [(os.urandom(1000),) for _ in range(2000)]
        )
    connection.close()


def run_child(folder: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder)],
        env={**os.environ, **env},
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_after_the_artifact_is_written_but_before_it_is_registered(tmp_path: Path) -> None:
    make_database(tmp_path / "app.db")
    crash = tmp_path / "crash"
    crash.write_text("backup:written#1")
    child = run_child(tmp_path, ZERODOWN_CRASH_FILE=str(crash))
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, stderr
    folder = settings_for(tmp_path, TARGET).folder("db")
    assert [p.name for p in folder.iterdir()] == ["1-db.sqlite"]  # whole, but not registered

    store = SqliteStore(tmp_path / "state" / "zerodown.db")
    try:
        (left,) = store.list_backups()
        assert left.status == BackupStatus.RUNNING and not left.good and left.artifacts == ()
    finally:
        store.close()

    store, backups = open_backups(tmp_path)
    try:
        settings = settings_for(tmp_path, TARGET)
        (abandoned,) = backups.recover_interrupted(lambda service: settings)
        assert abandoned.status == BackupStatus.ABANDONED and "ended" in abandoned.error
        assert list(folder.iterdir()) == []
        assert store.list_backups(statuses=(BackupStatus.SUCCEEDED,)) == []
        assert store.get_lock("backup:web:db") is None
        # Recovery runs once: a second pass finds nothing, and the target backs up again.
        assert backups.recover_interrupted(lambda service: settings) == []
        assert backups.take(settings, "db").status == BackupStatus.SUCCEEDED
        assert [e.kind for e in store.list_events()] == ["backup.abandoned", "backup.succeeded"]
    finally:
        store.close()


def test_killed_in_the_middle_of_the_copy(tmp_path: Path) -> None:
    """The child's online backup waits behind the test's exclusive lock on the database, with
    its row written and its temporary file open; then it is killed from outside."""
    database = tmp_path / "app.db"
    make_database(database)
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    child = run_child(tmp_path)
    try:
        catalogue = tmp_path / "state" / "zerodown.db"
        folder = settings_for(tmp_path, TARGET).folder("db")

        def copying() -> bool:
            if child.poll() is not None:
                raise AssertionError(f"the child ended: {child.communicate()}")
            if not catalogue.exists() or not folder.exists():
                return False
            return any(p.name.endswith(".tmp") for p in folder.iterdir())

        wait_until(copying, timeout=60, what="the child's backup to be half-way")
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
        blocker.execute("ROLLBACK")
        blocker.close()

    store, backups = open_backups(tmp_path)
    try:
        settings = settings_for(tmp_path, TARGET)
        assert [b.status for b in store.list_backups()] == [BackupStatus.RUNNING]
        (abandoned,) = backups.recover_interrupted(lambda service: settings)
        assert abandoned.status == BackupStatus.ABANDONED
        assert list(folder.iterdir()) == []  # the temporary file is gone too
        assert not any(b.good for b in store.list_backups())
    finally:
        store.close()


def test_a_running_backup_of_a_live_process_is_left_alone(tmp_path: Path) -> None:
    make_database(tmp_path / "app.db")
    store, backups = open_backups(tmp_path)
    try:
        other = store.begin_backup(
            "web",  # type: ignore[arg-type]
            target="db",
            kind="sqlite",
            reason="manual",
            owner=f"{os.uname().nodename}:{os.getppid()}:0",  # a live pid, but not that process
        )
        mine = store.begin_backup(
            "web",  # type: ignore[arg-type]
            target="db",
            kind="sqlite",
            reason="manual",
            owner=backups.owner,
        )
        elsewhere = store.begin_backup(
            "web",  # type: ignore[arg-type]
            target="db",
            kind="sqlite",
            reason="manual",
            owner="another-host:1:1",
        )
        recovered = backups.recover_interrupted()
        assert [r.id for r in recovered] == [other.id]  # same pid, other start time: gone
        assert store.get_backup(mine.id).status == BackupStatus.RUNNING
        assert store.get_backup(elsewhere.id).status == BackupStatus.RUNNING
    finally:
        store.close()
