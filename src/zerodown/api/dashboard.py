"""The web dashboard: server-rendered pages over the same ``Zerodown`` the JSON API serves.

Pages (``BROWSER_ROUTES``): the services with their current release (``/``), a live page per
service (``/services/{name}``: weights, step, instances, charts, verdicts, promote / pause /
resume / abort / rollback), its release history with a link to each report, and each report
rendered as HTML. Day-2 pages: the incidents with their MTTD / MTTR medians and p90
(``/incidents``) and one incident's lifecycle, impact and postmortem (``/incidents/{id}``:
acknowledge / resolve / write the postmortem draft); the alerts firing or pending and the
silences (``/alerts``: silence one alert for an hour, expire a silence); the backup targets and
catalogue of every service (``/backups``: verify a backup). The overview sums these up.

The live page draws the first frame on the server and then follows the service's SSE stream
(``api/sse.py``) with a little plain JavaScript. Every button calls the JSON API (with the
``X-Zerodown-Action`` header the session cookie needs); the day-2 pages then reload.

Nothing is fetched from elsewhere: templates and the static CSS/JS ship in the package. Every
value is escaped (Jinja autoescape; report Markdown rendered with raw HTML off) and pages carry
a Content-Security-Policy that allows only this server's own scripts and styles. Pages need the
session cookie of ``/login`` (see ``api/session.py``) or the bearer token.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markdown_it import MarkdownIt
from markdown_it.token import Token
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from zerodown.api.openapi import MAX_ID, SERVICE_NAME_PATTERN
from zerodown.api.session import COOKIE_NAME, BrowserSessions
from zerodown.api.sse import TrafficWindow, live_snapshot
from zerodown.core.errors import InputError, NotFoundError, ZerodownError
from zerodown.incidents.lifecycle import SEVERITY_MEANINGS, STAGE_SEED_WORDS, STAGES
from zerodown.incidents.stats import time_to_detect, time_to_recover
from zerodown.report import render_markdown, render_svg
from zerodown.service import Zerodown
from zerodown.store.incidents import IncidentRecord

__all__ = [
    "BROWSER_ROUTES",
    "STATIC_PATH",
    "dashboard_routes",
    "incident_timeline",
    "markdown_to_html",
    "silence_matchers",
]

log = logging.getLogger(__name__)

# Every browser route (method, path). They are pages, not the API: the OpenAPI document leaves
# them out, and the API contract test checks that every other route is in it.
BROWSER_ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/"),
    ("GET", "/services/{name}"),
    ("GET", "/services/{name}/history"),
    ("GET", "/services/{name}/releases/{revision}/report"),
    ("GET", "/services/{name}/releases/{revision}/chart.svg"),
    ("GET", "/incidents"),
    ("GET", "/incidents/{id}"),
    ("GET", "/alerts"),
    ("GET", "/backups"),
    ("GET", "/login"),
    ("POST", "/logout"),
)
STATIC_PATH = "/static"  # the package's CSS and JavaScript, public like any web page's assets

_STATIC_DIR = Path(__file__).parent / "static"
_NAME = re.compile(SERVICE_NAME_PATTERN)
_MAX_REPORT_BYTES = 4 * 1024 * 1024
_EVENTS_SHOWN = 40
_HISTORY_LIMIT = 100
_QUIET_EVENTS = frozenset({"rollout.sample"})  # figures for charts and reports, not lines to read
_INCIDENTS_SHOWN = 200
_BACKUPS_SHOWN = 50  # catalogue rows per service
_EXPIRED_SILENCES_SHOWN = 20
SILENCE_SECONDS = 3600.0  # the alerts page's "Silence 1 h"

PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_SVG_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

ACTIONS = ("promote", "pause", "resume", "abort", "rollback")


# --- report Markdown to HTML ----------------------------------------------------------------


def markdown_to_html(text: str, *, chart_url: str | None) -> str:
    """A report's Markdown as HTML: raw HTML in it is shown as text, unsafe link schemes are
    dropped, and the chart image points at ``chart_url`` (other images become their alt text).
    """
    md = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")

    def image(renderer: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        alt = "".join(child.content for child in token.children or [])
        src = str(token.attrGet("src") or "")
        if chart_url is not None and src.endswith(".svg") and "/" not in src:
            return f'<img class="report-chart" src="{_attr(chart_url)}" alt="{_attr(alt)}">'
        return f"<em>{_attr(alt)}</em>"

    md.add_render_rule("image", image)
    return str(md.render(text))


def _attr(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


# --- the alerts, incidents and backups sections -----------------------------------------------


@dataclass(frozen=True)
class OpsSection:
    """One section of the overview: rows when the controller has the feature, else a note.
    The second cell of a row is drawn as a badge; ``links`` (one per row, or empty) make the
    first cell a link."""

    title: str
    configured: bool
    note: str
    columns: tuple[str, ...] = ()
    rows: Sequence[tuple[str, ...]] = ()
    links: Sequence[str] = ()
    empty: str = "none"
    href: str = ""  # the page with all of it


def ops_sections(zd: Zerodown) -> list[OpsSection]:
    """Alerts, incidents and backups as far as this controller knows them, in short: the
    incidents, alerts and backups pages have the rest."""
    return [_alerts_section(zd), _incidents_section(zd), _backups_section(zd)]


_SHOWN_ROWS = 8


def _alerts_section(zd: Zerodown) -> OpsSection:
    try:
        data = zd.alerts()
    except ZerodownError as exc:
        return OpsSection(title="Alerts", configured=False, note=exc.message, href="/alerts")
    alerts = data.get("alerts", [])
    now = zd.clock.now()
    rows = [
        (
            f"{alert.get('name', '')} · "
            + str((alert.get("labels") or {}).get("service") or alert.get("scope") or ""),
            str(alert.get("state", "")),
            _ago(alert.get("fired_at") or alert.get("active_at"), now),
        )
        for alert in alerts[:_SHOWN_ROWS]
    ]
    errors = data.get("errors") or []
    notes = [f"{len(alerts)} in all." if len(alerts) > len(rows) else ""]
    notes.append(f"{len(errors)} rule(s) failed to evaluate." if errors else "")
    return OpsSection(
        title="Alerts",
        configured=True,
        href="/alerts",
        note=" ".join(n for n in notes if n),
        columns=("Alert · service", "State", "Since"),
        rows=rows,
        empty="No alert is pending or firing.",
    )


def _incidents_section(zd: Zerodown) -> OpsSection:
    try:
        records = zd.incidents.list(open_only=False, limit=_SHOWN_ROWS)
    except ZerodownError as exc:
        return OpsSection(title="Incidents", configured=False, note=exc.message, href="/incidents")
    now = zd.clock.now()
    rows = [
        (f"INC-{r.id} {r.severity}", r.stage, r.service, _ago(r.detected_at.isoformat(), now))
        for r in records
    ]
    return OpsSection(
        title="Incidents",
        configured=True,
        href="/incidents",
        note="",
        columns=("Incident", "Stage", "Service", "Detected"),
        rows=rows,
        links=[f"/incidents/{r.id}" for r in records],
        empty="No incidents recorded.",
    )


def _backups_section(zd: Zerodown) -> OpsSection:
    rows: list[tuple[str, ...]] = []
    now = zd.clock.now()
    for service in zd.services():
        try:
            targets = zd.backup_targets(service.name)
        except ZerodownError:
            continue  # no target in this service's spec (or no catalogue): nothing to show
        for target in (_target_row(t, now) for t in targets):
            newest = target.get("newest_good") or {}
            rows.append(
                (
                    f"{service.name} / {target.get('target', '')}",
                    "too old" if target["overdue"] else "ok" if newest else "none",
                    f"#{newest['id']}" if newest else "—",
                    _ago(newest.get("finished_at") or newest.get("started_at"), now),
                )
            )
    if not rows:
        return OpsSection(
            title="Backups",
            configured=False,
            note="No service's spec names a backup target.",
            href="/backups",
        )
    return OpsSection(
        title="Backups",
        configured=True,
        href="/backups",
        note=f"{len(rows)} targets in all." if len(rows) > _SHOWN_ROWS else "",
        columns=("Target", "Status", "Newest good", "Finished"),
        rows=rows[:_SHOWN_ROWS],
        empty="No backups yet.",
    )


# --- what the incidents, alerts and backups pages show ------------------------------------------


@dataclass(frozen=True)
class TimelineStep:
    """One stage of an incident's lifecycle as its page draws it: ``done`` (reached),
    ``skipped`` (a later stage was reached without it), ``next`` or ``later``."""

    stage: str
    words: str  # the seed's word for this step of incident response
    state: str
    at: datetime | None = None
    who: str = ""
    note: str = ""
    after_detection: float | None = None  # seconds from detection to this stage


def incident_timeline(record: IncidentRecord) -> list[TimelineStep]:
    """Every lifecycle stage of ``record`` in order, reached or not."""
    current = STAGES.index(record.stage)
    steps = []
    for index, stage in enumerate(STAGES):
        reached = record.reached(stage)
        if reached is not None:
            steps.append(
                TimelineStep(
                    stage=stage,
                    words=STAGE_SEED_WORDS[stage],
                    state="done",
                    at=reached.at,
                    who=reached.who,
                    note=reached.note or "",
                    after_detection=(reached.at - record.detected_at).total_seconds(),
                )
            )
            continue
        state = "skipped" if index < current else "next" if index == current + 1 else "later"
        steps.append(TimelineStep(stage=stage, words=STAGE_SEED_WORDS[stage], state=state))
    return steps


@dataclass(frozen=True)
class IncidentRow:
    record: IncidentRecord
    detect_s: float | None  # time to detect; None when the start of the impact is unknown
    recover_s: float | None  # time to recover; None while not recovered


def silence_matchers(labels: Mapping[str, str]) -> list[str]:
    """Matchers that select exactly the alert with ``labels``: each label, equal, quoted."""
    return [
        f"{name}={json.dumps(str(value), ensure_ascii=False)}"
        for name, value in sorted(labels.items())
    ]


def _silence_request(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The body of ``POST /v1/silences`` that mutes ``alert`` for an hour."""
    return {
        "matchers": silence_matchers(alert.get("labels") or {}),
        "duration": SILENCE_SECONDS,
        "comment": f"{alert.get('name', 'alert')} silenced for 1 h from the dashboard",
        "created_by": "dashboard",
    }


def _target_row(target: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """A backup target with the age of its newest good backup and whether that is too old."""
    newest = target.get("newest_good") or {}
    finished = newest.get("finished_at") or newest.get("started_at")
    age = (now - datetime.fromisoformat(finished)).total_seconds() if finished else None
    limit = target.get("max_age_s")
    overdue = limit is not None and (age is None or age > float(limit))
    return {**target, "age_s": age, "overdue": overdue}


def _backup_row(backup: Mapping[str, Any]) -> dict[str, Any]:
    """A catalogue entry with the digest of its first artifact, shortened."""
    artifacts = backup.get("artifacts") or []
    digest = str(artifacts[0].get("sha256") or "")[:12] if artifacts else ""
    return {**backup, "digest": digest, "more_artifacts": max(0, len(artifacts) - 1)}


# --- formatting helpers for templates -----------------------------------------------------


def _when(value: Any) -> str:
    """ISO 8601 or epoch seconds as local ``YYYY-MM-DD HH:MM:SS``."""
    if value is None or value == "":
        return "—"
    try:
        moment = (
            datetime.fromtimestamp(float(value))
            if isinstance(value, int | float)
            else datetime.fromisoformat(str(value))
        )
    except (ValueError, OverflowError, OSError):
        return str(value)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: Any) -> str:
    if value is None:
        return "—"
    seconds = float(value)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _ago(value: Any, now: datetime) -> str:
    """How long before ``now`` an ISO 8601 time was, in one unit: ``40 s ago``, ``3 h ago``."""
    if value is None or value == "":
        return "—"
    try:
        seconds = (now - datetime.fromisoformat(str(value))).total_seconds()
    except (ValueError, TypeError):
        return str(value)
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def _number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{float(value):.{digits}f}"


def _percent(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{100 * float(value):.{digits}f} %"


def _bytes(value: Any) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover - the loop returns


def _status_class(status: Any) -> str:
    text = str(status or "")
    if text in ("succeeded", "running", "pass", "healthy", "ok", "recovered", "reviewed"):
        return "good"
    if text in (
        "failed",
        "rolled_back",
        "crashed",
        "fail",
        "unhealthy",
        "error",
        "firing",
        "corrupted",
        "too old",
        "detected",
        "SEV1",
        "SEV2",
    ):
        return "bad"
    if text in (
        "progressing",
        "pending",
        "paused",
        "starting",
        "draining",
        "inconclusive",
        "assessed",
        "mitigated",
        "active",
        "SEV3",
    ):
        return "busy"
    return "quiet"


def _step_text(step: Mapping[str, Any]) -> str:
    if "setWeight" in step:
        return f"weight {step['setWeight']} %"
    if "pause" in step:
        duration = (step.get("pause") or {}).get("duration")
        return f"pause {_seconds(duration)}" if duration is not None else "pause until promote"
    if "analysis" in step:
        return "analysis"
    return ", ".join(str(k) for k in step)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("zerodown.api", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=_when,
        seconds=_seconds,
        number=_number,
        percent=_percent,
        bytes=_bytes,
        status_class=_status_class,
        step_text=_step_text,
    )
    return env


# --- the routes -------------------------------------------------------------------------------


class _Pages:
    def __init__(
        self,
        zd: Zerodown,
        sessions: BrowserSessions,
        error_status: Callable[[ZerodownError], int],
    ) -> None:
        self.zd = zd
        self.sessions = sessions
        self.error_status = error_status
        self.env = _environment()

    def html(self, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        text = self.env.get_template(template).render(static=STATIC_PATH, **context)
        return HTMLResponse(text, status_code=status, headers=PAGE_HEADERS)

    def page(self, render: Callable[[Request], Response]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if self.sessions.check(request) is not None:
                return self.html("signin.html", status=401, reason="signed_out")
            try:
                return await run_in_threadpool(render, request)
            except ZerodownError as exc:
                return self.html("error.html", status=self.error_status(exc), error=exc.to_dict())
            except Exception as exc:  # a bug: the traceback to the log, a page to the user
                log.exception("GET %s failed", request.url.path)
                error = {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}
                return self.html("error.html", status=500, error=error)

        return endpoint

    # pages ---------------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        services = self.zd.services()
        return self.html(
            "overview.html",
            title="Services",
            nav="services",
            services=services,
            sections=ops_sections(self.zd),
        )

    def live(self, request: Request) -> Response:
        name = _name(request)
        view = self.zd.live(name)
        snapshot = live_snapshot(view, TrafficWindow(), now=time.time())
        events: list[dict[str, Any]] = []
        if view.release is not None:
            events = self.zd.events(name, revision=int(view.release["revision"]), limit=100_000)
        cursor = max((int(e["id"]) for e in events), default=0)
        shown = [e for e in events if e["kind"] not in _QUIET_EVENTS][-_EVENTS_SHOWN:]
        return self.html(
            "live.html",
            title=name,
            service=view.service,
            snapshot=snapshot,
            events=list(reversed(shown)),
            page_data={"service": name, "cursor": cursor, "snapshot": snapshot},
            actions=ACTIONS,
        )

    def history(self, request: Request) -> Response:
        name = _name(request)
        releases = self.zd.history(name, limit=_HISTORY_LIMIT)
        reports = {r.revision: self.zd.reports_of(name, r.revision) for r in releases}
        return self.html(
            "history.html",
            title=f"{name} history",
            name=name,
            releases=releases,
            reports=reports,
        )

    def report(self, request: Request) -> Response:
        name = _name(request)
        revision = _revision(request)
        written = self.zd.reports_of(name, revision)
        source = written[-1] if written else None
        markdown: str | None = None
        note = ""
        if source is not None:
            markdown = _read_report(Path(source["markdown"]))
            if markdown is None:
                note = (
                    f"The report file {source['markdown']} cannot be read any more; "
                    "this is the report rendered now from the store."
                )
        else:
            note = (
                "No report was written for this release yet; this is the report rendered "
                "now from the store."
            )
        if markdown is None:
            markdown = render_markdown(
                self.zd.report_input(name, revision=revision), lang="en", chart_name="chart.svg"
            )
            source = None
        body = markdown_to_html(
            markdown, chart_url=f"/services/{name}/releases/{revision}/chart.svg"
        )
        return self.html(
            "report.html",
            title=f"{name} revision {revision} report",
            name=name,
            revision=revision,
            body=body,
            source=source,
            older=written[:-1] if source is not None else written,
            note=note,
        )

    def chart(self, request: Request) -> Response:
        name = _name(request)
        revision = _revision(request)
        written = self.zd.reports_of(name, revision)
        svg: str | None = None
        if written and "svg" in written[-1]:
            svg = _read_report(Path(written[-1]["svg"]))
        if svg is None:
            svg = render_svg(self.zd.report_input(name, revision=revision))
        return Response(svg, media_type="image/svg+xml", headers=_SVG_HEADERS)

    def incidents(self, request: Request) -> Response:
        service = _service_filter(request)
        open_only = request.query_params.get("open", "") in ("1", "true")
        records = self.zd.incidents.list(service, open_only=open_only, limit=_INCIDENTS_SHOWN)
        rows = [IncidentRow(r, time_to_detect(r), time_to_recover(r)) for r in records]
        return self.html(
            "incidents.html",
            title="Incidents",
            nav="incidents",
            rows=rows,
            stats=self.zd.incidents.stats(service),
            service=service,
            open_only=open_only,
            services=[s.name for s in self.zd.services()],
            limit=_INCIDENTS_SHOWN,
        )

    def incident(self, request: Request) -> Response:
        record = self.zd.incidents.get(_id(request, "incident"))
        postmortem: str | None = None
        note = ""
        if record.postmortem_path is not None:
            markdown = _read_report(Path(record.postmortem_path))
            if markdown is None:
                note = f"The postmortem file {record.postmortem_path} cannot be read any more."
            else:
                postmortem = markdown_to_html(markdown, chart_url=None)
        return self.html(
            "incident.html",
            title=f"INC-{record.id}",
            nav="incidents",
            incident=record,
            timeline=incident_timeline(record),
            detect_s=time_to_detect(record),
            recover_s=time_to_recover(record),
            meaning=SEVERITY_MEANINGS.get(record.severity, ""),
            postmortem=postmortem,
            postmortem_note=note,
        )

    def alerts(self, request: Request) -> Response:
        try:
            data = self.zd.alerts()
        except ZerodownError as exc:
            return self.html(
                "alerts.html", title="Alerts", nav="alerts", configured=False, note=exc.message
            )
        alerts = [{**a, "silence_request": _silence_request(a)} for a in data.get("alerts", [])]
        silences = self.zd.silences()
        current = [s for s in silences if s["status"]["state"] != "expired"]
        expired = [s for s in silences if s["status"]["state"] == "expired"]
        return self.html(
            "alerts.html",
            title="Alerts",
            nav="alerts",
            configured=True,
            note="",
            alerts=alerts,
            errors=data.get("errors") or [],
            groups=data.get("groups") or [],
            silences=current,
            expired=expired[:_EXPIRED_SILENCES_SHOWN],
            expired_count=len(expired),
        )

    def backups(self, request: Request) -> Response:
        if self.zd.backups is None:
            return self.html(
                "backups.html",
                title="Backups",
                nav="backups",
                configured=False,
                note="This controller's store keeps no backup catalogue.",
            )
        now = self.zd.clock.now()
        groups: list[dict[str, Any]] = []
        without: list[str] = []
        for service in self.zd.services():
            try:
                targets = self.zd.backup_targets(service.name)
            except ZerodownError:
                without.append(service.name)  # its spec names no backup target
                continue
            backups = self.zd.backup_list(service.name, limit=_BACKUPS_SHOWN)
            groups.append(
                {
                    "service": service.name,
                    "targets": [_target_row(t, now) for t in targets],
                    "backups": [_backup_row(b) for b in backups],
                }
            )
        return self.html(
            "backups.html",
            title="Backups",
            nav="backups",
            configured=True,
            note="",
            groups=groups,
            without=without,
            limit=_BACKUPS_SHOWN,
        )

    # sign-in ---------------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        code = request.query_params.get("code", "")
        cookie = self.sessions.redeem(code) if code else None
        if cookie is None:
            return self.html("signin.html", status=401, reason="bad_code")
        response = RedirectResponse("/", status_code=303, headers=PAGE_HEADERS)
        self.sessions.set_cookie(response, cookie)
        return response

    async def logout(self, request: Request) -> Response:
        failure = self.sessions.check(request)
        if failure is not None:
            return self.html("signin.html", status=failure.status, reason="signed_out")
        response = self.html("signin.html", reason="logged_out")
        self.sessions.revoke(request.cookies.get(COOKIE_NAME, ""))
        self.sessions.clear_cookie(response)
        return response


def dashboard_routes(
    zd: Zerodown,
    sessions: BrowserSessions,
    *,
    error_status: Callable[[ZerodownError], int],
) -> list[BaseRoute]:
    """The dashboard's routes (``BROWSER_ROUTES``) and its static files."""
    pages = _Pages(zd, sessions, error_status)
    routes: list[BaseRoute] = [
        Route("/", pages.page(pages.overview), methods=["GET"]),
        Route("/services/{name}", pages.page(pages.live), methods=["GET"]),
        Route("/services/{name}/history", pages.page(pages.history), methods=["GET"]),
        Route(
            "/services/{name}/releases/{revision}/report",
            pages.page(pages.report),
            methods=["GET"],
        ),
        Route(
            "/services/{name}/releases/{revision}/chart.svg",
            pages.page(pages.chart),
            methods=["GET"],
        ),
        Route("/incidents", pages.page(pages.incidents), methods=["GET"]),
        Route("/incidents/{id}", pages.page(pages.incident), methods=["GET"]),
        Route("/alerts", pages.page(pages.alerts), methods=["GET"]),
        Route("/backups", pages.page(pages.backups), methods=["GET"]),
        Route("/login", pages.login, methods=["GET"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Mount(STATIC_PATH, app=StaticFiles(directory=_STATIC_DIR), name="static"),
    ]
    return routes


def _name(request: Request) -> str:
    name = str(request.path_params["name"])
    if not _NAME.fullmatch(name):
        raise InputError(f"name: a service name matches [a-z][a-z0-9-]{{0,39}}, got {name!r}")
    return name


def _service_filter(request: Request) -> str | None:
    name = request.query_params.get("service") or None
    if name is not None and not _NAME.fullmatch(name):
        raise InputError(f"service: a service name matches [a-z][a-z0-9-]{{0,39}}, got {name!r}")
    return name


def _id(request: Request, what: str) -> int:
    raw = str(request.path_params["id"])
    if not re.fullmatch(r"[0-9]{1,16}", raw) or not 1 <= int(raw) <= MAX_ID:
        raise NotFoundError(f"id: no {what} {raw[:40]!r}")
    return int(raw)


def _revision(request: Request) -> int:
    raw = str(request.path_params["revision"])
    if not re.fullmatch(r"[0-9]{1,16}", raw) or not 1 <= int(raw) <= MAX_ID:
        raise NotFoundError(f"revision: no release {raw!r}")
    return int(raw)


def _read_report(path: Path) -> str | None:
    """A file the controller wrote (its path comes from the event log, never from a URL)."""
    try:
        with path.open(encoding="utf-8") as handle:
            return handle.read(_MAX_REPORT_BYTES)
    except (OSError, UnicodeDecodeError):
        return None
