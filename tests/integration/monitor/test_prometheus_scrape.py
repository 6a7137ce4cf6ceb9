"""A real Prometheus scrapes zerodown's ``/metrics`` and counts what zerodown counts.

The controller runs for real (``zerodown serve``) with one local instance behind the built-in
proxy; the test sends a known number of requests, then starts Prometheus (the Debian package
``prometheus``) on loopback with a scrape job that authenticates with the controller's token
file (``authorization: {credentials_file: ...}``), and polls Prometheus' query API until its
counter agrees with the number zerodown itself reports (``zerodown metrics --json``) and with
the number of requests sent. ``promtool check metrics`` also lints the exposition.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require_component
from tests.fixtures.net import free_port
from tests.fixtures.zerodown import Controller, wait_until
from zerodown.core.state import StateDir

pytestmark = pytest.mark.integration

REQUESTS = 250


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        require_component("prometheus", "install the Debian package 'prometheus'")
    assert path is not None
    return path


@contextlib.contextmanager
def running_prometheus(
    binary: str, *, target: str, token_file: Path, folder: Path
) -> Iterator[str]:
    """Prometheus on 127.0.0.1 scraping ``target`` every second with the bearer token file."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "zerodown",
                "scrape_interval": "1s",
                "scrape_timeout": "900ms",
                "metrics_path": "/metrics",
                "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    config_path = folder / "prometheus.yml"
    config_path.write_text(json.dumps(config))  # JSON is YAML
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=log,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(
                    "prometheus exited: " + (folder / "prometheus.log").read_text()[-2000:]
                )
            try:
                return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=30, what="Prometheus to be ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5)
    body = response.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def test_prometheus_counts_the_same_requests_as_zerodown(
    controller: Controller, tmp_path: Path, prometheus_binary: str
) -> None:
    env = controller.env
    spec = env.write_spec(tmp_path, replicas=1)
    spec.write_text(spec.read_text() + "monitor:\n  interval: 1s\n")
    result = env.cli("up", str(spec), "--version", "v1")
    assert result.code == 0, result.stderr
    listen = env.cli("status", "demo", "--json").json()["listen"]
    with httpx.Client(timeout=5) as client:
        for _ in range(REQUESTS):
            assert client.get(f"http://{listen}/").status_code == 200

    state = StateDir(str(env.home))
    info, token = state.read_controller(), state.token()
    assert info is not None and token is not None
    exposition = httpx.get(
        f"{info.url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert exposition.status_code == 200
    assert exposition.headers["content-type"].startswith("text/plain; version=0.0.4")
    promtool = shutil.which("promtool")
    if promtool is not None:
        lint = subprocess.run(
            [promtool, "check", "metrics"],
            input=exposition.text,
            capture_output=True,
            text=True,
            check=False,
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
    assert httpx.get(f"{info.url}/metrics", timeout=10).status_code == 401

    def zerodown_count() -> int | None:
        data = env.cli("metrics", "demo", "--since", "10m", "--json").json()
        total = sum(v["requests_total"] for v in data["versions"].values())
        return total if total == REQUESTS else None

    own = wait_until(zerodown_count, timeout=60, what="zerodown to count every request")

    target = info.url.removeprefix("http://")
    with running_prometheus(
        prometheus_binary,
        target=target,
        token_file=env.home / "token",
        folder=tmp_path,
    ) as prometheus:

        def scraped() -> float | None:
            found = _query(prometheus, 'sum(zerodown_requests_total{service="demo"})')
            return float(found[0]["value"][1]) if found else None

        seen = wait_until(
            lambda: scraped() == own, timeout=60, what=f"Prometheus to count {own} requests"
        )
        assert seen
        [up] = _query(prometheus, 'up{job="zerodown"}')
        assert up["value"][1] == "1"
        by_version = _query(
            prometheus, 'sum by (version, code_class) (zerodown_requests_total{service="demo"}) > 0'
        )
        assert [
            (r["metric"]["version"], r["metric"]["code_class"], r["value"][1]) for r in by_version
        ] == [("v1", "2xx", str(REQUESTS))]
        [count] = _query(prometheus, 'sum(zerodown_request_duration_seconds_count{service="demo"})')
        assert float(count["value"][1]) == REQUESTS
    assert own == REQUESTS
