"""Rollouts on a real Docker engine: the same engine, strategies and judge as on ``local``.

Each test brings v1 up as containers (``platform: docker``) or one-replica Swarm services
(``platform: swarm``) from an image built without a registry, deploys v2 under bounded load,
and checks how it ended, that clients saw no rollout-caused failure, and that stopping the
service leaves no container or service behind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.zerodown import Controller, Env, free_port, start_controller, wait_until
from tests.integration.engine.test_rollouts import Load, assert_no_rollout_failures

# Tests that use the Docker engine run on their own, one at a time (see the Makefile).
pytestmark = pytest.mark.docker


def container_spec(
    *, platform: str, image: str, port: int, strategy: str, env: dict[str, str] | None = None
) -> str:
    env_block = "".join(f'  {k}: "{v}"\n' for k, v in (env or {}).items())
    return (
        "service: shop\n"
        f"platform: {platform}\n"
        "run:\n"
        f"  image: {image}\n"
        "  containerPort: 8080\n"
        "  stopGraceSeconds: 5s\n"
        "replicas: 2\n" + (f"env:\n{env_block}" if env_block else "") + "healthCheck:\n"
        "  http: {path: /healthz}\n"
        "  interval: 300ms\n"
        "  timeout: 250ms\n"
        "  startupGrace: 10s\n"
        "traffic:\n"
        f"  listen: 127.0.0.1:{port}\n"
        "analysis:\n  interval: 300ms\n  minRequests: 30\n  maxWait: 30s\n"
        "  minLatencyIncrease: 25ms\n"
        f"strategy:\n{strategy}"
    )


CANARY = "  canary:\n    steps: [{setWeight: 25}, {analysis: {}}, {setWeight: 100}]\n"
BLUE_GREEN = "  blueGreen: {autoPromote: true, scaleDownDelaySeconds: 5}\n"
ROLLING = "  rolling: {maxSurge: 1, maxUnavailable: 0, minReadySeconds: 0.5}\n"

# (strategy, what is wrong with the bad version, words expected in the rollback reason)
CASES = {
    "canary": (CANARY, {"ERROR_RATE": "0.5"}, "error rate"),
    "blue-green": (BLUE_GREEN, {"LATENCY_MS": "80"}, "p95"),
    "rolling": (ROLLING, {"HEALTH": "fail"}, "health check failed"),
}


def leftovers(engine: Any) -> list[str]:
    containers = engine.containers.list(all=True, filters={"label": "zerodown.service=shop"})
    services = [s for s in engine.services.list() if s.name.startswith("shop-")]
    return [c.name for c in containers] + [s.name for s in services]


def run_story(
    env: Env,
    tmp_path: Path,
    *,
    platform: str,
    image: str,
    strategy: str,
    bad_env: dict[str, str],
    reason: str,
    during_good: Callable[[], None] | None = None,
) -> None:
    """v1 up; v2 (good) promoted; v3 (bad) rolled back with ``reason``; under load throughout."""
    port = free_port()
    v1 = tmp_path / "v1.yaml"
    v1.write_text(container_spec(platform=platform, image=image, port=port, strategy=strategy))
    up = env.cli("up", str(v1), "--version", "v1", timeout=240)
    assert up.code == 0, up.stderr
    load = Load(f"http://127.0.0.1:{port}/", rps=60, duration=240)
    try:
        good = tmp_path / "v2.yaml"
        good.write_text(
            container_spec(platform=platform, image=image, port=port, strategy=strategy)
        )
        if during_good is None:
            result = env.cli("deploy", str(good), "--version", "v2", "--json", timeout=240)
            assert result.code == 0, result.stdout + result.stderr
            assert result.json()["release"]["status"] == "succeeded"
        else:
            started = env.cli("deploy", str(good), "--version", "v2", "--no-watch")
            assert started.code == 0, started.stderr
            during_good()
            wait_until(
                lambda: (
                    env.cli("history", "shop", "--json").json()["releases"][0]["status"]
                    == "succeeded"
                ),
                timeout=180,
                what="v2 to be promoted",
            )
        bad = tmp_path / "v3.yaml"
        bad.write_text(
            container_spec(
                platform=platform, image=image, port=port, strategy=strategy, env=bad_env
            )
        )
        result = env.cli("deploy", str(bad), "--version", "v3", "--json", timeout=240)
        assert result.code == 1, result.stdout + result.stderr
        release = result.json()["release"]
        assert release["status"] == "rolled_back" and reason in release["reason"], release
    finally:
        stats = load.finish()
    assert_no_rollout_failures(stats)
    assert stats.header_counts.get("v2", 0) > 0
    status = env.cli("status", "shop", "--json").json()
    serving = [i for i in status["instances"] if i["revision"] == 2 and i["state"] == "running"]
    # (a blue-green predecessor may still be warm beside them for scaleDownDelaySeconds)
    assert status["release"]["revision"] == 2 and len(serving) == 2, status


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", ["canary", "blue-green", "rolling"])
def test_each_strategy_on_docker_promotes_a_good_version_and_rolls_back_a_bad_one(
    controller: Controller, tmp_path: Path, docker_engine: Any, app_image: str, case: str
) -> None:
    strategy, bad_env, reason = CASES[case]
    run_story(
        controller.env,
        tmp_path,
        platform="docker",
        image=app_image,
        strategy=strategy,
        bad_env=bad_env,
        reason=reason,
    )
    assert controller.env.cli("stop", "shop", timeout=120).code == 0
    assert leftovers(docker_engine) == []


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", ["canary", "blue-green", "rolling"])
def test_each_strategy_on_swarm_promotes_a_good_version_and_rolls_back_a_bad_one(
    controller: Controller, tmp_path: Path, swarm_engine: Any, app_image: str, case: str
) -> None:
    strategy, bad_env, reason = CASES[case]
    run_story(
        controller.env,
        tmp_path,
        platform="swarm",
        image=app_image,
        strategy=strategy,
        bad_env=bad_env,
        reason=reason,
    )
    assert controller.env.cli("stop", "shop", timeout=120).code == 0
    wait_until(lambda: leftovers(swarm_engine) == [], timeout=60, what="swarm services to go")


@pytest.mark.timeout(600)
def test_on_docker_a_killed_container_is_replaced_and_a_killed_controller_resumes_the_rollout(
    zd_env: Env, tmp_path: Path, docker_engine: Any, app_image: str
) -> None:
    """The controller is SIGKILLed mid-canary (while the first analysis runs) and restarted:
    the rollout resumes; then a container killed from outside is detected and replaced."""
    crash_file = tmp_path / "crash-at"
    env = dataclasses.replace(zd_env, env={**zd_env.env, "ZERODOWN_CRASH_FILE": str(crash_file)})
    holder = {"controller": start_controller(env)}

    def crash_and_restart() -> None:
        process = holder["controller"].process
        wait_until(
            lambda: process.poll() is not None,
            timeout=120,
            what="the controller to die mid-rollout",
        )
        holder["controller"] = start_controller(env)

    crash_file.write_text("canary:steps:1#1")
    strategy, bad_env, reason = CASES["canary"]
    run_story(
        env,
        tmp_path,
        platform="docker",
        image=app_image,
        strategy=strategy,
        bad_env=bad_env,
        reason=reason,
        during_good=crash_and_restart,
    )
    events = env.cli("events", "shop", "--json", "--limit", "100000").json()["events"]
    assert any(e["kind"] == "instance.adopted" for e in events)

    victim = env.cli("status", "shop", "--json").json()["instances"][0]
    container = docker_engine.containers.list(
        filters={"label": f"zerodown.instance={victim['id']}"}
    )[0]
    container.kill()

    def replaced() -> bool:
        now = env.cli("status", "shop", "--json").json()["instances"]
        return any(
            i["slot"] == victim["slot"] and i["id"] != victim["id"] and i["state"] == "running"
            for i in now
        )

    wait_until(replaced, timeout=120, what="a replacement container")
    assert env.cli("stop", "shop", timeout=120).code == 0
    assert leftovers(docker_engine) == []
