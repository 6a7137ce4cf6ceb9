"""``ProxyRouter``: the ``TrafficRouter`` the engine uses, talking to the proxy's admin API.

It reads ``proxy.json`` (admin address) and the token from the state directory on every call,
so it follows the proxy across restarts. Transport failures become ``TemporaryError`` ("the
proxy does not answer"); the API's error bodies become the matching error of the tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from zerodown.core.errors import (
    InputError,
    NotFoundError,
    OperationFailedError,
    TemporaryError,
)
from zerodown.traffic.base import (
    Backend,
    ServiceMetrics,
    ServiceRoutes,
    routes_from_dict,
    routes_to_dict,
)
from zerodown.traffic.proxy.config import ProxyPaths
from zerodown.traffic.proxy.launcher import read_proxy_info

__all__ = ["ProxyRouter"]


class ProxyRouter:
    """Drives the built-in proxy of one state directory."""

    name = "proxy"

    def __init__(self, state_dir: Path, *, timeout: float = 10.0) -> None:
        self.paths = ProxyPaths(Path(state_dir).resolve())
        self.timeout = timeout

    # --- TrafficRouter ------------------------------------------------------------------------

    def apply(self, routes: ServiceRoutes) -> None:
        self._call("PUT", f"/v1/services/{quote(routes.service)}", routes_to_dict(routes))

    def routes(self, service: str) -> ServiceRoutes | None:
        try:
            return routes_from_dict(self._call("GET", f"/v1/services/{quote(service)}"))
        except NotFoundError:
            return None

    def drain(self, service: str, backend_id: str, *, timeout: float) -> bool:
        path = f"/v1/services/{quote(service)}/backends/{quote(backend_id, safe='')}/drain"
        data = self._call("POST", path, {"timeout": timeout}, timeout=timeout + self.timeout)
        return bool(data["drained"])

    def remove_service(self, service: str) -> None:
        self._call("DELETE", f"/v1/services/{quote(service)}")

    def metrics(self, service: str) -> ServiceMetrics:
        return ServiceMetrics.from_dict(self._call("GET", f"/v1/services/{quote(service)}/metrics"))

    # --- finer operations ---------------------------------------------------------------------

    def services(self) -> dict[str, ServiceRoutes]:
        data = self._call("GET", "/v1/services")
        return {name: routes_from_dict(r) for name, r in data["services"].items()}

    def set_weights(self, service: str, weights: dict[str, int]) -> ServiceRoutes:
        data = self._call("PUT", f"/v1/services/{quote(service)}/weights", {"weights": weights})
        return routes_from_dict(data)

    def add_backend(self, service: str, group: str, backend: Backend) -> ServiceRoutes:
        body = {"group": group, "id": backend.id, "address": str(backend.address)}
        return routes_from_dict(self._call("POST", f"/v1/services/{quote(service)}/backends", body))

    def remove_backend(self, service: str, backend_id: str) -> ServiceRoutes:
        path = f"/v1/services/{quote(service)}/backends/{quote(backend_id, safe='')}"
        return routes_from_dict(self._call("DELETE", path))

    def prometheus(self) -> str:
        return str(self._call("GET", "/metrics", raw=True))

    # --- transport ------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        raw: bool = False,
    ) -> Any:
        info = read_proxy_info(self.paths.state_dir)
        if info is None:
            raise TemporaryError(f"the proxy does not answer: no {self.paths.info}")
        try:
            token = self.paths.token.read_text(encoding="ascii").strip()
        except OSError as exc:
            raise TemporaryError(
                f"the proxy does not answer: cannot read its token: {exc}"
            ) from exc
        try:
            response = httpx.request(
                method,
                f"{info.admin.url}{path}",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=timeout or self.timeout,
            )
        except httpx.HTTPError as exc:
            raise TemporaryError(
                f"the proxy does not answer at {info.admin}: {exc}", retry_after=1.0
            ) from exc
        if response.status_code == 200:
            return response.text if raw else response.json()
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        if response.status_code == 404:
            raise NotFoundError(message)
        if response.status_code == 400:
            raise InputError(message)
        if response.status_code == 503:
            raise TemporaryError(message)
        raise OperationFailedError(
            f"proxy admin API {method} {path}: {response.status_code} {message}"
        )
