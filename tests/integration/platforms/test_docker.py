"""DockerPlatform on a real engine: serving on loopback, limits, adoption, grace, builds, errors.

Needs a running engine (``scripts/dockerd.sh start``) and the ``docker`` extra; the app image is
built with no registry by ``tests/fixtures/images.py``. Every container a test starts carries the
test's labels and is removed afterwards, whatever the test did. The contract suite covers what
every platform shares (status, kill detection, logs cursor, resources); these tests pin what is
particular to containers.
"""

from __future__ import annotations

import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.integration.platforms.processes import wait_until
from zerodown.core.errors import InputError, TemporaryError
from zerodown.core.types import Address, InstanceId, Revision, ServiceName, Version
from zerodown.platforms.base import Instance, InstanceRequest, InstanceState
from zerodown.platforms.docker import BuildContext, ContainerRequest, DockerPlatform

# Tests that use the Docker engine run on their own, one at a time (see the Makefile).
pytestmark = [pytest.mark.integration, pytest.mark.docker]

SECRET = "s3cr3t-value-never-logged"
# A command that ignores SIGTERM, so only the grace period's SIGKILL stops it.
DEAF = (
    "/usr/bin/python3.11 -c "
    '\'import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print("deaf", '
    "flush=True); time.sleep(600)'"
)


def _request(image: str, **changes: Any) -> ContainerRequest:
    base = ContainerRequest(
        service=ServiceName("web"),
        version=Version("v1"),
        revision=Revision(3),
        slot=0,
        command="",
        image=image,
        env={"APP_VERSION": "v1-docker", "API_TOKEN": SECRET},
    )
    return replace(base, **changes)


def _get(instance: Instance, path: str = "/") -> tuple[int, dict[str, str]]:
    with urllib.request.urlopen(f"{instance.address.url}{path}", timeout=2) as response:
        return int(response.status), dict(response.headers)


def _serves(instance: Instance) -> bool:
    try:
        return _get(instance, "/healthz")[0] == 200
    except OSError:
        return False


@pytest.fixture
def platform(tmp_path: Path, test_labels: dict[str, str]) -> DockerPlatform:
    return DockerPlatform(state_dir=tmp_path / "state", labels=test_labels)


def test_a_container_serves_on_a_loopback_port_with_its_env_labels_and_limits(
    platform: DockerPlatform, app_image: str, docker_engine: Any
) -> None:
    began = time.monotonic()
    instance = platform.start(_request(app_image, cpus=0.5, memory_bytes=128 * 1024 * 1024))
    wait_until(lambda: _serves(instance), timeout=30, what="the container to serve")
    ready = time.monotonic() - began
    sys.stderr.write(f"\n[docker] start to first 200: {ready * 1000:.0f} ms\n")

    assert instance.address.host == "127.0.0.1"
    status, headers = _get(instance)
    assert status == 200 and headers["X-Version"] == "v1-docker"
    container = docker_engine.containers.get(instance.meta["container_id"])
    labels = container.labels
    assert labels["zerodown.service"] == "web"
    assert labels["zerodown.version"] == "v1"
    assert labels["zerodown.revision"] == "3"
    assert labels["zerodown.slot"] == "0"
    assert labels["zerodown.instance"] == instance.id
    host = container.attrs["HostConfig"]
    assert host["Init"] is True
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == 128 * 1024 * 1024
    bindings = host["PortBindings"]["8080/tcp"]
    assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]
    env = container.attrs["Config"]["Env"]
    assert "PORT=8080" in env and f"ZERODOWN_INSTANCE={instance.id}" in env
    platform.stop(instance, grace=5)


def test_a_new_platform_object_adopts_the_container_and_refuses_a_look_alike(
    platform: DockerPlatform, app_image: str, tmp_path: Path, test_labels: dict[str, str]
) -> None:
    instance = platform.start(_request(app_image))
    wait_until(lambda: _serves(instance), timeout=30, what="the container to serve")
    restarted = DockerPlatform(state_dir=tmp_path / "state", labels=test_labels)
    assert restarted.adopt(instance)
    assert restarted.status(instance).state is InstanceState.RUNNING
    # Same container id, other creation time: a record of some other container.
    assert not restarted.adopt(replace(instance, started_at=instance.started_at - 1))
    relabelled = replace(instance, service=ServiceName("other"))
    assert not restarted.adopt(relabelled)
    stopped = restarted.stop(instance, grace=5)
    assert stopped.state is InstanceState.EXITED and stopped.exit_code == 0
    assert not restarted.adopt(instance)


def test_stop_kills_a_container_that_ignores_sigterm_once_the_grace_period_ends(
    platform: DockerPlatform, app_image: str
) -> None:
    instance = platform.start(_request(app_image, command=DEAF))
    wait_until(
        lambda: "deaf" in platform.read_logs(instance, None).lines,
        timeout=20,
        what="the container to ignore SIGTERM",
    )
    began = time.monotonic()
    stopped = platform.stop(instance, grace=1)
    took = time.monotonic() - began
    assert stopped.state is InstanceState.EXITED
    assert stopped.exit_code == 137
    assert 0.9 <= took < 10


def test_an_app_that_exits_on_its_own_reports_its_exit_code(
    platform: DockerPlatform, app_image: str
) -> None:
    instance = platform.start(_request(app_image, env={"CRASH_AFTER_S": "0.3"}))
    wait_until(
        lambda: platform.status(instance).state is InstanceState.EXITED,
        timeout=20,
        what="the app to crash",
    )
    assert platform.status(instance).exit_code == 3
    assert platform.resources(instance) is None
    assert platform.stop(instance, grace=1).exit_code == 3


def test_stats_report_network_traffic_and_memory(platform: DockerPlatform, app_image: str) -> None:
    instance = platform.start(_request(app_image))
    wait_until(lambda: _serves(instance), timeout=30, what="the container to serve")
    before = platform.resources(instance)
    for _ in range(20):
        _get(instance, "/")
    after = platform.resources(instance)
    assert before is not None and after is not None
    assert after.net_bytes_recv is not None and before.net_bytes_recv is not None
    assert after.net_bytes_recv > before.net_bytes_recv
    assert after.net_bytes_sent is not None and after.net_bytes_sent > 0
    assert 1_000_000 < after.memory_bytes < 200_000_000
    platform.stop(instance, grace=5)


def test_a_build_context_is_built_once_per_revision_with_no_registry(
    platform: DockerPlatform, app_image: str, tmp_path: Path, docker_engine: Any
) -> None:
    context = tmp_path / "build"
    context.mkdir()
    (context / "Containerfile").write_text(f"FROM {app_image}\nENV APP_VERSION=built\n")
    request = _request(
        None,
        service=ServiceName("zdbuildtest"),
        env={},
        build=BuildContext(context=context, dockerfile="Containerfile"),
    )
    try:
        first = platform.start(request)
        second = platform.start(replace(request, slot=1))
        assert first.meta["image"] == second.meta["image"] == "zerodown/zdbuildtest:r3"
        wait_until(lambda: _serves(first), timeout=30, what="the built image to serve")
        assert _get(first)[1]["X-Version"] == "built"
        platform.stop(first, grace=5)
        platform.stop(second, grace=5)
    finally:
        for container in docker_engine.containers.list(
            all=True, filters={"ancestor": "zerodown/zdbuildtest:r3"}
        ):
            container.remove(force=True)
        docker_engine.images.remove("zerodown/zdbuildtest:r3", force=True)


def test_a_missing_image_is_an_input_error_that_never_shows_the_environment(
    platform: DockerPlatform,
) -> None:
    with pytest.raises(InputError) as caught:
        platform.start(_request("zerodown-test/absent:none"))
    assert "zerodown-test/absent:none" in caught.value.message
    assert SECRET not in caught.value.message
    assert SECRET not in repr(caught.value.__cause__)


def test_an_engine_that_does_not_answer_is_a_temporary_error(
    tmp_path: Path, app_image: str
) -> None:
    import docker

    platform = DockerPlatform(
        state_dir=tmp_path,
        client_factory=lambda: docker.DockerClient(
            base_url=f"unix://{tmp_path}/absent.sock", version="1.41"
        ),
    )
    with pytest.raises(TemporaryError):
        platform.start(_request(app_image))
    record = Instance(
        id=InstanceId("web-r3-0-abcdef"),
        service=ServiceName("web"),
        version=Version("v1"),
        revision=Revision(3),
        slot=0,
        platform="docker",
        address=Address("127.0.0.1", 9),
        meta={"container_id": "0" * 64},
    )
    assert platform.status(record).state is InstanceState.UNKNOWN
    with pytest.raises(TemporaryError):
        platform.adopt(record)


def test_a_plain_instance_request_gets_the_default_container_port(
    platform: DockerPlatform, app_image: str, docker_engine: Any
) -> None:
    plain = InstanceRequest(
        service=ServiceName("web"),
        version=Version("v1"),
        revision=Revision(3),
        slot=0,
        command="",
        image=app_image,
    )
    instance = platform.start(plain)
    container = docker_engine.containers.get(instance.meta["container_id"])
    assert "8080/tcp" in container.attrs["HostConfig"]["PortBindings"]
    wait_until(lambda: _serves(instance), timeout=30, what="the container to serve")
    platform.stop(instance, grace=5)
