"""Shared test setup.

Real components (PostgreSQL, HAProxy, dockerd ...) come from fixture plugins in
``tests/fixtures``. When ``CI=true`` a missing real component is a failure, never a skip:
use ``require_component`` to make that decision in one place.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins: list[str] = [
    "tests.fixtures.postgres",
    "tests.fixtures.zerodown",
    "tests.fixtures.images",
]

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_component(name: str, reason: str) -> None:
    """Skip locally, fail in CI: a missing real component must not pass silently there."""
    if IN_CI:
        pytest.fail(f"{name} is required in CI: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``make test`` runs the suite on two workers (pytest-xdist, ``--dist loadgroup``). Tests
    that use the Docker engine share one worker: Swarm service names and the test images are
    engine-wide, so two of them at once could step on each other."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        engine = {"docker_engine", "swarm_engine", "app_image"} & set(names)
        # Some tests ask for the engine at run time (request.getfixturevalue): their ids say so.
        if engine or "docker" in item.nodeid.lower() or "swarm" in item.nodeid.lower():
            item.add_marker(pytest.mark.xdist_group("docker"))
