"""The monitor's routes of the HTTP API: ``/metrics``, a service's figures, alerts, silences.

``monitor_routes(zd, guarded)`` returns the Starlette routes; ``create_app`` adds them behind the
same guard as every other route, so Prometheus scrapes ``/metrics`` with the API token
(``authorization: {credentials_file: <state>/token}`` in its scrape configuration). The contract
is ``_monitor_paths`` in ``api/openapi.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from zerodown.monitor.exposition import CONTENT_TYPE
from zerodown.service import Zerodown

__all__ = ["monitor_routes"]

Guard = Callable[[Callable[[Request, dict[str, Any]], Any]], Any]

MAX_SILENCE_SECONDS: Final = 366 * 86400.0
"""A silence lasts at most a year: longer is a rule to delete, not an alert to mute."""
SILENCE_STATES: Final = ("pending", "active", "expired")


def monitor_routes(zd: Zerodown, guarded: Guard) -> list[Route]:
    """The routes of the monitor."""
    # The field parsers live with the app; imported here because the app imports this module.
    from zerodown.api.app import FieldError, _float_param, _name, _str

    def exposition(request: Request, body: dict[str, Any]) -> Any:
        return Response(zd.metrics_text(), media_type=CONTENT_TYPE)

    def service_metrics(request: Request, body: dict[str, Any]) -> Any:
        name = _name(request)
        since = _float_param(request, "since")
        until = _float_param(request, "until")
        step = _float_param(request, "step")
        if step is not None and step <= 0:
            raise FieldError("step", f"query parameter must be above 0, got {step!r}")
        if since is not None and until is not None and since >= until:
            raise FieldError("since", "must be before until")
        return zd.metrics(name, since=since, until=until, step=step)

    def alerts(request: Request, body: dict[str, Any]) -> Any:
        raw = request.query_params.get("resolved", "false").strip().lower()
        if raw not in ("true", "false", "1", "0", ""):
            raise FieldError("resolved", f"query parameter must be true or false, got {raw!r}")
        return zd.alerts(include_resolved=raw in ("true", "1"))

    def list_silences(request: Request, body: dict[str, Any]) -> Any:
        state = request.query_params.get("state") or None
        if state is not None and state not in SILENCE_STATES:
            raise FieldError("state", f"choose pending, active or expired, got {state!r}")
        return {"silences": zd.silences(state=state)}

    def add_silence(request: Request, body: dict[str, Any]) -> Any:
        matchers = body.get("matchers")
        if (
            not isinstance(matchers, list)
            or not matchers
            or not all(isinstance(m, str) and m.strip() for m in matchers)
        ):
            raise FieldError(
                "matchers", 'must be a non-empty list of matchers such as "service=web"'
            )
        comment = _str(body, "comment")
        if comment is None or not comment.strip():
            raise FieldError("comment", "is required: say why the alerts are muted")
        now = datetime.now(UTC)
        starts_at = _time(body, "starts_at")
        ends_at = _time(body, "ends_at")
        duration = body.get("duration")
        if duration is not None:
            if (
                isinstance(duration, bool)
                or not isinstance(duration, int | float)
                or not math.isfinite(duration)
                or not 0 < duration <= MAX_SILENCE_SECONDS
            ):
                raise FieldError(
                    "duration", f"must be a number of seconds from 1 to {MAX_SILENCE_SECONDS:.0f}"
                )
            if ends_at is not None:
                raise FieldError("duration", "give duration or ends_at, not both")
            ends_at = (starts_at or now) + timedelta(seconds=float(duration))
        if ends_at is None:
            raise FieldError("ends_at", "is required (or give duration in seconds)")
        if ends_at - (starts_at or now) > timedelta(seconds=MAX_SILENCE_SECONDS):
            raise FieldError("ends_at", "a silence lasts at most a year")
        silence = zd.add_silence(
            [str(m) for m in matchers],
            ends_at=ends_at,
            starts_at=starts_at,
            created_by=_str(body, "created_by") or _str(body, "who") or "api",
            comment=comment,
        )
        return JSONResponse({"silence": silence}, status_code=201)

    def expire_silence(request: Request, body: dict[str, Any]) -> Any:
        silence_id = request.path_params["id"]
        if not 0 < len(silence_id) <= 100:
            raise FieldError("id", "must be a silence id")
        return {"silence": zd.expire_silence(silence_id)}

    def _time(body: dict[str, Any], name: str) -> datetime | None:
        text = _str(body, name)
        if text is None:
            return None
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise FieldError(name, f"must be an ISO 8601 time, got {text!r}") from None
        if moment.tzinfo is None:
            raise FieldError(name, "needs an offset (Z for UTC)")
        if not datetime(1970, 1, 2, tzinfo=UTC) < moment < datetime(9000, 1, 1, tzinfo=UTC):
            raise FieldError(name, f"is out of range: {text!r}")
        return moment.astimezone(UTC)

    return [
        Route("/metrics", guarded(exposition), methods=["GET"]),
        Route("/v1/services/{name}/metrics", guarded(service_metrics), methods=["GET"]),
        Route("/v1/alerts", guarded(alerts), methods=["GET"]),
        Route("/v1/silences", guarded(list_silences), methods=["GET"]),
        Route("/v1/silences", guarded(add_silence), methods=["POST"]),
        Route("/v1/silences/{id}/expire", guarded(expire_silence), methods=["POST"]),
    ]
