"""Notification routing: Alertmanager's tree, grouping timers, dedup, inhibition and silences.

Everything runs on a ``FrozenClock``; the dispatcher's sender is a recorder, so each test pins
exactly which notification goes out when.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from zerodown.core.errors import InputError, NotFoundError, SpecError
from zerodown.ops.routing import (
    Dispatcher,
    Notification,
    RoutedAlert,
    Silences,
    fingerprint,
    parse_config,
    parse_matchers,
    receivers_for,
)
from zerodown.ops.series import label_set
from zerodown.testing import FrozenClock

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

CONFIG = """
route:
  receiver: team
  group_by: [alertname, service]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
    - matchers: ['service=~"db.*"']
      receiver: db
      group_by: ['...']
      group_wait: 0s
receivers:
  - name: team
    webhook_configs: [{url: "http://team.example/hook"}]
  - name: pager
    slack_configs: [{api_url: "http://slack.example/hook", channel: "#pager"}]
  - name: db
    webhook_configs: [{url: "http://db.example/hook", send_resolved: false}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [service]
"""


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self.fail = False

    def __call__(self, notification: Notification) -> bool:
        if self.fail:
            return False
        self.sent.append(notification)
        return True


def _alert(
    clock: FrozenClock, *, ends_in: float | None = 3600, starts_ago: float = 0, **labels: str
) -> RoutedAlert:
    now = clock.now()
    return RoutedAlert(
        labels=label_set({"alertname": "HighErrorRate", **labels}),
        annotations=(("summary", f"{labels.get('service', '')} is failing"),),
        starts_at=now - timedelta(seconds=starts_ago),
        ends_at=None if ends_in is None else now + timedelta(seconds=ends_in),
    )


def _setup(text: str = CONFIG) -> tuple[FrozenClock, Recorder, Dispatcher]:
    clock = FrozenClock(START)
    recorder = Recorder()
    return clock, recorder, Dispatcher(parse_config(text), clock=clock, send=recorder)


def _summary(notes: list[Notification]) -> list[tuple[str, str, int]]:
    return [(n.receiver, n.status, len(n.alerts)) for n in notes]


def test_parse_matchers_accepts_alertmanager_forms() -> None:
    found = parse_matchers('{a="b", c=~"d.*", e!=f, g!~"h,i"}')
    assert [(m.name, m.op, m.value) for m in found] == [
        ("a", "=", "b"),
        ("c", "=~", "d.*"),
        ("e", "!=", "f"),
        ("g", "!~", "h,i"),
    ]
    with pytest.raises(ValueError):
        parse_matchers("novalue")


def test_routing_follows_continue_and_falls_back_to_the_parent() -> None:
    config = parse_config(CONFIG)
    assert receivers_for(config, {"severity": "critical", "service": "db1"}) == ["pager", "db"]
    assert receivers_for(config, {"severity": "critical", "service": "web"}) == ["pager"]
    assert receivers_for(config, {"service": "web"}) == ["team"]


def test_children_inherit_settings_and_keys_name_the_path() -> None:
    config = parse_config(CONFIG)
    pager, db = config.route.routes
    assert pager.group_by == ("alertname", "service") and pager.repeat_interval == 3600
    assert db.group_by_all and db.group_wait == 0
    assert db.key == '{}/{service=~"db.*"}'


def test_first_notification_waits_group_wait_then_group_interval() -> None:
    clock, _recorder, dispatcher = _setup()
    dispatcher.receive([_alert(clock, service="web", severity="warning")])
    assert dispatcher.tick() == []
    clock.advance(29)
    assert dispatcher.tick() == []
    clock.advance(1)
    (first,) = dispatcher.tick()
    assert first.receiver == "team" and first.status == "firing"
    assert first.group_key == '{}:{alertname="HighErrorRate", service="web"}'
    # A second alert in the same group waits for the group interval.
    clock.advance(60)
    dispatcher.receive([_alert(clock, service="web", severity="warning", instance="2")])
    assert dispatcher.tick() == []
    clock.advance(240)
    (second,) = dispatcher.tick()
    assert len(second.alerts) == 2


def test_an_old_alert_in_a_new_group_is_sent_at_once() -> None:
    clock, _, dispatcher = _setup()
    dispatcher.receive([_alert(clock, service="web", starts_ago=120)])
    assert _summary(dispatcher.tick()) == [("team", "firing", 1)]


def test_nothing_new_is_repeated_only_after_repeat_interval() -> None:
    clock, recorder, dispatcher = _setup()
    dispatcher.receive([_alert(clock, service="web", ends_in=7200)])
    sent = dispatcher.run_until(START + timedelta(hours=1, minutes=10))
    # 30 s: first; each 5 m flush is deduplicated until the hour has passed (at 1h05m30s).
    assert [round((n.alerts[0].starts_at - START).total_seconds()) for n in sent] == [0, 0]
    assert len(recorder.sent) == 2


def test_resolved_is_sent_when_send_resolved_and_the_group_disappears() -> None:
    clock, _recorder, dispatcher = _setup()
    dispatcher.receive([_alert(clock, service="web")])
    dispatcher.run_until(START + timedelta(seconds=30))
    clock.advance(60)
    resolved = _alert(clock, service="web", ends_in=0)
    dispatcher.receive([resolved])
    sent = dispatcher.run_until(START + timedelta(minutes=6))
    assert _summary(sent) == [("team", "resolved", 1)]
    assert sent[0].alerts[0].ends_at == resolved.ends_at
    assert dispatcher.groups() == []


def test_without_send_resolved_a_resolved_alert_is_logged_but_not_sent() -> None:
    clock, _recorder, dispatcher = _setup()
    dispatcher.receive(
        [
            _alert(clock, service="db1", ends_in=7200),
            _alert(clock, service="db1", instance="2", ends_in=7200),
        ]
    )
    # group_by ['...']: each label set is its own group; group_wait 0s sends at once.
    assert _summary(dispatcher.tick()) == [("db", "firing", 1), ("db", "firing", 1)]
    clock.advance(10)
    dispatcher.receive([_alert(clock, service="db1", ends_in=0)])
    sent = dispatcher.run_until(START + timedelta(hours=1, minutes=10))
    # No resolved news for db (send_resolved false), and the resolved alert's group is gone;
    # the other group repeats after the hour.
    assert _summary(sent) == [("db", "firing", 1)]
    assert [g["labels"].get("instance") for g in dispatcher.groups()] == ["2"]


def test_alerts_that_time_out_are_resolved() -> None:
    clock, _recorder, dispatcher = _setup()
    dispatcher.receive([_alert(clock, service="web", ends_in=None)])  # resolve_timeout: 5 m
    sent = dispatcher.run_until(START + timedelta(minutes=11))
    assert _summary(sent) == [("team", "firing", 1), ("team", "resolved", 1)]


def test_inhibition_mutes_targets_with_equal_labels_only() -> None:
    clock, _recorder, dispatcher = _setup()
    dispatcher.receive(
        [
            _alert(clock, service="web", severity="critical", alertname="Down"),
            _alert(clock, service="web", severity="warning"),
            _alert(clock, service="api", severity="warning"),
        ]
    )
    assert dispatcher.muted_by({"service": "web", "severity": "warning"}) == ["inhibited"]
    sent = dispatcher.run_until(START + timedelta(seconds=30))
    services = sorted(dict(n.group_labels).get("service", "") for n in sent)
    assert ("pager", "firing", 1) in _summary(sent)
    # Down goes to pager only (the first matching child wins, the root is not a fallback);
    # the web warning is inhibited by it; the api warning has no critical alert beside it.
    assert services == ["api", "web"]
    assert ("team", "firing", 1) in _summary(sent)


def test_an_alert_matching_both_sides_does_not_inhibit_itself() -> None:
    text = CONFIG.replace("target_matchers: ['severity=\"warning\"']", "target_matchers: []")
    clock, _, dispatcher = _setup(text)
    dispatcher.receive([_alert(clock, service="web", severity="critical")])
    assert dispatcher.muted_by({"service": "web", "severity": "critical"}) == []


def test_silences_mute_while_active_and_can_be_expired() -> None:
    clock, _recorder, dispatcher = _setup()
    silence = dispatcher.silences.add(
        ['service="web"'],
        ends_at=START + timedelta(hours=1),
        created_by="ops",
        comment="maintenance",
    )
    dispatcher.receive([_alert(clock, service="web", ends_in=7200)])
    assert dispatcher.run_until(START + timedelta(minutes=10)) == []
    assert [s.id for s in dispatcher.silences.list(state="active")] == [silence.id]
    dispatcher.silences.expire(silence.id)
    assert dispatcher.silences.list(state="expired")[0].ends_at == clock.now()
    sent = dispatcher.run_until(START + timedelta(minutes=16))
    assert _summary(sent) == [("team", "firing", 1)]


def test_silence_validation() -> None:
    silences = Silences(clock=FrozenClock(START))
    with pytest.raises(InputError, match="matcher"):
        silences.add(['a=~".*"'], ends_at=START + timedelta(hours=1), created_by="x", comment="y")
    with pytest.raises(InputError, match="end after"):
        silences.add(["a=b"], ends_at=START, created_by="x", comment="y")
    with pytest.raises(NotFoundError):
        silences.expire("nope")
    pending = silences.add(
        ["a=b"],
        starts_at=START + timedelta(hours=1),
        ends_at=START + timedelta(hours=2),
        created_by="x",
        comment="later",
    )
    assert pending.state(START) == "pending"
    assert pending.to_dict(START)["matchers"] == [
        {"name": "a", "value": "b", "isRegex": False, "isEqual": True}
    ]


def test_a_failed_delivery_is_retried_at_the_next_group_interval() -> None:
    clock, recorder, dispatcher = _setup()
    recorder.fail = True
    dispatcher.receive([_alert(clock, service="web")])
    assert dispatcher.run_until(START + timedelta(seconds=30)) == []
    recorder.fail = False
    sent = dispatcher.run_until(START + timedelta(minutes=6))
    assert _summary(sent) == [("team", "firing", 1)]


def test_webhook_payload_is_alertmanagers() -> None:
    clock, _recorder, dispatcher = _setup()
    dispatcher.receive([_alert(clock, service="web", severity="warning")])
    (note,) = dispatcher.run_until(START + timedelta(seconds=30))
    payload = note.webhook_payload()
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["receiver"] == "team"
    assert payload["groupKey"] == '{}:{alertname="HighErrorRate", service="web"}'
    assert payload["groupLabels"] == {"alertname": "HighErrorRate", "service": "web"}
    assert payload["commonLabels"]["severity"] == "warning"
    assert payload["commonAnnotations"] == {"summary": "web is failing"}
    alert = payload["alerts"][0]
    assert alert["startsAt"] == "2024-05-01T12:00:00Z"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"  # not exposed while firing
    assert alert["fingerprint"] == fingerprint(dict(note.alerts[0].labels))
    assert set(payload) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }


def test_fingerprint_is_fnv1a_of_the_sorted_labels() -> None:
    assert fingerprint({}) == "cbf29ce484222325"  # FNV-1a 64's offset basis: the empty set
    assert fingerprint({"b": "2", "a": "1"}) == fingerprint({"a": "1", "b": "2"})
    assert len(fingerprint({"a": "1"})) == 16


def test_templates_render_title_and_text() -> None:
    text = CONFIG.replace(
        "inhibit_rules:",
        'templates:\n  alert: "* {labels[service]} {annotations[summary]} {labels[nothing]}|"\n'
        "inhibit_rules:",
    )
    clock, _recorder, dispatcher = _setup(text)
    dispatcher.receive([_alert(clock, service="web", severity="critical")])
    sent = dispatcher.run_until(START + timedelta(seconds=30))
    slack = next(n for n in sent if n.receiver == "pager")
    title, body = slack.render()
    assert title == "[FIRING:1] HighErrorRate web"
    assert body == "[FIRING:1] HighErrorRate web\n* web web is failing |"


def test_config_problems_name_line_and_field() -> None:
    text = """route:
  receiver: nobody
  group_wait: soon
  routes:
    - matchers: ['a~b']
receivers:
  - name: x
    pagerduty_configs: [{}]
templates: [/etc/t.tmpl]
"""
    with pytest.raises(SpecError) as caught:
        parse_config(text, filename="am.yml")
    rendered = "\n".join(p.render() for p in caught.value.problems)
    assert "am.yml:3: route.group_wait: expected a duration" in rendered
    assert "am.yml:5: route.routes[0].matchers[0]" in rendered
    assert "pagerduty_configs is not supported" in rendered
    assert "receiver 'nobody', which is not defined" in rendered
    assert "am.yml:9: templates: zerodown's templates are a mapping" in rendered


def test_unknown_template_fields_are_refused() -> None:
    text = CONFIG.replace("inhibit_rules:", 'templates:\n  title: "{nope}"\ninhibit_rules:')
    with pytest.raises(SpecError, match="invalid template"):
        parse_config(text)
    attribute = CONFIG.replace(
        "inhibit_rules:", 'templates:\n  title: "{status.__class__}"\ninhibit_rules:'
    )
    with pytest.raises(SpecError, match="attribute access"):
        parse_config(attribute)
