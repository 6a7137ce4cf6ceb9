"""The CLI's client of the controller's HTTP API.

Finds the controller through ``controller.json`` in the state directory, sends the token, and
turns error bodies back into the error tree so the CLI prints one line and the right exit code.
"""

from __future__ import annotations

from typing import Any

import httpx

from zerodown.core.errors import ControllerUnavailableError, ZerodownError, error_from_dict
from zerodown.core.state import StateDir

__all__ = ["ControllerClient"]


class ControllerClient:
    """Calls one controller's API; every failure is a ``ZerodownError``."""

    def __init__(self, state: StateDir, *, timeout: float = 30.0) -> None:
        self.state = state
        info = state.read_controller()
        token = state.token()
        if info is None or token is None:
            raise ControllerUnavailableError(
                f"no controller is running for {state.path}; start one with 'zerodown serve' "
                "(or 'zerodown serve --detach')"
            )
        self.url = info.url
        self._http = httpx.Client(
            base_url=info.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ControllerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        clean = {k: v for k, v in params.items() if v is not None}
        return self._call("GET", path, params=clean)

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._call("POST", path, json=body or {})

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ControllerUnavailableError(
                f"the controller at {self.url} does not answer ({exc.__class__.__name__}); "
                "is 'zerodown serve' running?"
            ) from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.is_success and isinstance(data, dict):
            return data
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            raise error_from_dict(data["error"])
        raise ZerodownError(f"controller answered {response.status_code} to {method} {path}")
