"""Digests and atomic writes of backup artifacts.

- ``sha256_file`` reads a file in blocks; ``tree_manifest`` lists every regular file of a folder
  (or one file) with its size and SHA-256, and digests the list, so two trees with the same
  digest hold the same bytes under the same names.
- ``publish`` flushes a finished temporary file to disk and renames it into place, then flushes
  the folder, so an artifact is either absent or whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from zerodown.backup.base import ArtifactCheck
from zerodown.store.backups import BackupArtifact

__all__ = [
    "HashedFile",
    "TreeManifest",
    "check_file_artifact",
    "fsync_folder",
    "hash_tree",
    "publish",
    "sha256_file",
    "tree_manifest",
]

_BLOCK: Final = 1024 * 1024


def sha256_file(path: Path) -> tuple[str, int]:
    """The SHA-256 (hex) of a file and how many bytes were read."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


@dataclass(frozen=True)
class TreeManifest:
    """Every regular file under a root: relative path, size and SHA-256, sorted by path."""

    files: tuple[tuple[str, int, str], ...]

    @property
    def size_bytes(self) -> int:
        return sum(size for _, size, _ in self.files)

    @property
    def sha256(self) -> str:
        """One digest for the whole tree: SHA-256 of ``path\\0size\\0sha256\\n`` lines."""
        digest = hashlib.sha256()
        for path, size, file_digest in self.files:
            digest.update(f"{path}\0{size}\0{file_digest}\n".encode("utf-8", "surrogateescape"))
        return digest.hexdigest()

    def differences(self, other: TreeManifest, *, limit: int = 20) -> list[str]:
        """Paths that are missing, extra or different in ``other``, at most ``limit``."""
        mine = {path: (size, digest) for path, size, digest in self.files}
        theirs = {path: (size, digest) for path, size, digest in other.files}
        found: list[str] = []
        for path in sorted(mine.keys() | theirs.keys()):
            if path not in theirs:
                found.append(f"{path}: missing")
            elif path not in mine:
                found.append(f"{path}: not in the backup")
            elif mine[path] != theirs[path]:
                found.append(f"{path}: different content")
            if len(found) >= limit:
                break
        return found


@dataclass(frozen=True)
class HashedFile:
    """A file as it was when it was hashed: its size, modification time and SHA-256."""

    size: int
    mtime_ns: int
    sha256: str

    def unchanged(self, path: Path) -> bool:
        """True if ``path`` still has the size and modification time it was hashed with."""
        try:
            stat = path.stat()
        except OSError:
            return False
        return stat.st_size == self.size and stat.st_mtime_ns == self.mtime_ns


def hash_tree(root: Path) -> dict[str, HashedFile]:
    """Every regular file under ``root`` (or ``root`` itself, by its own name) by relative path,
    with the state it was hashed in, so a later change can be seen without reading it again."""
    paths: list[tuple[str, Path]] = []
    if root.is_file():
        paths.append((root.name, root))
    else:
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            for name in sorted(names):
                path = Path(folder, name)
                if not path.is_symlink() and path.is_file():
                    paths.append((path.relative_to(root).as_posix(), path))
    hashed: dict[str, HashedFile] = {}
    for relative, path in paths:
        try:
            before = path.stat()
            digest, size = sha256_file(path)
        except OSError:  # gone meanwhile: the snapshot decides whether it is in the backup
            continue
        hashed[relative] = HashedFile(size, before.st_mtime_ns, digest)
    return hashed


def tree_manifest(root: Path) -> TreeManifest:
    """The manifest of a folder (every regular file below it, symlinks not followed) or of
    one file (named by its own name)."""
    if root.is_file():
        digest, size = sha256_file(root)
        return TreeManifest(((root.name, size, digest),))
    files: list[tuple[str, int, str]] = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder, name)
            if path.is_symlink() or not path.is_file():
                continue
            digest, size = sha256_file(path)
            files.append((path.relative_to(root).as_posix(), size, digest))
    return TreeManifest(tuple(sorted(files)))


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk; best effort where unsupported."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def publish(temporary: Path, final: Path) -> None:
    """Flush ``temporary`` to disk and rename it to ``final`` (same folder): atomic."""
    fd = os.open(temporary, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, final)
    fsync_folder(final.parent)


def check_file_artifact(artifact: BackupArtifact) -> ArtifactCheck:
    """Re-read one file artifact and compare its size and SHA-256 with the recorded ones."""
    path = Path(artifact.location)
    try:
        digest, size = sha256_file(path)
    except OSError as exc:
        return ArtifactCheck(
            name=artifact.name,
            location=artifact.location,
            expected_sha256=artifact.sha256,
            actual_sha256=None,
            size_bytes=None,
            ok=False,
            problem=f"cannot read {path}: {exc.strerror or exc}",
        )
    ok = digest == artifact.sha256 and size == artifact.size_bytes
    problem = ""
    if digest != artifact.sha256:
        problem = f"SHA-256 {digest[:12]}... is not the recorded {artifact.sha256[:12]}..."
    elif size != artifact.size_bytes:
        problem = f"{size} bytes, {artifact.size_bytes} recorded"
    return ArtifactCheck(
        name=artifact.name,
        location=artifact.location,
        expected_sha256=artifact.sha256,
        actual_sha256=digest,
        size_bytes=size,
        ok=ok,
        problem=problem,
    )
