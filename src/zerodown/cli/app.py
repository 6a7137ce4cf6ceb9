"""The ``zerodown`` command: a Typer app whose commands are clients of the controller's API.

``validate`` and ``init`` work without a controller; ``serve`` runs one. Every other command
talks to the controller found in the state directory. Every command takes ``--json``. Errors
print one red line (or a JSON error document) and exit with the error's code: 1 operation
failed, 2 bad input, 3 refused. Unexpected errors go to ``<state>/debug.log`` with the
traceback.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from zerodown.cli.backups import BACKUP_TIMEOUT_SECONDS, backup_commands, confirm_rollback_data
from zerodown.cli.client import ControllerClient
from zerodown.cli.dr import dr_commands
from zerodown.cli.incidents import incident_commands
from zerodown.cli.monitoring import register_monitor_commands
from zerodown.cli.render import Output
from zerodown.core.errors import (
    ControllerUnavailableError,
    InputError,
    OperationFailedError,
    TemporaryError,
    ZerodownError,
)
from zerodown.core.process import pid_alive
from zerodown.core.state import StateDir
from zerodown.monitor.config import check_monitor_files
from zerodown.ops.log_levels import parse_level
from zerodown.spec import load_spec, template_text

__all__ = ["app", "main"]

app = typer.Typer(
    name="zerodown",
    help="Zero-downtime deployments and day-2 operations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class _Context:
    state_dir: str | None = None
    output: Output = Output(as_json=False)


CTX = _Context()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
SpecArg = Annotated[Path, typer.Argument(help="Path to the spec file.")]


def _out(as_json: bool) -> Output:
    CTX.output = Output(as_json=as_json)
    return CTX.output


def _state() -> StateDir:
    return StateDir(CTX.state_dir)


def _client() -> ControllerClient:
    return ControllerClient(_state())


@app.callback()
def _root(
    state_dir: Annotated[
        str | None,
        typer.Option(
            "--state-dir",
            envvar="ZERODOWN_HOME",
            help="State directory (database, token, logs). Default ./.zerodown",
        ),
    ] = None,
) -> None:
    """Zero-downtime deployments and day-2 operations."""
    CTX.state_dir = state_dir


# --- specs, no controller needed ------------------------------------------------------------
@app.command()
def validate(
    spec: Annotated[Path, typer.Argument(help="Spec file.")] = Path("zerodown.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """Check a spec file (and the monitor's rule and routing files it names); print every
    problem with its file, line and field."""
    out = _out(as_json)
    loaded = load_spec(spec)
    s = loaded.spec
    check_monitor_files(s, spec.resolve().parent)
    if as_json:
        out.json(
            {
                "ok": True,
                "file": str(spec),
                "service": s.service,
                "platform": s.platform,
                "replicas": s.replicas,
                "strategy": s.strategy_name,
                "spec_hash": loaded.spec_hash,
            }
        )
    else:
        out.line(
            f"{spec}: ok: service {s.service}, platform {s.platform}, {s.replicas} replica(s), "
            f"strategy {s.strategy_name}",
            "green",
        )


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the spec.")] = Path("zerodown.yaml"),
    service: Annotated[str, typer.Option(help="Service name.")] = "web",
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a commented spec to start from."""
    out = _out(as_json)
    if path.exists() and not force:
        raise InputError(f"{path} exists; use --force to overwrite it")
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,39}", service):
        raise InputError(f"service name {service!r} must match [a-z][a-z0-9-]{{0,39}}")
    path.write_text(template_text(service))
    if as_json:
        out.json({"ok": True, "file": str(path), "service": service})
    else:
        out.line(f"wrote {path}; edit run.command, then: zerodown validate {path}")


# --- the controller ---------------------------------------------------------------------------
@app.command()
def serve(
    host: Annotated[str, typer.Option(help="API address (loopback).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port; 0 picks a free one.")] = 0,
    store: Annotated[
        str | None, typer.Option(help="Store URL: a SQLite path or postgresql://...")
    ] = None,
    proxy: Annotated[bool, typer.Option(help="Route traffic through the built-in proxy.")] = True,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="ZERODOWN_REPORT_DIR",
            help="Where reports go (default: .claude/context/deployment/ beside each spec).",
        ),
    ] = None,
    detach: Annotated[bool, typer.Option(help="Run in the background and return.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the controller: reconcile loop and HTTP API (Ctrl-C stops it; instances stay up)."""
    out = _out(as_json)
    state = _state().ensure()
    if detach:
        info = _spawn_controller(
            state, host=host, port=port, store=store, proxy=proxy, report_dir=report_dir
        )
        if as_json:
            out.json(
                {"ok": True, "pid": info["pid"], "url": info["url"], "state_dir": str(state.path)}
            )
        else:
            out.line(f"controller running (pid {info['pid']}) at {info['url']}, state {state.path}")
        return
    from zerodown.api.server import serve as run_server

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    raise typer.Exit(
        run_server(state, host=host, port=port, store_url=store, proxy=proxy, report_dir=report_dir)
    )


def _spawn_controller(
    state: StateDir,
    *,
    host: str,
    port: int,
    store: str | None,
    proxy: bool,
    report_dir: Path | None,
) -> dict[str, Any]:
    running = state.read_controller()
    if running is not None and pid_alive(running.pid):
        raise InputError(f"a controller (pid {running.pid}) already runs at {running.url}")
    argv = [sys.executable, "-m", "zerodown", "--state-dir", str(state.path), "serve"]
    argv += ["--host", host, "--port", str(port)]
    if store:
        argv += ["--store", store]
    if not proxy:
        argv.append("--no-proxy")
    if report_dir is not None:
        argv += ["--report-dir", str(report_dir.resolve())]
    log_path = state.path / "controller.log"
    with open(log_path, "ab") as log_file:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise OperationFailedError(
                f"the controller exited with code {child.returncode}; see {log_path}"
            )
        info = state.read_controller()
        if info is not None and info.pid == child.pid:
            try:
                with ControllerClient(state, timeout=2) as client:
                    client.get("/v1/services")
                return {"pid": info.pid, "url": info.url}
            except ControllerUnavailableError:
                pass
        time.sleep(0.05)
    child.terminate()
    raise TemporaryError(f"the controller did not answer within 30s; see {log_path}")


@app.command()
def shutdown(
    all_: Annotated[
        bool,
        typer.Option("--all", help="Also stop every service and the proxy."),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Stop the controller (instances keep running unless --all)."""
    out = _out(as_json)
    state = _state()
    stopped: list[str] = []
    info = state.read_controller()
    if info is not None and pid_alive(info.pid):
        if all_:
            with _client() as client:
                services = client.get("/v1/services")["services"]
                for svc in services:
                    if svc["desired_state"] != "stopped" or svc["instances"]:
                        client.post(f"/v1/services/{svc['name']}/stop")
                        _wait_stopped(client, svc["name"], timeout=timeout)
                        stopped.append(svc["name"])
                        out.line(f"stopped {svc['name']}")
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(info.pid):
            raise OperationFailedError(f"the controller (pid {info.pid}) did not stop in time")
        out.line(f"controller (pid {info.pid}) stopped")
    else:
        out.line("no controller running")
    proxy_stopped = False
    if all_:
        from zerodown.traffic.proxy.launcher import stop_proxy

        proxy_stopped = bool(stop_proxy(state.path))
        if proxy_stopped:
            out.line("proxy stopped")
    if as_json:
        out.json({"ok": True, "services_stopped": stopped, "proxy_stopped": proxy_stopped})


# --- services ---------------------------------------------------------------------------------
@app.command()
def up(
    spec: SpecArg,
    version: Annotated[str | None, typer.Option(help="Version label of what you deploy.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the service is serving.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 300.0,
    as_json: JsonOpt = False,
) -> None:
    """Bring a service up for the first time (no strategy needed)."""
    out = _out(as_json)
    loaded = load_spec(spec)
    with _client() as client:
        after = _last_event_id(client)
        result = client.post(
            "/v1/services",
            {"spec_path": str(spec.resolve()), "spec_text": loaded.text, "version": version},
        )
        release = result["release"]
        name = loaded.spec.service
        out.line(f"{name}: revision {release['revision']} ({release['version']}) created")
        if not wait:
            if as_json:
                out.json({"ok": True, "service": name, "release": release})
            return
        final = _follow_release(client, out, name, release["revision"], after, timeout)
        svc = client.get(f"/v1/services/{name}")
    if as_json:
        out.json({"ok": final["status"] == "succeeded", "service": svc, "release": final})
    else:
        out.service(svc)
    if final["status"] != "succeeded":
        raise _Failed(final["reason"] or final["status"])


class _Failed(OperationFailedError):
    """The operation ran and failed; the details were printed already."""


def _last_event_id(client: ControllerClient) -> int:
    events = client.get("/v1/events", after=0, limit=1_000_000)["events"]
    return int(events[-1]["id"]) if events else 0


def _follow_release(
    client: ControllerClient,
    out: Output,
    service: str,
    revision: int,
    after: int,
    timeout: float,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        events = client.get("/v1/events", service=service, after=after)["events"]
        for event in events:
            after = event["id"]
            if not out.as_json:
                out.event(event)
        releases = client.get(f"/v1/services/{service}/releases", limit=20)["releases"]
        release = next(r for r in releases if r["revision"] == revision)
        if release["status"] not in ("pending", "progressing"):
            for event in client.get("/v1/events", service=service, after=after)["events"]:
                if not out.as_json:
                    out.event(event)
            return dict(release)
        if time.monotonic() > deadline:
            raise TemporaryError(
                f"{service} revision {revision} still {release['status']} after {timeout:g}s"
            )
        time.sleep(0.2)


def _wait_stopped(client: ControllerClient, service: str, *, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        svc = client.get(f"/v1/services/{service}")
        live = [i for i in svc["instances"] if i["state"] != "crashed"]
        if not live:
            return svc
        if time.monotonic() > deadline:
            raise TemporaryError(f"{service} still has {len(live)} instance(s) after {timeout:g}s")
        time.sleep(0.1)


def _who() -> str:
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or "user"
    return f"{user}@{socket.gethostname()}"


@app.command()
def deploy(
    spec: SpecArg,
    version: Annotated[str | None, typer.Option(help="Version label of what you deploy.")] = None,
    strategy: Annotated[
        str | None,
        typer.Option(help="rolling, blue-green, canary or native (default: the spec's)."),
    ] = None,
    watch: Annotated[bool, typer.Option(help="Follow the rollout until it ends.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to follow.")] = 1800.0,
    force: Annotated[bool, typer.Option(help="Deploy even outside a deployment window.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Roll out a new version of a running service (exit 1 if it is rolled back)."""
    out = _out(as_json)
    loaded = load_spec(spec)
    name = loaded.spec.service
    # Pre-deployment checks run before the answer (a backup hook may take minutes).
    with ControllerClient(_state(), timeout=900) as client:
        after = _last_event_id(client)
        result = client.post(
            f"/v1/services/{name}/deploy",
            {
                "spec_path": str(spec.resolve()),
                "spec_text": loaded.text,
                "version": version,
                "strategy": strategy,
                "who": _who(),
                "force": force,
            },
        )
        release = result["release"]
        out.line(
            f"{name}: revision {release['revision']} ({release['version']}) created: "
            f"{release['strategy']} rollout"
        )
        if not watch:
            if as_json:
                out.json({"ok": True, "service": name, "release": release})
            return
        if sys.stdout.isatty() and not as_json:
            final = watch_rollout(client, out, name, release["revision"], timeout)
        else:
            final = _follow_release(client, out, name, release["revision"], after, timeout)
        detail = client.get(f"/v1/services/{name}/releases/{release['revision']}")
    if as_json:
        out.json({"ok": final["status"] == "succeeded", "service": name, "release": detail})
    else:
        timings = detail["state"].get("timings") or {}
        extra = ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in sorted(timings.items()))
        style = "green" if final["status"] == "succeeded" else "red"
        out.line(
            f"revision {final['revision']} {final['status']}: {final['reason']}"
            + (f" ({extra})" if extra else ""),
            style,
        )
    if final["status"] != "succeeded":
        raise _Failed(final["reason"] or final["status"])


def watch_rollout(
    client: ControllerClient, out: Output, service: str, revision: int, timeout: float
) -> dict[str, Any]:
    """A live view of one rollout until it ends (people at a terminal)."""
    from rich.live import Live

    from zerodown.cli.render import rollout_view

    started = time.monotonic()
    after = _last_event_id(client)
    samples: list[dict[str, Any]] = []
    with Live(console=out.out, refresh_per_second=4, transient=False) as live:
        while True:
            detail = client.get(f"/v1/services/{service}/releases/{revision}")
            svc = client.get(f"/v1/services/{service}")
            for event in client.get("/v1/events", service=service, after=after)["events"]:
                after = event["id"]
                if event["kind"] == "rollout.sample":
                    samples = [*samples[-1:], event["data"]]
            live.update(rollout_view(detail, svc, samples, time.monotonic() - started))
            if detail["status"] not in ("pending", "progressing", "paused"):
                return dict(detail)
            if time.monotonic() - started > timeout:
                raise TemporaryError(f"{service} revision {revision} still {detail['status']}")
            time.sleep(0.5)


def _control(action: str, service: str, as_json: bool, **body: Any) -> None:
    out = _out(as_json)
    with _client() as client:
        result = client.post(f"/v1/services/{service}/{action}", {"who": _who(), **body})
    if as_json:
        out.json(result)
    else:
        out.line(f"{service}: {result['message']}")


@app.command()
def promote(
    service: Annotated[str, typer.Argument(help="Service name.")],
    full: Annotated[bool, typer.Option(help="Skip every remaining step: go to 100 %.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Go on past the current pause or analysis of a rollout."""
    _control("promote", service, as_json, full=full)


@app.command()
def pause(
    service: Annotated[str, typer.Argument(help="Service name.")], as_json: JsonOpt = False
) -> None:
    """Hold a rollout where it is (health failures still roll back)."""
    _control("pause", service, as_json)


@app.command()
def resume(
    service: Annotated[str, typer.Argument(help="Service name.")], as_json: JsonOpt = False
) -> None:
    """Continue a paused rollout (an inconclusive analysis runs again)."""
    _control("resume", service, as_json)


@app.command()
def abort(
    service: Annotated[str, typer.Argument(help="Service name.")],
    reason: Annotated[str | None, typer.Option(help="Why (goes to the event log).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop a rollout and restore the stable release."""
    _control("abort", service, as_json, reason=reason)


@app.command()
def rollback(
    service: Annotated[str, typer.Argument(help="Service name.")],
    to: Annotated[int | None, typer.Option(help="Revision to go back to.")] = None,
    with_data: Annotated[
        bool,
        typer.Option(
            "--with-data",
            help="Also restore, over the live data, the backups taken while that release "
            "served (asks first).",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Back to an earlier release: instant when it is still warm, else rolled out again."""
    if not with_data:
        _control("rollback", service, as_json, to=to)
        return
    out = _out(as_json)
    with ControllerClient(_state(), timeout=BACKUP_TIMEOUT_SECONDS) as client:
        plan = client.get(f"/v1/services/{service}/rollback-data", to=to)
        confirm_rollback_data(out, plan, yes=yes)
        confirmed = [b["id"] for b in plan["backups"]]  # refused if the plan changed since
        result = client.post(
            f"/v1/services/{service}/rollback",
            {"who": _who(), "to": to, "with_data": True, "backup_ids": confirmed},
        )
    if as_json:
        out.json({**result, "restored": plan["backups"]})
    else:
        out.line(f"{service}: {result['message']}")


@app.command()
def load(
    url: Annotated[str, typer.Argument(help="Where to send requests (your own service).")],
    rps: Annotated[float, typer.Option(help="Requests per second.")] = 50.0,
    duration: Annotated[float, typer.Option(help="Seconds.")] = 10.0,
    concurrency: Annotated[int, typer.Option(help="Connections.")] = 16,
    count_header: Annotated[
        str | None, typer.Option(help="Count responses per value of this header.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Send bounded synthetic traffic (for canaries and demos); prints what came back.

    Ctrl-C or SIGTERM ends it early and still prints the figures."""
    import threading

    from zerodown.ops.load import run_load

    out = _out(as_json)
    stop_event = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop_event.set())
    stats = run_load(
        url,
        rps=rps,
        duration=duration,
        concurrency=concurrency,
        count_header=count_header,
        stop=stop_event,
    )
    if as_json:
        out.json(stats.to_dict())
    else:
        out.load_stats(stats.to_dict())


@app.command()
def report(
    service: Annotated[str, typer.Argument(help="Service name.")],
    revision: Annotated[int | None, typer.Option(help="Release (default: the newest).")] = None,
    lang: Annotated[str, typer.Option(help="zh-TW (the template's labels) or en.")] = "zh-TW",
    directory: Annotated[Path | None, typer.Option("--dir", help="Write here instead.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the Deployment Operations Report of a release again (Markdown, JSON, SVG)."""
    out = _out(as_json)
    if lang not in ("zh-TW", "en"):
        raise InputError(f"--lang {lang!r}: choose zh-TW or en")
    with _client() as client:
        paths = client.post(
            f"/v1/services/{service}/report",
            {
                "revision": revision,
                "lang": lang,
                "directory": str(directory.resolve()) if directory else None,
            },
        )
    if as_json:
        out.json({"ok": True, **paths})
    else:
        out.line(f"report: {paths['markdown']}")


@app.command()
def status(
    service: Annotated[str | None, typer.Argument(help="One service; all when omitted.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Services, their current release and instances."""
    out = _out(as_json)
    with _client() as client:
        if service:
            out.service(client.get(f"/v1/services/{service}"))
        else:
            out.services(client.get("/v1/services")["services"])


@app.command()
def history(
    service: Annotated[str, typer.Argument(help="Service name.")],
    limit: Annotated[int, typer.Option(help="How many releases.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Releases of a service, newest first."""
    out = _out(as_json)
    with _client() as client:
        data = client.get(f"/v1/services/{service}/releases", limit=limit)
    out.releases(service, data["releases"])


@app.command()
def events(
    service: Annotated[str | None, typer.Argument(help="One service; all when omitted.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
    limit: Annotated[int, typer.Option(help="How many of the newest events.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The event log: what the controller did and saw."""
    out = _out(as_json)
    with _client() as client:
        items = client.get("/v1/events", service=service, after=0, limit=1_000_000)["events"]
        items = items[-limit:]
        if as_json and not follow:
            out.json({"events": items})
            return
        for event in items:
            out.event(event)
        after = items[-1]["id"] if items else 0
        while follow:
            time.sleep(0.5)
            for event in client.get("/v1/events", service=service, after=after)["events"]:
                after = event["id"]
                out.event(event)


def parse_since(text: str) -> float:
    """``30s``, ``5m``, ``2h``, ``1d`` ago, or an ISO 8601 time: epoch seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text.strip())
    if match:
        unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        return time.time() - float(match.group(1)) * unit
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"--since {text!r}: expected a duration like 30s, 5m, 2h or an ISO 8601 time"
        ) from None
    return when.timestamp()


FOLLOW_PAGE = 1000
"""Entries per request while following; a full page is followed by the next at once."""


@app.command()
def logs(
    service: Annotated[str, typer.Argument(help="Service name.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")
    ] = False,
    since: Annotated[
        str | None, typer.Option(help="Only lines since: 30s, 5m, 2h or an ISO time.")
    ] = None,
    tail: Annotated[int, typer.Option(help="Last N lines (0: all).")] = 100,
    instance: Annotated[str | None, typer.Option(help="Only this instance.")] = None,
    version: Annotated[str | None, typer.Option(help="Only instances of this version.")] = None,
    level: Annotated[
        str | None,
        typer.Option(
            help="Only lines at this level or above: debug, info, warning, error, critical."
        ),
    ] = None,
    grep: Annotated[str | None, typer.Option(help="Only lines matching this regex.")] = None,
    patterns: Annotated[
        bool,
        typer.Option(
            "--patterns",
            help="Group the lines into templates (with counts, first and last seen, "
            "examples) instead of printing them.",
        ),
    ] = False,
    top: Annotated[int, typer.Option(help="With --patterns: how many templates.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Aggregated logs of every instance of a service, with timestamps and levels.

    --json prints one JSON object per line (with --patterns, one document).
    """
    out = _out(as_json)
    since_ts = parse_since(since) if since else None
    if grep:
        try:
            re.compile(grep)
        except re.error as exc:
            raise InputError(f"--grep {grep!r} is not a valid regex: {exc}") from None
    if level is not None:
        try:
            level = parse_level(level).value
        except ValueError as exc:
            raise InputError(f"--level: {exc}") from None
    if patterns and follow:
        raise InputError("--patterns and --follow do not go together")
    if top < 1:
        raise InputError(f"--top must be at least 1, got {top}")
    filters = {"instance": instance, "pattern": grep, "level": level, "version": version}
    with _client() as client:
        if patterns:
            report = client.get(
                f"/v1/services/{service}/logs/patterns", since=since_ts, top=top, **filters
            )
            if as_json:
                out.json(report)
            else:
                out.log_patterns(report)
            return
        page = client.get(
            f"/v1/services/{service}/logs", since=since_ts, tail=tail or None, **filters
        )
        out.log_entries(page["entries"])
        offset = page["next_offset"]
        try:
            while follow:
                if len(page["entries"]) < FOLLOW_PAGE:  # caught up: wait for new lines
                    time.sleep(0.3)
                page = client.get(
                    f"/v1/services/{service}/logs", offset=offset, limit=FOLLOW_PAGE, **filters
                )
                out.log_entries(page["entries"])
                offset = page["next_offset"]
        except KeyboardInterrupt:
            return  # Ctrl-C is how following ends


@app.command()
def stop(
    service: Annotated[str, typer.Argument(help="Service name.")],
    wait: Annotated[bool, typer.Option(help="Wait until every instance stopped.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 120.0,
    as_json: JsonOpt = False,
) -> None:
    """Drain and stop every instance of a service (its history stays)."""
    out = _out(as_json)
    with _client() as client:
        svc = client.post(f"/v1/services/{service}/stop")
        if wait:
            svc = _wait_stopped(client, service, timeout=timeout)
    if as_json:
        out.json({"ok": True, "service": svc})
    else:
        out.line(f"{service} stopped")


@app.command()
def dashboard(
    open_browser: Annotated[
        bool, typer.Option("--open", help="Also open the link in the default web browser.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Print a sign-in link to the web dashboard (it works once, within a minute)."""
    out = _out(as_json)
    with _client() as client:
        code = client.post("/v1/login-codes")
        url = client.url + str(code["login_path"])
    if as_json:
        out.json({"url": url, "expires_in": code["expires_in"]})
    else:
        out.line(url)
        out.line(
            f"open it within {float(code['expires_in']):.0f} s; it works once and signs the "
            "browser in for 12 hours",
            style="dim",
        )
    if open_browser:
        import webbrowser

        webbrowser.open(url)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def proxy(ctx: typer.Context) -> None:
    """Run the built-in data plane (see 'zerodown proxy --help')."""
    from zerodown.traffic.proxy.__main__ import main as proxy_main

    argv = list(ctx.args)
    if "--state-dir" not in argv:
        argv = ["--state-dir", str(_state().path), *argv]
    raise typer.Exit(proxy_main(argv))


# --- incidents --------------------------------------------------------------------------------
app.add_typer(incident_commands(output=_out, client=_client, who=_who), name="incident")

# --- backups ----------------------------------------------------------------------------------
app.add_typer(backup_commands(output=_out, state=_state), name="backup")

# --- disaster recovery ------------------------------------------------------------------------
app.add_typer(dr_commands(output=_out, state=_state), name="dr")

# --- monitoring: metrics, alerts, silences ------------------------------------------------------
register_monitor_commands(app, output=_out, client=_client, who=_who, parse_since=parse_since)


# --- entry point ------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map the error tree to one line and an exit code."""
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ZerodownError as exc:
        if not isinstance(exc, _Failed):
            CTX.output.error(exc.message, exc.to_dict())
            if hasattr(exc, "problems") and not CTX.output.as_json:
                for problem in exc.problems[1:]:
                    CTX.output.err.print(f"  {problem.render()}", style="red", markup=False)
        elif CTX.output.as_json is False:
            CTX.output.error(exc.message)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # unexpected: one line for the user, the traceback to a file
        log_path = _debug_log(traceback.format_exc())
        CTX.output.error(f"internal error: {exc.__class__.__name__}: {exc} (details in {log_path})")
        return 1
    return 0


def _debug_log(text: str) -> Path:
    state = _state()
    try:
        state.ensure()
        path = state.path / "debug.log"
        with open(path, "a") as handle:
            handle.write(f"--- {datetime.now().isoformat()}\n{text}\n")
        return path
    except (OSError, ZerodownError):
        return Path("/dev/stderr")


# --- agents -----------------------------------------------------------------------------------
@app.command(name="mcp")
def mcp_server() -> None:
    """Serve MCP over stdio for agents (a client of the running controller, like this CLI)."""
    try:
        from zerodown.mcp import serve as serve_mcp
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("mcp", "mcp_types"):
            raise
        raise OperationFailedError(
            "'zerodown mcp' needs the mcp package: pip install 'zerodown[mcp]'"
        ) from exc
    serve_mcp(_state())
