"""An agent operates zerodown through MCP: the official client spawns ``zerodown mcp`` over stdio.

The service is brought up with the CLI; the agent lists the tools, is refused a deploy without
``confirm``, deploys v2 (blue-green, under a light bounded load so the judge has requests to
analyse; the latency limits are loose, as this test is about the interface, not the judge),
reads the status, is refused a rollback without ``confirm``, rolls back with it and sees the
serving revision go back to 1. Then it deploys a v3 that answers half its requests with 500:
the judge rolls it back, and the tool error carries the judge's reason and the report's path.
The agent reads the monitor's figures and alerts, finds the incident the rollback opened,
writes its postmortem, and is refused closing it; it mutes and unmutes an alert, backs up the
service's SQLite database, lists, verifies and restores it, asks what the retention rules
would forget, and is refused a restore without ``confirm`` and one over the live file without
``force``.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client

from tests.fixtures.zerodown import Controller
from zerodown.core.state import StateDir
from zerodown.mcp import TOOLS, call_tool
from zerodown.ops.load import run_load

STRATEGY = """\
strategy:
  blueGreen: {autoPromote: true, scaleDownDelaySeconds: 120}
analysis:
  interval: 300ms
  minRequests: 30
  maxWait: 20s
  maxLatencyRatio: 10
  minLatencyIncrease: 1s
monitor:
  interval: 1s
"""
NEW_TOOLS = {
    "metrics",
    "alerts",
    "silences",
    "silence_add",
    "silence_expire",
    "incidents",
    "incident_update",
    "postmortem",
    "backup_list",
    "backup_run",
    "backup_verify",
    "backup_restore",
    "backup_forget",
}


def _backups_section(folder: Path) -> str:
    return (
        "backups:\n"
        f"  repository: {folder / 'backups'}\n"
        "  targets:\n"
        f"    - {{name: db, kind: sqlite, path: {folder / 'app.db'}}}\n"
    )


async def _call(session: ClientSession, tool: str, **arguments: Any) -> tuple[bool, Any]:
    result = await session.call_tool(tool, arguments, read_timeout_seconds=180)
    return result.is_error, result.structured_content


def test_an_agent_deploys_reads_status_and_rolls_back_over_mcp(
    controller: Controller, tmp_path: Path
) -> None:
    env = controller.env
    with sqlite3.connect(tmp_path / "app.db") as db:
        db.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, text TEXT)")
        db.execute("INSERT INTO note (text) VALUES ('kept')")
    db.close()
    spec = env.write_spec(tmp_path, replicas=2)
    spec.write_text(spec.read_text() + STRATEGY + _backups_section(tmp_path))
    up = env.cli("up", str(spec), "--version", "v1")
    assert up.code == 0, up.stderr
    listen = env.cli("status", "demo", "--json").json()["listen"]
    # v3: the same service, half of whose answers are 500s.
    (tmp_path / "v3").mkdir()
    bad_spec = env.write_spec(
        tmp_path / "v3",
        replicas=2,
        listen_port=int(listen.rsplit(":", 1)[1]),
        extra_env={"ERROR_RATE": "0.5"},
    )
    bad_spec.write_text(bad_spec.read_text() + STRATEGY + _backups_section(tmp_path))

    stop = threading.Event()
    load = threading.Thread(
        target=run_load,
        args=(f"http://{listen}/",),
        kwargs={"rps": 40, "duration": 240, "concurrency": 2, "stop": stop},
        daemon=True,
    )
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "zerodown", "mcp"], env=env.env
    )

    async def agent() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with (
            stdio_client(params) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = {t.name: t for t in (await session.list_tools()).tools}
            seen["tools"] = tools
            seen["deploy_unconfirmed"] = await _call(session, "deploy", spec=str(spec))
            load.start()
            try:
                seen["deploy"] = await _call(
                    session, "deploy", spec=str(spec), version="v2", timeout=120, confirm=True
                )
                seen["status"] = await _call(session, "status", service="demo")
                seen["unconfirmed"] = await _call(session, "rollback", service="demo")
                seen["bad"] = await _call(session, "history", service="demo", limit="all")
                seen["rollback"] = await _call(session, "rollback", service="demo", confirm=True)
                seen["after"] = await _call(session, "status", service="demo")
                seen["bad_deploy"] = await _call(
                    session, "deploy", spec=str(bad_spec), version="v3", timeout=120, confirm=True
                )
                # The monitor samples every second: wait until it has counted v1's requests.
                deadline = time.monotonic() + 60
                while True:
                    seen["metrics"] = await _call(
                        session, "metrics", service="demo", since_seconds=600, points=3
                    )
                    window = seen["metrics"][1]["versions"].get("v1", {}).get("window", {})
                    if window.get("requests", 0) > 0 or time.monotonic() > deadline:
                        break
                    await anyio.sleep(0.5)
            finally:
                stop.set()
            seen["alerts"] = await _call(session, "alerts", include_resolved=True)
            seen["incidents"] = await _call(session, "incidents", service="demo")
            number = seen["incidents"][1]["incidents"][0]["id"]
            seen["incident"] = await _call(session, "incidents", id=number)
            seen["resolve_unconfirmed"] = await _call(
                session, "incident_update", id=number, action="resolve"
            )
            seen["late_ack"] = await _call(session, "incident_update", id=number, action="ack")
            seen["postmortem"] = await _call(session, "postmortem", id=number)
            seen["review_unconfirmed"] = await _call(
                session, "postmortem", id=number, reviewed=True
            )
            seen["review_incomplete"] = await _call(
                session, "postmortem", id=number, reviewed=True, confirm=True
            )
            seen["silence"] = await _call(
                session,
                "silence_add",
                matchers=["service=demo", 'alertname=~"Zerodown.*"'],
                comment="planned maintenance",
                duration_seconds=600,
            )
            seen["silences"] = await _call(session, "silences")
            seen["unsilenced"] = await _call(session, "silence_expire", id=seen["silence"][1]["id"])
            seen["backup"] = await _call(session, "backup_run", service="demo", target="db")
            backup_id = seen["backup"][1]["ids"][0]
            seen["backups"] = await _call(session, "backup_list", service="demo")
            seen["verify"] = await _call(session, "backup_verify", service="demo", id=backup_id)
            seen["restore_unconfirmed"] = await _call(
                session, "backup_restore", service="demo", id=backup_id
            )
            seen["restore"] = await _call(
                session, "backup_restore", service="demo", id=backup_id, confirm=True
            )
            seen["forget_plan"] = await _call(
                session, "backup_forget", service="demo", dry_run=True
            )
            seen["restore_over_live"] = await _call(
                session,
                "backup_restore",
                service="demo",
                id=backup_id,
                destination=str(tmp_path / "app.db"),
                confirm=True,
            )
        return seen

    seen = anyio.run(agent)
    load.join(timeout=30)

    # Every tool has a description and a closed JSON schema; destructive ones say so.
    tools = seen["tools"]
    assert {"status", "deploy", "promote", "abort", "rollback", "history", "report"} <= set(tools)
    assert {"logs", "events", "pause", "resume", "dr_plan", "dr_drill"} <= set(tools)
    assert set(tools) >= NEW_TOOLS
    for tool in tools.values():
        schema = tool.input_schema
        assert tool.description and schema["type"] == "object", tool.name
        assert schema["additionalProperties"] is False, tool.name
        assert set(schema["required"]) <= set(schema["properties"]), tool.name
    assert tools["rollback"].input_schema["required"] == ["service", "confirm"]
    assert tools["deploy"].input_schema["required"] == ["spec", "confirm"]
    assert tools["backup_restore"].input_schema["required"] == ["service", "id", "confirm"]
    assert tools["silence_add"].input_schema["properties"]["matchers"]["type"] == "array"
    assert tools["incident_update"].input_schema["properties"]["action"]["enum"] == [
        "ack",
        "resolve",
    ]
    destructive = {name for name, t in tools.items() if t.annotations.destructive_hint}
    assert destructive == {"deploy", "abort", "rollback", "backup_restore", "backup_forget"}
    assert tools["metrics"].annotations.read_only_hint is True

    failed, refused = seen["deploy_unconfirmed"]
    assert failed and refused["exit_code"] == 2 and refused["error"]["field"] == "confirm"
    assert "nothing was done" in refused["error"]["message"]

    failed, deployed = seen["deploy"]
    assert not failed, deployed
    assert deployed["ok"] and deployed["finished"] and deployed["status"] == "succeeded"
    assert deployed["revision"] == 2 and deployed["version"] == "v2"
    assert deployed["strategy"] == "blue-green" and deployed["exit_code"] == 0
    assert deployed["verdict"]["outcome"] == "pass"
    assert deployed["timings"]["switch_s"] < 1.0
    assert Path(deployed["report"]["markdown"]).is_file()

    failed, status = seen["status"]
    assert not failed and status["service"]["release"]["revision"] == 2

    failed, refused = seen["unconfirmed"]
    assert failed and refused["exit_code"] == 2
    assert refused["error"]["code"] == "bad_input" and refused["error"]["field"] == "confirm"

    failed, bad = seen["bad"]
    assert failed and bad["error"]["field"] == "limit"

    failed, rolled = seen["rollback"]
    assert not failed, rolled
    assert rolled["service"]["release"]["revision"] == 1 and rolled["next"]
    failed, after = seen["after"]
    assert not failed and after["service"]["release"]["revision"] == 1
    running = {i["revision"] for i in after["service"]["instances"] if i["state"] == "running"}
    assert 1 in running

    # The judge rolled v3 back: a tool error that says why and where the report is.
    failed, rolled_back = seen["bad_deploy"]
    assert failed, rolled_back
    assert rolled_back["exit_code"] == 1 and rolled_back["error"]["code"] == "rolled_back"
    assert rolled_back["status"] == "rolled_back" and rolled_back["version"] == "v3"
    assert "error rate" in rolled_back["reason"]
    assert rolled_back["verdict"]["outcome"] == "fail"
    assert Path(rolled_back["report"]["markdown"]).is_file()

    failed, metrics = seen["metrics"]
    assert not failed, metrics
    assert metrics["service"] == "demo" and metrics["instances"]
    v1 = metrics["versions"]["v1"]
    assert v1["window"]["requests"] > 0, metrics
    assert len(v1["points"]) <= 3 and v1["points_total"] >= len(v1["points"])

    failed, alerts = seen["alerts"]
    assert not failed, alerts
    assert isinstance(alerts["alerts"], list) and alerts["errors"] == []
    assert alerts["firing"] == sum(1 for a in alerts["alerts"] if a["state"] == "firing")

    failed, listed = seen["incidents"]
    assert not failed, listed
    incident = listed["incidents"][0]
    assert incident["source"] == "rollback:3" and incident["stage"] == "recovered"
    assert "postmortem" in incident["next"]
    assert listed["stats"]["incidents"] == 1
    failed, shown = seen["incident"]
    assert not failed and shown["incident"]["id"] == incident["id"]
    assert "error rate" in shown["incident"]["stages"][0]["note"]

    failed, refused = seen["resolve_unconfirmed"]
    assert failed and refused["error"]["field"] == "confirm"
    failed, late = seen["late_ack"]
    assert failed and late["exit_code"] == 2 and late["error"]["code"] == "bad_input"

    failed, draft = seen["postmortem"]
    assert not failed, draft
    assert Path(draft["path"]).is_file() and draft["to_complete"] > 0
    assert "[To complete]" in draft["next"] and "markdown" not in draft
    failed, refused = seen["review_unconfirmed"]
    assert failed and refused["error"]["field"] == "confirm"
    failed, incomplete = seen["review_incomplete"]
    assert failed and incomplete["exit_code"] == 3, incomplete
    assert "[To complete]" in incomplete["error"]["message"]

    failed, silence = seen["silence"]
    assert not failed, silence
    assert silence["state"] == "active" and silence["silence"]["comment"] == "planned maintenance"
    failed, silences = seen["silences"]
    assert not failed and [s["id"] for s in silences["silences"]] == [silence["id"]]
    failed, unsilenced = seen["unsilenced"]
    assert not failed and unsilenced["state"] == "expired"

    failed, backup = seen["backup"]
    assert not failed, backup
    taken = backup["backups"][0]
    assert taken["status"] == "succeeded" and taken["kind"] == "sqlite"
    assert taken["release_revision"] == 1 and taken["artifacts"][0]["sha256"]
    failed, catalogue = seen["backups"]
    assert not failed and [b["id"] for b in catalogue["backups"]] == backup["ids"]
    assert catalogue["targets"][0]["target"] == "db"
    assert backup["verifications"][0]["status"] == "ok"
    assert Path(backup["report"]["markdown"]).is_file()
    failed, verified = seen["verify"]
    assert not failed and verified["ok"] and verified["verification"]["status"] == "ok"

    failed, refused = seen["restore_unconfirmed"]
    assert failed and refused["error"]["field"] == "confirm"
    failed, restored = seen["restore"]
    assert not failed, restored
    assert restored["matches"] and not restored["replaced_live"]
    copy = Path(restored["destination"])
    assert copy == tmp_path / f"app.restored-{backup['ids'][0]}.db"
    with sqlite3.connect(copy) as db:
        assert [r[0] for r in db.execute("SELECT text FROM note")] == ["kept"]
    db.close()
    assert Path(restored["report"]["markdown"]).is_file()
    failed, plan = seen["forget_plan"]
    assert not failed and plan["dry_run"] is True and plan["targets"][0]["target"] == "db"
    assert "without dry_run" in plan["next"]
    failed, over_live = seen["restore_over_live"]
    assert failed and over_live["exit_code"] == 3 and "force" in over_live["error"]["message"]


def test_tool_arguments_are_checked_against_the_schema_before_anything_runs(
    tmp_path: Path,
) -> None:
    """No controller is needed to refuse bad arguments; each refusal names the argument, and a
    call that needs confirmation does nothing without it."""
    state = StateDir(str(tmp_path / "state"))
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("nosuch", {}, "name"),
        ("status", {"service": "Bad_Name"}, "service"),
        ("history", {}, "service"),
        ("history", {"service": "demo", "verbose": True}, "verbose"),
        ("deploy", {"spec": "x.yaml", "strategy": "big-bang", "confirm": True}, "strategy"),
        ("deploy", {"spec": "x.yaml", "timeout": -1, "confirm": True}, "timeout"),
        ("deploy", {"spec": "x.yaml"}, "confirm"),
        ("abort", {"service": "demo", "confirm": "yes"}, "confirm"),
        ("abort", {"service": "demo", "confirm": False}, "confirm"),
        ("promote", {"service": "demo", "full": 1}, "full"),
        ("promote", {"service": "demo", "full": True}, "confirm"),
        ("rollback", {"service": "demo", "with_data": True}, "confirm"),
        ("silence_add", {"matchers": [], "comment": "x"}, "matchers"),
        ("silence_add", {"matchers": ["service=web", ""], "comment": "x"}, "matchers[1]"),
        ("silence_add", {"matchers": "service=web", "comment": "x"}, "matchers"),
        ("silence_add", {"matchers": ["service=web"]}, "comment"),
        (
            "silence_add",
            {"matchers": ["a=b"], "comment": "x", "duration_seconds": 0},
            "duration_seconds",
        ),
        ("incidents", {"id": 0}, "id"),
        ("incident_update", {"id": 1, "action": "close"}, "action"),
        ("incident_update", {"id": 1, "action": "resolve"}, "confirm"),
        ("postmortem", {"id": 1, "reviewed": True}, "confirm"),
        ("backup_run", {"service": "demo", "target": "Bad Target"}, "target"),
        ("backup_verify", {"service": "demo"}, "id"),
        ("backup_restore", {"service": "demo", "id": 3}, "confirm"),
        ("backup_restore", {"service": "demo", "id": 3, "force": True}, "confirm"),
        ("backup_forget", {"service": "demo"}, "confirm"),
        ("backup_forget", {"service": "demo", "dry_run": False}, "confirm"),
        ("metrics", {"service": "demo", "points": -1}, "points"),
    ]
    for tool, arguments, field in cases:
        result, failed = call_tool(state, tool, arguments)
        assert failed, (tool, arguments)
        assert result["exit_code"] == 2 and result["error"]["field"] == field, result
    # The refusal says what the call would have done.
    result, _ = call_tool(state, "backup_restore", {"service": "demo", "id": 3, "force": True})
    assert "REPLACES ANY DATA" in result["error"]["message"]
    result, _ = call_tool(state, "rollback", {"service": "demo", "with_data": True})
    assert "OVER THE LIVE DATA" in result["error"]["message"]
    # Valid arguments get as far as the controller, which is not running.
    reachable: list[tuple[str, dict[str, Any]]] = [
        ("status", {}),
        ("incident_update", {"id": 1, "action": "ack"}),
        ("postmortem", {"id": 1}),
        ("backup_restore", {"service": "demo", "id": 3, "confirm": True}),
        ("backup_forget", {"service": "demo", "dry_run": True}),
    ]
    for tool, arguments in reachable:
        result, failed = call_tool(state, tool, arguments)
        assert failed and result["error"]["code"] == "controller_unavailable", (tool, result)
        assert result["exit_code"] == 1 and result["retryable"] is True
    assert {tool.name for tool in TOOLS if tool.destructive} == {
        "deploy",
        "abort",
        "rollback",
        "backup_restore",
        "backup_forget",
    }
    assert all(tool.confirm_when is not None for tool in TOOLS if tool.destructive)
