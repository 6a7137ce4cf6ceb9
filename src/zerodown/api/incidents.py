"""The incident routes of the HTTP API: list, stats, one, ack, resolve, postmortem.

``incident_routes(zd, guarded)`` returns the Starlette routes; ``create_app`` adds them behind
the same guard (token or dashboard session) as every other route. The contract is
``_incident_paths`` in ``api/openapi.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from zerodown.api.openapi import MAX_COUNT, MAX_ID
from zerodown.service import Zerodown

__all__ = ["incident_routes"]

Guard = Callable[[Callable[[Request, dict[str, Any]], Any]], Any]


def incident_routes(zd: Zerodown, guarded: Guard) -> list[Route]:
    """The routes of ``/v1/incidents``; ``stats`` comes before ``{id}`` so it is not an id."""
    # The field parsers live with the app; imported here because the app imports this module.
    from zerodown.api.app import FieldError, _bool, _check_name, _int_param, _path_str, _str

    def incident_id(request: Request) -> int:
        raw = request.path_params["id"]
        if not re.fullmatch(r"[0-9]{1,16}", raw) or not 1 <= int(raw) <= MAX_ID:
            raise FieldError("id", f"must be an integer from 1 to {MAX_ID}, got {raw!r}")
        return int(raw)

    def service_param(request: Request) -> str | None:
        service = request.query_params.get("service") or None
        return _check_name("service", service) if service is not None else None

    def list_incidents(request: Request, body: dict[str, Any]) -> Any:
        raw_open = request.query_params.get("open", "false").strip().lower()
        if raw_open not in ("true", "false", "1", "0", ""):
            raise FieldError("open", f"query parameter must be true or false, got {raw_open!r}")
        records = zd.incidents.list(
            service_param(request),
            open_only=raw_open in ("true", "1"),
            limit=_int_param(request, "limit", 100, minimum=1, maximum=MAX_COUNT),
        )
        return {"incidents": [r.to_dict() for r in records]}

    def stats(request: Request, body: dict[str, Any]) -> Any:
        return zd.incidents.stats(service_param(request)).to_dict()

    def get_incident(request: Request, body: dict[str, Any]) -> Any:
        return zd.incidents.get(incident_id(request)).to_dict()

    def ack(request: Request, body: dict[str, Any]) -> Any:
        number = incident_id(request)
        who = _str(body, "who") or "api"
        return zd.incidents.ack(number, who=who, note=_str(body, "note")).to_dict()

    def resolve(request: Request, body: dict[str, Any]) -> Any:
        number = incident_id(request)
        who = _str(body, "who") or "api"
        return zd.incidents.resolve(number, who=who, note=_str(body, "note")).to_dict()

    def postmortem(request: Request, body: dict[str, Any]) -> Any:
        number = incident_id(request)
        who = _str(body, "who") or "api"
        note = _str(body, "note")
        force = _bool(body, "force")
        directory = _path_str(body, "directory")
        if _bool(body, "reviewed"):
            record = zd.incidents.review(number, who=who, force=force, note=note)
            return {"path": record.postmortem_path, "markdown": None, "incident": record.to_dict()}
        path, markdown = zd.write_postmortem(
            number, directory=Path(directory) if directory else None
        )
        return {
            "path": str(path),
            "markdown": markdown,
            "incident": zd.incidents.get(number).to_dict(),
        }

    return [
        Route("/v1/incidents", guarded(list_incidents), methods=["GET"]),
        Route("/v1/incidents/stats", guarded(stats), methods=["GET"]),
        Route("/v1/incidents/{id}", guarded(get_incident), methods=["GET"]),
        Route("/v1/incidents/{id}/ack", guarded(ack), methods=["POST"]),
        Route("/v1/incidents/{id}/resolve", guarded(resolve), methods=["POST"]),
        Route("/v1/incidents/{id}/postmortem", guarded(postmortem), methods=["POST"]),
    ]
