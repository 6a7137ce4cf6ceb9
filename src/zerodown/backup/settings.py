"""A service's ``backups:`` section resolved against the disk: paths, password, targets.

The spec says what to back up in the user's words (paths relative to the spec's folder, a
password *source*); ``BackupSettings`` is the same with every path absolute and the target
objects built, which is what the runner, the scheduler, retention and drills work with.

The password is never read here: ``PasswordSource`` says where it is, and hands restic the
file's path or the variable's value through restic's own environment variables at the moment
restic runs. Messages name the source, never the value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from zerodown.backup.base import BackupTarget
from zerodown.core.errors import InputError, NotFoundError
from zerodown.spec.models import BackupsSpec, BackupTargetSpec, RetentionSpec, ServiceSpec

__all__ = ["BackupSettings", "PasswordSource", "resolve_settings"]

REPOSITORY_FOLDER = "backups"
"""The repository's folder in the state directory when the spec names none."""


@dataclass(frozen=True)
class PasswordSource:
    """Where the repository password is: a file, or an environment variable."""

    file: Path | None = None
    env: str | None = None

    def describe(self) -> str:
        if self.file is not None:
            return f"password file {self.file}"
        return f"environment variable {self.env}"

    def restic_env(self) -> dict[str, str]:
        """``RESTIC_PASSWORD_FILE`` or ``RESTIC_PASSWORD`` for restic's environment.

        Raises ``InputError`` naming the source (not the value) when it is missing or empty."""
        if self.file is not None:
            try:
                if not self.file.read_bytes().strip():
                    raise InputError(f"the backup {self.describe()} is empty")
            except OSError as exc:
                raise InputError(
                    f"cannot read the backup {self.describe()}: {exc.strerror or exc}"
                ) from exc
            return {"RESTIC_PASSWORD_FILE": str(self.file)}
        assert self.env is not None
        value = os.environ.get(self.env, "")
        if not value:
            raise InputError(f"the backup password's {self.describe()} is not set or empty")
        return {"RESTIC_PASSWORD": value}


@dataclass(frozen=True)
class BackupSettings:
    """One service's backups, ready to run."""

    service: str
    spec: BackupsSpec
    spec_dir: Path
    repository: Path
    password: PasswordSource | None

    @property
    def restic_repository(self) -> Path:
        """The restic repository of ``files`` targets, inside the repository folder."""
        return self.repository / "restic"

    @property
    def restic_cache(self) -> Path:
        return self.repository / "restic-cache"

    def folder(self, target: str) -> Path:
        """Where file artifacts (database copies and dumps) of one target go."""
        return self.repository / self.service / target

    def target_spec(self, name: str) -> BackupTargetSpec:
        """The target ``name``; ``NotFoundError`` listing the ones the spec has."""
        found = self.spec.target(name)
        if found is None:
            have = ", ".join(t.name for t in self.spec.targets) or "none"
            raise NotFoundError(
                f"{self.service} has no backup target {name!r} (targets in its spec: {have})"
            )
        return found

    def retention(self, name: str) -> RetentionSpec:
        """The retention rules of target ``name`` (its own, else the section's)."""
        return self.spec.retention_for(self.target_spec(name))

    def path(self, text: str) -> Path:
        """A path from the spec, relative to the spec's folder."""
        return (self.spec_dir / Path(text).expanduser()).resolve()

    def target(self, name: str) -> BackupTarget:
        """The ``BackupTarget`` that backs up target ``name``."""
        spec = self.target_spec(name)
        if spec.kind == "files":
            from zerodown.backup.restic import FilesTarget, Restic

            if self.password is None:
                raise InputError(
                    f"backup target {name!r} ({spec.kind}) needs a repository password: "
                    "set backups.passwordFile or backups.passwordEnv"
                )
            assert spec.path is not None  # checked by the spec's validation
            restic = Restic(self.restic_repository, self.password, cache=self.restic_cache)
            return FilesTarget(
                name=name,
                source=self.path(spec.path),
                restic=restic,
                service=self.service,
                exclude=spec.exclude,
            )
        if spec.kind == "sqlite":
            from zerodown.backup.sqlite import SqliteTarget

            assert spec.path is not None
            return SqliteTarget(name=name, database=self.path(spec.path))
        if spec.kind == "postgresql":
            from zerodown.backup.postgres import PostgresTarget

            assert spec.url is not None
            return PostgresTarget(name=name, url=spec.url)
        from zerodown.backup.docker_volume import DockerVolumeTarget
        from zerodown.backup.restic import Restic

        if self.password is None:
            raise InputError(
                f"backup target {name!r} ({spec.kind}) needs a repository password: "
                "set backups.passwordFile or backups.passwordEnv"
            )
        assert spec.volume is not None
        restic = Restic(self.restic_repository, self.password, cache=self.restic_cache)
        return DockerVolumeTarget(
            name=name, volume=spec.volume, restic=restic, service=self.service
        )


def resolve_settings(spec: ServiceSpec, *, spec_dir: Path, state_dir: Path) -> BackupSettings:
    """``spec.backups`` with paths made absolute (relative to ``spec_dir``); the repository
    defaults to ``backups`` in ``state_dir``."""
    section = spec.backups
    spec_dir = Path(spec_dir).resolve()
    if section.repository is not None:
        repository = (spec_dir / Path(section.repository).expanduser()).resolve()
    else:
        repository = Path(state_dir).resolve() / REPOSITORY_FOLDER
    password: PasswordSource | None = None
    if section.password_file is not None:
        password = PasswordSource(file=(spec_dir / section.password_file).resolve())
    elif section.password_env is not None:
        password = PasswordSource(env=section.password_env)
    return BackupSettings(
        service=spec.service,
        spec=section,
        spec_dir=spec_dir,
        repository=repository,
        password=password,
    )
