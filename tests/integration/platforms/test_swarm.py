"""SwarmPlatform on a real single-node swarm: one service per instance, host-mode ports, tasks.

Needs an engine that is a swarm manager (``scripts/dockerd.sh start`` makes it one). Services
use ``dnsrr`` and host-mode published ports because the routing mesh needs IPVS, which this
kind of machine lacks. Every service a test creates carries the test's labels and is removed
afterwards. The contract suite covers what every platform shares.
"""

from __future__ import annotations

import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.net import free_port
from tests.integration.platforms.processes import wait_until
from zerodown.core.errors import TemporaryError
from zerodown.core.types import Revision, ServiceName, Version
from zerodown.platforms.base import Instance, InstanceState
from zerodown.platforms.docker import ContainerRequest
from zerodown.platforms.swarm import SwarmPlatform

# Tests that use the Docker engine run on their own, one at a time (see the Makefile).
pytestmark = [pytest.mark.integration, pytest.mark.docker]


def _request(image: str, **changes: Any) -> ContainerRequest:
    base = ContainerRequest(
        service=ServiceName("web"),
        version=Version("v2"),
        revision=Revision(4),
        slot=1,
        command="",
        image=image,
        env={"APP_VERSION": "v2-swarm"},
    )
    return replace(base, **changes)


def _serves(instance: Instance) -> bool:
    try:
        with urllib.request.urlopen(f"{instance.address.url}/healthz", timeout=2) as response:
            return int(response.status) == 200
    except OSError:
        return False


@pytest.fixture
def platform(tmp_path: Path, test_labels: dict[str, str], swarm_engine: Any) -> SwarmPlatform:
    return SwarmPlatform(state_dir=tmp_path / "state", labels=test_labels)


def test_an_instance_is_a_one_replica_service_served_on_its_host_mode_port(
    platform: SwarmPlatform, app_image: str, swarm_engine: Any
) -> None:
    began = time.monotonic()
    instance = platform.start(_request(app_image, cpus=0.25, memory_bytes=64 * 1024 * 1024))
    wait_until(lambda: _serves(instance), timeout=60, what="the service to serve")
    ready = time.monotonic() - began
    sys.stderr.write(f"\n[swarm] start to first 200: {ready * 1000:.0f} ms\n")

    service = swarm_engine.services.get(instance.meta["service_id"])
    spec = service.attrs["Spec"]
    assert service.name == instance.id and instance.id.startswith("web-r4-1-")
    assert spec["Labels"]["zerodown.instance"] == instance.id
    assert spec["Labels"]["zerodown.version"] == "v2"
    assert spec["Mode"] == {"Replicated": {"Replicas": 1}}
    assert spec["EndpointSpec"]["Mode"] == "dnsrr"
    (port,) = spec["EndpointSpec"]["Ports"]
    assert (port["PublishMode"], port["TargetPort"]) == ("host", 8080)
    assert port["PublishedPort"] == instance.address.port
    template = spec["TaskTemplate"]
    assert template["Resources"]["Limits"] == {
        "NanoCPUs": 250_000_000,
        "MemoryBytes": 64 * 1024 * 1024,
    }
    assert template["RestartPolicy"]["Condition"] == "none"
    assert template["ContainerSpec"]["Labels"]["zerodown.instance"] == instance.id
    assert template["ContainerSpec"]["Init"] is True
    assert instance.pid is not None
    with urllib.request.urlopen(instance.address.url, timeout=2) as response:
        assert response.headers["X-Version"] == "v2-swarm"
    assert platform.stop(instance, grace=5).exit_code == 0


def test_a_new_platform_object_adopts_the_service_and_stops_it(
    platform: SwarmPlatform, app_image: str, tmp_path: Path, test_labels: dict[str, str]
) -> None:
    instance = platform.start(_request(app_image))
    wait_until(lambda: _serves(instance), timeout=60, what="the service to serve")
    restarted = SwarmPlatform(state_dir=tmp_path / "state", labels=test_labels)
    assert restarted.adopt(instance)
    assert not restarted.adopt(replace(instance, started_at=instance.started_at + 1))
    stopped = restarted.stop(instance, grace=5)
    assert stopped.state is InstanceState.EXITED and stopped.exit_code == 0
    assert not restarted.adopt(instance)
    assert restarted.status(instance).state is InstanceState.EXITED


def test_a_crashing_task_is_exited_with_its_code_and_not_restarted_by_swarm(
    platform: SwarmPlatform, app_image: str, swarm_engine: Any
) -> None:
    instance = platform.start(_request(app_image, env={"CRASH_AFTER_S": "0.3"}))
    wait_until(
        lambda: platform.status(instance).state is InstanceState.EXITED,
        timeout=30,
        what="the task to fail",
    )
    assert platform.status(instance).exit_code == 3
    time.sleep(1)
    assert len(swarm_engine.services.get(instance.meta["service_id"]).tasks()) == 1
    assert platform.stop(instance, grace=1).exit_code == 3


def test_a_host_port_in_use_is_a_temporary_error_and_leaves_no_service(
    platform: SwarmPlatform, app_image: str, swarm_engine: Any, test_labels: dict[str, str]
) -> None:
    first = platform.start(_request(app_image, port=free_port()))
    with pytest.raises(TemporaryError):
        platform.start(_request(app_image, slot=2, port=first.address.port))
    wanted = [f"{key}={value}" for key, value in test_labels.items()]
    assert [s.name for s in swarm_engine.services.list(filters={"label": wanted})] == [first.id]
    platform.stop(first, grace=5)
