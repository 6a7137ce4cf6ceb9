"""An erroring canary rolled back by the judge opens an incident; the CLI shows it, writes its
postmortem and marks it reviewed once the postmortem is complete.

Everything is real: ``zerodown serve``, the proxy, local instances, bounded load through the
proxy, and the CLI in separate processes.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from tests.fixtures.zerodown import Controller
from tests.integration.engine.test_rollouts import CANARY, deploy, service_under_load, spec_text

SEV2_ON_ROLLBACK = "incidents:\n  rollbackSeverity: sev2\n"


def test_a_canary_rolled_back_by_the_judge_is_an_incident_with_timeline_and_postmortem(
    controller: Controller, tmp_path: Path
) -> None:
    env = controller.env
    with service_under_load(controller, tmp_path, CANARY, extra=SEV2_ON_ROLLBACK) as (
        _,
        load,
        port,
    ):
        bad = spec_text(
            port=port, strategy=CANARY, env={"ERROR_RATE": "0.3"}, extra=SEV2_ON_ROLLBACK
        )
        code, out = deploy(controller, tmp_path, bad, "v2")
        load.finish()
    assert code == 1 and out["release"]["status"] == "rolled_back", out
    assert "error rate" in out["release"]["reason"]

    listed = env.cli("incident", "list", "--json")
    assert listed.code == 0, listed.stderr
    incidents = listed.json()["incidents"]
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident["service"] == "shop" and incident["source"] == "rollback:2"
    assert incident["severity"] == "SEV2"  # from the spec's incidents.rollbackSeverity
    assert incident["stage"] == "recovered" and incident["assessed_at"] is None
    times = [
        datetime.fromisoformat(incident[key])
        for key in ("started_at", "detected_at", "mitigated_at", "recovered_at")
    ]
    assert times == sorted(times), times
    assert incident["stages"][0]["who"].startswith("zerodown judge")
    assert "error rate" in incident["stages"][0]["note"]
    impact = incident["impact"]
    assert impact["measured"] is True, impact
    assert impact["requests"] > 0 and impact["errors"] > 0
    assert 0 < impact["error_rate"] < 1 and impact["p95_ms"] > 0
    stats = listed.json()["stats"]
    assert stats["mttd"]["count"] == 1 and stats["mttr"]["count"] == 1
    assert stats["mttr"]["median_s"] == stats["mttr"]["values_s"][0]

    number = str(incident["id"])
    shown = env.cli("incident", "show", number)
    assert shown.code == 0, shown.stderr
    for text in ("SEV2", "recovered", "detected", "mitigated", "zerodown automatic rollback"):
        assert text in shown.stdout, shown.stdout
    table = env.cli("incident", "list")
    assert f"INC-{number}" in table.stdout and "MTTR median" in table.stdout

    late_ack = env.cli("incident", "ack", number)
    assert late_ack.code == 2 and "cannot go back to assessed" in late_ack.stderr

    written = env.cli("incident", "postmortem", number, "--json")
    assert written.code == 0, written.stderr
    path = Path(written.json()["path"])
    assert path.parent == tmp_path / ".claude" / "context" / "deployment" / "incidents"
    markdown = path.read_text()
    for heading in ("## Summary", "## Lifecycle", "## Impact", "## Timeline", "## Root cause"):
        assert heading in markdown
    assert "`rollback.started`" in markdown and "**incident detected**" in markdown
    assert "`canary.weight`" in markdown and "| error_rate | fail |" in markdown
    assert "[To complete]" in markdown

    refused = env.cli("incident", "postmortem", number, "--reviewed")
    assert refused.code == 3 and "[To complete]" in refused.stderr
    path.write_text(markdown.replace("**[To complete]**", "Reviewed with the team:"))
    reviewed = env.cli("incident", "postmortem", number, "--reviewed", "--json")
    assert reviewed.code == 0, reviewed.stderr
    assert reviewed.json()["incident"]["stage"] == "reviewed"

    events = env.cli("events", "shop", "--json", "--limit", "1000").json()["events"]
    kinds = [e["kind"] for e in events]
    for kind in ("incident.opened", "incident.recovered", "incident.postmortem"):
        assert kind in kinds
    # The incident is opened before the rolled-back release's report is written.
    last_report = len(kinds) - 1 - kinds[::-1].index("report.written")
    assert kinds.index("incident.opened") < last_report
