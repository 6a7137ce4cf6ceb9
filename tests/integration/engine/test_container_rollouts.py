"""Rollouts on a real Docker engine: the same engine, strategies and judge as on ``local``.

Each test brings v1 up as containers (``platform: docker``) or one-replica Swarm services
(``platform: swarm``) from an image built without a registry, deploys v2 under bounded load,
and checks how it ended, that clients saw no rollout-caused failure, and that stopping the
service leaves no container or service behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.zerodown import Controller, free_port
from tests.integration.engine.test_rollouts import Load, assert_no_rollout_failures


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
        "  startupGrace: 30s\n"
        "traffic:\n"
        f"  listen: 127.0.0.1:{port}\n"
        "analysis:\n  interval: 300ms\n  minRequests: 30\n  maxWait: 30s\n"
        f"strategy:\n{strategy}"
    )


CANARY = "  canary:\n    steps: [{setWeight: 25}, {analysis: {}}, {setWeight: 100}]\n"
ROLLING = "  rolling: {maxSurge: 1, maxUnavailable: 0, minReadySeconds: 0.5}\n"


def leftovers(engine: Any) -> list[str]:
    containers = engine.containers.list(all=True, filters={"label": "zerodown.service=shop"})
    services = [s for s in engine.services.list() if s.name.startswith("shop-")]
    return [c.name for c in containers] + [s.name for s in services]


def run_story(
    controller: Controller,
    tmp_path: Path,
    *,
    platform: str,
    image: str,
    strategy: str,
    bad_env: dict[str, str],
) -> None:
    env = controller.env
    port = free_port()
    v1 = tmp_path / "v1.yaml"
    v1.write_text(container_spec(platform=platform, image=image, port=port, strategy=strategy))
    up = env.cli("up", str(v1), "--version", "v1", timeout=240)
    assert up.code == 0, up.stderr
    load = Load(f"http://127.0.0.1:{port}/", rps=60, duration=180)
    try:
        good = tmp_path / "v2.yaml"
        good.write_text(
            container_spec(platform=platform, image=image, port=port, strategy=strategy)
        )
        result = env.cli("deploy", str(good), "--version", "v2", "--json", timeout=240)
        assert result.code == 0, result.stdout + result.stderr
        assert result.json()["release"]["status"] == "succeeded"
        bad = tmp_path / "v3.yaml"
        bad.write_text(
            container_spec(
                platform=platform, image=image, port=port, strategy=strategy, env=bad_env
            )
        )
        result = env.cli("deploy", str(bad), "--version", "v3", "--json", timeout=240)
        assert result.code == 1, result.stdout + result.stderr
        assert result.json()["release"]["status"] == "rolled_back"
    finally:
        stats = load.finish()
    assert_no_rollout_failures(stats)
    assert stats.header_counts.get("v2", 0) > 0
    status = env.cli("status", "shop", "--json").json()
    assert status["release"]["revision"] == 2 and status["ready"] == 2


@pytest.mark.timeout(600)
def test_canary_on_docker_promotes_a_good_version_and_rolls_back_an_erroring_one(
    controller: Controller, tmp_path: Path, docker_engine: Any, app_image: str
) -> None:
    run_story(
        controller,
        tmp_path,
        platform="docker",
        image=app_image,
        strategy=CANARY,
        bad_env={"ERROR_RATE": "0.5"},
    )
    assert controller.env.cli("stop", "shop", timeout=120).code == 0
    assert leftovers(docker_engine) == []


@pytest.mark.timeout(600)
def test_rolling_on_swarm_promotes_a_good_version_and_rolls_back_an_unhealthy_one(
    controller: Controller, tmp_path: Path, swarm_engine: Any, app_image: str
) -> None:
    run_story(
        controller,
        tmp_path,
        platform="swarm",
        image=app_image,
        strategy=ROLLING,
        bad_env={"HEALTH": "fail"},
    )
    assert controller.env.cli("stop", "shop", timeout=120).code == 0
    from tests.fixtures.zerodown import wait_until

    wait_until(lambda: leftovers(swarm_engine) == [], timeout=60, what="swarm services to go")
