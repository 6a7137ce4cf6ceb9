"""The error tree: exit codes, stable codes, and the round trip through JSON."""

from __future__ import annotations

import pytest

from zerodown.core.errors import (
    ControllerUnavailableError,
    InputError,
    LockHeldError,
    NotFoundError,
    OperationFailedError,
    PreflightError,
    RolledBackError,
    SpecError,
    SpecProblem,
    TemporaryError,
    ZerodownError,
    error_from_dict,
)


@pytest.mark.parametrize(
    ("error", "exit_code"),
    [
        (InputError("x"), 2),
        (NotFoundError("x"), 2),
        (LockHeldError("x"), 3),
        (PreflightError("x"), 3),
        (OperationFailedError("x"), 1),
        (RolledBackError("x"), 1),
        (TemporaryError("x"), 1),
        (ZerodownError("x"), 1),
    ],
)
def test_exit_codes_follow_the_documented_contract(error: ZerodownError, exit_code: int) -> None:
    """0 ok, 1 failed, 2 bad input, 3 refused: pipelines branch on these."""
    assert error.exit_code == exit_code


@pytest.mark.parametrize(
    "error",
    [NotFoundError("no such service"), LockHeldError("held by x"), RolledBackError("error rate")],
)
def test_errors_survive_the_trip_through_json(error: ZerodownError) -> None:
    """A client rebuilds the same class and message from the API's error body."""
    again = error_from_dict(error.to_dict())
    assert type(again) is type(error)
    assert again.message == error.message


def test_spec_error_keeps_every_problem_through_json() -> None:
    problems = [
        SpecProblem(file="a.yaml", line=12, path="replicas", message="expected an integer"),
        SpecProblem(file="a.yaml", line=3, path="x", message="unknown key", hint="did you mean y?"),
    ]
    again = error_from_dict(SpecError(problems).to_dict())
    assert isinstance(again, SpecError)
    assert again.problems == problems
    assert again.message.startswith("a.yaml:12: replicas: expected an integer (and 1 more)")


def test_unknown_codes_become_operation_failures() -> None:
    again = error_from_dict({"code": "something_new", "message": "m"})
    assert isinstance(again, OperationFailedError)


def test_temporary_errors_come_back_as_unavailable() -> None:
    again = error_from_dict(ControllerUnavailableError("down").to_dict())
    assert isinstance(again, TemporaryError)


def test_spec_error_needs_a_problem() -> None:
    with pytest.raises(ValueError):
        SpecError([])
