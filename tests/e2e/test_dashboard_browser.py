"""The dashboard in a real headless Chromium, against a real controller, proxy and instances.

A canary with manual pauses lets the test watch the weights move on the live page (pushed by
the SSE stream, the page never reloads), then the Abort button sends all traffic back to the
stable release. Every page is saved as a screenshot; the folder is printed at the end
(``tests/artifacts/screenshots/`` unless ``ZERODOWN_SCREENSHOTS`` names another).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require_component
from tests.fixtures.net import free_port
from tests.fixtures.zerodown import REPO, Controller, wait_until

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
    for old in shots.glob("*.png"):
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
    saved = sorted(p.name for p in shots.glob("*.png"))
    assert len(saved) == 7, saved
    print(f"\nscreenshots of every page: {shots}")
