"""Docker volumes, backed up through restic from the volume's folder on the engine's host.

A volume of the ``local`` driver is a folder on the machine running the engine
(``docker volume inspect`` gives its ``Mountpoint``); zerodown backs that folder up as a
``files`` target does: an encrypted restic snapshot tagged with the backup id and the digest of
its manifest. The engine must therefore be local and the controller able to read its volume
folders (root, as the engine). Volumes of other drivers are refused with a clear error.

A restore goes into a new volume, ``<volume>-restored-<id>``, created for it; an existing
volume is only restored into with ``force``, and then what it held is moved aside first (next
to its ``_data`` folder, into a new ``before-restore-<id>-<UTC time>``) rather than deleted; if
a move fails part-way, what was moved is moved back, so the volume is left as it was. Containers
using the volume keep their mount: the volume's folder itself is never replaced, only its
entries.

The ``docker`` command (Debian package ``docker.io``) is used rather than the SDK, so backups
need no Python extra.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from zerodown.backup.base import RestoreReport, VerifyReport
from zerodown.backup.digests import fsync_folder, tree_manifest
from zerodown.backup.restic import FilesTarget, Restic
from zerodown.backup.tools import ToolResult, run_tool
from zerodown.core.errors import OperationFailedError, RefusedError
from zerodown.store.backups import BackupArtifact

__all__ = ["DockerVolumeTarget"]

_PACKAGE: Final = "docker.io"
_TIMEOUT: Final = 120.0


class DockerVolumeTarget:
    """One Docker volume of the ``local`` driver."""

    kind = "docker-volume"

    def __init__(
        self, *, name: str, volume: str, restic: Restic, service: str, docker: str = "docker"
    ) -> None:
        self.name = name
        self.volume = volume
        self.restic = restic
        self.service = service
        self.docker = docker

    def describe(self) -> str:
        return f"docker volume {self.volume}"

    def tool_versions(self) -> dict[str, str]:
        result = self._docker("version", "--format", "{{.Server.Version}}")
        if result.exit_code != 0:
            raise OperationFailedError(
                f"the Docker engine does not answer: {result.last_error_line}"
            )
        return {"restic": self.restic.version(), "docker": result.stdout.strip()}

    def back_up(self, *, backup_id: int, folder: Path) -> list[BackupArtifact]:
        mountpoint = self._mountpoint(self.volume)
        if mountpoint is None:
            raise OperationFailedError(f"backup target {self.name!r}: no volume {self.volume}")
        (artifact,) = self._files(mountpoint).back_up(backup_id=backup_id, folder=folder)
        meta = {**dict(artifact.meta), "volume": self.volume}
        return [
            BackupArtifact(
                name="snapshot",
                location=artifact.location,
                size_bytes=artifact.size_bytes,
                sha256=artifact.sha256,
                meta=meta,
            )
        ]

    def verify(self, artifacts: Sequence[BackupArtifact]) -> VerifyReport:
        source = Path(str(artifacts[0].meta["source"])) if artifacts else Path("/")
        return self._files(source).verify(artifacts)

    def restore(
        self,
        artifacts: Sequence[BackupArtifact],
        *,
        backup_id: int,
        destination: str | None,
        force: bool,
    ) -> RestoreReport:
        (artifact,) = artifacts
        source = Path(str(artifact.meta["source"]))
        target = destination or f"{self.volume}-restored-{backup_id}"
        replaces_live = target == self.volume
        mountpoint = self._mountpoint(target)
        if mountpoint is not None and not force:
            what = "the live volume" if replaces_live else "it"
            raise RefusedError(
                f"docker volume {target} exists: restoring into it would overwrite {what}; "
                "choose another destination or pass --force"
            )
        created = mountpoint is None
        if mountpoint is None:
            made = self._docker("volume", "create", "--label", "zerodown.restored=1", target)
            if made.exit_code != 0:
                raise OperationFailedError(f"cannot create volume {target}: {made.last_error_line}")
            mountpoint = self._mountpoint(target)
            if mountpoint is None:
                raise OperationFailedError(f"volume {target} has no folder on this host")
        staging = mountpoint.parent / f".zerodown-restore-{backup_id}-{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        aside: Path | None = None
        try:
            self.restic.restore(artifact.location.removeprefix("restic:"), staging)
            restored = staging / source.relative_to(source.anchor)
            manifest = tree_manifest(restored)
            if manifest.sha256 != artifact.sha256:
                raise OperationFailedError(
                    f"backup {backup_id} is corrupted: the restored files' digest "
                    f"{manifest.sha256[:12]} is not the recorded {artifact.sha256[:12]}; "
                    "nothing was restored"
                )
            aside = self._swap_in(restored, mountpoint, backup_id=backup_id, volume=target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        details: dict[str, Any] = {
            "volume": target,
            "created": created,
            "mountpoint": str(mountpoint),
            "files": len(manifest.files),
        }
        if aside is not None:
            details["previous_moved_to"] = str(aside)
        return RestoreReport(
            destination=target,
            replaced_live=replaces_live,
            bytes_written=manifest.size_bytes,
            sha256=manifest.sha256,
            expected_sha256=artifact.sha256,
            details=details,
        )

    def remove(self, artifacts: Sequence[BackupArtifact]) -> None:
        self.restic.forget([a.location.removeprefix("restic:") for a in artifacts])

    # machinery ------------------------------------------------------------------------------
    def _swap_in(
        self, restored: Path, mountpoint: Path, *, backup_id: int, volume: str
    ) -> Path | None:
        """Move the volume's entries aside (into a new folder beside ``_data``), then the
        restored entries in; the aside folder, or None when the volume was empty. When a move
        fails, what was moved is moved back, so the volume holds what it held before."""
        entries = list(mountpoint.iterdir())
        aside = _new_aside(mountpoint.parent, backup_id) if entries else None
        moved_aside: list[str] = []
        moved_in: list[str] = []
        try:
            for entry in entries:
                assert aside is not None
                os.replace(entry, aside / entry.name)
                moved_aside.append(entry.name)
            for entry in restored.iterdir():
                os.replace(entry, mountpoint / entry.name)
                moved_in.append(entry.name)
            fsync_folder(mountpoint)
        except OSError as exc:
            left = _put_back(mountpoint, aside, moved_aside=moved_aside, moved_in=moved_in)
            where = (
                f"; {len(left)} entr{'y' if len(left) == 1 else 'ies'} could not be moved back "
                f"and are in {aside}: {', '.join(left)}"
                if left
                else "; the volume holds what it held before"
            )
            raise OperationFailedError(
                f"restoring into volume {volume} failed moving {exc.filename}: "
                f"{exc.strerror or exc}{where}"
            ) from exc
        return aside

    def _files(self, source: Path) -> FilesTarget:
        return FilesTarget(name=self.name, source=source, restic=self.restic, service=self.service)

    def _docker(self, *args: str) -> ToolResult:
        return run_tool([self.docker, *args], timeout=_TIMEOUT, package=_PACKAGE)

    def _mountpoint(self, volume: str) -> Path | None:
        """The folder of a ``local`` volume, or None when there is no such volume."""
        result = self._docker("volume", "inspect", "--format", "{{json .}}", volume)
        if result.exit_code != 0:
            if "no such volume" in result.last_error_line.lower():
                return None
            raise OperationFailedError(f"docker volume inspect {volume}: {result.last_error_line}")
        try:
            info = json.loads(result.stdout)
        except ValueError as exc:
            raise OperationFailedError(f"docker volume inspect {volume} printed no JSON") from exc
        if info.get("Driver") != "local":
            raise RefusedError(
                f"volume {volume} uses the {info.get('Driver')!r} driver: only local volumes "
                "can be backed up from their folder"
            )
        mountpoint = Path(str(info.get("Mountpoint") or ""))
        if not mountpoint.is_dir():
            raise RefusedError(
                f"the folder of volume {volume} ({mountpoint}) is not readable here: the "
                "Docker engine must run on this machine"
            )
        return mountpoint


def _new_aside(parent: Path, backup_id: int) -> Path:
    """A new folder ``before-restore-<id>-<UTC time>`` in ``parent`` (``-2``, ``-3``... when
    a restore of the same backup already made one in the same second)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = parent / f"before-restore-{backup_id}-{stamp}"
    for number in range(1, 1000):
        candidate = base if number == 1 else base.with_name(f"{base.name}-{number}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise OperationFailedError(f"cannot make a folder for the volume's data in {parent}")


def _put_back(
    mountpoint: Path, aside: Path | None, *, moved_aside: list[str], moved_in: list[str]
) -> list[str]:
    """Undo a half-done swap: remove the restored entries moved in, move the volume's own
    entries back from ``aside`` and remove ``aside`` when empty. The names left in ``aside``."""
    for name in moved_in:
        path = mountpoint / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    left = []
    for name in moved_aside:
        assert aside is not None
        try:
            os.replace(aside / name, mountpoint / name)
        except OSError:
            left.append(name)
    if aside is not None and not left:
        with contextlib.suppress(OSError):
            aside.rmdir()
    return left
