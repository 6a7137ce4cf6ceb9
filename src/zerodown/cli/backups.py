"""``zerodown backup run|list|targets|verify|restore|forget``: backups from the terminal.

The command group is built by ``backup_commands`` from what every command of ``cli/app.py``
uses (the output for ``--json`` or people, the state directory, who is asking), so this module
does not import the app. Each command is a client of the controller's backup routes; a backup or
a verification runs inside the call, so these clients wait up to ``BACKUP_TIMEOUT_SECONDS``.

Exit codes: 0 done; 1 the backup, check, restore or a removal failed, or a backup was found
corrupted; 2 bad input (unknown service, target or backup); 3 refused (the destination exists
and ``--force`` was not given, a backup of the target already running).

``run``, ``restore`` and ``forget`` (not ``--dry-run``) write a Deployment Operations Report
and print where.

``confirm_rollback_data`` is the confirmation ``zerodown rollback --with-data`` asks for.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any, Final

import typer
from rich.table import Table

from zerodown.cli.client import ControllerClient
from zerodown.cli.render import Output
from zerodown.core.errors import RefusedError
from zerodown.core.state import StateDir

__all__ = ["BACKUP_TIMEOUT_SECONDS", "backup_commands", "confirm_rollback_data"]

BACKUP_TIMEOUT_SECONDS: Final = 6 * 3600.0

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
ServiceArg = Annotated[str, typer.Argument(help="Service name.")]
IdArg = Annotated[int, typer.Argument(help="Backup id (see 'zerodown backup list').", min=1)]


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} B"


def _when(iso: str | None) -> str:
    return (iso or "-")[:19].replace("T", " ")


def backup_table(backups: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "TARGET", "KIND", "STATUS", "STARTED", "SIZE", "TOOK", "REV", "SHA256"):
        table.add_column(column)
    for b in backups:
        artifacts = b.get("artifacts") or []
        status = b["status"] + (" (corrupted)" if b.get("verify_status") == "corrupted" else "")
        table.add_row(
            str(b["id"]),
            b["target"],
            b["kind"],
            status,
            _when(b.get("started_at")),
            _size(b.get("size_bytes")),
            f"{b['duration_s']:.2f}s" if b.get("duration_s") is not None else "-",
            str(b.get("release_revision") or "-"),
            artifacts[0]["sha256"][:12] if artifacts else "-",
        )
    return table


def confirm_rollback_data(out: Output, plan: dict[str, Any], *, yes: bool) -> None:
    """Show what a rollback with data restores and ask; ``RefusedError`` when not confirmed
    (or when nobody can be asked: ``--json`` or no terminal, without ``--yes``)."""
    backups = plan["backups"]
    if not backups:
        raise RefusedError(
            f"no backup was taken while revision {plan['target_revision']} served: nothing to "
            "restore (roll back without --with-data)"
        )
    if not out.as_json:
        out.line(
            f"rolling back to revision {plan['target_revision']} ({plan['target_version']}) "
            "restores these backups OVER THE LIVE DATA (after a safety backup of each target, "
            "and the traffic flip when that release is still warm):",
            "bold",
        )
        out.out.print(backup_table(backups))
    if yes:
        return
    if out.as_json or not sys.stdin.isatty():
        raise RefusedError("a rollback with data replaces live data: confirm with --yes")
    if not typer.confirm("Replace the live data with these backups?", default=False):
        raise RefusedError("not confirmed: nothing was rolled back or restored")


def backup_commands(
    *,
    output: Callable[[bool], Output],
    state: Callable[[], StateDir],
) -> typer.Typer:
    """The ``backup`` command group."""
    group = typer.Typer(
        name="backup",
        help="Backups: take, list, verify, restore and forget them.",
        no_args_is_help=True,
        rich_markup_mode=None,
    )

    def client() -> ControllerClient:
        return ControllerClient(state(), timeout=BACKUP_TIMEOUT_SECONDS)

    @group.command("run")
    def run(
        service: ServiceArg,
        target: Annotated[
            str | None, typer.Option(help="One target (default: every target).")
        ] = None,
        verify: Annotated[
            bool,
            typer.Option(
                "--verify/--no-verify",
                help="Re-read and check each backup after taking it (as 'backup verify').",
            ),
        ] = True,
        as_json: JsonOpt = False,
    ) -> None:
        """Back up now: one target, or all of them in spec order; then check each backup."""
        out = output(as_json)
        with client() as api:
            data = api.post(f"/v1/services/{service}/backups", {"target": target, "verify": verify})
        if as_json:
            out.json(data)
        else:
            checked = {v["backup_id"]: v for v in data.get("verifications", [])}
            for b in data["backups"]:
                artifact = b["artifacts"][0]
                found = checked.get(b["id"])
                note = "" if found is None else f"; verify: {found['status']}"
                out.line(
                    f"backup {b['id']} of {b['target']} ({b['kind']}): {_size(b['size_bytes'])} "
                    f"in {b['duration_s']:.2f}s, sha256 {artifact['sha256'][:16]}{note}",
                    "green" if found is None or found["status"] == "ok" else "red",
                )
            _report_line(out, data.get("report"))
        if not data.get("ok", True):
            raise typer.Exit(1)

    @group.command("list")
    def list_(
        service: ServiceArg,
        target: Annotated[str | None, typer.Option(help="Only this target.")] = None,
        limit: Annotated[int, typer.Option(help="How many, newest first.", min=1)] = 50,
        as_json: JsonOpt = False,
    ) -> None:
        """The catalogue: backups of a service, newest first."""
        out = output(as_json)
        with client() as api:
            data = api.get(f"/v1/services/{service}/backups", target=target, limit=limit)
        if as_json:
            out.json(data)
        elif not data["backups"]:
            out.line(f"no backups of {service}" + (f"/{target}" if target else ""))
        else:
            out.out.print(backup_table(data["backups"]))

    @group.command("targets")
    def targets(service: ServiceArg, as_json: JsonOpt = False) -> None:
        """Each target: schedule, next run, age limit and newest good backup."""
        out = output(as_json)
        with client() as api:
            data = api.get(f"/v1/services/{service}/backups/targets")
        if as_json:
            out.json(data)
            return
        table = Table(box=None, pad_edge=False)
        for column in ("TARGET", "KIND", "SCHEDULE", "NEXT RUN", "NEWEST GOOD", "MAX AGE"):
            table.add_column(column)
        for t in data["targets"]:
            newest = t.get("newest_good")
            table.add_row(
                t["target"],
                t["kind"],
                t.get("schedule") or "-",
                _when(t.get("next_run")),
                f"{newest['id']} at {_when(newest['finished_at'])}" if newest else "none",
                f"{t['max_age_s']:.0f}s" if t.get("max_age_s") else "-",
            )
        out.out.print(table)

    @group.command("verify")
    def verify(service: ServiceArg, backup_id: IdArg, as_json: JsonOpt = False) -> None:
        """Re-read a backup's artifacts and check their digests (and restic check
        --read-data); exit 1 if it is corrupted."""
        out = output(as_json)
        with client() as api:
            data = api.post(f"/v1/services/{service}/backups/{backup_id}/verify")
        result = data["verification"]
        if as_json:
            out.json({"ok": result["status"] == "ok", **data})
        elif result["status"] == "ok":
            out.line(f"backup {backup_id}: ok, every digest matches", "green")
        else:
            out.line(f"backup {backup_id}: CORRUPTED", "bold red")
            for problem in result["problems"]:
                out.line(f"  {problem}", "red")
            for artifact in result["artifacts"]:
                if not artifact["ok"]:
                    out.line(f"  {artifact['location']}: {artifact['problem']}", "red")
        if result["status"] != "ok":
            raise typer.Exit(1)

    @group.command("restore")
    def restore(
        service: ServiceArg,
        backup_id: IdArg,
        to: Annotated[
            str | None,
            typer.Option(
                "--to",
                help="Where: a path (files, sqlite) or a database name or URL (postgresql). "
                "Default: a new name beside the live data.",
            ),
        ] = None,
        force: Annotated[
            bool, typer.Option(help="Allow replacing existing data, even the live data.")
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Restore a backup after checking its digests; never over existing data without
        --force."""
        out = output(as_json)
        with client() as api:
            data = api.post(
                f"/v1/services/{service}/backups/{backup_id}/restore",
                {"destination": to, "force": force},
            )
        report = data["restore"]
        if as_json:
            out.json({"ok": True, **data})
            return
        if report.get("compared") == "content":  # written anew: its content is compared
            verdict = (
                "(its content matches the backup's)"
                if report["matches"]
                else "(its content DIFFERS from the backup's)"
            )
            what = "content sha256"
        else:
            verdict = (
                "(matches the catalogue)" if report["matches"] else "(DIFFERS from the catalogue)"
            )
            what = "sha256"
        out.line(
            f"backup {backup_id} restored to {report['destination']}: "
            f"{report['bytes_written']} bytes, {what} {report['sha256'][:16]} {verdict}",
            "green" if report["matches"] else "yellow",
        )
        if report.get("details", {}).get("previous_moved_to"):
            out.line(f"the data it replaced is in {report['details']['previous_moved_to']}")
        _report_line(out, data.get("report"))

    @group.command("forget")
    def forget(
        service: ServiceArg,
        target: Annotated[
            str | None, typer.Option(help="One target (default: every target).")
        ] = None,
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run", help="Remove nothing: list what each rule keeps and what it forgets."
            ),
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Apply the retention rules: keep the backups they keep, remove the others (files
        deleted, restic snapshots forgotten and pruned); exit 1 if a removal failed."""
        out = output(as_json)
        with client() as api:
            data = api.post(
                f"/v1/services/{service}/backups/forget", {"target": target, "dry_run": dry_run}
            )
        if as_json:
            out.json(data)
        else:
            for run in data["targets"]:
                _print_retention(out, run, dry_run=data["dry_run"])
            for repository in data.get("repositories", []):
                out.line(
                    f"restic prune of {repository['repository']}: "
                    f"{_size(repository['freed_bytes'])} freed in "
                    f"{repository['duration_s']:.2f}s"
                )
            if not data["dry_run"]:
                out.line(f"{_size(data.get('freed_bytes'))} freed on disk in all", "bold")
            for error in data["errors"]:
                out.line(error, "red")
            _report_line(out, data.get("report"))
        if not data["ok"]:
            raise typer.Exit(1)

    return group


def _report_line(out: Output, report: dict[str, Any] | None) -> None:
    if report and report.get("markdown"):
        out.line(f"report: {report['markdown']}")


def _print_retention(out: Output, run: dict[str, Any], *, dry_run: bool) -> None:
    """restic's ``forget`` listing: the policy, then the backups kept (with every rule that
    keeps each one) and those forgotten, newest first."""
    out.line(f"{run['target']}: applying policy: {run['policy']}", "bold")
    kept = [d for d in run["decisions"] if d["keep"]]
    gone = [d for d in run["decisions"] if not d["keep"]]
    if kept:
        out.line(f"keep {len(kept)} backup(s):")
        table = Table(box=None, pad_edge=False)
        for column in ("ID", "TIME (UTC)", "SIZE", "REASONS"):
            table.add_column(column)
        for d in kept:
            reasons = "\n".join(f"{r['text']} ({r['rule']})" for r in d["reasons"])
            table.add_row(
                str(d["backup_id"]), _when(d["started_at"]), _size(d["size_bytes"]), reasons
            )
        out.out.print(table)
    if gone:
        verb = "would remove" if dry_run else "remove"
        out.line(f"{verb} {len(gone)} backup(s):")
        table = Table(box=None, pad_edge=False)
        for column in ("ID", "TIME (UTC)", "SIZE"):
            table.add_column(column)
        for d in gone:
            table.add_row(str(d["backup_id"]), _when(d["started_at"]), _size(d["size_bytes"]))
        out.out.print(table)
    if not run["decisions"]:
        out.line("no good backups to apply it to")
    if dry_run:
        return
    deleted = f"; {_size(run['freed_bytes'])} of files deleted" if run["freed_bytes"] else ""
    out.line(
        f"removed {len(run['removed'])} backup(s), {_size(run['removed_bytes'])} recorded"
        + deleted
        + (f"; finished {len(run['resumed'])} interrupted removal(s)" if run["resumed"] else ""),
        "green" if not run["errors"] else "yellow",
    )
