"""PostgreSQL restores to another server, and secrets kept out of everything shown or stored.

Two real servers from ``tests/fixtures/postgres.py``: the session's (where the live database
is) and a second one started for this module (the "staging" server a restore may go to).
``backup restore web 7 --to postgresql://app@staging/prod`` must ask the *destination's*
server whether ``prod`` exists and create it there, never on the live server; refuse an
existing ``prod`` without ``--force``; and restore in one transaction, so a restore that fails
leaves ``prod`` exactly as it was.

Secrets: a URL's ``?password=`` and ``sslpassword`` (and ``user:password@``) reach neither a
command line (each PostgreSQL tool is run through a wrapper that records its argv and the
secrets it was handed), nor the catalogue, the event log, an error, a report or the DR plan.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fixtures.postgres import PostgresServer, find_postgres_bin
from tests.integration.backup.helpers import (
    PASSWORD,
    open_backups,
    require_tool,
    settings_for,
    spec_text,
)
from tests.integration.backup.test_round_trips import fill, plain_dump_digest, psql
from zerodown.backup.dr import write_plan
from zerodown.backup.operations import ReportSink, ServiceBackups
from zerodown.core.errors import OperationFailedError, RefusedError
from zerodown.core.types import ServiceName
from zerodown.store import SqliteStore

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture(scope="module")
def staging_server() -> Iterator[str]:
    """A second PostgreSQL server: the URL of its ``postgres`` database."""
    require_tool("pg_dump", "postgresql-client")
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        from tests.conftest import require_component

        require_component("PostgreSQL", "install the Debian package 'postgresql'")
        raise AssertionError("require_component returned without skipping or failing")
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server.url
    finally:
        server.stop()


def on(server_url: str, database: str) -> str:
    return server_url.rsplit("/", 1)[0] + f"/{database}"


def databases(server_url: str) -> set[str]:
    return set(psql(server_url, "SELECT datname FROM pg_database").split())


def fresh_name() -> str:
    return f"prod_{uuid.uuid4().hex[:8]}"


def test_a_restore_to_another_server_checks_and_creates_the_database_there(
    tmp_path: Path, postgres_url: str, postgres_database_url: str, staging_server: str
) -> None:
    fill(postgres_database_url)
    settings = settings_for(
        tmp_path, f"- {{name: pg, kind: postgresql, url: '{postgres_database_url}'}}"
    )
    store, backups = open_backups(tmp_path)
    prod = fresh_name()
    try:
        record = backups.take(settings, "pg")
        original = plain_dump_digest(postgres_database_url)
        report = backups.restore(settings, record.id, destination=on(staging_server, prod))
        assert report.details["created"] is True and not report.replaced_live
        assert prod in databases(staging_server)
        assert prod not in databases(postgres_url)  # nothing stray on the live server
        assert plain_dump_digest(on(staging_server, prod)) == original
    finally:
        store.close()


def test_an_existing_database_on_another_server_is_refused_without_force(
    tmp_path: Path, postgres_url: str, postgres_database_url: str, staging_server: str
) -> None:
    fill(postgres_database_url)
    prod = fresh_name()
    psql(staging_server, f'CREATE DATABASE "{prod}"')
    psql(on(staging_server, prod), "CREATE TABLE orders (id int); INSERT INTO orders VALUES (1)")
    before = plain_dump_digest(on(staging_server, prod))
    settings = settings_for(
        tmp_path, f"- {{name: pg, kind: postgresql, url: '{postgres_database_url}'}}"
    )
    store, backups = open_backups(tmp_path)
    try:
        record = backups.take(settings, "pg")
        with pytest.raises(RefusedError, match=f"database {prod} exists.*--force"):
            backups.restore(settings, record.id, destination=on(staging_server, prod))
        assert plain_dump_digest(on(staging_server, prod)) == before
        assert prod not in databases(postgres_url)
    finally:
        store.close()


def test_a_forced_restore_that_fails_leaves_the_destination_as_it_was(
    tmp_path: Path, postgres_database_url: str, staging_server: str
) -> None:
    """``prod`` holds the backup's tables plus a view of its own on one of them: dropping that
    table fails, and in one transaction nothing before the failure (the ``rich`` view is
    dropped first) stays applied."""
    fill(postgres_database_url)
    settings = settings_for(
        tmp_path, f"- {{name: pg, kind: postgresql, url: '{postgres_database_url}'}}"
    )
    store, backups = open_backups(tmp_path)
    prod = fresh_name()
    target = on(staging_server, prod)
    try:
        record = backups.take(settings, "pg")
        backups.restore(settings, record.id, destination=target)
        psql(target, "DELETE FROM account WHERE id > 5; CREATE VIEW mine AS SELECT id FROM account")
        before = plain_dump_digest(target)
        with pytest.raises(OperationFailedError, match="nothing of it was applied"):
            backups.restore(settings, record.id, destination=target, force=True)
        assert plain_dump_digest(target) == before
        assert psql(target, "SELECT count(*) FROM account") == "5"
        assert psql(target, "SELECT count(*) FROM pg_views WHERE viewname = 'rich'") == "1"
        # Without the view in the way, the forced restore replaces prod's data.
        psql(target, "DROP VIEW mine")
        backups.restore(settings, record.id, destination=target, force=True)
        assert plain_dump_digest(target) == plain_dump_digest(postgres_database_url)
    finally:
        store.close()


def test_the_live_database_is_recognised_however_its_url_is_written(
    tmp_path: Path, postgres_database_url: str
) -> None:
    fill(postgres_database_url)
    settings = settings_for(
        tmp_path, f"- {{name: pg, kind: postgresql, url: '{postgres_database_url}'}}"
    )
    store, backups = open_backups(tmp_path)
    # The same database: another loopback name and an extra connection parameter.
    same = postgres_database_url.replace("127.0.0.1", "localhost") + "?connect_timeout=5"
    try:
        record = backups.take(settings, "pg")
        with pytest.raises(RefusedError, match="the live database"):
            backups.restore(settings, record.id, destination=same)
        forced = backups.restore(settings, record.id, destination=same, force=True)
        assert forced.replaced_live
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------
# secrets

WRAPPER = """#!/bin/sh
# Records how it was run, then runs the real program.
{python} - "$0" "$@" <<'EOF' >>{log}
import json, os, sys
service = os.environ.get("PGSERVICEFILE")
print(json.dumps({{
    "argv": sys.argv[1:],
    "PGPASSWORD": os.environ.get("PGPASSWORD"),
    "service_file": open(service).read() if service else None,
}}))
EOF
exec {real} "$@"
"""

QUERY_SECRET = "q-s3cret-pw"
SSL_SECRET = "ssl-s3cret-pw"
USER_SECRET = "u-s3cret-pw"


def wrap_tools(folder: Path, log: Path) -> None:
    folder.mkdir()
    for tool in ("pg_dump", "pg_restore", "psql", "createdb", "dropdb"):
        real = shutil.which(tool)
        assert real is not None
        path = folder / tool
        path.write_text(WRAPPER.format(python=shutil.which("python3"), log=log, real=real))
        path.chmod(0o755)


def test_a_password_in_the_url_reaches_no_command_line_record_report_or_plan(
    tmp_path: Path, postgres_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(postgres_database_url)
    secret_url = f"{postgres_database_url}?password={QUERY_SECRET}&sslpassword={SSL_SECRET}"
    missing = (
        on(postgres_database_url, "no_such_db").replace("postgres@", f"postgres:{USER_SECRET}@")
        + f"?password={QUERY_SECRET}"
    )
    (tmp_path / "backup.key").write_text(PASSWORD + "\n")
    text = spec_text(
        f"- {{name: pg, kind: postgresql, url: '{secret_url}'}}\n"
        f"- {{name: gone, kind: postgresql, url: '{missing}'}}"
    )
    (tmp_path / "zerodown.yaml").write_text(text)
    log = tmp_path / "argv.jsonl"
    wrap_tools(tmp_path / "bin", log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    store = SqliteStore(tmp_path / "state" / "zerodown.db")
    store.upsert_service(
        ServiceName("web"), spec_path=str(tmp_path / "zerodown.yaml"), spec_text=text
    )
    reports = tmp_path / "reports"
    service = ServiceBackups(
        store,
        state_dir=tmp_path / "state",
        reports=ReportSink(folder=lambda name: reports, instances=lambda name: []),
    )
    restored_name = ""
    try:
        taken = service.backup_operation("web", target="pg")
        (record,) = taken["backups"]
        restored = service.restore_operation("web", record["id"], destination=None, force=False)
        restored_name = restored["restore"]["details"]["database"]
        with pytest.raises(OperationFailedError) as failed:
            service.backup_operation("web", target="gone")
        plan = tmp_path / "plan.md"
        write_plan(service, "web", path=plan, now=datetime.now(UTC))

        shown = [
            failed.value.message,
            json.dumps(taken),
            json.dumps(restored),
            json.dumps([b.to_dict() for b in store.list_backups()]),
            json.dumps([(e.message, e.data) for e in store.list_events(ServiceName("web"))]),
            *(path.read_text() for path in reports.iterdir()),
            plan.read_text(),
        ]
        for text_shown in shown:
            for secret in (QUERY_SECRET, SSL_SECRET, USER_SECRET):
                assert secret not in text_shown
        assert "no_such_db" in failed.value.message  # the error still says what failed

        runs = [json.loads(line) for line in log.read_text().splitlines()]
        tools = {Path(run["argv"][0]).name for run in runs}
        assert {"pg_dump", "pg_restore", "psql", "createdb"} <= tools
        for run in runs:
            assert not any(s in arg for arg in run["argv"] for s in (QUERY_SECRET, SSL_SECRET))
            assert not any(USER_SECRET in arg for arg in run["argv"])
        dumps = [
            r for r in runs if r["argv"][0].endswith("pg_dump") and "--version" not in r["argv"]
        ]
        assert len(dumps) == 2
        # Handed over through the environment instead.
        assert dumps[0]["PGPASSWORD"] == QUERY_SECRET
        assert f"sslpassword={SSL_SECRET}" in dumps[0]["service_file"]
        assert dumps[-1]["PGPASSWORD"] == USER_SECRET  # the user:password@ one wins
    finally:
        store.close()
        if restored_name:
            psql(postgres_database_url, f'DROP DATABASE IF EXISTS "{restored_name}"')
