"""The proxy under change: drains, version switches, controller death, restarts and hand-overs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration.traffic.conftest import ProxyHandle
from tests.integration.traffic.helpers import BackgroundLoad, TinyUpstream, run_load, wait_for
from zerodown.traffic.base import Backend, ServiceRoutes, parse_address
from zerodown.traffic.proxy.launcher import read_proxy_info, restart_proxy

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def routes_for(
    listen: str, groups: dict[str, list[TinyUpstream]], weights: dict[str, int]
) -> ServiceRoutes:
    return ServiceRoutes(
        service="web",
        listen=parse_address(listen),
        groups={
            g: tuple(Backend(u.name, parse_address(u.address)) for u in m)
            for g, m in groups.items()
        },
        weights=weights,
    )


def test_drain_under_load_loses_nothing(
    proxy: ProxyHandle, upstream: Callable[[str], TinyUpstream], listen: str
) -> None:
    a, b = upstream("a"), upstream("b")
    proxy.router.apply(routes_for(listen, {"stable": [a, b]}, {"stable": 100}))
    with BackgroundLoad(
        listen, requests=40_000, concurrency=8, path="/sleep/5", max_seconds=30
    ) as load:
        assert wait_for(lambda: a.seen and load.result.total > 300, timeout=10)
        drained = proxy.router.drain("web", "a", timeout=10)
        seen_at_drain = len(a.seen)
        assert wait_for(lambda: load.result.total > 1200, timeout=15)
        a.stop()  # the drained instance goes away while the load goes on
        assert wait_for(lambda: load.result.total > 1600, timeout=15)
    result = load.result
    assert drained
    assert not result.failures, result.failures[:5]
    assert set(result.statuses) == {200}
    assert len(a.seen) == seen_at_drain  # not one request after the drain returned
    assert result.backends["b"] > 0
    metrics = proxy.router.metrics("web")
    assert [x.id for x in proxy.router.routes("web").groups["stable"]] == ["b"]  # type: ignore[union-attr]
    assert metrics.group("stable").requests == result.total


def test_blue_green_blue_switch_under_load_fails_zero_requests(
    proxy: ProxyHandle, upstream: Callable[[str], TinyUpstream], listen: str
) -> None:
    blue, green = upstream("blue"), upstream("green")
    groups = {"blue": [blue], "green": [green]}
    proxy.router.apply(routes_for(listen, groups, {"blue": 100, "green": 0}))
    with BackgroundLoad(listen, requests=60_000, concurrency=12, max_seconds=40) as load:
        for target in ("green", "blue", "green", "blue"):
            before = load.result.total
            proxy.router.apply(
                routes_for(
                    listen,
                    groups,
                    {"blue": 100 * (target == "blue"), "green": 100 * (target == "green")},
                )
            )
            switched_at = len((blue if target == "green" else green).seen)
            assert wait_for(lambda b=before: load.result.total > b + 1500, timeout=15)
            # after the switch only the target answers (allow what was in flight at the switch)
            other = blue if target == "green" else green
            assert len(other.seen) - switched_at <= 12
    result = load.result
    assert result.total >= 6000
    assert not result.failures, result.failures[:5]
    assert set(result.statuses) == {200}


def test_killed_controller_leaves_the_proxy_serving(
    proxy: ProxyHandle, upstream: Callable[[str], TinyUpstream], listen: str
) -> None:
    app = upstream("v1")
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from zerodown.traffic.base import Backend, ServiceRoutes, parse_address
        from zerodown.traffic.proxy.client import ProxyRouter
        from zerodown.traffic.proxy.launcher import ensure_proxy
        state = Path({str(proxy.state_dir)!r})
        ensure_proxy(state)
        ProxyRouter(state).apply(ServiceRoutes(service="web", listen=parse_address({listen!r}),
            groups={{"v1": (Backend("v1", parse_address({app.address!r})),)}},
            weights={{"v1": 100}}))
        print("configured", flush=True)
        time.sleep(60)
        """
    )
    controller = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    try:
        assert controller.stdout is not None
        assert controller.stdout.readline().strip() == b"configured"
        controller.send_signal(signal.SIGKILL)
        controller.wait(10)
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait(10)
    result = run_load(listen, requests=500, concurrency=4)
    assert result.statuses == {200: 500} and not result.failures
    assert psutil.Process(proxy.pid).is_running()


def test_restarted_proxy_reloads_its_last_routes(
    proxy: ProxyHandle, upstream: Callable[[str], TinyUpstream], listen: str
) -> None:
    a, b = upstream("a"), upstream("b")
    routes = routes_for(listen, {"stable": [a], "canary": [b]}, {"stable": 3, "canary": 1})
    proxy.router.apply(routes)
    old_pid = proxy.pid
    os.kill(old_pid, signal.SIGKILL)  # no chance to save anything at exit
    assert wait_for(
        lambda: (
            not psutil.pid_exists(old_pid)
            or psutil.Process(old_pid).status() == psutil.STATUS_ZOMBIE
        )
    )
    proxy.start()
    assert proxy.pid != old_pid
    assert proxy.router.routes("web") == routes
    result = run_load(listen, requests=400, concurrency=4)
    assert result.statuses == {200: 400}
    assert result.backends == {"a": 300, "b": 100}


def test_proxy_restart_under_load_fails_zero_requests(
    proxy: ProxyHandle, upstream: Callable[[str], TinyUpstream], listen: str
) -> None:
    a, b = upstream("a"), upstream("b")
    proxy.router.apply(routes_for(listen, {"stable": [a, b]}, {"stable": 100}))
    pids = [proxy.pid]
    with BackgroundLoad(listen, requests=100_000, concurrency=12, max_seconds=60) as load:
        for _ in range(2):
            before = load.result.total
            assert wait_for(lambda b=before: load.result.total > b + 1000, timeout=15)
            info = restart_proxy(proxy.state_dir, timeout=15, wait_old=20)
            proxy.pids.add(info.pid)
            assert info.pid not in pids
            pids.append(info.pid)
            # the old process drained and exited
            assert wait_for(
                lambda: (
                    not psutil.pid_exists(pids[-2])
                    or psutil.Process(pids[-2]).status() == psutil.STATUS_ZOMBIE
                ),
                timeout=20,
            )
        before = load.result.total
        assert wait_for(lambda: load.result.total > before + 1000, timeout=15)
    result = load.result
    assert not result.failures, result.failures[:5]
    assert set(result.statuses) == {200}
    assert result.total > 3000
    assert read_proxy_info(proxy.state_dir).pid == pids[-1]  # type: ignore[union-attr]
    assert proxy.router.routes("web") is not None
    assert httpx.get(f"http://{listen}/").status_code == 200


def test_drain_is_bounded_by_its_timeout_and_lets_the_request_finish(
    proxy: ProxyHandle, upstream: Callable[[str], TinyUpstream], listen: str
) -> None:
    slow, other = upstream("slow"), upstream("other")
    proxy.router.apply(routes_for(listen, {"stable": [slow, other]}, {"stable": 100}))
    with BackgroundLoad(
        listen, requests=1, concurrency=1, path="/sleep/1500", max_seconds=10
    ) as load:
        assert wait_for(lambda: len(slow.seen) + len(other.seen) == 1, timeout=5)
        busy = "slow" if slow.seen else "other"
        assert proxy.router.drain("web", busy, timeout=0.2) is False  # still in flight
        assert wait_for(lambda: load.result.total == 1, timeout=10)
    assert load.result.statuses == {200: 1}
    assert proxy.router.metrics("web").group("stable").in_flight == 0


def test_router_without_a_proxy_raises_a_temporary_error(tmp_path: Path) -> None:
    from zerodown.core.errors import TemporaryError
    from zerodown.traffic.proxy.client import ProxyRouter

    with pytest.raises(TemporaryError, match="does not answer"):
        ProxyRouter(tmp_path).routes("web")
