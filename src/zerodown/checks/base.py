"""The result every pre- and post-deployment check returns, and how results combine.

A check is a measurement, not an exception: it says ``pass``, ``warn`` or ``fail``, a one-line
summary a person can act on, and the numbers it measured (``figures``), so the release report
can show what was seen and not only the verdict. Deciding what a failed check means (refuse the
deployment, roll back, only report) is the caller's business.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import httpx

from zerodown.spec.durations import format_duration

__all__ = [
    "CHECK_STATUSES",
    "CheckResult",
    "CheckStatus",
    "describe_error",
    "worst",
    "worst_status",
]

CheckStatus = Literal["pass", "warn", "fail"]
CHECK_STATUSES: Final[tuple[CheckStatus, ...]] = ("pass", "warn", "fail")
"""From best to worst."""


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict, what it saw, and how long it took.

    ``name`` is stable and unique within a run (``capacity``, ``dependency:db``, ``smoke:home``);
    ``figures`` holds JSON-ready values (numbers, text, lists and mappings of them).
    """

    name: str
    status: CheckStatus
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in CHECK_STATUSES:
            raise ValueError(f"unknown check status {self.status!r} (pass, warn or fail)")

    @property
    def passed(self) -> bool:
        """True unless the check failed (a warning passes)."""
        return self.status != "fail"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for the report's JSON twin and the HTTP API."""
        return {
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "figures": _plain(self.figures),
            "duration_s": round(self.duration_s, 6),
        }


def _plain(value: Any) -> Any:
    """``value`` with tuples as lists and mapping keys as text, so ``json.dumps`` takes it."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def worst(results: Iterable[CheckResult]) -> CheckStatus:
    """The worst status among ``results`` (``fail`` > ``warn`` > ``pass``); ``pass`` if none."""
    return worst_status(result.status for result in results)


def worst_status(statuses: Iterable[CheckStatus]) -> CheckStatus:
    """The worst of ``statuses`` (``fail`` > ``warn`` > ``pass``); ``pass`` if none."""
    rank = max((CHECK_STATUSES.index(status) for status in statuses), default=0)
    return CHECK_STATUSES[rank]


def describe_error(exc: BaseException, timeout: float) -> str:
    """What went wrong, in a few words (``connection refused``, ``timed out after 2s``).

    Libraries wrap the operating system's error (httpx wraps httpcore, which wraps the
    socket's); the one found along the chain of wrapped errors says it best. Otherwise the
    first line of the exception's own message.
    """
    link: BaseException | None = exc
    while link is not None:
        if isinstance(link, TimeoutError | httpx.TimeoutException):
            return f"timed out after {format_duration(timeout)}"
        if isinstance(link, ConnectionRefusedError):
            return "connection refused"
        if isinstance(link, ConnectionResetError):
            return "connection reset"
        if isinstance(link, socket.gaierror):
            return f"cannot resolve host: {link.strerror or link}"
        if isinstance(link, OSError):
            return (link.strerror or str(link) or type(link).__name__).lower()
        link = _wrapped(link)
    lines = str(exc).strip().splitlines()
    return lines[0] if lines and lines[0] else type(exc).__name__


def _wrapped(exc: BaseException) -> BaseException | None:
    """The error ``exc`` wraps: its cause, its context, or one it carries as an argument
    (httpcore keeps the socket's error in ``args`` and the chain is cut on the way up)."""
    if exc.__cause__ is not None:
        return exc.__cause__
    if exc.__context__ is not None and not exc.__suppress_context__:
        return exc.__context__
    return next((arg for arg in exc.args if isinstance(arg, BaseException)), None)
