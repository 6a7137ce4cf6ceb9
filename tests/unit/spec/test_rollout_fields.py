"""The ``notify``, ``deploy`` and ``traffic.canaryMatch`` sections and the 30 s stop grace:
what they default to, what written values become, and every mistake reported once at its line
with its field path, like the rest of the spec."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from textwrap import dedent

import pytest

from zerodown.core.errors import SpecError, SpecProblem
from zerodown.spec import ServiceSpec, parse_spec, template_text
from zerodown.spec.models import WEEKDAYS, CanaryMatchRule, DeployWindow, NotifySpec

MINIMAL = "service: web\nrun:\n  command: python app.py\n"

FULL = MINIMAL + dedent(
    """\
    notify:
      webhooks: [http://127.0.0.1:9000/hook, "https://hooks.example.com/zd?x=1"]
      on: [rolled_back, failed, succeeded]
      timeout: 2s
    deploy:
      windows:
        - {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00", timezone: "Europe/Berlin"}
        - {days: [sat], start: "22:00", end: "02:00"}
        - {days: [sun]}
      freezes:
        - {start: "2026-12-20T00:00:00Z", end: "2027-01-04T00:00:00Z", reason: "year-end freeze"}
        - {start: 2027-03-01T08:00:00+01:00, end: 2027-03-01T12:00:00+01:00}
    traffic:
      canaryMatch:
        - {header: X-Canary, value: "1"}
        - {cookie: beta, value: "yes"}
        - {header: X-Beta, value: 1}
    """
)


def spec_of(text: str) -> ServiceSpec:
    return parse_spec(text, filename="zerodown.yaml").spec


def problems_of(text: str) -> list[SpecProblem]:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, filename="zerodown.yaml")
    return caught.value.problems


def test_minimal_spec_gets_the_new_defaults() -> None:
    """No webhooks, no windows (deploy any time), no match rules; a 30 s stop grace."""
    spec = spec_of(MINIMAL)
    assert spec.notify.webhooks == ()
    assert spec.notify.on == ("rolled_back", "failed")
    assert spec.notify.timeout == 5.0
    assert spec.deploy.windows == () and spec.deploy.freezes == ()
    assert spec.traffic.canary_match == ()
    assert spec.run.stop_grace_seconds == 30.0


def test_written_values_become_typed_values() -> None:
    spec = spec_of(FULL)
    assert spec.notify.webhooks == (
        "http://127.0.0.1:9000/hook",
        "https://hooks.example.com/zd?x=1",
    )
    assert spec.notify.on == ("rolled_back", "failed", "succeeded")
    assert spec.notify.timeout == 2.0

    office, overnight, sunday = spec.deploy.windows
    assert office.days == ("mon", "tue", "wed", "thu", "fri")
    assert (office.start, office.end, office.timezone) == ("09:00", "17:00", "Europe/Berlin")
    assert (office.start_minute, office.end_minute, office.wraps) == (540, 1020, False)
    assert office.zone == zoneinfo.ZoneInfo("Europe/Berlin")
    assert (overnight.start, overnight.end, overnight.wraps) == ("22:00", "02:00", True)
    assert overnight.timezone == "UTC"
    assert sunday == DeployWindow(days=("sun",), start="00:00", end="24:00", timezone="UTC")
    assert (sunday.start_minute, sunday.end_minute, sunday.wraps) == (0, 1440, False)

    year_end, maintenance = spec.deploy.freezes
    assert year_end.start == dt.datetime(2026, 12, 20, tzinfo=dt.UTC)
    assert year_end.end == dt.datetime(2027, 1, 4, tzinfo=dt.UTC)
    assert year_end.reason == "year-end freeze"
    # Unquoted YAML timestamps keep their offset and become plain datetimes.
    assert maintenance.start == dt.datetime(2027, 3, 1, 7, tzinfo=dt.UTC)
    assert type(maintenance.start) is dt.datetime
    assert maintenance.start.utcoffset() == dt.timedelta(hours=1)
    assert maintenance.reason is None

    header, cookie, number = spec.traffic.canary_match
    assert (header.kind, header.name, header.value) == ("header", "X-Canary", "1")
    assert (cookie.kind, cookie.name, cookie.value) == ("cookie", "beta", "yes")
    assert number == CanaryMatchRule(header="X-Beta", value="1")  # YAML's 1 read as text


def test_a_window_of_days_only_is_whole_days_and_times_are_normalised() -> None:
    spec = spec_of(MINIMAL + 'deploy:\n  windows:\n    - {start: "9:00", end: "24:00"}\n')
    (window,) = spec.deploy.windows
    assert window.days == WEEKDAYS
    assert (window.start, window.end) == ("09:00", "24:00")


def test_notify_says_which_outcomes_are_sent() -> None:
    quiet = NotifySpec()
    assert not quiet.notifies("rolled_back")  # no webhooks, nobody to tell
    loud = NotifySpec(webhooks=("http://127.0.0.1:9/h",))
    assert loud.notifies("rolled_back") and loud.notifies("failed")
    assert not loud.notifies("succeeded")


@pytest.mark.parametrize("text", [MINIMAL, FULL])
def test_a_dumped_spec_validates_back_to_itself(text: str) -> None:
    spec = spec_of(text)
    dumped = spec.model_dump(by_alias=True, mode="json")
    assert ServiceSpec.model_validate(dumped, by_alias=True, by_name=False) == spec


@pytest.mark.parametrize("section", ["notify:\n", "deploy:\n", "traffic:\n  canaryMatch:\n"])
def test_sections_left_empty_mean_their_defaults(section: str) -> None:
    spec = spec_of(MINIMAL + section)
    assert spec == spec_of(MINIMAL)


def test_empty_lists_in_notify_are_kept() -> None:
    """``on: []`` means no outcome notifies; ``on:`` with nothing after it is the default."""
    assert spec_of(MINIMAL + "notify:\n  on: []\n").notify.on == ()
    assert spec_of(MINIMAL + "notify:\n  on:\n").notify.on == ("rolled_back", "failed")


def uncomment_new_template_blocks(text: str) -> str:
    """The template with its commented ``notify``, ``deploy`` and ``canaryMatch`` blocks on."""
    lines: list[str] = []
    active = False
    for line in text.splitlines():
        starts = re.match(r"\s*# (notify|deploy|canaryMatch):", line)
        if starts:
            active = True
        elif active and not re.match(r"\s*#  ", line):
            active = False
        lines.append(line.replace("# ", "", 1) if active else line)
    return "\n".join(lines) + "\n"


def test_the_template_shows_the_new_sections_and_they_validate_when_uncommented() -> None:
    text = uncomment_new_template_blocks(template_text())
    spec = spec_of(text)
    assert spec.notify.webhooks == ("http://127.0.0.1:9000/hook",)
    assert spec.deploy.windows[0].timezone == "Europe/Berlin"
    assert spec.deploy.freezes[0].reason == "year-end freeze"
    assert [rule.kind for rule in spec.traffic.canary_match] == ["header", "cookie"]
    assert spec.run.stop_grace_seconds == 30.0


@dataclass(frozen=True)
class Case:
    text: str
    line: int
    path: str
    message: str
    hint: str | None = None
    alone: bool = True
    """The only problem of the spec (a misspelt required key also reports it missing)."""


WINDOW = MINIMAL + "deploy:\n  windows:\n    - "
FREEZE = MINIMAL + "deploy:\n  freezes:\n    - "
RULE = MINIMAL + "traffic:\n  canaryMatch:\n    - "

CASES: dict[str, Case] = {
    "webhook that is not http(s)": Case(
        MINIMAL + "notify:\n  webhooks: [ftp://127.0.0.1/hook]\n",
        5,
        "notify.webhooks[0]",
        "expected an http:// or https:// URL, such as http://127.0.0.1:9000/hook, "
        "got 'ftp://127.0.0.1/hook'",
    ),
    "webhook without a host": Case(
        MINIMAL + "notify:\n  webhooks:\n    - http:///hook\n",
        6,
        "notify.webhooks[0]",
        "expected an http:// or https:// URL",
    ),
    "webhooks given as one string": Case(
        MINIMAL + "notify:\n  webhooks: http://127.0.0.1:9000/hook\n",
        5,
        "notify.webhooks",
        "expected a list",
    ),
    "unknown outcome gets did-you-mean": Case(
        MINIMAL + "notify:\n  on: [rolled_back, success]\n",
        5,
        "notify.on[1]",
        "expected rolled_back, failed or succeeded, got 'success'",
        "did you mean 'succeeded'?",
    ),
    "zero notify timeout": Case(
        MINIMAL + "notify:\n  timeout: 0s\n",
        5,
        "notify.timeout",
        "expected a duration greater than zero, got '0s'",
    ),
    "unknown key in notify": Case(
        MINIMAL + "notify:\n  webhook: [http://127.0.0.1:9/h]\n",
        5,
        "notify.webhook",
        "unknown key 'webhook'",
        "did you mean 'webhooks'?",
    ),
    "capitalised day: a value hint, not a camelCase remark": Case(
        WINDOW + "{days: [Mon]}\n",
        6,
        "deploy.windows[0].days[0]",
        "expected mon, tue, wed, thu, fri, sat or sun, got 'Mon'",
        "did you mean 'mon'?",
    ),
    "day written in full": Case(
        WINDOW + "{days: [monday]}\n",
        6,
        "deploy.windows[0].days[0]",
        "got 'monday'",
        "did you mean 'mon'?",
    ),
    "no days": Case(
        WINDOW + "{days: []}\n",
        6,
        "deploy.windows[0].days",
        "expected at least one day of mon, tue, wed, thu, fri, sat, sun, got an empty list",
        "leave out days for every day of the week",
    ),
    "time written as a number": Case(
        WINDOW + "{start: 9}\n",
        6,
        "deploy.windows[0].start",
        "expected a time of day as HH:MM, such as '09:00', got 9",
        "write the time in quotes",
    ),
    "hour out of range": Case(
        WINDOW + '{start: "09:00", end: "25:00"}\n',
        6,
        "deploy.windows[0].end",
        "expected a time of day as HH:MM, such as '09:00' ('24:00' is the end of the day), "
        "got '25:00'",
    ),
    "minutes out of range": Case(
        WINDOW + 'start: "09:60"\n',
        6,
        "deploy.windows[0].start",
        "got '09:60'",
    ),
    "start at 24:00": Case(
        WINDOW + 'start: "24:00"\n',
        6,
        "deploy.windows[0].start",
        "expected a start before 24:00, got '24:00'",
        "did you mean '00:00'?",
    ),
    "end equal to start": Case(
        WINDOW + '{days: [fri], start: "22:00", end: "22:00"}\n',
        6,
        "deploy.windows[0].end",
        "expected an end other than the start (22:00), got '22:00'",
        "wraps past midnight",
    ),
    "end equal to start written on its own line": Case(
        WINDOW + 'start: "00:00"\n      end: "0:00"\n',
        7,
        "deploy.windows[0].end",
        "expected an end other than the start (00:00), got '0:00'",
    ),
    "time zone in the wrong case": Case(
        WINDOW + "{timezone: europe/berlin}\n",
        6,
        "deploy.windows[0].timezone",
        "expected an IANA time zone name such as 'UTC' or 'Europe/Berlin', got 'europe/berlin'",
        "did you mean 'Europe/Berlin'?",
    ),
    "time zone misspelt": Case(
        WINDOW + "{timezone: Europe/Berln}\n",
        6,
        "deploy.windows[0].timezone",
        "expected an IANA time zone name",
        "did you mean 'Europe/Berlin'?",
    ),
    "time zone that is a path": Case(
        WINDOW + "{timezone: ../../etc/passwd}\n",
        6,
        "deploy.windows[0].timezone",
        "expected an IANA time zone name",
    ),
    "freeze without an offset": Case(
        FREEZE + '{start: "2026-12-20T00:00:00", end: "2027-01-04T00:00:00Z"}\n',
        6,
        "deploy.freezes[0].start",
        "expected a date and time with an offset, such as 2026-12-20T00:00:00Z, "
        "got '2026-12-20T00:00:00'",
        "add Z for UTC or an offset such as +01:00",
    ),
    "unquoted freeze without an offset": Case(
        FREEZE + "{start: 2026-12-20T00:00:00, end: 2027-01-04T00:00:00Z}\n",
        6,
        "deploy.freezes[0].start",
        "expected a date and time with an offset",
        "add Z for UTC",
    ),
    "freeze given as a date": Case(
        FREEZE + "{start: 2026-12-20, end: 2027-01-04T00:00:00Z}\n",
        6,
        "deploy.freezes[0].start",
        "got the date 2026-12-20",
        "add a time and an offset",
    ),
    "freeze that is not a time": Case(
        FREEZE + '{start: "2026-12-20T00:00:00Z", end: "next monday"}\n',
        6,
        "deploy.freezes[0].end",
        "expected a date and time with an offset, such as 2026-12-20T00:00:00Z, got 'next monday'",
    ),
    "freeze ending before it starts (offsets compared)": Case(
        FREEZE + "start: 2027-01-04T00:00:00Z\n      end: 2027-01-04T00:30:00+01:00\n",
        7,
        "deploy.freezes[0].end",
        "expected an end after the start (2027-01-04T00:00:00+00:00), "
        "got 2027-01-04T00:30:00+01:00",
    ),
    "freeze without an end": Case(
        FREEZE + '{start: "2026-12-20T00:00:00Z"}\n',
        6,
        "deploy.freezes[0].end",
        "missing required key 'end'",
    ),
    "empty freeze reason": Case(
        FREEZE + '{start: "2026-12-20T00:00:00Z", end: "2026-12-21T00:00:00Z", reason: ""}\n',
        6,
        "deploy.freezes[0].reason",
        "expected a non-empty string",
    ),
    "match rule with both header and cookie": Case(
        RULE + "header: X-Canary\n      cookie: beta\n      value: '1'\n",
        7,
        "traffic.canaryMatch[0].cookie",
        "expected exactly one of header or cookie in a match rule, found both",
        "give the cookie a rule of its own",
    ),
    "match rule with neither": Case(
        RULE + "{value: '1'}\n",
        6,
        "traffic.canaryMatch[0]",
        "expected exactly one of header or cookie in a match rule, found none",
    ),
    "match rule without a value": Case(
        RULE + "{header: X-Canary}\n",
        6,
        "traffic.canaryMatch[0].value",
        "missing required key 'value'",
    ),
    "header name with a space": Case(
        RULE + "{header: X Canary, value: '1'}\n",
        6,
        "traffic.canaryMatch[0].header",
        "expected a name of letters, digits and",
    ),
    "cookie name with a colon": Case(
        RULE + "{cookie: 'a:b', value: '1'}\n",
        6,
        "traffic.canaryMatch[0].cookie",
        "got 'a:b'",
    ),
    "match value with a line break": Case(
        RULE + '{header: X-Canary, value: "1\\r\\nX-Evil: 1"}\n',
        6,
        "traffic.canaryMatch[0].value",
        "expected a value without line breaks or control characters",
    ),
    "unknown key in a match rule": Case(
        RULE + "{header: X-Canary, valu: '1'}\n",
        6,
        "traffic.canaryMatch[0].valu",
        "unknown key 'valu'",
        "did you mean 'value'?",
        alone=False,
    ),
    "match rules given as a mapping": Case(
        MINIMAL + "traffic:\n  canaryMatch: {header: X-Canary, value: '1'}\n",
        5,
        "traffic.canaryMatch",
        "expected a list",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_malformed_new_field_is_reported_once_at_its_line(case: Case) -> None:
    problems = problems_of(case.text)
    matching = [p for p in problems if p.path == case.path]
    assert len(matching) == 1, [p.render() for p in problems]
    (problem,) = matching
    assert problem.file == "zerodown.yaml"
    assert problem.line == case.line, problem.render()
    assert case.message in problem.message, problem.render()
    if case.hint is not None:
        assert problem.hint is not None and case.hint in problem.hint, problem.render()
    if case.alone:
        assert len(problems) == 1, [p.render() for p in problems]


def test_every_problem_in_the_new_sections_is_collected_first_line_first() -> None:
    text = MINIMAL + dedent(
        """\
        notify:
          webhooks: [ftp://x]
        deploy:
          windows:
            - {days: [mon], start: "09:00", end: "09:00", timezone: Mars/Base}
          freezes:
            - {start: 2027-01-04T00:00:00Z, end: 2027-01-03T00:00:00Z}
        traffic:
          canaryMatch:
            - {value: x}
        """
    )
    assert [(p.line, p.path) for p in problems_of(text)] == [
        (5, "notify.webhooks[0]"),
        (8, "deploy.windows[0].end"),
        (8, "deploy.windows[0].timezone"),
        (10, "deploy.freezes[0].end"),
        (13, "traffic.canaryMatch[0]"),
    ]
