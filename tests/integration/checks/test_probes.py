"""The checks against real things: HTTP, TCP and Redis-protocol servers on loopback started by
the tests, the session's PostgreSQL server, this machine's capacity, and backup commands that
really run (``pg_dump`` included when PostgreSQL's binaries are installed)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_component
from tests.fixtures.postgres import find_postgres_bin
from tests.integration.checks.servers import (
    AppServer,
    BannerServer,
    RespServer,
    closed_port,
    silent_listener,
)
from zerodown.checks.base import worst
from zerodown.checks.post import check_feedback, run_postchecks, run_smoke_tests
from zerodown.checks.pre import (
    check_backup,
    check_capacity,
    check_dependencies,
    check_dependency,
    run_prechecks,
)
from zerodown.spec import ServiceSpec, parse_spec
from zerodown.spec.models import DependencyCheckSpec

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MINIMAL = "service: web\nrun:\n  command: python app.py\n"
DAY = 24 * 3600


def spec_with(checks: dict[str, Any]) -> ServiceSpec:
    """A spec whose ``checks`` section is ``checks`` (JSON is YAML, so no quoting trouble)."""
    return parse_spec(MINIMAL + "checks: " + json.dumps(checks) + "\n").spec


def dependency(url: str, **more: Any) -> DependencyCheckSpec:
    return DependencyCheckSpec.model_validate({"name": "dep", "url": url, **more})


@pytest.fixture
def app() -> Any:
    with AppServer() as server:
        yield server


@pytest.fixture
def redis() -> Any:
    with RespServer() as server:
        yield server


# -- capacity ----------------------------------------------------------------------------------


def test_capacity_is_measured_on_this_machine(tmp_path: Path) -> None:
    spec = spec_with(
        {"pre": {"capacity": {"cpuPerInstance": 0, "memoryPerInstance": 1, "diskFree": 1}}}
    )
    result = check_capacity(spec, instances=3, state_dir=tmp_path / "state" / "not-made-yet")
    assert result.status == "pass", result.summary
    figures = result.figures
    assert figures["disk_path"] == str(tmp_path)  # the nearest folder that exists
    assert figures["ports_bound"] == 3
    assert figures["cpu_cores"] >= 1 and 0 <= figures["cpu_free"] <= figures["cpu_cores"]
    assert figures["memory_available_bytes"] > 0 and figures["disk_free_bytes"] > 0
    assert result.duration_s > 0


def test_capacity_fails_for_a_disk_nobody_has(tmp_path: Path) -> None:
    spec = spec_with({"pre": {"capacity": {"cpuPerInstance": 0, "diskFree": "1000Ti"}}})
    result = check_capacity(spec, instances=1, state_dir=tmp_path)
    assert result.status == "fail"
    assert result.summary.startswith("not enough disk: ") and str(tmp_path) in result.summary


# -- dependencies: HTTP and TCP --------------------------------------------------------------------


def test_http_dependency_answering_the_expected_status_passes(app: AppServer) -> None:
    result = check_dependency(dependency(f"{app.url}/healthz"))
    assert result.status == "pass", result.summary
    assert result.name == "dependency:dep"
    assert result.figures["status"] == 200 and result.figures["latency_s"] > 0
    assert app.seen[0]["headers"]["User-Agent"] == "zerodown-check"


def test_http_dependency_with_another_status_fails_unless_expected(app: AppServer) -> None:
    failing = check_dependency(dependency(f"{app.url}/status/503"))
    assert failing.status == "fail"
    assert failing.summary.endswith("is not available: status 503 (expected 200)")
    expected = check_dependency(dependency(f"{app.url}/status/204", expectStatus=204))
    assert expected.status == "pass"


def test_http_dependency_refusing_connections_fails() -> None:
    with closed_port() as port:
        result = check_dependency(dependency(f"http://127.0.0.1:{port}/healthz"))
    assert result.status == "fail"
    assert result.summary.endswith("is not available: connection refused")


def test_http_dependency_that_never_answers_times_out() -> None:
    with silent_listener() as port:
        started = time.monotonic()
        result = check_dependency(dependency(f"http://127.0.0.1:{port}/", timeout="300ms"))
    assert result.status == "fail"
    assert result.summary.endswith("timed out after 300ms")
    assert time.monotonic() - started < 5


def test_tcp_dependency_passes_when_it_accepts_and_fails_when_refused() -> None:
    with silent_listener() as port:
        listening = check_dependency(dependency(f"tcp://127.0.0.1:{port}"))
    assert listening.status == "pass"
    assert listening.figures["port"] == port
    with closed_port() as port:
        refused = check_dependency(dependency(f"tcp://127.0.0.1:{port}"))
    assert refused.status == "fail" and "connection refused" in refused.summary


# -- dependencies: Redis over a raw socket -------------------------------------------------------


def test_redis_answering_pong_passes(redis: RespServer) -> None:
    result = check_dependency(dependency(f"redis://127.0.0.1:{redis.port}"))
    assert result.status == "pass", result.summary
    assert "PING answered +PONG" in result.summary
    assert redis.commands == [["PING"]]


def test_redis_password_is_sent_and_never_shown() -> None:
    with RespServer(password="s3cret") as server:
        result = check_dependency(dependency(f"redis://:s3cret@127.0.0.1:{server.port}/0"))
        wrong = check_dependency(dependency(f"redis://:nope@127.0.0.1:{server.port}"))
        missing = check_dependency(dependency(f"redis://127.0.0.1:{server.port}"))
    assert result.status == "pass", result.summary
    assert server.commands[:2] == [["AUTH", "s3cret"], ["PING"]]
    assert "s3cret" not in json.dumps(result.to_dict())
    assert result.figures["url"] == f"redis://:***@127.0.0.1:{server.port}/0"
    assert wrong.status == "fail" and "AUTH refused: -WRONGPASS" in wrong.summary
    assert missing.status == "fail"
    assert "PING answered -NOAUTH Authentication required." in missing.summary


def test_redis_url_pointing_at_something_else_fails() -> None:
    with BannerServer() as server:
        result = check_dependency(dependency(f"redis://127.0.0.1:{server.port}"))
    assert result.status == "fail"
    assert "not +PONG (is it a Redis server?)" in result.summary


def test_redis_that_never_answers_times_out() -> None:
    with silent_listener() as port:
        result = check_dependency(dependency(f"redis://127.0.0.1:{port}", timeout="200ms"))
    assert result.status == "fail" and result.summary.endswith("timed out after 200ms")


# -- dependencies: a real PostgreSQL ---------------------------------------------------------------


@pytest.mark.postgres
def test_postgresql_dependency_runs_select_1(postgres_url: str) -> None:
    result = check_dependency(dependency(postgres_url))
    assert result.status == "pass", result.summary
    assert "SELECT 1 on PostgreSQL" in result.summary
    assert result.figures["server_version"]


@pytest.mark.postgres
def test_postgresql_dependency_on_a_closed_port_fails() -> None:
    with closed_port() as port:
        result = check_dependency(dependency(f"postgresql://postgres@127.0.0.1:{port}/postgres"))
    assert result.status == "fail"
    assert "connection refused" in result.summary.lower()


def test_postgresql_that_never_answers_times_out_after_libpqs_shortest_wait() -> None:
    with silent_listener() as port:
        started = time.monotonic()
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        result = check_dependency(dependency(url, timeout="500ms"))
    assert result.status == "fail"
    assert result.summary.endswith("is not available: timed out after 2s")
    assert time.monotonic() - started < 10


@pytest.mark.postgres
def test_postgresql_dependency_naming_a_missing_database_fails(postgres_url: str) -> None:
    url = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    result = check_dependency(dependency(url))
    assert result.status == "fail"
    assert 'database "no_such_database" does not exist' in result.summary


def test_every_dependency_is_probed_and_reported_in_spec_order(
    app: AppServer, redis: RespServer
) -> None:
    with closed_port() as port:
        spec = spec_with(
            {
                "pre": {
                    "dependencies": [
                        {"name": "auth", "url": f"{app.url}/healthz"},
                        {"name": "queue", "url": f"tcp://127.0.0.1:{port}"},
                        {"name": "cache", "url": f"redis://127.0.0.1:{redis.port}"},
                    ]
                }
            }
        )
        results = check_dependencies(spec)
    assert [(r.name, r.status) for r in results] == [
        ("dependency:auth", "pass"),
        ("dependency:queue", "fail"),
        ("dependency:cache", "pass"),
    ]


# -- backup ------------------------------------------------------------------------------------


def backup_spec(**backup: Any) -> ServiceSpec:
    return spec_with({"pre": {"backup": {"artifacts": "backups/*.sql", **backup}}})


def test_backup_command_writes_the_artifact_that_is_measured_and_hashed(tmp_path: Path) -> None:
    spec = backup_spec(command="mkdir -p backups && printf 'dump' > backups/app-1.sql && echo done")
    result = check_backup(spec, spec_dir=tmp_path)
    assert result.status == "pass", result.summary
    artifact = tmp_path / "backups" / "app-1.sql"
    assert result.summary.startswith("backup written: backups/app-1.sql (4 B, sha256 ")
    figures = result.figures
    assert figures["path"] == str(artifact)
    assert figures["size_bytes"] == 4
    assert figures["sha256"] == hashlib.sha256(b"dump").hexdigest()
    assert figures["exit_code"] == 0 and figures["output_tail"] == "done\n"
    assert 0 <= figures["age_s"] < 60


def test_a_failing_backup_command_fails_with_its_last_line(tmp_path: Path) -> None:
    result = check_backup(
        backup_spec(command="echo start; echo 'disk full' >&2; exit 3"), spec_dir=tmp_path
    )
    assert result.status == "fail"
    assert result.summary == "the backup command failed with exit code 3: disk full"
    assert result.figures["output_tail"] == "start\ndisk full\n"


def test_a_backup_command_that_writes_no_new_file_fails(tmp_path: Path) -> None:
    (tmp_path / "backups").mkdir()
    old = tmp_path / "backups" / "app-0.sql"
    old.write_text("old dump")
    os.utime(old, (time.time() - 3 * 3600, time.time() - 3 * 3600))
    result = check_backup(backup_spec(command="true"), spec_dir=tmp_path)
    assert result.status == "fail"
    assert result.summary == (
        "the backup command succeeded but wrote no new file matching backups/*.sql: "
        "the newest, backups/app-0.sql, is 3h old"
    )


def test_a_backup_command_that_writes_nothing_at_all_fails(tmp_path: Path) -> None:
    result = check_backup(backup_spec(command="true"), spec_dir=tmp_path)
    assert result.status == "fail"
    assert result.summary.startswith("the backup command succeeded but no file matches")


def test_an_empty_backup_fails(tmp_path: Path) -> None:
    spec = backup_spec(command="mkdir -p backups && : > backups/app.sql")
    result = check_backup(spec, spec_dir=tmp_path)
    assert (result.status, result.summary) == ("fail", "the newest backup backups/app.sql is empty")


def test_a_backup_command_that_hangs_is_stopped(tmp_path: Path) -> None:
    started = time.monotonic()
    result = check_backup(backup_spec(command="sleep 30"), spec_dir=tmp_path, timeout=0.3)
    assert (result.status, result.summary) == (
        "fail",
        "the backup command timed out after 300ms",
    )
    assert time.monotonic() - started < 10


def write_artifact(folder: Path, name: str, age_s: float, text: str = "dump") -> Path:
    path = folder / "backups" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


def test_without_a_command_the_newest_artifact_must_be_younger_than_max_age(
    tmp_path: Path,
) -> None:
    write_artifact(tmp_path, "app-old.sql", 3 * DAY)
    write_artifact(tmp_path, "app-new.sql", 2 * 3600, text="newest dump")
    result = check_backup(backup_spec(maxAge="1d"), spec_dir=tmp_path)
    assert result.status == "pass", result.summary
    assert result.summary.startswith("recent backup: backups/app-new.sql (11 B, sha256 ")
    assert result.summary.endswith(", 2h old (maxAge 24h)")
    assert result.figures["matched_files"] == 2
    assert "command" not in result.figures


def test_artifacts_are_found_in_a_folder_whose_name_looks_like_a_pattern(tmp_path: Path) -> None:
    folder = tmp_path / "shop[eu]"
    folder.mkdir()
    write_artifact(folder, "app.sql", 60)
    assert check_backup(backup_spec(), spec_dir=folder).status == "pass"


def test_an_absolute_artifacts_glob_is_used_as_written(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_artifact(elsewhere, "app.sql", 60)
    spec = backup_spec(artifacts=f"{elsewhere}/backups/*.sql")
    result = check_backup(spec, spec_dir=tmp_path / "service")
    assert result.status == "pass", result.summary
    assert result.figures["path"] == str(elsewhere / "backups" / "app.sql")


def test_without_a_command_an_old_artifact_fails(tmp_path: Path) -> None:
    write_artifact(tmp_path, "app.sql", 2 * DAY)
    result = check_backup(backup_spec(), spec_dir=tmp_path)
    assert result.status == "fail"
    assert result.summary == ("the newest backup backups/app.sql is 48h old, older than maxAge 24h")


def pg_dump_path() -> Path:
    bin_dir = find_postgres_bin()
    pg_dump = bin_dir / "pg_dump" if bin_dir is not None else None
    if pg_dump is None or not pg_dump.exists():
        require_component("pg_dump", "install the Debian package 'postgresql' (make system-test)")
        raise AssertionError("require_component returned without skipping or failing")
    return pg_dump


@pytest.mark.postgres
def test_backup_with_pg_dump_of_a_real_database(postgres_database_url: str, tmp_path: Path) -> None:
    import psycopg

    pg_dump = pg_dump_path()
    with psycopg.connect(postgres_database_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE orders (id int PRIMARY KEY, item text)")
        connection.execute("INSERT INTO orders VALUES (1, 'a book')")
    command = (
        f"mkdir -p backups && '{pg_dump}' --dbname='{postgres_database_url}' "
        "> backups/app-$(date +%s%N).sql"
    )
    result = check_backup(backup_spec(command=command), spec_dir=tmp_path)
    assert result.status == "pass", result.summary
    dump = Path(result.figures["path"]).read_text()
    assert "CREATE TABLE public.orders" in dump and "a book" in dump
    assert result.figures["sha256"] == hashlib.sha256(dump.encode()).hexdigest()


# -- all pre-checks ------------------------------------------------------------------------------


def test_prechecks_run_in_report_order(app: AppServer, redis: RespServer, tmp_path: Path) -> None:
    spec = spec_with(
        {
            "pre": {
                "capacity": {"cpuPerInstance": 0, "memoryPerInstance": 1, "diskFree": 1},
                "dependencies": [
                    {"name": "auth", "url": f"{app.url}/healthz"},
                    {"name": "cache", "url": f"redis://127.0.0.1:{redis.port}"},
                ],
                "backup": {"command": "mkdir -p b && echo x > b/1.sql", "artifacts": "b/*.sql"},
            }
        }
    )
    results = run_prechecks(
        spec,
        spec_dir=tmp_path,
        state_dir=tmp_path / "state",
        instances=2,
        previous_revision=None,
        previous_version=None,
        previous_ready=0,
        replicas=2,
    )
    assert [(r.name, r.status) for r in results] == [
        ("capacity", "pass"),
        ("dependency:auth", "pass"),
        ("dependency:cache", "pass"),
        ("backup", "pass"),
        ("rollback-plan", "warn"),
    ]
    assert worst(results) == "warn"
    json.dumps([r.to_dict() for r in results])  # the report's JSON twin takes them as they are


def test_prechecks_without_dependencies_or_backup_still_list_them(tmp_path: Path) -> None:
    results = run_prechecks(
        spec_with({"pre": {"capacity": {"cpuPerInstance": 0, "memoryPerInstance": 1}}}),
        spec_dir=tmp_path,
        state_dir=tmp_path,
        instances=1,
        previous_revision=3,
        previous_version="v3",
        previous_ready=1,
        replicas=1,
    )
    assert [(r.name, r.status, r.summary) for r in results][1:] == [
        ("dependencies", "pass", "not configured"),
        ("backup", "warn", "no backup configured for this service"),
        ("rollback-plan", "pass", "rollback to revision 3 (v3): 1 of 1 instances ready"),
    ]


# -- smoke tests -----------------------------------------------------------------------------------


def test_smoke_tests_send_real_requests_and_check_the_answers(app: AppServer) -> None:
    spec = spec_with(
        {
            "post": {
                "smoke": [
                    {"name": "home", "path": "/", "expectBody": "version 2"},
                    {
                        "name": "info",
                        "path": "/api/info",
                        "expectJson": {"ok": True, "data.version": "2", "data.items.0.id": 7},
                    },
                    {
                        "name": "echo",
                        "method": "POST",
                        "path": "/echo",
                        "headers": {"X-Test": "1"},
                        "body": "hello",
                        "expectStatus": 201,
                        "expectJson": {"method": "POST", "body": "hello", "test": "1"},
                    },
                    {"name": "head", "method": "HEAD", "path": "/healthz"},
                ]
            }
        }
    )
    results = run_smoke_tests(spec, base_url=app.url)
    assert [(r.name, r.status) for r in results] == [
        ("smoke:home", "pass"),
        ("smoke:info", "pass"),
        ("smoke:echo", "pass"),
        ("smoke:head", "pass"),
    ], [r.summary for r in results]
    assert results[0].summary.startswith("GET / answered 200 in ")
    assert results[0].summary.endswith("body contains 'version 2'")
    echo = app.seen[2]
    assert (echo["method"], echo["body"], echo["headers"]["X-Test"]) == ("POST", "hello", "1")
    assert results[1].figures["status"] == 200 and results[1].figures["failures"] == []


def test_smoke_test_failures_are_each_named(app: AppServer) -> None:
    spec = spec_with(
        {
            "post": {
                "smoke": [
                    {"name": "down", "path": "/status/503"},
                    {"name": "text", "path": "/", "expectBody": "version 3"},
                    {"name": "json", "path": "/api/info", "expectJson": {"ok": 1, "data.x": 1}},
                    {"name": "html", "path": "/", "expectJson": {"ok": True}},
                ]
            }
        }
    )
    down, text, json_fields, html = run_smoke_tests(spec, base_url=app.url)
    assert down.status == "fail" and down.summary == "GET /status/503: status 503 (expected 200)"
    assert text.summary == "GET /: body does not contain 'version 3'"
    assert json_fields.summary == (
        "GET /api/info: ok is true (expected 1); no data.x in the JSON body"
    )
    assert html.summary == "GET /: body is not JSON"


def test_smoke_tests_against_nothing_fail() -> None:
    spec = spec_with({"post": {"smoke": [{"name": "home", "timeout": "300ms"}]}})
    with closed_port() as port:
        (refused,) = run_smoke_tests(spec, base_url=f"http://127.0.0.1:{port}")
    assert (refused.status, refused.summary) == ("fail", "GET /: connection refused")
    with silent_listener() as port:
        (silent,) = run_smoke_tests(spec, base_url=f"http://127.0.0.1:{port}")
    assert (silent.status, silent.summary) == ("fail", "GET /: timed out after 300ms")


# -- feedback endpoint and all post-checks -------------------------------------------------------


def feedback_with_url(url: str) -> Any:
    return check_feedback(
        requests=100,
        responses_4xx=0,
        client_aborts=0,
        max_4xx_rate=0.1,
        max_abort_rate=0.05,
        url=url,
    )


def test_feedback_endpoint_must_answer_2xx(app: AppServer) -> None:
    good = feedback_with_url(f"{app.url}/healthz")
    assert good.status == "pass" and good.figures["url_status"] == 200
    assert good.summary.endswith("; feedback endpoint answered 200")
    bad = feedback_with_url(f"{app.url}/status/503")
    assert bad.status == "fail"
    assert bad.summary == f"feedback endpoint {app.url}/status/503 answered 503, not 2xx"
    with closed_port() as port:
        gone = feedback_with_url(f"http://127.0.0.1:{port}/")
    assert gone.status == "fail" and gone.summary.endswith(": connection refused")


def test_postchecks_run_everything_configured(app: AppServer) -> None:
    spec = spec_with(
        {
            "post": {
                "smoke": [{"name": "home", "path": "/", "expectBody": "shop"}],
                "performance": {"maxP95Ratio": 1.5},
                "logs": {"patterns": ["ERROR"], "maxMatches": 0},
                "feedback": {"max4xxRate": "10%", "url": f"{app.url}/healthz"},
            }
        }
    )
    results = run_postchecks(
        spec,
        base_url=app.url,
        p95_new=0.021,
        p95_previous=0.020,
        log_lines=[(time.time(), "web-1", "GET / 200")],
        requests=500,
        responses_4xx=5,
        client_aborts=None,
    )
    assert [(r.name, r.status) for r in results] == [
        ("smoke:home", "pass"),
        ("performance", "pass"),
        ("logs", "pass"),
        ("feedback", "pass"),
    ], [r.summary for r in results]
