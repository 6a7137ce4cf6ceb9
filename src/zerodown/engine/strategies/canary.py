"""Canary: the new release runs beside the stable one and takes traffic in steps.

Steps are the spec's (default 5 -> 25 -> 50 -> 100 % with an analysis after each weight):
``setWeight`` moves traffic, ``pause`` waits for a duration or for ``zerodown promote``,
``analysis`` judges the canary against the stable release over the same window. The new set
runs at full size from the start (as Flagger does), so a weight change is one atomic routing
update and a rollback is a weight flip back to the stable release.

State: ``phase`` (starting -> steps), ``step`` (index of the step being run),
``pause_until`` (a running timed pause).
"""

from __future__ import annotations

from zerodown.engine.strategies.base import RolloutContext
from zerodown.engine.strategies.common import analysis_gate, health_guard
from zerodown.spec.defaults import default_canary_steps
from zerodown.spec.steps import AnalysisStep, PauseStep, SetWeightStep

__all__ = ["advance"]


def advance(ctx: RolloutContext) -> None:
    state = ctx.state
    stable = ctx.stable
    assert stable is not None, "a canary needs a stable release"
    if not health_guard(ctx):
        return
    if state.get("phase") in (None, "starting"):
        state["phase"] = "starting"
        ctx.set_targets({stable: ctx.replicas, ctx.new: ctx.replicas})
        if not ctx.weights():
            ctx.set_weights({stable: 100, ctx.new: 0})
        if ctx.ready(ctx.new) < ctx.replicas:
            return
        state["phase"] = "steps"
        state["step"] = 0
        ctx.emit("canary.ready", f"{ctx.replicas} canary instance(s) healthy; running the steps")

    # A deploy may choose canary over the spec's own strategy: then the default steps apply.
    steps = ctx.spec.canary_steps or default_canary_steps()
    # Run steps until one is unfinished (reconcile habit: early return on anything pending).
    while state["step"] < len(steps):
        index = int(state["step"])
        step = steps[index]
        if isinstance(step, SetWeightStep):
            weight = step.set_weight
            ctx.set_weights({stable: 100 - weight, ctx.new: weight})
            ctx.emit(
                "canary.weight",
                f"step {index + 1}/{len(steps)}: canary weight {weight} %",
                step=index,
                weight=weight,
            )
            state["step"] = index + 1
            continue
        if isinstance(step, PauseStep):
            if not _pause_done(ctx, step, index, len(steps)):
                return
            state["step"] = index + 1
            continue
        if isinstance(step, AnalysisStep):
            config = ctx.spec.analysis_for(step)
            label = f"analysis at step {index + 1}/{len(steps)}"
            if not analysis_gate(ctx, config, label=label):
                return
            state["step"] = index + 1
            continue
        raise AssertionError(f"unknown step {step!r}")
    ctx.set_weights({ctx.new: 100, stable: 0})
    ctx.succeed(f"canary promoted after {len(steps)} steps")


def _pause_done(ctx: RolloutContext, step: PauseStep, index: int, total: int) -> bool:
    state = ctx.state
    if ctx.take_promote():
        state.pop("pause_until", None)
        ctx.unpause()
        ctx.emit("canary.promoted", f"step {index + 1}/{total}: pause ended by promote")
        return True
    duration = step.pause.duration
    if duration is None:
        if not ctx.paused():
            ctx.pause(f"step {index + 1}/{total}: paused until 'zerodown promote'")
        return False
    until = state.get("pause_until")
    if until is None:
        state["pause_until"] = ctx.now + duration
        ctx.emit("canary.pause", f"step {index + 1}/{total}: pausing {duration:g}s")
        return False
    if ctx.now < float(until):
        return False
    state.pop("pause_until", None)
    return True
