"""The proxy's admin API: a small JSON-over-HTTP server on loopback, guarded by a token.

Not on the hot path, so it uses asyncio streams and one request per connection. Every call
except ``GET /v1/health`` needs ``Authorization: Bearer <token>`` (the token file is mode 0600
in the state directory). Errors come back as ``{"code": ..., "message": ...}`` with the status
of their place in the error tree (400 bad input, 404 not found, 503 temporary).

    GET    /v1/health                              {"ok": true, "pid": ...}
    GET    /v1/services                            {"services": {name: routes}}
    GET    /v1/services/{s}                        routes
    PUT    /v1/services/{s}                        routes -> apply the whole table
    DELETE /v1/services/{s}                        stop serving it
    PUT    /v1/services/{s}/weights                {"weights": {group: int}}
    POST   /v1/services/{s}/backends               {"group", "id", "address"}
    DELETE /v1/services/{s}/backends/{id}          out of the table now, drains in the background
    POST   /v1/services/{s}/backends/{id}/drain    {"timeout": s} -> {"drained": bool}
    GET    /v1/services/{s}/metrics                ServiceMetrics as JSON
    GET    /v1/metrics                             every service's metrics
    GET    /metrics                                Prometheus text format
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
from typing import Any
from urllib.parse import unquote

from zerodown.core.errors import InputError, NotFoundError, TemporaryError, ZerodownError
from zerodown.core.types import Address
from zerodown.traffic.base import Backend, parse_address, routes_from_dict, routes_to_dict
from zerodown.traffic.proxy.dataplane import DataPlane
from zerodown.traffic.proxy.metrics import render_prometheus

__all__ = ["AdminServer"]

log = logging.getLogger(__name__)

_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


class _HttpError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AdminServer:
    """Serves the admin API for one ``DataPlane``."""

    def __init__(self, plane: DataPlane, token: str) -> None:
        self.plane = plane
        self._token = token.encode()
        self._server: asyncio.AbstractServer | None = None

    async def start(self, address: Address) -> Address:
        """Listen on ``address`` (port 0 picks one); returns where it listens."""
        self._server = await asyncio.start_server(
            self._handle, address.host, address.port, limit=_MAX_HEAD
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        return Address(host, port)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, content_type, body = await self._serve_one(reader)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        reason = _REASONS.get(status, "Error")
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + body)
            await writer.drain()
        writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        try:
            method, target, _ = lines[0].split(" ", 2)
        except ValueError:
            return _json(400, {"code": "bad_input", "message": "bad request line"})
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        if length > _MAX_BODY:
            return _json(400, {"code": "bad_input", "message": "body too large"})
        body = await reader.readexactly(length) if length else b""
        path = target.partition("?")[0]
        try:
            if path != "/v1/health":
                self._check_token(headers.get("authorization", ""))
            return await self._route(method, [unquote(p) for p in path.split("/")[1:]], body)
        except _HttpError as exc:
            return _json(exc.status, {"code": exc.code, "message": str(exc)})
        except ZerodownError as exc:
            return _json(_status_of(exc), exc.to_dict())
        except Exception as exc:
            log.exception("admin request %s %s failed", method, path)
            return _json(500, {"code": "internal", "message": f"{type(exc).__name__}: {exc}"})

    def _check_token(self, authorization: str) -> None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), self._token):
            raise _HttpError(401, "unauthorized", "missing or wrong admin token")

    async def _route(self, method: str, parts: list[str], body: bytes) -> tuple[int, str, bytes]:
        plane = self.plane
        match method, parts:
            case "GET", ["v1", "health"]:
                return _json(200, {"ok": True, "pid": os.getpid()})
            case "GET", ["metrics"]:
                snapshots = {name: plane.metrics(name) for name in plane.services}
                text = render_prometheus(snapshots).encode()
                return 200, "text/plain; version=0.0.4; charset=utf-8", text
            case "GET", ["v1", "metrics"]:
                return _json(200, {name: plane.metrics(name).to_dict() for name in plane.services})
            case "GET", ["v1", "services"]:
                return _json(
                    200,
                    {
                        "services": {
                            n: routes_to_dict(s.table.routes) for n, s in plane.services.items()
                        }
                    },
                )
            case "GET", ["v1", "services", name]:
                routes = plane.routes(name)
                if routes is None:
                    raise NotFoundError(f"the proxy has no service {name!r}")
                return _json(200, routes_to_dict(routes))
            case "PUT", ["v1", "services", name]:
                data = _body(body)
                data.setdefault("service", name)
                if data["service"] != name:
                    raise InputError("the service in the body differs from the one in the path")
                routes = routes_from_dict(data)
                await plane.apply(routes)
                return _json(200, routes_to_dict(routes))
            case "DELETE", ["v1", "services", name]:
                await plane.remove_service(name)
                return _json(200, {"removed": name})
            case "PUT", ["v1", "services", name, "weights"]:
                weights = _body(body).get("weights")
                if not isinstance(weights, dict):
                    raise InputError('expected {"weights": {group: integer}}')
                routes = await plane.set_weights(name, {str(k): v for k, v in weights.items()})
                return _json(200, routes_to_dict(routes))
            case "POST", ["v1", "services", name, "backends"]:
                data = _body(body)
                try:
                    backend = Backend(str(data["id"]), parse_address(str(data["address"])))
                    group = str(data["group"])
                except KeyError as exc:
                    raise InputError(f"missing field {exc}") from exc
                routes = await plane.add_backend(name, group, backend)
                return _json(200, routes_to_dict(routes))
            case "DELETE", ["v1", "services", name, "backends", backend_id]:
                await plane.remove_backend(name, backend_id)
                return _json(200, routes_to_dict(plane._service(name).table.routes))
            case "POST", ["v1", "services", name, "backends", backend_id, "drain"]:
                timeout = float(_body(body).get("timeout", plane.limits.drain_timeout))
                drained = await plane.drain(name, backend_id, timeout=timeout)
                return _json(200, {"drained": drained})
            case "GET", ["v1", "services", name, "metrics"]:
                return _json(200, plane.metrics(name).to_dict())
        raise _HttpError(404, "not_found", f"no route {method} /{'/'.join(parts)}")


def _body(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise InputError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError("body must be a JSON object")
    return data


def _json(status: int, data: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(data).encode()


def _status_of(exc: ZerodownError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, TemporaryError):
        return 503
    return 500
