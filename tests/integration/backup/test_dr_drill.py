"""DR drills of the example notes service (examples/notes): real SQLite backups, a real
restore into a scratch folder, the real app started against it, real smoke tests.

The spec's smoke test here also asks for the number of notes the *backup* holds, and a note is
added to the live database after the backup: so the drill passes only if the service really
ran against the restored copy and not the live file. Every drill must leave nothing behind: no
process carrying its marker, no scratch folder, the live database untouched.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import sys
from pathlib import Path

import psutil
import pytest

from tests.integration.backup.helpers import require_tool
from tests.unit.report.checks import assert_valid_report
from zerodown.backup import Backups, resolve_settings
from zerodown.backup.dr import (
    DRILL_FOLDER,
    DRILL_MARKER_ENV,
    DrillSetup,
    clean_stale_drills,
    drill_history,
    plan_markdown,
    run_drill,
)
from zerodown.core.errors import RefusedError
from zerodown.report.render import render_from_json
from zerodown.spec import ServiceSpec, load_spec
from zerodown.store import SqliteStore

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "notes"


def _notes(db: Path, *texts: str) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, at REAL, text TEXT NOT NULL)"
        )
        connection.executemany(
            "INSERT INTO notes (at, text) VALUES (0, ?)", [(text,) for text in texts]
        )
    connection.close()


def _marked(drill_id: str) -> list[int]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(DRILL_MARKER_ENV) == drill_id:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


class Example:
    """The notes example copied into a temporary folder, with its own state and store."""

    def __init__(self, root: Path, spec_text: str | None = None) -> None:
        self.root = root
        shutil.copy(EXAMPLE / "app.py", root / "app.py")
        text = spec_text if spec_text is not None else (EXAMPLE / "zerodown.yaml").read_text()
        (root / "zerodown.yaml").write_text(text)
        (root / "data").mkdir()
        self.db = root / "data" / "notes.db"
        self.state = root / "state"
        self.loaded = load_spec(root / "zerodown.yaml")
        self.store = SqliteStore(self.state / "zerodown.db")
        self.store.upsert_service(  # type: ignore[arg-type]
            "notes", spec_path=str(root / "zerodown.yaml"), spec_text=self.loaded.text
        )
        self.backups = Backups(self.store)
        self.settings = resolve_settings(self.spec, spec_dir=root, state_dir=self.state)
        self.reports = root / "reports"

    @property
    def spec(self) -> ServiceSpec:
        return self.loaded.spec

    def setup(self, spec: ServiceSpec | None = None) -> DrillSetup:
        return DrillSetup(
            spec=spec or self.spec,
            spec_path=str(self.root / "zerodown.yaml"),
            workdir=self.loaded.workdir,
            revision=1,
            version="v1",
            settings=self.settings,
            backups=self.backups,
            state_dir=self.state,
            report_dir=self.reports,
        )


def _with_count_smoke_test(count: int) -> str:
    text = (EXAMPLE / "zerodown.yaml").read_text()
    smoke = "      - {name: notes, path: /notes, expectStatus: 200, expectJson: {ok: true}}\n"
    assert smoke in text
    counted = smoke + (
        f"      - {{name: restored-notes, path: /notes, expectJson: {{count: {count}}}}}\n"
    )
    return text.replace(smoke, counted)


def test_a_drill_restores_starts_smoke_tests_measures_and_leaves_nothing(tmp_path: Path) -> None:
    example = Example(tmp_path, _with_count_smoke_test(2))
    _notes(example.db, "first", "second")
    backup = example.backups.take(example.settings, "db", reason="manual")
    _notes(example.db, "written after the backup")  # the live file now holds 3
    live_before = example.db.read_bytes()

    result = run_drill(example.setup())

    assert result.passed, result.reason
    assert result.rto_s is not None and 0 < result.rto_s <= result.duration_s
    assert result.rto_target_s == 300.0 and result.rto_met is True
    assert result.rpo_s is not None and result.rpo_s >= 0
    assert result.rpo_target_s == 3600.0 and result.rpo_met is True
    (target,) = result.targets
    assert target.backup_id == backup.id and target.ok
    assert target.sha256 == backup.artifacts[0].sha256
    assert target.variable == "NOTES_DB"
    assert [s["status"] for s in result.smoke] == ["pass", "pass"]
    # Nothing left behind, and the live data untouched.
    assert result.cleanup["ok"] and result.cleanup["scratch_removed"]
    assert not _marked(result.drill_id)
    assert not (example.state / DRILL_FOLDER / result.drill_id).exists()
    assert list((example.state / DRILL_FOLDER).iterdir()) == []
    assert example.db.read_bytes() == live_before
    assert not psutil.pid_exists(result.instance["pid"])
    # The report, in the seed's template, as an operation.
    markdown = Path(result.report["markdown"]).read_text()
    assert markdown.startswith("## Deployment Operations Report - ")
    assert "drill" in markdown and "not a deployment" in markdown
    assert f"{result.rto_s:.2f}s" in markdown
    twin = json.loads(Path(result.report["json"]).read_text())
    assert twin["operation"] == "drill"
    assert_valid_report(Path(result.report["markdown"]))
    english = render_from_json(twin, lang="en", chart_name=None)
    assert "no user affected: a disaster-recovery drill (an operation, not a deployment)" in (
        english
    )
    assert "RTO measured" in english and "first deployment" not in english
    # The event log records the drill for the plan's history.
    events = example.store.list_events("notes", limit=1000)  # type: ignore[arg-type]
    history = drill_history(events)
    assert history[0]["status"] == "passed" and history[0]["rto_s"] == result.rto_s


def test_a_drill_against_the_live_data_would_fail_the_count(tmp_path: Path) -> None:
    """The counter-proof of the test above: the same smoke test fails when the backup holds
    other data, so a passing drill did read the restored copy."""
    example = Example(tmp_path, _with_count_smoke_test(5))
    _notes(example.db, "only", "two")
    example.backups.take(example.settings, "db", reason="manual")
    spec = example.spec.model_copy(
        update={
            "dr": example.spec.dr.model_copy(
                update={"drill": example.spec.dr.drill.model_copy(update={"timeout": 3.0})}
            )
        }
    )
    result = run_drill(example.setup(spec))
    assert not result.passed
    assert "smoke tests did not pass" in result.reason
    assert result.rto_s is None and result.rto_met is None
    assert result.cleanup["ok"], result.cleanup
    assert not _marked(result.drill_id)


def test_a_drill_without_a_backup_fails_and_says_the_service_cannot_be_restored(
    tmp_path: Path,
) -> None:
    example = Example(tmp_path)
    _notes(example.db, "never backed up")
    result = run_drill(example.setup())
    assert not result.passed
    assert "no good backup" in result.reason
    assert result.instance == {} and result.cleanup["ok"]
    assert Path(result.report["markdown"]).is_file()


def test_a_service_that_exits_fails_the_drill_with_its_log(tmp_path: Path) -> None:
    example = Example(tmp_path)
    _notes(example.db, "a note")
    record = example.backups.take(example.settings, "db", reason="manual")
    Path(record.artifacts[0].location).write_bytes(b"")  # the backup is now corrupted
    result = run_drill(example.setup())
    assert not result.passed
    assert "restore of db failed" in result.reason and "corrupted" in result.reason
    assert result.cleanup["ok"]


def test_a_spec_the_drill_cannot_use_is_refused_before_anything_is_touched(
    tmp_path: Path,
) -> None:
    text = (EXAMPLE / "zerodown.yaml").read_text().replace("    restoreEnv: {db: NOTES_DB}\n", "")
    example = Example(tmp_path, text)
    with pytest.raises(RefusedError, match="restoreEnv names no variable for db"):
        run_drill(example.setup())
    assert not (example.state / DRILL_FOLDER).exists()


def test_a_drill_left_by_a_dead_process_is_cleaned_by_the_next(tmp_path: Path) -> None:
    folder = tmp_path / DRILL_FOLDER / "notes-old"
    (folder / "data").mkdir(parents=True)
    dead = psutil.Popen(["true"])
    dead.wait()
    (folder / "drill.json").write_text(json.dumps({"drill_id": "notes-old", "pid": dead.pid}))
    assert clean_stale_drills(tmp_path / DRILL_FOLDER) == ["notes-old"]
    assert not folder.exists()


def test_the_plan_lists_objectives_inventory_order_verification_contacts_and_drills(
    tmp_path: Path,
) -> None:
    example = Example(tmp_path)
    _notes(example.db, "a note")
    record = example.backups.take(example.settings, "db", reason="manual")
    run_drill(example.setup())
    now = dt.datetime.now(dt.UTC)
    markdown = plan_markdown(
        example.spec,
        spec_path=str(tmp_path / "zerodown.yaml"),
        settings=example.settings,
        backups=example.backups.catalogue.list_backups("notes"),  # type: ignore[arg-type]
        drills=drill_history(example.store.list_events("notes", limit=1000)),  # type: ignore[arg-type]
        now=now,
    )
    assert markdown.startswith("# Disaster Recovery Plan: notes\n")
    for heading in (
        "Objectives",
        "Inventory",
        "Restore order",
        "Verification",
        "Contacts",
        "Drills",
    ):
        assert f"\n## {heading}" in markdown
    assert "**RPO** (most data the service may lose): 1h; met now" in markdown
    assert "**RTO** (longest the service may be down): 5m; met by the last drill" in markdown
    assert f"#{record.id} at" in markdown and record.artifacts[0].sha256 in markdown
    assert "keep the last 3, 7 daily, 4 weekly and 6 monthly" in markdown
    assert "| On-call engineer | incident commander | pager: notes-oncall |" in markdown
    assert "GET /notes answers 200" in markdown


# ---------------------------------------------------------------------------------------------
# PostgreSQL: the drill restores into a scratch database on the target's server and drops it.

ACCOUNTS_APP = '''\
"""A service that counts the rows of one PostgreSQL table: GET /accounts -> {count, database}."""
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

URL = os.environ["ACCOUNTS_URL"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        with psycopg.connect(URL, connect_timeout=5) as connection:
            count = connection.execute("SELECT count(*) FROM account").fetchone()[0]
            database = connection.info.dbname
        body = json.dumps({"ok": True, "count": count, "database": database}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server.serve_forever()
'''


def _accounts_spec(url: str, *, count: int, timeout: str = "1m") -> str:
    return (
        "service: accounts\n"
        "platform: local\n"
        f"run: {{command: '{sys.executable} app.py', workdir: .}}\n"
        "replicas: 1\n"
        f"env: {{ACCOUNTS_URL: '{url}'}}\n"
        "healthCheck: {http: {path: /accounts}, interval: 1s}\n"
        "traffic: {listen: 127.0.0.1:18093}\n"
        "checks:\n"
        "  post:\n"
        "    smoke:\n"
        f"      - {{name: accounts, path: /accounts, expectJson: {{count: {count}}}}}\n"
        "backups:\n"
        "  targets:\n"
        f"    - {{name: db, kind: postgresql, url: '{url}'}}\n"
        "dr:\n"
        "  rpo: 1h\n"
        "  rto: 5m\n"
        f"  drill: {{restoreEnv: {{db: ACCOUNTS_URL}}, timeout: {timeout}}}\n"
    )


def _psql(url: str, sql: str) -> str:
    import subprocess

    result = subprocess.run(
        ["psql", "--no-psqlrc", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout.strip()


def _scratch_databases(url: str) -> list[str]:
    names = _psql(url, "SELECT datname FROM pg_database WHERE datname LIKE '%\\_drill\\_%'")
    return [name for name in names.splitlines() if name]


class AccountsExample(Example):
    def __init__(self, root: Path, url: str, *, count: int, timeout: str = "1m") -> None:
        (root / "app.py").write_text(ACCOUNTS_APP)
        (root / "zerodown.yaml").write_text(_accounts_spec(url, count=count, timeout=timeout))
        self.root = root
        self.state = root / "state"
        self.loaded = load_spec(root / "zerodown.yaml")
        self.store = SqliteStore(self.state / "zerodown.db")
        self.store.upsert_service(  # type: ignore[arg-type]
            "accounts", spec_path=str(root / "zerodown.yaml"), spec_text=self.loaded.text
        )
        self.backups = Backups(self.store)
        self.settings = resolve_settings(self.spec, spec_dir=root, state_dir=self.state)
        self.reports = root / "reports"


@pytest.mark.postgres
def test_a_postgresql_drill_restores_into_a_scratch_database_and_drops_it(
    tmp_path: Path, postgres_database_url: str
) -> None:
    require_tool("pg_dump", "postgresql-client")
    url = postgres_database_url
    _psql(url, "CREATE TABLE account (id serial PRIMARY KEY, email text)")
    _psql(url, "INSERT INTO account (email) VALUES ('a@x'), ('b@x'), ('c@x')")
    example = AccountsExample(tmp_path, url, count=3)
    backup = example.backups.take(example.settings, "db", reason="manual")
    _psql(url, "INSERT INTO account (email) VALUES ('written after the backup')")

    result = run_drill(example.setup())

    assert result.passed, result.reason
    (target,) = result.targets
    live = url.rsplit("/", 1)[1]
    scratch = target.destination.rsplit("/", 1)[1]
    assert scratch.startswith(f"{live}_drill_") and target.backup_id == backup.id
    assert target.sha256 == backup.artifacts[0].sha256 and target.variable == "ACCOUNTS_URL"
    # The service counted 3 rows: it ran against the scratch copy, not the live database (4).
    assert [s["status"] for s in result.smoke] == ["pass"]
    assert result.cleanup["ok"] and result.cleanup["databases_dropped"] == [scratch]
    assert result.cleanup["databases_left"] == []
    assert _scratch_databases(url) == []
    assert _psql(url, "SELECT count(*) FROM account") == "4"
    assert list((example.state / DRILL_FOLDER).iterdir()) == []
    assert_valid_report(Path(result.report["markdown"]))


@pytest.mark.postgres
def test_a_failed_postgresql_drill_still_drops_its_scratch_database(
    tmp_path: Path, postgres_database_url: str
) -> None:
    require_tool("pg_dump", "postgresql-client")
    url = postgres_database_url
    _psql(url, "CREATE TABLE account (id serial PRIMARY KEY, email text)")
    example = AccountsExample(tmp_path, url, count=99, timeout="2s")
    example.backups.take(example.settings, "db", reason="manual")

    result = run_drill(example.setup())

    assert not result.passed and "smoke tests did not pass" in result.reason
    assert result.cleanup["ok"] and len(result.cleanup["databases_dropped"]) == 1
    assert _scratch_databases(url) == []
    assert not _marked(result.drill_id)


@pytest.mark.postgres
def test_a_scratch_database_of_a_killed_drill_is_dropped_by_the_next_one(
    tmp_path: Path, postgres_database_url: str
) -> None:
    """drill.json names each scratch database before it is created; a drill whose process is
    gone is cleaned up, databases included, by the next drill of the service."""
    require_tool("pg_dump", "postgresql-client")
    url = postgres_database_url
    example = AccountsExample(tmp_path, url, count=0)
    live = url.rsplit("/", 1)[1]
    orphan = f"{live}_drill_dead01beef"
    _psql(url, f'CREATE DATABASE "{orphan}"')
    folder = example.state / DRILL_FOLDER / "accounts-dead"
    folder.mkdir(parents=True)
    gone = psutil.Popen(["true"])
    gone.wait()
    (folder / "drill.json").write_text(
        json.dumps(
            {
                "drill_id": "accounts-dead",
                "service": "accounts",
                "pid": gone.pid,
                "databases": [{"target": "db", "name": orphan}],
            }
        )
    )
    # Another service's drill cannot drop it (no credentials): the record stays.
    assert clean_stale_drills(example.state / DRILL_FOLDER) == []
    assert folder.exists() and _scratch_databases(url) == [orphan]
    assert clean_stale_drills(example.state / DRILL_FOLDER, settings=example.settings) == [
        "accounts-dead"
    ]
    assert not folder.exists() and _scratch_databases(url) == []
