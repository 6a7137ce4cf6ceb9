"""The incident lifecycle: severities, idempotent opening, forward-only moves with times that
never go back, and the incident an automatic rollback opens."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from tests.unit.incidents.builders import T0, WEB, make_book, rolled_back_canary
from zerodown.core.errors import InputError, RefusedError
from zerodown.core.types import Revision, ServiceName
from zerodown.incidents import (
    AUTOMATIC_ROLLBACK,
    TO_COMPLETE,
    parse_severity,
    severity_from_label,
)
from zerodown.traffic.base import GroupMetrics, LatencyHistogram, ServiceMetrics


@pytest.mark.parametrize(
    ("given", "expected"),
    [("SEV1", "SEV1"), ("sev2", "SEV2"), (" Sev3 ", "SEV3"), ("4", "SEV4"), (5, "SEV5")],
)
def test_severities_are_read_in_any_case_or_as_a_number(given: str | int, expected: str) -> None:
    assert parse_severity(given) == expected


@pytest.mark.parametrize("given", ["SEV0", "SEV6", "high", "", 7, True])
def test_an_unknown_severity_is_bad_input_naming_the_levels(given: str | int) -> None:
    with pytest.raises(InputError, match="SEV1, SEV2, SEV3, SEV4, SEV5"):
        parse_severity(given)


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("critical", "SEV2"),
        ("page", "SEV2"),
        ("error", "SEV3"),
        ("warning", "SEV4"),
        ("info", "SEV5"),
        ("sev1", "SEV1"),
        ("P2", "SEV2"),
        ("Critical ", "SEV2"),
        ("whatever", "SEV3"),
        (None, "SEV3"),
    ],
)
def test_an_alerts_severity_label_maps_to_an_incident_severity(
    label: str | None, expected: str
) -> None:
    assert severity_from_label(label) == expected


def test_opening_twice_with_one_key_returns_the_open_incident_until_it_recovers() -> None:
    s = make_book()
    first = s.book.open(
        "web", severity="SEV2", title="HighErrorRate", source="alert:HighErrorRate",
        key="fp-1", detected_at=T0, who="monitor",
    )  # fmt: skip
    again = s.book.open(
        "web", severity="SEV4", title="other words", source="alert:HighErrorRate",
        key="fp-1", detected_at=T0 + timedelta(seconds=5), who="monitor",
    )  # fmt: skip
    assert again.id == first.id and again.severity == "SEV2"
    assert len(s.book.list()) == 1
    assert s.book.find_open("fp-1") == first

    s.clock.advance(30)
    s.book.resolve(first.id, who="monitor")
    assert s.book.find_open("fp-1") is None
    third = s.book.open(
        "web", severity="SEV2", title="HighErrorRate", source="alert:HighErrorRate",
        key="fp-1", detected_at=s.clock.now(), who="monitor",
    )  # fmt: skip
    assert third.id != first.id
    assert [r.id for r in s.book.list(open_only=True)] == [third.id]


def test_an_incident_cannot_begin_after_it_was_detected() -> None:
    s = make_book()
    with pytest.raises(InputError, match="started_at"):
        s.book.open(
            "web", severity=3, title="t", source="manual", key="k", detected_at=T0,
            who="alice", started_at=T0 + timedelta(seconds=1),
        )  # fmt: skip


def test_stages_move_forward_stamped_with_time_and_who_and_skipped_ones_stay_empty() -> None:
    s = make_book()
    record = s.book.open(
        "web", severity="SEV3", title="t", source="manual", key="k", detected_at=T0, who="alice"
    )
    s.clock.advance(40)
    record = s.book.advance(record.id, "mitigated", who="bob", note="scaled out")
    assert record.stage == "mitigated"
    assert record.at("assessed") is None  # skipped: nothing filled in backwards
    mitigated = record.reached("mitigated")
    assert mitigated is not None
    assert (mitigated.at, mitigated.who, mitigated.note) == (
        T0 + timedelta(seconds=40),
        "bob",
        "scaled out",
    )
    kinds = [e.kind for e in s.store.list_events(WEB)]
    assert kinds == ["incident.opened", "incident.mitigated"]


def test_moving_back_or_to_the_same_stage_is_bad_input() -> None:
    s = make_book()
    record = s.book.open(
        "web", severity="SEV3", title="t", source="manual", key="k", detected_at=T0, who="a"
    )
    s.book.advance(record.id, "mitigated", who="bob")
    with pytest.raises(InputError, match="cannot go back to assessed"):
        s.book.ack(record.id, who="carol")
    with pytest.raises(InputError, match="already mitigated"):
        s.book.advance(record.id, "mitigated", who="carol")
    with pytest.raises(InputError, match="expected one of detected"):
        s.book.advance(record.id, "fixed", who="carol")
    assert s.book.get(record.id).stage == "mitigated"


def test_a_time_before_a_stage_already_reached_is_refused_and_a_clock_stepped_back_is_clamped() -> (
    None
):
    s = make_book()
    record = s.book.open(
        "web", severity="SEV3", title="t", source="manual", key="k",
        detected_at=T0 + timedelta(seconds=100), who="monitor",
    )  # fmt: skip
    with pytest.raises(InputError, match="only move forward"):
        s.book.advance(record.id, "assessed", who="a", at=T0 + timedelta(seconds=99))
    # The clock reads T0, before detection: the move is stamped at the detection time.
    moved = s.book.ack(record.id, who="alice")
    assert moved.at("assessed") == T0 + timedelta(seconds=100)


def test_review_needs_recovery_then_a_postmortem_with_nothing_left_to_complete(
    tmp_path: Path,
) -> None:
    s = make_book()
    record = s.book.open(
        "web", severity="SEV3", title="t", source="manual", key="k", detected_at=T0, who="a"
    )
    with pytest.raises(InputError, match="not recovered yet"):
        s.book.advance(record.id, "reviewed", who="a")
    s.clock.advance(10)
    s.book.resolve(record.id, who="a")
    with pytest.raises(RefusedError, match="no postmortem yet"):
        s.book.review(record.id, who="a")
    path, markdown = s.book.write_postmortem(record.id, directory=tmp_path)
    assert path.read_text() == markdown and TO_COMPLETE in markdown
    with pytest.raises(RefusedError, match=r"still has 4 part\(s\) marked"):
        s.book.review(record.id, who="a")
    path.write_text(markdown.replace(f"**{TO_COMPLETE}**", "Written by the team:"))
    reviewed = s.book.review(record.id, who="alice")
    assert reviewed.stage == "reviewed" and reviewed.reached("reviewed").who == "alice"  # type: ignore[union-attr]


def test_review_with_force_does_not_need_a_complete_postmortem() -> None:
    s = make_book()
    record = s.book.open(
        "web", severity="SEV3", title="t", source="manual", key="k", detected_at=T0, who="a"
    )
    s.book.resolve(record.id, who="a")
    assert s.book.review(record.id, who="a", force=True).stage == "reviewed"


def test_resolve_goes_through_mitigated_only_when_it_was_not_reached() -> None:
    s = make_book()
    first = s.book.open(
        "web", severity="SEV3", title="t", source="manual", key="k1", detected_at=T0, who="a"
    )
    s.clock.advance(5)
    resolved = s.book.resolve(first.id, who="bob", note="restarted the database")
    assert [x.stage for x in resolved.stages] == ["detected", "mitigated", "recovered"]
    second = s.book.open(
        "web", severity="SEV3", title="t", source="manual", key="k2", detected_at=T0, who="a"
    )
    s.book.advance(second.id, "mitigated", who="carol")
    s.clock.advance(5)
    resolved = s.book.resolve(second.id, who="bob")
    assert resolved.reached("mitigated").who == "carol"  # type: ignore[union-attr]


def test_a_postmortem_draft_never_overwrites_an_earlier_one(tmp_path: Path) -> None:
    s = make_book()
    record = s.book.open(
        "web", severity="SEV3", title="t", source="manual", key="k", detected_at=T0, who="a"
    )
    first, _ = s.book.write_postmortem(record.id, directory=tmp_path)
    first.write_text("edited by hand")
    second, _ = s.book.write_postmortem(record.id, directory=tmp_path)
    assert first.name == f"postmortem-INC-{record.id}-web.md"
    assert second.name == f"postmortem-INC-{record.id}-web-2.md"
    assert first.read_text() == "edited by hand"
    assert s.book.get(record.id).postmortem_path == str(second)


def _counters(requests: int, errors: int, slow: int) -> ServiceMetrics:
    # ``slow`` requests at 200 ms, the rest at 2 ms: p95 lands in the slow bucket when > 5 %.
    histogram = LatencyHistogram.from_counts({})
    for _ in range(requests - slow):
        histogram = histogram.merge(_one(0.002))
    for _ in range(slow):
        histogram = histogram.merge(_one(0.2))
    group = GroupMetrics(
        group="r1",
        requests=requests,
        responses={"1xx": 0, "2xx": requests - errors, "3xx": 0, "4xx": 0, "5xx": errors},
        latency=histogram,
    )
    return ServiceMetrics(service="web", groups={"r1": group})


def _one(seconds: float) -> LatencyHistogram:
    from zerodown.traffic.base import latency_bucket

    return LatencyHistogram.from_counts({latency_bucket(int(seconds * 1_000_000)): 1})


def test_an_alerts_impact_is_measured_from_the_counters_at_detection_and_at_recovery() -> None:
    readings = iter([_counters(100, 0, 0), _counters(300, 50, 20)])
    s = make_book(metrics=lambda service: next(readings))
    record = s.book.open(
        "web", severity="SEV2", title="HighErrorRate", source="alert:HighErrorRate",
        key="fp", detected_at=T0, who="monitor",
    )  # fmt: skip
    assert record.impact["measured"] is False
    s.clock.advance(60)
    recovered = s.book.advance(record.id, "recovered", who="monitor")
    impact = recovered.impact
    assert impact["measured"] is True
    assert (impact["requests"], impact["errors"]) == (200, 50)
    assert impact["error_rate"] == pytest.approx(0.25)
    assert impact["p95_ms"] > 100  # 20 of 200 requests took 200 ms
    assert impact["seconds"] == 60


def test_without_counters_the_impact_is_unknown_and_says_why() -> None:
    s = make_book(metrics=lambda service: None)
    record = s.book.open(
        "web", severity="SEV2", title="t", source="alert:x", key="fp", detected_at=T0, who="m"
    )
    recovered = s.book.resolve(record.id, who="m")
    assert recovered.impact == {
        "measured": False,
        "reason": "the data plane's counters were not available at detection",
    }


def test_an_automatic_rollback_opens_an_incident_at_the_times_its_stages_happened() -> None:
    s = make_book()
    release = rolled_back_canary(s)
    record = s.book.open_for_rollback(release, severity="SEV3")
    assert record is not None
    assert record.source == "rollback:2" and record.revision == 2 and record.severity == "SEV3"
    assert record.stage == "recovered" and record.reached("assessed") is None
    assert record.started_at == T0 + timedelta(seconds=2)  # the first canary weight above 0
    assert record.detected_at == T0 + timedelta(seconds=6)  # the judge's decision
    assert record.at("mitigated") == T0 + timedelta(seconds=6.5)  # traffic back on revision 1
    assert record.at("recovered") == T0 + timedelta(seconds=8)  # verified healthy
    assert record.reached("detected").who == "zerodown judge (thresholds)"  # type: ignore[union-attr]
    assert record.reached("recovered").who == AUTOMATIC_ROLLBACK  # type: ignore[union-attr]
    assert "error rate 30.0 % > 5.0 %" in record.title
    assert record.impact["requests"] == 60 and record.impact["errors"] == 18
    assert record.impact["exposure"] == pytest.approx(0.2)
    # The spec diff is kept, with the secret's value masked.
    assert "+ env.DB_PASSWORD: ***" in record.details["changes"]
    assert "+ env.ERROR_RATE: 0.3" in record.details["changes"]
    assert not any("s3cret" in line or "hunter2" in line for line in record.details["changes"])
    kinds = [e.kind for e in s.store.list_events(ServiceName("web"), revision=Revision(2))]
    assert kinds[-3:] == ["incident.opened", "incident.mitigated", "incident.recovered"]
    # Called again (a second report of the same release): the same incident.
    assert s.book.open_for_rollback(release) == s.book.get(record.id)


def test_a_rollout_aborted_by_a_person_opens_no_incident() -> None:
    s = make_book()
    release = rolled_back_canary(s, aborted_by="alice")
    assert s.book.open_for_rollback(release) is None
    assert s.book.list() == []


def test_a_rollback_incident_cannot_be_acknowledged_after_the_fact() -> None:
    s = make_book()
    record = s.book.open_for_rollback(rolled_back_canary(s))
    assert record is not None
    with pytest.raises(InputError, match="recovered: it cannot go back to assessed"):
        s.book.ack(record.id, who="alice")


@pytest.mark.parametrize(
    ("before", "after", "shown", "hidden"),
    [
        (
            "env: {A: '1'}",
            "env: {A: '1', DATABASE_URL: 'postgresql://app:s3cret@db/app'}",
            "+ env.DATABASE_URL: postgresql://app:***@db/app",
            "s3cret",
        ),
        (
            "checks: {}",
            "checks: {pre: {url: 'postgresql://u:pw1234@h/db?sslmode=require'}}",
            "+ checks.pre.url: postgresql://u:***@h/db?sslmode=require",
            "pw1234",
        ),
        ("env: {}", "env: {PASSWORD: hunter2}", "+ env.PASSWORD: ***", "hunter2"),
        (
            "x: 1",
            "x: 1\nenv: [{name: DB_PASSWORD, value: hunter2}]",
            "+ env[0].value: ***",
            "hunter2",
        ),
        ("a: {apiKey: k1}", "a: {apiKey: k2secret}", "+ a.apiKey: ***", "k2secret"),
        (
            "db: 'x://h/d?password=abc987'",
            "db: 'x://h/d?password=zyx654'",
            "+ db: x://h/d?password=***",
            "zyx654",
        ),
    ],
)
def test_spec_changes_never_show_a_secret(before: str, after: str, shown: str, hidden: str) -> None:
    from zerodown.incidents.book import _spec_changes

    old = rolled_back_canary(make_book())
    stable = dataclasses.replace(old, spec_text=before)
    release = dataclasses.replace(old, spec_text=after)
    changes = _spec_changes(stable, release)
    assert shown in changes
    assert not any(hidden in line for line in changes)
