"""Native: Swarm's own update replaces the tasks in place; zerodown routes, judges, rolls back.

For ``platform: swarm`` with ``strategy: native``, a release runs as ONE Swarm service of
``replicas`` tasks (see ``platforms/swarm_tasks.py``). A new release is an in-place
``docker service update`` of that service with Swarm's ``update_config`` from the spec
(``parallelism``, ``delay``, ``order``, ``failureAction``, ``monitor``, ``maxFailureRatio``):
Swarm picks which task goes when. zerodown:

- keeps the proxy's backends in line with the tasks (each task is an instance on its dynamic
  host-mode port, labelled with the revision its spec carries), draining a task as soon as
  Swarm asks it to stop; traffic is shared per healthy task, so each version's share is its
  number of healthy tasks;
- runs one analysis over the whole update, new tasks against old ones in the same window, and
  keeps it going after Swarm reports ``completed`` until it passes (all traffic then on the
  new version, compared with the previous version's recorded latency);
- on a failed verdict, a crashed or unhealthy new task, a post-deployment check or an abort,
  runs the rollback procedure with Swarm's own rollback (``docker service update --rollback``),
  weights back to the old tasks as soon as one is healthy; when Swarm's ``failureAction:
  rollback`` rolls back by itself, zerodown records that as the rollback;
- when Swarm pauses the update (``failureAction: pause``), pauses the rollout: ``zerodown
  abort`` rolls back, ``zerodown promote`` makes Swarm redo the update (a force update).

Swarm has no way to hold an update on request, so ``zerodown pause`` is refused for native
rollouts. State (persisted before Swarm is asked anything): ``phase`` (updating -> verifying),
``native`` (``requested``, ``issued``, ``started``, ``completed``, ``force``,
``skip_analysis``). A restarted controller re-reads the service's revision, ``PreviousSpec``
and ``UpdateStatus`` and goes on from there.
"""

from __future__ import annotations

from typing import Any, Protocol

from zerodown.analysis.base import Outcome
from zerodown.engine.strategies.base import RolloutContext
from zerodown.engine.strategies.common import analysis_gate, health_guard
from zerodown.platforms.base import ReplicatedView
from zerodown.spec.durations import format_duration
from zerodown.spec.models import NativeSpec

__all__ = ["NativeContext", "advance", "advance_rollback", "describe"]

LABEL = "native update analysis"
# Longest wait, once Swarm is back on the stable revision, for all of its tasks to be healthy.
_VERIFY_EXTRA_SECONDS = 30.0


class NativeContext(RolloutContext, Protocol):
    """A rollout context that also sees the Swarm service as observed this tick."""

    def swarm(self) -> ReplicatedView | None:
        """The service, its tasks and Swarm's ``UpdateStatus``; None if not observed."""
        ...


def describe(config: NativeSpec) -> str:
    """Swarm's update settings in words, for events and the report."""
    parallel = "all tasks" if config.parallelism == 0 else f"{config.parallelism} at a time"
    return (
        f"{parallel}, {config.order}, delay {format_duration(config.delay)}, monitor "
        f"{format_duration(config.monitor)}, failure action {config.failure_action}"
        f" (max failure ratio {config.max_failure_ratio:g})"
    )


def _share_by_tasks(ctx: NativeContext, stable: int) -> None:
    """Traffic per healthy task: each version's weight is its number of healthy tasks."""
    ctx.set_weights({stable: ctx.ready(stable), ctx.new: ctx.ready(ctx.new)})


def _issued(ctx: NativeContext, view: ReplicatedView, native: dict[str, Any]) -> bool:
    """Has Swarm taken the update to the new revision (now, or before a rollback of it)?"""
    if native.get("issued"):
        return True
    taken = view.revision == ctx.new or (
        view.previous_revision == ctx.new and view.update_state.startswith("rollback")
    )
    if taken:
        native["issued"] = ctx.now
        ctx.emit(
            "native.issued",
            f"Swarm took the update to revision {ctx.new} ({view.update_state or 'no status'})",
        )
    return taken


def advance(ctx: NativeContext) -> None:
    state = ctx.state
    stable = ctx.stable
    assert stable is not None, "a native update needs a stable release"
    config = ctx.spec.strategy.native or NativeSpec()
    if not health_guard(ctx):
        return
    if state.get("phase") is None:
        # Written before the reconciler asks Swarm for the update (it acts on this state).
        state["phase"] = "updating"
        state["native"] = {"requested": ctx.now}
        _share_by_tasks(ctx, stable)
        ctx.start_analysis(ctx.spec.analysis, label=LABEL)
        ctx.emit(
            "native.requested",
            f"Swarm updates the {ctx.replicas} task(s) in place: {describe(config)}",
            how=describe(config),
            settings=config.model_dump(mode="json", by_alias=True),
        )
        return
    native = state.setdefault("native", {})
    view = ctx.swarm()
    if view is None or not view.exists:
        return  # not observed this tick, or being created again: nothing to judge Swarm by
    if not _issued(ctx, view, native):
        _share_by_tasks(ctx, stable)
        return
    if view.revision != ctx.new:
        # Swarm went back to the stable spec on its own: its failure action rolled back.
        ctx.stop_analysis()
        ctx.rollback(
            f"Swarm rolled the update back itself (failure action {config.failure_action}): "
            f"{view.update_message or view.update_state}"
        )
        state["rollback"]["by_swarm"] = True
        return
    if state["phase"] == "updating":
        _share_by_tasks(ctx, stable)
        if view.update_state == "paused" and int(native.get("force", 0)) <= view.force:
            _swarm_paused(ctx, view, native)
            return
        if ctx.paused() and state.get("paused", {}).get("kind") == "step":
            ctx.unpause()  # Swarm redoes the update after a promote
        if view.update_state == "updating" and "started" not in native:
            native["started"] = ctx.now
            ctx.emit("native.updating", f"Swarm is replacing tasks: {view.update_message}")
        done = (
            view.update_state in ("completed", "")
            and ctx.ready(ctx.new) >= ctx.replicas
            and ctx.live(stable) == 0
        )
        if not done:
            _judge_during_update(ctx)
            return
        native["completed"] = ctx.now
        state["phase"] = "verifying"
        took = ctx.now - float(native.get("issued") or native["requested"])
        ctx.emit(
            "native.completed",
            f"Swarm completed the update in {took:.1f}s: {ctx.replicas} task(s) of revision "
            f"{ctx.new} healthy",
            seconds=took,
        )
    ctx.set_weights({ctx.new: 100, stable: 0})
    if not native.get("skip_analysis") and not analysis_gate(ctx, ctx.spec.analysis, label=LABEL):
        return
    verdicts = state.get("verdicts") or [state.get("last_verdict")]
    last = verdicts[-1]
    summary = f"; analysis {last['outcome']}: {last['reason']}" if last else ""
    ctx.succeed(f"Swarm replaced all {ctx.replicas} tasks in place{summary}")


def _judge_during_update(ctx: NativeContext) -> bool:
    """Evaluate the running analysis (a promote skips it); False once it failed (the rollback
    has begun). Once Swarm is done, ``analysis_gate`` takes over the same analysis."""
    state = ctx.state
    if ctx.take_promote():
        if ctx.analysis_running():
            ctx.stop_analysis()
            ctx.emit("analysis.skipped", f"{LABEL}: skipped by promote")
        state["native"]["skip_analysis"] = True
        ctx.unpause()
        return True
    if not ctx.analysis_running():
        return True
    verdict = ctx.evaluate_analysis()
    if verdict is None:
        return True
    state["last_verdict"] = verdict.to_dict()
    if verdict.outcome == Outcome.FAIL:
        ctx.stop_analysis()
        ctx.rollback(f"{LABEL} failed: {verdict.reason}", verdict)
        return False
    return True


def _swarm_paused(ctx: NativeContext, view: ReplicatedView, native: dict[str, Any]) -> None:
    """Swarm's failure action paused the update: wait for abort, or redo it on promote. The
    judge still runs meanwhile (a failed verdict rolls back)."""
    if ctx.take_promote():
        native["force"] = view.force + 1  # the reconciler asks Swarm to redo the update
        ctx.unpause()
        ctx.emit("native.redo", "promote: Swarm redoes the paused update (force update)")
        return
    if not _judge_during_update(ctx):
        return
    if not ctx.paused():
        ctx.pause(
            f"Swarm paused the update: {view.update_message}; 'zerodown abort' rolls it back "
            "with Swarm's rollback, 'zerodown promote' makes Swarm redo it",
            kind="step",
        )


def advance_rollback(ctx: NativeContext) -> None:
    """The rollback procedure with Swarm's own rollback: traffic back to the old tasks as soon
    as one is healthy, Swarm puts the old spec back (the reconciler asks it, unless its failure
    action already did), then every old task healthy is verified."""
    state = ctx.state
    rb = state["rollback"]
    stable = ctx.stable
    view = ctx.swarm()
    if stable is None:
        # A first release failed: the service goes (the reconciler removes it).
        ctx.set_targets({ctx.new: 0})
        if ctx.live(ctx.new) == 0 and view is not None and not view.exists:
            state["outcome"] = {"status": "failed", "reason": rb["reason"]}
        return
    if "native" not in rb:
        rb["native"] = "by-swarm" if rb.get("by_swarm") else "requested"
        ctx.emit(
            "rollback.swarm",
            f"Swarm rolls the service back to revision {stable} by itself"
            if rb.get("by_swarm")
            else f"asking Swarm to roll the service back to revision {stable} "
            "(docker service update --rollback)",
        )
    ready = ctx.ready(stable)
    if not rb.get("switched") and ready > 0:
        # Until then the new tasks keep their share: nothing else could serve.
        ctx.set_weights({stable: 100, ctx.new: 0}, measure="rollback")
        rb["switched"] = True
        ctx.emit(
            "rollback.switched", f"traffic back on revision {stable} ({ready} task(s) healthy)"
        )
    if view is None or not view.exists:
        return
    if view.update_state == "rollback_paused" and not rb.get("swarm_paused"):
        rb["swarm_paused"] = True
        ctx.emit("rollback.paused", f"Swarm paused its rollback: {view.update_message}")
    if view.revision != stable or view.update_state in ("updating", "rollback_started"):
        return
    if ctx.live(ctx.new) > 0:
        return
    waited = ctx.now - float(rb["started"])
    if (
        ready < ctx.replicas
        and waited < ctx.spec.health_check.startup_grace + _VERIFY_EXTRA_SECONDS
    ):
        return
    how = "Swarm's rollback" if view.update_state.startswith("rollback") else "an update back"
    rb["verified"] = (
        f"{ready}/{ctx.replicas} tasks of revision {stable} healthy after {how} "
        f"({view.update_state or 'no update status'})"
    )
    state["outcome"] = {"status": "rolled_back", "reason": rb["reason"]}
