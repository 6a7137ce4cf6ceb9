"""``run`` for the container platforms: image or build, container port, CPU and memory limits.

Pins what written values become, their defaults, and that each mistake is reported at its line
with its field path.
"""

from __future__ import annotations

from textwrap import dedent

import pytest

from zerodown.core.errors import SpecError, SpecProblem
from zerodown.spec import ServiceSpec, parse_spec


def _spec(text: str) -> ServiceSpec:
    return parse_spec(dedent(text), filename="zerodown.yaml").spec


def _problems(text: str) -> list[SpecProblem]:
    with pytest.raises(SpecError) as caught:
        parse_spec(dedent(text), filename="zerodown.yaml")
    return caught.value.problems


def test_container_settings_are_read_with_their_units() -> None:
    spec = _spec(
        """\
        service: web
        platform: docker
        run:
          image: zerodown-test/app:1
          containerPort: 9000
          cpus: 0.5
          memory: 256Mi
        """
    )
    assert spec.run.image == "zerodown-test/app:1"
    assert spec.run.container_port == 9000
    assert spec.run.cpus == 0.5
    assert spec.run.memory == 256 * 1024 * 1024
    assert spec.run.build is None


def test_container_port_defaults_to_8080_and_limits_to_none() -> None:
    spec = _spec("service: web\nplatform: swarm\nrun:\n  image: app:1\n")
    assert spec.run.container_port == 8080
    assert spec.run.cpus is None
    assert spec.run.memory is None


def test_a_build_context_replaces_the_image_and_the_dockerfile_defaults() -> None:
    spec = _spec("service: web\nplatform: docker\nrun:\n  build: {context: ./app}\n")
    assert spec.run.build is not None
    assert (spec.run.build.context, spec.run.build.dockerfile) == ("./app", "Dockerfile")
    assert spec.run.image is None


@pytest.mark.parametrize("platform", ["docker", "swarm"])
def test_a_container_platform_needs_an_image_or_a_build(platform: str) -> None:
    problems = _problems(f"service: web\nplatform: {platform}\nrun:\n  cpus: 1\n")
    assert [(p.path, p.line) for p in problems] == [("run.image", 3)]
    assert "missing required key 'image'" in problems[0].message
    assert problems[0].hint is not None and "run.build" in problems[0].hint


def test_image_and_build_together_are_refused_at_the_build_line() -> None:
    problems = _problems(
        """\
        service: web
        platform: docker
        run:
          image: app:1
          build: {context: .}
        """
    )
    assert [(p.path, p.line) for p in problems] == [("run.build", 5)]


@pytest.mark.parametrize(
    ("line", "path"),
    [
        ("containerPort: 0", "run.containerPort"),
        ("containerPort: 70000", "run.containerPort"),
        ("cpus: 0", "run.cpus"),
        ("cpus: true", "run.cpus"),
        ("memory: 256m", "run.memory"),
        ("build: {dockerfile: Dockerfile}", "run.build.context"),
        ("build: {context: ., target: x}", "run.build.target"),
    ],
)
def test_bad_container_values_are_reported_at_their_field(line: str, path: str) -> None:
    problems = _problems(f"service: web\nplatform: docker\nrun:\n  image: app:1\n  {line}\n")
    assert path in [p.path for p in problems]
    assert all(p.line == 5 for p in problems if p.path == path)


def test_local_services_may_leave_the_container_fields_out() -> None:
    spec = _spec("service: web\nrun:\n  command: python app.py\n")
    assert spec.run.image is None and spec.run.build is None
