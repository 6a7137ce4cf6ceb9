"""What the dashboard's incident and alert pages compute: an incident's lifecycle as a timeline,
and the matchers of the "Silence 1 h" button."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from zerodown.api.dashboard import incident_timeline, silence_matchers
from zerodown.ops.routing import parse_matchers
from zerodown.store.incidents import IncidentRecord, StageRecord

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def _record(stages: list[tuple[str, float, str]]) -> IncidentRecord:
    records = tuple(
        StageRecord(
            stage=stage,
            at=T0 + timedelta(seconds=offset),
            who=who,
            note=f"{stage} note",
            recorded_at=T0,
        )
        for stage, offset, who in stages
    )
    return IncidentRecord(
        id=3,
        service="web",
        key="rollback:web:2",
        source="rollback:2",
        severity="SEV3",
        title="revision 2 rolled back",
        revision=2,
        stage=records[-1].stage,
        started_at=T0 - timedelta(seconds=4),
        detected_at=T0,
        stages=records,
        created_at=T0,
        updated_at=T0,
    )


def test_a_rollback_timeline_shows_the_skipped_stage_and_what_comes_next() -> None:
    record = _record(
        [
            ("detected", 0.0, "zerodown judge"),
            ("mitigated", 0.25, "zerodown automatic rollback"),
            ("recovered", 2.5, "zerodown automatic rollback"),
        ]
    )
    steps = incident_timeline(record)
    assert [(s.stage, s.state) for s in steps] == [
        ("detected", "done"),
        ("assessed", "skipped"),
        ("mitigated", "done"),
        ("recovered", "done"),
        ("reviewed", "next"),
    ]
    assert [s.after_detection for s in steps] == [0.0, None, 0.25, 2.5, None]
    assert steps[2].who == "zerodown automatic rollback" and steps[2].note == "mitigated note"
    assert steps[0].words == "檢測 detect"


def test_an_open_incident_has_one_next_stage_and_the_rest_later() -> None:
    steps = incident_timeline(_record([("detected", 0.0, "zerodown monitor")]))
    assert [s.state for s in steps] == ["done", "next", "later", "later", "later"]


def test_silence_matchers_select_exactly_the_alert_even_with_quotes_in_values() -> None:
    labels = {
        "alertname": "HighErrorRate",
        "service": "web",
        "path": 'say "hi", then \\leave',
        "team": "ops=core",
    }
    matchers = silence_matchers(labels)
    assert matchers[0] == 'alertname="HighErrorRate"'  # sorted by label name
    parsed = [m for text in matchers for m in parse_matchers(text)]
    assert {(m.name, m.op, m.value) for m in parsed} == {(k, "=", v) for k, v in labels.items()}
