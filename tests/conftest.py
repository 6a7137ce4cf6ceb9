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
