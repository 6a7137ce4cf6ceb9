"""The one error tree of zerodown.

Every error zerodown raises on purpose is a ``ZerodownError``. Third-party exceptions are
translated at the boundary where they occur (``raise ... from exc``) and never leak to callers.
The tree says two things at once: whether retrying can help, and which exit code the CLI uses::

    ZerodownError                     exit 1
    ├── PermanentError                retrying the same call will fail the same way
    │   ├── InputError                exit 2  the user's input is wrong
    │   │   ├── SpecError                     a spec file is invalid (carries every problem)
    │   │   └── NotFoundError                 a named service, release or instance does not exist
    │   ├── RefusedError              exit 3  valid input, refused by policy or state
    │   │   ├── LockHeldError                 another deploy holds the service's lock
    │   │   └── PreflightError                a pre-deployment check failed
    │   └── OperationFailedError      exit 1  the operation ran and failed
    │       └── RolledBackError               ... and the previous release was restored
    └── TemporaryError(retry_after)   exit 1  may succeed later (unreachable controller, busy port)
        └── ControllerUnavailableError        the controller does not answer

``code`` is a stable machine-readable name used in ``--json`` output and HTTP error bodies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "ControllerUnavailableError",
    "InputError",
    "LockHeldError",
    "NotFoundError",
    "OperationFailedError",
    "PermanentError",
    "PreflightError",
    "RefusedError",
    "RolledBackError",
    "SpecError",
    "SpecProblem",
    "TemporaryError",
    "ZerodownError",
    "error_from_dict",
]


class ZerodownError(Exception):
    """Base of every error zerodown raises on purpose."""

    exit_code: ClassVar[int] = 1
    code: ClassVar[str] = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form with a stable ``code``."""
        return {"code": self.code, "message": self.message}


class PermanentError(ZerodownError):
    """Retrying the same call with the same input fails the same way."""

    code = "permanent"


class TemporaryError(ZerodownError):
    """The call may succeed later; ``retry_after`` is a hint in seconds."""

    code = "temporary"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ControllerUnavailableError(TemporaryError):
    """The controller process does not answer (not started, or gone)."""

    code = "controller_unavailable"


class InputError(PermanentError):
    """The user's input is wrong: a bad argument, a bad spec, an unknown name."""

    exit_code = 2
    code = "bad_input"


class NotFoundError(InputError):
    """A named service, release or instance does not exist."""

    code = "not_found"


@dataclass(frozen=True)
class SpecProblem:
    """One problem in a spec file: where it is and what was expected."""

    file: str
    line: int | None
    path: str
    message: str
    column: int | None = None
    hint: str | None = field(default=None)

    def render(self) -> str:
        """``file:line: field.path: message (hint)`` on one line."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class SpecError(InputError):
    """A spec file is invalid. Carries every problem found, first one first."""

    code = "invalid_spec"

    def __init__(self, problems: list[SpecProblem]) -> None:
        if not problems:
            raise ValueError("SpecError needs at least one problem")
        self.problems = problems
        first = problems[0].render()
        more = len(problems) - 1
        super().__init__(first if not more else f"{first} (and {more} more)")

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["problems"] = [
            {
                "file": p.file,
                "line": p.line,
                "column": p.column,
                "field": p.path,
                "message": p.message,
                "hint": p.hint,
            }
            for p in self.problems
        ]
        return data


class RefusedError(PermanentError):
    """Valid input refused by policy or state (lock, window, preflight)."""

    exit_code = 3
    code = "refused"


class LockHeldError(RefusedError):
    """Another operation holds the service's deploy lock."""

    code = "lock_held"


class PreflightError(RefusedError):
    """A pre-deployment check failed, so nothing was changed."""

    code = "preflight_failed"


class OperationFailedError(PermanentError):
    """The operation ran and failed."""

    exit_code = 1
    code = "operation_failed"


class RolledBackError(OperationFailedError):
    """The rollout failed and the previous release was restored."""

    code = "rolled_back"


def _all_subclasses(cls: type[ZerodownError]) -> list[type[ZerodownError]]:
    found: list[type[ZerodownError]] = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


def error_from_dict(data: dict[str, Any]) -> ZerodownError:
    """Rebuild an error sent as ``to_dict()`` (by the HTTP API) on the client side."""
    code = str(data.get("code", "error"))
    message = str(data.get("message", "unknown error"))
    if code == SpecError.code and data.get("problems"):
        problems = [
            SpecProblem(
                file=str(p.get("file", "")),
                line=p.get("line"),
                path=str(p.get("field", "")),
                message=str(p.get("message", "")),
                column=p.get("column"),
                hint=p.get("hint"),
            )
            for p in data["problems"]
        ]
        return SpecError(problems)
    for cls in _all_subclasses(ZerodownError):
        if cls.code == code and cls not in (SpecError, TemporaryError, ControllerUnavailableError):
            return cls(message)
    if code in (TemporaryError.code, ControllerUnavailableError.code):
        return ControllerUnavailableError(message)
    return OperationFailedError(message)
