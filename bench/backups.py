"""What zerodown's guarantees cost over the bare tools: ``python bench/backups.py``.

Each kind is backed up and restored by zerodown (catalogue rows, temporary names and renames,
fsync, SHA-256 of every artifact, ``PRAGMA integrity_check``, the files' manifest, digest
checks before restoring) and, in the same run on the same data, by the tool alone:

- files: ``restic backup`` / ``restic restore`` of a folder of 400 files, 64 MB of random data;
- sqlite: Python's ``sqlite3`` backup API into a file / a file copy, on a 64 MB database;
- postgresql: ``pg_dump --format=custom`` / ``createdb`` + ``pg_restore`` of 300,000 rows, on a
  throwaway server started from the Debian ``postgresql`` binaries (skipped when missing).

Each measurement is the median of ``--runs`` runs (3 by default), wall-clock on a shared
machine. Restic's first backup of a repository writes everything; later ones deduplicate, so
both sides back up into a fresh repository each run. The table prints seconds and the ratio
zerodown / tool; the last line is the summary::

    backup_overhead_ratio_max=<the largest backup ratio of the three kinds>
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from zerodown.backup import Backups, BackupSettings, resolve_settings  # noqa: E402
from zerodown.backup.restic import FilesTarget  # noqa: E402
from zerodown.spec import parse_spec  # noqa: E402
from zerodown.store import SqliteStore  # noqa: E402

PASSWORD = "bench password"
SIZE = 64 * 1024 * 1024


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def median(runs: int, work: Callable[[], float]) -> float:
    return statistics.median(work() for _ in range(runs))


def zerodown_for(folder: Path, target: str) -> tuple[SqliteStore, Backups, BackupSettings]:
    (folder / "backup.key").write_text(PASSWORD)
    text = (
        "service: bench\nrun: {command: 'true'}\nbackups:\n  repository: ./zd-repo\n"
        f"  passwordFile: ./backup.key\n  targets:\n    - {target}\n"
    )
    spec = parse_spec(text, filename=str(folder / "zerodown.yaml")).spec
    settings = resolve_settings(spec, spec_dir=folder, state_dir=folder / "state")
    store = SqliteStore(folder / "state" / "zerodown.db")
    return store, Backups(store), settings


def bench_files(root: Path, runs: int) -> tuple[float, float, float, float]:
    source = root / "files"
    for i in range(400):
        sub = source / f"d{i % 20}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.bin").write_bytes(os.urandom(SIZE // 400))
    env = {**os.environ, "RESTIC_PASSWORD": PASSWORD}

    def tool_backup() -> float:
        repo = root / "tool-repo"
        shutil.rmtree(repo, ignore_errors=True)
        subprocess.run(
            ["restic", "-r", str(repo), "init"], env=env, check=True, capture_output=True
        )
        return timed(
            lambda: subprocess.run(
                ["restic", "-r", str(repo), "--no-cache", "backup", "--json", str(source)],
                env=env,
                check=True,
                capture_output=True,
            )
        )

    def tool_restore() -> float:
        target = root / "tool-restore"
        shutil.rmtree(target, ignore_errors=True)
        return timed(
            lambda: subprocess.run(
                [
                    "restic",
                    "-r",
                    str(root / "tool-repo"),
                    "--no-cache",
                    "restore",
                    "latest",
                    "--target",
                    str(target),
                ],
                env=env,
                check=True,
                capture_output=True,
            )
        )

    def zd_backup() -> float:
        shutil.rmtree(root / "zd-repo", ignore_errors=True)
        shutil.rmtree(root / "state", ignore_errors=True)
        store, backups, settings = zerodown_for(root, "{name: f, kind: files, path: ./files}")
        try:
            # The repository is created once, outside the timing, as for the tool.
            files = settings.target("f")
            assert isinstance(files, FilesTarget)
            files.restic.ensure_repository()
            return timed(lambda: backups.take(settings, "f"))
        finally:
            store.close()

    def zd_restore() -> float:
        store, backups, settings = zerodown_for(root, "{name: f, kind: files, path: ./files}")
        try:
            newest = store.list_backups(limit=1)[0]
            shutil.rmtree(root / f"files.restored-{newest.id}", ignore_errors=True)
            return timed(lambda: backups.restore(settings, newest.id))
        finally:
            store.close()

    return (
        median(runs, tool_backup),
        median(runs, zd_backup),
        median(runs, tool_restore),
        median(runs, zd_restore),
    )


def bench_sqlite(root: Path, runs: int) -> tuple[float, float, float, float]:
    database = root / "app.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, data BLOB)")
        db.executemany(
            "INSERT INTO item (data) VALUES (?)", [(os.urandom(4096),) for _ in range(SIZE // 4096)]
        )
    db.close()

    def tool_backup() -> float:
        target = root / "tool.db"
        target.unlink(missing_ok=True)

        def copy() -> None:
            with sqlite3.connect(database) as src, sqlite3.connect(target) as dst:
                src.backup(dst)

        return timed(copy)

    def tool_restore() -> float:
        target = root / "tool-restored.db"
        target.unlink(missing_ok=True)
        return timed(lambda: shutil.copyfile(root / "tool.db", target))

    def zd_backup() -> float:
        store, backups, settings = zerodown_for(root, "{name: db, kind: sqlite, path: ./app.db}")
        try:
            return timed(lambda: backups.take(settings, "db"))
        finally:
            store.close()

    def zd_restore() -> float:
        store, backups, settings = zerodown_for(root, "{name: db, kind: sqlite, path: ./app.db}")
        try:
            newest = store.list_backups(limit=1)[0]
            (root / f"app.restored-{newest.id}.db").unlink(missing_ok=True)
            return timed(lambda: backups.restore(settings, newest.id))
        finally:
            store.close()

    return (
        median(runs, tool_backup),
        median(runs, zd_backup),
        median(runs, tool_restore),
        median(runs, zd_restore),
    )


def bench_postgres(root: Path, runs: int) -> tuple[float, float, float, float] | None:
    from tests.fixtures.postgres import PostgresServer, find_postgres_bin

    bin_dir = find_postgres_bin()
    if bin_dir is None or shutil.which("pg_dump") is None:
        return None
    server = PostgresServer(bin_dir)
    server.start()
    try:
        url = server.url
        base = url.rsplit("/", 1)[0]
        subprocess.run(["createdb", f"--maintenance-db={url}", "benchdb"], check=True)
        db_url = f"{base}/benchdb"
        subprocess.run(
            [
                "psql",
                "-q",
                db_url,
                "-c",
                "CREATE TABLE t AS SELECT i, md5(i::text) AS h, now() AS at"
                " FROM generate_series(1, 300000) AS i",
            ],
            check=True,
        )
        counter = iter(range(1_000_000))

        def tool_backup() -> float:
            out = root / "tool.pgdump"
            return timed(
                lambda: subprocess.run(
                    ["pg_dump", "--format=custom", f"--file={out}", f"--dbname={db_url}"],
                    check=True,
                )
            )

        def tool_restore() -> float:
            name = f"tool_{next(counter)}"

            def restore() -> None:
                subprocess.run(["createdb", f"--maintenance-db={db_url}", name], check=True)
                subprocess.run(
                    ["pg_restore", f"--dbname={base}/{name}", str(root / "tool.pgdump")], check=True
                )

            return timed(restore)

        target = f"{{name: pg, kind: postgresql, url: '{db_url}'}}"

        def zd_backup() -> float:
            store, backups, settings = zerodown_for(root, target)
            try:
                return timed(lambda: backups.take(settings, "pg"))
            finally:
                store.close()

        def zd_restore() -> float:
            store, backups, settings = zerodown_for(root, target)
            try:
                newest = store.list_backups(limit=1)[0]
                name = f"zd_{next(counter)}"
                return timed(lambda: backups.restore(settings, newest.id, destination=name))
            finally:
                store.close()

        return (
            median(runs, tool_backup),
            median(runs, zd_backup),
            median(runs, tool_restore),
            median(runs, zd_restore),
        )
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, tuple[float, float, float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="zerodown-bench-") as tmp:
        for kind, bench in (("files", bench_files), ("sqlite", bench_sqlite)):
            folder = Path(tmp) / kind
            folder.mkdir()
            results[kind] = bench(folder, args.runs)
        folder = Path(tmp) / "postgresql"
        folder.mkdir()
        measured = bench_postgres(folder, args.runs)
        if measured is not None:
            results["postgresql"] = measured
    print(
        f"{'kind':<11} {'backup tool':>11} {'zerodown':>9} {'ratio':>6}"
        f" {'restore tool':>12} {'zerodown':>9} {'ratio':>6}"
    )
    for kind, (tb, zb, tr, zr) in results.items():
        print(
            f"{kind:<11} {tb:>10.3f}s {zb:>8.3f}s {zb / tb:>6.2f}"
            f" {tr:>11.3f}s {zr:>8.3f}s {zr / tr:>6.2f}"
        )
    worst = max(zb / tb for tb, zb, _, _ in results.values())
    print(f"backup_overhead_ratio_max={worst:.2f}")


if __name__ == "__main__":
    main()
