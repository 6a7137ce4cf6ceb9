"""``make demo`` is part of the contract: the whole story runs and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_tells_the_whole_story_and_cleans_up(tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "demo.py")],
        cwd=tmp_path,  # the demo's reports go to .claude/context/deployment under here
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-2000:]
    assert "revision 2 succeeded" in out
    assert "revision 3 rolled_back" in out and "error rate" in out
    assert "revision 4 rolled_back" in out and "p95" in out
    assert "revision 5 succeeded" in out
    assert "connection_errors: 0" in out and "timeouts: 0" in out
    by_status = next(line for line in out.splitlines() if "by_status:" in line)
    assert not any(code in by_status for code in ("502", "503", "504")), by_status
    assert "no process left behind" in out
    reports = sorted((tmp_path / ".claude" / "context" / "deployment").glob("*.md"))
    assert len(reports) == 5  # up, v2, v3, v4, v5
    from tests.unit.report.checks import assert_valid_report

    for report in reports:
        assert_valid_report(report)
