"""The controller's HTTP API: ``create_app(zerodown)`` returns a Starlette application.

Every route except ``/healthz`` and ``/openapi.json`` needs ``Authorization: Bearer <token>``
(the token lives in the state directory, mode 0600). Errors are JSON
``{"error": {"code", "message", "field"?, ...}}`` with a stable ``code`` from the error tree;
the HTTP status follows the error's kind. Inputs are checked here against the contract in
``api/openapi.py`` (types, bounds, service-name pattern), so a bad input is a 400 naming the
field, never a 500.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from zerodown.api.backups import backup_routes
from zerodown.api.dashboard import dashboard_routes
from zerodown.api.dr import dr_routes
from zerodown.api.incidents import incident_routes
from zerodown.api.monitoring import monitor_routes
from zerodown.api.openapi import (
    MAX_COUNT,
    MAX_ID,
    MAX_MINED_LINES,
    SERVICE_NAME_PATTERN,
    openapi_document,
)
from zerodown.api.session import BrowserSessions
from zerodown.api.sse import (
    DEFAULT_INTERVAL_S,
    MAX_INTERVAL_S,
    MIN_INTERVAL_S,
    StreamHub,
    event_stream,
)
from zerodown.core.errors import (
    InputError,
    NotFoundError,
    RefusedError,
    TemporaryError,
    ZerodownError,
)
from zerodown.ops.log_levels import Level, parse_level
from zerodown.service import Zerodown

__all__ = ["create_app"]

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


class FieldError(InputError):
    """Bad input in one named field, query or path parameter (``bad_input`` with ``field``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "field": self.field}


def status_for(exc: ZerodownError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, RefusedError):
        return 409
    if isinstance(exc, TemporaryError):
        return 503
    return 500


def error_response(exc: ZerodownError) -> JSONResponse:
    return JSONResponse({"error": exc.to_dict()}, status_code=status_for(exc))


def create_app(zd: Zerodown, *, token: str) -> Starlette:
    """The HTTP API over one ``Zerodown``."""
    # The bearer token, or the dashboard's session cookie (api/session.py: login codes, CSRF).
    state = getattr(zd, "state", None)  # None when only the routing table is wanted
    sessions = BrowserSessions(
        token, revocations=state.path / "dashboard-signed-out.json" if state else None
    )
    streams = StreamHub()  # open SSE streams; the server ends them all when it stops

    def guarded(fn: Callable[[Request, dict[str, Any]], Any]) -> Handler:
        async def endpoint(request: Request) -> Response:
            failure = sessions.check(request)
            if failure is not None:
                return JSONResponse(
                    {"error": {"code": failure.code, "message": failure.message}},
                    status_code=failure.status,
                )
            try:
                body = await _json_body(request) if _wants_body(request) else {}
                result = await run_in_threadpool(fn, request, body)
            except ZerodownError as exc:
                return error_response(exc)
            except Exception as exc:  # a bug: the traceback to the log, JSON to the client
                log.exception("%s %s failed", request.method, request.url.path)
                return JSONResponse(
                    {"error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}},
                    status_code=500,
                )
            if isinstance(result, Response):
                return result
            return JSONResponse(result)

        return endpoint

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    document = openapi_document()

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    def list_services(request: Request, body: dict[str, Any]) -> Any:
        return {"services": [s.to_dict() for s in zd.services()]}

    def up(request: Request, body: dict[str, Any]) -> Any:
        release = zd.up(
            spec_text=_required_str(body, "spec_text"),
            spec_path=_path_str(body, "spec_path", required=True) or "",
            version=_str(body, "version"),
        )
        return JSONResponse({"release": release.to_dict()}, status_code=202)

    def get_service(request: Request, body: dict[str, Any]) -> Any:
        return zd.status_of(_name(request), resources=True).to_dict()

    def deploy(request: Request, body: dict[str, Any]) -> Any:
        name = _name(request)
        spec_text = _required_str(body, "spec_text")
        spec_path = _path_str(body, "spec_path", required=True) or ""
        named = zd.validate(spec_text=spec_text, spec_path=spec_path).spec.service
        if named != name:
            raise FieldError("name", f"the spec deploys service {named!r}, not {name!r}")
        release = zd.deploy(
            spec_text=spec_text,
            spec_path=spec_path,
            version=_str(body, "version"),
            strategy=_str(body, "strategy"),
            who=_str(body, "who") or "api",
            force=_bool(body, "force"),
        )
        return JSONResponse({"release": release.to_dict()}, status_code=202)

    def control(action: str) -> Callable[[Request, dict[str, Any]], Any]:
        def handler(request: Request, body: dict[str, Any]) -> Any:
            name = _name(request)
            who = _str(body, "who") or "api"
            if action == "promote":
                message = zd.promote(name, full=_bool(body, "full"), who=who)
            elif action == "pause":
                message = zd.pause(name, who=who)
            elif action == "resume":
                message = zd.resume(name, who=who)
            elif action == "abort":
                message = zd.abort(name, reason=_str(body, "reason"), who=who)
            elif _bool(body, "with_data"):
                return {
                    "ok": True,
                    **zd.rollback_with_data(
                        name,
                        to=_int(body, "to", minimum=1),
                        who=who,
                        backup_ids=_ids(body, "backup_ids"),
                    ),
                }
            else:
                message = zd.rollback(name, to=_int(body, "to", minimum=1), who=who)
            return {"ok": True, "message": message}

        return handler

    def release(request: Request, body: dict[str, Any]) -> Any:
        name = _name(request)
        raw = request.path_params["revision"]
        if not re.fullmatch(r"[0-9]{1,16}", raw) or not 1 <= int(raw) <= MAX_ID:
            raise FieldError("revision", f"must be an integer from 1 to {MAX_ID}, got {raw!r}")
        return zd.release(name, int(raw))

    def report(request: Request, body: dict[str, Any]) -> Any:
        name = _name(request)
        lang = _str(body, "lang") or "zh-TW"
        if lang not in ("zh-TW", "en"):
            raise FieldError("lang", f"choose zh-TW or en, got {lang!r}")
        directory = _path_str(body, "directory")
        paths = zd.write_report(
            name,
            revision=_int(body, "revision", minimum=1),
            lang=lang,
            directory=Path(directory) if directory else None,
        )
        return {"markdown": str(paths.markdown), "json": str(paths.json), "svg": str(paths.svg)}

    def stop_service(request: Request, body: dict[str, Any]) -> Any:
        return JSONResponse(zd.stop(_name(request)).to_dict(), status_code=202)

    def releases(request: Request, body: dict[str, Any]) -> Any:
        limit = _int_param(request, "limit", 50, minimum=1, maximum=MAX_COUNT)
        items = zd.history(_name(request), limit=limit)
        return {"releases": [r.to_dict() for r in items]}

    def events(request: Request, body: dict[str, Any]) -> Any:
        service = request.query_params.get("service") or None
        if service is not None:
            _check_name("service", service)
        return {
            "events": zd.events(
                service,
                after_id=_int_param(request, "after", 0, minimum=0, maximum=MAX_ID),
                limit=_int_param(request, "limit", 500, minimum=1, maximum=MAX_COUNT),
            )
        }

    def logs(request: Request, body: dict[str, Any]) -> Any:
        name = _name(request)
        tail = _int_param(request, "tail", 0, minimum=0, maximum=MAX_COUNT)
        page = zd.logs(
            name,
            offset=_int_param(request, "offset", 0, minimum=0, maximum=MAX_ID),
            since=_float_param(request, "since"),
            instance=request.query_params.get("instance") or None,
            pattern=_pattern_param(request),
            min_level=_level_param(request),
            version=request.query_params.get("version") or None,
            tail=tail or None,
            limit=_int_param(request, "limit", 1000, minimum=1, maximum=MAX_COUNT),
        )
        return {"entries": [e.to_dict() for e in page.entries], "next_offset": page.next_offset}

    def log_patterns(request: Request, body: dict[str, Any]) -> Any:
        report = zd.log_patterns(
            _name(request),
            since=_float_param(request, "since"),
            instance=request.query_params.get("instance") or None,
            pattern=_pattern_param(request),
            min_level=_level_param(request),
            version=request.query_params.get("version") or None,
            max_lines=_int_param(request, "lines", 100_000, minimum=1, maximum=MAX_MINED_LINES),
            top=_int_param(request, "top", 50, minimum=1, maximum=MAX_COUNT),
        )
        return report.to_dict()

    def login_code(request: Request, body: dict[str, Any]) -> Any:
        if not sessions.bearer(request):
            # A session must not mint the codes that make new sessions: it would never end.
            return JSONResponse(
                {
                    "error": {
                        "code": "forbidden",
                        "message": "login codes are issued to the API token, not to a session",
                    }
                },
                status_code=403,
            )
        code = sessions.issue_code()
        return JSONResponse(
            {"code": code.code, "login_path": code.login_path, "expires_in": code.expires_in},
            status_code=201,
        )

    def stream(request: Request, body: dict[str, Any]) -> Any:
        name = _name(request)
        after = _int_param(request, "after", 0, minimum=0, maximum=MAX_ID)
        last = request.headers.get("last-event-id", "").strip()
        if last:  # a reconnecting EventSource: resume after the last event it got
            if not re.fullmatch(r"[0-9]{1,16}", last) or int(last) > MAX_ID:
                raise FieldError(
                    "Last-Event-ID", f"must be an event id from 0 to {MAX_ID}, got {last[:40]!r}"
                )
            after = int(last)
        interval = _float_param(request, "interval")
        if interval is None:
            interval = DEFAULT_INTERVAL_S
        elif not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
            raise FieldError(
                "interval",
                f"query parameter must be from {MIN_INTERVAL_S:g} to {MAX_INTERVAL_S:g} seconds, "
                f"got {interval:g}",
            )
        zd.history(name, limit=1)  # an unknown service is a 404 before the stream starts
        return event_stream(zd, streams, service=name, after=after, interval=interval)

    routes = [
        Route("/healthz", healthz),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/v1/services", guarded(list_services), methods=["GET"]),
        Route("/v1/services", guarded(up), methods=["POST"]),
        Route("/v1/services/{name}", guarded(get_service), methods=["GET"]),
        Route("/v1/services/{name}/stop", guarded(stop_service), methods=["POST"]),
        Route("/v1/services/{name}/releases", guarded(releases), methods=["GET"]),
        Route("/v1/services/{name}/releases/{revision}", guarded(release), methods=["GET"]),
        Route("/v1/services/{name}/deploy", guarded(deploy), methods=["POST"]),
        Route("/v1/services/{name}/report", guarded(report), methods=["POST"]),
        *[
            Route(f"/v1/services/{{name}}/{action}", guarded(control(action)), methods=["POST"])
            for action in ("promote", "pause", "resume", "abort", "rollback")
        ],
        Route("/v1/services/{name}/logs", guarded(logs), methods=["GET"]),
        Route("/v1/services/{name}/logs/patterns", guarded(log_patterns), methods=["GET"]),
        Route("/v1/events", guarded(events), methods=["GET"]),
        Route("/v1/services/{name}/stream", guarded(stream), methods=["GET"]),
        Route("/v1/login-codes", guarded(login_code), methods=["POST"]),
        *incident_routes(zd, guarded),
        *monitor_routes(zd, guarded),
        *backup_routes(zd, guarded),
        *dr_routes(zd, guarded),
        *dashboard_routes(zd, sessions, error_status=status_for),
    ]
    app = Starlette(routes=routes)
    app.state.streams = streams
    return app


def _wants_body(request: Request) -> bool:
    return request.method in ("POST", "PUT", "PATCH")


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise FieldError("body", f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise FieldError("body", "must be a JSON object")
    return data


_NAME = re.compile(SERVICE_NAME_PATTERN)


def _check_name(field: str, value: str) -> str:
    if not _NAME.fullmatch(value):
        raise FieldError(field, f"a service name matches [a-z][a-z0-9-]{{0,39}}, got {value!r}")
    return value


def _name(request: Request) -> str:
    return _check_name("name", request.path_params["name"])


def _str(body: dict[str, Any], name: str) -> str | None:
    """An optional string field: absent or null is None; anything else but text is refused."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError(name, f"must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise FieldError(name, "must be valid Unicode text") from None
    return value


def _required_str(body: dict[str, Any], name: str) -> str:
    value = _str(body, name)
    if value is None:
        raise FieldError(name, "is required (a string)")
    return value


def _path_str(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    """A file system path: text without NUL bytes (the OS refuses those)."""
    value = _required_str(body, name) if required else _str(body, name)
    if value is not None and "\x00" in value:
        raise FieldError(name, "a path cannot contain NUL bytes")
    return value


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise FieldError(name, f"must be true or false, got {type(value).__name__}")
    return value


def _int(body: dict[str, Any], name: str, *, minimum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(name, f"must be an integer, got {type(value).__name__}")
    if not minimum <= value <= MAX_ID:
        raise FieldError(name, f"must be from {minimum} to {MAX_ID}, got {value}")
    return value


def _ids(body: dict[str, Any], name: str) -> list[int] | None:
    """A list of ids (integers from 1 to ``MAX_ID``), or None when absent."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise FieldError(name, f"must be a list of ids, got {type(value).__name__}")
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= MAX_ID:
            raise FieldError(f"{name}[{index}]", f"must be an id from 1 to {MAX_ID}, got {item!r}")
    return list(value)


def _int_param(request: Request, name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"-?[0-9]{1,19}", raw.strip()):
        raise FieldError(name, f"query parameter must be an integer, got {raw!r}")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise FieldError(name, f"query parameter must be from {minimum} to {maximum}, got {value}")
    return value


def _pattern_param(request: Request) -> str | None:
    pattern = request.query_params.get("pattern") or None
    if pattern is not None:
        try:
            re.compile(pattern)
        except (re.error, RecursionError, OverflowError) as exc:
            raise FieldError("pattern", f"not a valid regular expression: {exc}") from None
    return pattern


def _level_param(request: Request) -> Level | None:
    raw = request.query_params.get("level") or None
    if raw is None:
        return None
    try:
        return parse_level(raw)
    except ValueError as exc:
        raise FieldError("level", str(exc)) from None


def _float_param(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise FieldError(name, f"query parameter must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise FieldError(name, f"query parameter must be a finite number >= 0, got {raw!r}")
    return value
