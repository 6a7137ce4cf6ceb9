"""The dashboard in a real headless Chromium, against a real controller, proxy and instances.

A canary with manual pauses lets the test watch the weights move on the live page (pushed by
the SSE stream, the page never reloads), then the Abort button sends all traffic back to the
stable release. A second story fills the day-2 pages with real rows: an erroring canary rolled
back by the judge (an incident with its timeline and impact), a SQLite backup taken through the
CLI, and the "backup too old" alert firing a few seconds later (a critical alert: a second
incident); the browser acknowledges and resolves, writes a postmortem, silences the alert and
verifies the backup. Every page is saved as a screenshot; the folder is printed at the end
(``tests/artifacts/screenshots/`` unless ``ZERODOWN_SCREENSHOTS`` names another).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require_component
from tests.fixtures.net import free_port
from tests.fixtures.zerodown import REPO, Controller, Env, wait_until
from tests.integration.engine.test_rollouts import CANARY as JUDGED_CANARY
from tests.integration.engine.test_rollouts import deploy, service_under_load, spec_text

CHROMIUM = "/usr/bin/chromium"
CANARY = (
    "strategy:\n"
    "  canary:\n"
    "    steps: [{setWeight: 20}, {pause: {}}, {setWeight: 50}, {pause: {}}, {setWeight: 100}]\n"
)


def _screenshot_dir() -> Path:
    folder = Path(os.environ.get("ZERODOWN_SCREENSHOTS") or REPO / "tests/artifacts/screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        require_component("chromium", f"{CHROMIUM} is missing (Debian package chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_component("playwright", "the playwright Python package is not installed")
        raise
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


class Traffic:
    """A light, bounded load on the service (at most ``seconds``), so the charts have lines."""

    def __init__(self, url: str, *, seconds: float = 240, pause: float = 0.02) -> None:
        self.stop = threading.Event()
        self.answers: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, args=(url, seconds, pause), daemon=True)
        self._thread.start()

    def _run(self, url: str, seconds: float, pause: float) -> None:
        deadline = time.monotonic() + seconds
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set() and time.monotonic() < deadline:
                try:
                    version = client.get(url).json().get("version", "?")
                except (httpx.HTTPError, ValueError):
                    version = "error"
                self.answers[version] = self.answers.get(version, 0) + 1
                self.stop.wait(pause)

    def finish(self) -> dict[str, int]:
        self.stop.set()
        self._thread.join(timeout=30)
        return dict(self.answers)


def test_live_page_follows_a_canary_and_abort_rolls_it_back(
    controller: Controller, browser: Any, tmp_path: Path
) -> None:
    env = controller.env
    shots = _screenshot_dir()
    for old in shots.glob("0*.png"):
        old.unlink()
    port = free_port()
    spec = env.write_spec(tmp_path, replicas=1, listen_port=port)
    spec.write_text(spec.read_text() + CANARY)
    assert env.cli("up", str(spec), "--version", "v1").code == 0
    traffic = Traffic(f"http://127.0.0.1:{port}/")
    try:
        started = env.cli("deploy", str(spec), "--version", "v2", "--no-watch")
        assert started.code == 0, started.stderr
        link = env.cli("dashboard", "--json").json()["url"]
        base = link.split("/login", 1)[0]

        context = browser.new_context(viewport={"width": 1360, "height": 900})
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None,
        )
        page.on("dialog", lambda dialog: dialog.accept())  # the Abort button asks first

        # Sign in with the one-time link: it lands on the services overview.
        page.goto(link)
        assert page.url == f"{base}/"
        page.wait_for_selector('#services tr[data-service="demo"]')
        page.screenshot(path=str(shots / "01-overview.png"), full_page=True)

        def weight(revision: int) -> str:
            node = page.query_selector(f'#weights-legend li[data-revision="{revision}"] .weight')
            return node.inner_text() if node else ""

        page.goto(f"{base}/services/demo")
        wait_until(lambda: weight(2) == "20 %", timeout=60, what="the canary at 20 %")
        assert weight(1) == "80 %"
        wait_until(
            lambda: page.inner_text("#live-state") == "live", timeout=20, what="the SSE stream"
        )
        assert page.inner_text("#release-status") == "paused"
        assert "step 2 of 5" in page.inner_text("#step-line")
        page.evaluate("window.notReloaded = true")
        wait_until(
            lambda: page.evaluate(
                "[...document.querySelectorAll('#chart-rate polyline')]"
                ".some(l => l.points.numberOfItems >= 5)"
            ),
            timeout=30,
            what="the request-rate chart to draw five points",
        )
        page.screenshot(path=str(shots / "02-live-canary-20.png"), full_page=True)

        # Promote: the weights move on the open page, pushed by the stream.
        page.click('button[data-action="promote"]')
        wait_until(lambda: weight(2) == "50 %", timeout=30, what="the canary at 50 %")
        assert weight(1) == "50 %"
        assert page.evaluate("window.notReloaded") is True
        assert "promote:" in page.inner_text("#action-result")
        wait_until(
            lambda: "step 4 of 5" in page.inner_text("#step-line"),
            timeout=30,
            what="the second pause",
        )
        page.screenshot(path=str(shots / "03-live-canary-50.png"), full_page=True)

        # Abort: traffic goes back to the stable release, the release is rolled back.
        page.click('button[data-action="abort"]')
        wait_until(
            lambda: "revision 2 v2 rolled_back" in page.inner_text("#latest-release"),
            timeout=60,
            what="the rollback",
        )
        # The page now shows the release serving: revision 1 with all the traffic.
        wait_until(lambda: weight(1) == "100 %", timeout=30, what="all traffic on revision 1")
        assert weight(2) in ("", "0 %")
        assert page.inner_text("#release-status") == "succeeded"
        assert "aborted" in page.inner_text("#latest-release")
        assert page.evaluate("window.notReloaded") is True
        assert page.is_disabled('button[data-action="abort"]')
        events = page.inner_text("#events")
        assert "release.rolled_back" in events and "rollout.abort" in events, events
        page.screenshot(path=str(shots / "04-live-rolled-back.png"), full_page=True)

        history = env.cli("history", "demo", "--json").json()["releases"]
        assert [(r["revision"], r["status"]) for r in history[:2]] == [
            (2, "rolled_back"),
            (1, "succeeded"),
        ]
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).json()["version"] == "v1"

        # History, with a link to each release's report rendered as HTML.
        def report_written() -> bool:
            page.goto(f"{base}/services/demo/history")
            link = page.query_selector('#releases tr[data-revision="2"] a.report-link')
            return link is not None and link.inner_text() == "report"

        wait_until(report_written, timeout=30, what="the report of revision 2")
        page.screenshot(path=str(shots / "05-history.png"), full_page=True)
        page.click('#releases tr[data-revision="2"] a.report-link')
        page.wait_for_selector("article.report h2")
        assert page.url == f"{base}/services/demo/releases/2/report"
        assert "deployment-" in page.inner_text(".page-head")
        page.wait_for_function(
            "document.querySelector('img.report-chart')?.naturalWidth > 0", timeout=15_000
        )
        page.screenshot(path=str(shots / "06-report.png"), full_page=True)
        assert not problems, problems

        # A browser without the session gets the sign-in page, not data.
        stranger = browser.new_context(viewport={"width": 1360, "height": 900})
        other = stranger.new_page()
        response = other.goto(f"{base}/services/demo")
        assert response is not None and response.status == 401
        assert "zerodown dashboard" in other.inner_text("main")
        other.screenshot(path=str(shots / "07-sign-in.png"), full_page=True)
        stranger.close()
        context.close()
    finally:
        answers = traffic.finish()
    assert answers.get("v1", 0) > 0 and answers.get("v2", 0) > 0, answers
    assert answers.get("error", 0) == 0, answers
    saved = sorted(p.name for p in shots.glob("0*.png"))
    assert len(saved) == 7, saved
    print(f"\nscreenshots of every page: {shots}")


# The shipped "backup too old" rule, evaluated every second, firing after one, and only once a
# backup exists (the shipped rule also fires for a target never backed up), so the test decides
# when it fires: a few seconds after its backup, as the target's maxAge is 4 s.
BACKUP_RULES = """groups:
  - name: backups
    interval: 1s
    rules:
      - alert: ZerodownBackupTooOld
        expr: |
          time() - zerodown_backup_last_success_timestamp_seconds
            > on (service, target) zerodown_backup_max_age_seconds
          and on (service, target) zerodown_backup_last_success_timestamp_seconds > 0
        for: 1s
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.service }}: the last backup of {{ $labels.target }} is too old"
"""
# Weekly at a quiet hour: the scheduler takes no backup during the test.
OPS_SECTIONS = """backups:
  targets:
    - {name: db, kind: sqlite, path: ./app.db, schedule: "30 2 * * 0", maxAge: 4s}
monitor:
  interval: 1s
  defaultRules: false
  rules: [rules.yaml]
incidents:
  rollbackSeverity: sev2
"""
OPS_SHOTS = (
    "11-overview-ops.png",
    "12-incidents.png",
    "13-incident-rollback.png",
    "14-incident-alert.png",
    "15-alerts.png",
    "16-backups.png",
)


def _incident_from(env: Env, source: str) -> dict[str, Any] | None:
    listed = env.cli("incident", "list", "--json").json()["incidents"]
    return next((i for i in listed if i["source"].startswith(source)), None)


def _firing(env: Env, name: str) -> bool:
    alerts = env.cli("alerts", "--json").json()["alerts"]
    return any(a["name"] == name and a["state"] == "firing" for a in alerts)


def test_incidents_alerts_and_backups_pages_show_real_rows_and_their_buttons_work(
    controller: Controller, browser: Any, tmp_path: Path
) -> None:
    env = controller.env
    shots = _screenshot_dir()
    for name in OPS_SHOTS:
        (shots / name).unlink(missing_ok=True)
    with sqlite3.connect(tmp_path / "app.db") as db:
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
        db.executemany("INSERT INTO orders (item) VALUES (?)", [(f"item {n}",) for n in range(500)])
    db.close()
    (tmp_path / "rules.yaml").write_text(BACKUP_RULES)

    with service_under_load(controller, tmp_path, JUDGED_CANARY, extra=OPS_SECTIONS) as (
        _,
        load,
        port,
    ):
        taken = env.cli("backup", "run", "shop", "--json")
        assert taken.code == 0, taken.stderr
        [backup] = taken.json()["backups"]
        assert backup["status"] == "succeeded" and backup["target"] == "db"
        bad = spec_text(
            port=port, strategy=JUDGED_CANARY, env={"ERROR_RATE": "0.3"}, extra=OPS_SECTIONS
        )
        code, out = deploy(controller, tmp_path, bad, "v2")
        load.finish()
    assert code == 1 and out["release"]["status"] == "rolled_back", out

    rollback = wait_until(
        lambda: _incident_from(env, "rollback:"), timeout=30, what="the rollback's incident"
    )
    alerted = wait_until(
        lambda: _incident_from(env, "alert:ZerodownBackupTooOld"),
        timeout=60,
        what="the backup-too-old alert's incident",
    )
    assert _firing(env, "ZerodownBackupTooOld")
    assert rollback["stage"] == "recovered" and alerted["stage"] == "detected"

    link = env.cli("dashboard", "--json").json()["url"]
    base = link.split("/login", 1)[0]
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    page.on("dialog", lambda dialog: dialog.accept())  # Resolve and Expire ask first
    try:
        page.goto(link)
        assert page.url == f"{base}/"
        assert "ZerodownBackupTooOld" in page.inner_text("#ops-alerts")
        assert f"INC-{rollback['id']}" in page.inner_text("#ops-incidents")
        assert "shop / db" in page.inner_text("#ops-backups")
        page.screenshot(path=str(shots / "11-overview-ops.png"), full_page=True)

        # Incidents: both, with severity, stage, service and the MTTD / MTTR figures.
        page.click("header nav a[href='/incidents']")
        page.wait_for_selector("#incidents")
        assert page.url == f"{base}/incidents"
        row = page.inner_text(f'#incidents tr[data-incident="{rollback["id"]}"]')
        for text in ("SEV2", "recovered", "shop", "rolled back"):
            assert text in row, row
        row = page.inner_text(f'#incidents tr[data-incident="{alerted["id"]}"]')
        for text in ("SEV2", "detected", "too old"):
            assert text in row, row
        assert page.inner_text("#stat-mttr .median") not in ("", "—")
        assert page.inner_text("#stat-mttd .p90") not in ("", "—")
        page.screenshot(path=str(shots / "12-incidents.png"), full_page=True)

        # The rollback's incident: its timeline, impact, and a postmortem written from here.
        page.click(f'#incidents tr[data-incident="{rollback["id"]}"] a')
        page.wait_for_selector("#timeline")
        for stage in ("detected", "mitigated", "recovered"):
            assert page.get_attribute(f'#timeline li[data-stage="{stage}"]', "class") == "done"
        assert page.get_attribute('#timeline li[data-stage="assessed"]', "class") == "skipped"
        assert "zerodown automatic rollback" in page.inner_text("#timeline")
        impact = page.inner_text("#impact")
        assert "Requests" in impact and "Error rate" in impact, impact
        assert page.is_disabled("button[data-label=acknowledge]")  # it is recovered already
        assert "No postmortem written yet" in page.inner_text("#postmortem")
        page.click("button[data-label=postmortem]")
        page.wait_for_selector("#postmortem article.report h2")
        assert "postmortem draft written to" in page.inner_text("#action-result")
        written = page.inner_text("#postmortem article.report")
        for heading in ("Summary", "Lifecycle", "Impact", "Timeline"):
            assert heading in written
        page.screenshot(path=str(shots / "13-incident-rollback.png"), full_page=True)

        # The alert's incident: Acknowledge moves it to assessed, Resolve to recovered.
        page.goto(f"{base}/incidents/{alerted['id']}")
        assert page.inner_text("#incident-stage") == "detected"
        page.click("button[data-label=acknowledge]")
        wait_until(
            lambda: page.inner_text("#incident-stage") == "assessed",
            timeout=15,
            what="the incident to be assessed",
        )
        assert f"INC-{alerted['id']} is assessed" in page.inner_text("#action-result")
        assessed = page.inner_text('#timeline li[data-stage="assessed"]')
        assert "by dashboard" in assessed, assessed
        assert "ZerodownBackupTooOld" in page.inner_text("#details")
        page.screenshot(path=str(shots / "14-incident-alert.png"), full_page=True)
        page.click("button[data-label=resolve]")
        wait_until(
            lambda: page.inner_text("#incident-stage") == "recovered",
            timeout=15,
            what="the incident to be recovered",
        )
        shown = env.cli("incident", "show", str(alerted["id"]), "--json").json()
        assert [s["stage"] for s in shown["stages"]] == [
            "detected",
            "assessed",
            "mitigated",
            "recovered",
        ]
        assert {s["who"] for s in shown["stages"][1:]} == {"dashboard"}

        # Alerts: the firing alert, silenced for an hour with one click.
        page.click("header nav a[href='/alerts']")
        alert_row = '#alerts tr[data-alert="ZerodownBackupTooOld"]'
        page.wait_for_selector(alert_row)
        row = page.inner_text(alert_row)
        assert "firing" in row and "target=db" in row and "service=shop" in row, row
        page.click(f"{alert_row} button[data-label=silence]")
        page.wait_for_selector("#silences")
        assert "active until" in page.inner_text("#action-result")
        assert "silenced" in page.inner_text(alert_row)
        assert page.is_disabled(f"{alert_row} button[data-label=silence]")
        silences = page.inner_text("#silences")
        assert 'alertname="ZerodownBackupTooOld"' in silences and "active" in silences
        [silence] = env.cli("silence", "list", "--json").json()["silences"]
        assert silence["createdBy"] == "dashboard"
        assert 'target="db"' in silence["matchers_text"]
        page.screenshot(path=str(shots / "15-alerts.png"), full_page=True)

        # Backups: the target overdue (maxAge 4 s), the backup with its digest; Verify works.
        page.click("header nav a[href='/backups']")
        target_row = '#backups-shop tr[data-target="db"]'
        page.wait_for_selector(target_row)
        target = page.inner_text(target_row)
        assert f"#{backup['id']}" in target and "too old" in target and "30 2 * * 0" in target
        backup_row = f'#backups-shop tr[data-backup="{backup["id"]}"]'
        row = page.inner_text(backup_row)
        assert "succeeded" in row and backup["artifacts"][0]["sha256"][:12] in row, row
        page.click(f"{backup_row} button[data-label=verify]")
        wait_until(
            lambda: f"backup #{backup['id']} verified: ok" in page.inner_text("#action-result"),
            timeout=30,
            what="the backup to be verified",
        )
        assert "ok" in page.inner_text(f"{backup_row} .verified")
        page.screenshot(path=str(shots / "16-backups.png"), full_page=True)
        [listed] = env.cli("backup", "list", "shop", "--json").json()["backups"]
        assert listed["verify_status"] == "ok"
        assert listed["verified_at"] > (backup["verified_at"] or ""), (listed, backup)
        assert not problems, problems
    finally:
        context.close()
    missing = [name for name in OPS_SHOTS if not (shots / name).is_file()]
    assert not missing, missing
    print(f"\nscreenshots of every page: {shots}")
