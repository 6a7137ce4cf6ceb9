"""The monitor end to end in virtual time: sampling, rules, routing, incidents, persistence.

A scripted data plane serves a service whose 5xx share is 10 %; the service's spec names a
rule file and an Alertmanager configuration. Time is a ``FrozenClock`` advanced by hand; the
monitor's round (``tick``) and the notifier's (``step``) run in the test's thread, and the
receiver is a recorder, so each test pins exactly what is sent when.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from zerodown.core.types import ServiceName, Version
from zerodown.incidents import IncidentBook
from zerodown.monitor import Monitor
from zerodown.ops.routing import Notification, fingerprint
from zerodown.spec import parse_spec
from zerodown.store.base import ReleaseStatus
from zerodown.store.incidents import IncidentRecord
from zerodown.store.sqlite import SqliteStore
from zerodown.testing import FrozenClock, RecordingRouter
from zerodown.traffic.base import GroupMetrics, LatencyHistogram, ServiceMetrics, latency_bucket

RULES = """
groups:
  - name: web-errors
    interval: 10s
    rules:
      - alert: HighErrorRate
        expr: |
          sum by (service) (rate(zerodown_requests_total{code_class="5xx"}[1m]))
            / sum by (service) (rate(zerodown_requests_total[1m])) > 0.05
        for: 20s
        labels: {severity: critical}
        annotations:
          summary: "{{ $labels.service }}: {{ $value | humanizePercentage }} of requests fail"
"""

ROUTING = """
route:
  receiver: hook
  group_by: [alertname, service]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 4h
receivers:
  - name: hook
    webhook_configs: [{url: "http://127.0.0.1:9/hook"}]
"""

SPEC = """
service: web
run: {command: "python app.py"}
monitor:
  interval: 10s
  defaultRules: false
  rules: [rules.yaml]
  alertmanager: alertmanager.yml
"""


class ScriptedRouter(RecordingRouter):
    """A data plane whose counters grow as the test says."""

    def __init__(self) -> None:
        super().__init__()
        self.ok = 0
        self.failed = 0
        self.broken: set[str] = set()

    def serve(self, ok: int, failed: int) -> None:
        self.ok += ok
        self.failed += failed

    def metrics(self, service: str) -> ServiceMetrics:
        if service in self.broken:
            raise RuntimeError(f"data plane bug for {service}")
        total = self.ok + self.failed
        group = GroupMetrics(
            group="r1",
            requests=total,
            responses={"1xx": 0, "2xx": self.ok, "3xx": 0, "4xx": 0, "5xx": self.failed},
            latency=LatencyHistogram.from_counts({latency_bucket(2_000): total}, 2_000 * total),
        )
        return ServiceMetrics(service=service, groups={"r1": group})


class World:
    def __init__(self, tmp_path: Path, *, path: Path | None = None) -> None:
        self.tmp_path = tmp_path
        self.clock = FrozenClock()
        self.db = path or tmp_path / "zerodown.db"
        self.store = SqliteStore(self.db, clock=self.clock)
        self.router = ScriptedRouter()
        self.sent: list[Notification] = []
        self.monitor = self._monitor()

    def _monitor(self) -> Monitor:
        return Monitor(
            store=self.store,
            router=self.router,
            platforms={},
            clock=self.clock,
            state_dir=self.tmp_path,
            incidents=IncidentBook(self.store, self.clock),
            send=self._send,
        )

    def _send(self, notification: Notification) -> bool:
        self.sent.append(notification)
        return True

    def deploy(self, service: str = "web") -> None:
        (self.tmp_path / "rules.yaml").write_text(RULES)
        (self.tmp_path / "alertmanager.yml").write_text(ROUTING)
        text = SPEC.replace("service: web", f"service: {service}")
        spec_path = self.tmp_path / f"{service}.yaml"
        spec_path.write_text(text)
        loaded = parse_spec(text, filename=str(spec_path))
        name = ServiceName(service)
        self.store.upsert_service(name, spec_path=str(spec_path), spec_text=text)
        release = self.store.create_release(
            name,
            version=Version("v2"),
            spec_text=text,
            spec_hash=loaded.spec_hash,
            strategy="canary",
            state={"recorded": {"p95": 0.002}},
        )
        self.store.update_release(name, release.revision, status=ReleaseStatus.SUCCEEDED)

    def run(self, seconds: int, *, ok: int, failed: int) -> None:
        """Serve ``ok`` and ``failed`` requests per 10 s while ``seconds`` pass."""
        for _ in range(seconds // 10):
            self.router.serve(ok, failed)
            self.monitor.tick()
            self.monitor.notifier.step()
            self.clock.advance(10)

    def restart(self, *, down_for: float = 0.0) -> None:
        self.monitor.stop()
        self.store.close()
        self.clock.advance(down_for)
        self.store = SqliteStore(self.db, clock=self.clock)
        self.monitor = self._monitor()

    def incident(self) -> IncidentRecord:
        [record] = self.store.list_incidents("web", limit=10)
        return record

    def events(self, kind: str) -> list[str]:
        return [e.message for e in self.store.list_events(ServiceName("web")) if e.kind == kind]


def test_an_error_rate_alert_fires_once_notifies_once_opens_and_recovers_an_incident(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    world.deploy()
    world.run(60, ok=90, failed=0)
    assert world.monitor.alerts()["alerts"] == []
    world.run(30, ok=90, failed=10)  # the 1 m window's share crosses 5 % at its third round
    [pending] = world.monitor.alerts()["alerts"]
    assert pending["state"] == "pending" and pending["labels"]["service"] == "web"
    world.run(120, ok=90, failed=10)
    [firing] = world.monitor.alerts()["alerts"]
    assert firing["state"] == "firing"
    assert firing["annotations"]["summary"].startswith("web: ")
    [notification] = world.sent
    assert notification.status == "firing" and len(notification.alerts) == 1
    assert notification.webhook_payload()["groupLabels"] == {
        "alertname": "HighErrorRate",
        "service": "web",
    }
    assert len(world.events("alert.firing")) == 1
    assert len(world.events("alert.notified")) == 1
    key = fingerprint({"alertname": "HighErrorRate", "service": "web", "severity": "critical"})
    incident = world.monitor.incidents.find_open(key)  # type: ignore[union-attr]
    assert incident is not None and incident.source == "alert:HighErrorRate"
    assert incident.severity == "SEV2"

    world.run(180, ok=90, failed=0)
    assert world.monitor.alerts()["alerts"] == []
    assert [n.status for n in world.sent] == ["firing", "resolved"]
    recovered = world.store.get_incident(incident.id)
    assert recovered.stage == "recovered" and not recovered.is_open
    assert len(world.events("alert.resolved")) == 1


def test_the_exposition_has_the_counters_the_rules_read(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.deploy()
    world.run(20, ok=7, failed=3)
    text = world.monitor.exposition()
    assert 'zerodown_requests_total{code_class="5xx",service="web",version="v2"} 6\n' in text
    assert (
        'zerodown_request_duration_seconds_bucket{le="+Inf",service="web",version="v2"} 20\n'
        in (text)
    )
    assert 'zerodown_baseline_latency_seconds{quantile="0.95",service="web"} 0.002\n' in text
    assert "# TYPE zerodown_disk_free_bytes gauge\n" in text


def test_silences_mute_notifications_and_survive_a_restart(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.deploy()
    silence = world.monitor.add_silence(
        ['service="web"'],
        ends_at=world.clock.now() + timedelta(hours=1),
        created_by="ops",
        comment="known issue",
    )
    world.restart()
    [kept] = world.monitor.silences(state="active")
    assert kept["id"] == silence["id"] and kept["comment"] == "known issue"
    world.run(60, ok=90, failed=0)
    world.run(120, ok=90, failed=10)
    [firing] = world.monitor.alerts()["alerts"]
    assert firing["state"] == "firing" and firing["silenced_by"] == [silence["id"]]
    assert world.sent == []
    world.monitor.expire_silence(silence["id"])
    world.run(70, ok=90, failed=10)  # at the group's next flush (group_interval 1m)
    assert [n.status for n in world.sent] == ["firing"]


def test_a_restarted_monitor_does_not_repeat_a_notification_already_sent(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.deploy()
    world.run(60, ok=90, failed=0)
    world.run(120, ok=90, failed=10)
    assert [n.status for n in world.sent] == ["firing"]
    world.restart()
    world.run(120, ok=90, failed=10)  # fires again after its `for`, in the same group
    assert world.monitor.alerts()["alerts"][0]["state"] == "firing"
    assert [n.status for n in world.sent] == ["firing"]  # the saved log says it was told


def test_a_broken_rule_file_keeps_the_last_good_configuration_and_says_why(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    world.deploy()
    world.run(10, ok=1, failed=0)
    (tmp_path / "rules.yaml").write_text("groups:\n  - name: x\n    rules:\n      - alert: A\n")
    world.clock.advance(10)
    world.run(10, ok=1, failed=0)
    [message] = world.events("monitor.config_failed")
    assert "rules.yaml:4" in message and "expression" in message
    assert world.monitor.alerts()["errors"] == []


def test_a_new_release_with_the_same_monitoring_keeps_the_alerts_state(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.deploy()
    world.run(60, ok=90, failed=0)
    world.run(120, ok=90, failed=10)
    assert world.monitor.alerts()["alerts"][0]["state"] == "firing"
    name = ServiceName("web")
    text = SPEC + "replicas: 2\n"
    loaded = parse_spec(text, filename=str(tmp_path / "zerodown.yaml"))
    release = world.store.create_release(
        name, version=Version("v3"), spec_text=text, spec_hash=loaded.spec_hash, strategy="canary"
    )
    world.store.update_release(name, release.revision, status=ReleaseStatus.PROGRESSING)
    world.monitor.wake()
    world.run(10, ok=90, failed=10)
    assert world.monitor.alerts()["alerts"][0]["state"] == "firing"
    assert len(world.events("alert.firing")) == 1
    assert [n.status for n in world.sent] == ["firing"]


MORE_RULES = """
  - name: web-latency
    rules:
      - alert: SlowRequests
        expr: sum by (service) (rate(zerodown_request_duration_seconds_sum[1m])) > 100
"""

OTHER_RULES = """
groups:
  - name: web-errors
    interval: 10s
    rules:
      - alert: ManyErrors
        expr: sum by (service) (rate(zerodown_requests_total{code_class="5xx"}[1m])) > 100
"""


def fire(world: World) -> None:
    world.deploy()
    world.run(60, ok=90, failed=0)
    world.run(120, ok=90, failed=10)
    assert [a["state"] for a in world.monitor.alerts()["alerts"]] == ["firing"]
    assert [n.status for n in world.sent] == ["firing"]
    assert world.incident().is_open


def test_a_new_rule_file_keeps_the_states_of_the_rules_it_did_not_change(tmp_path: Path) -> None:
    world = World(tmp_path)
    fire(world)
    (tmp_path / "rules.yaml").write_text(RULES + MORE_RULES)
    (tmp_path / "alertmanager.yml").write_text(ROUTING.replace("group_wait: 10s", "group_wait: 5s"))
    world.run(10, ok=90, failed=10)
    assert [a["state"] for a in world.monitor.alerts()["alerts"]] == ["firing"]
    assert len(world.events("alert.firing")) == 1
    world.run(60, ok=90, failed=10)
    assert [n.status for n in world.sent] == ["firing"]  # the new pipeline knows it was sent
    world.run(180, ok=90, failed=0)
    assert [n.status for n in world.sent] == ["firing", "resolved"]
    assert world.incident().stage == "recovered"


def test_the_alerts_of_a_removed_rule_are_resolved_notified_and_recover_their_incident(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    fire(world)
    (tmp_path / "rules.yaml").write_text(OTHER_RULES)
    world.run(80, ok=90, failed=10)
    assert world.monitor.alerts()["alerts"] == []
    [resolved] = world.events("alert.resolved")
    assert resolved == "alert HighErrorRate resolved (its rule was removed or changed)"
    assert [n.status for n in world.sent] == ["firing", "resolved"]
    incident = world.incident()
    assert incident.stage == "recovered"
    assert incident.stages[-1].note == (
        "alert HighErrorRate resolved (its rule was removed or changed)"
    )


def test_a_restart_keeps_a_firing_alert_firing_and_its_incident_recovers_later(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    fire(world)
    world.restart()
    world.run(10, ok=90, failed=10)
    [alert] = world.monitor.alerts()["alerts"]
    assert alert["state"] == "firing" and len(world.events("alert.firing")) == 1
    world.run(180, ok=90, failed=0)
    assert [n.status for n in world.sent] == ["firing", "resolved"]
    assert world.incident().stage == "recovered"


def test_an_alert_that_resolved_while_the_controller_was_down_recovers_its_incident(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    fire(world)
    world.restart(down_for=300)
    world.run(10, ok=90, failed=0)
    assert world.monitor.alerts()["alerts"] == []
    assert world.incident().stage == "recovered"
    world.run(60, ok=90, failed=0)
    assert [n.status for n in world.sent] == ["firing", "resolved"]


def test_without_saved_alert_states_an_incident_whose_alert_is_gone_still_recovers(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    fire(world)
    world.restart(down_for=300)
    world.store.save_alert_states("web", [])  # as a controller that saved none
    world.run(10, ok=90, failed=0)
    incident = world.incident()
    assert incident.stage == "recovered"
    assert incident.stages[-1].note == (
        "alert HighErrorRate not firing after the controller restarted "
        "(its rule found nothing at the first evaluation)"
    )


def test_memory_keeps_what_the_longest_rule_reads_and_shrinks_when_it_goes(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    world.deploy()
    world.run(10, ok=1, failed=0)
    assert world.monitor.history.memory.retention == 2 * 3600
    (tmp_path / "rules.yaml").write_text(RULES.replace("[1m]", "[4h]"))
    world.run(10, ok=1, failed=0)
    assert world.monitor.history.memory.retention == 4 * 3600 + 600
    (tmp_path / "rules.yaml").write_text(RULES)
    world.run(10, ok=1, failed=0)
    assert world.monitor.history.memory.retention == 2 * 3600


def test_a_service_that_breaks_sampling_does_not_stop_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = World(tmp_path)
    world.deploy("api")  # sampled first
    world.router.broken = {"api"}
    fire(world)
    failures = [r for r in caplog.records if "sample of api failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None  # once, with traceback
    text = world.monitor.exposition()
    assert 'zerodown_monitor_errors_total{scope="api",stage="sample"} 18\n' in text
