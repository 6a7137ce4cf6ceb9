"""What a strategy sees and may do during one reconcile tick: the ``RolloutContext`` Protocol.

A strategy is a small state machine over ``ctx.state`` (a JSON-ready dict persisted in the
release record). Each call to ``advance(ctx)`` looks at the observed world through the context
and moves at most a few steps; it never blocks and never touches a platform, the router or the
store directly. The reconciler implements the context, persists ``ctx.state`` *before* acting on
it (targets, weights), and then brings instances and routes in line with it. So a controller
killed between two ticks resumes from the last persisted state.

Revisions are named by group labels ``r<revision>`` in the data plane.
"""

from __future__ import annotations

from typing import Any, Protocol

from zerodown.analysis.base import Verdict
from zerodown.spec.models import AnalysisSpec, ServiceSpec

__all__ = ["RolloutContext", "group_of"]


def group_of(revision: int) -> str:
    """The data-plane group label of a revision."""
    return f"r{revision}"


class RolloutContext(Protocol):
    """One rollout (new release replacing a stable one) as a strategy sees it."""

    state: dict[str, Any]
    spec: ServiceSpec  # the new release's spec
    new: int  # the new revision
    stable: int | None  # the revision serving before this rollout; None for the first release
    now: float  # wall-clock seconds since the epoch

    @property
    def replicas(self) -> int: ...

    def available(self, revision: int) -> int:
        """Instances healthy and ready for at least ``minReadySeconds``, not retiring."""
        ...

    def ready(self, revision: int) -> int:
        """Instances that passed their health check and are not retiring."""
        ...

    def live(self, revision: int) -> int:
        """Instances running (any health), not retiring."""
        ...

    def failing(self) -> list[str]:
        """New-release instances that crashed or failed health checks after starting, each
        described in a few words ("web-r2-0-ab12cd exited with code 3")."""
        ...

    def never_healthy(self) -> list[str]:
        """New-release instances that did not become healthy within their startup grace."""
        ...

    def set_targets(self, targets: dict[int, int]) -> None:
        """How many instances each revision should have."""
        ...

    def set_weights(self, weights: dict[int, int], *, measure: str | None = None) -> None:
        """Traffic share per revision (need not add up to 100).

        ``measure`` names the change ("switch", "rollback") so the time it takes is recorded.
        """
        ...

    def weights(self) -> dict[int, int]: ...

    def start_analysis(self, config: AnalysisSpec, *, label: str) -> None:
        """Begin a measurement window now (canary vs stable over the same window)."""
        ...

    def analysis_running(self) -> bool: ...

    def evaluate_analysis(self) -> Verdict | None:
        """The judge's verdict when one is due (every ``interval``), else None."""
        ...

    def stop_analysis(self) -> None: ...

    def take_promote(self) -> bool:
        """True once after a user asked to promote (skip the current pause or analysis)."""
        ...

    def pause(self, reason: str, *, kind: str = "step") -> None:
        """Mark the rollout paused with the reason.

        ``kind`` "step" waits for promote (resume also goes on); "analysis" waits for resume
        (analyse again) or promote (go on without it).
        """
        ...

    def unpause(self) -> None: ...

    def paused(self) -> bool: ...

    def succeed(self, reason: str, *, retire_stable_after: float = 0.0) -> None:
        """The new release serves all traffic: finish the rollout."""
        ...

    def rollback(self, reason: str, verdict: Verdict | None = None) -> None:
        """Start the automatic rollback procedure with this reason."""
        ...

    def emit(self, kind: str, message: str, **data: Any) -> None: ...
