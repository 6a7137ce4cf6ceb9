"""What a new user does, through the real CLI, a real controller, proxy and instances."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import psutil

from tests.fixtures.zerodown import Controller, Env, wait_until


def _listen(env: Env, service: str = "demo") -> str:
    data = env.cli("status", service, "--json").json()
    return f"http://{data['listen']}"


def test_up_status_traffic_history_logs_stop(controller: Controller, tmp_path: Path) -> None:
    """The first-steps story of the README works end to end with 3 local instances."""
    env = controller.env
    spec = env.write_spec(tmp_path)
    assert env.cli("validate", str(spec)).code == 0

    result = env.cli("up", str(spec), "--version", "v1")
    assert result.code == 0, result.stderr
    status = env.cli("status", "demo", "--json").json()
    assert status["release"]["status"] == "succeeded"
    assert status["ready"] == 3
    pids = {i["pid"] for i in status["instances"]}
    assert len(pids) == 3 and all(psutil.pid_exists(p) for p in pids)

    url = _listen(env)
    seen: set[int] = set()
    with httpx.Client(timeout=5) as client:
        for _ in range(60):
            response = client.get(url + "/")
            assert response.status_code == 200
            assert response.json()["version"] == "v1"
            seen.add(response.json()["pid"])
    assert seen == {p for p in pids if p} or len(seen) == 3

    history = env.cli("history", "demo", "--json").json()["releases"]
    assert [(r["revision"], r["status"]) for r in history] == [(1, "succeeded")]

    def logged() -> bool:
        entries = env.cli("logs", "demo", "--json", "--tail", "0").stdout.splitlines()
        return any('"GET / 200' in line or "GET / 200" in line for line in entries)

    wait_until(logged, timeout=15, what="request lines in the aggregated log")

    again = env.cli("up", str(spec))
    assert again.code == 3
    assert "already up" in again.stderr

    stopped = env.cli("stop", "demo")
    assert stopped.code == 0, stopped.stderr
    wait_until(
        lambda: not any(psutil.pid_exists(p) for p in pids), timeout=10, what="instances to exit"
    )
    assert env.cli("status", "demo", "--json").json()["instances"] == []


def test_unknown_service_is_bad_input(controller: Controller) -> None:
    result = controller.env.cli("status", "nope")
    assert result.code == 2
    assert "nope" in result.stderr and "Traceback" not in result.stderr


def test_commands_without_a_controller_say_how_to_start_one(zd_env: Env) -> None:
    result = zd_env.cli("status")
    assert result.code == 1
    assert "zerodown serve" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_instance_that_never_gets_healthy_fails_the_release(
    controller: Controller, tmp_path: Path
) -> None:
    """Health failure within the startup grace fails the release and leaves nothing running."""
    env = controller.env
    spec = env.write_spec(tmp_path, replicas=2, extra_env={"HEALTH": "fail"}, startup_grace="2s")
    result = env.cli("up", str(spec), "--version", "bad")
    assert result.code == 1
    assert "did not become healthy" in result.stderr
    history = env.cli("history", "demo", "--json").json()["releases"]
    assert history[0]["status"] == "failed"
    wait_until(
        lambda: env.cli("status", "demo", "--json").json()["instances"] == [],
        timeout=15,
        what="the failed release's instances to stop",
    )


def test_a_crashed_instance_is_restarted_by_policy(controller: Controller, tmp_path: Path) -> None:
    """kill -9 of one instance: the supervisor starts a replacement in the same slot."""
    env = controller.env
    spec = env.write_spec(tmp_path, replicas=2)
    assert env.cli("up", str(spec)).code == 0
    before = env.cli("status", "demo", "--json").json()["instances"]
    victim = before[0]
    os.kill(victim["pid"], signal.SIGKILL)

    def replaced() -> dict[str, object] | None:
        now = env.cli("status", "demo", "--json").json()["instances"]
        for inst in now:
            same_slot = inst["slot"] == victim["slot"] and inst["pid"] != victim["pid"]
            if same_slot and inst["state"] == "running":
                return inst
        return None

    new = wait_until(replaced, timeout=30, what="a replacement instance")
    assert new["restarts"] == 1
    kinds = [e["kind"] for e in env.cli("events", "demo", "--json").json()["events"]]
    assert "instance.crashed" in kinds and "instance.restarted" in kinds
