"""`zerodown logs` through a real controller: levels, filters, following and patterns.

Two versions of the example app run for real and log one ERROR line per request to ``/`` while
answering 200 (``LOG_ERROR_RATE=1``); the CLI reads the aggregated log through the API.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.zerodown import Controller, Env, wait_until

ERROR_SHAPE = r"order \d+ not saved"


def _get(env: Env, count: int) -> None:
    url = f"http://{env.cli('status', 'demo', '--json').json()['listen']}/"
    with httpx.Client(timeout=5) as client:
        for _ in range(count):
            assert client.get(url).status_code == 200


def _entries(env: Env, *args: str) -> list[dict[str, Any]]:
    result = env.cli("logs", "demo", "--json", "--tail", "0", *args)
    assert result.code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_logs_filter_by_level_grep_version_and_since_and_mine_patterns(
    controller: Controller, tmp_path: Path
) -> None:
    env = controller.env
    spec = env.write_spec(tmp_path, replicas=1, extra_env={"LOG_ERROR_RATE": "1"})
    assert env.cli("up", str(spec), "--version", "v1").code == 0
    _get(env, 4)
    wait_until(
        lambda: len(_entries(env, "--level", "error", "--version", "v1")) >= 4,
        timeout=20,
        what="v1's error lines in the aggregated log",
    )
    deployed = env.cli("deploy", str(spec), "--version", "v2", "--strategy", "rolling", "--json")
    assert deployed.code == 0, deployed.stdout + deployed.stderr
    _get(env, 6)
    wait_until(
        lambda: len(_entries(env, "--level", "error", "--version", "v2")) >= 6,
        timeout=20,
        what="v2's error lines in the aggregated log",
    )

    errors_v2 = _entries(env, "--level", "error", "--grep", ERROR_SHAPE, "--version", "v2")
    assert len(errors_v2) == 6
    assert {e["version"] for e in errors_v2} == {"v2"}
    assert {e["level"] for e in errors_v2} == {"error"}
    assert all("ledger write timed out" in e["line"] for e in errors_v2)
    errors_v1 = _entries(env, "--level", "err", "--grep", ERROR_SHAPE, "--version", "v1")
    assert len(errors_v1) == 4 and {e["version"] for e in errors_v1} == {"v1"}
    # The request lines are info; the level filter leaves them out, --level info keeps them.
    infos = _entries(env, "--version", "v2", "--grep", "^GET / 200")
    assert len(infos) == 6 and {e["level"] for e in infos} == {"info"}
    assert _entries(env, "--level", "warning", "--grep", "^GET /") == []
    assert _entries(env, "--level", "error", "--since", "1h", "--version", "v2") == errors_v2
    later = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() + 3600))
    assert _entries(env, "--level", "error", "--since", later) == []

    text = env.cli("logs", "demo", "--level", "error", "--version", "v2", "--tail", "0")
    assert text.code == 0 and text.stdout.count("ledger write timed out") == 6

    mined = env.cli("logs", "demo", "--patterns", "--level", "error", "--json")
    assert mined.code == 0, mined.stderr
    report = mined.json()
    rows = {(p["version"], p["template"]): p for p in report["patterns"]}
    template = "ERROR order <NUM> not saved: ledger write timed out"
    assert rows[("v1", template)]["count"] == 4 and rows[("v2", template)]["count"] == 6
    assert len(rows) == 2 and report["lines"] == 10
    assert rows[("v1", template)]["cluster"] == rows[("v2", template)]["cluster"]
    table = env.cli("logs", "demo", "--patterns", "--level", "error")
    assert table.code == 0 and template in table.stdout and "2 patterns in 10 lines" in table.stdout

    bad = env.cli("logs", "demo", "--level", "loud")
    assert bad.code == 2 and "choose one of debug, info, warning, error, critical" in bad.stderr


def test_logs_follow_streams_new_lines_through_the_api_until_ctrl_c(
    controller: Controller, tmp_path: Path
) -> None:
    env = controller.env
    spec = env.write_spec(tmp_path, replicas=1, extra_env={"LOG_ERROR_RATE": "1"})
    assert env.cli("up", str(spec), "--version", "v1").code == 0
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zerodown",
            "logs",
            "demo",
            "--follow",
            "--json",
            "--level",
            "error",
        ],
        env=env.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert follower.stdout is not None
    reader = threading.Thread(
        target=lambda: [lines.put(line) for line in follower.stdout or ()], daemon=True
    )
    reader.start()
    try:
        _get(env, 3)
        seen: list[dict[str, Any]] = []

        def three_errors() -> bool:
            while not lines.empty():
                seen.append(json.loads(lines.get()))
            return len(seen) >= 3

        wait_until(three_errors, timeout=20, what="the follower to print 3 error lines")
        assert [e["level"] for e in seen] == ["error"] * 3
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=15) == 0
        assert "Traceback" not in (follower.stderr.read() if follower.stderr else "")
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
