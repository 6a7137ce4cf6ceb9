"""``make demo``: the main job on the embedded default (local processes, built-in proxy, SQLite).

Runs the commands a new user types, printing each one and what it prints:
validate a spec, start the controller, bring the example service up with 3 instances, send
traffic through the built-in proxy, show status, history and logs, and shut everything down.
It uses its own state directory and a free port, and checks that no process is left behind.
"""

from __future__ import annotations

import collections
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).resolve().parent
ZERODOWN = [sys.executable, "-m", "zerodown"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(args: list[str], env: dict[str, str], *, check: bool = True) -> str:
    print(f"\n$ zerodown {shlex.join(args)}", flush=True)
    proc = subprocess.run([*ZERODOWN, *args], env=env, text=True, capture_output=True)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    if check and proc.returncode != 0:
        raise SystemExit(f"demo failed: 'zerodown {shlex.join(args)}' exited {proc.returncode}")
    return proc.stdout


def started_here(process: psutil.Process, env: dict[str, str]) -> bool:
    """Processes of this demo carry its state directory in their environment."""
    try:
        return process.environ().get("ZERODOWN_HOME") == env["ZERODOWN_HOME"]
    except (psutil.Error, OSError):
        return False


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="zerodown-demo-"))
    port = free_port()
    spec_text = (HERE / "zerodown.yaml").read_text()
    spec_text = spec_text.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    spec_text = spec_text.replace("workdir: .", f"workdir: {HERE}")
    spec = workdir / "zerodown.yaml"
    spec.write_text(spec_text)
    env = {**os.environ, "ZERODOWN_HOME": str(workdir / "state"), "NO_COLOR": "1"}
    before = {p.pid for p in psutil.process_iter()}
    print(f"demo state directory: {workdir / 'state'}; service port {port}")
    try:
        run(["validate", str(spec)], env)
        run(["serve", "--detach"], env)
        run(["up", str(spec), "--version", "v1"], env)
        print(f"\n# 300 requests to http://127.0.0.1:{port}/ through the built-in proxy")
        served: collections.Counter[str] = collections.Counter()
        errors = 0
        with httpx.Client(timeout=5) as client:
            for _ in range(300):
                response = client.get(f"http://127.0.0.1:{port}/")
                if response.status_code == 200:
                    served[f"pid {response.json()['pid']} ({response.json()['version']})"] += 1
                else:
                    errors += 1
        for who, count in sorted(served.items()):
            print(f"  {who}: {count}")
        print(f"  errors: {errors}")
        run(["status", "demo"], env)
        run(["history", "demo"], env)
        run(["logs", "demo", "--tail", "5"], env)
    finally:
        run(["shutdown", "--all"], env, check=False)
    deadline = time.monotonic() + 10
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
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
