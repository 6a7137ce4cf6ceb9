"""The disaster-recovery routes of the HTTP API: write the DR plan, run a drill.

``dr_routes(zd, guarded)`` returns the Starlette routes; ``create_app`` adds them behind the
same guard as every other route. The contract is ``_dr_paths`` in ``api/openapi.py``. A drill
runs inside the request (restore, start, smoke tests, clean-up: up to the spec's drill timeout
plus the restores), so clients give it a long timeout; a drill that fails is still a 200 whose
``status`` is ``failed``: the failure is the finding.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from zerodown.service import Zerodown

__all__ = ["dr_routes"]

Guard = Callable[[Callable[[Request, dict[str, Any]], Any]], Any]


def dr_routes(zd: Zerodown, guarded: Guard) -> list[Route]:
    """The routes under ``/v1/services/{name}/dr``."""
    # The field parsers live with the app; imported here because the app imports this module.
    from zerodown.api.app import FieldError, _name, _path_str

    def plan(request: Request, body: dict[str, Any]) -> Any:
        raw = _path_str(body, "path")
        path = None
        if raw is not None:
            path = Path(raw)
            if not path.is_absolute() or path.suffix != ".md":
                raise FieldError("path", f"expected an absolute path to a .md file, got {raw!r}")
            if not path.parent.is_dir():
                raise FieldError("path", f"the folder {str(path.parent)!r} does not exist")
        return zd.dr_plan(_name(request), path=path).to_dict()

    def drill(request: Request, body: dict[str, Any]) -> Any:
        return zd.dr_drill(_name(request)).to_dict()

    return [
        Route("/v1/services/{name}/dr/plan", guarded(plan), methods=["POST"]),
        Route("/v1/services/{name}/dr/drill", guarded(drill), methods=["POST"]),
    ]
