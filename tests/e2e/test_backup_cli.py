"""Backups through the real CLI and a real controller: run, list, verify, restore, the
"backup confirmed" pre-deployment check, ``rollback --with-data``, and a controller killed with
SIGKILL in the middle of a backup."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.zerodown import Controller, Env, start_controller, wait_until
from tests.integration.backup.helpers import flip_byte, require_tool
from zerodown.backup import tree_manifest

pytestmark = pytest.mark.integration


def write_backup_spec(env: Env, folder: Path) -> Path:
    spec = env.write_spec(folder, replicas=1)
    (folder / "backup.key").write_text("e2e password\n")
    (folder / "uploads").mkdir()
    (folder / "uploads" / "logo.png").write_bytes(os.urandom(50_000))
    (folder / "uploads" / "notes.txt").write_text("first\n")
    with sqlite3.connect(folder / "app.db") as db:
        db.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, text TEXT)")
        db.execute("INSERT INTO note (text) VALUES ('before v2')")
    db.close()
    spec.write_text(
        spec.read_text() + "backups:\n"
        "  repository: ./backups\n"
        "  passwordFile: ./backup.key\n"
        "  targets:\n"
        "    - {name: uploads, kind: files, path: ./uploads}\n"
        "    - {name: db, kind: sqlite, path: ./app.db, beforeDeploy: true}\n"
    )
    return spec


def notes(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [row[0] for row in db.execute("SELECT text FROM note ORDER BY id")]
    finally:
        db.close()


def wait_serving(env: Env, revision: int) -> None:
    def serving() -> bool:
        history = env.cli("history", "demo", "--json").json()["releases"]
        return any(r["revision"] == revision and r["status"] == "succeeded" for r in history)

    wait_until(serving, timeout=90, what=f"revision {revision} to serve")


def test_backup_story_through_the_cli(controller: Controller, tmp_path: Path) -> None:
    require_tool("restic", "restic")
    env = controller.env
    spec = write_backup_spec(env, tmp_path)
    assert env.cli("up", str(spec), "--version", "v1").code == 0
    wait_serving(env, 1)

    run = env.cli("backup", "run", "demo", "--json")
    assert run.code == 0, run.stderr
    taken = {b["target"]: b for b in run.json()["backups"]}
    assert set(taken) == {"uploads", "db"}
    assert all(b["status"] == "succeeded" and b["release_revision"] == 1 for b in taken.values())
    listed = env.cli("backup", "list", "demo", "--json").json()["backups"]
    assert [b["id"] for b in listed] == [taken["db"]["id"], taken["uploads"]["id"], 1]
    # 'up' confirmed a backup of db before anything served.
    assert (listed[-1]["target"], listed[-1]["reason"]) == ("db", "before deploy")
    assert listed[-1]["release_revision"] is None
    assert env.cli("backup", "list", "demo").code == 0
    assert env.cli("backup", "targets", "demo").code == 0

    # verify: ok, then a flipped byte is reported corrupted (exit 1) and never restored.
    db_id, files_id = str(taken["db"]["id"]), str(taken["uploads"]["id"])
    ok = env.cli("backup", "verify", "demo", db_id, "--json")
    assert ok.code == 0 and ok.json()["verification"]["status"] == "ok"
    flip_byte(Path(taken["db"]["artifacts"][0]["location"]))
    bad = env.cli("backup", "verify", "demo", db_id)
    assert bad.code == 1 and "CORRUPTED" in bad.stdout
    refused = env.cli("backup", "restore", "demo", db_id)
    assert refused.code == 3 and "corrupted" in refused.stderr

    # restore: a new path by default, the live folder only with --force.
    restored = env.cli("backup", "restore", "demo", files_id, "--json")
    assert restored.code == 0, restored.stderr
    report = restored.json()["restore"]
    copy = Path(report["destination"])
    assert report["matches"] and copy == tmp_path / f"uploads.restored-{files_id}"
    assert tree_manifest(copy).sha256 == tree_manifest(tmp_path / "uploads").sha256
    live = env.cli("backup", "restore", "demo", files_id, "--to", str(tmp_path / "uploads"))
    assert live.code == 3 and "--force" in live.stderr

    # deploy: the "backup confirmed" check backs the db up and the release keeps the id.
    deployed = env.cli("deploy", str(spec), "--version", "v2", "--json")
    assert deployed.code == 0, deployed.stderr
    wait_serving(env, 2)
    release = env.cli("history", "demo", "--json").json()["releases"][0]
    assert release["revision"] == 2
    detail = controller_release(env, 2)
    checks = {c["name"]: c for c in detail["state"]["prechecks"]}
    assert checks["backup:db"]["status"] == "pass"
    confirmed_id = checks["backup:db"]["figures"]["backup_id"]
    assert "backup" not in checks  # the real backup replaces "no backup configured"
    events = env.cli("events", "demo", "--json").stdout
    assert "backup.confirmed" in events

    # v2 writes to the database; rolling back with data brings the v1 data back.
    with sqlite3.connect(tmp_path / "app.db") as db:
        db.execute("INSERT INTO note (text) VALUES ('written by v2')")
    db.close()
    unconfirmed = env.cli("rollback", "demo", "--with-data")  # no terminal to ask, no --yes
    assert unconfirmed.code == 3 and "--yes" in unconfirmed.stderr
    assert notes(tmp_path / "app.db") == ["before v2", "written by v2"]
    # The server restores only the backups the client confirmed: other ids are refused (the
    # plan changed since), and no ids at all is bad input. Nothing is done either way.
    stale = controller_post(
        env, "rollback", {"with_data": True, "backup_ids": [confirmed_id + 1000]}
    )
    assert stale.status_code == 409 and "changed since" in stale.json()["error"]["message"]
    missing = controller_post(env, "rollback", {"with_data": True})
    assert missing.status_code == 400 and "backup_ids" in missing.json()["error"]["message"]
    assert notes(tmp_path / "app.db") == ["before v2", "written by v2"]
    assert env.cli("history", "demo", "--json").json()["releases"][0]["status"] == "succeeded"
    plan = env.cli("rollback", "demo", "--with-data", "--yes", "--json")
    assert plan.code == 0, plan.stderr
    result = plan.json()
    assert [b["id"] for b in result["restored"]] == [confirmed_id]
    assert notes(tmp_path / "app.db") == ["before v2"]
    # What it replaced was backed up first, and the answer names that backup.
    (safety,) = result["safety_backups"]
    assert safety["reason"] == "before rollback" and safety["target"] == "db"
    assert f"#{safety['id']}" in result["message"]
    kept = env.cli("backup", "restore", "demo", str(safety["id"]), "--json")
    assert kept.code == 0, kept.stderr
    assert notes(Path(kept.json()["restore"]["destination"])) == ["before v2", "written by v2"]
    # A forced restore into the live database is checked by its content, and says it matches.
    over = env.cli(
        "backup", "restore", "demo", str(safety["id"]), "--to", str(tmp_path / "app.db"), "--force"
    )
    assert over.code == 0, over.stderr
    assert "content matches" in over.stdout and "DIFFERS" not in over.stdout


def controller_post(env: Env, action: str, body: dict[str, object]) -> Any:
    """POST to one of demo's control routes, as a client other than the CLI would."""
    import httpx

    from zerodown.core.state import StateDir

    state = StateDir(str(env.home))
    info, token = state.read_controller(), state.token()
    assert info is not None and token
    return httpx.post(
        f"{info.url}/v1/services/demo/{action}",
        json={"who": "test", **body},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def controller_release(env: Env, revision: int) -> dict[str, object]:
    import httpx

    from zerodown.core.state import StateDir

    state = StateDir(str(env.home))
    info, token = state.read_controller(), state.token()
    assert info is not None and token
    response = httpx.get(
        f"{info.url}/v1/services/demo/releases/{revision}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    result: dict[str, object] = response.json()
    return result


def test_a_controller_killed_during_a_backup_leaves_no_half_registered_backup(
    zd_env: Env, tmp_path: Path
) -> None:
    crash = tmp_path / "crash"
    zd_env.env["ZERODOWN_CRASH_FILE"] = str(crash)
    controller = start_controller(zd_env)
    spec = write_backup_spec(zd_env, tmp_path)
    spec.write_text(spec.read_text().replace(", beforeDeploy: true", ""))
    assert zd_env.cli("up", str(spec), "--version", "v1").code == 0
    wait_serving(zd_env, 1)
    crash.write_text("backup:written#1")
    died = zd_env.cli("backup", "run", "demo", "--target", "db")
    assert died.code == 1 and "does not answer" in died.stderr
    controller.process.wait(timeout=30)
    assert controller.process.returncode == -signal.SIGKILL
    artifacts = list((tmp_path / "backups" / "demo" / "db").iterdir())
    assert [p.name for p in artifacts] == ["1-db.sqlite"]

    restarted = start_controller(zd_env)
    try:
        listed = zd_env.cli("backup", "list", "demo", "--json").json()["backups"]
        assert [(b["id"], b["status"]) for b in listed] == [(1, "abandoned")]
        assert list((tmp_path / "backups" / "demo" / "db").iterdir()) == []
        again = zd_env.cli("backup", "run", "demo", "--target", "db", "--json")
        assert again.code == 0 and again.json()["backups"][0]["status"] == "succeeded"
    finally:
        zd_env.cli("shutdown", "--all", timeout=120)
        try:
            restarted.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            restarted.process.kill()


def restic_snapshot_ids(folder: Path) -> set[str]:
    result = subprocess.run(
        ["restic", "--no-cache", "snapshots", "--json"],
        env={
            **os.environ,
            "RESTIC_REPOSITORY": str(folder / "backups" / "restic"),
            "RESTIC_PASSWORD_FILE": str(folder / "backup.key"),
        },
        capture_output=True,
        text=True,
        check=True,
    )
    return {str(s["id"]) for s in json.loads(result.stdout or "[]")}


def test_forget_applies_retention_through_the_cli(controller: Controller, tmp_path: Path) -> None:
    """``backup forget --dry-run`` lists what each rule keeps; ``backup forget`` removes the
    rest (the restic snapshot is gone from ``restic snapshots``, the SQLite copy from disk) and,
    like ``backup run`` and ``backup restore``, writes a report (checked at teardown)."""
    require_tool("restic", "restic")
    env = controller.env
    spec = write_backup_spec(env, tmp_path)
    text = spec.read_text().replace(", beforeDeploy: true", "")
    spec.write_text(text.replace("  targets:\n", "  retention: {keepLast: 1}\n  targets:\n"))
    assert env.cli("up", str(spec), "--version", "v1").code == 0
    wait_serving(env, 1)
    first = env.cli("backup", "run", "demo", "--no-verify", "--json")
    assert first.code == 0, first.stderr
    old = {b["target"]: b for b in first.json()["backups"]}
    assert first.json()["verifications"] == []
    (tmp_path / "uploads" / "notes.txt").write_text("second\n")
    second = env.cli("backup", "run", "demo")
    assert second.code == 0, second.stderr
    assert "verify: ok" in second.stdout and "report: " in second.stdout
    snapshot = old["uploads"]["artifacts"][0]["location"].removeprefix("restic:")
    copy = Path(old["db"]["artifacts"][0]["location"])
    assert snapshot in restic_snapshot_ids(tmp_path) and copy.exists()

    dry = env.cli("backup", "forget", "demo", "--dry-run")
    assert dry.code == 0, dry.stderr
    assert "uploads: applying policy: keep the last 1" in dry.stdout
    assert "keep 1 backup(s):" in dry.stdout and "would remove 1 backup(s):" in dry.stdout
    assert "last snapshot (keepLast)" in dry.stdout
    assert snapshot in restic_snapshot_ids(tmp_path) and copy.exists()

    forget = env.cli("backup", "forget", "demo", "--json")
    assert forget.code == 0, forget.stdout + forget.stderr
    data = forget.json()
    removed = {run["target"]: run["removed"] for run in data["targets"]}
    assert removed == {"uploads": [old["uploads"]["id"]], "db": [old["db"]["id"]]}
    assert snapshot not in restic_snapshot_ids(tmp_path) and not copy.exists()
    listed = {
        b["id"]: b["status"] for b in env.cli("backup", "list", "demo", "--json").json()["backups"]
    }
    assert listed[old["uploads"]["id"]] == "pruned" and listed[old["db"]["id"]] == "pruned"
    report = Path(data["report"]["markdown"])
    assert report.parent == tmp_path / ".claude" / "context" / "deployment"
    assert "Retention (操作 retention)" in report.read_text()
    # One report per backup run, the forget's, the deployment's: all checked at teardown.
    assert len(list(report.parent.glob("*.md"))) == 4

    assert env.cli("backup", "forget", "nosuch").code == 2
    assert env.cli("backup", "forget", "demo", "--target", "nope").code == 2
