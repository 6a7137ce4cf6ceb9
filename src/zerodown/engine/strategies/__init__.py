"""Strategies as small state machines over a release's persisted rollout state.

``STRATEGIES`` maps the strategy name recorded on a release to its ``advance`` function.
"""

from __future__ import annotations

from collections.abc import Callable

from zerodown.engine.strategies import bluegreen, canary, initial, rolling
from zerodown.engine.strategies.base import RolloutContext, group_of

__all__ = ["STRATEGIES", "RolloutContext", "group_of"]

STRATEGIES: dict[str, Callable[[RolloutContext], None]] = {
    "initial": initial.advance,
    "rolling": rolling.advance,
    "blue-green": bluegreen.advance,
    "canary": canary.advance,
    "rollback": bluegreen.advance,
}
