"""The Deployment Operations Report of an operation on a service's data: a backup, a restore or
a retention run (``forget``), in the seed's template, as a DR drill writes its own.

Which operations write one (the seed asks for a report after every deployment or operation):

- every ``backup run``, ``backup restore`` and ``backup forget`` asked for through the CLI or
  the HTTP API writes one report per request, however many targets it covers, whether it
  succeeds or fails (a request refused before anything was done, e.g. an unknown target or a
  destination that exists, writes none: nothing was operated);
- a ``forget --dry-run`` changes nothing and writes none;
- scheduled backups and the retention that follows them write none: they run many times a day,
  and the catalogue, the event log and the backup metrics record each one (a failure raises
  the ``ZerodownBackupFailed`` alert);
- backups taken by the pre-deployment check belong to the deployment's report, and the
  restores of ``rollback --with-data`` to the rollback's.

Every figure is measured, never assumed: sizes and SHA-256 digests from the catalogue, durations
from the clock, free space from the file system, what ``restic prune`` freed from the
repository's size on disk before and after, and whether each removed artifact is really gone.
The report names the operation (not a deployment) and says whom it affected: nobody, except a
restore over the live data (``--force``), which it says plainly.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from zerodown.report import ReportPaths, write_report
from zerodown.report.model import ReportInput

__all__ = ["STRATEGY_OF", "OperationReport", "storage_figures", "write_operation_report"]

STRATEGY_OF: Final = {"backup": "backup", "restore": "restore", "retention": "retention"}
"""The report's ``strategy`` for each operation on the data (its ``部署類型``)."""

_TITLE: Final = {
    "backup": "Backup",
    "restore": "Restore",
    "retention": "Retention (backup forget)",
}


@dataclass(frozen=True, kw_only=True)
class OperationReport:
    """One operation on a service's data, as it ran, ready to be written as a report."""

    service: str
    operation: str  # "backup", "restore" or "retention"
    status: str  # "succeeded" or "failed"
    reason: str
    """What happened, in one sentence (the failure when it failed)."""
    started_at: dt.datetime
    finished_at: dt.datetime
    duration_s: float
    revision: int
    """The release serving during the operation (0 when none serves)."""
    version: str
    figures: Mapping[str, Any]
    """What ``report.figures`` reads from ``state["operation"]`` (sizes, ids, storage...)."""
    prechecks: Sequence[Mapping[str, Any]] = ()
    postchecks: Sequence[Mapping[str, Any]] = ()
    events: Sequence[Mapping[str, Any]] = field(default_factory=tuple)

    def report_input(
        self,
        *,
        instances: Sequence[Mapping[str, Any]],
        replicas: int,
        generated_at: dt.datetime,
    ) -> ReportInput:
        """The report's input: the serving release's instances as the live service's health."""
        title = _TITLE.get(self.operation, self.operation)
        return ReportInput(
            service=self.service,
            operation=self.operation,
            generated_at=generated_at,
            release={
                "revision": self.revision,
                "version": self.version,
                "strategy": STRATEGY_OF.get(self.operation, self.operation),
                "status": self.status,
                "reason": f"{title} (an operation on the service's data, not a deployment): "
                + self.reason,
                "created_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat(),
                "state": {"duration_s": self.duration_s, "operation": dict(self.figures)},
            },
            previous=None,
            events=list(self.events),
            prechecks=list(self.prechecks),
            postchecks=list(self.postchecks),
            instances=list(instances),
            alerts=[],
            replicas=replicas,
        )


def write_operation_report(
    report: OperationReport,
    *,
    directory: Path,
    instances: Sequence[Mapping[str, Any]],
    replicas: int,
    generated_at: dt.datetime,
) -> ReportPaths:
    """Write the report (Markdown, JSON, SVG) into ``directory``."""
    data = report.report_input(instances=instances, replicas=replicas, generated_at=generated_at)
    return write_report(data, directory=directory)


def storage_figures(
    repository: Path, *, service_bytes: int, service_backups: int
) -> dict[str, Any] | None:
    """Free and total space of the file system the backups go to (the repository folder, or
    its nearest existing parent), and what the service's good backups hold; None when no
    folder on the way exists."""
    folder = repository
    while not folder.exists():
        if folder.parent == folder:
            return None
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    return {
        "path": str(repository),
        "free_bytes": usage.free,
        "total_bytes": usage.total,
        "service_bytes": service_bytes,
        "service_backups": service_backups,
    }


# ---------------------------------------------------------------------------------------------
# The checks an operation reports (each measured when it ran)


def check(name: str, status: str, summary: str, **figures: Any) -> dict[str, Any]:
    """One pre- or post-check as the report reads it."""
    return {"name": name, "status": status, "summary": summary, "figures": figures}


LOW_FREE_SPACE: Final = 0.10
"""Backups going to a file system with less than this share free: the storage check warns."""


def storage_check(storage: Mapping[str, Any] | None, repository: Path) -> dict[str, Any]:
    """Room where the backups go: ``warn`` under ``LOW_FREE_SPACE`` free."""
    if storage is None:
        return check("storage", "fail", f"no folder on the way to {repository} exists")
    free, total = int(storage["free_bytes"]), int(storage["total_bytes"])
    share = free / total if total else 0.0
    status = "pass" if share >= LOW_FREE_SPACE else "warn"
    return check(
        "storage",
        status,
        f"backups go to {repository}: {free} bytes free of {total} "
        f"({round(100 * share, 1)}% free"
        + ("" if status == "pass" else f", under the {round(100 * LOW_FREE_SPACE)}% limit")
        + ")",
        free_bytes=free,
        total_bytes=total,
        free_percent=round(100 * share, 1),
    )
