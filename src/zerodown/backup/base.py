"""The ``BackupTarget`` Protocol and the reports its operations return.

A target is one thing a service keeps data in (a folder, a SQLite file, a PostgreSQL database)
and knows four things about it: how to save it into artifacts, how to re-read those artifacts
and check them, how to put them back, and how to remove them. It knows nothing of the
catalogue: ``runner.Backups`` registers the backup before a target writes anything and
completes the registration after, so a target only has to write each artifact under a temporary
name and rename it when it is whole.

Targets report problems as findings (``VerifyReport.problems``) when checking, and raise
``ZerodownError``s when an operation cannot be done; third-party errors never leak.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from zerodown.store.backups import BackupArtifact

__all__ = [
    "ArtifactCheck",
    "BackupTarget",
    "RestoreReport",
    "VerifyReport",
]


@dataclass(frozen=True, kw_only=True)
class ArtifactCheck:
    """What re-reading one artifact found."""

    name: str
    location: str
    expected_sha256: str
    actual_sha256: str | None  # None when it could not be read at all
    size_bytes: int | None
    ok: bool
    problem: str = ""

    def with_problem(self, problem: str) -> ArtifactCheck:
        """This check, failed for ``problem``."""
        return replace(self, ok=False, problem=problem)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "location": self.location,
            "expected_sha256": self.expected_sha256,
            "actual_sha256": self.actual_sha256,
            "size_bytes": self.size_bytes,
            "ok": self.ok,
            "problem": self.problem,
        }


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """The outcome of re-reading a backup's artifacts: ``ok`` or ``corrupted``."""

    artifacts: tuple[ArtifactCheck, ...]
    problems: tuple[str, ...] = ()  # findings beyond digests, e.g. ``restic check`` errors
    details: Mapping[str, Any] = field(default_factory=dict)  # tool output, counts

    @property
    def ok(self) -> bool:
        return not self.problems and all(a.ok for a in self.artifacts)

    @property
    def status(self) -> str:
        return "ok" if self.ok else "corrupted"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "artifacts": [a.to_dict() for a in self.artifacts],
            "problems": list(self.problems),
            "details": dict(self.details),
        }


@dataclass(frozen=True, kw_only=True)
class RestoreReport:
    """Where a backup was restored, how much was written and the digests that prove it."""

    destination: str  # a path, or a database URL without its password
    replaced_live: bool  # True only with ``force`` onto the live location
    bytes_written: int
    sha256: str  # of the restored file, the restored tree's manifest, or the restored dump
    expected_sha256: str  # what the catalogue recorded
    details: Mapping[str, Any] = field(default_factory=dict)
    content_matches: bool | None = None
    """For data written anew rather than copied byte for byte (SQLite restored into an existing
    database through its backup API): whether the restored content equals the backup's, and
    ``sha256`` is then the digest of the restored content. None when the bytes are compared."""

    @property
    def compared(self) -> str:
        """What ``matches`` compares: ``bytes`` (the digest of what was written) or
        ``content`` (the data itself, for data written anew)."""
        return "bytes" if self.content_matches is None else "content"

    @property
    def matches(self) -> bool:
        if self.content_matches is not None:
            return self.content_matches
        return self.sha256 == self.expected_sha256

    def to_dict(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "replaced_live": self.replaced_live,
            "bytes_written": self.bytes_written,
            "sha256": self.sha256,
            "expected_sha256": self.expected_sha256,
            "matches": self.matches,
            "compared": self.compared,
            "details": dict(self.details),
        }


class BackupTarget(Protocol):
    """One kind of data a service keeps, and how to save, check, restore and remove it."""

    kind: str  # "files", "sqlite", "postgresql", "docker-volume"
    name: str  # the target's name in the spec

    def describe(self) -> str:
        """Where the live data is, for messages (a URL without its password)."""
        ...

    def tool_versions(self) -> dict[str, str]:
        """The tools this target runs and their versions (``{"pg_dump": "15.18"}``).

        Raises ``RefusedError`` naming the package to install when a tool is missing."""
        ...

    def back_up(self, *, backup_id: int, folder: Path) -> list[BackupArtifact]:
        """Save the live data now. File artifacts are written into ``folder`` under a temporary
        name, flushed to disk and renamed to a name holding ``backup_id``; a snapshot is tagged
        with it. Raises ``OperationFailedError`` saying why when the data cannot be saved."""
        ...

    def verify(self, artifacts: Sequence[BackupArtifact]) -> VerifyReport:
        """Re-read every artifact and check its digest (and the tool's own check)."""
        ...

    def restore(
        self,
        artifacts: Sequence[BackupArtifact],
        *,
        backup_id: int,
        destination: str | None,
        force: bool,
    ) -> RestoreReport:
        """Put the data back: at ``destination``, or a new name next to the live data when
        None. The live data itself is only replaced with ``force``; without it a destination
        that exists is refused (``RefusedError``)."""
        ...

    def remove(self, artifacts: Sequence[BackupArtifact]) -> None:
        """Delete the artifacts (retention, an abandoned backup); missing ones are fine."""
        ...
