"""Services run as one replicated Swarm service (``strategy: native``): the pure part of the loop.

For such a service the reconciler does not start and stop instances itself. Each tick it
observes the Swarm service (``InPlaceUpdates.observe_replicated``), turns what the tasks say
into instance changes (``task_changes``: tasks Swarm started become instances to probe and
route to, tasks Swarm is stopping are drained, tasks that ended on their own are crashes), lets
the strategy decide with that observation, persists the decision, and only then tells Swarm what
to do (``next_action``: create the service, update it in place to a revision, roll it back with
Swarm's own rollback, or remove it). Both functions are pure, so a restarted controller that
re-reads Swarm's state (its spec's revision, ``PreviousSpec`` and ``UpdateStatus``) reaches the
same decisions: an action is derived from the persisted state and the observation, never
remembered as "done".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from zerodown.platforms.base import (
    InstanceRequest,
    ReplicatedRequest,
    ReplicatedView,
    TaskView,
    UpdatePolicy,
)
from zerodown.spec.models import NativeSpec, ServiceSpec

__all__ = [
    "ENDED_BY_SWARM",
    "SwarmAction",
    "TaskChanges",
    "next_action",
    "replicated_request",
    "runs_native",
    "task_changes",
    "update_policy",
]

# A task Swarm stopped on purpose (update, rollback, scale down, service removed) ends in one of
# these; any other end (failed, complete, rejected, orphaned) is the task's own doing: a crash.
ENDED_BY_SWARM = frozenset({"shutdown", "remove"})
_ACTIVE = frozenset(
    {"new", "allocated", "pending", "assigned", "accepted", "ready", "preparing", "starting"}
)
_SWARM_BUSY = frozenset({"updating", "rollback_started"})


def runs_native(spec: ServiceSpec) -> bool:
    """True if the spec's releases run as one replicated Swarm service."""
    return spec.platform == "swarm" and spec.strategy.native is not None


def update_policy(spec: ServiceSpec) -> UpdatePolicy:
    native = spec.strategy.native or NativeSpec()
    return UpdatePolicy(
        parallelism=native.parallelism,
        delay=native.delay,
        order=native.order,
        failure_action=native.failure_action,
        monitor=native.monitor,
        max_failure_ratio=native.max_failure_ratio,
    )


def replicated_request(
    spec: ServiceSpec, instance: InstanceRequest, *, force: int = 0
) -> ReplicatedRequest:
    """What to ask Swarm for: ``spec.replicas`` tasks running ``instance``."""
    return ReplicatedRequest(
        instance=instance,
        replicas=spec.replicas,
        policy=update_policy(spec),
        stop_grace=spec.run.stop_grace_seconds,
        restart=spec.run.restart,
        max_restarts=spec.run.max_restarts,
        restart_window=spec.run.restart_window,
        force=force,
    )


@dataclass(frozen=True)
class TaskChanges:
    """What changed among the tasks since the instances were last brought in line."""

    started: tuple[TaskView, ...] = ()
    """Running tasks with a published port and a revision, not an instance yet."""
    stopping: tuple[str, ...] = ()
    """Task ids of instances Swarm is stopping or has stopped (or forgot): drain them now."""
    crashed: tuple[TaskView, ...] = ()
    """Tasks of instances that ended on their own."""


def task_changes(view: ReplicatedView, known: Mapping[str, bool]) -> TaskChanges:
    """Compare the observed tasks with the instances (``known``: task id -> being retired)."""
    tasks = {task.id: task for task in view.tasks}
    started: list[TaskView] = []
    stopping: list[str] = []
    crashed: list[TaskView] = []
    for task_id, retiring in known.items():
        task = tasks.get(task_id)
        if task is None:
            if not retiring:
                stopping.append(task_id)  # its service was removed: Swarm is stopping it
            continue
        if task.state == "running" or task.state in _ACTIVE:
            if task.desired != "running" and not retiring:
                stopping.append(task_id)  # Swarm has just asked it to stop: drain it first
            continue
        if task.state in ENDED_BY_SWARM:
            if not retiring:
                stopping.append(task_id)
            continue
        if not retiring:
            crashed.append(task)
    for task in view.tasks:
        if (
            task.id not in known
            and task.desired == "running"
            and task.state == "running"
            and task.port is not None
            and task.revision is not None
        ):
            started.append(task)
    started.sort(key=lambda task: (task.slot, task.created_at))
    return TaskChanges(started=tuple(started), stopping=tuple(stopping), crashed=tuple(crashed))


@dataclass(frozen=True)
class SwarmAction:
    """One request to Swarm; ``why`` goes into the event that records it."""

    kind: str  # "create", "update", "rollback" or "remove"
    revision: int | None
    why: str
    force: int = 0


def next_action(
    view: ReplicatedView,
    *,
    want: int | None,
    force: int = 0,
    rollback_to: int | None = None,
    remove: bool = False,
    settle_first: bool = False,
) -> SwarmAction | None:
    """The one thing to ask Swarm now, or None when Swarm runs (or is moving to) what is wanted.

    ``want``: the revision the service should run; ``rollback_to``: a rollback is under way
    to this revision (Swarm's own rollback when its ``PreviousSpec`` is that revision, else an
    update back to it); ``remove``: the service should not exist; ``force``: the force-update
    counter the service should have (a higher one makes Swarm redo a paused update);
    ``settle_first``: let an update or rollback Swarm is running end before changing anything.
    """
    if remove:
        return SwarmAction("remove", None, "the service stops") if view.exists else None
    if rollback_to is not None:
        if not view.exists:
            return SwarmAction(
                "create", rollback_to, f"the Swarm service is gone; creating revision {rollback_to}"
            )
        if view.revision == rollback_to:
            return None
        if view.previous_revision == rollback_to and not view.update_state.startswith("rollback"):
            return SwarmAction(
                "rollback", rollback_to, f"Swarm's rollback to revision {rollback_to}"
            )
        return SwarmAction(
            "update",
            rollback_to,
            f"Swarm's previous spec is revision {view.previous_revision}, not {rollback_to}: "
            f"updating back to revision {rollback_to}",
            view.force,
        )
    if want is None:
        return None
    if not view.exists:
        return SwarmAction("create", want, f"creating the Swarm service at revision {want}", force)
    if view.revision != want:
        if settle_first and view.update_state in _SWARM_BUSY:
            return None
        return SwarmAction(
            "update",
            want,
            f"updating the Swarm service in place to revision {want}",
            max(force, view.force),
        )
    if force > view.force:
        return SwarmAction(
            "update", want, f"making Swarm redo the update to revision {want}", force
        )
    return None
