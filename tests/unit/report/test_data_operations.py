"""Reports of operations on a service's data (a backup, a restore, a retention run): the seed's
template, every number from the JSON twin, named an operation and not a deployment, and honest
about users: nobody affected, except by a restore over the live data, which says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.unit.report.checks import check_report, field_blocks, template_for
from zerodown.backup.reports import OperationReport
from zerodown.report import ReportInput, render_markdown, report_json
from zerodown.report.figures import FIELD_PATHS

T0 = datetime(2026, 3, 1, 3, 0, 0, tzinfo=UTC)
STORAGE = {
    "path": "/srv/backups",
    "free_bytes": 40 * 1024**3,
    "total_bytes": 100 * 1024**3,
    "service_bytes": 123_456,
    "service_backups": 7,
}
INSTANCE = {
    "id": "web-r3-0-ab12cd",
    "revision": 3,
    "state": "running",
    "restarts": 0,
    "cpu_percent": 1.5,
    "memory_bytes": 30 * 1024**2,
}


def event(offset: float, kind: str, message: str, **data: Any) -> dict[str, Any]:
    return {
        "id": int(offset * 10) + 1,
        "ts": (T0 + timedelta(seconds=offset)).isoformat(),
        "kind": kind,
        "message": message,
        "data": data,
    }


def build(operation: str, figures: dict[str, Any], *, status: str = "succeeded") -> ReportInput:
    report = OperationReport(
        service="web",
        operation=operation,
        status=status,
        reason="what happened" if status == "succeeded" else "pg_dump exited with code 1",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=2.5),
        duration_s=2.5,
        revision=3,
        version="v3",
        figures={"storage": STORAGE, **figures},
        prechecks=[{"name": "storage", "status": "pass", "summary": "40 GiB free", "figures": {}}],
        postchecks=[{"name": "digest", "status": "pass", "summary": "as recorded", "figures": {}}],
        events=[
            event(0, "backup.operation.started", f"{operation} of web started"),
            event(2.4, "backup.operation.finished", f"{operation} of web {status}"),
        ],
    )
    return report.report_input(instances=[INSTANCE], replicas=1, generated_at=T0 + timedelta(3))


BACKUP = {
    "targets": ["db", "uploads"],
    "backups": [
        {
            "target": "db",
            "kind": "sqlite",
            "status": "succeeded",
            "backup_id": 12,
            "size_bytes": 8192,
            "duration_s": 0.25,
            "previous_size_bytes": 4096,
        },
        {
            "target": "uploads",
            "kind": "files",
            "status": "succeeded",
            "backup_id": 13,
            "size_bytes": 50_000,
            "duration_s": 1.5,
            "previous_size_bytes": None,
        },
    ],
    "unverified": ["12", "13"],
    "unscheduled": ["uploads"],
    "no_retention": [],
}
RESTORE_LIVE = {
    "targets": ["db"],
    "target": "db",
    "backup_id": 12,
    "destination": "/srv/web/app.db",
    "replaced_live": True,
    "bytes_written": 8192,
    "data_age_s": 5400.0,
    "moved_aside": None,
    "duration_s": 0.75,
}
RESTORE_BESIDE = {**RESTORE_LIVE, "destination": "/srv/web/app.restored-12.db"}
RESTORE_BESIDE["replaced_live"] = False
RETENTION = {
    "targets": ["db"],
    "kept": 5,
    "removed": 3,
    "removed_bytes": 24_576,
    "freed_bytes": 24_576,
    "prune_s": None,
    "no_retention": [],
}
CASES = {
    "backup": ("backup", BACKUP),
    "restore_live": ("restore", RESTORE_LIVE),
    "restore_beside": ("restore", RESTORE_BESIDE),
    "retention": ("retention", RETENTION),
}


def fields(markdown: str, lang: str) -> dict[str, str]:
    blocks = field_blocks(markdown, template_for(lang))
    return {path[-1]: text for (_, text), path in zip(blocks, FIELD_PATHS, strict=True)}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("lang", ["zh-TW", "en"])
def test_each_operation_fills_the_template_with_the_json_numbers(case: str, lang: str) -> None:
    operation, figures = CASES[case]
    data = build(operation, figures)
    check_report(render_markdown(data, lang=lang, chart_name=None), report_json(data))


def test_a_backup_names_an_operation_affecting_nobody_with_its_measurements() -> None:
    data = build("backup", BACKUP)
    shown = fields(render_markdown(data, lang="en", chart_name=None), "en")
    assert shown["deployment_type"].startswith("Backup (operation backup)")
    assert "not a deployment" in shown["deployment_status"]
    assert "no user affected" in shown["impact"] and "58192 bytes" in shown["impact"]
    assert "backup #12 of db: 8 KiB in 0.25 s (32 KiB/s)" in shown["lessons_learned"]
    assert "the previous good backup was 4 KiB: 100% change" in shown["lessons_learned"]
    assert "the first good backup of this target" in shown["lessons_learned"]
    assert "verify backup(s) 12, 13" in shown["preventive_actions"]
    assert "give uploads a schedule" in shown["preventive_actions"]
    assert shown["storage"].startswith("60% used (the file system the backups are kept on")
    assert "no incident" in shown["incident_response"]
    # The live service's instance is the health of the service during the operation.
    assert shown["health_score"].startswith("100/100")


def test_a_restore_over_the_live_data_says_users_see_the_old_data() -> None:
    shown = fields(
        render_markdown(build("restore", RESTORE_LIVE), lang="en", chart_name=None), "en"
    )
    assert "the live data was replaced" in shown["impact"]
    assert "5400 s old" in shown["impact"] and "no user affected" not in shown["impact"]
    assert "replaced on request (--force)" in shown["incident_response"]
    beside = build("restore", RESTORE_BESIDE)
    shown = fields(render_markdown(beside, lang="en", chart_name=None), "en")
    assert "no user affected" in shown["impact"] and "app.restored-12.db" in shown["impact"]


def test_a_failed_backup_is_no_outage_but_an_urgent_action() -> None:
    failed = {**BACKUP, "backups": [{**BACKUP["backups"][0], "status": "failed"}]}
    data = build("backup", failed, status="failed")
    markdown = render_markdown(data, lang="en", chart_name=None)
    check_report(markdown, report_json(data))
    shown = fields(markdown, "en")
    assert shown["deployment_status"].startswith("Failed")
    assert "the live service was not affected" in shown["incident_response"]
    assert shown["urgent_actions"].startswith("fix the backup and run it again: ")
    assert "pg_dump exited with code 1" in shown["urgent_actions"]
    assert "- [ ] fix the backup and run it again" in markdown


def test_retention_says_what_it_kept_removed_and_freed() -> None:
    markdown = render_markdown(build("retention", RETENTION), lang="zh-TW", chart_name=None)
    shown = fields(markdown, "zh-TW")
    assert "移除 3 個備份 (24576 bytes), 保留 5 個" in shown["impact"]
    assert "無事故" in shown["incident_response"]
    assert "實際釋放磁碟 24 KiB" in shown["lessons_learned"]
