"""The replicated Swarm service of ``strategy: native``, as specs and observations (no engine)."""

from __future__ import annotations

from zerodown.core.types import Revision, ServiceName, Version
from zerodown.platforms.base import ReplicatedRequest, UpdatePolicy
from zerodown.platforms.docker import ContainerRequest
from zerodown.platforms.swarm_tasks import replicated_view, service_spec_of, task_view

POLICY = UpdatePolicy(
    parallelism=1,
    delay=1.5,
    order="start-first",
    failure_action="rollback",
    monitor=5.0,
    max_failure_ratio=0.25,
)


def request(**changes: object) -> ReplicatedRequest:
    instance = ContainerRequest(
        service=ServiceName("shop"),
        version=Version("v2"),
        revision=Revision(2),
        slot=0,
        command="",
        image="shop:2",
        env={"APP_VERSION": "v2"},
        container_port=8080,
        cpus=0.5,
        memory_bytes=64 * 1024 * 1024,
    )
    fields: dict[str, object] = {
        "instance": instance,
        "replicas": 3,
        "policy": POLICY,
        "stop_grace": 5.0,
        "restart": "on-failure",
        "max_restarts": 3,
        "restart_window": 60.0,
        **changes,
    }
    return ReplicatedRequest(**fields)  # type: ignore[arg-type]


def test_every_task_publishes_its_port_in_host_mode_on_a_port_the_engine_picks() -> None:
    spec = service_spec_of(request(), "shop:2", {"team": "a"})
    assert spec["Name"] == "shop"
    assert spec["Mode"] == {"Replicated": {"Replicas": 3}}
    assert spec["EndpointSpec"] == {
        "Mode": "dnsrr",
        "Ports": [{"Protocol": "tcp", "TargetPort": 8080, "PublishMode": "host"}],
    }


def test_the_update_config_is_the_spec_s_in_nanoseconds_and_rollbacks_go_all_at_once() -> None:
    spec = service_spec_of(request(), "shop:2", {})
    assert spec["UpdateConfig"] == {
        "Parallelism": 1,
        "Delay": 1_500_000_000,
        "FailureAction": "rollback",
        "Monitor": 5_000_000_000,
        "MaxFailureRatio": 0.25,
        "Order": "start-first",
    }
    assert spec["RollbackConfig"]["Parallelism"] == 0
    assert spec["RollbackConfig"]["Order"] == "start-first"


def test_tasks_carry_the_revision_limits_restart_policy_and_grace_of_the_release() -> None:
    template = service_spec_of(request(force=4), "shop:2", {"team": "a"})["TaskTemplate"]
    container = template["ContainerSpec"]
    assert container["Labels"]["zerodown.revision"] == "2"
    assert container["Labels"]["zerodown.native"] == "1" and container["Labels"]["team"] == "a"
    assert "ZERODOWN_INSTANCE={{.Task.Name}}" in container["Env"]
    assert "PORT=8080" in container["Env"] and "APP_VERSION=v2" in container["Env"]
    assert container["Init"] is True and container["StopGracePeriod"] == 5_000_000_000
    assert template["Resources"] == {
        "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 64 * 1024 * 1024}
    }
    assert template["RestartPolicy"] == {
        "Condition": "on-failure",
        "MaxAttempts": 3,
        "Window": 60_000_000_000,
    }
    assert template["ForceUpdate"] == 4


TASK = {
    "ID": "k5piml0123456789abcdefghi",
    "CreatedAt": "2026-11-27T17:10:01.5Z",
    "Slot": 3,
    "DesiredState": "shutdown",
    "Spec": {"ContainerSpec": {"Labels": {"zerodown.revision": "1", "zerodown.version": "v1"}}},
    "Status": {
        "State": "failed",
        "Err": "task: non-zero exit (3)",
        "ContainerStatus": {"ContainerID": "abc", "PID": 0, "ExitCode": 3},
        "PortStatus": {"Ports": [{"TargetPort": 8080, "PublishedPort": 32769}]},
    },
}


def test_a_task_says_its_revision_state_port_and_exit_code() -> None:
    task = task_view(TASK)
    assert (task.slot, task.revision, task.version) == (3, 1, "v1")
    assert (task.desired, task.state, task.exit_code, task.port) == ("shutdown", "failed", 3, 32769)
    assert task.error == "task: non-zero exit (3)" and task.container_id == "abc"
    running = task_view({**TASK, "Status": {"State": "running", "ContainerStatus": {"PID": 7}}})
    assert running.exit_code is None and running.pid == 7 and running.port is None


def test_the_service_says_which_revision_it_runs_and_which_its_rollback_returns_to() -> None:
    attrs = {
        "ID": "svc",
        "Spec": {
            "Labels": {"zerodown.revision": "3"},
            "Mode": {"Replicated": {"Replicas": 3}},
            "TaskTemplate": {"ForceUpdate": 1},
        },
        "PreviousSpec": {"Labels": {"zerodown.revision": "2"}},
        "UpdateStatus": {"State": "paused", "Message": "update paused due to failure"},
    }
    view = replicated_view(attrs, [TASK])
    assert (view.revision, view.previous_revision, view.replicas, view.force) == (3, 2, 3, 1)
    assert (view.update_state, view.update_message) == ("paused", "update paused due to failure")
    assert [t.id for t in view.tasks] == [TASK["ID"]]
