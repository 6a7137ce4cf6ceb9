"""``zerodown metrics``, ``zerodown alerts`` and ``zerodown silence add|list|expire``.

Built by ``register_monitor_commands`` from what every command of ``cli/app.py`` uses (the
output for ``--json`` or people, the controller client, who is asking, the ``--since``
parser), so this module does not import the app. Each command is a client of the controller's
monitor routes (``/v1/services/{name}/metrics``, ``/v1/alerts``, ``/v1/silences``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from zerodown.cli.client import ControllerClient
from zerodown.cli.render import Output
from zerodown.core.errors import InputError
from zerodown.spec.durations import parse_duration

__all__ = ["register_monitor_commands"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
STATE_STYLE = {"firing": "red", "pending": "yellow", "inactive": "dim", "active": "green"}


def _number(value: Any, *, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{float(value) * scale:.{digits}f}{unit}"


def _time(iso: str | None) -> str:
    if not iso:
        return "-"
    return (
        datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone().strftime("%m-%d %H:%M:%S")
    )


def _figures_row(label: str, figures: dict[str, Any]) -> list[str]:
    return [
        label,
        str(figures.get("requests", 0)),
        _number(figures.get("request_rate"), digits=2),
        _number(figures.get("error_rate"), scale=100, digits=2, unit=" %"),
        _number(figures.get("availability"), scale=100, digits=2, unit=" %"),
        _number(figures.get("latency_avg_s"), scale=1000, unit=" ms"),
        _number(figures.get("latency_p95_s"), scale=1000, unit=" ms"),
        _number(figures.get("latency_p99_s"), scale=1000, unit=" ms"),
    ]


def _print_metrics(out: Output, data: dict[str, Any], *, points: int) -> None:
    out.line(
        f"{data['service']}: {_time(data['since'])} to {_time(data['until'])}, "
        f"sampled every {data.get('interval_s', 0):g}s",
        "bold",
    )
    versions = data["versions"]
    if not versions:
        out.line("no traffic figures in this window")
    columns = ("VERSION", "REQUESTS", "REQ/S", "ERRORS", "AVAILABILITY", "AVG", "P95", "P99")
    if versions:
        table = Table(box=None, pad_edge=False)
        for column in columns:
            table.add_column(column)
        for version, item in versions.items():
            table.add_row(*_figures_row(version, item["window"]))
        out.out.print(table)
    for version, item in versions.items():
        recent = [p for p in item["points"] if p.get("requests")][-points:]
        if not recent:
            continue
        out.line(f"\nversion {version}, last {len(recent)} step(s) with traffic:")
        table = Table(box=None, pad_edge=False)
        for column in ("TIME", *columns[1:]):
            table.add_column(column)
        for point in recent:
            when = datetime.fromtimestamp(point["t"]).strftime("%H:%M:%S")
            table.add_row(*_figures_row(when, point))
        out.out.print(table)
    if data["instances"]:
        out.line("")
        table = Table(box=None, pad_edge=False)
        for column in ("INSTANCE", "VERSION", "HEALTH", "CPU", "MEMORY"):
            table.add_column(column)
        for inst in data["instances"]:
            healthy = inst.get("healthy")
            health = "-" if healthy is None else ("healthy" if healthy else "unhealthy")
            table.add_row(
                inst["instance"],
                inst.get("version", ""),
                Text(health, style="green" if healthy else ("red" if healthy is False else "")),
                _number(inst.get("cpu_cores"), scale=100, unit=" %"),
                _number(inst.get("memory_bytes"), scale=1 / 1048576, unit=" MiB"),
            )
        out.out.print(table)


def register_monitor_commands(
    app: typer.Typer,
    *,
    output: Callable[[bool], Output],
    client: Callable[[], ControllerClient],
    who: Callable[[], str],
    parse_since: Callable[[str], float],
) -> None:
    """Add ``metrics``, ``alerts`` and the ``silence`` group to ``app``."""

    @app.command()
    def metrics(
        service: Annotated[str, typer.Argument(help="Service name.")],
        since: Annotated[
            str, typer.Option(help="Window start: 30s, 5m, 2h, 7d ago or an ISO time.")
        ] = "1h",
        step: Annotated[
            str | None, typer.Option(help="Seconds between points (30s, 5m); default ~60 points.")
        ] = None,
        points: Annotated[int, typer.Option(help="Recent steps shown per version.", min=0)] = 10,
        as_json: JsonOpt = False,
    ) -> None:
        """Request rate, error rate, availability and latency (mean, p95, p99) per version,
        and each instance's health, CPU and memory, as the monitor sampled them."""
        out = output(as_json)
        start = parse_since(since)
        step_s = None
        if step is not None:
            try:
                step_s = parse_duration(step)
            except ValueError as exc:
                raise InputError(f"--step {step!r}: {exc}") from None
            if step_s <= 0:
                raise InputError("--step must be above 0")
        with client() as api:
            data = api.get(
                f"/v1/services/{service}/metrics", since=start, until=time.time(), step=step_s
            )
        if as_json:
            out.json(data)
        else:
            _print_metrics(out, data, points=points)

    @app.command()
    def alerts(
        resolved: Annotated[
            bool, typer.Option("--resolved", help="Also alerts resolved in the last 15 min.")
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Pending and firing alerts of every service and of the host, and failing rules."""
        out = output(as_json)
        with client() as api:
            data = api.get("/v1/alerts", resolved="true" if resolved else None)
        if as_json:
            out.json(data)
            return
        if not data["alerts"]:
            out.line("no alerts pending or firing", "green")
        else:
            table = Table(box=None, pad_edge=False)
            for column in ("STATE", "ALERT", "SCOPE", "SEVERITY", "SINCE", "SUMMARY"):
                table.add_column(column)
            for alert in data["alerts"]:
                state = alert["state"] + (" (silenced)" if alert.get("silenced_by") else "")
                table.add_row(
                    Text(state, style=STATE_STYLE.get(alert["state"], "")),
                    alert["name"],
                    alert["scope"],
                    alert["labels"].get("severity", "-"),
                    _time(alert.get("fired_at") or alert.get("active_at")),
                    alert["annotations"].get("summary", ""),
                )
            out.out.print(table)
        for error in data["errors"]:
            out.line(f"rule {error['rule']} ({error['scope']}) fails: {error['error']}", "red")

    silence = typer.Typer(
        name="silence",
        help="Silences: mute alerts that match, for a while (kept across restarts).",
        no_args_is_help=True,
        rich_markup_mode=None,
    )

    @silence.command("add")
    def silence_add(
        matchers: Annotated[
            list[str],
            typer.Argument(
                help='Matchers, all of which must match: service=web alertname=~"High.*"'
            ),
        ],
        comment: Annotated[str, typer.Option("--comment", "-c", help="Why (required).")],
        duration: Annotated[str, typer.Option(help="How long: 30m, 2h, 1d.")] = "1h",
        author: Annotated[str | None, typer.Option(help="Who mutes (default: you).")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Mute the alerts matching every matcher for ``--duration``."""
        out = output(as_json)
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:
            raise InputError(f"--duration {duration!r}: {exc}") from None
        if seconds <= 0:
            raise InputError("--duration must be above 0")
        with client() as api:
            data = api.post(
                "/v1/silences",
                {
                    "matchers": matchers,
                    "comment": comment,
                    "duration": seconds,
                    "created_by": author or who(),
                },
            )
        item = data["silence"]
        if as_json:
            out.json(data)
        else:
            out.line(
                f"silence {item['id']} mutes {', '.join(item['matchers_text'])} "
                f"until {_time(item['endsAt'])}",
                "green",
            )

    @silence.command("list")
    def silence_list(
        every: Annotated[
            bool, typer.Option("--all", help="Expired silences too (kept five days).")
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Silences in force or to come (with --all, expired ones too)."""
        out = output(as_json)
        with client() as api:
            items = api.get("/v1/silences")["silences"]
        if not every:
            items = [s for s in items if s["status"]["state"] != "expired"]
        if as_json:
            out.json({"silences": items})
            return
        if not items:
            out.line("no silences")
            return
        table = Table(box=None, pad_edge=False)
        for column in ("ID", "STATE", "MATCHERS", "ENDS", "BY", "COMMENT"):
            table.add_column(column)
        for item in items:
            state = item["status"]["state"]
            table.add_row(
                item["id"],
                Text(state, style=STATE_STYLE.get(state, "")),
                " ".join(item["matchers_text"]),
                _time(item["endsAt"]),
                item["createdBy"],
                item["comment"],
            )
        out.out.print(table)

    @silence.command("expire")
    def silence_expire(
        silence_id: Annotated[str, typer.Argument(help="The silence's id.")],
        as_json: JsonOpt = False,
    ) -> None:
        """End a silence now."""
        out = output(as_json)
        with client() as api:
            data = api.post(f"/v1/silences/{silence_id}/expire", {})
        if as_json:
            out.json(data)
        else:
            out.line(f"silence {silence_id} expired", "green")

    app.add_typer(silence, name="silence")
