"""The controller is killed with SIGKILL at a dozen points of canary and blue-green rollouts.

The crash points are injected deterministically (``ZERODOWN_CRASH_FILE``: the n-th time the
reconciler persists a given transition, it kills itself). Each time, a new controller is
started; the rollout must end promoted or rolled back as it would have without the crash, the
event history must hold its beginning and its end, and clients must not notice: the data plane
keeps serving with the last routes while no controller runs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tests.fixtures.zerodown import Env, free_port, start_controller, wait_until
from tests.integration.engine.test_rollouts import (
    BLUE_GREEN,
    Load,
    assert_no_rollout_failures,
    spec_text,
)

CANARY = "  canary:\n    steps: [{setWeight: 20}, {analysis: {}}, {setWeight: 60}, {analysis: {}}, {setWeight: 100}]\n"  # noqa: E501

# (strategy, environment of the new version, crash point, how the rollout must end)
POINTS = [
    (CANARY, {}, "canary:starting:#1", "succeeded"),
    (CANARY, {}, "canary:steps:1#1", "succeeded"),
    (CANARY, {}, "canary:steps:1#2", "succeeded"),
    (CANARY, {}, "canary:steps:3#1", "succeeded"),
    (CANARY, {}, "canary:finished:succeeded#1", "succeeded"),
    (CANARY, {"ERROR_RATE": "0.3"}, "canary:rolling_back:1#1", "rolled_back"),
    (CANARY, {"ERROR_RATE": "0.3"}, "canary:finished:rolled_back#1", "rolled_back"),
    (BLUE_GREEN, {}, "blue-green:starting:#1", "succeeded"),
    (BLUE_GREEN, {}, "blue-green:switched:#1", "succeeded"),
    (BLUE_GREEN, {}, "blue-green:finished:succeeded#1", "succeeded"),
    (BLUE_GREEN, {"LATENCY_MS": "60"}, "blue-green:rolling_back:#1", "rolled_back"),
    (BLUE_GREEN, {"LATENCY_MS": "60"}, "blue-green:finished:rolled_back#1", "rolled_back"),
]


def test_rollouts_survive_sigkill_of_the_controller_at_every_point(
    zd_env: Env, tmp_path: Path
) -> None:
    crash_file = tmp_path / "crash-at"
    env = dataclasses.replace(zd_env, env={**zd_env.env, "ZERODOWN_CRASH_FILE": str(crash_file)})
    controller = start_controller(env)
    port = free_port()
    first = tmp_path / "v1.yaml"
    first.write_text(spec_text(port=port, strategy=CANARY))
    assert env.cli("up", str(first), "--version", "v1").code == 0
    load = Load(f"http://127.0.0.1:{port}/", rps=80, duration=400)
    outcomes: list[tuple[str, str]] = []
    try:
        for number, (strategy, version_env, point, expected) in enumerate(POINTS, start=2):
            crash_file.write_text(point)
            spec = tmp_path / f"v{number}.yaml"
            spec.write_text(spec_text(port=port, strategy=strategy, env=version_env))
            started = env.cli("deploy", str(spec), "--version", f"v{number}", "--no-watch")
            assert started.code == 0, started.stderr
            wait_until(
                lambda p=controller.process: p.poll() is not None,  # type: ignore[misc]
                timeout=60,
                what=f"the controller to die at {point}",
            )
            assert not crash_file.exists()
            controller = start_controller(env)

            def ended(revision: int = number) -> dict[str, object] | None:
                releases = env.cli("history", "shop", "--json").json()["releases"]
                release = next(r for r in releases if r["revision"] == revision)
                return release if release["status"] not in ("pending", "progressing") else None

            release = wait_until(ended, timeout=90, what=f"revision {number} to end after {point}")
            outcomes.append((point, str(release["status"])))
            events = env.cli("events", "shop", "--json", "--limit", "100000").json()["events"]
            mine = [e["kind"] for e in events if e["revision"] == number]
            assert "release.created" in mine, point
            assert f"release.{expected}" in mine, (point, mine)
            assert any(e["kind"] == "instance.adopted" for e in events), point
            # Exactly one release serves afterwards, and it answers.
            history = env.cli("history", "shop", "--json").json()["releases"]
            assert sum(1 for r in history if r["status"] == "succeeded") == 1, history
    finally:
        stats = load.finish()
    assert outcomes == [(p, e) for _, _, p, e in POINTS]
    assert_no_rollout_failures(stats)
    assert stats.completed > 1000
