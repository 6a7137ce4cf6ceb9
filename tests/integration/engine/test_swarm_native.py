"""``strategy: native`` on a real single-node swarm: Swarm's own update, zerodown's judge.

v1 comes up as ONE Swarm service of 3 tasks, each on a dynamic host-mode port behind zerodown's
proxy. A good v2 is rolled out by Swarm's ``update_config`` (start-first, one task at a time)
under bounded load and ends promoted with no client-visible failure; an erroring v3 (half of its
answers are 500s) is failed by the judge and undone by Swarm's own rollback, and the report says
so. Stopping the service removes the Swarm service and its containers. A controller killed
right after deciding (before Swarm is asked) is restarted and finishes both from Swarm's state.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.net import free_port
from tests.fixtures.zerodown import Controller, Env, start_controller, wait_until
from tests.integration.engine.test_rollouts import Load, assert_no_rollout_failures

# Tests that use the Docker engine run on their own, one at a time (see the Makefile).
pytestmark = [pytest.mark.integration, pytest.mark.docker]

NATIVE = (
    "  native: {parallelism: 1, delay: 1s, order: start-first, failureAction: pause, monitor: 2s}\n"
)


def native_spec(*, image: str, port: int, env: dict[str, str] | None = None) -> str:
    env_block = "".join(f'  {k}: "{v}"\n' for k, v in (env or {}).items())
    return (
        "service: shop\n"
        "platform: swarm\n"
        "run:\n"
        f"  image: {image}\n"
        "  containerPort: 8080\n"
        "  stopGraceSeconds: 5s\n"
        "replicas: 3\n" + (f"env:\n{env_block}" if env_block else "") + "healthCheck:\n"
        "  http: {path: /healthz}\n"
        "  interval: 300ms\n"
        "  timeout: 250ms\n"
        "  startupGrace: 10s\n"
        "traffic:\n"
        f"  listen: 127.0.0.1:{port}\n"
        "analysis:\n  interval: 300ms\n  minRequests: 30\n  maxWait: 30s\n"
        "  minLatencyIncrease: 25ms\n"
        f"strategy:\n{NATIVE}"
    )


def swarm_service(engine: Any) -> Any | None:
    found = [s for s in engine.services.list() if s.name == "shop"]
    return found[0] if found else None


def leftovers(engine: Any) -> list[str]:
    containers = engine.containers.list(all=True, filters={"label": "zerodown.service=shop"})
    services = [s.name for s in engine.services.list() if s.name.startswith("shop")]
    return services + [c.name for c in containers]


def report_of(env_home: Path, tmp_path: Path, revision: int) -> dict[str, Any]:
    for path in sorted(tmp_path.glob("**/.claude/context/deployment/*.json")):
        data = json.loads(path.read_text())
        if (data.get("release") or {}).get("revision") == revision:
            return dict(data)
    raise AssertionError(f"no report of revision {revision} under {tmp_path} ({env_home})")


@pytest.mark.timeout(600)
def test_a_native_swarm_update_is_promoted_and_an_erroring_one_is_rolled_back_by_swarm(
    controller: Controller, tmp_path: Path, swarm_engine: Any, app_image: str
) -> None:
    env = controller.env
    port = free_port()
    v1 = tmp_path / "v1.yaml"
    v1.write_text(native_spec(image=app_image, port=port))
    up = env.cli("up", str(v1), "--version", "v1", timeout=240)
    assert up.code == 0, up.stdout + up.stderr

    service = swarm_service(swarm_engine)
    assert service is not None
    spec = service.attrs["Spec"]
    assert spec["Mode"] == {"Replicated": {"Replicas": 3}}
    assert spec["Labels"]["zerodown.native"] == "1"
    assert spec["UpdateConfig"]["Order"] == "start-first"
    assert spec["UpdateConfig"]["Parallelism"] == 1
    (published,) = spec["EndpointSpec"]["Ports"]
    assert published["PublishMode"] == "host" and "PublishedPort" not in published
    status = env.cli("status", "shop", "--json").json()
    ports = {i["address"] for i in status["instances"] if i["state"] == "running"}
    assert len(ports) == 3, status  # one dynamic host port per task

    load = Load(f"http://127.0.0.1:{port}/", rps=60, duration=300)
    try:
        good = tmp_path / "v2.yaml"
        good.write_text(native_spec(image=app_image, port=port))
        result = env.cli("deploy", str(good), "--version", "v2", "--json", timeout=240)
        assert result.code == 0, result.stdout + result.stderr
        release = result.json()["release"]
        assert release["status"] == "succeeded" and release["strategy"] == "native", release

        service = swarm_service(swarm_engine)
        assert service is not None
        assert service.attrs["UpdateStatus"]["State"] == "completed"
        assert service.attrs["Spec"]["Labels"]["zerodown.revision"] == "2"

        bad = tmp_path / "v3.yaml"
        bad.write_text(native_spec(image=app_image, port=port, env={"ERROR_RATE": "0.5"}))
        result = env.cli("deploy", str(bad), "--version", "v3", "--json", timeout=240)
        assert result.code == 1, result.stdout + result.stderr
        release = result.json()["release"]
        assert release["status"] == "rolled_back", release
        assert "error rate" in release["reason"], release
    finally:
        stats = load.finish()

    sys.stderr.write(
        f"\n[native] {stats.sent} requests, {stats.failed} failed ({stats.server_errors} 5xx, "
        f"{stats.connection_errors} connection errors, {stats.timeouts} timeouts), by version "
        f"{dict(stats.header_counts)}\n"
    )
    # Clients saw no failure caused by the rollouts (v3's own 500s are the app's answers).
    assert_no_rollout_failures(stats)
    assert stats.header_counts.get("v2", 0) > 0 and stats.header_counts.get("v3", 0) > 0

    service = swarm_service(swarm_engine)
    assert service is not None
    assert service.attrs["UpdateStatus"]["State"] == "rollback_completed"
    assert service.attrs["Spec"]["Labels"]["zerodown.revision"] == "2"
    assert service.attrs["PreviousSpec"]["Labels"]["zerodown.revision"] == "3"
    status = env.cli("status", "shop", "--json").json()
    serving = [i for i in status["instances"] if i["state"] == "running"]
    assert status["release"]["revision"] == 2 and len(serving) == 3, status
    assert {i["revision"] for i in serving} == {2}, status

    events = env.cli("events", "shop", "--json", "--limit", "100000").json()["events"]
    kinds = [e["kind"] for e in events]
    assert "swarm.rollback" in kinds and "rollback.swarm" in kinds, kinds
    assert kinds.count("swarm.update") == 2, kinds  # v2 and v3, each one in-place update

    wait_until(
        lambda: len(list(tmp_path.glob("**/.claude/context/deployment/*.json"))) >= 3,
        timeout=60,
        what="the reports of v1, v2 and v3",
    )
    promoted = report_of(env.home, tmp_path, 2)
    rolled_back = report_of(env.home, tmp_path, 3)
    for report in (promoted, rolled_back):
        assert report["release"]["strategy"] == "native"
        text = json.dumps(report)
        assert "Swarm Native" in text and "start-first" in text, text[:2000]
    assert rolled_back["release"]["status"] == "rolled_back"

    assert env.cli("stop", "shop", timeout=120).code == 0
    wait_until(lambda: leftovers(swarm_engine) == [], timeout=90, what="the Swarm service to go")


def release_status(env: Env, revision: int) -> str:
    releases = env.cli("history", "shop", "--json").json()["releases"]
    return str(next(r["status"] for r in releases if r["revision"] == revision))


@pytest.mark.timeout(600)
def test_a_controller_killed_before_asking_swarm_finishes_the_update_and_the_rollback(
    zd_env: Env, tmp_path: Path, swarm_engine: Any, app_image: str
) -> None:
    """SIGKILL right after the decision is written and before Swarm is asked (once for the
    update, once for the rollback): the next controller re-reads Swarm's state and finishes."""
    crash_file = tmp_path / "crash-at"
    env = dataclasses.replace(zd_env, env={**zd_env.env, "ZERODOWN_CRASH_FILE": str(crash_file)})
    controller = start_controller(env)
    port = free_port()
    v1 = tmp_path / "v1.yaml"
    v1.write_text(native_spec(image=app_image, port=port))
    assert env.cli("up", str(v1), "--version", "v1", timeout=240).code == 0

    def killed_then_restarted(process: subprocess.Popen[bytes]) -> Controller:
        wait_until(lambda: process.poll() is not None, timeout=120, what="the controller to die")
        return start_controller(env)

    load = Load(f"http://127.0.0.1:{port}/", rps=60, duration=300)
    try:
        crash_file.write_text("native:updating:#1")
        good = tmp_path / "v2.yaml"
        good.write_text(native_spec(image=app_image, port=port))
        assert env.cli("deploy", str(good), "--version", "v2", "--no-watch").code == 0
        process = controller.process
        wait_until(lambda: process.poll() is not None, timeout=120, what="the controller to die")
        service = swarm_service(swarm_engine)
        assert service is not None  # decided, written, not yet asked:
        assert service.attrs["Spec"]["Labels"]["zerodown.revision"] == "1"
        controller = start_controller(env)
        wait_until(
            lambda: release_status(env, 2) == "succeeded", timeout=180, what="v2 to be promoted"
        )

        crash_file.write_text("native:rolling_back:#1")
        bad = tmp_path / "v3.yaml"
        bad.write_text(native_spec(image=app_image, port=port, env={"ERROR_RATE": "0.5"}))
        assert env.cli("deploy", str(bad), "--version", "v3", "--no-watch").code == 0
        controller = killed_then_restarted(controller.process)
        wait_until(
            lambda: release_status(env, 3) == "rolled_back",
            timeout=180,
            what="v3 to be rolled back",
        )
    finally:
        stats = load.finish()
    proxy_errors = sum(n for code, n in stats.by_status.items() if code in (502, 503, 504))
    sys.stderr.write(
        f"\n[native] with the controller killed mid-update: {stats.sent} requests, "
        f"{proxy_errors} proxy errors\n"
    )
    # While no controller runs, Swarm goes on replacing tasks and the proxy keeps the last
    # backends it was given: requests to tasks Swarm stopped fail until the next controller
    # routes to the new ones (a limit of native updates, documented). It must be brief.
    assert stats.connection_errors == 0 and stats.timeouts == 0, stats.to_dict()
    assert proxy_errors < 10 * 60, stats.to_dict()

    service = swarm_service(swarm_engine)
    assert service is not None
    assert service.attrs["Spec"]["Labels"]["zerodown.revision"] == "2"
    assert service.attrs["UpdateStatus"]["State"] == "rollback_completed"
    events = env.cli("events", "shop", "--json", "--limit", "100000").json()["events"]
    kinds = [e["kind"] for e in events]
    assert "instance.adopted" in kinds and "swarm.rollback" in kinds, kinds
    status = env.cli("status", "shop", "--json").json()
    serving = [i for i in status["instances"] if i["state"] == "running"]
    assert len(serving) == 3 and {i["revision"] for i in serving} == {2}, status

    assert env.cli("stop", "shop", timeout=120).code == 0
    wait_until(lambda: leftovers(swarm_engine) == [], timeout=90, what="the Swarm service to go")
