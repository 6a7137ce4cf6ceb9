"""Rolling: replace instances a few at a time, each new one healthy before an old one goes.

With ``maxSurge`` extra instances allowed and ``maxUnavailable`` allowed missing, capacity
never drops below ``replicas - maxUnavailable``: an old instance is drained and stopped only
when enough new ones have been healthy for ``minReadySeconds``. Traffic is shared per
instance (each group's weight is its number of ready instances). An analysis compares the new
instances against the old ones over the same window for the whole rollout.

State: ``phase`` (rolling), ``targets``.
"""

from __future__ import annotations

from zerodown.analysis.base import Outcome
from zerodown.engine.strategies.base import RolloutContext
from zerodown.engine.strategies.common import health_guard
from zerodown.spec.models import RollingSpec

__all__ = ["advance", "next_targets"]


def next_targets(
    *,
    replicas: int,
    surge: int,
    unavailable: int,
    old: int,
    new: int,
    old_ready: int,
    new_available: int,
) -> tuple[int, int]:
    """(old, new) instance counts for the next move; a pure function of what is observed.

    ``old``/``new`` are the current targets, ``old_ready``/``new_available`` what can serve.
    """
    floor = max(replicas - unavailable, 0)
    # Retire old instances while the serving total stays at or above the floor.
    can_serve = old_ready + new_available
    removable = max(0, can_serve - floor)
    old_target = max(0, old - removable)
    # Start new instances within the surge budget.
    new_target = min(replicas, max(new, replicas + surge - old_target))
    return old_target, new_target


def advance(ctx: RolloutContext) -> None:
    state = ctx.state
    stable = ctx.stable
    assert stable is not None, "a rolling update needs a stable release"
    config = ctx.spec.strategy.rolling or RollingSpec()
    if not health_guard(ctx):
        return
    if state.get("phase") is None:
        state["phase"] = "rolling"
        state["targets"] = {str(stable): ctx.replicas, str(ctx.new): 0}
        ctx.start_analysis(ctx.spec.analysis, label="rolling analysis")
    targets = state["targets"]
    old, new = int(targets[str(stable)]), int(targets[str(ctx.new)])
    verdict = ctx.evaluate_analysis() if ctx.analysis_running() else None
    if verdict is not None:
        state["last_verdict"] = verdict.to_dict()
        if verdict.outcome == Outcome.FAIL:
            ctx.stop_analysis()
            ctx.rollback(f"rolling analysis failed: {verdict.reason}", verdict)
            return
    old_ready = min(ctx.ready(stable), old)
    new_available = ctx.available(ctx.new)
    old_next, new_next = next_targets(
        replicas=ctx.replicas,
        surge=config.surge_count(ctx.replicas),
        unavailable=config.unavailable_count(ctx.replicas),
        old=old,
        new=new,
        old_ready=old_ready,
        new_available=new_available,
    )
    if (old_next, new_next) != (old, new):
        ctx.emit(
            "rolling.step",
            f"old {old} -> {old_next}, new {new} -> {new_next} "
            f"({new_available} new ready, {old_ready} old ready)",
            old=old_next,
            new=new_next,
        )
    ctx.set_targets({stable: old_next, ctx.new: new_next})
    ctx.set_weights({stable: min(ctx.ready(stable), old_next), ctx.new: new_available})
    if old_next == 0 and new_available >= ctx.replicas:
        ctx.set_weights({ctx.new: 100, stable: 0})
        last = state.get("last_verdict")
        summary = f"; last analysis {last['outcome']}: {last['reason']}" if last else ""
        ctx.stop_analysis()
        ctx.succeed(f"all {ctx.replicas} instances replaced{summary}")
