"""``zerodown dr plan|drill``: disaster recovery from the terminal.

The command group is built by ``dr_commands`` from what every command of ``cli/app.py`` uses
(the output for ``--json`` or people, and the state directory), so this module does not import
the app. Both commands are clients of the controller's ``/v1/services/{name}/dr`` routes; a
drill runs inside the call, so the client waits up to ``DRILL_TIMEOUT_SECONDS``.

Exit codes: 0 the plan was written / the drill passed; 1 the drill ran and failed (it says why:
a restore, the smoke tests, an objective missed, or something left behind); 2 bad input (unknown
service, a bad ``--out``); 3 refused (no backup catalogue, a spec a drill cannot use).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from zerodown.cli.client import ControllerClient
from zerodown.cli.render import Output
from zerodown.core.errors import InputError
from zerodown.core.state import StateDir

__all__ = ["DRILL_TIMEOUT_SECONDS", "dr_commands"]

DRILL_TIMEOUT_SECONDS: Final = 6 * 3600.0
"""A drill restores every target first: as long as the biggest restores may take."""

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
ServiceArg = Annotated[str, typer.Argument(help="Service name.")]


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} s" if value < 120 else f"{value / 60:.1f} min"


def _objective(name: str, achieved: float | None, target: float | None, met: bool | None) -> str:
    if achieved is None:
        return f"{name}: not measured"
    text = f"{name} {_seconds(achieved)}"
    if target is None:
        return text + " (no objective set)"
    return text + f" (objective {_seconds(target)}: {'met' if met else 'NOT met'})"


def dr_commands(
    *,
    output: Callable[[bool], Output],
    state: Callable[[], StateDir],
) -> typer.Typer:
    """The ``dr`` command group."""
    group = typer.Typer(
        name="dr",
        help="Disaster recovery: write the DR plan, run drills that measure RTO and RPO.",
        no_args_is_help=True,
        rich_markup_mode=None,
    )

    def client() -> ControllerClient:
        return ControllerClient(state(), timeout=DRILL_TIMEOUT_SECONDS)

    @group.command("plan")
    def plan(
        service: ServiceArg,
        out_path: Annotated[
            Path | None,
            typer.Option(
                "--out",
                help="Write the plan here (a .md file). Default: dr/plan-<service>.md in the "
                "service's report folder.",
            ),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Write the DR plan: objectives, what is backed up and where, restore order,
        verification steps, contacts and past drills."""
        out = output(as_json)
        path = None
        if out_path is not None:
            if out_path.suffix != ".md":
                raise InputError(f"--out {out_path}: the plan is Markdown; give a .md file")
            path = str(out_path.expanduser().resolve())
        with client() as api:
            data = api.post(f"/v1/services/{service}/dr/plan", {"path": path})
        if as_json:
            out.json({"ok": True, **data})
        else:
            out.line(f"DR plan of {service} written to {data['path']}", "green")

    @group.command("drill")
    def drill(service: ServiceArg, as_json: JsonOpt = False) -> None:
        """Restore the newest backups into a scratch folder (PostgreSQL into a scratch
        database), start the service on them, run its smoke tests, measure RTO and RPO against
        the spec's objectives, clean up, and write the report. Exit 1 when the drill fails."""
        out = output(as_json)
        with client() as api:
            data = api.post(f"/v1/services/{service}/dr/drill")
        passed = data["status"] == "passed"
        if as_json:
            out.json({"ok": passed, **data})
        else:
            _print_drill(out, data)
        if not passed:
            raise typer.Exit(1)

    return group


def _print_drill(out: Output, data: dict[str, Any]) -> None:
    passed = data["status"] == "passed"
    out.line(
        f"DR drill of {data['service']} {data['status'].upper()}: {data['reason']}",
        "green" if passed else "red",
    )
    out.line(
        "  "
        + _objective("RTO", data["rto_s"], data["rto_target_s"], data["rto_met"])
        + "; "
        + _objective("RPO", data["rpo_s"], data["rpo_target_s"], data["rpo_met"])
    )
    for target in data["targets"]:
        if target["ok"]:
            out.line(
                f"  restored {target['name']} ({target['kind']}) from backup "
                f"#{target['backup_id']} in {_seconds(target['restore_s'])}: "
                f"{target['bytes_written']} bytes, sha256 {str(target['sha256'])[:16]} as "
                f"recorded; data {_seconds(target['age_s'])} old"
            )
        else:
            out.line(f"  {target['name']}: {target['problem']}", "red")
    for check in data["smoke"]:
        out.line(f"  {check['name']}: {check['status']}: {check['summary']}")
    out.line(f"  {data['cleanup']['summary']}", "green" if data["cleanup"]["ok"] else "red")
    for line in data.get("instance", {}).get("log_tail", []):
        out.line(f"    | {line}")
    if data.get("report", {}).get("markdown"):
        out.line(f"report: {data['report']['markdown']}")
