"""``strategy: native`` decisions without Swarm: which tasks became, left or crashed out of the
instances, what to ask Swarm next, and how the strategy reads Swarm's ``UpdateStatus``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from zerodown.analysis.base import Outcome, Verdict
from zerodown.engine.native import next_action, task_changes
from zerodown.engine.strategies import native
from zerodown.platforms.base import ReplicatedView, TaskView
from zerodown.spec import ServiceSpec, parse_spec
from zerodown.spec.models import AnalysisSpec


def task(
    task_id: str,
    *,
    slot: int = 1,
    revision: int | None = 1,
    desired: str = "running",
    state: str = "running",
    port: int | None = 30001,
    exit_code: int | None = None,
) -> TaskView:
    return TaskView(
        id=task_id,
        slot=slot,
        revision=revision,
        version=f"v{revision}",
        desired=desired,
        state=state,
        port=port,
        exit_code=exit_code,
        error="",
        container_id=f"c-{task_id}",
        pid=None,
        created_at=float(slot),
    )


def view(*tasks: TaskView, **changes: Any) -> ReplicatedView:
    base = ReplicatedView(exists=True, service_id="svc", revision=1, replicas=3, tasks=tasks)
    return replace(base, **changes)


# -- tasks to instances ------------------------------------------------------------------------


def test_a_running_task_with_a_port_and_a_revision_becomes_an_instance() -> None:
    changes = task_changes(
        view(
            task("a", slot=2),
            task("b", slot=1),
            task("pending", state="starting", port=None),
            task("foreign", revision=None),
        ),
        known={},
    )
    assert [t.id for t in changes.started] == ["b", "a"]
    assert changes.stopping == () and changes.crashed == ()


def test_a_task_swarm_asks_to_stop_is_drained_while_it_still_runs() -> None:
    changes = task_changes(view(task("a", desired="shutdown")), known={"a": False})
    assert changes.stopping == ("a",)
    # ... and only once: a task already being retired is left alone.
    assert task_changes(view(task("a", desired="shutdown")), known={"a": True}).stopping == ()


def test_a_task_that_ended_by_itself_is_a_crash_but_one_swarm_stopped_is_not() -> None:
    changes = task_changes(
        view(
            task("crashed", desired="shutdown", state="failed", exit_code=3),
            task("replaced", desired="shutdown", state="shutdown", exit_code=0),
        ),
        known={"crashed": False, "replaced": False, "vanished": False},
    )
    assert [t.id for t in changes.crashed] == ["crashed"]
    assert sorted(changes.stopping) == ["replaced", "vanished"]


# -- what to ask Swarm -------------------------------------------------------------------------


def test_a_missing_service_is_created_and_a_different_revision_is_updated_in_place() -> None:
    assert next_action(ReplicatedView(exists=False), want=1).kind == "create"  # type: ignore[union-attr]
    action = next_action(view(revision=1, force=2), want=2)
    assert action is not None and (action.kind, action.revision, action.force) == ("update", 2, 2)
    assert next_action(view(revision=2), want=2) is None


def test_the_stable_revision_is_not_forced_back_while_swarm_is_busy() -> None:
    busy = view(revision=2, update_state="updating")
    assert next_action(busy, want=1, settle_first=True) is None
    assert next_action(replace(busy, update_state="completed"), want=1, settle_first=True)


def test_a_rollback_uses_swarms_own_rollback_when_its_previous_spec_is_the_target() -> None:
    action = next_action(view(revision=3, previous_revision=2), want=None, rollback_to=2)
    assert action is not None and action.kind == "rollback"
    # Swarm already went back (its failure action, or an earlier request): nothing to ask.
    assert next_action(view(revision=2, previous_revision=3), want=None, rollback_to=2) is None
    # A redone update left Swarm without the old spec: an update back instead.
    action = next_action(view(revision=3, previous_revision=3), want=None, rollback_to=2)
    assert action is not None and (action.kind, action.revision) == ("update", 2)


def test_promote_on_a_paused_update_forces_swarm_to_redo_it_once() -> None:
    paused = view(revision=2, update_state="paused", force=0)
    action = next_action(paused, want=2, force=1)
    assert action is not None and (action.kind, action.force) == ("update", 1)
    assert next_action(replace(paused, force=1, update_state="updating"), want=2, force=1) is None


def test_a_stopped_service_is_removed_once() -> None:
    assert next_action(view(), want=None, remove=True) is not None
    assert next_action(ReplicatedView(exists=False), want=None, remove=True) is None


# -- the strategy ------------------------------------------------------------------------------

SPEC = """\
service: shop
platform: swarm
run: {image: shop:1}
replicas: 3
strategy:
  native: {parallelism: 1, delay: 1s, failureAction: pause}
"""


@dataclass
class FakeContext:
    """The parts of the reconciler's context the native strategy uses."""

    spec: ServiceSpec
    observed: ReplicatedView | None
    new: int = 2
    stable: int | None = 1
    now: float = 1000.0
    state: dict[str, Any] = field(default_factory=dict)
    ready_by_revision: dict[int, int] = field(default_factory=lambda: {1: 3, 2: 0})
    verdicts: list[Verdict] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    rolled_back: str | None = None

    @property
    def replicas(self) -> int:
        return self.spec.replicas

    def swarm(self) -> ReplicatedView | None:
        return self.observed

    def available(self, revision: int) -> int:
        return self.ready(revision)

    def ready(self, revision: int) -> int:
        return self.ready_by_revision.get(revision, 0)

    def live(self, revision: int) -> int:
        return self.ready(revision)

    def failing(self) -> list[str]:
        return []

    def never_healthy(self) -> list[str]:
        return []

    def set_targets(self, targets: dict[int, int]) -> None:
        self.state["targets"] = targets

    def set_weights(self, weights: dict[int, int], *, measure: str | None = None) -> None:
        self.state["weights"] = weights

    def weights(self) -> dict[int, int]:
        return dict(self.state.get("weights") or {})

    def start_analysis(self, config: AnalysisSpec, *, label: str) -> None:
        self.state["analysis"] = {"label": label, "started": self.now}

    def analysis_running(self) -> bool:
        return "analysis" in self.state

    def evaluate_analysis(self) -> Verdict | None:
        return self.verdicts.pop(0) if self.verdicts else None

    def stop_analysis(self) -> None:
        self.state.pop("analysis", None)

    def take_promote(self) -> bool:
        return bool(self.state.pop("promote", False))

    def pause(self, reason: str, *, kind: str = "step") -> None:
        self.state["paused"] = {"reason": reason, "kind": kind}

    def unpause(self) -> None:
        self.state.pop("paused", None)

    def paused(self) -> bool:
        return "paused" in self.state

    def succeed(self, reason: str, *, retire_stable_after: float = 0.0) -> None:
        self.state["outcome"] = {"status": "succeeded", "reason": reason}

    def rollback(self, reason: str, verdict: Verdict | None = None) -> None:
        self.rolled_back = reason
        self.state["phase"] = "rolling_back"
        self.state["rollback"] = {"reason": reason, "started": self.now}

    def emit(self, kind: str, message: str, **data: Any) -> None:
        self.events.append(kind)


@pytest.fixture
def ctx() -> FakeContext:
    spec = parse_spec(SPEC, filename="zerodown.yaml").spec
    return FakeContext(spec=spec, observed=view(revision=1))


def passing() -> Verdict:
    return Verdict(outcome=Outcome.PASS, reason="fine", measurements=(), judge="thresholds")


def test_the_first_tick_writes_the_decision_and_asks_swarm_nothing_itself(
    ctx: FakeContext,
) -> None:
    native.advance(ctx)
    assert ctx.state["phase"] == "updating" and "requested" in ctx.state["native"]
    assert ctx.analysis_running() and ctx.events == ["native.requested"]
    native.advance(ctx)  # Swarm still runs revision 1: the update is not taken yet
    assert "issued" not in ctx.state["native"]


def test_swarm_completing_with_healthy_new_tasks_and_a_passing_judge_succeeds(
    ctx: FakeContext,
) -> None:
    native.advance(ctx)
    ctx.observed = view(revision=2, previous_revision=1, update_state="updating")
    ctx.ready_by_revision = {1: 2, 2: 1}
    native.advance(ctx)
    assert ctx.state["native"]["issued"] and ctx.state["weights"] == {1: 2, 2: 1}
    ctx.observed = replace(ctx.observed, update_state="completed")
    ctx.ready_by_revision = {1: 0, 2: 3}
    ctx.verdicts = [passing()]
    ctx.now += 5
    native.advance(ctx)
    assert ctx.state["phase"] == "verifying" and ctx.state["weights"] == {2: 100, 1: 0}
    assert ctx.state["outcome"]["status"] == "succeeded"


def test_swarm_rolling_back_by_itself_is_recorded_as_the_rollback(ctx: FakeContext) -> None:
    native.advance(ctx)
    ctx.observed = view(revision=1, previous_revision=2, update_state="rollback_started")
    native.advance(ctx)
    assert ctx.rolled_back is not None and "Swarm rolled the update back" in ctx.rolled_back
    assert ctx.state["rollback"]["by_swarm"] is True


def test_a_paused_update_pauses_the_rollout_and_promote_asks_swarm_to_redo_it(
    ctx: FakeContext,
) -> None:
    native.advance(ctx)
    ctx.observed = view(revision=2, previous_revision=1, update_state="paused")
    native.advance(ctx)
    assert "Swarm paused the update" in ctx.state["paused"]["reason"]
    ctx.state["promote"] = True
    native.advance(ctx)
    assert ctx.state["native"]["force"] == 1 and not ctx.paused()
    assert ctx.events[-1] == "native.redo"


def test_the_rollback_switches_traffic_as_soon_as_an_old_task_is_healthy_then_verifies(
    ctx: FakeContext,
) -> None:
    ctx.state.update(phase="rolling_back", rollback={"reason": "judge failed", "started": 1000.0})
    ctx.observed = view(revision=2, previous_revision=1, update_state="rollback_started")
    ctx.ready_by_revision = {1: 0, 2: 3}
    native.advance_rollback(ctx)
    assert "weights" not in ctx.state and ctx.events == ["rollback.swarm"]
    ctx.ready_by_revision = {1: 1, 2: 2}
    native.advance_rollback(ctx)
    assert ctx.state["weights"] == {1: 100, 2: 0}
    ctx.observed = view(revision=1, previous_revision=2, update_state="rollback_completed")
    ctx.ready_by_revision = {1: 3, 2: 0}
    native.advance_rollback(ctx)
    assert ctx.state["outcome"]["status"] == "rolled_back"
    assert "Swarm's rollback" in ctx.state["rollback"]["verified"]
