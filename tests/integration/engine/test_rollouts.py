"""Rollouts for real: controller, proxy and instances as processes, with bounded load running.

Each test brings v1 up, starts a bounded open-loop load through the proxy, deploys v2 with one
strategy, and checks how the rollout ended and what clients saw. The rollout itself must cause
no client-side failure: no connection error, no timeout, no 502/503/504 from the proxy. Only a
bad version's own 500s are allowed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.zerodown import EXAMPLES, Controller, free_port
from zerodown.ops.load import LoadStats, run_load

# A 25 ms noise floor: on a busy 2-core machine a fresh instance's first requests are slower
# by several ms; the slow version under test adds 60 ms.
FAST_ANALYSIS = """\
analysis:
  interval: 300ms
  minRequests: 30
  maxWait: 20s
  minLatencyIncrease: 25ms
"""


def spec_text(
    *,
    port: int,
    strategy: str,
    env: dict[str, str] | None = None,
    replicas: int = 2,
    extra: str = "",
) -> str:
    env_block = ""
    if env:
        env_block = "env:\n" + "".join(f'  {k}: "{v}"\n' for k, v in env.items())
    import sys

    return (
        "service: shop\n"
        "run:\n"
        f"  command: {sys.executable} app.py\n"
        f"  workdir: {EXAMPLES}\n"
        "  stopGraceSeconds: 5s\n"
        f"replicas: {replicas}\n"
        f"{env_block}"
        "healthCheck:\n"
        "  http: {path: /healthz}\n"
        "  interval: 200ms\n"
        "  timeout: 150ms\n"
        "  failureThreshold: 2\n"
        "  startupGrace: 10s\n"
        "traffic:\n"
        f"  listen: 127.0.0.1:{port}\n"
        f"{FAST_ANALYSIS}"
        f"strategy:\n{strategy}"
        f"{extra}"
    )


CANARY = "  canary:\n    steps: [{setWeight: 20}, {analysis: {}}, {setWeight: 60}, {analysis: {}}, {setWeight: 100}]\n"  # noqa: E501
BLUE_GREEN = "  blueGreen: {autoPromote: true, scaleDownDelaySeconds: 30}\n"
ROLLING = "  rolling: {maxSurge: 1, maxUnavailable: 0, minReadySeconds: 0.5}\n"


class Load:
    """A bounded load in a background thread (at most ``duration`` seconds)."""

    def __init__(self, url: str, *, rps: float = 120, duration: float = 60) -> None:
        self.stop = threading.Event()
        self.stats: LoadStats | None = None
        self._thread = threading.Thread(target=self._run, args=(url, rps, duration), daemon=True)
        self._thread.start()

    def _run(self, url: str, rps: float, duration: float) -> None:
        self.stats = run_load(
            url,
            rps=rps,
            duration=duration,
            concurrency=8,
            stop=self.stop,
            count_header="X-Version",
        )

    def finish(self) -> LoadStats:
        self.stop.set()
        self._thread.join(timeout=30)
        assert self.stats is not None
        return self.stats


@contextmanager
def service_under_load(
    controller: Controller, tmp_path: Path, strategy: str, **kw: Any
) -> Iterator[tuple[Path, Load, int]]:
    env = controller.env
    port = free_port()
    v1 = tmp_path / "v1.yaml"
    v1.write_text(spec_text(port=port, strategy=strategy, **kw))
    result = env.cli("up", str(v1), "--version", "v1")
    assert result.code == 0, result.stderr
    load = Load(f"http://127.0.0.1:{port}/")
    try:
        yield v1, load, port
    finally:
        load.finish()


def assert_no_rollout_failures(stats: LoadStats) -> None:
    assert stats.connection_errors == 0, stats.to_dict()
    assert stats.timeouts == 0, stats.to_dict()
    proxy_errors = {code: n for code, n in stats.by_status.items() if code in (502, 503, 504)}
    assert not proxy_errors, stats.to_dict()


def deploy(
    controller: Controller, tmp_path: Path, text: str, version: str, *extra: str
) -> tuple[int, dict[str, Any]]:
    spec = tmp_path / f"{version}.yaml"
    spec.write_text(text)
    result = controller.env.cli(
        "deploy", str(spec), "--version", version, "--json", *extra, timeout=180
    )
    return result.code, result.json() if result.stdout.strip() else {"stderr": result.stderr}


@pytest.mark.parametrize(
    "strategy", [CANARY, BLUE_GREEN, ROLLING], ids=["canary", "blue-green", "rolling"]
)
def test_a_good_version_is_promoted(controller: Controller, tmp_path: Path, strategy: str) -> None:
    with service_under_load(controller, tmp_path, strategy) as (_, load, port):
        code, out = deploy(controller, tmp_path, spec_text(port=port, strategy=strategy), "v2")
        stats = load.finish()
    assert code == 0, out
    assert out["release"]["status"] == "succeeded"
    assert_no_rollout_failures(stats)
    assert stats.by_class.get("5xx", 0) == 0
    assert set(stats.header_counts) <= {"v1", "v2"} and stats.header_counts.get("v2", 0) > 0
    status = controller.env.cli("status", "shop", "--json").json()
    live_revisions = {i["revision"] for i in status["instances"] if i["state"] == "running"}
    assert 2 in live_revisions and status["release"]["revision"] == 2


def test_an_erroring_canary_is_rolled_back(controller: Controller, tmp_path: Path) -> None:
    with service_under_load(controller, tmp_path, CANARY) as (_, load, port):
        bad = spec_text(port=port, strategy=CANARY, env={"ERROR_RATE": "0.3"})
        code, out = deploy(controller, tmp_path, bad, "v2")
        stats = load.finish()
    assert code == 1
    release = out["release"]
    assert release["status"] == "rolled_back"
    assert "error rate" in release["reason"]
    assert release["state"]["timings"]["rollback_s"] < 1.0
    assert_no_rollout_failures(stats)
    status = controller.env.cli("status", "shop", "--json").json()
    assert status["release"]["revision"] == 1
    assert {i["revision"] for i in status["instances"]} == {1}


def test_a_slow_version_is_rolled_back_by_blue_green(
    controller: Controller, tmp_path: Path
) -> None:
    with service_under_load(controller, tmp_path, BLUE_GREEN) as (_, load, port):
        slow = spec_text(port=port, strategy=BLUE_GREEN, env={"LATENCY_MS": "60"})
        code, out = deploy(controller, tmp_path, slow, "v2")
        stats = load.finish()
    assert code == 1
    release = out["release"]
    assert release["status"] == "rolled_back"
    assert "p95" in release["reason"] or "latency" in release["reason"]
    timings = release["state"]["timings"]
    assert timings["switch_s"] < 1.0 and timings["rollback_s"] < 1.0
    assert_no_rollout_failures(stats)
    assert stats.by_class.get("5xx", 0) == 0


SLOW_CANARY = "  canary:\n    steps: [{setWeight: 20}, {pause: {duration: 5s}}, {setWeight: 100}]\n"
SLOW_ROLLING = "  rolling: {maxSurge: 1, maxUnavailable: 0, minReadySeconds: 4}\n"


@pytest.mark.parametrize("strategy", [SLOW_CANARY, SLOW_ROLLING], ids=["canary", "rolling"])
def test_a_version_whose_health_check_fails_is_rolled_back(
    controller: Controller, tmp_path: Path, strategy: str
) -> None:
    with service_under_load(controller, tmp_path, strategy) as (_, load, port):
        sick = spec_text(port=port, strategy=strategy, env={"HEALTH": "fail-after:1"})
        code, out = deploy(controller, tmp_path, sick, "v2")
        stats = load.finish()
    assert code == 1
    assert out["release"]["status"] == "rolled_back"
    assert "health check failed" in out["release"]["reason"]
    assert_no_rollout_failures(stats)


def test_second_deploy_is_refused_naming_the_holder_and_promote_ends_a_pause(
    controller: Controller, tmp_path: Path
) -> None:
    env = controller.env
    paused = "  canary:\n    steps: [{setWeight: 30}, {pause: {}}, {setWeight: 100}]\n"
    with service_under_load(controller, tmp_path, paused) as (_, load, port):
        spec = tmp_path / "v2.yaml"
        spec.write_text(spec_text(port=port, strategy=paused))
        started = env.cli("deploy", str(spec), "--version", "v2", "--no-watch")
        assert started.code == 0, started.stderr

        from tests.fixtures.zerodown import wait_until

        def paused_now() -> bool:
            history = env.cli("history", "shop", "--json").json()["releases"]
            return bool(history[0]["status"] == "paused")

        wait_until(paused_now, timeout=30, what="the rollout to pause")
        again = env.cli("deploy", str(spec), "--version", "v3")
        assert again.code == 3
        assert "being rolled out by" in again.stderr and "@" in again.stderr
        assert env.cli("promote", "shop").code == 0

        def done() -> bool:
            history = env.cli("history", "shop", "--json").json()["releases"]
            return bool(history[0]["status"] == "succeeded")

        wait_until(done, timeout=30, what="the rollout to finish after promote")
        stats = load.finish()
    assert_no_rollout_failures(stats)


def test_manual_rollback_to_a_warm_release_is_a_weight_flip(
    controller: Controller, tmp_path: Path
) -> None:
    env = controller.env
    with service_under_load(controller, tmp_path, BLUE_GREEN) as (_, load, port):
        code, out = deploy(controller, tmp_path, spec_text(port=port, strategy=BLUE_GREEN), "v2")
        assert code == 0, out
        result = env.cli("rollback", "shop", "--json")
        assert result.code == 0, result.stderr
        assert "serves all traffic again" in result.json()["message"]
        stats = load.finish()
    assert_no_rollout_failures(stats)
    history = env.cli("history", "shop", "--json").json()["releases"]
    assert [(r["revision"], r["status"]) for r in history] == [
        (2, "rolled_back"),
        (1, "succeeded"),
    ]
    for release in history:
        assert {"strategy", "status", "reason", "created_at", "finished_at"} <= set(release)
        assert {"duration_s", "timings"} <= set(release)
    assert history[0]["timings"]["rollback_s"] < 1.0  # the flip back to revision 1


def test_a_rollback_notifies_the_webhook_with_the_reason(
    controller: Controller, tmp_path: Path
) -> None:
    """The seed's last rollback step: notify. The webhook gets a JSON body with the reason."""
    import json

    from tests.fixtures.zerodown import wait_until
    from tests.integration.ops.servers import ScriptedServer

    with ScriptedServer() as hook:
        notify = f"notify:\n  webhooks: [{hook.url}/hook]\n"
        with service_under_load(controller, tmp_path, CANARY, extra=notify) as (_, load, port):
            bad = spec_text(port=port, strategy=CANARY, env={"ERROR_RATE": "0.3"}, extra=notify)
            code, _ = deploy(controller, tmp_path, bad, "v2")
            load.finish()
        assert code == 1
        wait_until(lambda: hook.seen, timeout=10, what="the webhook call")
        body = json.loads(hook.seen[0].body)
        assert hook.seen[0].path == "/hook"
        assert body["status"] == "rolled_back" and body["revision"] == 2
        assert "error rate" in body["reason"]
    events = controller.env.cli("events", "shop", "--json").json()["events"]
    assert any(e["kind"] == "notify.sent" and "1/1" in e["message"] for e in events)


def test_a_freeze_refuses_the_deploy_unless_forced(controller: Controller, tmp_path: Path) -> None:
    env = controller.env
    freeze = (
        "deploy:\n  freezes:\n"
        '    - {start: "2020-01-01T00:00:00Z", end: "2099-01-01T00:00:00Z",\n'
        '       reason: "test freeze"}\n'
    )
    port = free_port()
    v1 = tmp_path / "v1.yaml"
    v1.write_text(spec_text(port=port, strategy=ROLLING))
    assert env.cli("up", str(v1)).code == 0
    v2 = tmp_path / "v2.yaml"
    v2.write_text(spec_text(port=port, strategy=ROLLING, extra=freeze))
    refused = env.cli("deploy", str(v2), "--version", "v2")
    assert refused.code == 3
    assert "test freeze" in refused.stderr and "--force" in refused.stderr
    assert env.cli("history", "shop", "--json").json()["releases"][0]["revision"] == 1
    forced = env.cli("deploy", str(v2), "--version", "v2", "--force")
    assert forced.code == 0, forced.stderr


def test_a_failing_dependency_blocks_the_deploy_and_changes_nothing(
    controller: Controller, tmp_path: Path
) -> None:
    """R20: the check runs for real; the blocked attempt is recorded and reported."""
    env = controller.env
    dead = free_port()  # nothing listens there
    checks = (
        f"checks:\n  pre:\n    dependencies:\n      - {{name: db, url: 'tcp://127.0.0.1:{dead}'}}\n"
    )
    with service_under_load(controller, tmp_path, CANARY) as (_, load, port):
        before = env.cli("status", "shop", "--json").json()
        code, out = deploy(
            controller, tmp_path, spec_text(port=port, strategy=CANARY, extra=checks), "v2"
        )
        after = env.cli("status", "shop", "--json").json()
        stats = load.finish()
    assert code == 3
    message = out["error"]["message"]
    assert out["error"]["code"] == "preflight_failed"
    assert "blocked by pre-deployment checks" in message and "db" in message
    assert after["release"]["revision"] == 1
    assert {i["id"] for i in after["instances"]} == {i["id"] for i in before["instances"]}
    assert stats.header_counts.keys() == {"v1"}
    assert_no_rollout_failures(stats)
    history = env.cli("history", "shop", "--json").json()["releases"]
    assert (history[0]["revision"], history[0]["status"]) == (2, "failed")
    # Reports written within one second get a suffix (-2, ...): look at all of them.
    reports = sorted(tmp_path.glob(".claude/context/deployment/*-shop*.md"))
    assert any("blocked by pre-deployment checks" in r.read_text() for r in reports), reports


def test_a_failing_smoke_test_after_the_switch_rolls_back(
    controller: Controller, tmp_path: Path
) -> None:
    """R22: post-deployment validation runs against the new release; a failure rolls back."""
    checks = (
        "checks:\n  post:\n    smoke:\n"
        "      - {name: home, path: /, expectStatus: 200, expectBody: 'no-such-text'}\n"
        "    logs: {patterns: ['Traceback'], maxMatches: 0}\n"
    )
    with service_under_load(controller, tmp_path, BLUE_GREEN) as (_, load, port):
        code, out = deploy(
            controller, tmp_path, spec_text(port=port, strategy=BLUE_GREEN, extra=checks), "v2"
        )
        stats = load.finish()
    assert code == 1
    release = out["release"]
    assert release["status"] == "rolled_back"
    assert "post-deployment validation failed" in release["reason"]
    assert "smoke:home" in release["reason"]
    names = {c["name"]: c["status"] for c in release["state"]["postchecks"]}
    assert names["smoke:home"] == "fail" and names["logs"] == "pass"
    assert_no_rollout_failures(stats)


def test_the_sequential_judge_rolls_back_a_5x_error_canary_sooner_than_thresholds(
    controller: Controller, tmp_path: Path
) -> None:
    """Issue 7: the same bad canary (10 % errors against a 2 % baseline), judged once by the
    thresholds judge over a window of 1,200 canary requests (Flagger's 60 s window at this
    traffic; its early fail decides once 61 errors make the 5 % rule certain) and once by the
    sequential judge; the sequential one decides after fewer canary requests."""
    steps = "  canary:\n    steps: [{setWeight: 25}, {analysis: {}}, {setWeight: 100}]\n"

    def judged(judge: str) -> str:
        return (
            f"analysis:\n  interval: 500ms\n  minRequests: 1200\n  maxWait: 60s\n  judge: {judge}\n"
        )

    needed: dict[str, int] = {}
    with service_under_load(controller, tmp_path, steps, env={"ERROR_RATE": "0.02"}) as (
        _,
        load,
        port,
    ):
        for version, judge in (("v2", "thresholds"), ("v3", "sequential")):
            text = spec_text(port=port, strategy=steps, env={"ERROR_RATE": "0.10"})
            text = text.replace(FAST_ANALYSIS, judged(judge))
            code, out = deploy(controller, tmp_path, text, version)
            assert code == 1, out
            release = out["release"]
            assert release["status"] == "rolled_back", release
            verdict = release["state"]["rollback"]["verdict"]
            assert verdict["judge"] == judge and verdict["outcome"] == "fail", verdict
            needed[judge] = int(verdict["canary_requests"])
        stats = load.finish()
    assert_no_rollout_failures(stats)
    assert needed["sequential"] < needed["thresholds"], needed


def test_a_canary_that_answers_200_but_logs_errors_is_rolled_back_by_its_logs(
    controller: Controller, tmp_path: Path
) -> None:
    """Every response of the canary is a 200, yet 30 % of its requests log an ERROR line:
    ``maxLogErrorRate: 5%`` (error log lines per canary request) rolls it back."""
    steps = (
        "  canary:\n"
        "    steps: [{setWeight: 20}, {analysis: {maxLogErrorRate: 5%}}, {setWeight: 100}]\n"
    )
    with service_under_load(controller, tmp_path, steps) as (_, load, port):
        bad = spec_text(port=port, strategy=steps, env={"LOG_ERROR_RATE": "0.3"})
        code, out = deploy(controller, tmp_path, bad, "v2")
        stats = load.finish()
    assert code == 1, out
    release = out["release"]
    assert release["status"] == "rolled_back", release
    assert "log error rate" in release["reason"], release["reason"]
    verdict = release["state"]["rollback"]["verdict"]
    log_rule = next(m for m in verdict["measurements"] if m["name"] == "log_error_rate")
    assert log_rule["outcome"] == "fail" and log_rule["limit"] == 0.05
    http_rule = next(m for m in verdict["measurements"] if m["name"] == "error_rate")
    assert http_rule["outcome"] != "fail"
    assert set(stats.by_status) == {200}, stats.to_dict()
    assert_no_rollout_failures(stats)
    status = controller.env.cli("status", "shop", "--json").json()
    assert status["release"]["revision"] == 1
    errors = controller.env.cli(
        "logs", "shop", "--json", "--tail", "0", "--level", "error", "--version", "v2"
    )
    assert errors.code == 0 and "ledger write timed out" in errors.stdout
