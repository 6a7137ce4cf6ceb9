"""The OpenAPI 3.1 document of the controller's HTTP API, written by hand.

Served at ``GET /openapi.json`` without a token. It is the contract that the CLI, the MCP
server, pipelines and agents program against, so it is written out rather than derived: a
change here is a change of the contract and shows up in review. The API contract tests check
that every route of ``api/app.py`` is described here and fuzz the live controller with it.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = [
    "ERROR_CODES",
    "LOG_LEVELS",
    "MAX_COUNT",
    "MAX_ID",
    "MAX_MINED_LINES",
    "SERVICE_NAME_PATTERN",
    "openapi_document",
]

# Service names follow the spec's rule; a name outside it can never exist.
SERVICE_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
# Upper bounds of integer inputs: a count (limit, tail) and an id or byte offset.
MAX_COUNT = 1_000_000_000
MAX_ID = 2**53 - 1
MAX_MINED_LINES = 1_000_000
LOG_LEVELS = ["debug", "info", "warning", "error", "critical"]

# The stable ``code`` values of error bodies (from the error tree), with their HTTP status.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "bad_input": (400, "the request is wrong: a bad field, parameter or body (exit code 2)"),
    "invalid_spec": (400, "the spec text is invalid; `problems` lists each one (exit code 2)"),
    "not_found": (404, "the named service or release does not exist (exit code 2)"),
    "refused": (409, "valid, but refused by state or policy: deploy window, freeze (exit 3)"),
    "lock_held": (409, "another rollout holds the service's deploy lock (exit code 3)"),
    "preflight_failed": (409, "a pre-deployment check failed; nothing changed (exit code 3)"),
    "unauthorized": (401, "the bearer token is missing or wrong"),
    "forbidden": (403, "a dashboard request that changes something lacks its header or origin"),
    "temporary": (503, "may succeed later; retry (exit code 1)"),
    "operation_failed": (500, "the operation ran and failed, e.g. the store failed (exit 1)"),
    "internal": (500, "a bug in the controller; the traceback is in its log (exit code 1)"),
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, description: str) -> dict[str, Any]:
    return {"type": [kind, "null"], "description": description}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "Every error answer. Branch on `error.code`; it never changes meaning.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Stable machine-readable name: "
                        + "; ".join(f"`{c}` ({s}): {d}" for c, (s, d) in ERROR_CODES.items()),
                        "examples": sorted(ERROR_CODES),
                    },
                    "message": {"type": "string", "description": "One line for people."},
                    "field": {
                        "type": "string",
                        "description": "The request field, query or path parameter at fault.",
                    },
                    "problems": {
                        "type": "array",
                        "description": "For `invalid_spec`: every problem with its place.",
                        "items": {
                            "type": "object",
                            "properties": {
                                "file": {"type": "string"},
                                "line": {"type": ["integer", "null"]},
                                "column": {"type": ["integer", "null"]},
                                "field": {"type": "string", "description": "YAML path"},
                                "message": {"type": "string"},
                                "hint": {"type": ["string", "null"]},
                            },
                        },
                    },
                },
            }
        },
    },
    "Release": {
        "type": "object",
        "description": "One release (revision) of a service.",
        "required": ["revision", "version", "strategy", "status", "reason"],
        "properties": {
            "revision": {"type": "integer", "description": "1, 2, 3 ... per service."},
            "version": {"type": "string", "description": "The version label deployed."},
            "strategy": {
                "type": "string",
                "description": "initial, rolling, blue-green, canary or rollback.",
            },
            "status": {
                "type": "string",
                "description": "pending, progressing, paused, succeeded, failed, rolled_back, "
                "superseded or stopped. Still running while pending, progressing or paused.",
            },
            "reason": {"type": "string", "description": "Why it ended (or is paused)."},
            "spec_hash": {"type": "string"},
            "created_at": _nullable("string", "ISO 8601."),
            "finished_at": _nullable("string", "ISO 8601; null while it runs."),
        },
    },
    "ReleaseDetail": {
        "allOf": [
            _ref("Release"),
            {
                "type": "object",
                "required": ["state"],
                "properties": {
                    "state": {
                        "type": "object",
                        "additionalProperties": True,
                        "description": "The rollout state: weights, step, phase, verdicts (the "
                        "judge's, newest last), rollback {reason, verdict}, timings, prechecks, "
                        "postchecks, duration_s.",
                    }
                },
            },
        ]
    },
    "ReleaseCreated": {
        "type": "object",
        "required": ["release"],
        "properties": {"release": _ref("Release")},
    },
    "Instance": {
        "type": "object",
        "required": ["id", "revision", "state"],
        "properties": {
            "id": {"type": "string"},
            "revision": {"type": "integer"},
            "version": {"type": "string"},
            "slot": {"type": "integer"},
            "pid": {"type": ["integer", "null"]},
            "address": {"type": "string", "description": "host:port"},
            "state": {"type": "string", "description": "starting, running, draining, crashed..."},
            "health": {"type": "string"},
            "restarts": {"type": "integer"},
            "cpu_percent": {"type": ["number", "null"]},
            "memory_bytes": {"type": ["integer", "null"]},
        },
    },
    "Service": {
        "type": "object",
        "required": ["name", "desired_state", "release", "instances", "ready"],
        "properties": {
            "name": {"type": "string"},
            "desired_state": {"type": "string", "description": "running or stopped."},
            "spec_path": {"type": "string"},
            "listen": _nullable("string", "The address clients use (host:port)."),
            "replicas": {"type": ["integer", "null"]},
            "release": {
                "description": "The release being rolled out, else the one serving.",
                "anyOf": [_ref("Release"), {"type": "null"}],
            },
            "instances": {"type": "array", "items": _ref("Instance")},
            "ready": {"type": "integer", "description": "Instances running."},
        },
    },
    "Event": {
        "type": "object",
        "required": ["id", "ts", "kind", "message"],
        "properties": {
            "id": {"type": "integer", "description": "Increasing; pass as `after` to follow."},
            "service": {"type": ["string", "null"]},
            "revision": {"type": ["integer", "null"]},
            "ts": {"type": "string", "description": "ISO 8601."},
            "kind": {
                "type": "string",
                "description": "e.g. release.created, analysis.verdict, rollout.rolled_back, "
                "report.written (data.markdown is the report's path).",
            },
            "message": {"type": "string"},
            "data": {"type": "object", "additionalProperties": True},
        },
    },
    "LogEntry": {
        "type": "object",
        "required": ["ts", "instance", "line"],
        "properties": {
            "ts": {"type": "number", "description": "Epoch seconds."},
            "instance": {"type": "string"},
            "revision": {"type": "integer"},
            "version": {"type": "string"},
            "level": {
                "type": "string",
                "enum": LOG_LEVELS,
                "description": "Read from the line (JSON and logfmt level fields, ERROR/WARN "
                "prefixes, [error], Python logging); info when the line states none.",
            },
            "line": {"type": "string"},
        },
    },
    "LogPattern": {
        "type": "object",
        "required": [
            "cluster",
            "template",
            "version",
            "level",
            "count",
            "first_seen",
            "last_seen",
            "examples",
        ],
        "properties": {
            "cluster": {
                "type": "integer",
                "description": "The template's number; the same shape has the same number "
                "under every version.",
            },
            "template": {
                "type": "string",
                "description": "The lines' shape: <NUM>, <IP>, <UUID>, <HEX>, <TIME> are "
                "masked values, <*> words that vary.",
            },
            "version": {"type": "string"},
            "level": {"type": "string", "enum": LOG_LEVELS, "description": "The most severe."},
            "count": {"type": "integer", "minimum": 1},
            "first_seen": {"type": "number", "description": "Epoch seconds."},
            "last_seen": {"type": "number", "description": "Epoch seconds."},
            "examples": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        },
    },
    "ControlResult": {
        "type": "object",
        "required": ["ok", "message"],
        "properties": {
            "ok": {"type": "boolean"},
            "message": {"type": "string"},
            "safety_backups": {
                "type": "array",
                "items": {"type": "object"},
                "description": "A rollback with data: the backup of each target taken before "
                "anything was restored (reason `before rollback`).",
            },
            "restores": {
                "type": "array",
                "items": {"type": "object"},
                "description": "A rollback with data: each restore (backup_id, target, "
                "safety_backup_id and the restore report).",
            },
            "switched": {
                "type": ["string", "null"],
                "description": "A rollback with data: what the traffic flip said, null when "
                "the release was not warm (its spec is rolled out again).",
            },
        },
    },
    "ReportPaths": {
        "type": "object",
        "required": ["markdown", "json", "svg"],
        "properties": {
            "markdown": {"type": "string", "description": "Path of the Markdown report."},
            "json": {"type": "string", "description": "Its JSON twin."},
            "svg": {"type": "string", "description": "Its chart."},
        },
    },
    "SpecBody": {
        "type": "object",
        "required": ["spec_text", "spec_path"],
        "properties": {
            "spec_text": {"type": "string", "description": "The spec file's YAML text."},
            "spec_path": {
                "type": "string",
                "description": "Where the spec lives (for messages and the report folder).",
            },
            "version": _nullable("string", "Version label (default: the spec's, else a hash)."),
        },
    },
    "DeployBody": {
        "allOf": [
            _ref("SpecBody"),
            {
                "type": "object",
                "properties": {
                    "strategy": {
                        "type": ["string", "null"],
                        "enum": ["rolling", "blue-green", "canary", "native", None],
                        "description": "Override the spec's strategy.",
                    },
                    "who": _nullable("string", "Who deploys (event log, lock owner)."),
                    "force": {
                        "type": "boolean",
                        "description": "Deploy outside a window or past failed prechecks.",
                    },
                },
            },
        ]
    },
}

_WHO = {"who": _nullable("string", "Who asks (goes to the event log).")}

_CONTROL_BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "promote": (
        "Go on past the current pause or analysis of a rollout.",
        {"full": {"type": "boolean", "description": "Skip every remaining step: go to 100 %."}},
    ),
    "pause": ("Hold a rollout where it is (health failures still roll back).", {}),
    "resume": ("Continue a paused rollout (an inconclusive analysis runs again).", {}),
    "abort": (
        "Stop the rollout in progress and restore the stable release.",
        {"reason": _nullable("string", "Why (goes to the event log and the report).")},
    ),
    "rollback": (
        "Back to an earlier release: instant when it is still warm, else rolled out again. "
        "With a rollout in progress this aborts it.",
        {
            "to": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": MAX_ID,
                "description": "Revision to go back to (default: the previous one).",
            },
            "with_data": {
                "type": "boolean",
                "description": "Also restore, over the live data, the backups taken while "
                "that release served (see getRollbackData); the client confirms first. A "
                "safety backup of each target is taken first, then traffic flips, then the "
                "backups are restored; the answer adds `safety_backups`, `restores` and "
                "`switched`.",
            },
            "backup_ids": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                "description": "With `with_data` (required then): the ids of the backups the "
                "client confirmed (getRollbackData's `backups`). 409 refused, nothing done, "
                "when the backups to restore are no longer exactly these.",
            },
        },
    ),
}


def _name_param() -> dict[str, Any]:
    return {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "Service name.",
        "schema": {"type": "string", "pattern": SERVICE_NAME_PATTERN},
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, **schema}


def _int_query(name: str, *, minimum: int, maximum: int, default: int, what: str) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": minimum, "maximum": maximum, "default": default}
    return _query(name, {"schema": schema}, what)


def _log_level_and_version() -> list[dict[str, Any]]:
    return [
        _query(
            "level",
            {"schema": {"type": "string", "enum": LOG_LEVELS}},
            "Only lines at this level or above (warn, err, fatal ... are accepted too).",
        ),
        _query(
            "version",
            {"schema": {"type": "string", "minLength": 1}},
            "Only lines of instances of this version.",
        ),
    ]


def _operation(
    operation_id: str,
    summary: str,
    *,
    ok: tuple[str, dict[str, Any], str],
    errors: tuple[str, ...],
    body: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    tag: str = "services",
) -> dict[str, Any]:
    status, schema, description = ok
    responses: dict[str, Any] = {status: _json(schema, description)}
    texts = {
        "400": "Bad input (`bad_input`, `invalid_spec`); `field` names what is wrong.",
        "401": "Missing or wrong bearer token (`unauthorized`).",
        "404": "No such service or release (`not_found`).",
        "409": "Refused (`refused`, `lock_held`, `preflight_failed`).",
        "503": "Temporarily unavailable; retry (`temporary`).",
    }
    for code in ("400", "401", *errors):
        responses[code] = _error(texts[code])
    op: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "parameters": parameters or [],
        "responses": responses,
    }
    if body is not None:
        op["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": body}},
        }
    return op


def _paths() -> dict[str, Any]:
    name = _name_param()
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness of the controller (no token needed).",
                "tags": ["meta"],
                "security": [],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["ok"],
                            "properties": {"ok": {"type": "boolean", "const": True}},
                        },
                        "The controller answers.",
                    )
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document (no token needed).",
                "tags": ["meta"],
                "security": [],
                "responses": {"200": _json({"type": "object"}, "The OpenAPI 3.1 document.")},
            }
        },
        "/v1/services": {
            "get": _operation(
                "listServices",
                "Every service with its current release and instances.",
                ok=(
                    "200",
                    {
                        "type": "object",
                        "required": ["services"],
                        "properties": {"services": {"type": "array", "items": _ref("Service")}},
                    },
                    "The services.",
                ),
                errors=(),
            ),
            "post": _operation(
                "upService",
                "Bring a service up for the first time (or after stop): its first release.",
                body={**_ref("SpecBody")},
                ok=("202", _ref("ReleaseCreated"), "The release is created; follow it."),
                errors=("409",),
            ),
        },
        "/v1/services/{name}": {
            "get": _operation(
                "getService",
                "One service: its current release and instances with CPU and memory.",
                parameters=[name],
                ok=("200", _ref("Service"), "The service."),
                errors=("404",),
            )
        },
        "/v1/services/{name}/stop": {
            "post": _operation(
                "stopService",
                "Drain and stop every instance of a service; its history stays.",
                parameters=[name],
                ok=("202", _ref("Service"), "Stopping; poll the service until no instance."),
                errors=("404",),
            )
        },
        "/v1/services/{name}/releases": {
            "get": _operation(
                "listReleases",
                "Releases of a service, newest first.",
                parameters=[
                    name,
                    _int_query("limit", minimum=1, maximum=MAX_COUNT, default=50, what="How many."),
                ],
                ok=(
                    "200",
                    {
                        "type": "object",
                        "required": ["releases"],
                        "properties": {"releases": {"type": "array", "items": _ref("Release")}},
                    },
                    "The releases.",
                ),
                errors=("404",),
            )
        },
        "/v1/services/{name}/releases/{revision}": {
            "get": _operation(
                "getRelease",
                "One release with its rollout state: weights, verdicts, rollback, timings.",
                parameters=[
                    name,
                    {
                        "name": "revision",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                    },
                ],
                ok=("200", _ref("ReleaseDetail"), "The release."),
                errors=("404",),
            )
        },
        "/v1/services/{name}/deploy": {
            "post": _operation(
                "deploy",
                "Roll out a new version of a running service with a strategy. Answers once "
                "the pre-deployment checks passed and the release exists; follow it with "
                "getRelease. The service named in the spec is deployed; `name` must match it.",
                parameters=[name],
                body=_ref("DeployBody"),
                ok=("202", _ref("ReleaseCreated"), "The rollout started."),
                errors=("404", "409"),
            )
        },
        "/v1/services/{name}/report": {
            "post": _operation(
                "writeReport",
                "Write the Deployment Operations Report of a release (Markdown, JSON, SVG).",
                parameters=[name],
                body={
                    "type": "object",
                    "properties": {
                        "revision": {
                            "type": ["integer", "null"],
                            "minimum": 1,
                            "maximum": MAX_ID,
                            "description": "Release (default: the newest).",
                        },
                        "lang": {
                            "type": ["string", "null"],
                            "enum": ["zh-TW", "en", None],
                            "description": "Labels' language (default zh-TW).",
                        },
                        "directory": _nullable(
                            "string", "Write here (absolute path) instead of the default folder."
                        ),
                    },
                },
                ok=("200", _ref("ReportPaths"), "Where the report was written."),
                errors=("404",),
            )
        },
        "/v1/services/{name}/logs": {
            "get": _operation(
                "getLogs",
                "Aggregated logs of every instance, oldest first.",
                parameters=[
                    name,
                    _int_query(
                        "offset",
                        minimum=0,
                        maximum=MAX_ID,
                        default=0,
                        what="Byte offset to read after (the previous page's next_offset).",
                    ),
                    _query(
                        "since",
                        {"schema": {"type": "number", "minimum": 0}},
                        "Only entries at or after this time (epoch seconds).",
                    ),
                    _query(
                        "instance",
                        {"schema": {"type": "string", "minLength": 1}},
                        "Only this instance.",
                    ),
                    _query(
                        "pattern",
                        {"schema": {"type": "string", "minLength": 1}},
                        "Only lines matching this regular expression (Python syntax).",
                    ),
                    *_log_level_and_version(),
                    _int_query(
                        "tail", minimum=0, maximum=MAX_COUNT, default=0, what="Last N (0: all)."
                    ),
                    _int_query(
                        "limit", minimum=1, maximum=MAX_COUNT, default=1000, what="Page size."
                    ),
                ],
                ok=(
                    "200",
                    {
                        "type": "object",
                        "required": ["entries", "next_offset"],
                        "properties": {
                            "entries": {"type": "array", "items": _ref("LogEntry")},
                            "next_offset": {"type": "integer"},
                        },
                    },
                    "A page of log entries.",
                ),
                errors=("404",),
            )
        },
        "/v1/services/{name}/logs/patterns": {
            "get": _operation(
                "getLogPatterns",
                "The log's recurring shapes (Drain templates), per version, most frequent "
                "first: how many lines each matched, first and last seen, up to 3 examples. "
                "The filters choose the lines mined, as for getLogs.",
                parameters=[
                    name,
                    _query(
                        "since",
                        {"schema": {"type": "number", "minimum": 0}},
                        "Only lines at or after this time (epoch seconds).",
                    ),
                    _query(
                        "instance",
                        {"schema": {"type": "string", "minLength": 1}},
                        "Only this instance.",
                    ),
                    _query(
                        "pattern",
                        {"schema": {"type": "string", "minLength": 1}},
                        "Only lines matching this regular expression (Python syntax).",
                    ),
                    *_log_level_and_version(),
                    _int_query(
                        "lines",
                        minimum=1,
                        maximum=MAX_MINED_LINES,
                        default=100_000,
                        what="Mine the newest N matching lines.",
                    ),
                    _int_query(
                        "top", minimum=1, maximum=MAX_COUNT, default=50, what="Most patterns."
                    ),
                ],
                ok=(
                    "200",
                    {
                        "type": "object",
                        "required": ["patterns", "lines", "truncated"],
                        "properties": {
                            "patterns": {"type": "array", "items": _ref("LogPattern")},
                            "lines": {"type": "integer", "description": "Lines mined."},
                            "truncated": {
                                "type": "boolean",
                                "description": "More lines matched than were mined.",
                            },
                        },
                    },
                    "The patterns.",
                ),
                errors=("404",),
            )
        },
        "/v1/events": {
            "get": _operation(
                "listEvents",
                "The event log: what the controller did and saw, oldest first.",
                tag="events",
                parameters=[
                    _query(
                        "service",
                        {"schema": {"type": "string", "pattern": SERVICE_NAME_PATTERN}},
                        "Only this service's events.",
                    ),
                    _int_query(
                        "after", minimum=0, maximum=MAX_ID, default=0, what="Only ids above this."
                    ),
                    _int_query("limit", minimum=1, maximum=MAX_COUNT, default=500, what="At most."),
                ],
                ok=(
                    "200",
                    {
                        "type": "object",
                        "required": ["events"],
                        "properties": {"events": {"type": "array", "items": _ref("Event")}},
                    },
                    "The events.",
                ),
                errors=("404",),
            )
        },
    }
    for action, (summary, fields) in _CONTROL_BODIES.items():
        paths[f"/v1/services/{{name}}/{action}"] = {
            "post": _operation(
                action,
                summary,
                parameters=[name],
                body={"type": "object", "properties": {**fields, **_WHO}},
                ok=("200", _ref("ControlResult"), "What the controller did."),
                errors=("404", "409"),
            )
        }
    return paths


def _live_paths() -> dict[str, Any]:
    """The live stream and the dashboard's sign-in codes."""
    name = _name_param()
    stream_text = (
        "Server-Sent Events: `event: event` messages carry one event each (the Event schema) "
        "with `id:` set to its id, so a reconnecting client resumes with `Last-Event-ID`; "
        "`event: snapshot` messages (no id) every `interval` seconds carry the release's "
        "phase, step, steps, weights, pause and latest verdicts, the instances, and per "
        "version the request rate, error rate and p95 over the last 10 s; `: heartbeat` "
        "comments after 15 s of silence; `event: shutdown` when the controller stops; "
        "`event: stream_error` (an Error body) before the stream ends on a failure."
    )
    stream = _operation(
        "streamService",
        "Follow a service live: its events and, periodically, its rollout's figures (SSE).",
        tag="events",
        parameters=[
            name,
            _int_query(
                "after",
                minimum=0,
                maximum=MAX_ID,
                default=0,
                what="Send events with ids above this (0: the whole log).",
            ),
            _query(
                "interval",
                {"schema": {"type": "number", "minimum": 0.2, "maximum": 60, "default": 1}},
                "Seconds between snapshots.",
            ),
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": "Resume after this event id (sent by browsers on reconnect; "
                "wins over `after`).",
                "schema": {"type": "string", "pattern": "^[0-9]{1,16}$"},
            },
        ],
        ok=("200", {"type": "string"}, stream_text),
        errors=("404",),
    )
    stream["responses"]["200"] = {
        "description": stream_text,
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
    login = _operation(
        "createLoginCode",
        "A one-time code to sign a browser in to the dashboard: open `login_path` within "
        "`expires_in` seconds (`zerodown dashboard` prints it). The code works once; the "
        "browser gets an HttpOnly, SameSite=Strict session cookie.",
        tag="meta",
        ok=(
            "201",
            {
                "type": "object",
                "required": ["code", "login_path", "expires_in"],
                "properties": {
                    "code": {"type": "string"},
                    "login_path": {"type": "string", "description": "/login?code=..."},
                    "expires_in": {"type": "number", "description": "Seconds."},
                },
            },
            "The code.",
        ),
        errors=(),
    )
    return {"/v1/services/{name}/stream": {"get": stream}, "/v1/login-codes": {"post": login}}


_STAGE_NAMES = ["detected", "assessed", "mitigated", "recovered", "reviewed"]
_SEVERITY_NAMES = ["SEV1", "SEV2", "SEV3", "SEV4", "SEV5"]


def _distribution(what: str) -> dict[str, Any]:
    seconds = {"type": ["number", "null"]}
    return {
        "type": "object",
        "description": f"{what}, in seconds: median, p90 (linear between ranks), mean, "
        "extremes, every value ascending and a histogram; `unknown` counts the incidents "
        "where it cannot be measured.",
        "required": ["count", "unknown", "median_s", "p90_s", "values_s", "histogram"],
        "properties": {
            "count": {"type": "integer"},
            "unknown": {"type": "integer"},
            "median_s": seconds,
            "p90_s": seconds,
            "mean_s": seconds,
            "min_s": seconds,
            "max_s": seconds,
            "values_s": {"type": "array", "items": {"type": "number"}},
            "histogram": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["bucket", "count"],
                    "properties": {"bucket": {"type": "string"}, "count": {"type": "integer"}},
                },
            },
        },
    }


_INCIDENT_SCHEMAS: dict[str, Any] = {
    "Incident": {
        "type": "object",
        "description": "An incident: opened by an automatic rollback (source `rollback:<rev>`) "
        "or a firing critical alert (`alert:<name>`); it moves forward only, through "
        + " -> ".join(_STAGE_NAMES)
        + ", each stage stamped with its time and who moved it (skipped stages are null).",
        "required": [
            "id",
            "service",
            "key",
            "source",
            "severity",
            "title",
            "stage",
            "open",
            "detected_at",
            "stages",
            "impact",
        ],
        "properties": {
            "id": {"type": "integer", "description": "Shown as INC-<id>."},
            "service": {"type": "string"},
            "key": {
                "type": "string",
                "description": "Opening again with this key while the incident is not "
                "recovered returns it (an alert's fingerprint ...).",
            },
            "source": {"type": "string"},
            "severity": {"type": "string", "enum": _SEVERITY_NAMES},
            "title": {"type": "string"},
            "revision": {"type": ["integer", "null"], "description": "The release concerned."},
            "stage": {"type": "string", "enum": _STAGE_NAMES},
            "open": {"type": "boolean", "description": "True until recovered."},
            "started_at": _nullable("string", "When the impact began (ISO 8601), if known."),
            "detected_at": {"type": "string", "description": "ISO 8601."},
            **{
                f"{stage}_at": _nullable("string", "ISO 8601; null until reached (or skipped).")
                for stage in _STAGE_NAMES[1:]
            },
            "stages": {
                "type": "array",
                "description": "The stages reached, in lifecycle order.",
                "items": {
                    "type": "object",
                    "required": ["stage", "at", "who"],
                    "properties": {
                        "stage": {"type": "string", "enum": _STAGE_NAMES},
                        "at": {"type": "string", "description": "ISO 8601."},
                        "who": {"type": "string", "description": "Who or what moved it."},
                        "note": {"type": ["string", "null"]},
                        "recorded_at": {"type": "string"},
                    },
                },
            },
            "details": {
                "type": "object",
                "additionalProperties": True,
                "description": "What the source knew: the judge's reason and verdict, the "
                "spec lines that changed, the alert's labels and value ...",
            },
            "impact": {
                "type": "object",
                "additionalProperties": True,
                "description": "Measured figures: `measured`, `scope`, `from`, `to`, "
                "`seconds`, `requests`, `errors` (5xx), `error_rate` (fraction), `unserved`, "
                "`p95_ms`, `exposure` (share of the service's requests), `source`; or "
                "`measured: false` with a `reason`.",
            },
            "postmortem_path": _nullable("string", "The latest postmortem draft written."),
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
        },
    },
    "IncidentStats": {
        "type": "object",
        "required": ["incidents", "open", "by_severity", "by_stage", "mttd", "mttr"],
        "properties": {
            "service": {"type": ["string", "null"]},
            "incidents": {"type": "integer"},
            "open": {"type": "integer"},
            "by_severity": {"type": "object", "additionalProperties": {"type": "integer"}},
            "by_stage": {"type": "object", "additionalProperties": {"type": "integer"}},
            "mttd": _distribution("Time to detect (impact began -> detected)"),
            "mttr": _distribution("Time to recover (detected -> recovered)"),
            "definitions": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
}


def _incident_paths() -> dict[str, Any]:
    """Incidents: list, one, stats, acknowledge, resolve, postmortem."""
    incident_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "description": "Incident id (INC-<id>).",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }
    service = _query(
        "service",
        {"schema": {"type": "string", "pattern": SERVICE_NAME_PATTERN}},
        "Only this service's incidents.",
    )
    one = ("200", _ref("Incident"), "The incident.")
    note = {"note": _nullable("string", "A note kept with the stage (event log, postmortem).")}
    move_errors = ("404",)
    paths: dict[str, Any] = {
        "/v1/incidents": {
            "get": _operation(
                "listIncidents",
                "Incidents, newest first.",
                tag="incidents",
                parameters=[
                    service,
                    _query(
                        "open",
                        {"schema": {"type": "boolean", "default": False}},
                        "Only incidents not recovered yet.",
                    ),
                    _int_query("limit", minimum=1, maximum=MAX_COUNT, default=100, what="At most."),
                ],
                ok=(
                    "200",
                    {
                        "type": "object",
                        "required": ["incidents"],
                        "properties": {"incidents": {"type": "array", "items": _ref("Incident")}},
                    },
                    "The incidents.",
                ),
                errors=(),
            )
        },
        "/v1/incidents/stats": {
            "get": _operation(
                "incidentStats",
                "MTTD and MTTR as medians, p90 and every value, with counts by severity and stage.",
                tag="incidents",
                parameters=[service],
                ok=("200", _ref("IncidentStats"), "The statistics."),
                errors=(),
            )
        },
        "/v1/incidents/{id}": {
            "get": _operation(
                "getIncident",
                "One incident with its stages, impact and details.",
                tag="incidents",
                parameters=[incident_id],
                ok=one,
                errors=("404",),
            )
        },
        "/v1/incidents/{id}/ack": {
            "post": _operation(
                "ackIncident",
                "A person has assessed the incident: it moves to `assessed`. Moving back "
                "(it is mitigated or recovered already) is bad input.",
                tag="incidents",
                parameters=[incident_id],
                body={"type": "object", "properties": {**note, **_WHO}},
                ok=one,
                errors=move_errors,
            )
        },
        "/v1/incidents/{id}/resolve": {
            "post": _operation(
                "resolveIncident",
                "The service works again: the incident moves to `recovered` (through "
                "`mitigated` if it was not).",
                tag="incidents",
                parameters=[incident_id],
                body={"type": "object", "properties": {**note, **_WHO}},
                ok=one,
                errors=move_errors,
            )
        },
        "/v1/incidents/{id}/postmortem": {
            "post": _operation(
                "writePostmortem",
                "Write the postmortem draft (Markdown, in `incidents/` beside the service's "
                "reports; an earlier draft is never overwritten), or with `reviewed` mark the "
                "incident reviewed: refused (409) while its latest draft still has parts "
                "marked `[To complete]`, unless `force`.",
                tag="incidents",
                parameters=[incident_id],
                body={
                    "type": "object",
                    "properties": {
                        "reviewed": {
                            "type": "boolean",
                            "description": "Mark reviewed instead of writing a draft.",
                        },
                        "force": {
                            "type": "boolean",
                            "description": "With `reviewed`: even with parts left to complete.",
                        },
                        "directory": _nullable(
                            "string", "Write here (absolute path) instead of the default folder."
                        ),
                        **note,
                        **_WHO,
                    },
                },
                ok=(
                    "200",
                    {
                        "type": "object",
                        "required": ["path", "markdown", "incident"],
                        "properties": {
                            "path": _nullable("string", "The draft's path."),
                            "markdown": _nullable("string", "The draft (null with reviewed)."),
                            "incident": _ref("Incident"),
                        },
                    },
                    "The draft written, or the incident reviewed.",
                ),
                errors=("404", "409"),
            )
        },
    }
    for item in paths.values():
        for operation in item.values():
            if "404" in operation["responses"]:
                operation["responses"]["404"] = _error("No such incident (`not_found`).")
    return paths


def _with_cookie_rules(paths: dict[str, Any]) -> dict[str, Any]:
    """Requests that change something may also be refused with 403 (dashboard cookie rules)."""
    for item in paths.values():
        for method, operation in item.items():
            if method != "get" and operation.get("security") != []:
                operation["responses"]["403"] = _error(
                    "Signed in by the dashboard's cookie without its `X-Zerodown-Action` header, "
                    "or from another origin (`forbidden`)."
                )
    return paths


_BACKUP_SCHEMAS: dict[str, Any] = {
    "BackupArtifact": {
        "type": "object",
        "required": ["name", "location", "size_bytes", "sha256"],
        "properties": {
            "name": {"type": "string", "description": "database, dump or snapshot."},
            "location": {
                "type": "string",
                "description": "A file path, or restic:<snapshot id> for files targets.",
            },
            "size_bytes": {"type": "integer"},
            "sha256": {
                "type": "string",
                "description": "The file's SHA-256; for a snapshot, the digest of the manifest "
                "of every file's path, size and SHA-256.",
            },
            "meta": {"type": "object", "additionalProperties": True},
        },
    },
    "Backup": {
        "type": "object",
        "description": "One backup in the catalogue.",
        "required": ["id", "service", "target", "kind", "status", "started_at", "artifacts"],
        "properties": {
            "id": {"type": "integer"},
            "service": {"type": "string"},
            "target": {"type": "string"},
            "kind": {"type": "string", "description": "files, sqlite, postgresql, docker-volume."},
            "status": {
                "type": "string",
                "description": "running, succeeded, failed, abandoned (its process died "
                "mid-way), pruning (removed by retention, its artifacts being deleted) or "
                "pruned (removed by retention; the row stays as history).",
            },
            "reason": {"type": "string", "description": "manual, schedule, before deploy."},
            "owner": {"type": "string", "description": "host:pid:start of the process."},
            "started_at": {"type": "string", "description": "ISO 8601."},
            "finished_at": _nullable("string", "ISO 8601."),
            "duration_s": {"type": ["number", "null"]},
            "size_bytes": {"type": ["integer", "null"]},
            "artifacts": {"type": "array", "items": _ref("BackupArtifact")},
            "tools": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Tool versions, e.g. restic, pg_dump, sqlite.",
            },
            "release_revision": {
                "type": ["integer", "null"],
                "description": "The release serving when it was taken.",
            },
            "release_version": {"type": ["string", "null"]},
            "error": {"type": "string"},
            "verified_at": _nullable("string", "ISO 8601 of the last verification."),
            "verify_status": {"type": ["string", "null"], "description": "ok or corrupted."},
            "verify_detail": {"type": "object", "additionalProperties": True},
            "meta": {"type": "object", "additionalProperties": True},
        },
    },
    "BackupList": {
        "type": "object",
        "required": ["backups"],
        "properties": {"backups": {"type": "array", "items": _ref("Backup")}},
    },
    "ReportFiles": {
        "type": ["object", "null"],
        "description": "The operation's Deployment Operations Report (Markdown, JSON twin, SVG "
        "chart), or null when it could not be written.",
        "properties": {
            "markdown": {"type": "string"},
            "json": {"type": "string"},
            "svg": {"type": "string"},
        },
    },
    "BackupRun": {
        "type": "object",
        "description": "The backups taken, each re-read and checked unless `verify` was false; "
        "`ok` is false when a check after the backup failed.",
        "required": ["ok", "backups", "verifications", "report"],
        "properties": {
            "ok": {"type": "boolean"},
            "backups": {"type": "array", "items": _ref("Backup")},
            "verifications": {"type": "array", "items": {"type": "object"}},
            "report": _ref("ReportFiles"),
        },
    },
    "Retention": {
        "type": "object",
        "description": "What each target's retention rules keep (and by which rule) and what "
        "they forget; without `dry_run`, what was removed, the bytes freed on disk and each "
        "`restic prune`. `ok` is false when a removal failed (those backups stay `pruning` "
        "and are retried).",
        "required": [
            "service",
            "dry_run",
            "ok",
            "targets",
            "repositories",
            "freed_bytes",
            "errors",
            "report",
        ],
        "properties": {
            "service": {"type": "string"},
            "dry_run": {"type": "boolean"},
            "ok": {"type": "boolean"},
            "targets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["target", "policy", "decisions", "removed", "lines"],
                    "properties": {
                        "target": {"type": "string"},
                        "policy": {"type": "string"},
                        "decisions": {
                            "type": "array",
                            "description": "Newest first: backup_id, started_at, size_bytes, "
                            "keep, and the rules that keep it (rule, text, oldest).",
                            "items": {"type": "object"},
                        },
                        "kept": {"type": "integer"},
                        "forgotten": {"type": "array", "items": {"type": "integer"}},
                        "removed": {"type": "array", "items": {"type": "integer"}},
                        "removed_bytes": {
                            "type": "integer",
                            "description": "What the removed backups held, as recorded.",
                        },
                        "freed_bytes": {
                            "type": "integer",
                            "description": "Bytes of this target's files deleted, on disk.",
                        },
                        "repositories": {
                            "type": "array",
                            "description": "The restic prunes its snapshots took part in.",
                            "items": {"type": "object"},
                        },
                        "resumed": {"type": "array", "items": {"type": "integer"}},
                        "errors": {"type": "array", "items": {"type": "string"}},
                        "lines": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
            "repositories": {
                "type": "array",
                "description": "Each `restic prune`, once per repository: duration, size on "
                "disk before and after, bytes freed, the backups it was run for.",
                "items": {"type": "object"},
            },
            "freed_bytes": {
                "type": "integer",
                "description": "Measured on disk: files deleted plus what the prunes freed.",
            },
            "errors": {"type": "array", "items": {"type": "string"}},
            "report": _ref("ReportFiles"),
        },
    },
    "Verification": {
        "type": "object",
        "required": ["backup", "verification"],
        "properties": {
            "backup": _ref("Backup"),
            "verification": {
                "type": "object",
                "required": ["status", "artifacts", "problems"],
                "properties": {
                    "status": {"type": "string", "enum": ["ok", "corrupted"]},
                    "artifacts": {"type": "array", "items": {"type": "object"}},
                    "problems": {"type": "array", "items": {"type": "string"}},
                    "details": {"type": "object", "additionalProperties": True},
                },
            },
        },
    },
    "Restore": {
        "type": "object",
        "required": ["backup_id", "restore"],
        "properties": {
            "backup_id": {"type": "integer"},
            "report": _ref("ReportFiles"),
            "restore": {
                "type": "object",
                "required": ["destination", "bytes_written", "sha256", "matches"],
                "properties": {
                    "destination": {"type": "string"},
                    "replaced_live": {"type": "boolean"},
                    "bytes_written": {"type": "integer"},
                    "sha256": {"type": "string"},
                    "expected_sha256": {"type": "string"},
                    "matches": {"type": "boolean"},
                    "details": {"type": "object", "additionalProperties": True},
                },
            },
        },
    },
}


def _backup_paths() -> dict[str, Any]:
    """Backups of a service: run, list, one, verify, restore, targets; rollback data."""
    name = _name_param()
    backup_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "description": "Backup id.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }
    target_pattern = {"type": "string", "pattern": r"^[a-z][a-z0-9-]{0,39}$"}
    failed = _error("The backup, check or restore ran and failed (`operation_failed`).")

    def with_failure(operation: dict[str, Any]) -> dict[str, Any]:
        operation["responses"]["500"] = failed
        return operation

    return {
        "/v1/services/{name}/backups": {
            "get": _operation(
                "listBackups",
                "A service's backups in the catalogue, newest first.",
                tag="backups",
                parameters=[
                    name,
                    _query("target", {"schema": target_pattern}, "Only this target."),
                    _int_query("limit", minimum=1, maximum=MAX_COUNT, default=100, what="At most."),
                ],
                ok=("200", _ref("BackupList"), "The backups."),
                errors=("404", "409"),
            ),
            "post": with_failure(
                _operation(
                    "runBackup",
                    "Back up one target now, or every target of the service, then re-read "
                    "and check each backup; answers when the backups are registered (a long "
                    "call) and writes the operation's report.",
                    tag="backups",
                    parameters=[name],
                    body={
                        "type": "object",
                        "properties": {
                            "target": {
                                "type": ["string", "null"],
                                "pattern": target_pattern["pattern"],
                                "description": "One target (default: all, in spec order).",
                            },
                            "verify": {
                                "type": ["boolean", "null"],
                                "description": "Re-read and check each backup (default true).",
                            },
                        },
                    },
                    ok=("201", _ref("BackupRun"), "The backups taken."),
                    errors=("404", "409"),
                )
            ),
        },
        "/v1/services/{name}/backups/targets": {
            "get": _operation(
                "listBackupTargets",
                "Each backup target: schedule, next run, age limit, newest good backup.",
                tag="backups",
                parameters=[name],
                ok=(
                    "200",
                    {
                        "type": "object",
                        "required": ["targets"],
                        "properties": {"targets": {"type": "array", "items": {"type": "object"}}},
                    },
                    "The targets.",
                ),
                errors=("404", "409"),
            )
        },
        "/v1/services/{name}/backups/forget": {
            "post": with_failure(
                _operation(
                    "forgetBackups",
                    "Apply the retention rules of one target, or of every target: keep what "
                    "they keep, remove the rest (files deleted, restic snapshots forgotten, "
                    "`restic prune` once per repository; rows marked `pruned`). With "
                    "`dry_run`, only say which backups each rule keeps. Writes the "
                    "operation's report (not for a dry run).",
                    tag="backups",
                    parameters=[name],
                    body={
                        "type": "object",
                        "properties": {
                            "target": {
                                "type": ["string", "null"],
                                "pattern": target_pattern["pattern"],
                                "description": "One target (default: all, in spec order).",
                            },
                            "dry_run": {
                                "type": ["boolean", "null"],
                                "description": "Remove nothing; list keep/forget and why.",
                            },
                        },
                    },
                    ok=("200", _ref("Retention"), "What was kept and removed."),
                    errors=("404", "409"),
                )
            )
        },
        "/v1/services/{name}/backups/{id}": {
            "get": _operation(
                "getBackup",
                "One backup with its artifacts, digests, tools and verification.",
                tag="backups",
                parameters=[name, backup_id],
                ok=("200", _ref("Backup"), "The backup."),
                errors=("404",),
            )
        },
        "/v1/services/{name}/backups/{id}/verify": {
            "post": with_failure(
                _operation(
                    "verifyBackup",
                    "Re-read the artifacts and check their SHA-256 (and `restic check "
                    "--read-data` for files); a corrupted backup answers 200 with status "
                    "`corrupted` and is never restored.",
                    tag="backups",
                    parameters=[name, backup_id],
                    ok=("200", _ref("Verification"), "What the check found."),
                    errors=("404", "409"),
                )
            )
        },
        "/v1/services/{name}/backups/{id}/restore": {
            "post": with_failure(
                _operation(
                    "restoreBackup",
                    "Restore a backup: to a new name beside the live data by default; over "
                    "existing data only with `force`. Digests are checked first.",
                    tag="backups",
                    parameters=[name, backup_id],
                    body={
                        "type": "object",
                        "properties": {
                            "destination": _nullable(
                                "string", "A path (files, sqlite) or a database name or URL."
                            ),
                            "force": {
                                "type": "boolean",
                                "description": "Allow replacing existing (live) data.",
                            },
                        },
                    },
                    ok=("200", _ref("Restore"), "Where it went, bytes and digests."),
                    errors=("404", "409"),
                )
            )
        },
        "/v1/services/{name}/rollback-data": {
            "get": _operation(
                "getRollbackData",
                "The backups `rollback` with `with_data` would restore: for the release it "
                "returns to, the newest good pre-deployment backup of each target taken while it "
                "served.",
                tag="backups",
                parameters=[
                    name,
                    _int_query(
                        "to", minimum=0, maximum=MAX_ID, default=0, what="Revision (0: previous)."
                    ),
                ],
                ok=(
                    "200",
                    {
                        "type": "object",
                        "required": ["target_revision", "backups"],
                        "properties": {
                            "service": {"type": "string"},
                            "serving_revision": {"type": "integer"},
                            "target_revision": {"type": "integer"},
                            "target_version": {"type": "string"},
                            "backups": {"type": "array", "items": _ref("Backup")},
                        },
                    },
                    "The plan.",
                ),
                errors=("404", "409"),
            )
        },
    }


_MONITOR_SCHEMAS: dict[str, Any] = {
    "Figures": {
        "type": "object",
        "description": "Traffic of one version over a span: counted without extrapolation.",
        "required": ["requests", "request_rate"],
        "properties": {
            "requests": {"type": "integer", "description": "Requests answered in the span."},
            "request_rate": {"type": "number", "description": "Requests per second."},
            "error_rate": _nullable("number", "Share of 5xx answers (null without requests)."),
            "availability": _nullable(
                "number", "Share of requests not refused or timed out (null without requests)."
            ),
            "latency_avg_s": _nullable("number", "Mean latency in seconds."),
            "latency_p95_s": _nullable("number", "95th percentile, from the histogram."),
            "latency_p99_s": _nullable("number", "99th percentile, from the histogram."),
        },
    },
    "ServiceMetrics": {
        "type": "object",
        "required": ["service", "since", "until", "step_s", "versions", "instances"],
        "properties": {
            "service": {"type": "string"},
            "since": {"type": "string", "description": "ISO 8601."},
            "until": {"type": "string", "description": "ISO 8601."},
            "step_s": {"type": "number", "description": "Seconds between points."},
            "interval_s": {"type": "number", "description": "The service's sampling interval."},
            "resolution_s": {
                "type": "number",
                "description": "The stored samples' spacing: the interval, or 60 where only "
                "one-minute aggregates are left.",
            },
            "versions": {
                "type": "object",
                "description": "Per version label.",
                "additionalProperties": {
                    "type": "object",
                    "required": ["requests_total", "window", "points"],
                    "properties": {
                        "requests_total": {
                            "type": "integer",
                            "description": "The counter's value at `until` (as /metrics has it).",
                        },
                        "window": _ref("Figures"),
                        "points": {
                            "type": "array",
                            "items": {
                                "allOf": [
                                    _ref("Figures"),
                                    {
                                        "type": "object",
                                        "properties": {
                                            "t": {
                                                "type": "number",
                                                "description": "End of the step (epoch s).",
                                            }
                                        },
                                    },
                                ]
                            },
                        },
                    },
                },
            },
            "instances": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "instance": {"type": "string"},
                        "version": {"type": "string"},
                        "healthy": {"type": "boolean"},
                        "cpu_cores": {"type": "number"},
                        "memory_bytes": {"type": "number"},
                        "restarts_total": {"type": "number"},
                    },
                },
            },
        },
    },
    "Alert": {
        "type": "object",
        "required": ["name", "state", "labels", "annotations", "fingerprint", "scope"],
        "properties": {
            "name": {"type": "string", "description": "The rule's alert name."},
            "state": {"type": "string", "enum": ["pending", "firing", "inactive"]},
            "scope": {"type": "string", "description": "The service, or host."},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "value": {"type": ["number", "null"]},
            "fingerprint": {"type": "string", "description": "Alertmanager's, 16 hex digits."},
            "active_at": _nullable("string", "ISO 8601: first seen pending."),
            "fired_at": _nullable("string", "ISO 8601."),
            "resolved_at": _nullable("string", "ISO 8601 (inactive alerts)."),
            "silenced_by": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Silence": {
        "type": "object",
        "required": ["id", "matchers", "startsAt", "endsAt", "createdBy", "comment", "status"],
        "description": "Alertmanager's silence shape.",
        "properties": {
            "id": {"type": "string"},
            "matchers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "value": {"type": "string"},
                        "isRegex": {"type": "boolean"},
                        "isEqual": {"type": "boolean"},
                    },
                },
            },
            "matchers_text": {"type": "array", "items": {"type": "string"}},
            "startsAt": {"type": "string"},
            "endsAt": {"type": "string"},
            "createdBy": {"type": "string"},
            "comment": {"type": "string"},
            "status": {
                "type": "object",
                "properties": {
                    "state": {"type": "string", "enum": ["pending", "active", "expired"]}
                },
            },
        },
    },
}


def _monitor_paths() -> dict[str, Any]:
    """The monitor: Prometheus' /metrics, a service's figures, alerts and silences."""
    epoch = {"schema": {"type": "number", "minimum": 0}}
    silence = {
        "type": "object",
        "required": ["silence"],
        "properties": {"silence": _ref("Silence")},
    }
    return {
        "/metrics": {
            "get": {
                **_operation(
                    "metrics",
                    "Every metric in Prometheus' text format 0.0.4 (scrape it with the token).",
                    tag="monitor",
                    ok=("200", {"type": "string"}, "The exposition."),
                    errors=(),
                ),
                "responses": {
                    "200": {
                        "description": "The exposition: HELP, TYPE and samples per family.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _error("Missing or wrong bearer token (`unauthorized`)."),
                },
            }
        },
        "/v1/services/{name}/metrics": {
            "get": _operation(
                "getServiceMetrics",
                "Request rate, error rate, availability and latency (mean, p95, p99) per "
                "version over a window, with one point per step; the instances' health, CPU "
                "and memory.",
                tag="monitor",
                parameters=[
                    _name_param(),
                    _query("since", epoch, "Start (epoch seconds; default an hour ago)."),
                    _query("until", epoch, "End (epoch seconds; default now)."),
                    _query(
                        "step",
                        {"schema": {"type": "number", "exclusiveMinimum": 0}},
                        "Seconds between points (default: about 60 points).",
                    ),
                ],
                ok=("200", _ref("ServiceMetrics"), "The figures."),
                errors=("404",),
            )
        },
        "/v1/alerts": {
            "get": _operation(
                "listAlerts",
                "Pending and firing alerts of every service and the host, rules that failed to "
                "evaluate, and the notification groups.",
                tag="monitor",
                parameters=[
                    _query(
                        "resolved",
                        {"schema": {"type": "boolean", "default": False}},
                        "Also the alerts resolved in the last 15 minutes.",
                    )
                ],
                ok=(
                    "200",
                    {
                        "type": "object",
                        "required": ["alerts", "errors", "groups"],
                        "properties": {
                            "alerts": {"type": "array", "items": _ref("Alert")},
                            "errors": {"type": "array", "items": {"type": "object"}},
                            "groups": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                    "The alerts.",
                ),
                errors=(),
            )
        },
        "/v1/silences": {
            "get": _operation(
                "listSilences",
                "Silences, newest end first.",
                tag="monitor",
                parameters=[
                    _query(
                        "state",
                        {"schema": {"type": "string", "enum": ["pending", "active", "expired"]}},
                        "Only silences in this state.",
                    )
                ],
                ok=(
                    "200",
                    {
                        "type": "object",
                        "required": ["silences"],
                        "properties": {"silences": {"type": "array", "items": _ref("Silence")}},
                    },
                    "The silences.",
                ),
                errors=(),
            ),
            "post": _operation(
                "addSilence",
                "Mute the alerts matching every matcher until a time (kept across restarts).",
                tag="monitor",
                body={
                    "type": "object",
                    "required": ["matchers", "comment"],
                    "properties": {
                        "matchers": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string", "minLength": 1},
                            "description": 'Alertmanager matchers: service="web", '
                            'alertname=~"High.*", severity!="info".',
                        },
                        "comment": {"type": "string", "minLength": 1},
                        "duration": {
                            "type": ["number", "null"],
                            "exclusiveMinimum": 0,
                            "maximum": 366 * 86400,
                            "description": "Seconds from the start (or give ends_at).",
                        },
                        "ends_at": _nullable("string", "ISO 8601 with an offset."),
                        "starts_at": _nullable("string", "ISO 8601 (default now)."),
                        "created_by": _nullable("string", "Who mutes (default: api)."),
                    },
                },
                ok=("201", silence, "The silence."),
                errors=(),
            ),
        },
        "/v1/silences/{id}/expire": {
            "post": _operation(
                "expireSilence",
                "End a silence now.",
                tag="monitor",
                parameters=[
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 100},
                    }
                ],
                ok=("200", silence, "The silence, expired."),
                errors=("404",),
            )
        },
    }


_DR_SCHEMAS: dict[str, Any] = {
    "DrPlan": {
        "type": "object",
        "description": "A DR plan written as Markdown: objectives (RPO, RTO), inventory of the "
        "backups and where they are, restore order, verification, contacts, past drills.",
        "required": ["service", "path", "markdown", "written_at"],
        "properties": {
            "service": {"type": "string"},
            "path": {"type": "string", "description": "Where the controller wrote it."},
            "markdown": {"type": "string"},
            "written_at": {"type": "string", "format": "date-time"},
        },
    },
    "DrDrill": {
        "type": "object",
        "description": "One DR drill: the newest good backups restored into a scratch folder "
        "(PostgreSQL targets into a scratch database on their server, dropped afterwards), "
        "the service started on them, smoke-tested, measured and cleaned up. `status` is "
        "`passed` when every restore checked out, the smoke tests passed, RTO and RPO are "
        "within the spec's objectives and nothing was left behind; `reason` says why not.",
        "required": [
            "service",
            "drill_id",
            "status",
            "reason",
            "started_at",
            "finished_at",
            "duration_s",
            "rto_s",
            "rpo_s",
            "targets",
            "smoke",
            "cleanup",
            "report",
        ],
        "properties": {
            "service": {"type": "string"},
            "drill_id": {"type": "string"},
            "status": {"type": "string", "enum": ["passed", "failed"]},
            "reason": {"type": "string"},
            "started_at": {"type": "string", "format": "date-time"},
            "finished_at": {"type": "string", "format": "date-time"},
            "duration_s": {"type": "number"},
            "revision": {"type": "integer"},
            "version": {"type": "string"},
            "rto_s": _nullable(
                "number", "Seconds from the drill's start to the first passing smoke tests."
            ),
            "rto_target_s": _nullable("number", "`dr.rto`, when set."),
            "rto_met": _nullable("boolean", "Null when not measured or no objective."),
            "rpo_s": _nullable("number", "Age of the oldest restored data at the start."),
            "rpo_target_s": _nullable("number", "`dr.rpo`, when set."),
            "rpo_met": _nullable("boolean", "Null when not measured or no objective."),
            "targets": {
                "type": "array",
                "description": "Each backup target as restored: backup id, age, destination, "
                "bytes, SHA-256 against the catalogue's.",
                "items": {"type": "object"},
            },
            "smoke": {"type": "array", "items": {"type": "object"}},
            "smoke_rounds": {"type": "integer"},
            "instance": {"type": "object"},
            "cleanup": {
                "type": "object",
                "required": ["ok", "summary"],
                "properties": {"ok": {"type": "boolean"}, "summary": {"type": "string"}},
            },
            "timeline": {"type": "array", "items": {"type": "object"}},
            "report": {
                "type": "object",
                "description": "The Deployment Operations Report of the drill (operation "
                "`drill`): Markdown, JSON and SVG paths.",
                "properties": {
                    "markdown": {"type": "string"},
                    "json": {"type": "string"},
                    "svg": {"type": "string"},
                },
            },
        },
    },
}


def _dr_paths() -> dict[str, Any]:
    """Disaster recovery of a service: its written plan, and drills."""
    name = _name_param()
    return {
        "/v1/services/{name}/dr/plan": {
            "post": _operation(
                "writeDrPlan",
                "Write the service's DR plan (Markdown) from its spec and the backup "
                "catalogue: to `path`, else `dr/plan-<service>.md` in its report folder.",
                tag="dr",
                parameters=[name],
                body={
                    "type": "object",
                    "properties": {
                        "path": {
                            "type": ["string", "null"],
                            "description": "An absolute path to a .md file in an existing folder.",
                        }
                    },
                },
                ok=("200", _ref("DrPlan"), "The plan and where it was written."),
                errors=("404", "409"),
            )
        },
        "/v1/services/{name}/dr/drill": {
            "post": _operation(
                "runDrDrill",
                "Run a DR drill (a long call: restores, start, smoke tests, clean-up); a "
                "failed drill answers 200 with status `failed`.",
                tag="dr",
                parameters=[name],
                ok=("200", _ref("DrDrill"), "What the drill did and measured."),
                errors=("404", "409"),
            )
        },
    }


_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "zerodown controller API",
        "version": "1",
        "description": "The HTTP API of `zerodown serve`. Every route except `/healthz` and "
        "`/openapi.json` needs `Authorization: Bearer <token>`; the token is in the state "
        'directory (`<state>/token`, mode 0600). Errors are `{"error": {"code", '
        '"message", "field"?, "problems"?}}` with a stable `code`. A browser signed in to '
        "the dashboard (`POST /v1/login-codes`, then `/login?code=...`) may send its session "
        "cookie instead; with the cookie, a request that changes something also needs the "
        "`X-Zerodown-Action` header and, if the browser sends `Origin`, this server's own.",
    },
    "security": [{"bearer": []}, {"session": []}],
    "paths": _with_cookie_rules(
        {
            **_paths(),
            **_live_paths(),
            **_incident_paths(),
            **_backup_paths(),
            **_monitor_paths(),
            **_dr_paths(),
        }
    ),
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": "zerodown_session"},
        },
        "schemas": {
            **_SCHEMAS,
            **_INCIDENT_SCHEMAS,
            **_BACKUP_SCHEMAS,
            **_MONITOR_SCHEMAS,
            **_DR_SCHEMAS,
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (callers may annotate it, e.g. with ``servers``)."""
    return copy.deepcopy(_DOCUMENT)
