"""``zerodown mcp``: an MCP server over stdio, so an agent can operate zerodown through tools.

It is a client of a running controller's HTTP API (``ControllerClient``), exactly like the CLI:
it never opens the store or drives the engine itself. Each tool has a JSON schema whose
descriptions say what to pass and what comes back; results are JSON (``structured_content``
and the same JSON as text) that an agent can branch on.

Errors come back as tool errors (``is_error``) carrying the stable ``code`` of the error tree
and the CLI's exit code with its meaning (0 ok, 1 failed or rolled back, 2 bad input, 3 refused
by lock, window or preflight). A finished rollout that did not succeed is a tool error too, with
the full result: status, reason, the judge's last verdict and the report's path. Destructive
tools (``abort``, ``rollback``) do nothing unless called with ``confirm: true``.
"""

from __future__ import annotations

import getpass
import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

from zerodown.cli.client import ControllerClient
from zerodown.core.errors import InputError, TemporaryError, ZerodownError
from zerodown.core.state import StateDir
from zerodown.spec import load_spec

__all__ = ["EXIT_MEANINGS", "TOOLS", "ToolError", "build_server", "call_tool", "serve"]

EXIT_MEANINGS = {
    0: "ok",
    1: "the operation failed or was rolled back",
    2: "bad input: fix the arguments or the spec",
    3: "refused by a lock, a deploy window or a pre-deployment check: wait, or ask a human",
}
TEMPORARY = "temporary: retry later (is the controller running? 'zerodown serve --detach')"
RUNNING = ("pending", "progressing")
NAME = {
    "type": "string",
    "pattern": "^[a-z][a-z0-9-]{0,39}$",
    "description": "Service name, as in the spec's `service:` (see the `status` tool).",
}
CONFIRM = {
    "type": "boolean",
    "description": "Must be true: this changes what serves traffic. Without it nothing happens.",
}


class ToolError(InputError):
    """A tool argument is wrong (``bad_input`` naming the argument)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "field": self.field}


Args = dict[str, Any]
Result = dict[str, Any]


@dataclass(frozen=True)
class ToolDef:
    """One tool: its schema for the agent and the function that answers it."""

    name: str
    description: str
    properties: dict[str, Any]
    run: Callable[[StateDir, Args], Result]
    required: tuple[str, ...] = ()
    read_only: bool = False
    destructive: bool = False

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": self.properties,
            "required": list(self.required),
            "additionalProperties": False,
        }

    def to_tool(self) -> types.Tool:
        return types.Tool(
            name=self.name,
            description=self.description,
            input_schema=self.schema(),
            annotations=types.ToolAnnotations(
                read_only_hint=self.read_only,
                destructive_hint=self.destructive,
                idempotent_hint=self.read_only,
            ),
        )


# --- the tools ---------------------------------------------------------------------------------
def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "agent"
    return f"{user}@{socket.gethostname()} (mcp)"


def _client(state: StateDir, *, timeout: float = 30.0) -> ControllerClient:
    return ControllerClient(state, timeout=timeout)


def _status(state: StateDir, args: Args) -> Result:
    with _client(state) as client:
        if args.get("service"):
            return {"service": client.get(f"/v1/services/{args['service']}")}
        return client.get("/v1/services")


def _history(state: StateDir, args: Args) -> Result:
    with _client(state) as client:
        return client.get(f"/v1/services/{args['service']}/releases", limit=args.get("limit", 10))


def _last_event_id(client: ControllerClient) -> int:
    events = client.get("/v1/events", after=0, limit=1_000_000)["events"]
    return int(events[-1]["id"]) if events else 0


def _deploy(state: StateDir, args: Args) -> Result:
    path = Path(args["spec"]).expanduser().resolve()
    loaded = load_spec(path)
    name = loaded.spec.service
    timeout = float(args.get("timeout", 600))
    # Pre-deployment checks run before the controller answers (a backup may take minutes).
    with _client(state, timeout=900) as client:
        after = _last_event_id(client)
        created = client.post(
            f"/v1/services/{name}/deploy",
            {
                "spec_path": str(path),
                "spec_text": loaded.text,
                "version": args.get("version"),
                "strategy": args.get("strategy"),
                "who": _who(),
            },
        )["release"]
        revision = int(created["revision"])
        deadline = time.monotonic() + timeout
        while True:
            detail = client.get(f"/v1/services/{name}/releases/{revision}")
            if detail["status"] not in RUNNING or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        finished = detail["status"] not in (*RUNNING, "paused")
        report = _report_written(client, name, revision, after, wait=10.0 if finished else 0.0)
    return _rollout_result(name, detail, report=report, finished=finished)


def _report_written(
    client: ControllerClient, service: str, revision: int, after: int, *, wait: float
) -> dict[str, Any] | None:
    """The paths of the ``report.written`` event of one release (written just after it ends)."""
    deadline = time.monotonic() + wait
    while True:
        events = client.get("/v1/events", service=service, after=after, limit=100_000)["events"]
        for event in events:
            if event["kind"] == "report.written" and event["revision"] == revision:
                return dict(event["data"])
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)


def _rollout_result(
    service: str, detail: dict[str, Any], *, report: dict[str, Any] | None, finished: bool
) -> Result:
    state = detail.get("state") or {}
    verdicts = state.get("verdicts") or []
    rollback = state.get("rollback") or {}
    verdict = (rollback.get("verdict") if rollback else None) or (
        verdicts[-1] if verdicts else None
    )
    status = detail["status"]
    ok = status == "succeeded"
    if ok:
        hint = "done: the new release serves all traffic"
    elif status == "paused":
        hint = "paused: call promote to go on, resume to analyse again, or abort (confirm)"
    elif not finished:
        hint = "still running after the timeout: follow it with status, history or events"
    else:
        hint = "the previous release serves again; read the reason and the report"
    return {
        "ok": ok,
        "finished": finished,
        "exit_code": (0 if ok else 1) if finished else None,
        "service": service,
        "revision": detail["revision"],
        "version": detail["version"],
        "strategy": detail["strategy"],
        "status": status,
        "reason": detail["reason"],
        "verdict": verdict,
        "timings": state.get("timings") or {},
        "duration_s": state.get("duration_s"),
        "report": report,
        "next": hint,
    }


def _control(action: str, **fields: str) -> Callable[[StateDir, Args], Result]:
    def run(state: StateDir, args: Args) -> Result:
        body = {key: args[arg] for key, arg in fields.items() if arg in args}
        name = args["service"]
        with _client(state) as client:
            result = client.post(f"/v1/services/{name}/{action}", {"who": _who(), **body})
            service = client.get(f"/v1/services/{name}")
        return {"ok": True, "message": result["message"], "service": service}

    return run


def _report(state: StateDir, args: Args) -> Result:
    with _client(state, timeout=120) as client:
        paths = client.post(
            f"/v1/services/{args['service']}/report",
            {"revision": args.get("revision"), "lang": args.get("lang", "zh-TW")},
        )
    result: Result = {"ok": True, **paths}
    if args.get("include_markdown"):
        try:
            result["markdown_text"] = Path(paths["markdown"]).read_text()
        except OSError as exc:  # the controller may run on another host
            result["markdown_text"] = None
            result["markdown_error"] = str(exc)
    return result


def _logs(state: StateDir, args: Args) -> Result:
    since = args.get("since_seconds")
    filters = {
        "since": max(0.0, time.time() - float(since)) if since is not None else None,
        "pattern": args.get("grep"),
        "instance": args.get("instance"),
        "level": args.get("level"),
        "version": args.get("version"),
    }
    with _client(state) as client:
        if args.get("patterns"):
            return client.get(f"/v1/services/{args['service']}/logs/patterns", **filters)
        page = client.get(
            f"/v1/services/{args['service']}/logs", tail=args.get("tail", 100) or None, **filters
        )
    return {"entries": page["entries"], "next_offset": page["next_offset"]}


def _events(state: StateDir, args: Args) -> Result:
    with _client(state) as client:
        events = client.get(
            "/v1/events",
            service=args.get("service"),
            after=args.get("after", 0),
            limit=1_000_000,
        )["events"]
    return {"events": events[-int(args.get("limit", 50)) :]}


_DRILL_TIMEOUT = 6 * 3600.0  # a drill restores every target first


def _dr_plan(state: StateDir, args: Args) -> Result:
    with _client(state) as client:
        return client.post(f"/v1/services/{args['service']}/dr/plan", {"path": None})


def _dr_drill(state: StateDir, args: Args) -> Result:
    with _client(state, timeout=_DRILL_TIMEOUT) as client:
        result = client.post(f"/v1/services/{args['service']}/dr/drill")
    return {"ok": result["status"] == "passed", **result}


TOOLS: tuple[ToolDef, ...] = (
    ToolDef(
        "status",
        "Services with their current release (revision, version, status, reason) and instances "
        "(state, health, CPU, memory). Omit `service` for all of them.",
        {"service": NAME},
        _status,
        read_only=True,
    ),
    ToolDef(
        "history",
        "Releases of a service, newest first: revision, version, strategy, status "
        "(succeeded, rolled_back, failed, superseded ...), reason, times.",
        {
            "service": NAME,
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10},
        },
        _history,
        required=("service",),
        read_only=True,
    ),
    ToolDef(
        "deploy",
        "Roll out a new version of a running service with a strategy, and wait until the "
        "rollout ends, pauses or `timeout` passes. Returns ok, finished, status, reason, the "
        "judge's last verdict, timings, the report's paths (report.markdown) and a `next` hint; "
        "exit_code is null while the rollout has not finished (paused, or timeout passed). "
        "A rollout that rolled back is a tool error (exit_code 1) with the same fields. Refused "
        "(exit_code 3) when another rollout holds the lock, a window is closed or a "
        "pre-deployment check fails.",
        {
            "spec": {
                "type": "string",
                "minLength": 1,
                "description": "Path of the new version's spec file (zerodown.yaml): absolute, "
                "or relative to the MCP server's working directory.",
            },
            "version": {"type": "string", "description": "Version label, e.g. v2 or a sha."},
            "strategy": {
                "type": "string",
                "enum": ["rolling", "blue-green", "canary"],
                "description": "Override the spec's strategy.",
            },
            "timeout": {
                "type": "number",
                "minimum": 0,
                "maximum": 7200,
                "default": 600,
                "description": "Seconds to wait for the rollout to end (0: return at once).",
            },
        },
        _deploy,
        required=("spec",),
    ),
    ToolDef(
        "promote",
        "Go on past the current pause or analysis of a rollout (`full`: straight to 100 %).",
        {"service": NAME, "full": {"type": "boolean", "default": False}},
        _control("promote", full="full"),
        required=("service",),
    ),
    ToolDef(
        "pause",
        "Hold a rollout where it is (health failures still roll back).",
        {"service": NAME},
        _control("pause"),
        required=("service",),
    ),
    ToolDef(
        "resume",
        "Continue a paused rollout (an inconclusive analysis runs again).",
        {"service": NAME},
        _control("resume"),
        required=("service",),
    ),
    ToolDef(
        "abort",
        "Stop the rollout in progress and restore the stable release. Destructive: needs "
        "confirm: true.",
        {
            "service": NAME,
            "reason": {"type": "string", "description": "Why (event log and report)."},
            "confirm": CONFIRM,
        },
        _control("abort", reason="reason"),
        required=("service", "confirm"),
        destructive=True,
    ),
    ToolDef(
        "rollback",
        "Go back to an earlier release: a weight flip when it is still warm, else its spec is "
        "rolled out again; with a rollout in progress this aborts it. Returns the message and "
        "the service's status afterwards. Destructive: needs confirm: true.",
        {
            "service": NAME,
            "to": {"type": "integer", "minimum": 1, "description": "Revision (default: previous)."},
            "confirm": CONFIRM,
        },
        _control("rollback", to="to"),
        required=("service", "confirm"),
        destructive=True,
    ),
    ToolDef(
        "report",
        "Write the Deployment Operations Report of a release (Markdown, JSON twin, SVG chart) "
        "and return the paths; `include_markdown` also returns the Markdown text.",
        {
            "service": NAME,
            "revision": {"type": "integer", "minimum": 1, "description": "Default: newest."},
            "lang": {
                "type": "string",
                "enum": ["zh-TW", "en"],
                "default": "zh-TW",
                "description": "Labels' language: zh-TW (the template's) or en.",
            },
            "include_markdown": {"type": "boolean", "default": False},
        },
        _report,
        required=("service",),
    ),
    ToolDef(
        "logs",
        "Aggregated log lines of every instance of a service, with time, instance, revision, "
        "version and level. `patterns: true` groups them into templates with counts, first and "
        "last seen and examples instead (try level: error).",
        {
            "service": NAME,
            "tail": {
                "type": "integer",
                "minimum": 0,
                "maximum": 10000,
                "default": 100,
                "description": "Last N lines (0: all).",
            },
            "since_seconds": {
                "type": "number",
                "minimum": 0,
                "description": "Only lines from the last N seconds.",
            },
            "grep": {"type": "string", "description": "Only lines matching this regex."},
            "instance": {"type": "string", "description": "Only this instance id."},
            "level": {
                "type": "string",
                "enum": ["debug", "info", "warning", "error", "critical"],
                "description": "Only lines at this level or above.",
            },
            "version": {"type": "string", "description": "Only instances of this version."},
            "patterns": {
                "type": "boolean",
                "default": False,
                "description": "Templates of the lines instead of the lines.",
            },
        },
        _logs,
        required=("service",),
        read_only=True,
    ),
    ToolDef(
        "events",
        "The event log, oldest first: what the controller did and saw (release.created, "
        "analysis.verdict, rollout.*, report.written ...). `after` returns only newer events.",
        {
            "service": NAME,
            "limit": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 50},
            "after": {"type": "integer", "minimum": 0, "description": "Only ids above this."},
        },
        _events,
        read_only=True,
    ),
    ToolDef(
        "dr_plan",
        "Write the service's disaster-recovery plan (Markdown) from its spec and the backup "
        "catalogue: RPO/RTO objectives and whether they are met, what is backed up and where, "
        "restore order with commands, verification steps, contacts, past drills. Returns the "
        "path and the Markdown.",
        {"service": NAME},
        _dr_plan,
        required=("service",),
    ),
    ToolDef(
        "dr_drill",
        "Run a disaster-recovery drill: restore the newest backups into a scratch folder, start "
        "the service on them beside the live one (which is not touched), run its smoke tests, "
        "measure RTO (seconds to a passing smoke test) and RPO (age of the restored data) "
        "against the spec's objectives, clean up and write the report. ok is false when the "
        "drill failed; reason says why.",
        {"service": NAME},
        _dr_drill,
        required=("service",),
    ),
)
_BY_NAME = {tool.name: tool for tool in TOOLS}


# --- arguments, results, errors -----------------------------------------------------------------
_KINDS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


def check_arguments(tool: ToolDef, args: Args) -> Args:
    """Check arguments against the tool's schema (the subset it uses); the first problem is a
    ``bad_input`` naming the argument."""
    for name in args:
        if name not in tool.properties:
            known = ", ".join(sorted(tool.properties)) or "none"
            raise ToolError(name, f"unknown argument (known: {known})")
    for name in tool.required:
        if name == "confirm" and args.get(name) is not True:
            raise ToolError(
                name, f"{tool.name} changes what serves traffic; call it again with confirm: true"
            )
        if name not in args:
            raise ToolError(name, "is required")
    for name, value in args.items():
        prop = tool.properties[name]
        if not _KINDS[prop["type"]](value):
            raise ToolError(name, f"must be a {prop['type']}, got {json.dumps(value)[:60]}")
        if "enum" in prop and value not in prop["enum"]:
            raise ToolError(name, f"must be one of {', '.join(prop['enum'])}")
        if "minimum" in prop and value < prop["minimum"]:
            raise ToolError(name, f"must be at least {prop['minimum']}")
        if "maximum" in prop and value > prop["maximum"]:
            raise ToolError(name, f"must be at most {prop['maximum']}")
        if "minLength" in prop and len(value) < prop["minLength"]:
            raise ToolError(name, "must not be empty")
        if "pattern" in prop and not re.search(prop["pattern"], value):
            raise ToolError(name, f"must match {prop['pattern']}")
    return args


def error_result(exc: ZerodownError, **extra: Any) -> Result:
    """The error document of a tool error: the stable code and the exit code's meaning."""
    temporary = isinstance(exc, TemporaryError)
    return {
        "ok": False,
        "exit_code": exc.exit_code,
        "meaning": TEMPORARY if temporary else EXIT_MEANINGS.get(exc.exit_code, EXIT_MEANINGS[1]),
        "retryable": temporary,
        "error": exc.to_dict(),
        **extra,
    }


def call_tool(state: StateDir, name: str, arguments: Args | None) -> tuple[Result, bool]:
    """Run one tool: its JSON result and whether it is an error (blocking; used in a thread)."""
    tool = _BY_NAME.get(name)
    if tool is None:
        exc = ToolError("name", f"no tool {name!r}; tools: {', '.join(_BY_NAME)}")
        return error_result(exc), True
    try:
        result = tool.run(state, check_arguments(tool, dict(arguments or {})))
    except ZerodownError as exc:
        return error_result(exc), True
    if result.get("finished") and not result.get("ok"):
        code = "rolled_back" if result.get("status") == "rolled_back" else "operation_failed"
        message = f"revision {result['revision']} {result['status']}: {result['reason']}"
        return {
            **result,
            "meaning": EXIT_MEANINGS[1],
            "error": {"code": code, "message": message},
        }, True
    return result, False


def build_server(state: StateDir) -> Server[Any]:
    """The MCP server (tools only) for the controller found through ``state``."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool.to_tool() for tool in TOOLS])

    async def run_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        result, failed = await anyio.to_thread.run_sync(
            call_tool, state, params.name, params.arguments
        )
        return types.CallToolResult(
            content=[types.TextContent(text=json.dumps(result, indent=1, default=str))],
            structured_content=result,
            is_error=failed,
        )

    return Server(
        "zerodown",
        instructions="Operate zero-downtime deployments: status, deploy, promote, pause, "
        "resume, abort, rollback, history, report, logs, events. Destructive tools need "
        "confirm: true. A tool error carries error.code and exit_code (1 failed or rolled "
        "back, 2 bad input, 3 refused by lock/window/preflight).",
        on_list_tools=list_tools,
        on_call_tool=run_tool,
    )


def serve(state: StateDir) -> None:
    """Serve MCP over stdin/stdout until the client closes the connection."""

    async def run() -> None:
        server = build_server(state)
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(run)
