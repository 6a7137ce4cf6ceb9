"""After a bad deployment nobody stopped, the monitor catches it: alert, notifications, incident.

Everything is real: ``zerodown serve``, the proxy, local instances of ``examples/app.py``, an
HTTP webhook receiver and an SMTP server (aiosmtpd) on loopback. A bad version (half of its
answers are 500) is deployed with a canary whose steps have no analysis, so the rollout
succeeds; the service's error-rate rule (the shipped one, with its windows shortened so the
test takes seconds, not minutes) fires; each receiver gets exactly one grouped notification;
a critical alert opens an incident; rolling back resolves the alert, which moves the incident
to recovered; and its postmortem renders with a timeline. A controller restarted while an alert
fires keeps the alert's state, and still recovers its incident when the alert resolves.
"""

from __future__ import annotations

import contextlib
import email
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller as SmtpServer

from tests.fixtures.net import free_port
from tests.fixtures.zerodown import Controller, Env, start_controller, wait_until
from tests.integration.ops.servers import ScriptedServer
from zerodown.ops.alerts import default_rules_text

ROUTING = """
route:
  receiver: team
  group_by: [alertname, service]
  group_wait: 2s
  group_interval: 10s
  repeat_interval: 4h
receivers:
  - name: team
    webhook_configs:
      - url: "{webhook}"
    email_configs:
      - to: ops@example.org
        from: zerodown@example.org
        smarthost: "127.0.0.1:{smtp_port}"
        require_tls: false
"""

MONITOR = """monitor:
  interval: 1s
  defaultRules: false
  rules: [rules.yaml]
  alertmanager: alertmanager.yml
"""

BAD_STRATEGY = """strategy:
  canary:
    steps:
      - setWeight: 50
      - pause: {duration: 1s}
      - setWeight: 100
"""


def fast_default_rules() -> str:
    """The shipped rules, evaluated every second over 20 s windows, firing after 5 s."""
    text = default_rules_text()
    for old, new in (
        ("- name: zerodown", "- name: fast"),
        ("interval: 30s", "interval: 1s"),
        ("[5m]", "[20s]"),
        ("for: 2m", "for: 5s"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


class Inbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


class Load:
    """Requests to the service from a thread, about 50 a second, until stopped (at most 4 min)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 240
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    client.get(self.url)
                self.sent += 1
                self._stop.wait(0.02)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _payloads(server: ScriptedServer) -> list[dict[str, Any]]:
    return [json.loads(seen.body) for seen in server.seen if seen.method == "POST"]


def _incidents(env: Env) -> list[dict[str, Any]]:
    result = env.cli("incident", "list", "demo", "--json")
    assert result.code == 0, result.stderr
    return list(result.json()["incidents"])


def test_a_bad_version_fires_the_error_rate_rule_notifies_once_and_opens_an_incident(
    controller: Controller, tmp_path: Path
) -> None:
    env = controller.env
    inbox = Inbox()
    smtp = SmtpServer(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        with ScriptedServer() as webhook:
            (tmp_path / "rules.yaml").write_text(fast_default_rules())
            (tmp_path / "alertmanager.yml").write_text(
                ROUTING.format(webhook=f"{webhook.url}/alerts", smtp_port=smtp.port)
            )
            spec = env.write_spec(tmp_path, replicas=2)
            good = spec.read_text() + MONITOR
            spec.write_text(good)
            up = env.cli("up", str(spec), "--version", "v1")
            assert up.code == 0, up.stderr
            listen = env.cli("status", "demo", "--json").json()["listen"]

            bad = tmp_path / "bad.yaml"
            bad.write_text(
                good.replace("replicas: 2\n", 'replicas: 2\nenv:\n  ERROR_RATE: "0.5"\n')
                + BAD_STRATEGY
            )
            with Load(f"http://{listen}/") as load:
                deployed = env.cli("deploy", str(bad), "--version", "v2")
                assert deployed.code == 0, deployed.stdout + deployed.stderr
                history = env.cli("history", "demo", "--json").json()["releases"]
                assert (history[0]["version"], history[0]["status"]) == ("v2", "succeeded")

                wait_until(lambda: _payloads(webhook), timeout=120, what="the webhook notification")
                wait_until(lambda: inbox.messages, timeout=30, what="the e-mail notification")
                opened = wait_until(lambda: _incidents(env), timeout=30, what="an incident to open")
                state = env.cli("alerts", "--json").json()
                firing = [a for a in state["alerts"] if a["state"] == "firing"]
                assert [a["name"] for a in firing] == ["ZerodownHighErrorRate"]
                [group] = state["groups"]
                assert group["scope"] == "demo" and group["receiver"] == "team"

                def flushed_again() -> bool:
                    [now] = env.cli("alerts", "--json").json()["groups"]
                    return bool(now["nextFlush"] != group["nextFlush"])

                # The group flushes again 10 s later: the alert still fires, nothing new to say.
                wait_until(flushed_again, timeout=60, what="the group's next flush")

                [notice] = _payloads(webhook)
                assert notice["status"] == "firing" and notice["version"] == "4"
                assert notice["groupLabels"] == {
                    "alertname": "ZerodownHighErrorRate",
                    "service": "demo",
                }
                assert notice["groupKey"].endswith(
                    '{alertname="ZerodownHighErrorRate", service="demo"}'
                )
                [alert] = notice["alerts"]
                assert alert["labels"]["severity"] == "critical"
                assert "of requests fail" in alert["annotations"]["summary"]
                [mail] = inbox.messages
                assert (
                    "[FIRING:1]" in mail["Subject"] and "ZerodownHighErrorRate" in mail["Subject"]
                )
                assert "of requests fail" in mail.get_payload()

                [incident] = opened
                assert incident["source"] == "alert:ZerodownHighErrorRate"
                assert incident["key"] == alert["fingerprint"]
                assert incident["severity"] == "SEV2" and incident["open"]

                rolled = env.cli("rollback", "demo")
                assert rolled.code == 0, rolled.stderr

                def recovered() -> dict[str, Any] | None:
                    shown = env.cli("incident", "show", str(incident["id"]), "--json").json()
                    return shown if shown["stage"] == "recovered" else None

                done = wait_until(recovered, timeout=120, what="the incident to recover")
                assert load.sent > 0
            stages = [s["stage"] for s in done["stages"]]
            assert stages == ["detected", "recovered"]
            assert all(s["who"] == "zerodown monitor" for s in done["stages"])

            # The webhook is told of the resolution at the group's next flush (every 10 s);
            # flushes while the alert fired said nothing new, so nothing was sent then.
            wait_until(
                lambda: len(_payloads(webhook)) == 2, timeout=60, what="the resolved notification"
            )
            statuses = [p["status"] for p in _payloads(webhook)]
            assert statuses == ["firing", "resolved"]
            assert len(inbox.messages) == 1  # e-mail is not (send_resolved is false for it)

            written = env.cli("incident", "postmortem", str(incident["id"]), "--json")
            assert written.code == 0, written.stderr
            markdown = written.json()["markdown"]
            assert "## Timeline" in markdown
            assert "**incident detected**" in markdown and "**incident recovered**" in markdown
            assert "`alert.firing`" in markdown and "`alert.resolved`" in markdown
            assert "ZerodownHighErrorRate" in markdown
            events = [e["kind"] for e in env.cli("events", "demo", "--json").json()["events"]]
            assert (
                events.count("alert.notified") == 3
            )  # webhook and e-mail firing, webhook resolved
    finally:
        smtp.stop()


WEBHOOK_ROUTING = """
route:
  receiver: team
  group_by: [alertname, service]
  group_wait: 2s
  group_interval: 5s
  repeat_interval: 4h
receivers:
  - name: team
    webhook_configs:
      - url: "{webhook}"
"""


def test_an_incident_of_an_alert_firing_at_a_restart_recovers_when_the_alert_resolves(
    controller: Controller, tmp_path: Path
) -> None:
    """The controller stops while a critical alert fires and its load stops too; the restarted
    controller takes the alert's state back (it does not fire a second time) and, once the
    rule finds nothing, resolves it, notifies the resolution and recovers the incident."""
    env = controller.env
    with ScriptedServer() as webhook:
        (tmp_path / "rules.yaml").write_text(fast_default_rules())
        (tmp_path / "alertmanager.yml").write_text(
            WEBHOOK_ROUTING.format(webhook=f"{webhook.url}/alerts")
        )
        spec = env.write_spec(tmp_path, replicas=2)
        good = spec.read_text() + MONITOR
        spec.write_text(good)
        assert env.cli("up", str(spec), "--version", "v1").code == 0
        listen = env.cli("status", "demo", "--json").json()["listen"]
        bad = tmp_path / "bad.yaml"
        bad.write_text(
            good.replace("replicas: 2\n", 'replicas: 2\nenv:\n  ERROR_RATE: "0.5"\n') + BAD_STRATEGY
        )
        with Load(f"http://{listen}/"):
            deployed = env.cli("deploy", str(bad), "--version", "v2")
            assert deployed.code == 0, deployed.stdout + deployed.stderr
            [incident] = wait_until(lambda: _incidents(env), timeout=120, what="an incident")
            wait_until(lambda: _payloads(webhook), timeout=30, what="the firing notification")

        assert env.cli("shutdown", "--json").code == 0
        controller.process.wait(timeout=60)
        restarted = start_controller(env)
        try:

            def recovered() -> dict[str, Any] | None:
                shown = env.cli("incident", "show", str(incident["id"]), "--json").json()
                return shown if shown["stage"] == "recovered" else None

            done = wait_until(recovered, timeout=120, what="the incident to recover")
            assert done["stages"][-1]["note"] == "alert ZerodownHighErrorRate resolved"
            wait_until(
                lambda: len(_payloads(webhook)) == 2, timeout=60, what="the resolved notification"
            )
            assert [p["status"] for p in _payloads(webhook)] == ["firing", "resolved"]
            events = [e["kind"] for e in env.cli("events", "demo", "--json").json()["events"]]
            assert events.count("alert.firing") == 1 and events.count("alert.resolved") == 1
        finally:
            env.cli("shutdown", "--all", timeout=120)
            restarted.process.wait(timeout=60)


def test_silences_from_the_cli_survive_a_controller_restart(
    controller: Controller, tmp_path: Path
) -> None:
    """``zerodown silence add|list|expire``; the silence is still there after a restart."""
    env = controller.env
    added = env.cli(
        "silence", "add", 'service="demo"', "alertname=~High.*", "--duration", "2h",
        "--comment", "maintenance", "--json",
    )  # fmt: skip
    assert added.code == 0, added.stderr
    silence = added.json()["silence"]
    assert silence["matchers_text"] == ['service="demo"', 'alertname=~"High.*"']
    assert silence["status"]["state"] == "active" and silence["comment"] == "maintenance"

    bad = env.cli("silence", "add", "service=~.*", "--comment", "x", "--json")
    assert bad.code == 2 and bad.json()["error"]["code"] == "bad_input"
    assert env.cli("silence", "add", "a=b", "--comment", "x", "--duration", "soon").code == 2

    assert env.cli("shutdown", "--json").code == 0
    controller.process.wait(timeout=60)
    restarted = start_controller(env)
    try:
        listed = env.cli("silence", "list", "--json").json()["silences"]
        assert [s["id"] for s in listed] == [silence["id"]]
        expired = env.cli("silence", "expire", silence["id"], "--json")
        assert expired.code == 0 and expired.json()["silence"]["status"]["state"] == "expired"
        assert env.cli("silence", "list", "--json").json()["silences"] == []
        every = env.cli("silence", "list", "--all", "--json").json()["silences"]
        assert [s["status"]["state"] for s in every] == ["expired"]
        again = env.cli("silence", "expire", silence["id"], "--json")
        assert again.code == 2
        unknown = env.cli("silence", "expire", "no-such-id", "--json")
        assert unknown.code == 2 and unknown.json()["error"]["code"] == "not_found"
        text = env.cli("silence", "list", "--all")
        assert "maintenance" in text.stdout and "expired" in text.stdout
    finally:
        env.cli("shutdown", "--all", timeout=120)
        restarted.process.wait(timeout=60)


def test_metrics_shows_each_version_s_traffic_and_instances(
    controller: Controller, tmp_path: Path
) -> None:
    env = controller.env
    spec = env.write_spec(tmp_path, replicas=2)
    spec.write_text(spec.read_text() + "monitor:\n  interval: 1s\n")
    assert env.cli("up", str(spec), "--version", "v1").code == 0
    listen = env.cli("status", "demo", "--json").json()["listen"]
    with httpx.Client(timeout=5) as client:
        for _ in range(40):
            client.get(f"http://{listen}/")
        for _ in range(10):
            client.get(f"http://{listen}/status/503")

    def counted() -> dict[str, Any] | None:
        data = env.cli("metrics", "demo", "--since", "5m", "--json").json()
        v1 = data["versions"].get("v1")
        return data if v1 and v1["window"]["requests"] == 50 else None

    data = wait_until(counted, timeout=60, what="the monitor to count 50 requests")
    window = data["versions"]["v1"]["window"]
    assert window["error_rate"] == 0.2 and window["availability"] == 1.0
    assert window["latency_p95_s"] is not None and window["latency_p95_s"] > 0
    assert {i["version"] for i in data["instances"]} == {"v1"} and len(data["instances"]) == 2
    assert all(i["healthy"] for i in data["instances"])
    shown = env.cli("metrics", "demo", "--since", "5m")
    assert shown.code == 0 and "20.00 %" in shown.stdout and "healthy" in shown.stdout
    assert env.cli("metrics", "nosuch", "--json").code == 2
    assert env.cli("metrics", "demo", "--since", "yesterday").code == 2
    alerts = env.cli("alerts", "--json").json()
    assert alerts["alerts"] == [] and alerts["errors"] == []
