"""``zerodown mcp``: an MCP server over stdio, so an agent can operate zerodown through tools.

It is a client of a running controller's HTTP API (``ControllerClient``), exactly like the CLI:
it never opens the store or drives the engine itself. Each tool has a JSON schema whose
descriptions say what to pass and what comes back; results are JSON (``structured_content``
and the same JSON as text) that an agent can branch on.

Errors come back as tool errors (``is_error``) carrying the stable ``code`` of the error tree
and the CLI's exit code with its meaning (0 ok, 1 failed or rolled back, 2 bad input, 3 refused
by lock, window or preflight). A finished rollout that did not succeed is a tool error too, with
the full result: status, reason, the judge's last verdict and the report's path; so is a
corrupted backup, a failed check after a backup, a failed retention and a failed DR drill, each
with the finding.

A tool that changes which release serves traffic, overwrites or deletes data, or closes an
incident does nothing unless called with ``confirm: true`` (``ToolDef.confirm_when`` says when,
and the refusal says what the call would have done): ``deploy``, ``abort``, ``rollback``,
``backup_restore`` always; ``promote`` with ``full``, ``backup_forget`` unless ``dry_run``,
``incident_update`` with ``resolve`` and ``postmortem`` with ``reviewed``. Taking a backup,
muting alerts for a bounded time (with a comment) and a DR drill (which never touches the live
service) need no confirmation.
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
from zerodown.core.errors import InputError, RefusedError, TemporaryError, ZerodownError
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
INCIDENT_ID = {
    "type": "integer",
    "minimum": 1,
    "maximum": 2**53 - 1,
    "description": "Incident id: the number of INC-<id> (see the `incidents` tool).",
}
BACKUP_ID = {
    "type": "integer",
    "minimum": 1,
    "maximum": 2**53 - 1,
    "description": "Backup id (see `backup_list`).",
}
TARGET = {
    "type": "string",
    "pattern": "^[a-z][a-z0-9-]{0,39}$",
    "description": "A backup target's name, as in the spec's `backups.targets` (see "
    "`backup_list`).",
}
_LONG_CALL = 6 * 3600.0  # a backup, restore or DR drill runs inside the controller's answer
_MAX_SILENCE_S = 366 * 86400


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
    confirm_when: Callable[[Args], str | None] | None = None
    """What a call with these arguments would do when it needs ``confirm: true``, else None."""

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


def _confirm(what: str) -> dict[str, Any]:
    return {"type": "boolean", "description": f"Must be true: {what}. Without it nothing happens."}


def _always(consequence: str) -> Callable[[Args], str | None]:
    return lambda args: consequence


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
    failure: Result = {}
    if finished and not ok:
        failure["error"] = {
            "code": "rolled_back" if status == "rolled_back" else "operation_failed",
            "message": f"revision {detail['revision']} {status}: {detail['reason']}",
        }
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
        **failure,
    }


_AFTER_CONTROL = {
    "promote": "follow the rollout with status (release.status, weights) or events",
    "pause": "the rollout holds: promote, resume, or abort (confirm) it",
    "resume": "follow the rollout with status or events",
    "abort": "the stable release serves again; a report is written (see events: report.written)",
    "rollback": "check status: release.revision and version say what serves; a rollback that "
    "rolls a spec out again is a new release to follow until it succeeds",
}


def _control(
    action: str, *, timeout: float = 30.0, **fields: str
) -> Callable[[StateDir, Args], Result]:
    def run(state: StateDir, args: Args) -> Result:
        body = {key: args[arg] for key, arg in fields.items() if arg in args}
        name = args["service"]
        with _client(state, timeout=timeout) as client:
            result = client.post(f"/v1/services/{name}/{action}", {"who": _who(), **body})
            service = client.get(f"/v1/services/{name}")
        return {
            "ok": True,
            "message": result["message"],
            "service": service,
            "next": _AFTER_CONTROL[action],
        }

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


def _dr_plan(state: StateDir, args: Args) -> Result:
    with _client(state) as client:
        return client.post(f"/v1/services/{args['service']}/dr/plan", {"path": None})


def _dr_drill(state: StateDir, args: Args) -> Result:
    with _client(state, timeout=_LONG_CALL) as client:
        result = client.post(f"/v1/services/{args['service']}/dr/drill")
    if result["status"] == "passed":
        return {"ok": True, **result}
    return {
        "ok": False,
        **result,
        "error": {"code": "drill_failed", "message": f"the DR drill failed: {result['reason']}"},
        "next": "read reason, targets and smoke; the report (report.markdown) has the timeline",
    }


# --- the monitor --------------------------------------------------------------------------------
def _metrics(state: StateDir, args: Args) -> Result:
    until = time.time()
    since = until - float(args.get("since_seconds", 3600))
    keep = int(args.get("points", 10))
    with _client(state) as client:
        data = client.get(
            f"/v1/services/{args['service']}/metrics",
            since=since,
            until=until,
            step=args.get("step_seconds"),
        )
    for figures in data["versions"].values():
        points = figures["points"]
        figures["points_total"] = len(points)
        figures["points"] = points[-keep:] if keep else []
    return data


def _alerts(state: StateDir, args: Args) -> Result:
    with _client(state) as client:
        data = client.get("/v1/alerts", resolved="true" if args.get("include_resolved") else None)
    alerts = data["alerts"]
    if args.get("service"):
        alerts = [a for a in alerts if a["scope"] == args["service"]]
    firing = [a for a in alerts if a["state"] == "firing"]
    loud = [a for a in firing if not a.get("silenced_by")]
    if loud:
        hint = (
            "firing alerts need attention: read their annotations, then metrics, logs "
            "(level: error, patterns: true) and incidents of the services concerned"
        )
    elif data["errors"]:
        hint = "some rules fail to evaluate: see errors"
    else:
        hint = "nothing firing unsilenced"
    return {
        "firing": len(firing),
        "firing_unsilenced": len(loud),
        "pending": sum(1 for a in alerts if a["state"] == "pending"),
        "alerts": alerts,
        "errors": data["errors"],
        "groups": data["groups"],
        "next": hint,
    }


def _silences(state: StateDir, args: Args) -> Result:
    with _client(state) as client:
        items = client.get("/v1/silences")["silences"]
    if not args.get("include_expired"):
        items = [s for s in items if s["status"]["state"] != "expired"]
    return {"silences": items}


def _silence_add(state: StateDir, args: Args) -> Result:
    with _client(state) as client:
        silence = client.post(
            "/v1/silences",
            {
                "matchers": args["matchers"],
                "comment": args["comment"],
                "duration": float(args.get("duration_seconds", 3600)),
                "created_by": _who(),
            },
        )["silence"]
    return {
        "ok": True,
        "id": silence["id"],
        "state": silence["status"]["state"],
        "ends_at": silence["endsAt"],
        "silence": silence,
        "next": f"silence_expire with id {silence['id']} ends it early",
    }


def _silence_expire(state: StateDir, args: Args) -> Result:
    with _client(state) as client:
        silence = client.post(f"/v1/silences/{args['id']}/expire", {})["silence"]
    return {
        "ok": True,
        "id": silence["id"],
        "state": silence["status"]["state"],
        "silence": silence,
    }


# --- incidents ----------------------------------------------------------------------------------
def _incident_next(incident: dict[str, Any]) -> str:
    """What to do next with an incident, from its stage."""
    number = incident["id"]
    stage = incident["stage"]
    if stage == "detected":
        return f"assess scope and severity, then incident_update id {number} action ack"
    if stage in ("assessed", "mitigated"):
        return f"when the service works again: incident_update id {number} action resolve (confirm)"
    if stage == "recovered" and not incident.get("postmortem_path"):
        return f"write the postmortem draft: postmortem id {number}"
    if stage == "recovered":
        return (
            f"a person completes the [To complete] parts of {incident['postmortem_path']}; "
            f"then postmortem id {number} reviewed (confirm)"
        )
    return "closed: reviewed"


def _incidents(state: StateDir, args: Args) -> Result:
    with _client(state) as client:
        if "id" in args:
            incident = client.get(f"/v1/incidents/{args['id']}")
            return {"incident": incident, "next": _incident_next(incident)}
        listed = client.get(
            "/v1/incidents",
            service=args.get("service"),
            open="true" if args.get("open_only") else None,
            limit=args.get("limit", 20),
        )["incidents"]
        stats = client.get("/v1/incidents/stats", service=args.get("service"))
    return {
        "incidents": [{**item, "next": _incident_next(item)} for item in listed],
        "stats": stats,
    }


def _incident_update(state: StateDir, args: Args) -> Result:
    with _client(state) as client:
        incident = client.post(
            f"/v1/incidents/{args['id']}/{args['action']}",
            {"who": _who(), "note": args.get("note")},
        )
    return {
        "ok": True,
        "id": incident["id"],
        "stage": incident["stage"],
        "incident": incident,
        "next": _incident_next(incident),
    }


def _postmortem(state: StateDir, args: Args) -> Result:
    body = {"who": _who(), "reviewed": bool(args.get("reviewed")), "force": bool(args.get("force"))}
    with _client(state, timeout=120) as client:
        written = client.post(f"/v1/incidents/{args['id']}/postmortem", body)
    incident = written["incident"]
    result: Result = {
        "ok": True,
        "id": incident["id"],
        "stage": incident["stage"],
        "path": written["path"],
        "incident": incident,
    }
    if not args.get("reviewed"):
        markdown = str(written["markdown"])
        result["to_complete"] = markdown.count("[To complete]")
        if args.get("include_markdown"):
            result["markdown"] = markdown
    result["next"] = _incident_next(incident)
    return result


# --- backups ------------------------------------------------------------------------------------
def _backup_list(state: StateDir, args: Args) -> Result:
    name = args["service"]
    with _client(state) as client:
        backups = client.get(
            f"/v1/services/{name}/backups",
            target=args.get("target"),
            limit=args.get("limit", 20),
        )["backups"]
        targets = client.get(f"/v1/services/{name}/backups/targets")["targets"]
    return {"backups": backups, "targets": targets}


def _backup_run(state: StateDir, args: Args) -> Result:
    body = {"target": args.get("target"), "verify": args.get("verify", True)}
    with _client(state, timeout=_LONG_CALL) as client:
        data = client.post(f"/v1/services/{args['service']}/backups", body)
    taken = data["backups"]
    result: Result = {
        "ok": bool(data.get("ok", True)),
        "ids": [b["id"] for b in taken],
        "backups": taken,
        "verifications": data.get("verifications", []),
        "report": data.get("report"),
    }
    if result["ok"]:
        result["next"] = "restore one with backup_restore (confirm); backup_list shows them all"
        return result
    bad = [v for v in result["verifications"] if v.get("status") != "ok"]
    result["error"] = {
        "code": "backup_check_failed",
        "message": f"a check after the backup failed ({len(bad)} backup(s) not verified ok); "
        "see verifications and the report",
    }
    result["next"] = "take the backup again (backup_run); a corrupted backup is never restored"
    return result


def _backup_verify(state: StateDir, args: Args) -> Result:
    with _client(state, timeout=_LONG_CALL) as client:
        data = client.post(f"/v1/services/{args['service']}/backups/{args['id']}/verify")
    verification = data["verification"]
    if verification["status"] == "ok":
        return {"ok": True, "status": "ok", **data}
    problems = verification["problems"] or [
        f"{a['location']}: {a['problem']}" for a in verification["artifacts"] if not a.get("ok")
    ]
    return {
        "ok": False,
        "status": verification["status"],
        **data,
        "error": {
            "code": "backup_corrupted",
            "message": f"backup {args['id']} is {verification['status']}: "
            + "; ".join(str(p) for p in problems[:3]),
        },
        "next": "this backup is never restored; take a new one (backup_run) and verify it",
    }


def _backup_restore(state: StateDir, args: Args) -> Result:
    with _client(state, timeout=_LONG_CALL) as client:
        data = client.post(
            f"/v1/services/{args['service']}/backups/{args['id']}/restore",
            {"destination": args.get("destination"), "force": bool(args.get("force"))},
        )
    restore = data["restore"]
    moved = (restore.get("details") or {}).get("previous_moved_to")
    return {
        "ok": True,
        "backup_id": data["backup_id"],
        "destination": restore["destination"],
        "replaced_live": bool(restore.get("replaced_live")),
        "previous_moved_to": moved,
        "matches": restore["matches"],
        "restore": restore,
        "report": data.get("report"),
        "next": "the restored data is at destination"
        + (f"; what it replaced is kept in {moved}" if moved else ""),
    }


def _backup_forget(state: StateDir, args: Args) -> Result:
    body = {"target": args.get("target"), "dry_run": bool(args.get("dry_run"))}
    with _client(state, timeout=_LONG_CALL) as client:
        data = client.post(f"/v1/services/{args['service']}/backups/forget", body)
    if data.get("ok", True):
        hint = (
            "nothing was removed; call again without dry_run (confirm) to apply the rules"
            if data.get("dry_run")
            else "done; backup_list shows what is left"
        )
        return {**data, "ok": True, "next": hint}
    errors = data.get("errors") or ["see the report"]
    return {
        **data,
        "error": {"code": "retention_failed", "message": f"retention failed: {errors[0]}"},
        "next": "read errors; the backups not removed stay in the catalogue",
    }


def _restore_consequence(args: Args) -> str:
    if args.get("force"):
        return (
            "restores the backup and, with force, REPLACES ANY DATA AT THE DESTINATION (the "
            "live data when the destination is the target's own path or database)"
        )
    if args.get("destination"):
        return "restores the backup to the destination (refused if something is there)"
    return "restores the backup to a new name beside the live data"


def _rollback(state: StateDir, args: Args) -> Result:
    """A rollback; with ``with_data``, only of the backups the caller confirmed by id (the
    controller refuses when the plan is no longer exactly those)."""
    if not args.get("with_data"):
        return _control("rollback", timeout=_LONG_CALL, to="to")(state, args)
    name = args["service"]
    with _client(state, timeout=_LONG_CALL) as client:
        if "backup_ids" not in args:
            plan = client.get(f"/v1/services/{name}/rollback-data", to=args.get("to"))
            listed = ", ".join(f"#{b['id']} ({b['target']})" for b in plan["backups"])
            raise RefusedError(
                f"a rollback with data to revision {plan['target_revision']} restores "
                f"backup(s) {listed or 'none'} over the live data: call again with backup_ids "
                f"{[b['id'] for b in plan['backups']]} to confirm exactly these"
            )
        body = {"who": _who(), "to": args.get("to"), "with_data": True}
        result = client.post(
            f"/v1/services/{name}/rollback", {**body, "backup_ids": args["backup_ids"]}
        )
        service = client.get(f"/v1/services/{name}")
    return {**result, "ok": True, "service": service, "next": _AFTER_CONTROL["rollback"]}


def _rollback_consequence(args: Args) -> str:
    if args.get("with_data"):
        return (
            "restores the pre-deployment backups OVER THE LIVE DATA, then changes which "
            "release serves traffic"
        )
    return "changes which release serves traffic"


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
        "pre-deployment check fails. Changes what serves traffic: needs confirm: true.",
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
                "enum": ["rolling", "blue-green", "canary", "native"],
                "description": "Override the spec's strategy.",
            },
            "timeout": {
                "type": "number",
                "minimum": 0,
                "maximum": 7200,
                "default": 600,
                "description": "Seconds to wait for the rollout to end (0: return at once).",
            },
            "confirm": _confirm("this rolls a new version out to the service's users"),
        },
        _deploy,
        required=("spec", "confirm"),
        destructive=True,
        confirm_when=_always("rolls a new version out to the service's users"),
    ),
    ToolDef(
        "promote",
        "Go on past the current pause or analysis of a rollout. `full` goes straight to 100 % "
        "and skips the remaining analyses: it needs confirm: true.",
        {
            "service": NAME,
            "full": {"type": "boolean", "default": False},
            "confirm": _confirm("with full, every user goes to the new version unjudged"),
        },
        _control("promote", full="full"),
        required=("service",),
        confirm_when=lambda args: (
            "sends all traffic to the new version and skips the remaining analyses"
            if args.get("full")
            else None
        ),
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
        confirm_when=_always("stops the rollout and changes which release serves traffic"),
    ),
    ToolDef(
        "rollback",
        "Go back to an earlier release: a weight flip when it is still warm, else its spec is "
        "rolled out again; with a rollout in progress this aborts it. Returns the message and "
        "the service's status afterwards. `with_data` first restores, over the live data, the "
        "pre-deployment backups taken while that release served. Destructive: needs "
        "confirm: true.",
        {
            "service": NAME,
            "to": {"type": "integer", "minimum": 1, "description": "Revision (default: previous)."},
            "with_data": {
                "type": "boolean",
                "default": False,
                "description": "Also restore the data: REPLACES THE LIVE DATA with the newest "
                "good pre-deployment backup of each target taken while the release rolled back "
                "to served (see backup_list), after a safety backup of each. Refused when there "
                "is none, and without backup_ids (the refusal lists them).",
            },
            "backup_ids": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": 2**53 - 1},
                "description": "With with_data: the ids of the backups to restore, as the "
                "refusal without them listed; refused when the plan changed since.",
            },
            "confirm": CONFIRM,
        },
        _rollback,
        required=("service", "confirm"),
        destructive=True,
        confirm_when=_rollback_consequence,
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
        "drill failed (a tool error with error.code drill_failed); reason says why. The live "
        "service is not touched, so no confirmation is needed.",
        {"service": NAME},
        _dr_drill,
        required=("service",),
    ),
    ToolDef(
        "metrics",
        "A service's traffic per version over a window, as the monitor sampled it: requests, "
        "request_rate (per second), error_rate (share of 5xx), availability, latency_avg_s, "
        "latency_p95_s, latency_p99_s (seconds) for the whole window (`window`) and the newest "
        "`points` steps; and each instance's health, CPU cores and memory bytes.",
        {
            "service": NAME,
            "since_seconds": {
                "type": "number",
                "minimum": 1,
                "default": 3600,
                "description": "Window: the last N seconds.",
            },
            "step_seconds": {
                "type": "number",
                "minimum": 1,
                "description": "Seconds between points (default: about 60 points per window).",
            },
            "points": {
                "type": "integer",
                "minimum": 0,
                "maximum": 10000,
                "default": 10,
                "description": "Newest points kept per version (0: only the window's figures); "
                "points_total says how many there were.",
            },
        },
        _metrics,
        required=("service",),
        read_only=True,
    ),
    ToolDef(
        "alerts",
        "Pending and firing alerts of every service and of the host (name, state, scope, labels "
        "with severity, annotations with summary, value, since when, silenced_by), rules that "
        "fail to evaluate, notification groups; counts of firing, firing_unsilenced, pending.",
        {
            "service": {**NAME, "description": "Only alerts of this service."},
            "include_resolved": {
                "type": "boolean",
                "default": False,
                "description": "Also alerts resolved in the last 15 minutes.",
            },
        },
        _alerts,
        read_only=True,
    ),
    ToolDef(
        "silences",
        "Silences in force or to come (id, matchers, startsAt, endsAt, createdBy, comment, "
        "status.state).",
        {"include_expired": {"type": "boolean", "default": False}},
        _silences,
        read_only=True,
    ),
    ToolDef(
        "silence_add",
        "Mute the alerts matching every matcher for a while (kept across restarts); the "
        "comment says why and is required. Alerts still fire and show silenced_by; only "
        "notifications stop. Returns the silence id (silence_expire ends it early).",
        {
            "matchers": {
                "type": "array",
                "minItems": 1,
                "maxItems": 20,
                "items": {"type": "string", "minLength": 1},
                "description": 'Alertmanager matchers, all of which must match: service="web", '
                'alertname=~"High.*", severity!="info".',
            },
            "comment": {"type": "string", "minLength": 1, "description": "Why they are muted."},
            "duration_seconds": {
                "type": "number",
                "minimum": 1,
                "maximum": _MAX_SILENCE_S,
                "default": 3600,
                "description": "How long, from now.",
            },
        },
        _silence_add,
        required=("matchers", "comment"),
    ),
    ToolDef(
        "silence_expire",
        "End a silence now: matching alerts notify again.",
        {"id": {"type": "string", "minLength": 1, "maxLength": 100, "description": "Silence id."}},
        _silence_expire,
        required=("id",),
    ),
    ToolDef(
        "incidents",
        "Incidents, newest first, each with a `next` step, and MTTD/MTTR statistics; or with "
        "`id` one incident: severity, stage (detected -> assessed -> mitigated -> recovered -> "
        "reviewed) with who and when, the judge's reason in details, measured impact (requests, "
        "errors, error_rate, p95_ms, exposure) and the postmortem's path.",
        {
            "id": INCIDENT_ID,
            "service": {**NAME, "description": "Only this service's incidents."},
            "open_only": {
                "type": "boolean",
                "default": False,
                "description": "Only incidents not recovered yet.",
            },
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20},
        },
        _incidents,
        read_only=True,
    ),
    ToolDef(
        "incident_update",
        "Move an incident forward (never back): `ack` once its scope and severity are "
        "assessed; `resolve` when the service works again (recovered, through mitigated). "
        "resolve needs confirm: true.",
        {
            "id": INCIDENT_ID,
            "action": {"type": "string", "enum": ["ack", "resolve"]},
            "note": {"type": "string", "description": "Kept with the stage (postmortem)."},
            "confirm": _confirm("resolve closes the incident for good"),
        },
        _incident_update,
        required=("id", "action"),
        confirm_when=lambda args: (
            "marks the incident recovered: it closes for good (stages never go back)"
            if args.get("action") == "resolve"
            else None
        ),
    ),
    ToolDef(
        "postmortem",
        "Write the postmortem draft of an incident (Markdown beside the service's reports: "
        "summary, lifecycle, measured impact, timeline from the event log, the judge's "
        "verdicts); returns its path and how many parts are marked [To complete] for a person. "
        "`reviewed: true` instead marks the incident reviewed, refused while the latest draft "
        "still has [To complete] parts unless `force`; it needs confirm: true.",
        {
            "id": INCIDENT_ID,
            "include_markdown": {"type": "boolean", "default": False},
            "reviewed": {"type": "boolean", "default": False},
            "force": {
                "type": "boolean",
                "default": False,
                "description": "With reviewed: even with parts left to complete.",
            },
            "confirm": _confirm("reviewed closes the incident's review"),
        },
        _postmortem,
        required=("id",),
        confirm_when=lambda args: (
            "marks the incident reviewed, its last stage" if args.get("reviewed") else None
        ),
    ),
    ToolDef(
        "backup_list",
        "A service's backup catalogue, newest first (id, target, kind, status, reason, times, "
        "size, artifacts with SHA-256, the release serving, last verification), and each "
        "target's schedule, next run, age limit and newest good backup.",
        {
            "service": NAME,
            "target": {**TARGET, "description": "Only this target."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20},
        },
        _backup_list,
        required=("service",),
        read_only=True,
    ),
    ToolDef(
        "backup_run",
        "Back up one target of a service now, or every target in spec order, then re-read and "
        "check each one; answers once each backup is whole and registered, with its id, size, "
        "duration and digests, the checks and the operation's report paths. A failed check is "
        "a tool error (error.code backup_check_failed).",
        {
            "service": NAME,
            "target": {**TARGET, "description": "One target (default: all)."},
            "verify": {
                "type": "boolean",
                "default": True,
                "description": "Re-read and check each new backup (as backup_verify).",
            },
        },
        _backup_run,
        required=("service",),
    ),
    ToolDef(
        "backup_verify",
        "Re-read a backup's artifacts and check their SHA-256 (and restic check --read-data "
        "for folders). A corrupted backup is a tool error (error.code backup_corrupted) with "
        "the problems; it is never restored.",
        {"service": NAME, "id": BACKUP_ID},
        _backup_verify,
        required=("service", "id"),
    ),
    ToolDef(
        "backup_restore",
        "Restore a backup after checking its digests: to a new name beside the live data by "
        "default, or to `destination`. Existing data, the live data included, is replaced "
        "only with force: true (a folder replaced this way is kept beside it). Returns the "
        "destination, bytes written, digest and whether it replaced live data. Destructive: "
        "needs confirm: true.",
        {
            "service": NAME,
            "id": BACKUP_ID,
            "destination": {
                "type": "string",
                "minLength": 1,
                "description": "An absolute path (files, sqlite) or a database name or URL "
                "(postgresql). Default: a new name beside the live data.",
            },
            "force": {
                "type": "boolean",
                "default": False,
                "description": "REPLACE existing data at the destination, the live data "
                "included. Ask a person first.",
            },
            "confirm": _confirm("this writes restored data (with force, over existing data)"),
        },
        _backup_restore,
        required=("service", "id", "confirm"),
        destructive=True,
        confirm_when=_restore_consequence,
    ),
    ToolDef(
        "backup_forget",
        "Apply the retention rules (restic's keep-last/hourly/daily/... rules) of one target or "
        "all: keep what they keep, delete the other backups. `dry_run: true` deletes nothing "
        "and lists, per backup, the rules that keep it. Deleting needs confirm: true.",
        {
            "service": NAME,
            "target": {**TARGET, "description": "One target (default: all)."},
            "dry_run": {"type": "boolean", "default": False},
            "confirm": _confirm("without dry_run, backups the rules do not keep are deleted"),
        },
        _backup_forget,
        required=("service",),
        destructive=True,
        confirm_when=lambda args: (
            None if args.get("dry_run") else "deletes the backups the retention rules do not keep"
        ),
    ),
)
_BY_NAME = {tool.name: tool for tool in TOOLS}


# --- arguments, results, errors -----------------------------------------------------------------
_KINDS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
}


def check_arguments(tool: ToolDef, args: Args) -> Args:
    """Check arguments against the tool's schema (the subset it uses), then its confirmation;
    the first problem is a ``bad_input`` naming the argument."""
    for name in args:
        if name not in tool.properties:
            known = ", ".join(sorted(tool.properties)) or "none"
            raise ToolError(name, f"unknown argument (known: {known})")
    for name in tool.required:
        if name not in args and name != "confirm":
            raise ToolError(name, "is required")
    for name, value in args.items():
        _check_value(name, tool.properties[name], value)
    consequence = tool.confirm_when(args) if tool.confirm_when is not None else None
    if consequence is not None and args.get("confirm") is not True:
        raise ToolError(
            "confirm",
            f"{tool.name} {consequence}; nothing was done. Make sure the person you act for "
            "wants this, then call it again with confirm: true",
        )
    return args


def _check_value(name: str, prop: dict[str, Any], value: Any) -> None:
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
    if "maxLength" in prop and len(value) > prop["maxLength"]:
        raise ToolError(name, f"must be at most {prop['maxLength']} characters")
    if "pattern" in prop and not re.search(prop["pattern"], value):
        raise ToolError(name, f"must match {prop['pattern']}")
    if "minItems" in prop and len(value) < prop["minItems"]:
        raise ToolError(name, f"needs at least {prop['minItems']} item(s)")
    if "maxItems" in prop and len(value) > prop["maxItems"]:
        raise ToolError(name, f"takes at most {prop['maxItems']} items")
    for index, item in enumerate(value if prop["type"] == "array" else ()):
        _check_value(f"{name}[{index}]", prop["items"], item)


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
    if result.get("ok") is False and "error" in result:
        # It ran and did not succeed: a rollout rolled back, a corrupted backup, a failed
        # drill. The finding is the whole result, with the exit code the CLI would give.
        return {**result, "exit_code": 1, "meaning": EXIT_MEANINGS[1]}, True
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
        instructions="Operate zero-downtime deployments and the services they run: status, "
        "deploy, promote, pause, resume, abort, rollback, history, report, logs, events; "
        "metrics, alerts and silences; incidents and postmortems; backups; DR plans and "
        "drills. Tools that change what serves traffic, overwrite data or close an incident "
        "need confirm: true: ask the person you act for first. Results carry ids, states, "
        "reasons, report paths and a `next` hint. A tool error carries error.code and "
        "exit_code (1 failed or rolled back, 2 bad input, 3 refused by lock/window/preflight).",
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
