"""Alert rules: rule files, templates and Prometheus' alert state machine, step by step.

The vectors are Prometheus' own (``rules/alerting_test.go``, ``promtool`` examples): a series is
evaluated at each minute and the state of the alert after each evaluation is pinned.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from zerodown.core.errors import SpecError
from zerodown.ops.alerts import (
    RESOLVED_RETENTION,
    Alert,
    AlertState,
    RuleEvaluator,
    Template,
    TemplateError,
    default_rules,
    format_go_float,
    humanize,
    parse_rules,
)
from zerodown.ops.series import SeriesStore
from zerodown.testing import FrozenClock

MINUTE = 60.0


def _rule(expr: str, *, extra: str = "") -> str:
    return f"""
groups:
  - name: test
    rules:
      - alert: Test
        expr: {expr}
{extra}"""


def _states(values: list[float | None], rule: str, *, minutes: int | None = None) -> list[str]:
    """The state of the one alert after each minute's evaluation ("-" when there is none)."""
    store = SeriesStore()
    for index, value in enumerate(values):
        if value is not None:
            store.append("http_requests", {"job": "app"}, value, index * MINUTE)
    evaluator = RuleEvaluator(parse_rules(rule), store)
    out: list[str] = []
    for step in range(minutes or len(values)):
        alerts = evaluator.evaluate(step * MINUTE)
        assert len(alerts) <= 1
        if not alerts:
            out.append("-")
        elif alerts[0].state is AlertState.INACTIVE:
            out.append("resolved")
        else:
            out.append(alerts[0].state.value)
    return out


def test_keep_firing_for_the_issue_vector() -> None:
    """75 85 70 70 10 ... with for 1m, keep_firing_for 1m: pending, firing x3, kept, resolved."""
    rule = _rule("http_requests > 50", extra="        for: 1m\n        keep_firing_for: 1m\n")
    states = _states([75, 85, 70, 70, 10, 10, 10, 10, 10], rule)
    assert states == [
        "pending",
        "firing",
        "firing",
        "firing",
        "firing",  # kept firing for 1m after the expression stopped returning it
        "resolved",
        "resolved",
        "resolved",
        "resolved",
    ]


def test_pending_is_dropped_at_once_when_false() -> None:
    rule = _rule("http_requests > 50", extra="        for: 2m\n")
    assert _states([75, 75, 10, 75, 75, 75], rule) == [
        "pending",
        "pending",
        "-",
        "pending",
        "pending",
        "firing",
    ]


def test_for_zero_fires_on_the_first_evaluation() -> None:
    assert _states([75, 10], _rule("http_requests > 50")) == ["firing", "resolved"]


def test_keep_firing_resets_when_the_expression_is_true_again() -> None:
    rule = _rule("http_requests > 50", extra="        keep_firing_for: 2m\n")
    assert _states([75, 10, 75, 10, 10, 10], rule) == [
        "firing",
        "firing",
        "firing",
        "firing",
        "firing",
        "resolved",
    ]


def test_resolved_alerts_are_kept_fifteen_minutes_then_forgotten() -> None:
    values: list[float | None] = [75, 10] + [10] * 16
    states = _states(values, _rule("http_requests > 50"))
    resolved_for = int(RESOLVED_RETENTION // MINUTE)
    assert states[1 : 2 + resolved_for] == ["resolved"] * (resolved_for + 1)
    assert states[2 + resolved_for] == "-"


def test_a_resolved_alert_that_comes_back_starts_over() -> None:
    rule = _rule("http_requests > 50", extra="        for: 1m\n")
    assert _states([75, 75, 10, 75, 75], rule) == [
        "pending",
        "firing",
        "resolved",
        "pending",
        "firing",
    ]


def test_timestamps_value_and_templates_of_an_alert() -> None:
    clock = FrozenClock(datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    store = SeriesStore()
    rule = _rule(
        "http_requests > 50",
        extra="""        for: 1m
        labels:
          severity: page
          team: "{{ $labels.job }}-oncall"
        annotations:
          summary: "{{ $labels.job }} at {{ $value }} ({{ $value | humanize }})"
          missing: "[{{ $labels.nothing }}]"
""",
    )
    evaluator = RuleEvaluator(parse_rules(rule), store)
    start = clock.now()
    alerts: list[Alert] = []
    for value in (75.0, 1234.5, 10.0):
        store.append("http_requests", {"job": "app"}, value, clock.now().timestamp())
        alerts.append(evaluator.evaluate(clock.now())[0])
        clock.advance(MINUTE)
    pending, firing, resolved = alerts
    assert pending.state is AlertState.PENDING and pending.fired_at is None
    assert firing.label_map == {
        "alertname": "Test",
        "job": "app",
        "severity": "page",
        "team": "app-oncall",
    }
    assert firing.annotation_map == {"summary": "app at 1234.5 (1.234k)", "missing": "[]"}
    assert firing.active_at == start
    assert firing.fired_at == start + timedelta(minutes=1)
    assert resolved.resolved_at == start + timedelta(minutes=2)
    assert resolved.value == 1234.5  # the last value the expression returned


def test_resend_rule_sends_firing_every_minute_and_resolved_at_once() -> None:
    store = SeriesStore()
    evaluator = RuleEvaluator(parse_rules(_rule("http_requests > 50")), store)
    sent: list[list[str]] = []
    for step, value in enumerate([75.0, 75.0, 75.0, 10.0, 10.0]):
        store.append("http_requests", {"job": "app"}, value, step * 30.0)
        evaluator.evaluate(step * 30.0)  # the group's interval is 1m: every other call runs
        sent.append([a.state.value for a in evaluator.alerts_to_send(step * 30.0)])
    # 0 s: firing, sent. 30 s: not evaluated, not due. 60 s: still firing, but a resend needs
    # more than 1m since the last send. 90 s: due. 120 s: resolved, sent at once.
    assert sent == [["firing"], [], [], ["firing"], ["inactive"]]
    resolved = evaluator.alerts()[0]
    assert resolved.ends_at == resolved.resolved_at


def test_a_firing_alert_sent_is_valid_for_four_resend_intervals() -> None:
    store = SeriesStore()
    store.append("http_requests", {"job": "app"}, 75.0, 0.0)
    evaluator = RuleEvaluator(parse_rules(_rule("http_requests > 50")), store)
    evaluator.evaluate(0.0)
    (alert,) = evaluator.alerts_to_send(0.0)
    assert alert.ends_at == datetime.fromtimestamp(4 * MINUTE, UTC)
    assert alert.to_dict()["startsAt"] == "1970-01-01T00:00:00Z"


def test_duplicate_label_sets_after_alert_labels_are_an_evaluation_error() -> None:
    store = SeriesStore()
    store.append("x", {"a": "1"}, 1.0, 0.0)
    store.append("x", {"a": "2"}, 1.0, 0.0)
    rule = _rule("x", extra="        labels:\n          a: same\n")
    evaluator = RuleEvaluator(parse_rules(rule), store)
    assert evaluator.evaluate(0.0) == []
    assert "same labelset" in evaluator.errors()["Test"]


def test_rule_file_problems_name_file_line_and_field() -> None:
    text = """groups:
  - name: g
    rules:
      - alert: Bad
        expr: rate(x) > 1
        for: 5 minutes
        annotations:
          a: "{{ range $labels }}x{{ end }}"
      - record: job:x
        expr: x
"""
    with pytest.raises(SpecError) as caught:
        parse_rules(text, filename="rules.yaml")
    rendered = [p.render() for p in caught.value.problems]
    assert any(r.startswith("rules.yaml:5: groups[0].rules[0].expr: column 6") for r in rendered), (
        rendered
    )
    assert any("rules.yaml:6: groups[0].rules[0].for: expected a duration" in r for r in rendered)
    assert any("groups[0].rules[0].annotations.a" in r and "range" in r for r in rendered)
    assert any("rules.yaml:9:" in r and "recording rules" in r for r in rendered)


def test_an_empty_file_and_bad_yaml_are_spec_errors() -> None:
    with pytest.raises(SpecError, match="empty"):
        parse_rules("  \n")
    with pytest.raises(SpecError, match="invalid YAML"):
        parse_rules("groups: [")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.5, "0.5"),
        (100.0, "100"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
        (float("nan"), "NaN"),
        (float("inf"), "+Inf"),
    ],
)
def test_values_print_as_go_prints_them(value: float, text: str) -> None:
    assert format_go_float(value) == text


def test_humanize_functions() -> None:
    assert humanize(1234.5) == "1.234k"
    assert humanize(0.0125) == "12.5m"
    assert humanize(0) == "0"
    template = Template(
        "{{ $value | humanizePercentage }} {{ $value | humanizeDuration }} "
        '{{ printf "%.2f" $value }} {{- " x" }} {{ .Labels.job | toUpper }}'
    )
    assert template.render(labels={"job": "app"}, value=0.0523) == "5.23% 52.3ms 0.05 x APP"
    assert Template("{{ 90061 | humanizeDuration }}").render(labels={}, value=0) == "1d 1h 1m 1s"


def test_unsupported_template_parts_are_refused() -> None:
    for text in ("{{ if $value }}x{{ end }}", "{{ query `up` }}", "{{ $nope }}", "{{ $value"):
        with pytest.raises(TemplateError):
            Template(text)


def test_default_rules_cover_the_seed_thresholds() -> None:
    names = [rule.name for group in default_rules() for rule in group.rules]
    assert names == [
        "ZerodownHighErrorRate",
        "ZerodownLatencyAboveBaseline",
        "ZerodownLowAvailability",
        "ZerodownInstanceUnhealthy",
        "ZerodownDiskFillingUp",
        "ZerodownInstanceRestarted",
        "ZerodownBackupFailed",
        "ZerodownBackupTooOld",
        "ZerodownBackupMissing",
    ]
    thresholds = {rule.name: rule.expr_text for group in default_rules() for rule in group.rules}
    assert "> 0.05" in thresholds["ZerodownHighErrorRate"]
    assert "2 * zerodown_baseline_latency_seconds" in thresholds["ZerodownLatencyAboveBaseline"]
    assert "< 0.99" in thresholds["ZerodownLowAvailability"]
