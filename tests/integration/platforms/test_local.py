"""LocalPlatform on real processes: serving, outliving the controller, PID reuse, signals, logs."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from tests.integration.platforms.processes import ProcessLedger, ledger, pid_alive, wait_until
from zerodown.core.errors import InputError
from zerodown.core.types import Address, InstanceId, Revision, ServiceName, Version
from zerodown.platforms.base import Instance, InstanceRequest, InstanceState
from zerodown.platforms.local import LocalPlatform, _PortAllocator

__all__ = ["ledger"]  # the fixture, imported for pytest

pytestmark = pytest.mark.integration

APP = Path(__file__).resolve().parents[3] / "examples" / "app.py"
APP_COMMAND = f"{shlex.quote(sys.executable)} {shlex.quote(str(APP))}"


def request(
    command: str = APP_COMMAND,
    *,
    env: Mapping[str, str] | None = None,
    workdir: Path | None = None,
    slot: int = 0,
) -> InstanceRequest:
    return InstanceRequest(
        service=ServiceName("shop"),
        version=Version("v2"),
        revision=Revision(3),
        slot=slot,
        command=command,
        env=env or {},
        workdir=workdir,
    )


@pytest.fixture
def platform(tmp_path: Path) -> LocalPlatform:
    return LocalPlatform(state_dir=tmp_path / "state")


def get(address: Address, path: str = "/") -> tuple[int, bytes]:
    with urllib.request.urlopen(f"{address.url}{path}", timeout=2) as response:
        return int(response.status), response.read()


def serves(address: Address) -> bool:
    try:
        return get(address, "/healthz")[0] == 200
    except OSError:
        return False


def wait_serving(instance: Instance) -> None:
    wait_until(lambda: serves(instance.address), timeout=20, what=f"{instance.id} to serve")


def wait_log(platform: LocalPlatform, instance: Instance, text: str) -> list[str]:
    lines: list[str] = []
    cursor: str | None = None

    def found() -> bool:
        nonlocal cursor
        chunk = platform.read_logs(instance, cursor)
        lines.extend(chunk.lines)
        cursor = chunk.cursor
        return any(text in line for line in lines)

    wait_until(found, timeout=10, what=f"{text!r} in the log of {instance.id}")
    return lines


def test_instance_serves_http_on_its_port_with_the_zerodown_environment(
    platform: LocalPlatform, ledger: ProcessLedger
) -> None:
    instance = ledger.instance(platform.start(request()))
    wait_serving(instance)
    status, body = get(instance.address)
    assert status == 200
    answer = json.loads(body)
    assert answer["version"] == "v2"  # the app falls back to ZERODOWN_VERSION
    assert answer["port"] == instance.address.port
    assert instance.address.host == "127.0.0.1"
    assert instance.id.startswith("shop-r3-0-")
    assert len(instance.id.rsplit("-", 1)[1]) == 6
    platform.stop(instance, grace=10)


def test_command_sees_request_env_and_zerodown_variables_in_its_workdir(
    platform: LocalPlatform, ledger: ProcessLedger, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    script = (
        'echo "pwd=$(pwd) port=$PORT svc=$ZERODOWN_SERVICE ver=$ZERODOWN_VERSION '
        'rev=$ZERODOWN_REVISION id=$ZERODOWN_INSTANCE extra=$EXTRA"'
    )
    instance = ledger.instance(
        platform.start(request(script, env={"EXTRA": "yes", "PORT": "1"}, workdir=workdir))
    )
    wait_until(
        lambda: platform.status(instance).state is InstanceState.EXITED,
        timeout=10,
        what="the script to finish",
    )
    (line,) = platform.read_logs(instance, None).lines
    assert line == (
        f"pwd={workdir} port={instance.address.port} svc=shop ver=v2 rev=3 "
        f"id={instance.id} extra=yes"
    )
    assert platform.status(instance).exit_code == 0


def test_stdout_and_stderr_land_in_one_log_file_per_instance(
    platform: LocalPlatform, ledger: ProcessLedger, tmp_path: Path
) -> None:
    instance = ledger.instance(platform.start(request("echo to-out; echo to-err >&2")))
    expected = tmp_path / "state" / "logs" / "shop" / f"{instance.id}.log"
    assert instance.log_path == expected
    wait_until(
        lambda: platform.status(instance).state is InstanceState.EXITED,
        timeout=10,
        what="the command to finish",
    )
    assert expected.read_text().splitlines() == ["to-out", "to-err"]


def test_app_request_lines_are_logged(platform: LocalPlatform, ledger: ProcessLedger) -> None:
    instance = ledger.instance(platform.start(request()))
    wait_serving(instance)
    get(instance.address, "/sleep/5")
    lines = wait_log(platform, instance, "GET /sleep/5 200")
    assert any("listening on 127.0.0.1" in line for line in lines)
    platform.stop(instance, grace=10)


_CONTROLLER = textwrap.dedent(
    """
    import dataclasses, json, sys, threading
    from pathlib import Path
    from zerodown.platforms.base import InstanceRequest
    from zerodown.platforms.local import LocalPlatform

    platform = LocalPlatform(state_dir=Path(sys.argv[1]))
    instance = platform.start(InstanceRequest(
        service="shop", version="v2", revision=3, slot=0, command=sys.argv[2]))
    record = dataclasses.asdict(instance)
    record["address"] = [instance.address.host, instance.address.port]
    record["log_path"] = str(instance.log_path)
    print(json.dumps(record), flush=True)
    threading.Event().wait()  # a controller that keeps running until it is killed
    """
)


def test_instance_outlives_a_killed_controller_and_is_adopted_by_a_new_one(
    tmp_path: Path, ledger: ProcessLedger
) -> None:
    state = tmp_path / "state"
    controller = ledger.popen(
        subprocess.Popen(
            [sys.executable, "-c", _CONTROLLER, str(state), APP_COMMAND],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
    )
    assert controller.stdout is not None
    record = json.loads(controller.stdout.readline())
    instance = ledger.instance(
        Instance(
            id=InstanceId(record["id"]),
            service=ServiceName(record["service"]),
            version=Version(record["version"]),
            revision=Revision(record["revision"]),
            slot=record["slot"],
            platform=record["platform"],
            address=Address(*record["address"]),
            pid=record["pid"],
            started_at=record["started_at"],
            log_path=Path(record["log_path"]),
        )
    )
    wait_serving(instance)

    # SIGKILL to the controller's whole process group: the instance is in a group of its own.
    os.killpg(controller.pid, signal.SIGKILL)
    controller.wait()
    assert controller.returncode == -signal.SIGKILL

    assert serves(instance.address)
    successor = LocalPlatform(state_dir=state)
    assert successor.adopt(instance)
    assert successor.status(instance).state is InstanceState.RUNNING
    assert successor.resources(instance) is not None
    get(instance.address, "/sleep/7")
    assert any("GET /sleep/7 200" in line for line in wait_log(successor, instance, "/sleep/7"))

    stopped = successor.stop(instance, grace=10)
    assert stopped.state is InstanceState.EXITED
    assert stopped.exit_code is None  # not our child: its exit code cannot be known
    assert not successor.adopt(instance)


def test_a_record_with_a_live_pid_but_another_start_time_is_not_adopted_nor_signalled(
    platform: LocalPlatform, ledger: ProcessLedger
) -> None:
    bystander = ledger.popen(subprocess.Popen(["sleep", "60"], start_new_session=True))
    real_start = psutil.Process(bystander.pid).create_time()
    stale = Instance(
        id=InstanceId("shop-r1-0-abcdef"),
        service=ServiceName("shop"),
        version=Version("v1"),
        revision=Revision(1),
        slot=0,
        platform="local",
        address=Address("127.0.0.1", 9),
        pid=bystander.pid,  # the PID the old instance had, now reused by the bystander
        started_at=real_start - 100.0,
    )
    assert not platform.adopt(stale)
    status = platform.status(stale)
    assert status.state is InstanceState.EXITED
    assert "another process" in status.detail
    assert platform.resources(stale) is None
    assert platform.stop(stale, grace=0.2).state is InstanceState.EXITED
    assert bystander.poll() is None  # still alive: it was never signalled
    assert pid_alive(bystander.pid, real_start)
    bystander.kill()
    bystander.wait()


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(
    platform: LocalPlatform, ledger: ProcessLedger
) -> None:
    instance = ledger.instance(platform.start(request('trap "" TERM; echo ready; sleep 60')))
    wait_log(platform, instance, "ready")  # the trap is set before the first signal is sent
    grace = 0.5
    began = time.monotonic()
    stopped = platform.stop(instance, grace=grace)
    elapsed = time.monotonic() - began
    assert stopped.state is InstanceState.EXITED
    assert stopped.exit_code == 128 + signal.SIGKILL
    assert "SIGKILL" in stopped.detail
    assert grace <= elapsed < grace + 5.0  # it waited the grace, then did not hang


def test_stop_reaches_grandchildren_in_the_process_group(
    platform: LocalPlatform, ledger: ProcessLedger, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    command = f"sleep 60 & echo $! >> {pids}; sh -c 'sleep 60 & echo $! >> {pids}; wait' & wait"
    instance = ledger.instance(platform.start(request(command)))
    wait_until(
        lambda: pids.exists() and len(pids.read_text().split()) == 2,
        timeout=10,
        what="both grandchildren to start",
    )
    grandchildren = [ledger.pid(int(p)) for p in pids.read_text().split()]
    assert all(pid_alive(p) for p in grandchildren)
    stopped = platform.stop(instance, grace=5)
    assert stopped.state is InstanceState.EXITED
    assert not any(pid_alive(p) for p in grandchildren)


def test_stop_waits_for_grandchildren_that_outlive_the_group_leader(
    platform: LocalPlatform, ledger: ProcessLedger, tmp_path: Path
) -> None:
    """The leader exits at once on SIGTERM; a grandchild ignoring it is still killed."""
    pid_file = tmp_path / "pid"
    command = f"sh -c 'trap \"\" TERM; echo $$ > {pid_file}; sleep 60' & wait"
    instance = ledger.instance(platform.start(request(command)))
    wait_until(
        lambda: pid_file.exists() and pid_file.read_text().strip() != "",
        timeout=10,
        what="the grandchild to start",
    )
    grandchild = ledger.pid(int(pid_file.read_text()))
    platform.stop(instance, grace=0.3)
    assert not pid_alive(grandchild)


def test_a_crash_is_seen_as_exited_with_the_exit_code(
    platform: LocalPlatform, ledger: ProcessLedger
) -> None:
    instance = ledger.instance(platform.start(request(env={"CRASH_AFTER_S": "0.3"})))
    wait_until(
        lambda: platform.status(instance).state is InstanceState.EXITED,
        timeout=15,
        what="the crash",
    )
    status = platform.status(instance)
    assert status.exit_code == 3
    assert status.detail == "exited with code 3"
    assert not platform.adopt(instance)


def test_a_command_that_does_not_exist_exits_127(
    platform: LocalPlatform, ledger: ProcessLedger
) -> None:
    instance = ledger.instance(platform.start(request("/nonexistent/zerodown-test-binary")))
    wait_until(
        lambda: platform.status(instance).state is InstanceState.EXITED,
        timeout=10,
        what="the shell to give up",
    )
    assert platform.status(instance).exit_code == 127


def test_a_missing_workdir_is_an_input_error(platform: LocalPlatform, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="workdir"):
        platform.start(request(workdir=tmp_path / "missing"))


def test_a_service_name_that_is_not_a_plain_name_is_an_input_error(
    platform: LocalPlatform,
) -> None:
    with pytest.raises(InputError):
        platform.start(replace(request(), service=ServiceName("../escape")))


def test_resources_sum_the_process_tree_and_measure_cpu_between_calls(
    platform: LocalPlatform, ledger: ProcessLedger
) -> None:
    busy = "sh -c 'while :; do :; done' & sleep 60 & wait"
    instance = ledger.instance(platform.start(request(busy)))
    wait_until(
        lambda: len(psutil.Process(instance.pid).children(recursive=True)) >= 2,
        timeout=10,
        what="the busy children to start",
    )
    first = platform.resources(instance)
    assert first is not None
    leader_rss = psutil.Process(instance.pid).memory_info().rss
    assert first.memory_bytes > leader_rss  # children counted too
    assert first.net_bytes_sent is None and first.net_bytes_recv is None

    def cpu_seen() -> bool:
        usage = platform.resources(instance)
        return usage is not None and usage.cpu_percent > 10.0

    wait_until(cpu_seen, timeout=10, what="a busy loop to show up as CPU use")
    platform.stop(instance, grace=5)
    assert platform.resources(instance) is None


def test_ports_picked_in_one_process_are_not_handed_out_twice() -> None:
    allocator = _PortAllocator()
    ports = [allocator.take("127.0.0.1") for _ in range(200)]
    assert len(set(ports)) == len(ports)


# -- read_logs on a log file written by the test --------------------------------------------


def log_record(log_path: Path) -> Instance:
    return Instance(
        id=InstanceId("shop-r3-0-aaaaaa"),
        service=ServiceName("shop"),
        version=Version("v2"),
        revision=Revision(3),
        slot=0,
        platform="local",
        address=Address("127.0.0.1", 9),
        pid=None,
        log_path=log_path,
    )


def test_read_logs_of_a_file_not_yet_written_is_empty(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    chunk = platform.read_logs(log_record(tmp_path / "none.log"), None)
    assert chunk.lines == []
    assert chunk.cursor == "0"


def test_read_logs_leaves_a_partial_last_line_for_the_next_call(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    path = tmp_path / "app.log"
    instance = log_record(path)
    path.write_bytes(b"one\r\ntwo\nthr")
    chunk = platform.read_logs(instance, None)
    assert chunk.lines == ["one", "two"]
    assert platform.read_logs(instance, chunk.cursor).lines == []
    with path.open("ab") as file:
        file.write(b"ee\n")
    later = platform.read_logs(instance, chunk.cursor)
    assert later.lines == ["three"]
    assert later.cursor == str(path.stat().st_size)


def test_read_logs_restarts_from_the_beginning_of_a_truncated_file(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    path = tmp_path / "app.log"
    instance = log_record(path)
    path.write_bytes(b"a long first line\nanother line\n")
    cursor = platform.read_logs(instance, None).cursor
    path.write_bytes(b"fresh\n")
    chunk = platform.read_logs(instance, cursor)
    assert chunk.lines == ["fresh"]
    assert chunk.cursor == "6"


def test_read_logs_keeps_undecodable_bytes_visible(platform: LocalPlatform, tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"caf\xe9\n")
    assert platform.read_logs(log_record(path), None).lines == ["caf\ufffd"]


@pytest.mark.parametrize("cursor", ["abc", "-1"])
def test_read_logs_rejects_a_cursor_that_is_not_an_offset(
    platform: LocalPlatform, tmp_path: Path, cursor: str
) -> None:
    with pytest.raises(InputError):
        platform.read_logs(log_record(tmp_path / "app.log"), cursor)
