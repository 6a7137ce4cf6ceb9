"""The first release of a service (``zerodown up``): start every instance, then route to it.

Nothing serves yet, so there is nothing to compare against and nothing to roll back to: an
instance that crashes or never becomes healthy fails the release.
"""

from __future__ import annotations

from zerodown.engine.strategies.base import RolloutContext
from zerodown.engine.strategies.common import health_guard

__all__ = ["advance"]


def advance(ctx: RolloutContext) -> None:
    if not health_guard(ctx):
        return
    ctx.state.setdefault("phase", "starting")
    ctx.set_targets({ctx.new: ctx.replicas})
    if ctx.ready(ctx.new) < ctx.replicas:
        return
    ctx.set_weights({ctx.new: 100})
    ctx.succeed(f"{ctx.replicas}/{ctx.replicas} instances healthy")
