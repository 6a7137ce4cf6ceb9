"""All Rich output of the CLI: tables for people, JSON for machines, one red line for errors."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["Output"]

STATUS_STYLE = {
    "succeeded": "green",
    "progressing": "yellow",
    "pending": "yellow",
    "paused": "yellow",
    "failed": "red",
    "rolled_back": "red",
    "stopped": "dim",
    "superseded": "dim",
    "running": "green",
    "starting": "yellow",
    "unhealthy": "red",
    "crashed": "red",
    "stopping": "yellow",
}


LEVEL_STYLE = {"debug": "dim", "warning": "yellow", "error": "red", "critical": "bold red"}


def _epoch_time(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%m-%d %H:%M:%S")


def _styled(value: str) -> Text:
    return Text(value, style=STATUS_STYLE.get(value, ""))


def _short_time(iso: str | None) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 1048576:.1f} MiB"


def rollout_view(
    detail: dict[str, Any], svc: dict[str, Any], samples: list[dict[str, Any]], elapsed: float
) -> Table:
    """The live rollout view: step, weights, instances, rate, errors and p95 per version, and the
    judge's last verdict."""
    state = detail.get("state") or {}
    weights = state.get("weights") or {}
    outer = Table.grid(padding=(0, 1))
    outer.add_row(
        Text.assemble(
            (f"revision {detail['revision']} ({detail['version']})", "bold"),
            f"  {detail['strategy']}  ",
            _styled(str(detail["status"])),
            f"  {elapsed:.0f}s",
        )
    )
    outer.add_row(Text(detail.get("reason") or ""))
    table = Table(box=None, pad_edge=False)
    for column in ("REVISION", "WEIGHT", "READY", "REQ/S", "ERRORS", "P95"):
        table.add_column(column)
    revisions = sorted({int(r) for r in weights} | {i["revision"] for i in svc["instances"]})
    last = samples[-1]["versions"] if samples else {}
    first = samples[0]["versions"] if len(samples) > 1 else {}
    span = samples[-1]["t"] - samples[0]["t"] if len(samples) > 1 else 0.0
    for rev in revisions:
        ready = sum(1 for i in svc["instances"] if i["revision"] == rev and i["state"] == "running")
        total = sum(1 for i in svc["instances"] if i["revision"] == rev)
        now = last.get(str(rev)) or {}
        before = first.get(str(rev)) or {}
        rate = "-"
        if span > 0 and now and before:
            rate = f"{(now['requests'] - before['requests']) / span:.1f}"
        error_rate = now.get("error_rate")
        p95 = now.get("p95_ms")
        table.add_row(
            f"r{rev}",
            f"{weights.get(str(rev), 0)}",
            f"{ready}/{total}",
            rate,
            "-" if error_rate is None else f"{error_rate * 100:.2f} %",
            "-" if p95 is None else f"{p95:.1f} ms",
        )
    outer.add_row(table)
    verdicts = state.get("verdicts") or []
    if verdicts:
        v = verdicts[-1]
        style = {"pass": "green", "fail": "red"}.get(v["outcome"], "yellow")
        outer.add_row(Text(f"judge ({v['judge']}): {v['outcome']}: {v['reason']}", style=style))
    return outer


class Output:
    """Prints either for people (Rich) or for machines (``--json``, one document on stdout)."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        # Piped output keeps whole lines: tables are not squeezed to an assumed 80 columns.
        width = None if sys.stdout.isatty() else 200
        self.out = Console(highlight=False, soft_wrap=True, width=width)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True, width=width)

    def json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
        sys.stdout.flush()

    def error(self, message: str, data: dict[str, Any] | None = None) -> None:
        if self.as_json:
            self.json({"ok": False, "error": data or {"message": message}})
        else:
            self.err.print(Text(f"error: {message}", style="bold red"))

    def line(self, message: str, style: str = "") -> None:
        if not self.as_json:
            self.out.print(Text(message, style=style))

    def event(self, event: dict[str, Any]) -> None:
        if event["kind"] == "rollout.sample":
            return  # figures for the live view and the report, not a line for people
        if self.as_json:
            sys.stdout.write(json.dumps(event, default=str) + "\n")
            sys.stdout.flush()
            return
        ts = datetime.fromisoformat(event["ts"]).astimezone().strftime("%H:%M:%S")
        kind = str(event["kind"])
        style = (
            "red" if kind.endswith(("failed", "crashed", "unhealthy", "gave_up", "lost")) else ""
        )
        self.out.print(Text(f"{ts}  {kind:<20} {event['message']}", style=style))

    def services(self, services: list[dict[str, Any]]) -> None:
        if self.as_json:
            self.json({"services": services})
            return
        if not services:
            self.out.print("no services yet: 'zerodown up zerodown.yaml' starts one")
            return
        table = Table(box=None, pad_edge=False)
        for column in ("SERVICE", "STATE", "REVISION", "VERSION", "RELEASE", "READY", "LISTEN"):
            table.add_column(column)
        for svc in services:
            release = svc.get("release") or {}
            table.add_row(
                svc["name"],
                svc["desired_state"],
                str(release.get("revision", "-")),
                str(release.get("version", "-")),
                _styled(str(release.get("status", "-"))),
                f"{svc['ready']}/{svc.get('replicas') or 0}",
                svc.get("listen") or "-",
            )
        self.out.print(table)

    def service(self, svc: dict[str, Any]) -> None:
        if self.as_json:
            self.json(svc)
            return
        release = svc.get("release") or {}
        self.out.print(
            Text.assemble(
                (svc["name"], "bold"),
                f"  {svc['desired_state']}  revision {release.get('revision', '-')} ",
                f"({release.get('version', '-')}) ",
                _styled(str(release.get("status", "-"))),
                f"  {svc['ready']}/{svc.get('replicas') or 0} ready",
                f"  listen {svc.get('listen') or '-'}",
            )
        )
        if release.get("reason"):
            self.out.print(f"  {release['reason']}")
        if not svc["instances"]:
            return
        table = Table(box=None, pad_edge=False)
        for column in (
            "INSTANCE",
            "REV",
            "PID",
            "ADDRESS",
            "STATE",
            "HEALTH",
            "RESTARTS",
            "CPU",
            "MEM",
        ):
            table.add_column(column)
        for inst in svc["instances"]:
            cpu = inst.get("cpu_percent")
            table.add_row(
                inst["id"],
                str(inst["revision"]),
                str(inst.get("pid") or "-"),
                inst["address"],
                _styled(inst["state"]),
                _styled(inst["health"]),
                str(inst["restarts"]),
                "-" if cpu is None else f"{cpu:.1f}%",
                _mib(inst.get("memory_bytes")),
            )
        self.out.print(table)

    def releases(self, service: str, releases: list[dict[str, Any]]) -> None:
        if self.as_json:
            self.json({"service": service, "releases": releases})
            return
        table = Table(box=None, pad_edge=False)
        for column in (
            "REVISION",
            "VERSION",
            "STRATEGY",
            "STATUS",
            "CREATED",
            "FINISHED",
            "REASON",
        ):
            table.add_column(column)
        for rel in releases:
            table.add_row(
                str(rel["revision"]),
                rel["version"],
                rel["strategy"],
                _styled(rel["status"]),
                _short_time(rel["created_at"]),
                _short_time(rel["finished_at"]),
                rel["reason"] or "",
            )
        self.out.print(table)

    def load_stats(self, stats: dict[str, Any]) -> None:
        for key, value in stats.items():
            self.out.print(f"{key:>20}: {value}", markup=False)

    def log_entries(self, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            if self.as_json:
                sys.stdout.write(json.dumps(entry) + "\n")
            else:
                ts = datetime.fromtimestamp(entry["ts"]).strftime("%H:%M:%S")
                style = LEVEL_STYLE.get(str(entry.get("level")), "")
                self.out.print(
                    Text.assemble((f"{ts} {entry['instance']} ", "dim"), (entry["line"], style)),
                    markup=False,
                )
        if self.as_json:
            sys.stdout.flush()

    def log_patterns(self, report: dict[str, Any]) -> None:
        """Templates with their counts, versions and times; the first example under each."""
        patterns = report["patterns"]
        if not patterns:
            self.out.print(f"no lines matched ({report['lines']} mined)", markup=False)
            return
        table = Table(box=None, pad_edge=False)
        for column in ("COUNT", "VERSION", "LEVEL", "FIRST SEEN", "LAST SEEN", "TEMPLATE"):
            table.add_column(column, justify="right" if column == "COUNT" else "left")
        for pattern in patterns:
            style = LEVEL_STYLE.get(pattern["level"], "")
            table.add_row(
                str(pattern["count"]),
                pattern["version"],
                Text(pattern["level"], style=style),
                _epoch_time(pattern["first_seen"]),
                _epoch_time(pattern["last_seen"]),
                Text(pattern["template"]),
            )
            if pattern["examples"]:
                table.add_row("", "", "", "", "", Text(f"e.g. {pattern['examples'][0]}", "dim"))
        self.out.print(table)
        more = " (older lines left out: narrow with --since)" if report.get("truncated") else ""
        self.out.print(
            f"{len(patterns)} patterns in {report['lines']} lines{more}", style="dim", markup=False
        )
