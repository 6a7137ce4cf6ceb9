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
    "MAX_COUNT",
    "MAX_ID",
    "SERVICE_NAME_PATTERN",
    "openapi_document",
]

# Service names follow the spec's rule; a name outside it can never exist.
SERVICE_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
# Upper bounds of integer inputs: a count (limit, tail) and an id or byte offset.
MAX_COUNT = 1_000_000_000
MAX_ID = 2**53 - 1

# The stable ``code`` values of error bodies (from the error tree), with their HTTP status.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "bad_input": (400, "the request is wrong: a bad field, parameter or body (exit code 2)"),
    "invalid_spec": (400, "the spec text is invalid; `problems` lists each one (exit code 2)"),
    "not_found": (404, "the named service or release does not exist (exit code 2)"),
    "refused": (409, "valid, but refused by state or policy: deploy window, freeze (exit 3)"),
    "lock_held": (409, "another rollout holds the service's deploy lock (exit code 3)"),
    "preflight_failed": (409, "a pre-deployment check failed; nothing changed (exit code 3)"),
    "unauthorized": (401, "the bearer token is missing or wrong"),
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
            "line": {"type": "string"},
        },
    },
    "ControlResult": {
        "type": "object",
        "required": ["ok", "message"],
        "properties": {"ok": {"type": "boolean"}, "message": {"type": "string"}},
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
                        "enum": ["rolling", "blue-green", "canary", None],
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
            }
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


_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "zerodown controller API",
        "version": "1",
        "description": "The HTTP API of `zerodown serve`. Every route except `/healthz` and "
        "`/openapi.json` needs `Authorization: Bearer <token>`; the token is in the state "
        'directory (`<state>/token`, mode 0600). Errors are `{"error": {"code", '
        '"message", "field"?, "problems"?}}` with a stable `code`.',
    },
    "security": [{"bearer": []}],
    "paths": _paths(),
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": _SCHEMAS,
    },
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (callers may annotate it, e.g. with ``servers``)."""
    return copy.deepcopy(_DOCUMENT)
