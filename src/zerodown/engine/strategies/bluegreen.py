"""Blue-green: a full green set starts beside blue; traffic switches at once.

Green is health-checked (and reachable on the preview port when the spec names one), then 100 %
of traffic moves in one atomic routing update. Blue stays warm for ``scaleDownDelaySeconds``, so
a rollback is a weight flip back. After the switch an analysis compares green against blue's
latency recorded before the switch (blue no longer takes traffic in the same window).

State: ``phase`` (starting -> ready -> switched).
"""

from __future__ import annotations

from zerodown.engine.strategies.base import RolloutContext
from zerodown.engine.strategies.common import analysis_gate, health_guard
from zerodown.spec.models import BlueGreenSpec

__all__ = ["advance"]


def advance(ctx: RolloutContext) -> None:
    state = ctx.state
    stable = ctx.stable
    assert stable is not None, "blue-green needs a stable release"
    config = ctx.spec.strategy.blue_green or BlueGreenSpec()
    if not health_guard(ctx):
        return
    if state.get("phase") in (None, "starting"):
        state["phase"] = "starting"
        ctx.set_targets({stable: ctx.replicas, ctx.new: ctx.replicas})
        if not ctx.weights():
            ctx.set_weights({stable: 100, ctx.new: 0})
        if ctx.ready(ctx.new) < ctx.replicas:
            return
        state["phase"] = "ready"
        where = f" (preview on port {config.preview_port})" if config.preview_port else ""
        ctx.emit("bluegreen.ready", f"green: {ctx.replicas} instance(s) healthy{where}")
    if state["phase"] == "ready":
        if not config.auto_promote and not ctx.take_promote():
            if not ctx.paused():
                ctx.pause("green is ready; waiting for 'zerodown promote' to switch traffic")
            return
        ctx.unpause()
        ctx.set_weights({ctx.new: 100, stable: 0}, measure="switch")
        state["phase"] = "switched"
        ctx.emit("bluegreen.switched", "traffic switched to green (100 %)")
        return
    if state["phase"] == "switched":
        if not analysis_gate(ctx, ctx.spec.analysis, label="post-switch analysis"):
            return
        ctx.succeed(
            f"green serves all traffic; blue kept warm for {config.scale_down_delay_seconds:g}s",
            retire_stable_after=config.scale_down_delay_seconds,
        )
