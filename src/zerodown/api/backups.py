"""The backup routes of the HTTP API: run, list, one, verify, restore, forget (retention),
targets, rollback data.

``backup_routes(zd, guarded)`` returns the Starlette routes; ``create_app`` adds them behind
the same guard as every other route. The contract is ``_backup_paths`` in ``api/openapi.py``.
A backup runs inside the request (the answer carries its catalogue entry), so clients give
these calls a long timeout.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from zerodown.api.openapi import MAX_COUNT, MAX_ID
from zerodown.service import Zerodown

__all__ = ["backup_routes"]

Guard = Callable[[Callable[[Request, dict[str, Any]], Any]], Any]

_TARGET = re.compile(r"[a-z][a-z0-9-]{0,39}")


def backup_routes(zd: Zerodown, guarded: Guard) -> list[Route]:
    """The routes under ``/v1/services/{name}/backups`` and ``rollback-data``."""
    # The field parsers live with the app; imported here because the app imports this module.
    from zerodown.api.app import FieldError, _bool, _int_param, _name, _path_str, _str

    def backup_id(request: Request) -> int:
        raw = request.path_params["id"]
        if not re.fullmatch(r"[0-9]{1,16}", raw) or not 1 <= int(raw) <= MAX_ID:
            raise FieldError("id", f"must be an integer from 1 to {MAX_ID}, got {raw!r}")
        return int(raw)

    def target_name(value: str | None, field: str) -> str | None:
        if value is not None and not _TARGET.fullmatch(value):
            raise FieldError(field, f"a target name matches [a-z][a-z0-9-]{{0,39}}, got {value!r}")
        return value

    def list_backups(request: Request, body: dict[str, Any]) -> Any:
        target = target_name(request.query_params.get("target") or None, "target")
        limit = _int_param(request, "limit", 100, minimum=1, maximum=MAX_COUNT)
        return {"backups": zd.backup_list(_name(request), target=target, limit=limit)}

    def run_backup(request: Request, body: dict[str, Any]) -> Any:
        target = target_name(_str(body, "target"), "target")
        verify = body.get("verify") is None or _bool(body, "verify")  # on unless false
        return JSONResponse(
            zd.backup_run(_name(request), target=target, verify=verify), status_code=201
        )

    def forget(request: Request, body: dict[str, Any]) -> Any:
        target = target_name(_str(body, "target"), "target")
        return zd.backup_forget(_name(request), target=target, dry_run=_bool(body, "dry_run"))

    def get_backup(request: Request, body: dict[str, Any]) -> Any:
        return zd.backup_get(_name(request), backup_id(request))

    def verify(request: Request, body: dict[str, Any]) -> Any:
        return zd.backup_verify(_name(request), backup_id(request))

    def restore(request: Request, body: dict[str, Any]) -> Any:
        return zd.backup_restore(
            _name(request),
            backup_id(request),
            destination=_path_str(body, "destination"),
            force=_bool(body, "force"),
        )

    def targets(request: Request, body: dict[str, Any]) -> Any:
        return {"targets": zd.backup_targets(_name(request))}

    def rollback_data(request: Request, body: dict[str, Any]) -> Any:
        to = _int_param(request, "to", 0, minimum=0, maximum=MAX_ID)
        return zd.rollback_data(_name(request), to=to or None)

    return [
        Route("/v1/services/{name}/backups", guarded(list_backups), methods=["GET"]),
        Route("/v1/services/{name}/backups", guarded(run_backup), methods=["POST"]),
        Route("/v1/services/{name}/backups/targets", guarded(targets), methods=["GET"]),
        Route("/v1/services/{name}/backups/forget", guarded(forget), methods=["POST"]),
        Route("/v1/services/{name}/backups/{id}", guarded(get_backup), methods=["GET"]),
        Route("/v1/services/{name}/backups/{id}/verify", guarded(verify), methods=["POST"]),
        Route("/v1/services/{name}/backups/{id}/restore", guarded(restore), methods=["POST"]),
        Route("/v1/services/{name}/rollback-data", guarded(rollback_data), methods=["GET"]),
    ]
