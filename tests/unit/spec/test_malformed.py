"""Malformed specs: each one is reported once, at the right line, with its field path and a
message that says what was expected and what was found."""

from __future__ import annotations

from dataclasses import dataclass
from textwrap import dedent

import pytest

from zerodown.core.errors import SpecError, SpecProblem
from zerodown.spec import parse_spec


def problems_of(text: str) -> list[SpecProblem]:
    with pytest.raises(SpecError) as caught:
        parse_spec(dedent(text), filename="zerodown.yaml")
    return caught.value.problems


# Line 12 holds a wrong type; everything else in this realistic spec is valid.
REALISTIC_WRONG_TYPE_AT_LINE_12 = """\
# web: the storefront
service: web
version: v1
platform: local
run:
  command: python app.py
  workdir: .
  stopGraceSeconds: 10s
env:
  LOG_LEVEL: info
  WORKERS: 4
replicas: three
healthCheck:
  http: {path: /healthz}
  interval: 2s
  timeout: 1s
traffic:
  listen: 127.0.0.1:8080
strategy:
  canary:
    steps:
      - setWeight: 5
      - analysis: {minRequests: 200}
      - setWeight: 100
"""


@dataclass(frozen=True)
class Case:
    text: str
    line: int | None
    path: str
    message: str
    hint: str | None = None


MINIMAL = "service: web\nrun:\n  command: python app.py\n"

CASES: dict[str, Case] = {
    "wrong type at line 12 of a realistic spec": Case(
        REALISTIC_WRONG_TYPE_AT_LINE_12, 12, "replicas", "expected an integer 1..1000, got 'three'"
    ),
    "unknown top-level key gets did-you-mean": Case(
        MINIMAL + "replcas: 3\n", 4, "replcas", "unknown key 'replcas'", "did you mean 'replicas'?"
    ),
    "unknown nested key gets did-you-mean": Case(
        MINIMAL + "healthCheck:\n  http: {}\n  intervall: 2s\n",
        6,
        "healthCheck.intervall",
        "unknown key 'intervall'",
        "did you mean 'interval'?",
    ),
    "snake_case key is pointed to its camelCase spelling": Case(
        MINIMAL + "  stop_grace_seconds: 5\n",
        4,
        "run.stop_grace_seconds",
        "unknown key",
        "did you mean 'stopGraceSeconds'? keys are camelCase",
    ),
    "unknown key far from any allowed one lists the allowed keys": Case(
        MINIMAL + "traffic:\n  zzz: 1\n",
        5,
        "traffic.zzz",
        "unknown key 'zzz'",
        "allowed keys here: listen, stickySessions",
    ),
    "bad duration": Case(
        MINIMAL + "healthCheck:\n  http: {}\n  interval: 2 seconds\n",
        6,
        "healthCheck.interval",
        "expected a duration such as 30s, 500ms, 5m, 1h, 1m30s or a number of seconds, "
        "got '2 seconds'",
    ),
    "negative duration": Case(
        MINIMAL + "  stopGraceSeconds: -5\n",
        4,
        "run.stopGraceSeconds",
        "expected a duration that is not negative, got -5",
    ),
    "zero interval": Case(
        MINIMAL + "analysis:\n  interval: 0s\n",
        5,
        "analysis.interval",
        "expected a duration greater than zero, got '0s'",
    ),
    "bad percent": Case(
        MINIMAL + "analysis:\n  maxErrorRate: five%\n",
        5,
        "analysis.maxErrorRate",
        "expected a fraction 0..1 or a percentage such as '5%', got 'five%'",
    ),
    "percent above 100": Case(
        MINIMAL + "analysis:\n  minAvailability: 150%\n",
        5,
        "analysis.minAvailability",
        "got '150%'",
    ),
    "fraction written as a whole percentage gets a hint": Case(
        MINIMAL + "analysis:\n  maxErrorRate: 5\n",
        5,
        "analysis.maxErrorRate",
        "expected a fraction 0..1",
        "did you mean '5%'?",
    ),
    "canary weights decreasing": Case(
        MINIMAL
        + "strategy:\n  canary:\n    steps:\n"
        + "      - setWeight: 50\n      - pause: {}\n"
        + "      - setWeight: 25\n      - setWeight: 100\n",
        9,
        "strategy.canary.steps[2].setWeight",
        "expected a weight of at least 50 (weights must not decrease), got 25",
        "steps[0] already sets 50",
    ),
    "last canary weight not 100": Case(
        MINIMAL + "strategy:\n  canary:\n    steps:\n      - setWeight: 10\n      - setWeight: 50\n"
        "      - analysis: {}\n",
        8,
        "strategy.canary.steps[1].setWeight",
        "expected the last setWeight to be 100 so the rollout completes, got 50",
        "add '- setWeight: 100'",
    ),
    "canary steps without any setWeight": Case(
        MINIMAL + "strategy:\n  canary:\n    steps:\n      - pause: {duration: 1m}\n",
        6,
        "strategy.canary.steps",
        "found no setWeight step",
    ),
    "empty canary steps list": Case(
        MINIMAL + "strategy:\n  canary:\n    steps: []\n",
        6,
        "strategy.canary.steps",
        "expected at least one step",
    ),
    "canary weight of the wrong type": Case(
        MINIMAL + "strategy:\n  canary:\n    steps:\n      - setWeight: 5\n      - pause: {}\n"
        "      - setWeight: fifty\n      - setWeight: 100\n",
        9,
        "strategy.canary.steps[2].setWeight",
        "expected an integer 0..100, got 'fifty'",
    ),
    "canary weight above 100": Case(
        MINIMAL + "strategy:\n  canary:\n    steps:\n      - setWeight: 120\n",
        7,
        "strategy.canary.steps[0].setWeight",
        "expected an integer 0..100, got 120",
    ),
    "unknown canary step": Case(
        MINIMAL
        + "strategy:\n  canary:\n    steps:\n      - setweight: 10\n      - setWeight: 100\n",
        7,
        "strategy.canary.steps[0].setweight",
        "unknown step 'setweight', expected setWeight, pause or analysis",
        "did you mean 'setWeight'?",
    ),
    "two keys in one canary step": Case(
        MINIMAL + "strategy:\n  canary:\n    steps:\n      - setWeight: 10\n        pause: {}\n"
        "      - setWeight: 100\n",
        7,
        "strategy.canary.steps[0]",
        "expected one key per step (setWeight, pause or analysis), got 2: setWeight, pause",
    ),
    "bad key inside an analysis step": Case(
        MINIMAL + "strategy:\n  canary:\n    steps:\n      - analysis: {minRequest: 5}\n"
        "      - setWeight: 100\n",
        7,
        "strategy.canary.steps[0].analysis.minRequest",
        "unknown key 'minRequest'",
        "did you mean 'minRequests'?",
    ),
    "negative replicas": Case(
        MINIMAL + "replicas: -1\n", 4, "replicas", "expected an integer 1..1000, got -1"
    ),
    "too many replicas": Case(
        MINIMAL + "replicas: 5000\n", 4, "replicas", "expected an integer 1..1000, got 5000"
    ),
    "boolean where an integer belongs": Case(
        MINIMAL + "replicas: true\n", 4, "replicas", "expected an integer 1..1000, got true"
    ),
    "two strategies": Case(
        MINIMAL + "strategy:\n  rolling: {}\n  canary: {}\n",
        6,
        "strategy.canary",
        "expected exactly one strategy (rolling, blueGreen, canary or native), found rolling and "
        "canary",
    ),
    "strategy without a kind": Case(
        MINIMAL + "strategy: {}\n",
        4,
        "strategy",
        "expected exactly one strategy (rolling, blueGreen, canary or native), found none",
    ),
    "native strategy off swarm": Case(
        MINIMAL + "strategy:\n  native: {parallelism: 2}\n",
        5,
        "strategy.native",
        "expected platform swarm for the native strategy (Swarm's own update), got platform local",
        "set 'platform: swarm', or choose rolling, blueGreen or canary",
    ),
    "native order misspelt": Case(
        "service: web\nplatform: swarm\nrun:\n  image: web:1\n"
        "strategy:\n  native: {order: start-frist}\n",
        6,
        "strategy.native.order",
        "expected start-first or stop-first, got 'start-frist'",
        "did you mean 'start-first'?",
    ),
    "two probe kinds": Case(
        MINIMAL + "healthCheck:\n  http: {path: /healthz}\n  tcp: {}\n",
        6,
        "healthCheck.tcp",
        "expected exactly one probe kind (http, tcp or command), found http and tcp",
    ),
    "health check without a probe kind": Case(
        MINIMAL + "healthCheck:\n  interval: 1s\n",
        4,
        "healthCheck",
        "expected exactly one probe kind (http, tcp or command), found none",
    ),
    "timeout longer than interval": Case(
        MINIMAL + "healthCheck:\n  tcp: {}\n  interval: 1s\n  timeout: 1500ms\n",
        7,
        "healthCheck.timeout",
        "expected a timeout no longer than the interval (1s), got 1.5s",
    ),
    "interval shorter than the default timeout": Case(
        MINIMAL + "healthCheck:\n  tcp: {}\n  interval: 500ms\n",
        6,
        "healthCheck.interval",
        "expected an interval no shorter than the timeout (1s), got 500ms",
    ),
    "bad service name": Case(
        "service: Web_App\nrun:\n  command: x\n",
        1,
        "service",
        "expected a service name of lowercase letters, digits and '-'",
        "did you mean 'web-app'?",
    ),
    "missing service names the first line of the document": Case(
        "# spec\nrun:\n  command: x\n", 2, "service", "missing required key 'service'"
    ),
    "missing run.command for a local service points at run": Case(
        "service: web\nreplicas: 2\nrun:\n  workdir: .\n",
        3,
        "run.command",
        "missing required key 'command': platform local starts each instance with it",
    ),
    "missing run.image for a container platform": Case(
        "service: web\nplatform: docker\nrun: {}\n",
        3,
        "run.image",
        "missing required key 'image': platform docker runs a container image",
    ),
    "run given as text instead of a mapping": Case(
        "service: web\nrun: python app.py\n", 2, "run", "expected a mapping, got 'python app.py'"
    ),
    "bad YAML syntax reports the line of the error": Case(
        MINIMAL + "healthCheck:\n  http: {path: /healthz\n  interval: 2s\n",
        6,
        "",
        "invalid YAML",
    ),
    "tab indentation": Case(
        "service: web\nrun:\n\tcommand: x\n", 3, "", "invalid YAML: found character '\\t'"
    ),
    "duplicate key": Case(
        MINIMAL + "replicas: 2\nreplicas: 3\n",
        5,
        "",
        'invalid YAML: found duplicate key "replicas"',
        "each key may appear only once",
    ),
    "empty file": Case("", 1, "", "the spec is empty"),
    "file of comments only": Case("# nothing yet\n\n", 1, "", "the spec is empty"),
    "a list at the top level": Case(
        "- service: web\n", 1, "", "expected a mapping of keys (service, run, ...) at the top"
    ),
    "bad env key": Case(
        MINIMAL + "env:\n  bad-key: 1\n",
        5,
        "env.bad-key",
        "expected an environment variable name of letters, digits and '_', not starting with a "
        "digit, got 'bad-key'",
    ),
    "null env value": Case(
        MINIMAL + "env:\n  KEY:\n",
        5,
        "env.KEY",
        "expected a string, number or boolean as an environment value, got nothing (null)",
    ),
    "bad platform literal lists the allowed values": Case(
        "service: web\nplatform: dockr\nrun:\n  image: web:1\n",
        2,
        "platform",
        "expected local, docker, swarm or kubernetes, got 'dockr'",
        "did you mean 'docker'?",
    ),
    "bad restart policy": Case(
        MINIMAL + "  restart: sometimes\n",
        4,
        "run.restart",
        "expected always, on-failure or never, got 'sometimes'",
    ),
    "bad judge gets did-you-mean on a prefix": Case(
        MINIMAL + "analysis:\n  judge: seq\n",
        5,
        "analysis.judge",
        "expected thresholds, sequential or mann-whitney, got 'seq'",
        "did you mean 'sequential'?",
    ),
    "alpha out of its open range": Case(
        MINIMAL + "analysis:\n  alpha: 0.5\n",
        5,
        "analysis.alpha",
        "expected a number > 0 and < 0.5, got 0.5",
    ),
    "latency ratio not above 1": Case(
        MINIMAL + "analysis:\n  maxLatencyRatio: 1\n",
        5,
        "analysis.maxLatencyRatio",
        "expected a number > 1, got 1",
    ),
    "boolean that is not a boolean": Case(
        MINIMAL + "traffic:\n  stickySessions: maybe\n",
        5,
        "traffic.stickySessions",
        "expected true or false, got 'maybe'",
    ),
    "number where text belongs": Case(
        MINIMAL + "version: 1.10\n",
        4,
        "version",
        "expected a string, got 1.1",
        "put the value in quotes",
    ),
    "listen without a port": Case(
        MINIMAL + "traffic:\n  listen: localhost\n",
        5,
        "traffic.listen",
        "expected host:port with a port 1..65535, such as 127.0.0.1:8080, got 'localhost'",
    ),
    "maxSurge and maxUnavailable both 0": Case(
        MINIMAL + "replicas: 3\nstrategy:\n  rolling:\n    maxSurge: 0\n    maxUnavailable: 0\n",
        8,
        "strategy.rolling.maxUnavailable",
        "expected maxSurge or maxUnavailable above 0; for 3 replica(s) both come to 0",
    ),
    "a percentage that rounds down to no instance counts as 0": Case(
        MINIMAL + "replicas: 3\nstrategy:\n  rolling: {maxSurge: 0, maxUnavailable: 10%}\n",
        6,
        "strategy.rolling.maxUnavailable",
        "both come to 0",
    ),
    "bad maxSurge": Case(
        MINIMAL + "strategy:\n  rolling: {maxSurge: lots}\n",
        5,
        "strategy.rolling.maxSurge",
        "expected a count (an integer >= 0) or a percentage such as '25%', got 'lots'",
    ),
    "previewPort equal to the listen port": Case(
        MINIMAL + "traffic:\n  listen: 0.0.0.0:9000\nstrategy:\n  blueGreen:\n"
        "    previewPort: 9000\n",
        8,
        "strategy.blueGreen.previewPort",
        "expected a previewPort other than the traffic.listen port 9000, got 9000",
    ),
    "previewPort out of range": Case(
        MINIMAL + "strategy:\n  blueGreen: {previewPort: 70000}\n",
        5,
        "strategy.blueGreen.previewPort",
        "expected an integer 1..65535, got 70000",
    ),
    "expectStatus out of range": Case(
        MINIMAL + "healthCheck:\n  http:\n    expectStatus: 999\n",
        6,
        "healthCheck.http.expectStatus",
        "expected an integer 100..599, got 999",
    ),
    "http probe path without a slash": Case(
        MINIMAL + "healthCheck:\n  http: {path: healthz}\n",
        5,
        "healthCheck.http.path",
        "expected an HTTP path starting with '/', got 'healthz'",
        "did you mean '/healthz'?",
    ),
    "empty command": Case(
        "service: web\nrun:\n  command: '  '\n",
        3,
        "run.command",
        "expected a non-empty string, got '  '",
    ),
    "hooks given as text instead of a list": Case(
        MINIMAL + "hooks:\n  preDeploy: make migrate\n",
        5,
        "hooks.preDeploy",
        "expected a list, got 'make migrate'",
    ),
    "check item that is not a mapping": Case(
        MINIMAL + "checks:\n  pre:\n    dependencies:\n      - disk-space\n",
        7,
        "checks.pre.dependencies[0]",
        "expected a mapping, got 'disk-space'",
    ),
    "pause with a bad duration": Case(
        MINIMAL + "strategy:\n  canary:\n    steps:\n      - pause: {duration: soon}\n"
        "      - setWeight: 100\n",
        7,
        "strategy.canary.steps[0].pause.duration",
        "expected a duration",
    ),
    "step written without a colon": Case(
        MINIMAL + "strategy:\n  canary:\n    steps:\n      - setWeight 100\n",
        7,
        "strategy.canary.steps[0]",
        "expected a step with one key (setWeight, pause or analysis)",
        "put a colon after the key",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_malformed_spec_is_reported_once_at_its_line_with_path_and_message(case: Case) -> None:
    problems = problems_of(case.text)
    assert len(problems) == 1, [p.render() for p in problems]
    (problem,) = problems
    assert problem.file == "zerodown.yaml"
    assert problem.line == case.line
    assert problem.path == case.path
    assert case.message in problem.message
    if case.hint is not None:
        assert problem.hint is not None
        assert case.hint in problem.hint


def test_the_acceptance_spec_error_names_file_line_and_field() -> None:
    """The rendered error of a wrong type at line 12 reads ``file:12: field: message``."""
    with pytest.raises(SpecError) as caught:
        parse_spec(REALISTIC_WRONG_TYPE_AT_LINE_12, filename="zerodown.yaml")
    assert str(caught.value) == (
        "zerodown.yaml:12: replicas: expected an integer 1..1000, got 'three'"
    )


def test_every_problem_is_collected_first_line_first() -> None:
    """Shape and meaning problems come together, ordered by line, not by kind."""
    text = dedent(
        """\
        service: web
        replcas: 2
        run:
          command: python app.py
          restart: sometimes
        healthCheck:
          http: {}
          interval: 1s
          timeout: 2s
        strategy:
          canary:
            steps:
              - setWeight: 50
              - setWeight: 20
        """
    )
    problems = problems_of(text)
    assert [(p.line, p.path) for p in problems] == [
        (2, "replcas"),
        (5, "run.restart"),
        (9, "healthCheck.timeout"),
        (14, "strategy.canary.steps[1].setWeight"),
        (14, "strategy.canary.steps[1].setWeight"),
    ]
    assert "must not decrease" in problems[3].message
    assert "last setWeight to be 100" in problems[4].message


def test_spec_error_counts_the_other_problems_and_serialises_them() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec("service: Web\nrun: {}\nreplicas: 0\n", filename="z.yaml")
    error = caught.value
    assert len(error.problems) == 3
    assert str(error).endswith("(and 2 more)")
    fields = [p["field"] for p in error.to_dict()["problems"]]
    assert fields == ["service", "run.command", "replicas"]


def test_columns_point_at_the_value() -> None:
    (problem,) = problems_of(MINIMAL + "replicas:   lots\n")
    assert (problem.line, problem.column) == (4, 13)


def test_problem_render_includes_the_hint() -> None:
    (problem,) = problems_of(MINIMAL + "replcas: 3\n")
    assert problem.render() == (
        "zerodown.yaml:4: replcas: unknown key 'replcas' (did you mean 'replicas'?)"
    )
