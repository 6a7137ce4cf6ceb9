"""An agent operates zerodown through MCP: the official client spawns ``zerodown mcp`` over stdio.

The service is brought up with the CLI; the agent lists the tools, deploys v2 (blue-green, under
a light bounded load so the judge has requests to analyse; the latency limits are loose, as
this test is about the interface, not the judge), reads the status, is refused a rollback
without ``confirm``, rolls back with it and sees the serving revision go back to 1.
"""

from __future__ import annotations

import sys
import threading
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
"""


async def _call(session: ClientSession, tool: str, **arguments: Any) -> tuple[bool, Any]:
    result = await session.call_tool(tool, arguments, read_timeout_seconds=180)
    return result.is_error, result.structured_content


def test_an_agent_deploys_reads_status_and_rolls_back_over_mcp(
    controller: Controller, tmp_path: Path
) -> None:
    env = controller.env
    spec = env.write_spec(tmp_path, replicas=2)
    spec.write_text(spec.read_text() + STRATEGY)
    up = env.cli("up", str(spec), "--version", "v1")
    assert up.code == 0, up.stderr
    listen = env.cli("status", "demo", "--json").json()["listen"]

    stop = threading.Event()
    load = threading.Thread(
        target=run_load,
        args=(f"http://{listen}/",),
        kwargs={"rps": 40, "duration": 90, "concurrency": 2, "stop": stop},
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
            load.start()
            try:
                seen["deploy"] = await _call(
                    session, "deploy", spec=str(spec), version="v2", timeout=120
                )
            finally:
                stop.set()
            seen["status"] = await _call(session, "status", service="demo")
            seen["unconfirmed"] = await _call(session, "rollback", service="demo")
            seen["bad"] = await _call(session, "history", service="demo", limit="all")
            seen["rollback"] = await _call(session, "rollback", service="demo", confirm=True)
            seen["after"] = await _call(session, "status", service="demo")
        return seen

    seen = anyio.run(agent)
    load.join(timeout=30)

    tools = seen["tools"]
    assert {"status", "deploy", "promote", "abort", "rollback", "history", "report"} <= set(tools)
    assert {"logs", "events", "pause", "resume"} <= set(tools)
    assert tools["rollback"].input_schema["required"] == ["service", "confirm"]
    assert tools["rollback"].annotations.destructive_hint is True
    assert all(t.description and t.input_schema["type"] == "object" for t in tools.values())

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
    assert rolled["service"]["release"]["revision"] == 1
    failed, after = seen["after"]
    assert not failed and after["service"]["release"]["revision"] == 1
    running = {i["revision"] for i in after["service"]["instances"] if i["state"] == "running"}
    assert 1 in running


def test_tool_arguments_are_checked_against_the_schema_before_anything_runs(
    tmp_path: Path,
) -> None:
    """No controller is needed to refuse bad arguments; each refusal names the argument."""
    state = StateDir(str(tmp_path / "state"))
    cases = [
        ("nosuch", {}, "name"),
        ("status", {"service": "Bad_Name"}, "service"),
        ("history", {}, "service"),
        ("history", {"service": "demo", "verbose": True}, "verbose"),
        ("deploy", {"spec": "x.yaml", "strategy": "big-bang"}, "strategy"),
        ("deploy", {"spec": "x.yaml", "timeout": -1}, "timeout"),
        ("abort", {"service": "demo", "confirm": "yes"}, "confirm"),
        ("promote", {"service": "demo", "full": 1}, "full"),
    ]
    for tool, arguments, field in cases:
        result, failed = call_tool(state, tool, arguments)
        assert failed, (tool, arguments)
        assert result["exit_code"] == 2 and result["error"]["field"] == field, result
    result, failed = call_tool(state, "status", {})
    assert failed and result["error"]["code"] == "controller_unavailable"
    assert result["exit_code"] == 1 and result["retryable"] is True
    assert {tool.name for tool in TOOLS if tool.destructive} == {"abort", "rollback"}
