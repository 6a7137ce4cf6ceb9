"""Disaster recovery: the written plan, and drills that prove it with measured RTO and RPO.

``plan_markdown`` writes a service's DR plan from its spec and the backup catalogue: the
objectives (RPO, RTO) and whether the backups and the last drill meet them, what is backed up
and where, the order to restore it in, how to verify a recovery, and whom to call.

``run_drill`` recovers the service for real, beside the live one, and measures it:

1. **Restore** the newest good backup of every target, in the plan's order, into a scratch
   folder (``<state>/drills/<drill id>``), and a PostgreSQL target into a scratch database
   created for the drill on the target's own server (``<database>_drill_<hex>``, made with
   ``createdb``); each restore re-checks the artifact's digest first and the restored data's
   digest after.
2. **Start** the service's ``run.command`` as a local process with the spec's ``env``, plus each
   target's ``dr.drill.restoreEnv`` variable pointing at its restored copy (a path, or the
   scratch database's URL), on a free loopback port (never the live service's).
3. **Smoke-test** it (the spec's ``checks.post.smoke``) until every test passes, or the drill's
   timeout. The achieved **RTO** is the time from the drill's start to that first passing round;
   the achieved **RPO** is the age, at the drill's start, of the oldest data restored (the
   backup's start time, the earliest moment its data can be from).
4. **Clean up**, whatever happened before: stop the process group, drop the scratch databases,
   remove the scratch folder, and look for anything left: a process still carrying the drill's
   ``ZERODOWN_DRILL`` marker, a scratch database, the folder. Leftovers are killed and the
   drill fails, so a drill that passes has left nothing behind.

The drill passes when every restore checks out, the smoke tests pass, the RTO and RPO are within
the spec's objectives (an objective not set is reported as such) and the cleanup is complete. Its
report is the seed's Deployment Operations Report for the operation ``drill``: it names the
drill as an operation on a scratch copy, not a deployment, and says no user was affected.

Before anything is restored, ``drill.json`` in the scratch folder names the drill and the
process running it, and every scratch database is named there before it is created; a drill
whose process died (a killed controller) is cleaned up by the next drill (``clean_stale_drills``):
its processes and folder by the next drill of any service, its scratch databases by the next
drill of the same service (whose spec holds the server's credentials).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import psutil

from zerodown.backup.operations import ServiceBackups
from zerodown.backup.postgres import PostgresTarget, split_password
from zerodown.backup.retention import RetentionPolicy
from zerodown.backup.runner import Backups, ServingRelease
from zerodown.backup.settings import BackupSettings
from zerodown.checks.base import CheckResult
from zerodown.checks.post import run_smoke_tests
from zerodown.core.clock import Clock, SystemClock
from zerodown.core.errors import InputError, RefusedError, ZerodownError
from zerodown.core.process import pid_alive
from zerodown.core.redact import mask_url
from zerodown.core.types import Revision, ServiceName, Version
from zerodown.platforms.base import Instance, InstanceRequest, InstanceState
from zerodown.platforms.local import LocalPlatform
from zerodown.report import ReportPaths, write_report
from zerodown.report.model import ReportInput
from zerodown.spec import parse_spec
from zerodown.spec.durations import format_duration
from zerodown.spec.models import BackupTargetSpec, HttpProbe, ServiceSpec
from zerodown.store.backups import BackupRecord
from zerodown.store.base import EventRecord

__all__ = [
    "DRILL_MARKER_ENV",
    "DRILL_SUPPORTED_KINDS",
    "DrillResult",
    "DrillSetup",
    "PlanResult",
    "TargetRestore",
    "clean_stale_drills",
    "drill_history",
    "drill_service",
    "plan_markdown",
    "restore_order",
    "run_drill",
    "write_plan",
]

DRILL_MARKER_ENV: Final = "ZERODOWN_DRILL"
"""Set to the drill's id in the drilled service's environment: how leftovers are recognised."""
DRILL_SUPPORTED_KINDS: Final = frozenset({"sqlite", "files", "postgresql"})
"""Target kinds a drill can restore beside the live data: into its scratch folder (a path the
service is given) or, for PostgreSQL, into a scratch database (a URL the service is given)."""
SCRATCH_DATABASE_MARK: Final = "_drill_"
"""In the name of every scratch database a drill creates: ``<live database>_drill_<hex>``."""
DRILL_FOLDER: Final = "drills"
_DRILL_FILE: Final = "drill.json"
_POLL_SECONDS: Final = 0.1
_LOG_TAIL_LINES: Final = 20
_HISTORY_KIND: Final = "dr.drill.finished"
_PLAN_BACKUPS: Final = 10_000
_PLAN_EVENTS: Final = 1_000_000


# ---------------------------------------------------------------------------------------------
# What both the plan and the drill read from the spec


def restore_order(spec: ServiceSpec) -> list[BackupTargetSpec]:
    """The backup targets, first to restore first: ``dr.restoreOrder``, then the rest in the
    spec's order."""
    targets = list(spec.backups.targets)
    by_name = {target.name: target for target in targets}
    first = [by_name[name] for name in spec.dr.restore_order if name in by_name]
    return first + [target for target in targets if target not in first]


def _age(seconds: float | None) -> str:
    return "unknown" if seconds is None else format_duration(round(max(seconds, 0.0), 1))


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _size(size: int | None) -> str:
    if size is None:
        return "unknown"
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"  # pragma: no cover - the loop returns


def _cell(text: object) -> str:
    """Text for a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


# ---------------------------------------------------------------------------------------------
# The plan


def drill_history(events: Sequence[EventRecord]) -> list[dict[str, Any]]:
    """The drills recorded in a service's event log, newest first (their ``data``)."""
    found = [dict(event.data) for event in events if event.kind == _HISTORY_KIND]
    return sorted(found, key=lambda item: str(item.get("started_at", "")), reverse=True)


def plan_markdown(
    spec: ServiceSpec,
    *,
    spec_path: str,
    settings: BackupSettings,
    backups: Sequence[BackupRecord],
    drills: Sequence[Mapping[str, Any]],
    now: dt.datetime,
) -> str:
    """The DR plan of a service, as Markdown.

    ``backups`` are the service's catalogue entries (any status, newest first); ``drills`` its
    past drills (``drill_history``). Every figure comes from them or from the spec; a figure
    that is not known says so.
    """
    dr = spec.dr
    targets = restore_order(spec)
    newest: dict[str, BackupRecord | None] = {}
    kept: dict[str, int] = {}
    for target in targets:
        good = [b for b in backups if b.target == target.name and b.good]
        newest[target.name] = good[0] if good else None
        kept[target.name] = len(good)
    ages = {
        name: (now - record.started_at).total_seconds() if record is not None else None
        for name, record in newest.items()
    }
    lines = [
        f"# Disaster Recovery Plan: {spec.service}",
        "",
        f"Written {_when(now)} by zerodown from the spec `{spec_path}` and the backup catalogue. "
        "Write it again after every change of the spec or the backups: "
        f"`zerodown dr plan {spec.service}`.",
        "",
        "## Objectives",
        "",
    ]
    lines += _objectives(dr.rpo, dr.rto, targets, ages, drills)
    lines += ["", "## Inventory: what is backed up, and where", ""]
    lines += _inventory(spec, settings, targets, newest, kept, ages)
    lines += ["", "## Restore order", ""]
    lines += _restore_steps(spec, settings, targets, newest)
    lines += ["", "## Verification", ""]
    lines += _verification(spec, targets, newest)
    lines += ["", "## Contacts", ""]
    lines += _contacts(dr.contacts)
    lines += ["", "## Drills", ""]
    lines += _drills(spec.service, drills)
    return "\n".join(lines).rstrip() + "\n"


def _objectives(
    rpo: float | None,
    rto: float | None,
    targets: Sequence[BackupTargetSpec],
    ages: Mapping[str, float | None],
    drills: Sequence[Mapping[str, Any]],
) -> list[str]:
    lines = []
    if rpo is None:
        lines.append(
            "- **RPO** (most data the service may lose): not set. Set `dr.rpo` to have backups "
            "and drills judged against it."
        )
    else:
        worst = max((age for age in ages.values() if age is not None), default=None)
        missing = [name for name, age in ages.items() if age is None]
        if missing:
            state = f"**not met**: no good backup of {', '.join(missing)}"
        elif worst is not None and worst > rpo:
            state = f"**not met now**: the oldest newest backup is {_age(worst)} old"
        elif worst is not None:
            state = f"met now: the newest backups are at most {_age(worst)} old"
        else:
            state = "nothing to back up: the spec has no backup targets"
        lines.append(
            f"- **RPO** (most data the service may lose): {format_duration(rpo)}; {state}."
        )
    last = drills[0] if drills else None
    if rto is None:
        lines.append(
            "- **RTO** (longest the service may be down): not set. Set `dr.rto` to have drills "
            "judged against it."
        )
    elif last is None or last.get("rto_s") is None:
        lines.append(
            f"- **RTO** (longest the service may be down): {format_duration(rto)}; never "
            "measured: run a drill."
        )
    else:
        achieved = float(last["rto_s"])
        verdict = "met" if achieved <= rto else "**not met**"
        lines.append(
            f"- **RTO** (longest the service may be down): {format_duration(rto)}; {verdict} by "
            f"the last drill ({last.get('started_at', '?')}): {achieved:.2f} s to a passing "
            "smoke test."
        )
    if not targets:
        lines.append("- The spec has no `backups.targets`: there is nothing to restore from.")
    return lines


def _inventory(
    spec: ServiceSpec,
    settings: BackupSettings,
    targets: Sequence[BackupTargetSpec],
    newest: Mapping[str, BackupRecord | None],
    kept: Mapping[str, int],
    ages: Mapping[str, float | None],
) -> list[str]:
    if not targets:
        return ["No backup targets."]
    lines = [
        f"Backups are kept in `{settings.repository}`"
        + (
            f" (the restic repository of files targets is `{settings.restic_repository}`, "
            f"encrypted with the password from the {settings.password.describe()})"
            if settings.password is not None
            else ""
        )
        + ".",
        "",
        "| target | kind | live data | schedule (UTC) | retention | good backups | newest good "
        "backup | age | size | last verified |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for target in targets:
        record = newest[target.name]
        live = target.path or target.url or target.volume or "?"
        if target.url:
            live = _without_password(target.url)
        policy = RetentionPolicy.from_spec(spec.backups.retention_for(target))
        if record is None:
            newest_text, size, verified = "none", "-", "-"
        else:
            newest_text = f"#{record.id} at {_when(record.started_at)}"
            size = _size(record.size_bytes)
            verified = (
                f"{record.verify_status} at {_when(record.verified_at)}"
                if record.verified_at
                else "never"
            )
        lines.append(
            "| "
            + " | ".join(
                _cell(value)
                for value in (
                    target.name,
                    target.kind,
                    live,
                    target.schedule or "on demand",
                    policy,
                    kept[target.name],
                    newest_text,
                    _age(ages[target.name]) if record is not None else "-",
                    size,
                    verified,
                )
            )
            + " |"
        )
    lines.append("")
    lines.append("Where each newest good backup is:")
    lines.append("")
    for target in targets:
        record = newest[target.name]
        if record is None:
            lines.append(
                f"- {target.name}: no good backup; take one: the service cannot be restored."
            )
            continue
        for artifact in record.artifacts:
            lines.append(
                f"- {target.name}: `{artifact.location}` ({_size(artifact.size_bytes)}, "
                f"sha256 `{artifact.sha256}`)"
            )
    return lines


def _without_password(url: str) -> str:
    """``url`` without its password (``user:PASSWORD@`` or ``?password=``) or
    ``sslpassword``: a URL a plan can print and a command can use."""
    try:
        return split_password(url)[0]
    except InputError:
        return mask_url(url)


def _restore_steps(
    spec: ServiceSpec,
    settings: BackupSettings,
    targets: Sequence[BackupTargetSpec],
    newest: Mapping[str, BackupRecord | None],
) -> list[str]:
    service = spec.service
    lines = [
        f"1. Declare the incident and call the first contact below. Stop what is left of the "
        f"service so nothing writes to the data being restored: `zerodown stop {service}`.",
    ]
    for number, target in enumerate(targets, start=2):
        record = newest[target.name]
        if target.path is not None:
            live = str(settings.path(target.path))
        else:
            live = target.volume or _without_password(target.url or "")
        if record is None:
            lines.append(
                f"{number}. **{target.name}** ({target.kind}): no good backup to restore; the "
                f"data at `{live}` cannot be recovered by zerodown."
            )
            continue
        lines.append(
            f"{number}. Restore **{target.name}** ({target.kind}) from backup #{record.id} over "
            f"the live data at `{live}` (its digests are checked before anything is written):"
            f" `zerodown backup restore {service} {record.id} --to {live} --force`. Without "
            "`--force` and `--to` it restores beside the live data instead."
        )
    lines.append(
        f"{len(targets) + 2}. Start the service again: `zerodown up <spec>` (or deploy the "
        "release that was serving), then verify as below."
    )
    lines.append(
        f"{len(targets) + 3}. Tell the users what was lost: every change after the restored "
        "backups' times."
    )
    return lines


def _verification(
    spec: ServiceSpec,
    targets: Sequence[BackupTargetSpec],
    newest: Mapping[str, BackupRecord | None],
) -> list[str]:
    lines = []
    for target in targets:
        record = newest[target.name]
        digest = (
            f"`{record.artifacts[0].sha256}`" if record is not None and record.artifacts else "?"
        )
        check = {
            "sqlite": "and `PRAGMA integrity_check` answers ok",
            "postgresql": "and pg_restore ends without error",
            "files": "(the digest of every restored file's path, size and SHA-256)",
        }.get(target.kind, "")
        lines.append(f"- {target.name}: the restored data's SHA-256 is {digest} {check}".rstrip())
    hc = spec.health_check
    if hc.probe_kind == "tcp":
        lines.append("- Health check: the port accepts connections.")
    elif hc.probe_kind == "command":
        lines.append(f"- Health check: `{hc.command}` exits 0.")
    else:
        http = hc.http or HttpProbe()
        lines.append(f"- Health check: GET {http.path} answers {http.expect_status}.")
    smoke = spec.checks.post.smoke
    if smoke:
        for test in smoke:
            expect = [f"answers {test.expect_status}"]
            if test.expect_body:
                expect.append(f"the body contains {test.expect_body!r}")
            if test.expect_json:
                expect.append("the JSON holds " + ", ".join(f"{k}" for k in test.expect_json))
            lines.append(
                f"- Smoke test {test.name}: {test.method} {test.path} " + ", ".join(expect) + "."
            )
    else:
        lines.append(
            "- No smoke tests in `checks.post.smoke`: add some; a drill needs them to tell when "
            "the service is back."
        )
    lines.append(
        f"- Rehearse all of this with `zerodown dr drill {spec.service}`: it restores into a "
        "scratch folder, runs the smoke tests against the restored copy, measures RTO and RPO "
        "and removes everything it made."
    )
    return lines


def _contacts(contacts: Sequence[Any]) -> list[str]:
    if not contacts:
        return ["None listed: add `dr.contacts` (name, role, how to reach them)."]
    lines = ["| name | role | reach |", "|---|---|---|"]
    for contact in contacts:
        lines.append(
            f"| {_cell(contact.name)} | {_cell(contact.role or '-')} "
            f"| {_cell(contact.reach or '-')} |"
        )
    return lines


def _drills(service: str, drills: Sequence[Mapping[str, Any]]) -> list[str]:
    if not drills:
        return [f"No drill recorded. Run `zerodown dr drill {service}`."]
    lines = ["| started | result | RTO | RPO | report |", "|---|---|---|---|---|"]
    for drill in drills[:10]:
        rto = drill.get("rto_s")
        rpo = drill.get("rpo_s")
        lines.append(
            "| "
            + " | ".join(
                _cell(value)
                for value in (
                    drill.get("started_at", "?"),
                    drill.get("status", "?"),
                    f"{float(rto):.2f} s" if rto is not None else "not reached",
                    _age(float(rpo)) if rpo is not None else "unknown",
                    drill.get("report") or "-",
                )
            )
            + " |"
        )
    return lines


# ---------------------------------------------------------------------------------------------
# The drill


@dataclass(frozen=True, kw_only=True)
class DrillSetup:
    """Everything a drill needs, resolved by the service layer."""

    spec: ServiceSpec
    spec_path: str
    workdir: Path
    """Where ``run.command`` runs (``run.workdir`` against the spec's folder)."""
    revision: int
    """The release whose spec and command are drilled (the one serving)."""
    version: str
    settings: BackupSettings
    backups: Backups
    state_dir: Path
    """The controller's state directory: drills work in its ``drills`` folder."""
    report_dir: Path
    clock: Clock = field(default_factory=SystemClock)


@dataclass(frozen=True, kw_only=True)
class TargetRestore:
    """One target as the drill restored it."""

    name: str
    kind: str
    backup_id: int | None
    backup_started_at: str | None
    age_s: float | None
    """Age of the restored data at the drill's start."""
    variable: str | None
    destination: str | None
    bytes_written: int | None
    sha256: str | None
    expected_sha256: str | None
    restore_s: float | None
    ok: bool
    problem: str = ""


@dataclass(frozen=True, kw_only=True)
class DrillResult:
    """What a drill did and measured."""

    service: str
    drill_id: str
    status: str  # "passed" or "failed"
    reason: str
    started_at: str
    finished_at: str
    duration_s: float
    revision: int
    version: str
    rto_s: float | None
    """Drill start to the first round of passing smoke tests; None if never reached."""
    rto_target_s: float | None
    rto_met: bool | None
    rpo_s: float | None
    """Age of the oldest restored data at the drill's start."""
    rpo_target_s: float | None
    rpo_met: bool | None
    targets: tuple[TargetRestore, ...]
    smoke: tuple[dict[str, Any], ...]
    smoke_rounds: int
    instance: dict[str, Any]
    cleanup: dict[str, Any]
    timeline: tuple[dict[str, Any], ...]
    report: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = [asdict(t) for t in self.targets]
        data["smoke"] = list(self.smoke)
        data["timeline"] = list(self.timeline)
        return data


def _check_drillable(spec: ServiceSpec) -> None:
    """Refuse a drill the spec cannot support, before anything is touched."""
    if not spec.run.command:
        raise RefusedError(
            f"{spec.service}: a drill runs the service as a local process and needs "
            "run.command (container-only services cannot be drilled yet)"
        )
    if not spec.checks.post.smoke:
        raise RefusedError(
            f"{spec.service}: a drill measures the RTO up to a passing smoke test: add "
            "checks.post.smoke to the spec"
        )
    targets = restore_order(spec)
    if not targets:
        raise RefusedError(f"{spec.service}: the spec has no backups.targets to restore")
    unsupported = [t.name for t in targets if t.kind not in DRILL_SUPPORTED_KINDS]
    if unsupported:
        raise RefusedError(
            f"{spec.service}: a drill restores files, sqlite and postgresql targets beside the "
            f"live data; {', '.join(unsupported)} cannot be drilled yet"
        )
    unmapped = [t.name for t in targets if t.name not in spec.dr.drill.restore_env]
    if unmapped:
        raise RefusedError(
            f"{spec.service}: dr.drill.restoreEnv names no variable for {', '.join(unmapped)}: "
            "the drilled service would read the live data instead of the restored copy (add "
            f"e.g. restoreEnv: {{{unmapped[0]}: DATA_PATH}} and read it in the service)"
        )


class _Timeline:
    """The drill's events: kept for the report and written to the service's event log."""

    def __init__(self, setup: DrillSetup, drill_id: str) -> None:
        self.setup = setup
        self.drill_id = drill_id
        self.items: list[dict[str, Any]] = []

    def add(self, kind: str, message: str, **data: Any) -> None:
        now = self.setup.clock.now()
        payload = {"drill_id": self.drill_id, **data}
        self.items.append(
            {
                "id": len(self.items) + 1,
                "ts": now.isoformat(),
                "kind": kind,
                "message": message,
                "data": payload,
                "revision": self.setup.revision,
            }
        )
        # In the service's log, not the release's: a drill is no step of a deployment, and the
        # release's own report must not list it. The result carries it anyway.
        with contextlib.suppress(ZerodownError):
            self.setup.backups.store.append_event(
                ServiceName(self.setup.spec.service), kind=kind, message=message, data=payload
            )


def run_drill(setup: DrillSetup) -> DrillResult:
    """Run one drill of the service (see the module's docstring) and write its report.

    ``RefusedError`` when the spec cannot be drilled (nothing is touched then). Everything else
    is a finding: the result says ``failed`` and why, and the scratch copy is still removed.
    """
    spec = setup.spec
    _check_drillable(spec)
    clock = setup.clock
    started_mono = clock.monotonic()
    started = clock.now()
    drills_root = setup.state_dir / DRILL_FOLDER
    clean_stale_drills(drills_root, settings=setup.settings)
    drill_id = f"{spec.service}-{started.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
    scratch = drills_root / drill_id
    timeline = _Timeline(setup, drill_id)
    scratch.mkdir(parents=True)
    record = _DrillRecord(
        scratch / _DRILL_FILE,
        {
            "drill_id": drill_id,
            "service": spec.service,
            "pid": os.getpid(),
            "started_at": started.isoformat(),
            "databases": [],
        },
    )
    timeline.add(
        "dr.drill.started",
        f"DR drill {drill_id} of {spec.service} started: restoring into {scratch}",
        scratch=str(scratch),
    )
    targets: list[TargetRestore] = []
    smoke: list[CheckResult] = []
    rounds = 0
    rto: float | None = None
    instance_info: dict[str, Any] = {}
    failure = ""
    platform = LocalPlatform(state_dir=scratch / "run", clock=clock)
    instance: Instance | None = None
    log_tail: list[str] = []
    try:
        env: dict[str, str] = {}
        for target in restore_order(spec):
            restored, connect = _restore_target(setup, target, scratch, started, record)
            targets.append(restored)
            if not restored.ok:
                failure = f"restore of {target.name} failed: {restored.problem}"
                timeline.add("dr.drill.restore_failed", failure, target=target.name)
                break
            assert restored.variable is not None and connect is not None
            env[restored.variable] = connect
            timeline.add(
                "dr.drill.restored",
                f"{target.name}: backup #{restored.backup_id} restored to {restored.destination} "
                f"in {restored.restore_s:.3f}s ({restored.bytes_written} bytes, sha256 "
                f"{(restored.sha256 or '')[:12]} as recorded; data {_age(restored.age_s)} old)",
                target=target.name,
                backup_id=restored.backup_id,
                restore_s=restored.restore_s,
            )
        if not failure:
            instance = platform.start(
                InstanceRequest(
                    service=ServiceName(spec.service),
                    version=Version(setup.version),
                    revision=Revision(setup.revision),
                    slot=0,
                    command=spec.run.command or "",
                    env={
                        **{key: str(value) for key, value in spec.env.items()},
                        **env,
                        DRILL_MARKER_ENV: drill_id,
                    },
                    workdir=setup.workdir,
                )
            )
            instance_info = {
                "id": instance.id,
                "pid": instance.pid,
                "address": f"{instance.address.host}:{instance.address.port}",
            }
            timeline.add(
                "dr.drill.instance_started",
                f"{spec.service} started against the restored data: pid {instance.pid} on "
                f"{instance.address.host}:{instance.address.port}",
                **instance_info,
            )
            base_url = f"http://{instance.address.host}:{instance.address.port}"
            deadline = started_mono + spec.dr.drill.timeout
            while True:
                rounds += 1
                smoke = run_smoke_tests(spec, base_url=base_url)
                if smoke and all(result.passed for result in smoke):
                    rto = clock.monotonic() - started_mono
                    break
                status = platform.status(instance)
                if status.state == InstanceState.EXITED:
                    failure = f"the service exited before passing its smoke tests ({status.detail})"
                    break
                if clock.monotonic() >= deadline:
                    failing = [r.summary for r in smoke if not r.passed]
                    waited = format_duration(spec.dr.drill.timeout)
                    failure = (
                        f"the smoke tests did not pass within {waited} ({rounds} rounds; "
                        f"last: {failing[0] if failing else 'none ran'})"
                    )
                    break
                clock.sleep(_POLL_SECONDS)
            if rto is not None:
                usage = platform.resources(instance)
                if usage is not None:
                    instance_info["cpu_percent"] = usage.cpu_percent
                    instance_info["memory_bytes"] = usage.memory_bytes
                timeline.add(
                    "dr.drill.serving",
                    f"smoke tests passed {rto:.3f}s after the drill started ({rounds} rounds)",
                    rto_s=round(rto, 6),
                    rounds=rounds,
                )
            else:
                log_tail = _log_tail(instance.log_path)
                timeline.add("dr.drill.smoke_failed", failure, log_tail=log_tail)
    except ZerodownError as exc:
        failure = failure or exc.message
        timeline.add("dr.drill.error", f"the drill stopped: {exc.message}")
    finally:
        cleanup = _clean_up(
            platform,
            instance,
            scratch,
            drill_id,
            grace=spec.run.stop_grace_seconds,
            databases=_scratch_databases(setup.settings, record.databases),
        )
    timeline.add(
        "dr.drill.cleaned" if cleanup["ok"] else "dr.drill.cleanup_failed",
        cleanup["summary"],
        **{k: v for k, v in cleanup.items() if k != "summary"},
    )
    finished = clock.now()
    duration = clock.monotonic() - started_mono
    rpo_values = [t.age_s for t in targets if t.age_s is not None]
    rpo = max(rpo_values) if rpo_values and all(t.ok for t in targets) else None
    dr = spec.dr
    rto_met = None if dr.rto is None or rto is None else rto <= dr.rto
    rpo_met = None if dr.rpo is None or rpo is None else rpo <= dr.rpo
    reasons = []
    if failure:
        reasons.append(failure)
    if rto_met is False:
        reasons.append(f"RTO {rto:.2f}s is over the objective {format_duration(dr.rto or 0)}")
    if rpo_met is False:
        reasons.append(f"RPO {_age(rpo)} is over the objective {format_duration(dr.rpo or 0)}")
    if not cleanup["ok"]:
        reasons.append(cleanup["summary"])
    passed = not reasons
    if passed:
        reason = (
            f"recovered from backups in {rto:.2f}s (RTO objective "
            f"{format_duration(dr.rto) if dr.rto is not None else 'not set'}), data "
            f"{_age(rpo)} old (RPO objective "
            f"{format_duration(dr.rpo) if dr.rpo is not None else 'not set'}); nothing left behind"
        )
    else:
        reason = "; ".join(reasons)
    if log_tail:
        instance_info["log_tail"] = log_tail
    result = DrillResult(
        service=spec.service,
        drill_id=drill_id,
        status="passed" if passed else "failed",
        reason=reason,
        started_at=started.isoformat(),
        finished_at=finished.isoformat(),
        duration_s=round(duration, 6),
        revision=setup.revision,
        version=setup.version,
        rto_s=round(rto, 6) if rto is not None else None,
        rto_target_s=dr.rto,
        rto_met=rto_met,
        rpo_s=round(rpo, 3) if rpo is not None else None,
        rpo_target_s=dr.rpo,
        rpo_met=rpo_met,
        targets=tuple(targets),
        smoke=tuple(r.to_dict() for r in smoke),
        smoke_rounds=rounds,
        instance=instance_info,
        cleanup=cleanup,
        timeline=tuple(timeline.items),
    )
    timeline.add(
        "dr.drill.passed" if passed else "dr.drill.failed",
        f"DR drill {drill_id} {result.status}: {reason}",
    )
    paths = _write_drill_report(setup, result, timeline.items)
    report = {"markdown": str(paths.markdown), "json": str(paths.json), "svg": str(paths.svg)}
    timeline.add(
        _HISTORY_KIND,
        f"DR drill {drill_id} {result.status}; report: {paths.markdown}",
        status=result.status,
        started_at=result.started_at,
        rto_s=result.rto_s,
        rpo_s=result.rpo_s,
        rto_target_s=dr.rto,
        rpo_target_s=dr.rpo,
        report=str(paths.markdown),
    )
    return _with_report(result, report, timeline.items)


def _with_report(
    result: DrillResult, report: dict[str, str], items: Sequence[dict[str, Any]]
) -> DrillResult:
    return replace(result, report=report, timeline=tuple(items))


def _restore_target(
    setup: DrillSetup,
    target: BackupTargetSpec,
    scratch: Path,
    started: dt.datetime,
    record_file: _DrillRecord,
) -> tuple[TargetRestore, str | None]:
    """Restore one target beside the live data; the result, and what the drilled service is
    given to reach the copy (a path, or the scratch database's URL with its credentials)."""
    spec = setup.spec
    variable = spec.dr.drill.restore_env.get(target.name)
    record = setup.backups.newest_good(spec.service, target.name)
    if record is None:
        return TargetRestore(
            name=target.name,
            kind=target.kind,
            backup_id=None,
            backup_started_at=None,
            age_s=None,
            variable=variable,
            destination=None,
            bytes_written=None,
            sha256=None,
            expected_sha256=None,
            restore_s=None,
            ok=False,
            problem="no good backup in the catalogue: the service cannot be restored",
        ), None
    postgres: PostgresTarget | None = None
    if target.kind == "postgresql":
        postgres = _postgres(setup.settings, target.name)
        name = _scratch_database_name(postgres.database, record_file.drill_id)
        record_file.add_database(target.name, name)  # written before it exists
        destination: str = name
    else:
        live_name = Path(target.path or target.name).name
        destination = str(scratch / "data" / target.name / live_name)
    age = (started - record.started_at).total_seconds()
    began = setup.clock.monotonic()
    common: dict[str, Any] = {
        "name": target.name,
        "kind": target.kind,
        "backup_id": record.id,
        "backup_started_at": record.started_at.isoformat(),
        "age_s": round(age, 3),
        "variable": variable,
    }
    try:
        restored = setup.backups.restore(setup.settings, record.id, destination=destination)
    except ZerodownError as exc:
        return TargetRestore(
            **common,
            destination=destination,
            bytes_written=None,
            sha256=None,
            expected_sha256=record.artifacts[0].sha256 if record.artifacts else None,
            restore_s=round(setup.clock.monotonic() - began, 6),
            ok=False,
            problem=exc.message,
        ), None
    ok = restored.matches and not restored.replaced_live
    connect = postgres.connection_url(destination) if postgres else restored.destination
    return TargetRestore(
        **common,
        destination=restored.destination,
        bytes_written=restored.bytes_written,
        sha256=restored.sha256,
        expected_sha256=restored.expected_sha256,
        restore_s=round(setup.clock.monotonic() - began, 6),
        ok=ok,
        problem="" if ok else "the restored data's digest is not the recorded one",
    ), connect


def _postgres(settings: BackupSettings, target: str) -> PostgresTarget:
    found = settings.target(target)
    assert isinstance(found, PostgresTarget)
    return found


def _scratch_database_name(live: str, drill_id: str) -> str:
    """``<live>_drill_<6 hex of the drill id><4 random hex>``, within PostgreSQL's 63 bytes."""
    suffix = f"{SCRATCH_DATABASE_MARK}{drill_id.rsplit('-', 1)[-1]}{secrets.token_hex(2)}"
    return live[: 63 - len(suffix)] + suffix


def _scratch_databases(
    settings: BackupSettings, named: Sequence[Mapping[str, str]]
) -> list[tuple[PostgresTarget, str]]:
    return [(_postgres(settings, item["target"]), item["name"]) for item in named]


class _DrillRecord:
    """``drill.json``: the drill, its process and its scratch databases, rewritten (whole) each
    time a database is about to be created, so a crash never leaves one nobody knows of."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        _write_json(path, data)

    @property
    def drill_id(self) -> str:
        return str(self.data["drill_id"])

    @property
    def databases(self) -> list[dict[str, str]]:
        return list(self.data["databases"])

    def add_database(self, target: str, name: str) -> None:
        self.data["databases"] = [*self.data["databases"], {"target": target, "name": name}]
        _write_json(self.path, self.data)


def _log_tail(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return lines[-_LOG_TAIL_LINES:]


def _marked_processes(drill_id: str) -> list[psutil.Process]:
    """Live processes whose environment carries this drill's marker."""
    found = []
    for proc in psutil.process_iter():
        try:
            if (
                proc.environ().get(DRILL_MARKER_ENV) == drill_id
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _clean_up(
    platform: LocalPlatform,
    instance: Instance | None,
    scratch: Path,
    drill_id: str,
    *,
    grace: float,
    databases: Sequence[tuple[PostgresTarget, str]] = (),
) -> dict[str, Any]:
    """Stop the drill's process, drop its scratch databases, remove its scratch folder, and
    prove nothing is left."""
    stopped = None
    problems = []
    if instance is not None:
        try:
            status = platform.stop(instance, grace=grace)
            stopped = status.detail or str(status.state)
        except ZerodownError as exc:
            problems.append(f"stopping pid {instance.pid} failed: {exc.message}")
    leftovers = _marked_processes(drill_id)
    killed = []
    for proc in leftovers:
        with contextlib.suppress(psutil.Error):
            killed.append({"pid": proc.pid, "command": " ".join(proc.cmdline())[:200]})
            proc.kill()
    if leftovers:
        psutil.wait_procs(leftovers, timeout=5)
        problems.append(
            f"{len(leftovers)} process(es) of the drill outlived the stop and were killed: "
            + ", ".join(str(item["pid"]) for item in killed)
        )
    still = _marked_processes(drill_id)
    if still:
        problems.append(f"{len(still)} process(es) of the drill could not be killed")
    dropped, left = _drop_databases(databases)
    if left:
        problems.append(f"scratch database(s) left on the server: {', '.join(left)}")
    shutil.rmtree(scratch, ignore_errors=True)
    if scratch.exists():
        problems.append(f"the scratch folder {scratch} could not be removed")
    ok = not problems
    summary = (
        "cleaned up: the drill's process stopped, "
        + (f"its scratch database(s) {', '.join(dropped)} dropped, " if dropped else "")
        + "its scratch folder removed, no process"
        + (", no database" if dropped else "")
        + " and no file of the drill left"
        if ok
        else "cleanup incomplete: " + "; ".join(problems)
    )
    return {
        "ok": ok,
        "summary": summary,
        "stopped": stopped,
        "scratch": str(scratch),
        "scratch_removed": not scratch.exists(),
        "leftover_processes": killed,
        "processes_left": [p.pid for p in still],
        "databases_dropped": dropped,
        "databases_left": left,
    }


def _drop_databases(
    databases: Sequence[tuple[PostgresTarget, str]],
) -> tuple[list[str], list[str]]:
    """Drop each scratch database and check it is gone: (dropped, left with why)."""
    dropped: list[str] = []
    left: list[str] = []
    for target, name in databases:
        try:
            target.drop_database(name)
            if target.database_exists(name):
                left.append(f"{name} (still listed after dropdb)")
                continue
        except ZerodownError as exc:
            left.append(f"{name} ({exc.message})")
            continue
        dropped.append(name)
    return dropped, left


def clean_stale_drills(root: Path, *, settings: BackupSettings | None = None) -> list[str]:
    """Remove drills whose process is gone (a controller killed mid-drill): kill what still
    carries their marker, drop their scratch databases, delete their folder. Returns the drill
    ids cleaned. The databases are dropped with the credentials of ``settings`` (the service
    drilled now): a drill of another service that left databases keeps its folder, as the
    record of them, until a drill of its own service drops them."""
    cleaned: list[str] = []
    if not root.is_dir():
        return cleaned
    for folder in root.iterdir():
        marker = folder / _DRILL_FILE
        try:
            info = json.loads(marker.read_text())
            pid = int(info["pid"])
            drill_id = str(info["drill_id"])
            named = [
                {"target": str(d["target"]), "name": str(d["name"])}
                for d in info.get("databases") or []
            ]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a drill folder, or one still being written
        if pid == os.getpid() or pid_alive(pid):
            continue
        for proc in _marked_processes(drill_id):
            with contextlib.suppress(psutil.Error):
                proc.kill()
        if named:
            if settings is None or info.get("service") != settings.service:
                continue
            try:
                databases = _scratch_databases(settings, named)
            except ZerodownError:
                continue  # the target left the spec: keep the record for a person to see
            _, left = _drop_databases(databases)
            if left:
                continue
        shutil.rmtree(folder, ignore_errors=True)
        cleaned.append(drill_id)
    return cleaned


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` whole or not at all (temporary file, fsync, rename)."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


# ---------------------------------------------------------------------------------------------
# For the controller: a service by name, its spec and backups from the store


@dataclass(frozen=True, kw_only=True)
class PlanResult:
    """A DR plan written to ``path``."""

    service: str
    path: str
    markdown: str
    written_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stored_spec(backups: ServiceBackups, service: str) -> tuple[ServiceSpec, Path]:
    """The service's spec as the store holds it, and the folder its paths start from."""
    record = backups.store.get_service(ServiceName(service))
    spec = parse_spec(record.spec_text, filename=record.spec_path).spec
    return spec, Path(record.spec_path).parent


def write_plan(
    backups: ServiceBackups, service: str, *, path: Path, now: dt.datetime
) -> PlanResult:
    """Write the DR plan of a registered service to ``path`` (whole or not at all)."""
    spec, spec_dir = _stored_spec(backups, service)
    settings = backups.settings_of(spec, spec_dir=spec_dir)
    name = ServiceName(service)
    records = backups.backups.catalogue.list_backups(name, limit=_PLAN_BACKUPS)
    drills = drill_history(backups.store.list_events(name, limit=_PLAN_EVENTS))
    markdown = plan_markdown(
        spec,
        spec_path=backups.store.get_service(name).spec_path,
        settings=settings,
        backups=records,
        drills=drills,
        now=now,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_text(path, markdown)
    return PlanResult(
        service=service, path=str(path), markdown=markdown, written_at=now.isoformat()
    )


def drill_service(backups: ServiceBackups, service: str, *, report_dir: Path) -> DrillResult:
    """Run a drill of a registered service from its stored spec (see ``run_drill``)."""
    spec, spec_dir = _stored_spec(backups, service)
    settings = backups.settings(service)
    serving = backups.serving_release(service)
    if serving is None:
        releases = backups.store.list_releases(ServiceName(service), limit=1)
        serving = ServingRelease(
            int(releases[0].revision) if releases else 0,
            str(releases[0].version) if releases else (spec.version or "unreleased"),
        )
    return run_drill(
        DrillSetup(
            spec=spec,
            spec_path=backups.store.get_service(ServiceName(service)).spec_path,
            workdir=(spec_dir / (spec.run.workdir or ".")).resolve(),
            revision=serving.revision,
            version=serving.version,
            settings=settings,
            backups=backups.backups,
            state_dir=backups.state_dir,
            report_dir=report_dir,
            clock=backups.clock,
        )
    )


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


# ---------------------------------------------------------------------------------------------
# The report


def _write_drill_report(
    setup: DrillSetup, result: DrillResult, events: Sequence[Mapping[str, Any]]
) -> ReportPaths:
    """The seed's report for the operation ``drill``."""
    prechecks = []
    for target in result.targets:
        if target.backup_id is None:
            prechecks.append(
                {
                    "name": f"backup:{target.name}",
                    "status": "fail",
                    "summary": f"{target.name}: {target.problem}",
                    "figures": {},
                }
            )
            continue
        prechecks.append(
            {
                "name": f"backup:{target.name}",
                "status": "pass" if target.ok else "fail",
                "summary": (
                    f"{target.name} ({target.kind}): backup #{target.backup_id} of "
                    f"{target.backup_started_at}, {_age(target.age_s)} old; "
                    + (
                        f"restored in {target.restore_s:.3f}s, sha256 {target.sha256} matches "
                        "the catalogue"
                        if target.ok
                        else target.problem
                    )
                ),
                "figures": {
                    "backup_id": target.backup_id,
                    "age_s": target.age_s,
                    "restore_s": target.restore_s,
                    "bytes": target.bytes_written,
                    "sha256": target.sha256,
                },
            }
        )
    postchecks: list[dict[str, Any]] = list(result.smoke)
    postchecks.append(
        _objective_check("rto", result.rto_s, result.rto_target_s, "time to a passing smoke test")
    )
    postchecks.append(
        _objective_check("rpo", result.rpo_s, result.rpo_target_s, "age of the restored data")
    )
    postchecks.append(
        {
            "name": "cleanup",
            "status": "pass" if result.cleanup["ok"] else "fail",
            "summary": result.cleanup["summary"],
            "figures": {k: v for k, v in result.cleanup.items() if k != "summary"},
        }
    )
    instance = result.instance
    instances = []
    if instance.get("id"):
        # As measured when its smoke tests passed (the impact line says it was stopped after).
        instances.append(
            {
                "id": instance["id"],
                "revision": result.revision,
                "state": "running" if result.rto_s is not None else "exited",
                "restarts": 0,
                "cpu_percent": instance.get("cpu_percent"),
                "memory_bytes": instance.get("memory_bytes"),
            }
        )
    data = ReportInput(
        service=result.service,
        operation="drill",
        generated_at=setup.clock.now(),
        release={
            "revision": result.revision,
            "version": result.version,
            "strategy": "dr-drill",
            "status": "succeeded" if result.passed else "failed",
            "reason": "DR drill (an operation on a scratch copy, not a deployment): "
            + result.reason,
            "created_at": result.started_at,
            "finished_at": result.finished_at,
            "state": {
                "duration_s": result.duration_s,
                "drill": {
                    "id": result.drill_id,
                    "address": instance.get("address"),
                    "rto_s": result.rto_s,
                    "rto_target_s": result.rto_target_s,
                    "rpo_s": result.rpo_s,
                    "rpo_target_s": result.rpo_target_s,
                },
            },
        },
        previous=None,
        events=list(events),
        prechecks=prechecks,
        postchecks=postchecks,
        instances=instances,
        alerts=[],
        replicas=1,
    )
    return write_report(data, directory=setup.report_dir)


def _objective_check(
    name: str, achieved: float | None, target: float | None, what: str
) -> dict[str, Any]:
    label = name.upper()
    if achieved is None:
        return {
            "name": name,
            "status": "fail",
            "summary": f"{label} ({what}): not reached",
            "figures": {"achieved_s": None, "target_s": target},
        }
    text = f"{achieved:.2f}s" if name == "rto" else _age(achieved)
    if target is None:
        return {
            "name": name,
            "status": "warn",
            "summary": f"{label} ({what}): {text}; no objective set (dr.{name})",
            "figures": {"achieved_s": achieved, "target_s": None},
        }
    met = achieved <= target
    return {
        "name": name,
        "status": "pass" if met else "fail",
        "summary": f"{label} ({what}): {text}, objective {format_duration(target)}: "
        + ("met" if met else "not met"),
        "figures": {"achieved_s": achieved, "target_s": target, "met": met},
    }
