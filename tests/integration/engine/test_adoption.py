"""A controller killed with SIGKILL and started again adopts its instances: no restarts."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import psutil

from tests.fixtures.zerodown import Env, start_controller, wait_until


def test_restarted_controller_adopts_the_same_three_pids(zd_env: Env, tmp_path: Path) -> None:
    env = zd_env
    first = start_controller(env)
    spec = env.write_spec(tmp_path, replicas=3)
    assert env.cli("up", str(spec), "--version", "v1").code == 0
    status = env.cli("status", "demo", "--json").json()
    before = {i["id"]: i["pid"] for i in status["instances"]}
    created = {pid: psutil.Process(pid).create_time() for pid in before.values()}
    assert len(before) == 3
    url = f"http://{status['listen']}/"
    last_event = env.cli("events", "--json", "--limit", "1").json()["events"][-1]["id"]

    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)

    # The data plane outlives the controller: traffic still flows to the same instances.
    with httpx.Client(timeout=5) as client:
        served = {client.get(url).json()["pid"] for _ in range(30)}
    assert served <= set(before.values())

    second = start_controller(env)
    assert second.pid != first.pid

    def adopted() -> list[dict[str, object]]:
        events = env.cli("events", "demo", "--json", "--limit", "1000").json()["events"]
        return [e for e in events if e["id"] > last_event and e["kind"] == "instance.adopted"]

    wait_until(lambda: len(adopted()) == 3, timeout=20, what="three adoption events")
    status = env.cli("status", "demo", "--json").json()
    after = {i["id"]: i["pid"] for i in status["instances"]}
    assert after == before
    assert all(i["restarts"] == 0 for i in status["instances"])
    assert {pid: psutil.Process(pid).create_time() for pid in after.values()} == created
    events = env.cli("events", "demo", "--json", "--limit", "1000").json()["events"]
    assert not [
        e
        for e in events
        if e["id"] > last_event and e["kind"] in ("instance.started", "instance.restarted")
    ]
    with httpx.Client(timeout=5) as client:
        assert all(client.get(url).status_code == 200 for _ in range(20))
