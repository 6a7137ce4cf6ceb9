"""The pieces of a replicated Swarm service (``strategy: native``): its spec and what its tasks say.

A service deployed with ``strategy: native`` is ONE Swarm service named after the zerodown
service, with ``replicas`` tasks. Each task publishes the container port in host mode on a
*dynamic* host port (``PublishedPort`` left out: the engine picks a free one per task, found in
the task's ``PortStatus``), so several tasks of one service share a node, ``start-first``
updates can start a new task beside the old one (a fixed host port would leave it pending
forever), and the proxy routes to each task. The routing mesh and virtual IPs are not used
(``endpoint_mode=dnsrr``): they need IPVS, which kernels without it lack.

The service and its container spec carry the ``zerodown.*`` labels, among them the revision:
a task's labels say which release it runs, so the engine labels its traffic per version and a
Swarm rollback (which swaps the whole spec) is seen task by task. ``ZERODOWN_INSTANCE`` in the
container's environment is the task's name (a Swarm template), since one environment serves
every task of the service.

Everything here is a pure function of SDK dictionaries, so it is tested without an engine.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from zerodown.platforms.base import ReplicatedRequest, ReplicatedView, TaskView
from zerodown.platforms.docker import (
    LABEL_PREFIX,
    ContainerRequest,
    container_env,
    container_port,
    parse_engine_time,
)

__all__ = [
    "NATIVE_LABEL",
    "ROLLBACK_CONFIG",
    "container_spec_of",
    "is_native_service",
    "replicated_view",
    "resources_of",
    "restart_policy_of",
    "service_labels",
    "service_spec_of",
    "task_view",
    "update_config_of",
]

NATIVE_LABEL = f"{LABEL_PREFIX}native"
_NS = 1_000_000_000
_RESTART_CONDITIONS = {"always": "any", "on-failure": "on-failure", "never": "none"}
# Swarm rolls back as fast as it can: every task at once, each new one before its old one
# stops; a task failing meanwhile does not stop the rollback.
ROLLBACK_CONFIG: Mapping[str, Any] = {
    "Parallelism": 0,
    "Delay": 0,
    "FailureAction": "continue",
    "Monitor": 5 * _NS,
    "MaxFailureRatio": 0.0,
    "Order": "start-first",
}


def service_labels(request: ReplicatedRequest, extra: Mapping[str, str]) -> dict[str, str]:
    """The labels of the service and of each task's container."""
    instance = request.instance
    return {
        **extra,
        f"{LABEL_PREFIX}service": instance.service,
        f"{LABEL_PREFIX}version": instance.version,
        f"{LABEL_PREFIX}revision": str(instance.revision),
        NATIVE_LABEL: "1",
    }


def is_native_service(attrs: Mapping[str, Any], service: str) -> bool:
    """True if ``attrs`` describe the replicated service zerodown made for ``service``."""
    labels = (attrs.get("Spec") or {}).get("Labels") or {}
    return labels.get(NATIVE_LABEL) == "1" and labels.get(f"{LABEL_PREFIX}service") == service


def container_spec_of(
    request: ReplicatedRequest, image: str, labels: Mapping[str, str]
) -> dict[str, Any]:
    """The ``ContainerSpec`` every task runs (``--init``, the stop grace period, the env)."""
    instance = request.instance
    port = container_port(instance)
    env = container_env(instance, "{{.Task.Name}}", port)
    spec: dict[str, Any] = {
        "Image": image,
        "Env": [f"{key}={value}" for key, value in env.items()],
        "Labels": dict(labels),
        "Init": True,
        "StopGracePeriod": round(request.stop_grace * _NS),
    }
    if instance.workdir is not None:
        spec["Dir"] = str(instance.workdir)
    if instance.command.strip():
        # As on ``docker``: the command replaces the image's CMD, its ENTRYPOINT stays.
        spec["Args"] = shlex.split(instance.command)
    return spec


def restart_policy_of(request: ReplicatedRequest) -> dict[str, Any]:
    """Swarm restarts crashed tasks itself, by the spec's ``run.restart`` policy."""
    policy: dict[str, Any] = {"Condition": _RESTART_CONDITIONS.get(request.restart, "any")}
    if request.max_restarts:
        policy["MaxAttempts"] = request.max_restarts
        policy["Window"] = round(request.restart_window * _NS)
    return policy


def resources_of(request: ReplicatedRequest) -> dict[str, Any]:
    instance = request.instance
    limits: dict[str, int] = {}
    if isinstance(instance, ContainerRequest):
        if instance.cpus is not None:
            limits["NanoCPUs"] = round(instance.cpus * _NS)
        if instance.memory_bytes is not None:
            limits["MemoryBytes"] = instance.memory_bytes
    return {"Limits": limits} if limits else {}


def update_config_of(request: ReplicatedRequest) -> dict[str, Any]:
    """Swarm's ``UpdateConfig`` from the spec's ``strategy.native``."""
    policy = request.policy
    return {
        "Parallelism": policy.parallelism,
        "Delay": round(policy.delay * _NS),
        "FailureAction": policy.failure_action,
        "Monitor": round(policy.monitor * _NS),
        "MaxFailureRatio": policy.max_failure_ratio,
        "Order": policy.order,
    }


def service_spec_of(
    request: ReplicatedRequest, image: str, extra_labels: Mapping[str, str]
) -> dict[str, Any]:
    """The whole service spec, as ``POST /services/create`` and ``/update`` take it."""
    labels = service_labels(request, extra_labels)
    template: dict[str, Any] = {
        "ContainerSpec": container_spec_of(request, image, labels),
        "RestartPolicy": restart_policy_of(request),
        "Resources": resources_of(request),
        "ForceUpdate": request.force,
    }
    return {
        "Name": request.instance.service,
        "Labels": labels,
        "TaskTemplate": template,
        "Mode": {"Replicated": {"Replicas": request.replicas}},
        "UpdateConfig": update_config_of(request),
        "RollbackConfig": dict(ROLLBACK_CONFIG),
        "EndpointSpec": {
            "Mode": "dnsrr",
            "Ports": [
                {
                    "Protocol": "tcp",
                    "TargetPort": container_port(request.instance),
                    "PublishMode": "host",
                }
            ],
        },
    }


def _revision_of(labels: Mapping[str, Any]) -> int | None:
    text = str(labels.get(f"{LABEL_PREFIX}revision") or "")
    return int(text) if text.isdigit() else None


def _time(text: Any) -> float | None:
    try:
        return parse_engine_time(str(text)) if text else None
    except ValueError:
        return None


def task_view(task: Mapping[str, Any]) -> TaskView:
    """What one task of ``GET /tasks`` says."""
    status = task.get("Status") or {}
    container = status.get("ContainerStatus") or {}
    labels = ((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Labels") or {}
    port = None
    for published in (status.get("PortStatus") or {}).get("Ports") or []:
        if published.get("PublishedPort"):
            port = int(published["PublishedPort"])
            break
    state = str(status.get("State") or "")
    code = container.get("ExitCode")
    pid = container.get("PID")
    return TaskView(
        id=str(task.get("ID") or ""),
        slot=int(task.get("Slot") or 0),
        revision=_revision_of(labels),
        version=str(labels.get(f"{LABEL_PREFIX}version") or ""),
        desired=str(task.get("DesiredState") or ""),
        state=state,
        port=port,
        exit_code=int(code) if code is not None and state not in ("running", "") else None,
        error=str(status.get("Err") or ""),
        container_id=str(container.get("ContainerID") or "") or None,
        pid=int(pid) if pid else None,
        created_at=_time(task.get("CreatedAt")) or 0.0,
    )


def replicated_view(attrs: Mapping[str, Any], tasks: list[Mapping[str, Any]]) -> ReplicatedView:
    """The observation of a service (``attrs`` from ``GET /services/{id}``) and its tasks."""
    spec = attrs.get("Spec") or {}
    previous = attrs.get("PreviousSpec") or {}
    update = attrs.get("UpdateStatus") or {}
    replicated = (spec.get("Mode") or {}).get("Replicated") or {}
    return ReplicatedView(
        exists=True,
        service_id=str(attrs.get("ID") or ""),
        revision=_revision_of(spec.get("Labels") or {}),
        previous_revision=_revision_of(previous.get("Labels") or {}) if previous else None,
        replicas=int(replicated.get("Replicas") or 0),
        force=int((spec.get("TaskTemplate") or {}).get("ForceUpdate") or 0),
        update_state=str(update.get("State") or ""),
        update_message=str(update.get("Message") or ""),
        update_started=_time(update.get("StartedAt")),
        update_completed=_time(update.get("CompletedAt")),
        tasks=tuple(task_view(task) for task in tasks),
    )
