"""The controller's HTTP API: ``create_app(zerodown)`` returns a Starlette application.

Every route except ``/healthz`` needs ``Authorization: Bearer <token>`` (the token lives in the
state directory, mode 0600). Errors are JSON ``{"code", "message", ...}`` with a stable ``code``
from the error tree; the HTTP status follows the error's kind.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from zerodown.core.errors import (
    InputError,
    NotFoundError,
    RefusedError,
    TemporaryError,
    ZerodownError,
)
from zerodown.service import Zerodown

__all__ = ["create_app"]

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


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
    expected = f"Bearer {token}".encode()

    def guarded(fn: Callable[[Request, dict[str, Any]], Any]) -> Handler:
        async def endpoint(request: Request) -> Response:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return JSONResponse(
                    {"error": {"code": "unauthorized", "message": "missing or wrong API token"}},
                    status_code=401,
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

    def list_services(request: Request, body: dict[str, Any]) -> Any:
        return {"services": [s.to_dict() for s in zd.services()]}

    def up(request: Request, body: dict[str, Any]) -> Any:
        release = zd.up(
            spec_text=_field(body, "spec_text", str),
            spec_path=_field(body, "spec_path", str),
            version=body.get("version"),
        )
        return JSONResponse({"release": release.to_dict()}, status_code=202)

    def get_service(request: Request, body: dict[str, Any]) -> Any:
        return zd.status_of(request.path_params["name"], resources=True).to_dict()

    def deploy(request: Request, body: dict[str, Any]) -> Any:
        release = zd.deploy(
            spec_text=_field(body, "spec_text", str),
            spec_path=_field(body, "spec_path", str),
            version=body.get("version"),
            strategy=body.get("strategy"),
            who=str(body.get("who") or "api"),
            force=bool(body.get("force", False)),
        )
        return JSONResponse({"release": release.to_dict()}, status_code=202)

    def control(action: str) -> Callable[[Request, dict[str, Any]], Any]:
        def handler(request: Request, body: dict[str, Any]) -> Any:
            name = request.path_params["name"]
            who = str(body.get("who") or "api")
            if action == "promote":
                message = zd.promote(name, full=bool(body.get("full")), who=who)
            elif action == "pause":
                message = zd.pause(name, who=who)
            elif action == "resume":
                message = zd.resume(name, who=who)
            elif action == "abort":
                message = zd.abort(name, reason=body.get("reason"), who=who)
            else:
                to = body.get("to")
                message = zd.rollback(name, to=int(to) if to is not None else None, who=who)
            return {"ok": True, "message": message}

        return handler

    def release(request: Request, body: dict[str, Any]) -> Any:
        try:
            revision = int(request.path_params["revision"])
        except ValueError:
            raise InputError("revision must be an integer") from None
        return zd.release(request.path_params["name"], revision)

    def report(request: Request, body: dict[str, Any]) -> Any:
        revision = body.get("revision")
        directory = body.get("directory")
        paths = zd.write_report(
            request.path_params["name"],
            revision=int(revision) if revision is not None else None,
            lang=str(body.get("lang") or "zh-TW"),
            directory=Path(directory) if directory else None,
        )
        return {"markdown": str(paths.markdown), "json": str(paths.json), "svg": str(paths.svg)}

    def stop_service(request: Request, body: dict[str, Any]) -> Any:
        return JSONResponse(zd.stop(request.path_params["name"]).to_dict(), status_code=202)

    def releases(request: Request, body: dict[str, Any]) -> Any:
        limit = _int_param(request, "limit", 50)
        items = zd.history(request.path_params["name"], limit=limit)
        return {"releases": [r.to_dict() for r in items]}

    def events(request: Request, body: dict[str, Any]) -> Any:
        return {
            "events": zd.events(
                request.query_params.get("service") or None,
                after_id=_int_param(request, "after", 0),
                limit=_int_param(request, "limit", 500),
            )
        }

    def logs(request: Request, body: dict[str, Any]) -> Any:
        since = request.query_params.get("since")
        tail = request.query_params.get("tail")
        page = zd.logs(
            request.path_params["name"],
            offset=_int_param(request, "offset", 0),
            since=float(since) if since else None,
            instance=request.query_params.get("instance") or None,
            pattern=request.query_params.get("pattern") or None,
            tail=int(tail) if tail else None,
            limit=_int_param(request, "limit", 1000),
        )
        return {"entries": [e.to_dict() for e in page.entries], "next_offset": page.next_offset}

    routes = [
        Route("/healthz", healthz),
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
        Route("/v1/events", guarded(events), methods=["GET"]),
    ]
    return Starlette(routes=routes)


def _wants_body(request: Request) -> bool:
    return request.method in ("POST", "PUT", "PATCH")


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InputError(f"request body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError("request body must be a JSON object")
    return data


def _field(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if not isinstance(value, kind):
        raise InputError(f"field {name!r} is required ({kind.__name__})")
    return value


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"query parameter {name!r} must be an integer, got {raw!r}") from None
