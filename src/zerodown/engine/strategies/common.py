"""Pieces every strategy shares: waiting for the new set to start, health guard, analysis gate."""

from __future__ import annotations

from zerodown.analysis.base import Outcome
from zerodown.engine.strategies.base import RolloutContext
from zerodown.spec.models import AnalysisSpec

__all__ = ["analysis_gate", "health_guard"]


def health_guard(ctx: RolloutContext) -> bool:
    """Roll back when a new instance crashes or fails its health check (seed rule 4).

    Returns True when the rollout may go on.
    """
    never = ctx.never_healthy()
    if never:
        ctx.rollback(
            f"health check failed: {never[0]} did not become healthy within its startup grace "
            f"({ctx.spec.health_check.startup_grace:g}s)"
        )
        return False
    failing = ctx.failing()
    if failing and ctx.spec.analysis.rollback_on_health_check_failure:
        ctx.rollback(f"health check failed: {'; '.join(failing)}")
        return False
    return True


def analysis_gate(ctx: RolloutContext, config: AnalysisSpec, *, label: str) -> bool:
    """Run one analysis to its end. True when it passed (or a user promoted past it).

    A failed verdict starts the rollback; an inconclusive one after ``maxWait`` pauses the
    rollout, saying how many requests are still needed (never a silent pass).
    """
    if ctx.take_promote():
        ctx.stop_analysis()
        ctx.emit("analysis.skipped", f"{label}: skipped by promote")
        return True
    if ctx.paused():
        return False
    if not ctx.analysis_running():
        ctx.start_analysis(config, label=label)
        return False
    verdict = ctx.evaluate_analysis()
    if verdict is None:
        return False
    started = float(ctx.state["analysis"]["started"])
    elapsed = ctx.now - started
    if verdict.outcome == Outcome.FAIL:
        ctx.stop_analysis()
        ctx.rollback(f"{label} failed: {verdict.reason}", verdict)
        return False
    if verdict.outcome == Outcome.PASS:
        if config.duration is not None and elapsed < config.duration:
            return False
        ctx.stop_analysis()
        ctx.emit("analysis.passed", f"{label} passed: {verdict.reason}", verdict=verdict.to_dict())
        return True
    if elapsed >= config.max_wait:
        ctx.stop_analysis()
        ctx.pause(
            f"{label} inconclusive after {elapsed:.0f}s: {verdict.reason}; "
            "'zerodown resume' analyses again, 'zerodown promote' goes on without it",
            kind="analysis",
        )
    return False
