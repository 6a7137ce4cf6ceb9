"""Running the external programs backups rely on (restic, pg_dump, pg_restore, psql).

``run_tool`` captures output to files (never a pipe that could fill and block), enforces a
timeout by killing the program's whole process group, passes secrets through the environment
(never the command line, which ``ps`` shows to everyone), and turns a missing program into an
error naming the Debian package to install.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from zerodown.core.errors import OperationFailedError, RefusedError

__all__ = ["ToolResult", "run_tool"]

_OUTPUT_LIMIT: Final = 256 * 1024
"""Characters of a tool's stdout and stderr kept (from the end)."""


@dataclass(frozen=True)
class ToolResult:
    """How an external program ended and the tail of what it printed."""

    command: str  # the program's name, for messages
    exit_code: int
    stdout: str
    stderr: str

    @property
    def last_error_line(self) -> str:
        lines = [line for line in self.stderr.strip().splitlines() if line.strip()]
        return lines[-1][:300] if lines else ""


def run_tool(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float,
    package: str,
    stdin_text: str | None = None,
    cwd: Path | None = None,
    whole_stdout: bool = False,
) -> ToolResult:
    """Run ``argv`` and wait at most ``timeout`` seconds (then kill its process group).

    ``env`` is added to this process's environment (secrets go there, never into ``argv``).
    Raises ``RefusedError`` naming the Debian ``package`` when the program is missing and
    ``OperationFailedError`` on a timeout; any exit code is returned for the caller to judge.
    Output is kept from its end, at most 256 KiB of each, unless ``whole_stdout``.
    """
    full_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=full_env,
                cwd=cwd,
                start_new_session=True,  # a timeout stops everything it started
            )
        except FileNotFoundError as exc:
            raise RefusedError(
                f"{argv[0]} is not installed: install the Debian package '{package}'"
            ) from exc
        except OSError as exc:
            raise OperationFailedError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
        try:
            proc.communicate(stdin_text.encode() if stdin_text is not None else None, timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise OperationFailedError(
                f"{argv[0]} did not finish within {timeout:g}s and was stopped"
            ) from None
        return ToolResult(
            command=Path(argv[0]).name,
            exit_code=proc.returncode,
            stdout=_tail(out, None if whole_stdout else _OUTPUT_LIMIT),
            stderr=_tail(err, _OUTPUT_LIMIT),
        )


def _tail(handle: IO[bytes], limit: int | None) -> str:
    size = handle.seek(0, os.SEEK_END)
    handle.seek(0 if limit is None else max(0, size - limit))
    return handle.read().decode("utf-8", errors="replace")
