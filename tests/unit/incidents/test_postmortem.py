"""The postmortem draft: every section filled, measured figures only, markers where a person
must write, and a timeline of the events around the incident."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.unit.incidents.builders import T0, WEB, make_book, rolled_back_canary
from zerodown.incidents import TO_COMPLETE

SECTIONS = [
    "Summary",
    "Lifecycle",
    "Impact",
    "Timeline",
    "Metrics around the incident",
    "Root cause",
    "Lessons learned",
    "Action items",
    "Review",
]


def _sections(markdown: str) -> dict[str, str]:
    parts = re.split(r"^## ", markdown, flags=re.MULTILINE)[1:]
    return {part.split("\n", 1)[0].split(" (")[0]: part.split("\n", 1)[1] for part in parts}


def test_the_draft_of_a_rollback_has_every_section_filled_and_markers_where_people_write() -> None:
    s = make_book()
    record = s.book.open_for_rollback(rolled_back_canary(s))
    assert record is not None
    markdown = s.book.postmortem(record.id)
    sections = _sections(markdown)
    assert list(sections) == SECTIONS
    for name, body in sections.items():
        assert body.strip(), f"section {name} is empty"
        assert "{" not in body and "None" not in body, (name, body)
    assert f"**{TO_COMPLETE}**" in sections["Root cause"]
    assert f"**{TO_COMPLETE}**" in sections["Lessons learned"]
    assert f"**{TO_COMPLETE}**" in sections["Action items"]
    # Measured impact: no marker asks for figures zerodown has.
    assert TO_COMPLETE not in sections["Impact"]
    assert "- Requests: 60" in sections["Impact"]
    assert "- Server errors (5xx): 18 (30.00 % of answered requests)" in sections["Impact"]
    assert "20.00 % of 300 requests" in sections["Impact"]


def test_the_lifecycle_table_shows_each_stage_time_and_who_and_the_skipped_assessment() -> None:
    s = make_book()
    record = s.book.open_for_rollback(rolled_back_canary(s))
    assert record is not None
    lifecycle = _sections(s.book.postmortem(record.id))["Lifecycle"]
    rows = {
        line.split(" | ")[0].strip("| "): line for line in lifecycle.splitlines() if "|" in line
    }
    assert "2025-06-02 09:00:06.000 UTC | +0 ms | zerodown judge (thresholds)" in rows["detected"]
    assert "skipped" in rows["assessed"]
    assert "09:00:06.500 UTC | +500 ms | zerodown automatic rollback" in rows["mitigated"]
    assert "2/2 instances of revision 1 healthy" in rows["recovered"]
    assert "not yet" in rows["reviewed"]
    assert "- Time to detect (impact began -> detected): 4.0 s" in lifecycle
    assert "- Time to recover (detected -> recovered): 2.0 s" in lifecycle


def test_the_timeline_merges_events_and_stages_in_order_without_traffic_samples() -> None:
    s = make_book()
    release = rolled_back_canary(s)
    s.clock.advance(3600)  # far after the incident: not in its timeline
    s.store.append_event(WEB, kind="instance.started", message="much later")
    record = s.book.open_for_rollback(release)
    assert record is not None
    timeline = _sections(s.book.postmortem(record.id))["Timeline"]
    rows = [line for line in timeline.splitlines() if line.startswith("| 09:")]
    whats = [row.split(" | ")[2] for row in rows]
    assert whats[:3] == ["`release.created`", "**impact began**", "`canary.weight`"]
    assert "**incident detected**" in whats and "**incident recovered**" in whats
    assert whats.index("**incident detected**") < whats.index("**incident mitigated**")
    assert "`rollout.sample`" not in whats
    assert not any(w.startswith("`incident.") for w in whats)  # stages, not their log lines
    assert "much later" not in timeline


def test_metrics_show_requests_and_errors_per_interval_and_the_deciding_verdict() -> None:
    s = make_book()
    record = s.book.open_for_rollback(rolled_back_canary(s))
    assert record is not None
    metrics = _sections(s.book.postmortem(record.id))["Metrics around the incident"]
    # Samples are cumulative (20 then 60 canary requests): the table shows each interval.
    assert "| 09:00:03.000 | r2 | 20 % | 20 | 6 | 30.00 % | 4.0 ms | 40 % | 55 % |" in metrics
    assert "| 09:00:05.000 | r2 | 20 % | 40 | 12 | 30.00 % | 4.0 ms | 40 % | 55 % |" in metrics
    assert "| error_rate | fail | error rate 30.0 % > 5.0 % |" in metrics


def test_what_zerodown_knows_about_the_cause_and_the_lessons_is_stated_with_numbers() -> None:
    s = make_book()
    record = s.book.open_for_rollback(rolled_back_canary(s))
    assert record is not None
    sections = _sections(s.book.postmortem(record.id))
    cause = sections["Root cause"]
    assert "Failing measurement `error_rate`: error rate 30.0 % > 5.0 %." in cause
    assert "revision 1 (v1) -> revision 2 (v2), canary strategy" in cause
    assert "+ env.ERROR_RATE: 0.3" in cause and "s3cret" not in cause
    lessons = sections["Lessons learned"]
    assert "when 60 requests had reached the new revision" in lessons
    assert "12 ms after the decision (within the seed's < 30 s rollback target)" in lessons
    assert "18 requests got a server error (5xx)." in lessons
    assert "Nobody assessed (acknowledged) the incident" in lessons


def test_an_incident_without_measurements_says_unknown_and_asks_a_person() -> None:
    s = make_book()
    record = s.book.open(
        "web", severity="SEV2", title="HighLatency", source="alert:HighLatency", key="fp",
        detected_at=T0, who="monitor", started_at=T0 - timedelta(seconds=45),
        details={"alert": {"name": "HighLatency", "expr": "p95 > 0.5", "value": 0.9,
                           "labels": {"severity": "critical", "service": "web"}}},
    )  # fmt: skip
    sections = _sections(s.book.postmortem(record.id))
    assert list(sections) == SECTIONS
    impact = sections["Impact"]
    assert "unknown: the data plane's counters were not available at detection" in impact
    assert f"**{TO_COMPLETE}** The users or requests affected" in impact
    assert "Alert `HighLatency` fired on `p95 > 0.5`." in sections["Root cause"]
    assert "No release of this service started in the hour before" in sections["Root cause"]
    assert "The incident is not recovered yet." in sections["Lessons learned"]
    assert "It is not recovered yet." in sections["Summary"]
    assert "The alert's value when it fired: 0.9." in sections["Metrics around the incident"]
