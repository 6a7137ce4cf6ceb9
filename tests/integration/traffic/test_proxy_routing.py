"""Routing through a real proxy process: weights, sticky cookies, match rules, retries, metrics."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.integration.traffic.conftest import ProxyHandle
from tests.integration.traffic.helpers import TinyUpstream, run_load
from zerodown.core.errors import InputError, NotFoundError
from zerodown.traffic.base import Backend, MatchRule, ServiceRoutes, TrafficRouter, parse_address

pytestmark = pytest.mark.integration


def make_routes(
    listen: str,
    groups: dict[str, list[TinyUpstream]],
    weights: dict[str, int],
    **kwargs: object,
) -> ServiceRoutes:
    return ServiceRoutes(
        service="web",
        listen=parse_address(listen),
        groups={
            g: tuple(Backend(u.name, parse_address(u.address)) for u in members)
            for g, members in groups.items()
        },
        weights=weights,
        **kwargs,  # type: ignore[arg-type]
    )


def test_router_satisfies_the_protocol(proxy: ProxyHandle) -> None:
    assert isinstance(proxy.router, TrafficRouter)


def test_weighted_split_is_within_two_percent_over_10000_requests(
    proxy: ProxyHandle, upstream: Callable[[str], TinyUpstream], listen: str
) -> None:
    stable = [upstream("stable-1"), upstream("stable-2")]
    canary = [upstream("canary-1")]
    proxy.router.apply(
        make_routes(listen, {"stable": stable, "canary": canary}, {"stable": 77, "canary": 23})
    )
    result = run_load(listen, requests=10_000, concurrency=16)
    assert not result.failures
    assert result.statuses == {200: 10_000}
    canary_share = result.backends["canary-1"] / 10_000
    assert abs(canary_share - 0.23) <= 0.02
    # instances inside a group take turns
    assert abs(result.backends["stable-1"] - result.backends["stable-2"]) <= 16
    metrics = proxy.router.metrics("web")
    assert metrics.group("canary").requests == result.backends["canary-1"]
    assert (
        metrics.group("stable").responses["2xx"]
        == result.backends["stable-1"] + result.backends["stable-2"]
    )
    assert metrics.group("canary").latency.count == result.backends["canary-1"]
    p50, p99 = (
        metrics.group("stable").latency.quantile(0.5),
        metrics.group("stable").latency.quantile(0.99),
    )
    assert p50 is not None and p99 is not None and 0 < p50 <= p99


def test_sticky_cookie_keeps_a_client_on_its_version(
    proxy: ProxyHandle, upstream: Callable[[str], TinyUpstream], listen: str
) -> None:
    a, b = upstream("a"), upstream("b")
    proxy.router.apply(make_routes(listen, {"a": [a], "b": [b]}, {"a": 50, "b": 50}, sticky=True))
    with httpx.Client(base_url=f"http://{listen}") as client:
        first = client.get("/")
        cookie = first.headers["set-cookie"]
        assert cookie.startswith("zerodown_web=") and "Path=/" in cookie
        version = first.headers["x-backend"]
        for _ in range(30):
            r = client.get("/")  # the client sends the cookie back
            assert r.headers["x-backend"] == version
            assert "set-cookie" not in r.headers
    # the group given by a cookie is honoured even for a fresh client
    for name in ("a", "b"):
        with httpx.Client(base_url=f"http://{listen}", cookies={"zerodown_web": name}) as client:
            assert {client.get("/").headers["x-backend"] for _ in range(10)} == {name}
    # once its group has no weight, the client moves and gets a new cookie
    proxy.router.apply(make_routes(listen, {"a": [a], "b": [b]}, {"a": 0, "b": 100}, sticky=True))
    with httpx.Client(base_url=f"http://{listen}", cookies={"zerodown_web": "a"}) as client:
        r = client.get("/")
        assert r.headers["x-backend"] == "b"
        assert "zerodown_web=b" in r.headers["set-cookie"]


def test_header_and_cookie_rules_route_matching_requests(
    proxy: ProxyHandle, upstream: Callable[[str], TinyUpstream], listen: str
) -> None:
    stable, preview = upstream("stable"), upstream("preview")
    rules = (
        MatchRule(group="preview", header="X-Preview", value="yes"),
        MatchRule(group="preview", cookie="beta", value="1"),
    )
    proxy.router.apply(
        make_routes(
            listen, {"stable": [stable], "preview": [preview]}, {"stable": 100}, rules=rules
        )
    )
    ruled = run_load(listen, requests=200, concurrency=4, headers={"x-preview": "yes"})
    assert ruled.backends == {"preview": 200}
    other = run_load(listen, requests=200, concurrency=4, headers={"X-Preview": "no"})
    assert other.backends == {"stable": 200}
    by_cookie = run_load(listen, requests=50, concurrency=2, headers={"Cookie": "a=b; beta=1"})
    assert by_cookie.backends == {"preview": 50}


def test_connect_failure_is_retried_on_another_instance(
    proxy: ProxyHandle, upstream: Callable[[str], TinyUpstream], listen: str, dead_address: str
) -> None:
    alive = upstream("alive")
    dead = Backend("dead", parse_address(dead_address))
    routes = ServiceRoutes(
        service="web",
        listen=parse_address(listen),
        groups={"stable": (dead, Backend("alive", parse_address(alive.address)))},
        weights={"stable": 100},
    )
    proxy.router.apply(routes)
    result = run_load(listen, requests=200, concurrency=4)
    assert not result.failures and result.statuses == {200: 200}
    metrics = proxy.router.metrics("web")
    assert metrics.instances["dead"].connect_errors >= 50
    assert metrics.instances["alive"].requests == 200


def test_no_instance_answers_502_and_no_group_answers_503(
    proxy: ProxyHandle, listen: str, dead_address: str
) -> None:
    dead = Backend("dead", parse_address(dead_address))
    routes = ServiceRoutes(
        service="web", listen=parse_address(listen), groups={"g": (dead,)}, weights={"g": 1}
    )
    proxy.router.apply(routes)
    assert httpx.get(f"http://{listen}/").status_code == 502
    proxy.router.apply(
        ServiceRoutes(
            service="web", listen=parse_address(listen), groups={"g": ()}, weights={"g": 1}
        )
    )
    assert httpx.get(f"http://{listen}/").status_code == 503
    metrics = proxy.router.metrics("web")
    assert metrics.unrouted == 1
    assert metrics.group("g").responses["5xx"] == 1 and metrics.group("g").connect_errors == 1


def test_admin_api_operations_and_prometheus(
    proxy: ProxyHandle, upstream: Callable[[str], TinyUpstream], listen: str
) -> None:
    a, b = upstream("a"), upstream("b")
    router = proxy.router
    router.apply(make_routes(listen, {"v1": [a]}, {"v1": 100}))
    router.add_backend("web", "v2", Backend("b", parse_address(b.address)))
    router.set_weights("web", {"v1": 0, "v2": 100})
    assert run_load(listen, requests=20, concurrency=2).backends == {"b": 20}
    routes = router.routes("web")
    assert routes is not None and routes.weights == {"v1": 0, "v2": 100}
    assert [x.id for x in routes.groups["v2"]] == ["b"]
    router.remove_backend("web", "a")
    assert "a" not in [x.id for x in router.routes("web").groups["v1"]]  # type: ignore[union-attr]
    text = router.prometheus()
    assert 'zerodown_proxy_group_requests_total{service="web",group="v2"} 20' in text
    assert (
        'zerodown_proxy_group_request_duration_seconds_count{service="web",group="v2"} 20' in text
    )
    with pytest.raises(InputError):
        router.set_weights("web", {"nope": 5})
    with pytest.raises(NotFoundError):
        router.metrics("missing")
    assert router.routes("missing") is None
    # no token, no access
    info_admin = router.paths.info.read_text()
    assert (
        httpx.get(f"http://{__import__('json').loads(info_admin)['admin']}/v1/services").status_code
        == 401
    )
    router.remove_service("web")
    assert router.routes("web") is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{listen}/")
