"""Every platform behaves alike: one suite run against every platform and the fake.

The local platform runs the real example app (``examples/app.py``) as processes; docker and
swarm run it from a locally built image (``tests/fixtures/images.py``); the fake keeps
instances in memory. Whatever the engine may rely on is pinned here, so a test that passes on
the fake says something true about the real platform.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.platforms.processes import ProcessLedger, ledger, wait_until
from zerodown.core.types import Address, InstanceId, Revision, ServiceName, Version
from zerodown.platforms.base import (
    Instance,
    InstanceRequest,
    InstanceState,
    LogChunk,
    Platform,
)
from zerodown.platforms.local import LocalPlatform
from zerodown.testing import FakePlatform

# Tests that use the Docker engine run on their own, one at a time (see the Makefile).
pytestmark = pytest.mark.docker

__all__ = ["ledger"]  # the fixture, imported for pytest

APP = Path(__file__).resolve().parents[2] / "examples" / "app.py"
GRACE = 10.0


@dataclass
class Harness:
    """One platform plus the platform-specific ways to drive an instance from outside."""

    platform: Platform
    started: Callable[[Instance], Instance]  # record for the stray check
    wait_ready: Callable[[Instance], None]
    emit_log_line: Callable[[Instance, int], None]  # makes the instance log "GET /sleep/<n> "
    kill: Callable[[Instance], None]  # makes it die on its own from SIGKILL
    image: str | None = None  # container platforms run the app from this image

    def start(self, slot: int = 0, port: int | None = None) -> Instance:
        command = f"{shlex.quote(sys.executable)} {shlex.quote(str(APP))}"
        request = InstanceRequest(
            service=ServiceName("web"),
            version=Version("v1"),
            revision=Revision(7),
            slot=slot,
            command="" if self.image else command,
            port=port,
            image=self.image,
        )
        return self.started(self.platform.start(request))


def _http_get(address: Address, path: str) -> int:
    with urllib.request.urlopen(f"{address.url}{path}", timeout=2) as response:
        return int(response.status)


def _serves(instance: Instance) -> bool:
    try:
        return _http_get(instance.address, "/healthz") == 200
    except OSError:
        return False


def _local(tmp_path: Path, ledger: ProcessLedger) -> Harness:
    def wait_ready(instance: Instance) -> None:
        wait_until(lambda: _serves(instance), timeout=20, what=f"{instance.id} to serve")

    def emit(instance: Instance, n: int) -> None:
        assert _http_get(instance.address, f"/sleep/{n}") == 200

    def kill(instance: Instance) -> None:
        assert instance.pid is not None
        os.killpg(instance.pid, signal.SIGKILL)

    return Harness(
        platform=LocalPlatform(state_dir=tmp_path / "state"),
        started=ledger.instance,
        wait_ready=wait_ready,
        emit_log_line=emit,
        kill=kill,
    )


def _fake() -> Harness:
    fake = FakePlatform()
    return Harness(
        platform=fake,
        started=lambda instance: instance,
        wait_ready=lambda instance: None,
        emit_log_line=lambda instance, n: fake.write_log(instance.id, f"GET /sleep/{n} 200"),
        kill=lambda instance: fake.crash(instance.id, 128 + signal.SIGKILL),
    )


def _container_harness(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    # Resolved only for these parameters, so local and fake need no Docker engine.
    engine = request.getfixturevalue("swarm_engine" if kind == "swarm" else "docker_engine")
    image = request.getfixturevalue("app_image")
    labels = request.getfixturevalue("test_labels")
    platform: Platform
    if kind == "swarm":
        from zerodown.platforms.swarm import SwarmPlatform, task_container

        swarm = SwarmPlatform(state_dir=tmp_path / "state", labels=labels)
        platform = swarm

        def kill(instance: Instance) -> None:
            container = task_container(swarm, instance)
            assert container is not None, "the service has no running container"
            container.kill()

    else:
        from zerodown.platforms.docker import DockerPlatform

        platform = DockerPlatform(state_dir=tmp_path / "state", labels=labels)

        def kill(instance: Instance) -> None:
            engine.containers.get(instance.meta["container_id"]).kill()

    def wait_ready(instance: Instance) -> None:
        wait_until(lambda: _serves(instance), timeout=60, what=f"{instance.id} to serve")

    def emit(instance: Instance, n: int) -> None:
        assert _http_get(instance.address, f"/sleep/{n}") == 200

    return Harness(
        platform=platform,
        started=lambda instance: instance,  # test_labels removes whatever is left
        wait_ready=wait_ready,
        emit_log_line=emit,
        kill=kill,
        image=image,
    )


@pytest.fixture(params=["local", "fake", "docker", "swarm"])
def harness(request: pytest.FixtureRequest, tmp_path: Path, ledger: ProcessLedger) -> Harness:
    if request.param == "local":
        return _local(tmp_path, ledger)
    if request.param in ("docker", "swarm"):
        return _container_harness(request.param, request, tmp_path)
    return _fake()


@pytest.fixture
def running(harness: Harness) -> Iterator[Instance]:
    """A started, ready instance, stopped at teardown whatever the test did."""
    instance = harness.start()
    try:
        harness.wait_ready(instance)
        yield instance
    finally:
        harness.platform.stop(instance, grace=GRACE)


def _read_until(
    platform: Platform, instance: Instance, cursor: str | None, marker: str
) -> tuple[list[str], str | None]:
    """Read from ``cursor`` until a line containing ``marker`` arrives; return lines, cursor."""
    lines: list[str] = []

    def more() -> bool:
        nonlocal cursor
        chunk: LogChunk = platform.read_logs(instance, cursor)
        lines.extend(chunk.lines)
        cursor = chunk.cursor
        return any(marker in line for line in lines)

    wait_until(more, timeout=10, what=f"a log line with {marker!r}")
    return lines, cursor


def test_start_returns_a_record_naming_the_release_and_the_platform(
    harness: Harness, running: Instance
) -> None:
    assert running.platform == harness.platform.name
    assert running.id.startswith("web-r7-0-")
    assert (running.service, running.version, running.revision, running.slot) == (
        "web",
        "v1",
        7,
        0,
    )
    assert running.pid is not None
    assert running.started_at > 0


def test_instances_started_without_a_port_get_distinct_ports(
    harness: Harness, running: Instance
) -> None:
    second = harness.start(slot=1)
    try:
        assert second.address.port != running.address.port
        assert second.id != running.id
    finally:
        harness.platform.stop(second, grace=GRACE)


def test_a_started_instance_is_running_and_exited_after_stop(
    harness: Harness, running: Instance
) -> None:
    assert harness.platform.status(running).state is InstanceState.RUNNING
    stopped = harness.platform.stop(running, grace=GRACE)
    assert stopped.state is InstanceState.EXITED
    assert harness.platform.status(running).state is InstanceState.EXITED


def test_stop_is_idempotent_for_an_instance_already_gone(
    harness: Harness, running: Instance
) -> None:
    first = harness.platform.stop(running, grace=GRACE)
    second = harness.platform.stop(running, grace=GRACE)
    assert first.state is second.state is InstanceState.EXITED
    assert second.exit_code == first.exit_code


def test_adopt_is_true_for_a_live_instance_and_false_after_stop(
    harness: Harness, running: Instance
) -> None:
    assert harness.platform.adopt(running)
    harness.platform.stop(running, grace=GRACE)
    assert not harness.platform.adopt(running)


def test_a_record_that_is_not_a_live_instance_is_neither_adopted_nor_running(
    harness: Harness,
) -> None:
    # Our own PID with a start time that is not ours: a live PID, but not this instance.
    ghost = Instance(
        id=InstanceId("web-r7-0-000000"),
        service=ServiceName("web"),
        version=Version("v1"),
        revision=Revision(7),
        slot=0,
        platform=harness.platform.name,
        address=Address("127.0.0.1", 9),
        pid=os.getpid(),
        started_at=1.0,
    )
    assert not harness.platform.adopt(ghost)
    assert harness.platform.status(ghost).state is InstanceState.EXITED
    assert harness.platform.resources(ghost) is None
    assert harness.platform.stop(ghost, grace=GRACE).state is InstanceState.EXITED


def test_an_instance_that_dies_on_its_own_is_exited_with_the_signal_exit_code(
    harness: Harness, running: Instance
) -> None:
    harness.kill(running)
    wait_until(
        lambda: harness.platform.status(running).state is InstanceState.EXITED,
        timeout=10,
        what="the killed instance to be seen as exited",
    )
    assert harness.platform.status(running).exit_code == 128 + signal.SIGKILL
    assert not harness.platform.adopt(running)
    assert harness.platform.stop(running, grace=GRACE).state is InstanceState.EXITED


def test_read_logs_continues_from_its_cursor_without_repeating_or_skipping(
    harness: Harness, running: Instance
) -> None:
    platform = harness.platform
    harness.emit_log_line(running, 1)
    first, cursor = _read_until(platform, running, None, "GET /sleep/1 ")
    assert isinstance(cursor, str)
    assert platform.read_logs(running, cursor).lines == []
    assert platform.read_logs(running, cursor).cursor == cursor

    harness.emit_log_line(running, 2)
    second, _ = _read_until(platform, running, cursor, "GET /sleep/2 ")
    assert not any("GET /sleep/1 " in line for line in second)
    assert sum("GET /sleep/2 " in line for line in second) == 1

    everything, _ = _read_until(platform, running, None, "GET /sleep/2 ")
    assert everything == first + second


def test_resources_are_reported_for_a_live_instance_and_none_once_gone(
    harness: Harness, running: Instance
) -> None:
    usage = harness.platform.resources(running)
    assert usage is not None
    assert usage.memory_bytes > 0
    assert usage.cpu_percent >= 0.0
    assert 0.0 < usage.memory_percent < 100.0
    harness.platform.stop(running, grace=GRACE)
    assert harness.platform.resources(running) is None
