"""Signing a browser in to the dashboard, through real HTTP from a real controller.

``zerodown dashboard`` prints a one-time link; opening it sets an HttpOnly, SameSite=Strict
session cookie that pages and the JSON API accept. With the cookie, a request that changes
something needs the ``X-Zerodown-Action`` header and, if an ``Origin`` is sent, this server's.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.fixtures.zerodown import Controller

pytestmark = pytest.mark.integration


def _sign_in(controller: Controller) -> tuple[str, httpx.Client]:
    link = controller.env.cli("dashboard", "--json")
    assert link.code == 0, link.stderr
    url = link.json()["url"]
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}"
    assert parts.path == "/login" and parts.query.startswith("code=")
    client = httpx.Client(base_url=base, timeout=10, follow_redirects=False)
    response = client.get(f"/login?{parts.query}")
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "zerodown_session=" in cookie
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/"):
        assert attribute.lower() in cookie.lower(), cookie
    token = (controller.env.home / "token").read_text().strip()
    assert token not in url and token not in cookie
    # The link works once.
    again = httpx.get(f"{base}/login?{parts.query}", timeout=10, follow_redirects=False)
    assert again.status_code == 401 and "does not work" in again.text
    return base, client


def test_a_one_time_link_signs_the_browser_in_for_pages_and_the_api(
    controller: Controller,
) -> None:
    base, client = _sign_in(controller)
    with closing(client):
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
        assert page.headers["x-frame-options"] == "DENY"
        assert "No services yet" in page.text
        assert client.get("/v1/services").json() == {"services": []}
        assert client.get("/static/dashboard.js").status_code == 200

        # Changing something with the cookie alone is refused (CSRF defence) ...
        refused = client.post("/v1/services/demo/pause", json={})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
        foreign = client.post(
            "/v1/services/demo/pause",
            json={},
            headers={"X-Zerodown-Action": "pause", "Origin": "http://evil.example"},
        )
        assert foreign.status_code == 403 and "another origin" in foreign.json()["error"]["message"]
        # ... and goes through with the header from this origin (no such service: 404).
        allowed = client.post(
            "/v1/services/demo/pause",
            json={},
            headers={"X-Zerodown-Action": "pause", "Origin": base},
        )
        assert allowed.status_code == 404, allowed.text

        # A forged or altered cookie is nobody's.
        value = client.cookies["zerodown_session"]
        expiry, session, signature = value.split(".")
        forged = httpx.get(
            f"{base}/v1/services",
            cookies={"zerodown_session": f"{int(expiry) + 1000}.{session}.{signature}"},
            timeout=10,
        )
        assert forged.status_code == 401

        # A session cannot mint login codes for itself: only the token can.
        minted = client.post(
            "/v1/login-codes", json={}, headers={"X-Zerodown-Action": "login", "Origin": base}
        )
        assert minted.status_code == 403 and minted.json()["error"]["code"] == "forbidden"

        out = client.post("/logout", headers={"X-Zerodown-Action": "logout"})
        assert out.status_code == 200 and "Signed out" in out.text
        assert "zerodown_session" not in client.cookies
        assert client.get("/").status_code == 401
        # A copy of the cookie taken before signing out is refused as well.
        copied = httpx.get(f"{base}/v1/services", cookies={"zerodown_session": value}, timeout=10)
        assert copied.status_code == 401


def test_pages_escape_what_users_wrote(controller: Controller, tmp_path: Path) -> None:
    """A version label with markup shows as text on every page that prints it."""
    env = controller.env
    spec = env.write_spec(tmp_path, replicas=1)
    label = "<img src=x onerror=alert(1)>"
    result = env.cli("up", str(spec), "--version", label)
    assert result.code == 0, result.stderr
    _, client = _sign_in(controller)
    with closing(client):
        for path in ("/", "/services/demo", "/services/demo/history"):
            text = client.get(path).text
            assert label not in text, path
            assert "&lt;img src=x onerror=alert(1)&gt;" in text, path
        report = client.get("/services/demo/releases/1/report")
        assert report.status_code == 200
        assert "<img src=x" not in report.text
        chart = client.get("/services/demo/releases/1/chart.svg")
        assert chart.status_code == 200 and chart.headers["content-type"] == "image/svg+xml"
        unknown = client.get("/services/demo/releases/99/report")
        assert unknown.status_code == 400 and "has no revision 99" in unknown.text
        assert client.get("/services/nosuch").status_code == 404


def test_day_two_pages_show_empty_states_and_escape_what_users_wrote(
    controller: Controller, tmp_path: Path
) -> None:
    """Incidents, alerts and backups pages with nothing to show; a silence comment with markup
    shows as text; unknown or malformed incident ids are 404, a bad service filter 400."""
    env = controller.env
    spec = env.write_spec(tmp_path, replicas=1)
    assert env.cli("up", str(spec), "--version", "v1").code == 0
    comment = "<script>alert(1)</script> maintenance"
    added = env.cli(
        "silence", "add", 'service="demo"', "--duration", "1h", "--comment", comment, "--json"
    )
    assert added.code == 0, added.stderr
    _, client = _sign_in(controller)
    with closing(client):
        incidents = client.get("/incidents")
        assert incidents.status_code == 200
        assert "script-src 'self'" in incidents.headers["content-security-policy"]
        assert "No incidents recorded" in incidents.text
        assert "No open incidents" in client.get("/incidents?open=1&service=demo").text
        alerts = client.get("/alerts")
        assert alerts.status_code == 200 and "No alert is pending or firing" in alerts.text
        assert comment not in alerts.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; maintenance" in alerts.text
        assert 'data-post="/v1/silences/' in alerts.text  # its Expire button
        backups = client.get("/backups")
        assert backups.status_code == 200
        assert "No service's spec names a backup target" in backups.text
        for path in ("/incidents/7", "/incidents/x1", "/incidents/0"):
            missing = client.get(path)
            assert missing.status_code == 404, path
            assert "Not found" in missing.text
        bad = client.get("/incidents?service=Not_A_Name")
        assert bad.status_code == 400 and "a service name matches" in bad.text
        overview = client.get("/").text
        for href in ("/incidents", "/alerts", "/backups"):
            assert f'href="{href}"' in overview
