"""Files and folders, backed up through restic: deduplicated, encrypted snapshots.

``Restic`` drives the ``restic`` program (Debian package ``restic``) by its ``--json`` output
and exit codes: 0 is success; for ``backup`` 3 means some files could not be read (the snapshot
is incomplete, so the backup fails); anything else is an error whose last line is reported. The
repository password reaches restic through ``RESTIC_PASSWORD_FILE``/``RESTIC_PASSWORD``, never
its command line.

``FilesTarget`` records, for each backup, the digest of the backed-up tree's manifest (every
file's path, size and SHA-256, read just before restic runs), tags the snapshot with the backup
id, and compares a restored tree's manifest digest with it. ``verify`` runs ``restic check
--read-data`` (every pack re-read and every blob's SHA-256 checked) and then restores the
snapshot into a scratch folder to compare the manifest digest.

``restic prune`` locks the repository exclusively, and restic 0.14 makes any other command that
meets the lock fail at once instead of waiting. So every restic command zerodown runs holds a
shared ``flock`` on a file beside the repository and ``prune`` holds it exclusively: in every
process on this machine, a backup started during a prune waits for it instead of failing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from zerodown.backup.base import ArtifactCheck, RestoreReport, VerifyReport
from zerodown.backup.digests import HashedFile, TreeManifest, fsync_folder, hash_tree, tree_manifest
from zerodown.backup.settings import PasswordSource
from zerodown.backup.tools import ToolResult, run_tool
from zerodown.core.errors import OperationFailedError, RefusedError
from zerodown.store.backups import BackupArtifact

__all__ = ["FilesTarget", "Restic"]

RESTIC_TIMEOUT_SECONDS: Final = 6 * 3600.0
_PACKAGE: Final = "restic"
_SNAPSHOT_PREFIX: Final = "restic:"


class Restic:
    """One restic repository on a local path."""

    def __init__(
        self,
        repository: Path,
        password: PasswordSource,
        *,
        cache: Path | None = None,
        binary: str = "restic",
        timeout: float = RESTIC_TIMEOUT_SECONDS,
    ) -> None:
        self.repository = repository
        self.password = password
        self.cache = cache
        self.binary = binary
        self.timeout = timeout

    def run(self, *args: str) -> ToolResult:
        with self._shared():
            return run_tool(
                self._argv(*args), env=self._env(), timeout=self.timeout, package=_PACKAGE
            )

    @contextlib.contextmanager
    def _shared(self) -> Iterator[None]:
        with _file_lock(self._lock_path(), exclusive=False):
            yield

    def _lock_path(self) -> Path:
        self.repository.parent.mkdir(parents=True, exist_ok=True)
        return self.repository.with_name(f".{self.repository.name}.zerodown-lock")

    def _argv(self, *args: str) -> list[str]:
        options = ["--no-cache"] if self.cache is None else ["--cache-dir", str(self.cache)]
        return [self.binary, *options, *args]

    def _env(self) -> dict[str, str]:
        return {"RESTIC_REPOSITORY": str(self.repository), **self.password.restic_env()}

    def version(self) -> str:
        """``0.14.0`` from ``restic version``."""
        try:
            result = run_tool([self.binary, "version"], timeout=60, package=_PACKAGE)
        except RefusedError as exc:
            raise RefusedError(f"{exc.message} (files targets are backed up by restic)") from exc
        words = result.stdout.split()
        return words[1] if len(words) > 1 and words[0] == "restic" else result.stdout.strip()

    def ensure_repository(self) -> None:
        """Create the repository if it does not exist yet (once, even with several writers)."""
        if (self.repository / "config").exists():
            return
        self.repository.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.repository.parent / ".restic-init.lock"):
            if (self.repository / "config").exists():
                return
            result = self.run("init", "--json")
            if result.exit_code != 0:
                raise OperationFailedError(
                    f"restic init of {self.repository} failed: {result.last_error_line}"
                )

    def backup(self, path: Path, *, tags: Sequence[str], exclude: Sequence[str]) -> dict[str, Any]:
        """Back ``path`` up; restic's summary (``snapshot_id``, ``data_added`` ...)."""
        args = ["backup", "--json"]
        for tag in tags:
            args += ["--tag", tag]
        for pattern in exclude:
            args += ["--exclude", pattern]
        result = self.run(*args, str(path))
        if result.exit_code == 3:
            raise OperationFailedError(
                f"restic could not read some files of {path}, so the snapshot is incomplete: "
                f"{result.last_error_line}"
            )
        if result.exit_code != 0:
            raise OperationFailedError(
                f"restic backup of {path} failed (exit code {result.exit_code}): "
                f"{result.last_error_line}"
            )
        summary = _last_json(result.stdout, "summary")
        if summary is None or not summary.get("snapshot_id"):
            raise OperationFailedError(f"restic backup of {path} printed no summary")
        return summary

    def snapshots(self, *, tags: Sequence[str] = ()) -> list[dict[str, Any]]:
        args = ["snapshots", "--json"]
        for tag in tags:
            args += ["--tag", tag]
        result = self.run(*args)
        if result.exit_code != 0:
            raise OperationFailedError(f"restic snapshots failed: {result.last_error_line}")
        try:
            found = json.loads(result.stdout or "[]")
        except ValueError as exc:
            raise OperationFailedError("restic snapshots printed no JSON") from exc
        return [item for item in found or [] if isinstance(item, dict)]

    def list_files(self, snapshot_id: str) -> dict[str, int]:
        """Every regular file in a snapshot: absolute path -> size (``restic ls --json``)."""
        with self._shared():
            result = run_tool(
                self._argv("ls", "--json", snapshot_id),
                env=self._env(),
                timeout=self.timeout,
                package=_PACKAGE,
                whole_stdout=True,
            )
        if result.exit_code != 0:
            raise OperationFailedError(
                f"restic ls of snapshot {snapshot_id[:8]} failed: {result.last_error_line}"
            )
        files: dict[str, int] = {}
        for line in result.stdout.splitlines():
            with contextlib.suppress(ValueError):
                node = json.loads(line)
                if isinstance(node, dict) and node.get("type") == "file":
                    files[str(node["path"])] = int(node.get("size", 0))
        return files

    def dump_digest(self, snapshot_id: str, path: str) -> tuple[str, int]:
        """SHA-256 and size of one file as the snapshot holds it (``restic dump``, streamed)."""
        digest = hashlib.sha256()
        size = 0
        with self._shared(), tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(
                    self._argv("dump", snapshot_id, path),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    env={**os.environ, **self._env()},
                )
            except FileNotFoundError as exc:
                raise RefusedError(
                    f"{self.binary} is not installed: install the Debian package 'restic'"
                ) from exc
            stream = proc.stdout
            assert stream is not None
            with stream:
                for block in iter(lambda: stream.read(1024 * 1024), b""):
                    digest.update(block)
                    size += len(block)
            code = proc.wait(timeout=self.timeout)
            err.seek(0)
            reason = err.read().decode("utf-8", errors="replace").strip().splitlines()[-1:]
        if code != 0:
            raise OperationFailedError(
                f"restic dump of {path} failed: {reason[0] if reason else f'exit code {code}'}"
            )
        return digest.hexdigest(), size

    def check(self, *, read_data: bool) -> ToolResult:
        return self.run("check", *(["--read-data"] if read_data else []))

    def restore(self, snapshot_id: str, target: Path) -> None:
        result = self.run("restore", snapshot_id, "--target", str(target))
        if result.exit_code != 0:
            raise OperationFailedError(
                f"restic restore of snapshot {snapshot_id[:8]} failed: {result.last_error_line}"
            )

    def forget(self, snapshot_ids: Sequence[str]) -> None:
        """Remove snapshots from the repository's list; their data goes at the next prune."""
        if not snapshot_ids:
            return
        result = self.run("forget", *snapshot_ids)
        if result.exit_code != 0 and "no matching ID found" not in result.stderr:
            raise OperationFailedError(f"restic forget failed: {result.last_error_line}")

    def prune(self) -> dict[str, Any]:
        """Delete the data no snapshot uses any more (``restic prune``), holding the
        repository's lock exclusively. Returns what it measured: the repository's size on disk
        before and after, the bytes freed and how long it took."""
        with _file_lock(self._lock_path(), exclusive=True):
            before = _folder_bytes(self.repository)
            started = time.monotonic()
            result = run_tool(
                self._argv("prune"), env=self._env(), timeout=self.timeout, package=_PACKAGE
            )
            took = time.monotonic() - started
            after = _folder_bytes(self.repository)
        if result.exit_code != 0:
            raise OperationFailedError(
                f"restic prune of {self.repository} failed: {result.last_error_line}"
            )
        return {
            "repository": str(self.repository),
            "duration_s": round(took, 6),
            "repository_bytes_before": before,
            "repository_bytes_after": after,
            "freed_bytes": max(before - after, 0),
        }


class FilesTarget:
    """A folder or a file, backed up as restic snapshots."""

    kind = "files"

    def __init__(
        self,
        *,
        name: str,
        source: Path,
        restic: Restic,
        service: str,
        exclude: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.source = source
        self.restic = restic
        self.service = service
        self.exclude = tuple(exclude)

    def describe(self) -> str:
        return str(self.source)

    def tool_versions(self) -> dict[str, str]:
        return {"restic": self.restic.version()}

    def back_up(self, *, backup_id: int, folder: Path) -> list[BackupArtifact]:
        if not self.source.exists():
            raise OperationFailedError(f"backup target {self.name!r}: {self.source} does not exist")
        hashed = hash_tree(self.source)
        self.restic.ensure_repository()
        tags = [
            "zerodown",
            f"service={self.service}",
            f"target={self.name}",
            f"backup-id={backup_id}",
        ]
        summary = self.restic.backup(self.source, tags=tags, exclude=self.exclude)
        short_id = str(summary["snapshot_id"])
        full_id = next(
            (
                str(s["id"])
                for s in self.restic.snapshots(tags=[f"backup-id={backup_id}"])
                if str(s.get("id", "")).startswith(short_id)
            ),
            short_id,
        )
        manifest, reread = self._snapshot_manifest(full_id, hashed)
        meta = {
            "snapshot_id": full_id,
            "repository": str(self.restic.repository),
            "source": str(self.source),
            "files": len(manifest.files),
            "files_read_from_snapshot": reread,
            "data_added_bytes": int(summary.get("data_added", 0)),
            "files_new": int(summary.get("files_new", 0)),
            "files_changed": int(summary.get("files_changed", 0)),
        }
        return [
            BackupArtifact(
                name="snapshot",
                location=f"{_SNAPSHOT_PREFIX}{full_id}",
                size_bytes=manifest.size_bytes,
                sha256=manifest.sha256,
                meta=meta,
            )
        ]

    def _snapshot_manifest(
        self, snapshot_id: str, hashed: dict[str, HashedFile]
    ) -> tuple[TreeManifest, int]:
        """The manifest of what the snapshot holds, and how many files had to be read from it.

        The files are the snapshot's own (``restic ls``: excludes applied, files created or
        deleted meanwhile as restic saw them). A file hashed before restic ran and unchanged
        since (same size and modification time) keeps that digest; any other is digested from
        the snapshot itself, so a file written during the backup is described as saved."""
        base = self.source.parent if self.source.is_file() else self.source
        entries: list[tuple[str, int, str]] = []
        reread = 0
        for path, size in self.restic.list_files(snapshot_id).items():
            relative = Path(path).relative_to(base).as_posix()
            known = hashed.get(relative)
            if known is not None and known.size == size and known.unchanged(base / relative):
                entries.append((relative, known.size, known.sha256))
                continue
            digest, read = self.restic.dump_digest(snapshot_id, path)
            entries.append((relative, read, digest))
            reread += 1
        return TreeManifest(tuple(sorted(entries))), reread

    def verify(self, artifacts: Sequence[BackupArtifact]) -> VerifyReport:
        check = self.restic.check(read_data=True)
        problems: list[str] = []
        details: dict[str, Any] = {"restic_check_exit_code": check.exit_code}
        if check.exit_code != 0:
            lines = [line for line in check.stderr.splitlines() if line.strip()][-5:]
            details["restic_check_output"] = lines
            problems.append(
                f"restic check --read-data found errors in {self.restic.repository}: "
                f"{check.last_error_line}"
            )
        checks: list[ArtifactCheck] = []
        for artifact in artifacts:
            snapshot = _snapshot_id(artifact)
            try:
                scratch_parent = self.restic.repository.parent
                manifest = self._restored_manifest(snapshot, scratch_parent=scratch_parent)
            except OperationFailedError as exc:
                checks.append(_failed(artifact, f"cannot restore the snapshot: {exc.message}"))
                continue
            same = manifest.sha256 == artifact.sha256
            checks.append(
                ArtifactCheck(
                    name=artifact.name,
                    location=artifact.location,
                    expected_sha256=artifact.sha256,
                    actual_sha256=manifest.sha256,
                    size_bytes=manifest.size_bytes,
                    ok=same,
                    problem="" if same else "the restored files differ from the backed-up ones",
                )
            )
        return VerifyReport(artifacts=tuple(checks), problems=tuple(problems), details=details)

    def restore(
        self,
        artifacts: Sequence[BackupArtifact],
        *,
        backup_id: int,
        destination: str | None,
        force: bool,
    ) -> RestoreReport:
        (artifact,) = artifacts
        source = Path(str(artifact.meta.get("source") or self.source))
        target = Path(destination).resolve() if destination else _beside(source, backup_id)
        replaces_live = target == self.source
        if (target.exists() or target.is_symlink()) and not force:
            what = "the live data" if replaces_live else "it"
            raise RefusedError(
                f"{target} exists: restoring there would overwrite {what}; choose another "
                "destination or pass --force"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".zerodown-restore-{backup_id}-{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            self.restic.restore(_snapshot_id(artifact), staging)
            restored = staging / source.relative_to(source.anchor)
            if not restored.exists():
                raise OperationFailedError(f"the snapshot holds no {source}")
            manifest = tree_manifest(restored)
            if manifest.sha256 != artifact.sha256:
                raise OperationFailedError(
                    f"backup {backup_id} is corrupted: the restored files' digest "
                    f"{manifest.sha256[:12]} is not the recorded {artifact.sha256[:12]}; "
                    "nothing was restored"
                )
            aside: Path | None = None
            if target.exists() or target.is_symlink():
                aside = _aside_name(target, backup_id)
                os.replace(target, aside)
            try:
                os.replace(restored, target)
            except OSError as exc:
                if aside is not None:
                    os.replace(aside, target)  # as it was
                raise OperationFailedError(
                    f"restoring into {target} failed: {exc.strerror or exc}; it holds what it "
                    "held before"
                ) from exc
            fsync_folder(target.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        details: dict[str, Any] = {"files": len(manifest.files), "snapshot_id": artifact.location}
        if aside is not None:
            details["previous_moved_to"] = str(aside)
        return RestoreReport(
            destination=str(target),
            replaced_live=replaces_live,
            bytes_written=manifest.size_bytes,
            sha256=manifest.sha256,
            expected_sha256=artifact.sha256,
            details=details,
        )

    def remove(self, artifacts: Sequence[BackupArtifact]) -> None:
        self.restic.forget([_snapshot_id(a) for a in artifacts])

    def _restored_manifest(self, snapshot_id: str, *, scratch_parent: Path) -> TreeManifest:
        scratch_parent.mkdir(parents=True, exist_ok=True)
        scratch = scratch_parent / f".zerodown-verify-{snapshot_id[:12]}-{os.getpid()}.tmp"
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            self.restic.restore(snapshot_id, scratch)
            restored = scratch / self.source.relative_to(self.source.anchor)
            if not restored.exists():
                raise OperationFailedError(f"the snapshot holds no {self.source}")
            return tree_manifest(restored)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _snapshot_id(artifact: BackupArtifact) -> str:
    return artifact.location.removeprefix(_SNAPSHOT_PREFIX)


def _failed(artifact: BackupArtifact, problem: str) -> ArtifactCheck:
    return ArtifactCheck(
        name=artifact.name,
        location=artifact.location,
        expected_sha256=artifact.sha256,
        actual_sha256=None,
        size_bytes=None,
        ok=False,
        problem=problem,
    )


def _beside(source: Path, backup_id: int) -> Path:
    """``/srv/uploads`` -> ``/srv/uploads.restored-17``; ``/srv/a.txt`` -> ``a.restored-17.txt``."""
    if source.suffix and not source.is_dir():
        return source.with_name(f"{source.stem}.restored-{backup_id}{source.suffix}")
    return source.with_name(f"{source.name}.restored-{backup_id}")


def _last_json(text: str, message_type: str) -> dict[str, Any] | None:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        with contextlib.suppress(ValueError):
            data = json.loads(line)
            if isinstance(data, dict) and data.get("message_type") == message_type:
                return data
    return None


def _folder_bytes(folder: Path) -> int:
    """Bytes of every regular file under ``folder`` (0 when it does not exist)."""
    total = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


@contextlib.contextmanager
def _file_lock(path: Path, *, exclusive: bool = True) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _aside_name(target: Path, backup_id: int) -> Path:
    """A free name beside ``target`` for the data a forced restore replaces:
    ``<name>.before-restore-<id>-<UTC time>`` (``-2``, ``-3``... within the same second)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = f"{target.name}.before-restore-{backup_id}-{stamp}"
    for number in range(1, 1000):
        candidate = target.with_name(base if number == 1 else f"{base}-{number}")
        if not (candidate.exists() or candidate.is_symlink()):
            return candidate
    raise OperationFailedError(f"no free name beside {target} for the data it replaces")
