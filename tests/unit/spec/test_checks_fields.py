"""The ``checks`` section: pre-deployment capacity, dependencies and backup, post-deployment
smoke tests, performance, logs and feedback. What each defaults to, what written values become,
and every mistake reported once at its line with its field path, like the rest of the spec."""

from __future__ import annotations

import re
from dataclasses import dataclass
from textwrap import dedent

import pytest

from zerodown.core.errors import SpecError, SpecProblem
from zerodown.spec import ServiceSpec, parse_spec, template_text
from zerodown.spec.models import DependencyCheckSpec, format_size, parse_size

MINIMAL = "service: web\nrun:\n  command: python app.py\n"
MI = 1024**2

FULL = MINIMAL + dedent(
    """\
    checks:
      pre:
        capacity: {cpuPerInstance: 0.25, memoryPerInstance: 128Mi, diskFree: 2G}
        dependencies:
          - {name: db, url: "postgresql://user@127.0.0.1:5432/app", timeout: 2s}
          - {name: cache, url: "redis://127.0.0.1:6379", timeout: 1s}
          - {name: auth, url: "http://127.0.0.1:9000/healthz", expectStatus: 204}
          - {name: queue, url: "tcp://127.0.0.1:5672"}
        backup:
          command: "pg_dump -h 127.0.0.1 app > backups/app-$(date +%s).sql"
          artifacts: "backups/*.sql"
          maxAge: 12h
      post:
        smoke:
          - {name: home, method: GET, path: /, expectStatus: 200, expectBody: "version",
             expectJson: {ok: true, data.version: "2"}, headers: {X-Test: 1}, body: ""}
          - {name: create, method: POST, path: /items, body: '{"a": 1}', expectStatus: 201}
        performance: {maxP95Ratio: 1.2}
        logs: {patterns: ["ERROR", "Traceback", "fatal: .*"], maxMatches: 2}
        feedback: {max4xxRate: 20%, maxClientAbortRate: 0.01, url: "http://127.0.0.1:9100/ok"}
    """
)


def spec_of(text: str) -> ServiceSpec:
    return parse_spec(text, filename="zerodown.yaml").spec


def problems_of(text: str) -> list[SpecProblem]:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, filename="zerodown.yaml")
    return caught.value.problems


def test_without_checks_only_the_capacity_check_runs_with_its_defaults() -> None:
    checks = spec_of(MINIMAL).checks
    capacity = checks.pre.capacity
    assert capacity.cpu_per_instance == 0.1
    assert capacity.memory_per_instance == 64 * MI
    assert capacity.disk_free == 500 * MI
    assert checks.pre.dependencies == () and checks.pre.backup is None
    post = checks.post
    assert post.smoke == () and post.performance is None
    assert post.logs is None and post.feedback is None


@pytest.mark.parametrize(
    "section",
    ["checks: {}\n", "checks:\n", "checks:\n  pre:\n  post:\n", "checks:\n  pre: {capacity: }\n"],
)
def test_empty_checks_sections_mean_the_defaults(section: str) -> None:
    assert spec_of(MINIMAL + section) == spec_of(MINIMAL)


def test_written_values_become_typed_values() -> None:
    checks = spec_of(FULL).checks
    capacity = checks.pre.capacity
    assert (capacity.cpu_per_instance, capacity.memory_per_instance) == (0.25, 128 * MI)
    assert capacity.disk_free == 2_000_000_000

    db, cache, auth, queue = checks.pre.dependencies
    assert [d.kind for d in (db, cache, auth, queue)] == ["postgresql", "redis", "http", "tcp"]
    assert (db.timeout, cache.timeout, queue.timeout) == (2.0, 1.0, 2.0)
    assert (auth.expect_status, queue.expect_status) == (204, 200)

    backup = checks.pre.backup
    assert backup is not None
    assert backup.command == "pg_dump -h 127.0.0.1 app > backups/app-$(date +%s).sql"
    assert (backup.artifacts, backup.max_age) == ("backups/*.sql", 12 * 3600.0)

    home, create = checks.post.smoke
    assert (home.method, home.path, home.expect_status, home.expect_body) == (
        "GET",
        "/",
        200,
        "version",
    )
    assert home.expect_json == {"ok": True, "data.version": "2"}
    assert home.headers == {"X-Test": "1"}  # a header holds text
    assert home.body == "" and home.timeout == 5.0
    assert (create.method, create.body, create.expect_json) == ("POST", '{"a": 1}', None)

    post = checks.post
    assert post.performance is not None and post.performance.max_p95_ratio == 1.2
    assert post.logs is not None
    assert (post.logs.patterns, post.logs.max_matches) == (("ERROR", "Traceback", "fatal: .*"), 2)
    assert post.feedback is not None
    assert (post.feedback.max_4xx_rate, post.feedback.max_client_abort_rate) == (0.2, 0.01)
    assert post.feedback.url == "http://127.0.0.1:9100/ok"


def test_a_post_check_named_alone_is_on_with_its_defaults() -> None:
    """``logs:`` with nothing after it turns the log scan on, like ``canary:`` does."""
    post = spec_of(MINIMAL + "checks:\n  post:\n    performance:\n    logs:\n    feedback:\n")
    post = post.checks.post
    assert post.performance is not None and post.performance.max_p95_ratio == 1.5
    assert post.logs is not None
    assert (post.logs.patterns, post.logs.max_matches) == (("ERROR", "Traceback"), 0)
    assert post.feedback is not None
    assert (post.feedback.max_4xx_rate, post.feedback.max_client_abort_rate) == (0.1, 0.05)
    assert post.feedback.url is None


def test_backup_left_empty_is_not_configured() -> None:
    """``backup:`` with its lines commented out means no backup, not a half-written one."""
    assert spec_of(MINIMAL + "checks:\n  pre:\n    backup:\n").checks.pre.backup is None


def test_backup_without_a_command_checks_the_age_of_the_newest_artifact() -> None:
    backup = spec_of(MINIMAL + "checks:\n  pre:\n    backup: {artifacts: 'b/*.gz'}\n")
    assert backup.checks.pre.backup is not None
    assert backup.checks.pre.backup.command is None
    assert backup.checks.pre.backup.max_age == 24 * 3600.0


@pytest.mark.parametrize("text", [MINIMAL, FULL])
def test_a_dumped_spec_validates_back_to_itself(text: str) -> None:
    spec = spec_of(text)
    dumped = spec.model_dump(by_alias=True, mode="json")
    assert ServiceSpec.model_validate(dumped, by_alias=True, by_name=False) == spec


@pytest.mark.parametrize(
    ("written", "size"),
    [
        ("64Mi", 64 * MI),
        ("500M", 500_000_000),
        ("2Gi", 2 * 1024**3),
        ("1.5G", 1_500_000_000),
        ("1GiB", 1024**3),
        ("10MB", 10_000_000),
        ("512Ki", 512 * 1024),
        ("4k", 4000),
        ("1T", 10**12),
        (" 64 Mi ", 64 * MI),
        ("1024", 1024),
        (2048, 2048),
        (0, 0),
    ],
)
def test_sizes_count_in_1024s_with_i_and_in_1000s_without(written: object, size: int) -> None:
    assert parse_size(written) == size


@pytest.mark.parametrize("written", ["64m", "64mb", "lots", "-1Mi", True, "Mi", "1e3", [64]])
def test_sizes_that_are_not_sizes_are_refused(written: object) -> None:
    with pytest.raises(ValueError, match="expected a size"):
        parse_size(written)


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (64 * MI, "64 MiB"), (5 * 1024**3, "5 GiB")],
)
def test_sizes_are_written_back_in_binary_units(size: int, text: str) -> None:
    assert format_size(size) == text


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://auth.example.com/healthz", "http"),
        ("HTTP://127.0.0.1:9000/", "http"),
        ("postgres://app@db/app", "postgresql"),
        ("postgresql://app@h1:5432,h2:5432/app", "postgresql"),
        ("postgresql:///app?host=/var/run/postgresql", "postgresql"),
        ("redis://:secret@127.0.0.1", "redis"),
        ("tcp://[::1]:5672", "tcp"),
    ],
)
def test_dependency_urls_pick_the_probe(url: str, kind: str) -> None:
    assert DependencyCheckSpec(name="x", url=url).kind == kind


def uncomment_checks_template_blocks(text: str) -> str:
    """The template with its commented dependency, backup and post-check blocks on."""
    lines: list[str] = []
    active = False
    for line in text.splitlines():
        starts = re.match(r"\s*# (dependencies|backup|smoke|performance|logs|feedback):", line)
        if starts:
            active = True
        elif active and not re.match(r"\s*#  ", line):
            active = False
        lines.append(line.replace("# ", "", 1) if active else line)
    return "\n".join(lines) + "\n"


def test_the_4xx_limit_is_written_max4xxrate_in_yaml() -> None:
    feedback = spec_of(FULL).checks.post.feedback
    assert feedback is not None
    assert feedback.model_dump(by_alias=True)["max4xxRate"] == 0.2


def test_the_template_shows_every_check_and_they_validate_when_uncommented() -> None:
    template = template_text()
    assert spec_of(template).checks == spec_of(MINIMAL).checks  # the defaults, written out
    checks = spec_of(uncomment_checks_template_blocks(template)).checks
    assert [d.name for d in checks.pre.dependencies] == ["db", "cache", "auth", "queue"]
    assert checks.pre.backup is not None and checks.pre.backup.artifacts == "backups/*.sql"
    assert [s.name for s in checks.post.smoke] == ["home", "echo"]
    assert checks.post.performance is not None
    assert checks.post.logs is not None and checks.post.feedback is not None


@dataclass(frozen=True)
class Case:
    text: str
    line: int
    path: str
    message: str
    hint: str | None = None
    alone: bool = True
    """The only problem of the spec."""


PRE = MINIMAL + "checks:\n  pre:\n    "
DEP = MINIMAL + "checks:\n  pre:\n    dependencies:\n      - "
POST = MINIMAL + "checks:\n  post:\n    "
SMOKE = MINIMAL + "checks:\n  post:\n    smoke:\n      - "

CASES: dict[str, Case] = {
    "size in milli-units": Case(
        PRE + "capacity: {memoryPerInstance: 64m}\n",
        6,
        "checks.pre.capacity.memoryPerInstance",
        "expected a size such as 64Mi, 500M or 2Gi",
        "did you mean '64Mi' or '64M'?",
    ),
    "size that is a word": Case(
        PRE + "capacity:\n      diskFree: plenty\n",
        7,
        "checks.pre.capacity.diskFree",
        "expected a size such as 64Mi, 500M or 2Gi (Ki, Mi, Gi, Ti count in 1024s, K, M, G, T "
        "in 1000s, a plain number is bytes), got 'plenty'",
    ),
    "negative CPU": Case(
        PRE + "capacity: {cpuPerInstance: -1}\n",
        6,
        "checks.pre.capacity.cpuPerInstance",
        "expected a number >= 0, got -1",
    ),
    "unknown capacity key": Case(
        PRE + "capacity: {cpu: 1}\n",
        6,
        "checks.pre.capacity.cpu",
        "unknown key 'cpu'",
        "did you mean 'cpuPerInstance'?",
    ),
    "pre checks given as a list": Case(
        MINIMAL + "checks:\n  pre:\n    - capacity\n",
        6,
        "checks.pre",
        "expected a mapping, got a list",
        "keys here: capacity, dependencies, backup",
    ),
    "dependencies given as a mapping": Case(
        PRE + "dependencies: {name: db, url: 'tcp://127.0.0.1:5432'}\n",
        6,
        "checks.pre.dependencies",
        "expected a list",
    ),
    "dependency URL without a scheme": Case(
        DEP + "{name: db, url: '127.0.0.1:5432'}\n",
        7,
        "checks.pre.dependencies[0].url",
        "expected an http://, https://, tcp://, postgresql:// or redis:// URL, such as "
        "tcp://127.0.0.1:5672, got '127.0.0.1:5432'",
        "add a scheme, such as tcp://127.0.0.1:5432",
    ),
    "dependency URL of a scheme not probed": Case(
        DEP + "{name: db, url: 'mysql://127.0.0.1:3306/app'}\n",
        7,
        "checks.pre.dependencies[0].url",
        "expected an http://, https://, tcp://, postgresql:// or redis:// URL",
        "'mysql' is not probed; tcp://host:port checks that it accepts connections",
    ),
    "tcp dependency without a port": Case(
        DEP + "{name: queue, url: 'tcp://rabbit'}\n",
        7,
        "checks.pre.dependencies[0].url",
        "expected tcp://host:port with a port, got 'tcp://rabbit'",
        "such as tcp://rabbit:5672",
    ),
    "http dependency without a host": Case(
        DEP + "{name: auth, url: 'http:///healthz'}\n",
        7,
        "checks.pre.dependencies[0].url",
        "expected a host in the http URL",
    ),
    "redis dependency with a bad port": Case(
        DEP + "{name: cache, url: 'redis://127.0.0.1:99999'}\n",
        7,
        "checks.pre.dependencies[0].url",
        "expected a port 1..65535 in the redis URL",
    ),
    "dependency without a name": Case(
        DEP + "{url: 'tcp://127.0.0.1:5672'}\n",
        7,
        "checks.pre.dependencies[0].name",
        "missing required key 'name'",
    ),
    "two dependencies with one name": Case(
        DEP
        + "{name: db, url: 'tcp://127.0.0.1:1'}\n      - {name: db, url: 'tcp://127.0.0.1:2'}\n",
        8,
        "checks.pre.dependencies[1].name",
        "expected a name no other dependency has, got 'db'",
        "checks.pre.dependencies[0] is already named 'db'",
    ),
    "expectStatus on a tcp dependency": Case(
        DEP + "name: queue\n        url: tcp://127.0.0.1:5672\n        expectStatus: 200\n",
        9,
        "checks.pre.dependencies[0].expectStatus",
        "expectStatus applies to http:// and https:// URLs, not to tcp://",
    ),
    "zero dependency timeout": Case(
        DEP + "{name: db, url: 'tcp://127.0.0.1:1', timeout: 0s}\n",
        7,
        "checks.pre.dependencies[0].timeout",
        "expected a duration greater than zero, got '0s'",
    ),
    "backup without artifacts": Case(
        PRE + "backup:\n      command: make backup\n",
        6,
        "checks.pre.backup.artifacts",
        "missing required key 'artifacts'",
    ),
    "backup max age that is not a duration": Case(
        PRE + "backup: {artifacts: 'b/*', maxAge: a day}\n",
        6,
        "checks.pre.backup.maxAge",
        "expected a duration such as 30s",
    ),
    "lower-case smoke method": Case(
        SMOKE + "{name: home, method: get}\n",
        7,
        "checks.post.smoke[0].method",
        "expected GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS, got 'get'",
        "did you mean 'GET'?",
    ),
    "smoke path without a slash": Case(
        SMOKE + "{name: home, path: healthz}\n",
        7,
        "checks.post.smoke[0].path",
        "expected an HTTP path starting with '/'",
        "did you mean '/healthz'?",
    ),
    "smoke status out of range": Case(
        SMOKE + "{name: home, expectStatus: 2000}\n",
        7,
        "checks.post.smoke[0].expectStatus",
        "expected an integer 100..599, got 2000",
    ),
    "smoke header name with a space": Case(
        SMOKE + "{name: home, headers: {X Test: '1'}}\n",
        7,
        "checks.post.smoke[0].headers.X Test",
        "expected a name of letters, digits and",
    ),
    "two smoke tests with one name": Case(
        SMOKE + "{name: home}\n      - {name: home, path: /about}\n",
        8,
        "checks.post.smoke[1].name",
        "expected a name no other smoke test has, got 'home'",
    ),
    "smoke test without a name": Case(
        SMOKE + "{path: /}\n",
        7,
        "checks.post.smoke[0].name",
        "missing required key 'name'",
    ),
    "misspelt smoke key": Case(
        SMOKE + "{name: home, expectJSON: {ok: true}}\n",
        7,
        "checks.post.smoke[0].expectJSON",
        "unknown key 'expectJSON'",
        "did you mean 'expectJson'?",
    ),
    "p95 ratio that allows no slowdown at all": Case(
        POST + "performance: {maxP95Ratio: 1}\n",
        6,
        "checks.post.performance.maxP95Ratio",
        "expected a number > 1, got 1",
    ),
    "log pattern that is not a regular expression": Case(
        POST + "logs: {patterns: ['ERROR (db']}\n",
        6,
        "checks.post.logs.patterns[0]",
        "expected a regular expression (missing ), unterminated subpattern at position 6)",
        "patterns are regular expressions",
    ),
    "negative maxMatches": Case(
        POST + "logs: {maxMatches: -1}\n",
        6,
        "checks.post.logs.maxMatches",
        "expected an integer >= 0, got -1",
    ),
    "4xx rate written as a number of percent": Case(
        POST + "feedback: {max4xxRate: 20}\n",
        6,
        "checks.post.feedback.max4xxRate",
        "expected a fraction 0..1 or a percentage such as '5%', got 20",
        "did you mean '20%'?",
    ),
    "4xx rate in snake case": Case(
        POST + "feedback: {max_4xx_rate: 5%}\n",
        6,
        "checks.post.feedback.max_4xx_rate",
        "unknown key 'max_4xx_rate'",
        "did you mean 'max4xxRate'?",
    ),
    "feedback URL that is not http": Case(
        POST + "feedback: {url: 'ftp://127.0.0.1/ok'}\n",
        6,
        "checks.post.feedback.url",
        "expected an http:// or https:// URL",
    ),
    "unknown post check": Case(
        POST + "smoketests: []\n",
        6,
        "checks.post.smoketests",
        "unknown key 'smoketests'",
        "did you mean 'smoke'?",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_malformed_check_is_reported_once_at_its_line(case: Case) -> None:
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


def test_every_problem_in_checks_is_collected_first_line_first() -> None:
    text = MINIMAL + dedent(
        """\
        checks:
          pre:
            capacity: {memoryPerInstance: 1q}
            dependencies:
              - {name: db, url: "tcp://127.0.0.1:1"}
              - {name: db, url: "tcp://127.0.0.1:2", expectStatus: 200}
            backup: {command: make backup}
          post:
            smoke:
              - {name: home, method: FETCH}
            logs: {patterns: ["["]}
        """
    )
    assert [(p.line, p.path) for p in problems_of(text)] == [
        (6, "checks.pre.capacity.memoryPerInstance"),
        (9, "checks.pre.dependencies[1].name"),
        (9, "checks.pre.dependencies[1].expectStatus"),
        (10, "checks.pre.backup.artifacts"),
        (13, "checks.post.smoke[0].method"),
        (14, "checks.post.logs.patterns[0]"),
    ]
