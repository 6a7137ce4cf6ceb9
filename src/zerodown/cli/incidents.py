"""``zerodown incident list|show|stats|ack|resolve|postmortem``: incidents from the terminal.

The command group is built by ``incident_commands`` from the three things every command of
``cli/app.py`` uses (the output for ``--json`` or people, the controller client, and who is
asking), so this module does not import the app. Each command is a client of the controller's
``/v1/incidents`` routes; tables for people live here with the commands they belong to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from zerodown.cli.client import ControllerClient
from zerodown.cli.render import Output

__all__ = ["incident_commands"]

SEVERITY_STYLE = {"SEV1": "bold red", "SEV2": "red", "SEV3": "yellow", "SEV4": "", "SEV5": "dim"}
STAGE_STYLE = {
    "detected": "red",
    "assessed": "yellow",
    "mitigated": "yellow",
    "recovered": "green",
    "reviewed": "dim",
}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
IdArg = Annotated[int, typer.Argument(help="Incident id (the number of INC-<id>).", min=1)]
NoteOpt = Annotated[str | None, typer.Option(help="A note kept with the stage.")]


def incident_commands(
    *,
    output: Callable[[bool], Output],
    client: Callable[[], ControllerClient],
    who: Callable[[], str],
) -> typer.Typer:
    """The ``incident`` command group."""
    group = typer.Typer(
        name="incident",
        help="Incidents: list, show, acknowledge, resolve, write the postmortem.",
        no_args_is_help=True,
        rich_markup_mode=None,
    )

    @group.command("list")
    def list_(
        service: Annotated[
            str | None, typer.Argument(help="One service; all when omitted.")
        ] = None,
        open_only: Annotated[
            bool, typer.Option("--open", help="Only incidents not recovered yet.")
        ] = False,
        limit: Annotated[int, typer.Option(help="How many, newest first.", min=1)] = 50,
        as_json: JsonOpt = False,
    ) -> None:
        """Incidents, newest first, with MTTD and MTTR (median and p90) below."""
        out = output(as_json)
        with client() as api:
            data = api.get(
                "/v1/incidents", service=service, open="true" if open_only else None, limit=limit
            )
            stats = api.get("/v1/incidents/stats", service=service)
        if as_json:
            out.json({"incidents": data["incidents"], "stats": stats})
            return
        incidents = data["incidents"]
        if not incidents:
            out.line("no incidents" + (f" for {service}" if service else ""))
            return
        table = Table(box=None, pad_edge=False)
        for column in ("ID", "SERVICE", "SEV", "STAGE", "DETECTED", "TTD", "TTR", "TITLE"):
            table.add_column(column)
        for item in incidents:
            table.add_row(
                f"INC-{item['id']}",
                item["service"],
                Text(item["severity"], style=SEVERITY_STYLE.get(item["severity"], "")),
                Text(item["stage"], style=STAGE_STYLE.get(item["stage"], "")),
                _local(item["detected_at"]),
                _duration(_time_to_detect(item)),
                _duration(_time_to_recover(item)),
                item["title"],
            )
        out.out.print(table)
        out.line(_stats_line(stats), "dim")

    @group.command()
    def show(incident: IdArg, as_json: JsonOpt = False) -> None:
        """One incident: its stages with times and who moved them, impact and details."""
        out = output(as_json)
        with client() as api:
            item = api.get(f"/v1/incidents/{incident}")
        if as_json:
            out.json(item)
            return
        _print_incident(out, item)

    @group.command()
    def stats(
        service: Annotated[
            str | None, typer.Argument(help="One service; all when omitted.")
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """MTTD and MTTR: median, p90, mean, every value and a histogram."""
        out = output(as_json)
        with client() as api:
            data = api.get("/v1/incidents/stats", service=service)
        if as_json:
            out.json(data)
            return
        out.line(
            f"{data['incidents']} incident(s), {data['open']} open"
            + (f" ({service})" if service else "")
        )
        for key, label in (("mttd", "time to detect"), ("mttr", "time to recover")):
            dist = data[key]
            out.line(
                f"{key.upper()} ({label}): median {_duration(dist['median_s'])}, "
                f"p90 {_duration(dist['p90_s'])}, mean {_duration(dist['mean_s'])}, "
                f"min {_duration(dist['min_s'])}, max {_duration(dist['max_s'])} "
                f"over {dist['count']} incident(s)"
                + (f"; {dist['unknown']} unknown" if dist["unknown"] else ""),
                "bold",
            )
            if dist["values_s"]:
                out.line("  values: " + ", ".join(_duration(v) for v in dist["values_s"]))
                peak = max(b["count"] for b in dist["histogram"]) or 1
                for bucket in dist["histogram"]:
                    bar = "#" * round(20 * bucket["count"] / peak)
                    out.line(f"  {bucket['bucket']:>12} {bucket['count']:>4} {bar}")

    @group.command()
    def ack(incident: IdArg, note: NoteOpt = None, as_json: JsonOpt = False) -> None:
        """You have assessed the incident (scope and severity): it moves to assessed."""
        _move(output(as_json), client, "ack", incident, {"who": who(), "note": note})

    @group.command()
    def resolve(incident: IdArg, note: NoteOpt = None, as_json: JsonOpt = False) -> None:
        """The service works again: recovered (and mitigated first, if it was not)."""
        _move(output(as_json), client, "resolve", incident, {"who": who(), "note": note})

    @group.command()
    def postmortem(
        incident: IdArg,
        reviewed: Annotated[
            bool,
            typer.Option(
                "--reviewed",
                help="Mark the incident reviewed (refused while the latest draft still has "
                "parts marked [To complete]) instead of writing a draft.",
            ),
        ] = False,
        force: Annotated[
            bool, typer.Option(help="With --reviewed: even with parts left to complete.")
        ] = False,
        directory: Annotated[
            Path | None, typer.Option("--dir", help="Write the draft here instead.")
        ] = None,
        show_text: Annotated[
            bool, typer.Option("--print", help="Also print the Markdown.")
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Write the postmortem draft (Markdown, beside the service's reports), or mark the
        incident reviewed once its draft is complete."""
        out = output(as_json)
        body = {
            "who": who(),
            "reviewed": reviewed,
            "force": force,
            "directory": str(directory.resolve()) if directory else None,
        }
        with client() as api:
            result = api.post(f"/v1/incidents/{incident}/postmortem", body)
        if as_json:
            out.json(result)
            return
        if reviewed:
            out.line(f"INC-{incident} reviewed (postmortem: {result['path'] or 'none'})", "green")
            return
        if show_text:
            out.out.print(result["markdown"], markup=False, highlight=False)
        left = str(result["markdown"]).count("[To complete]")
        out.line(f"postmortem draft: {result['path']}")
        out.line(
            f"{left} part(s) marked [To complete] need a person; then: "
            f"zerodown incident postmortem {incident} --reviewed"
        )

    return group


def _move(
    out: Output,
    client: Callable[[], ControllerClient],
    action: str,
    incident: int,
    body: dict[str, Any],
) -> None:
    with client() as api:
        item = api.post(f"/v1/incidents/{incident}/{action}", body)
    if out.as_json:
        out.json(item)
        return
    reached = item["stages"][-1] if item["stages"] else {}
    out.line(
        f"INC-{item['id']} {item['stage']} at {_local(reached.get('at'))} by {reached.get('who')}",
        STAGE_STYLE.get(item["stage"], ""),
    )


def _print_incident(out: Output, item: Mapping[str, Any]) -> None:
    out.out.print(
        Text.assemble(
            (f"INC-{item['id']}", "bold"),
            "  ",
            (item["severity"], SEVERITY_STYLE.get(item["severity"], "")),
            "  ",
            (item["stage"], STAGE_STYLE.get(item["stage"], "")),
            f"  {item['service']}",
            f"  revision {item['revision']}" if item.get("revision") is not None else "",
        )
    )
    out.out.print(Text(item["title"]))
    out.out.print(Text(f"source {item['source']}  key {item['key']}", style="dim"))
    if item.get("started_at"):
        out.out.print(Text(f"impact began {_local(item['started_at'])}"))
    table = Table(box=None, pad_edge=False)
    for column in ("STAGE", "AT", "SINCE DETECTED", "BY", "NOTE"):
        table.add_column(column)
    detected = datetime.fromisoformat(item["detected_at"])
    reached = {s["stage"]: s for s in item["stages"]}
    for stage in ("detected", "assessed", "mitigated", "recovered", "reviewed"):
        found = reached.get(stage)
        if found is None:
            table.add_row(Text(stage, style="dim"), "-", "", "", "")
            continue
        since = (datetime.fromisoformat(found["at"]) - detected).total_seconds()
        table.add_row(
            Text(stage, style=STAGE_STYLE.get(stage, "")),
            _local(found["at"]),
            f"+{_duration(since)}",
            found["who"],
            found.get("note") or "",
        )
    out.out.print(table)
    out.out.print(
        f"time to detect {_duration(_time_to_detect(item))}, "
        f"time to recover {_duration(_time_to_recover(item))}",
        markup=False,
    )
    impact = item.get("impact") or {}
    if impact.get("measured"):
        rate = impact.get("error_rate")
        p95 = impact.get("p95_ms")
        out.out.print(
            f"impact: {impact.get('scope')} served {impact.get('requests')} requests, "
            f"{impact.get('errors')} with a 5xx"
            + (f" ({rate * 100:.2f} %)" if rate is not None else "")
            + (f", p95 {p95:.1f} ms" if p95 is not None else "")
            + f", in {_duration(impact.get('seconds'))} [{impact.get('source')}]",
            markup=False,
        )
    else:
        out.out.print(f"impact: unknown ({impact.get('reason') or 'not measured'})", markup=False)
    if item.get("postmortem_path"):
        out.out.print(f"postmortem: {item['postmortem_path']}", markup=False)


def _time_to_detect(item: Mapping[str, Any]) -> float | None:
    if not item.get("started_at"):
        return None
    return _seconds(item["started_at"], item["detected_at"])


def _time_to_recover(item: Mapping[str, Any]) -> float | None:
    if not item.get("recovered_at"):
        return None
    return _seconds(item["detected_at"], item["recovered_at"])


def _seconds(start: str, end: str) -> float:
    return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())


def _stats_line(stats: Mapping[str, Any]) -> str:
    parts = []
    for key in ("mttd", "mttr"):
        dist = stats[key]
        if dist["count"]:
            parts.append(
                f"{key.upper()} median {_duration(dist['median_s'])}, "
                f"p90 {_duration(dist['p90_s'])} (n={dist['count']})"
            )
        else:
            parts.append(f"{key.upper()} -")
    return "  ".join(parts) + "  ('zerodown incident stats' for the distributions)"


def _local(iso: str | None) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{int(minutes)} min {rest:.0f} s"
    hours, rest = divmod(seconds, 3600)
    return f"{int(hours)} h {rest / 60:.0f} min"
