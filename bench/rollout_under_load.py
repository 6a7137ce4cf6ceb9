"""A rolling update of 3 replicas under load: zerodown on Swarm against Swarm's own update.

Run from the repository root: ``python bench/rollout_under_load.py``. Needs a Docker engine that
is a swarm manager (``scripts/dockerd.sh start``); nothing is pulled from a registry.

In one run, on the same machine and with the same image (``examples/app.py`` in an image built
with ``docker import``, as the tests build theirs) and the same bounded open-loop load
(``zerodown.ops.load.run_load``: ``--rps`` requests per second on keep-alive connections, each
request bounded by ``--request-timeout``):

1. ``zerodown``: ``serve --detach`` in a private ``ZERODOWN_HOME``, ``up`` v1 with
   ``platform: swarm`` and 3 replicas, load against zerodown's proxy, then ``deploy`` v2 with
   ``--strategy rolling`` (maxSurge 1, maxUnavailable 0); ``shutdown --all`` at the end.
2. ``zerodown_native`` (skip with ``--skip-zerodown-native``): the same with ``strategy: native``:
   v1 is ONE Swarm service of 3 tasks on dynamic host-mode ports behind zerodown's proxy, and
   ``deploy`` v2 is Swarm's own in-place update (parallelism 1, start-first, delay 1s,
   failure action pause, monitor 2s) that zerodown routes, judges and would roll back.
3. ``swarm_native``: the peer a user has on one node without the routing mesh (which needs IPVS,
   missing on these kernels): one service publishing port 8080 in host mode on a fixed host
   port, ``--mode global`` (one task per node, the only way a fixed host-mode port runs at all
   here), updated with ``docker service update --update-parallelism 1 --update-order
   stop-first`` (start-first cannot complete: the new task waits for the port forever).
4. ``swarm_native_replicas3`` (skip with ``--skip-replicas3``): the same service with
   ``--replicas 3``, to show why the peer is not that: on one node only one task gets the fixed
   port, the other two stay pending, and the update waits on a pending task until the deadline.

The same 3-replica zerodown service is also what the swarm platform does under the hood: one
one-replica service per instance, each on its own host-mode port, behind zerodown's proxy.

For each run the load starts ``--margin`` seconds before the update and stops ``--margin``
seconds after it ended, so the counts and the p99 cover the update. A request failed when it
got a 5xx, a connection error (refused, reset) or no answer within the timeout. The update
duration is the wall time of ``zerodown deploy`` (the CLI call, which returns when the release
has ended) or, for Swarm, from ``docker service update`` until ``UpdateStatus.State`` is
``completed``. Everything created is removed at the end, also on failure. The last line is::

    failed_requests zerodown=<n> zerodown_native=<k> swarm_native=<m>
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from tests.fixtures.images import import_app_image  # noqa: E402

from zerodown.ops.load import LoadStats, run_load  # noqa: E402

RUN = secrets.token_hex(3)
BENCH_LABEL = "zerodown.bench"
CONTAINER_PORT = 8080
# Exec form: the image has no /bin/sh, so ``docker service create --health-cmd`` (always
# CMD-SHELL) cannot be used; the service is created with the SDK instead, with the same settings.
HEALTH_TEST = [
    "CMD",
    "/usr/bin/python3.11",
    "-c",
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=1)",
]
MS = 1_000_000  # nanoseconds


@dataclass
class Outcome:
    name: str
    setup: str
    stats: LoadStats
    update_seconds: float
    completed: bool
    note: str = ""


def log(message: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def free_port() -> int:
    # Host-mode ports are bound on every interface, so probe all of them.
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


def get_version(url: str) -> str | None:
    """The ``X-Version`` of a 200 answer from ``url``, or None."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.headers.get("X-Version") if response.status == 200 else None
    except (OSError, urllib.error.URLError):
        return None


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def measure_update(
    url: str, update: Callable[[float], bool], args: argparse.Namespace
) -> tuple[LoadStats, float, bool]:
    """Load ``url``; after ``margin`` s run ``update(deadline)``; stop ``margin`` s after it."""
    stop = threading.Event()
    result: list[LoadStats] = []
    limit = 2 * args.margin + args.update_timeout + 10
    thread = threading.Thread(
        target=lambda: result.append(
            run_load(
                url,
                rps=args.rps,
                duration=limit,
                concurrency=args.concurrency,
                timeout=args.request_timeout,
                stop=stop,
            )
        ),
        daemon=True,
    )
    thread.start()
    try:
        time.sleep(args.margin)
        began = time.monotonic()
        completed = update(began + args.update_timeout)
        seconds = time.monotonic() - began
        time.sleep(args.margin)
    finally:
        stop.set()
        thread.join(limit + args.request_timeout + 5)
    if not result:
        raise RuntimeError("the load generator did not return")
    return result[0], seconds, completed


# --------------------------------------------------------------------------------------------
# zerodown


ROLLING = "  rolling: {maxSurge: 1, maxUnavailable: 0, minReadySeconds: 1}\n"
NATIVE = (
    "  native: {parallelism: 1, delay: 1s, order: start-first, failureAction: pause, monitor: 2s}\n"
)


def zerodown_spec(
    *, service: str, image: str, port: int, version: str, replicas: int, strategy: str
) -> str:
    return (
        f"service: {service}\n"
        "platform: swarm\n"
        "run:\n"
        f"  image: {image}\n"
        f"  containerPort: {CONTAINER_PORT}\n"
        "  stopGraceSeconds: 5s\n"
        f"replicas: {replicas}\n"
        "env:\n"
        f'  APP_VERSION: "{version}"\n'
        "healthCheck:\n"
        "  http: {path: /healthz}\n"
        "  interval: 500ms\n"
        "  timeout: 400ms\n"
        "  startupGrace: 30s\n"
        "traffic:\n"
        f"  listen: 127.0.0.1:{port}\n"
        f"strategy:\n{strategy}"
    )


def zerodown_processes(home: Path) -> list[int]:
    import psutil

    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if process.environ().get("ZERODOWN_HOME") == str(home):
                found.append(process.pid)
    return found


def run_zerodown(
    client: Any, image: str, workdir: Path, args: argparse.Namespace, *, native: bool = False
) -> Outcome:
    """``native``: ``strategy: native`` (Swarm's update) instead of zerodown's rolling update."""
    kind = "native" if native else "rolling"
    home = workdir / f"zerodown-home-{kind}"
    env = {**os.environ, "ZERODOWN_HOME": str(home), "NO_COLOR": "1"}
    service = f"bench-{kind[:3]}-{RUN}"
    port = free_port()

    def cli(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "zerodown", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    specs = {}
    for version in ("v1", "v2"):
        specs[version] = workdir / f"zerodown-{kind}-{version}.yaml"
        specs[version].write_text(
            zerodown_spec(
                service=service,
                image=image,
                port=port,
                version=version,
                replicas=3,
                strategy=NATIVE if native else ROLLING,
            )
        )
    try:
        done = cli("serve", "--detach", timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"zerodown serve: {done.stdout}{done.stderr}")
        log(f"zerodown: up v1 (3 replicas on swarm, {kind})")
        done = cli("up", str(specs["v1"]), "--version", "v1", timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"zerodown up: {done.stdout}{done.stderr}")
        url = f"http://127.0.0.1:{port}/"
        wait_for(lambda: get_version(url) == "v1", timeout=30, what="zerodown to serve v1")
        release: dict[str, Any] = {}

        def deploy(deadline: float) -> bool:
            log(f"zerodown: deploy v2 --strategy {kind}")
            timeout = max(deadline - time.monotonic(), 1.0)
            try:
                done = cli(
                    "deploy",
                    str(specs["v2"]),
                    "--version",
                    "v2",
                    "--strategy",
                    kind,
                    "--json",
                    "--timeout",
                    str(timeout),
                    timeout=timeout + 30,
                )
            except subprocess.TimeoutExpired:
                return False
            with contextlib.suppress(ValueError, KeyError, TypeError):
                release.update(json.loads(done.stdout)["release"])
            return done.returncode == 0 and release.get("status") == "succeeded"

        stats, seconds, completed = measure_update(url, deploy, args)
        served = get_version(url)
        setup = (
            "zerodown native on swarm: one 3-task service (dynamic host-mode ports) updated by "
            "Swarm, routed and judged by zerodown"
            if native
            else "zerodown on swarm: 3 one-replica host-mode services behind its proxy"
        )
        return Outcome(
            name="zerodown_native" if native else "zerodown",
            setup=setup,
            stats=stats,
            update_seconds=seconds,
            completed=completed and served == "v2",
            note=(
                f"release {release.get('status', '?')} ({release.get('reason') or 'no reason'}),"
                f" serving {served}"
            ),
        )
    finally:
        log("zerodown: shutdown --all")
        with contextlib.suppress(Exception):
            cli("shutdown", "--all", timeout=180)
        for pid in zerodown_processes(home):  # only if shutdown failed: ours, by id
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        leftovers = client.services.list(filters={"label": f"zerodown.service={service}"})
        for svc in leftovers:
            log(f"zerodown: removing leftover service {svc.name}")
            with contextlib.suppress(Exception):
                svc.remove()


# --------------------------------------------------------------------------------------------
# Swarm's own update


def docker_cli(*argv: str, timeout: float = 60) -> str:
    done = subprocess.run(
        ["docker", *argv], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout.strip()


def create_native_service(
    client: Any, name: str, image: str, port: int, replicas: int | None
) -> None:
    """What ``docker service create`` with the flags in the module docstring makes.

    ``--mode global`` or ``--replicas N``, ``--publish mode=host,target=8080,published=<port>``,
    ``--no-resolve-image``, ``--init``, ``--stop-grace-period 5s``, a health check every 500 ms
    (timeout 3 s, 3 retries), ``--update-parallelism 1 --update-order stop-first --update-delay
    1s --update-failure-action pause``, env ``PORT=8080 APP_VERSION=v1``. The health check
    starts a Python process in the container; with a 400 ms timeout it failed now and then on
    this busy machine and Swarm replaced the task, an outage that is not the update's.
    """
    types = docker_types()
    labels = {BENCH_LABEL: RUN}
    spec = types.ContainerSpec(
        image=image,
        env={"PORT": str(CONTAINER_PORT), "APP_VERSION": "v1"},
        labels=labels,
        init=True,
        stop_grace_period=5000 * MS,
        healthcheck=types.Healthcheck(
            test=HEALTH_TEST, interval=500 * MS, timeout=3000 * MS, retries=3
        ),
    )
    client.api.create_service(
        types.TaskTemplate(container_spec=spec),
        name=name,
        labels=labels,
        mode=types.ServiceMode("global")
        if replicas is None
        else types.ServiceMode("replicated", replicas=replicas),
        update_config=types.UpdateConfig(
            parallelism=1, delay=1000 * MS, order="stop-first", failure_action="pause"
        ),
        endpoint_spec=types.EndpointSpec(
            ports=[
                {
                    "Protocol": "tcp",
                    "TargetPort": CONTAINER_PORT,
                    "PublishedPort": port,
                    "PublishMode": "host",
                }
            ]
        ),
    )


def docker_types() -> Any:
    import docker

    return docker.types


def task_states(client: Any, name: str) -> list[str]:
    service = client.services.get(name)
    return [
        str((task.get("Status") or {}).get("State"))
        for task in service.tasks(filters={"desired-state": "running"})
    ]


def run_native(
    client: Any, image: str, args: argparse.Namespace, *, replicas: int | None
) -> Outcome:
    """``replicas`` None: ``--mode global``; else ``--replicas N`` on the same fixed port."""
    name = f"zdbench-native-{RUN}" + (f"-r{replicas}" if replicas else "")
    port = free_port()
    mode = ["--mode", "global"] if replicas is None else ["--replicas", str(replicas)]
    setup = (
        f"docker service create {' '.join(mode)} --publish mode=host,target={CONTAINER_PORT},"
        f"published=<port> --update-parallelism 1 --update-order stop-first --update-delay 1s"
    )
    try:
        log(f"swarm: create {name} ({' '.join(mode)}) on host port {port}")
        create_native_service(client, name, image, port, replicas)
        url = f"http://127.0.0.1:{port}/"
        wait_for(
            lambda: get_version(url) == "v1" and "running" in task_states(client, name),
            timeout=60,
            what=f"{name} to serve v1 from a healthy task",
        )
        if replicas is not None:
            # As many as will ever run; on one node the others stay pending on the port.
            time.sleep(3)
        states = task_states(client, name)
        running = states.count("running")
        log(f"swarm: {name} tasks before the update: {', '.join(sorted(states))}")
        status: dict[str, Any] = {}

        def update(deadline: float) -> bool:
            log(f"swarm: docker service update --env-add APP_VERSION=v2 {name}")
            docker_cli(
                "service",
                "update",
                "--detach",
                "--no-resolve-image",
                "--env-add",
                "APP_VERSION=v2",
                name,
            )
            while time.monotonic() < deadline:
                attrs = client.services.get(name).attrs
                status.clear()
                status.update(attrs.get("UpdateStatus") or {})
                state = status.get("State")
                if state == "completed":
                    return True
                if state in ("paused", "rollback_started", "rollback_completed"):
                    return False
                time.sleep(0.1)
            return False

        stats, seconds, completed = measure_update(url, update, args)
        served = get_version(url)
        return Outcome(
            name="swarm_native" if replicas is None else f"swarm_native_replicas{replicas}",
            setup=setup,
            stats=stats,
            update_seconds=seconds,
            completed=completed and served == "v2",
            note=(
                f"{running} of {len(states)} tasks running before the update; "
                f"update state {status.get('State', '?')}, serving {served}"
            ),
        )
    finally:
        log(f"swarm: removing {name}")
        with contextlib.suppress(Exception):
            docker_cli("service", "rm", name)


# --------------------------------------------------------------------------------------------


def print_table(outcomes: list[Outcome]) -> None:
    print(
        "| run | sent | failed | refused/reset | timeouts | 5xx | p50 ms | p99 ms | max ms "
        "| update s | completed |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for o in outcomes:
        s = o.stats
        print(
            f"| {o.name} | {s.sent} | {s.failed} | {s.connection_errors} | {s.timeouts} "
            f"| {s.server_errors} | {s.latency_p50_ms or 0:.1f} | {s.latency_p99_ms or 0:.1f} "
            f"| {s.latency_max_ms or 0:.1f} | {o.update_seconds:.1f} "
            f"| {'yes' if o.completed else 'NO'} |"
        )
    print()
    for o in outcomes:
        print(f"{o.name}: {o.setup}; {o.note}; achieved {o.stats.achieved_rps:.1f} rps")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rps", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--request-timeout", type=float, default=2.0)
    parser.add_argument("--margin", type=float, default=2.0, help="load before/after the update")
    parser.add_argument("--update-timeout", type=float, default=180.0)
    parser.add_argument("--replicas3-timeout", type=float, default=45.0)
    parser.add_argument("--skip-replicas3", action="store_true")
    parser.add_argument("--skip-zerodown-native", action="store_true")
    args = parser.parse_args()

    import docker

    client = docker.from_env(timeout=120)
    swarm = client.info().get("Swarm", {})
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        print("the Docker engine is not a swarm manager (scripts/dockerd.sh start)")
        return 2
    image = f"zerodown-bench/app:{RUN}"
    workdir = Path(tempfile.mkdtemp(prefix="zerodown-bench-"))
    outcomes: list[Outcome] = []
    try:
        seconds = import_app_image(client, image, workdir)
        log(f"built {image} with docker import in {seconds:.1f}s")
        outcomes.append(run_zerodown(client, image, workdir, args))
        if not args.skip_zerodown_native:
            outcomes.append(run_zerodown(client, image, workdir, args, native=True))
        outcomes.append(run_native(client, image, args, replicas=None))
        if not args.skip_replicas3:
            short = argparse.Namespace(**{**vars(args), "update_timeout": args.replicas3_timeout})
            outcomes.append(run_native(client, image, short, replicas=3))
    finally:
        for svc in client.services.list(filters={"label": f"{BENCH_LABEL}={RUN}"}):
            with contextlib.suppress(Exception):
                svc.remove()
        # Swarm removes a service's containers a moment after the service.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not client.containers.list(all=True, filters={"ancestor": image}):
                break
            time.sleep(0.5)
        with contextlib.suppress(Exception):
            client.images.remove(image, force=True)
        shutil.rmtree(workdir, ignore_errors=True)
        client.close()
    print(
        f"rps={args.rps:g} concurrency={args.concurrency} "
        f"request_timeout={args.request_timeout:g}s margin={args.margin:g}s"
    )
    print_table(outcomes)
    by_name = {o.name: o.stats.failed for o in outcomes}
    native = ""
    if "zerodown_native" in by_name:
        native = f" zerodown_native={by_name['zerodown_native']}"
    print(
        f"failed_requests zerodown={by_name['zerodown']}{native} "
        f"swarm_native={by_name['swarm_native']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
