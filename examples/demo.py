"""``make demo``: the main job on the embedded default (local processes, built-in proxy, SQLite).

Runs the commands a new user types, printing each one and what it prints:

1. ``validate`` the spec, start the controller (``serve --detach``), ``up`` v1 (3 instances);
2. synthetic traffic with ``zerodown load`` in the background, through the built-in proxy;
3. v2: a canary, analysed at 5 -> 25 -> 50 -> 100 % and promoted;
4. v3: a canary with 5x the error ratio: rolled back automatically;
5. v4: blue-green with 3x the latency: switched, judged, rolled back by a weight flip;
6. v5: a rolling update, instance by instance;
7. ``history``, ``status``, ``logs``; then ``shutdown --all``.

Each operation leaves a Deployment Operations Report in ``.claude/context/deployment/``.

It uses its own state directory and a free port, and checks that no process is left behind.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ZERODOWN = [sys.executable, "-m", "zerodown"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(args: list[str], env: dict[str, str], *, expect: int = 0) -> str:
    print(f"\n$ zerodown {shlex.join(args)}", flush=True)
    proc = subprocess.run([*ZERODOWN, *args], env=env, text=True, capture_output=True)
    sys.stdout.write(proc.stdout)
    sys.stdout.write(proc.stderr)
    sys.stdout.flush()
    if proc.returncode != expect:
        raise SystemExit(
            f"demo failed: 'zerodown {shlex.join(args)}' exited {proc.returncode}, "
            f"expected {expect}"
        )
    return proc.stdout


def started_here(process: psutil.Process, env: dict[str, str]) -> bool:
    """Processes of this demo carry its state directory in their environment."""
    try:
        return process.environ().get("ZERODOWN_HOME") == env["ZERODOWN_HOME"]
    except (psutil.Error, OSError):
        return False


def variant(base: str, workdir: Path, name: str, **env: str) -> Path:
    """The demo spec with some environment values changed (what a new version does)."""
    text = base
    for key, value in env.items():
        text = re.sub(rf"^  {key}: .*$", f"  {key}: {value}", text, flags=re.M)
    path = workdir / f"{name}.yaml"
    path.write_text(text)
    return path


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="zerodown-demo-"))
    port = free_port()
    base = (HERE / "zerodown.yaml").read_text()
    base = base.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    base = base.replace("workdir: .  ", f"workdir: {HERE}")
    base = base.replace("python3 app.py", f"{sys.executable} app.py")
    spec = variant(base, workdir, "zerodown")
    env = {**os.environ, "ZERODOWN_HOME": str(workdir / "state"), "NO_COLOR": "1"}
    before = {p.pid for p in psutil.process_iter()}
    print(f"demo state directory: {workdir / 'state'}; service port {port}")
    load: subprocess.Popen[str] | None = None
    try:
        run(["validate", str(spec)], env)
        reports = Path.cwd() / ".claude" / "context" / "deployment"
        before_reports = set(reports.glob("*.md")) if reports.exists() else set()
        run(["serve", "--detach", "--report-dir", str(reports)], env)
        run(["up", str(spec), "--version", "v1"], env)

        url = f"http://127.0.0.1:{port}/"
        print(f"\n$ zerodown load {url} --rps 200 --duration 240 --count-header X-Version &")
        load = subprocess.Popen(
            [
                *ZERODOWN,
                "load",
                url,
                "--rps",
                "200",
                "--duration",
                "240",
                "--count-header",
                "X-Version",
            ],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        time.sleep(2)  # let v1 serve a baseline before the first rollout

        print("\n# v2: same behaviour, rolled out as a canary (5 -> 25 -> 50 -> 100 %)")
        run(["deploy", str(spec), "--version", "v2", "--strategy", "canary"], env)

        print("\n# v3: five times the error ratio (10 % instead of 2 %)")
        bad = variant(base, workdir, "v3", ERROR_RATE="0.10")
        run(["deploy", str(bad), "--version", "v3", "--strategy", "canary"], env, expect=1)

        print("\n# v4: three times the response time (25 ms added instead of 5 ms), blue-green")
        slow = variant(base, workdir, "v4", LATENCY_MS="25")
        run(["deploy", str(slow), "--version", "v4", "--strategy", "blue-green"], env, expect=1)

        print("\n# v5: a rolling update, one instance at a time")
        run(["deploy", str(spec), "--version", "v5", "--strategy", "rolling"], env)

        load.terminate()
        output, _ = load.communicate(timeout=30)
        load = None
        print("\n# what the load generator saw over all five rollouts:")
        print(output)
        run(["history", "demo"], env)
        run(["status", "demo"], env)
        run(["logs", "demo", "--tail", "5"], env)
        written = sorted(set(reports.glob("*.md")) - before_reports)
        print(f"\n# {len(written)} Deployment Operations Reports, one per operation, in {reports}:")
        for path in written:
            print(f"  {path.name}")
    finally:
        if load is not None:
            load.kill()
            load.wait()
        run(["shutdown", "--all"], env)
    deadline = time.monotonic() + 15
    stray: list[psutil.Process] = []
    while time.monotonic() < deadline:
        stray = [p for p in psutil.process_iter() if p.pid not in before and started_here(p, env)]
        if not stray:
            break
        time.sleep(0.1)
    if stray:
        print(f"stray processes left: {[p.pid for p in stray]}")
        return 1
    print("\ndemo done: everything stopped, no process left behind")
    return 0


if __name__ == "__main__":
    sys.exit(main())
