"""Benchmark of the built-in proxy against HAProxy and nginx, in one run: ``python bench/proxy.py``.

Starts a fixed upstream (an nginx instance serving a 9-byte file), then measures with ``wrk``:
direct to the upstream, through zerodown's proxy (metrics on, two weighted groups, sticky cookie
routing and a header rule: every feature on the hot path), through HAProxy and through nginx.
Every server runs with its own config file in a temp directory (never the system services),
single-threaded and pinned to CPU 1 with the upstream; wrk is pinned to CPU 0. Each round waits
for idle CPUs first; 3 rounds, the median is reported. Needs the Debian packages ``wrk``,
``haproxy`` and ``nginx``. The last line is the summary::

    proxy_vs_haproxy_rps=<ratio> proxy_vs_haproxy_p99=<ratio>
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from zerodown.core.types import Address  # noqa: E402
from zerodown.traffic.base import Backend, MatchRule, ServiceRoutes  # noqa: E402
from zerodown.traffic.proxy.client import ProxyRouter  # noqa: E402
from zerodown.traffic.proxy.launcher import read_proxy_info  # noqa: E402

WRK_CPU = "0"
SERVER_CPU = "1"


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def cpu_busy(sample: float = 0.5) -> float:
    def read() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]

    total1, idle1 = read()
    time.sleep(sample)
    total2, idle2 = read()
    return 1.0 - (idle2 - idle1) / max(1, total2 - total1)


def wait_idle(limit: float = 0.1, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while cpu_busy() > limit and time.monotonic() < deadline:
        pass


def _parse_ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(port: int, *, duration: int, connections: int) -> Sample:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            WRK_CPU,
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _parse_ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _parse_ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    if errors:
        print(f"    wrk reported: {errors.group(0)}", flush=True)
    return Sample(rps, p50, p99)


@contextlib.contextmanager
def process(
    cmd: list[str], *, cpu: str, ready: Callable[[], None], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            ["taskset", "-c", cpu, *cmd], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        ready()
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def nginx_config(work: Path, name: str, port: int, body: str) -> Path:
    conf = work / f"{name}.conf"
    conf.write_text(
        f"""
daemon off;
master_process off;
worker_processes 1;
pid {work}/{name}.pid;
error_log {work}/{name}.error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {work}/{name}-body;
    proxy_temp_path {work}/{name}-proxy;
    fastcgi_temp_path {work}/{name}-fastcgi;
    uwsgi_temp_path {work}/{name}-uwsgi;
    scgi_temp_path {work}/{name}-scgi;
    keepalive_requests 1000000;
    {body}
}}
"""
    )
    return conf


def haproxy_config(work: Path, port: int, upstream: int) -> Path:
    conf = work / "haproxy.cfg"
    conf.write_text(
        f"""
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server up 127.0.0.1:{upstream}
"""
    )
    return conf


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    for tool in ("wrk", "haproxy", "nginx", "taskset"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            print(f"missing {tool}: apt-get install -y haproxy nginx wrk", file=sys.stderr)
            return 2
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"

    with tempfile.TemporaryDirectory(prefix="zerodown-bench-") as tmp:
        work = Path(tmp)
        (work / "www").mkdir()
        (work / "www" / "index.html").write_text("hello!!!\n")  # 9 bytes
        up_port, zd_port, ha_port, ng_port = (free_port() for _ in range(4))
        upstream_conf = nginx_config(
            work, "upstream", up_port,
            f"server {{ listen 127.0.0.1:{up_port}; location / {{ root {work}/www; }} }}",
        )  # fmt: skip
        proxy_conf = nginx_config(
            work, "nginxproxy", ng_port,
            f"upstream up {{ server 127.0.0.1:{up_port}; keepalive 64; }}\n"
            f"server {{ listen 127.0.0.1:{ng_port}; location / {{ proxy_pass http://up; "
            f'proxy_http_version 1.1; proxy_set_header Connection ""; }} }}',
        )  # fmt: skip
        state = work / "state"
        zerodown_cmd = [
            sys.executable, "-m", "zerodown.traffic.proxy", "--state-dir", str(state),
            "--log-level", "WARNING",
        ]  # fmt: skip
        routes = ServiceRoutes(
            service="bench",
            listen=Address("127.0.0.1", zd_port),
            groups={
                "stable": (Backend("s1", Address("127.0.0.1", up_port)),),
                "canary": (Backend("c1", Address("127.0.0.1", up_port)),),
                "preview": (Backend("p1", Address("127.0.0.1", up_port)),),
            },
            weights={"stable": 90, "canary": 10},
            sticky=True,
            rules=(MatchRule(group="preview", header="X-Preview", value="1"),),
        )
        targets = {
            "direct": (None, up_port),
            "zerodown": (zerodown_cmd, zd_port),
            "haproxy": ([haproxy, "-f", str(haproxy_config(work, ha_port, up_port))], ha_port),
            "nginx": ([nginx, "-c", str(proxy_conf), "-p", str(work)], ng_port),
        }
        samples: dict[str, list[Sample]] = {name: [] for name in targets}
        env_note = f"{os.cpu_count()} CPUs, wrk -t1 -c{args.connections} -d{args.duration}s"
        print(f"# zerodown proxy benchmark ({env_note}); {args.rounds} rounds", flush=True)
        with process(
            [nginx, "-c", str(upstream_conf), "-p", str(work)],
            cpu=SERVER_CPU, ready=lambda: wait_port(up_port), log=work / "upstream.log",
        ):  # fmt: skip
            for round_no in range(1, args.rounds + 1):
                for name, (cmd, port) in targets.items():
                    wait_idle()
                    if cmd is None:
                        run_wrk(port, duration=2, connections=args.connections)  # warm-up
                        sample = run_wrk(port, duration=args.duration, connections=args.connections)
                    else:
                        ready: Callable[[], None] = (
                            functools.partial(wait_zerodown, state)
                            if name == "zerodown"
                            else functools.partial(wait_port, port)
                        )
                        log = work / f"{name}.log"
                        with process(cmd, cpu=SERVER_CPU, ready=ready, log=log):
                            if name == "zerodown":
                                ProxyRouter(state).apply(routes)
                                wait_port(zd_port)
                            run_wrk(port, duration=2, connections=args.connections)  # warm-up
                            sample = run_wrk(
                                port, duration=args.duration, connections=args.connections
                            )
                    samples[name].append(sample)
                    print(
                        f"round {round_no} {name:9s} {sample.rps:10.0f} req/s  "
                        f"p50 {sample.p50_ms:6.2f} ms  p99 {sample.p99_ms:6.2f} ms",
                        flush=True,
                    )
                    if name == "zerodown":
                        shutil.rmtree(state, ignore_errors=True)

        med = {
            name: Sample(
                statistics.median(s.rps for s in ss),
                statistics.median(s.p50_ms for s in ss),
                statistics.median(s.p99_ms for s in ss),
            )
            for name, ss in samples.items()
        }
        ha = med["haproxy"]
        print("\n| target | req/s | p50 ms | p99 ms | rps vs HAProxy | p99 vs HAProxy |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, m in med.items():
            print(
                f"| {name} | {m.rps:.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | "
                f"{m.rps / ha.rps:.2f} | {m.p99_ms / ha.p99_ms:.2f} |"
            )
        zd = med["zerodown"]
        print(
            f"proxy_vs_haproxy_rps={zd.rps / ha.rps:.3f} "
            f"proxy_vs_haproxy_p99={zd.p99_ms / ha.p99_ms:.3f}"
        )
    return 0


def wait_zerodown(state: Path, timeout: float = 15.0) -> None:
    """The proxy has no service when it starts: wait until it wrote proxy.json."""
    deadline = time.monotonic() + timeout
    while read_proxy_info(state) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the zerodown proxy did not start")
        time.sleep(0.05)
    info = read_proxy_info(state)
    assert info is not None
    wait_port(info.admin.port)


if __name__ == "__main__":
    sys.exit(main())
