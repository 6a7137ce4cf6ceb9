"""Docker volumes on a real engine: backed up through restic from the volume's folder,
restored into a new volume byte for byte, and over the live volume only with force."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_component
from tests.integration.backup.helpers import open_backups, require_tool, settings_for
from zerodown.backup import BackupStatus, tree_manifest
from zerodown.core.errors import OperationFailedError, RefusedError

# Tests that use the Docker engine run on their own, one at a time (see the Makefile).
pytestmark = [pytest.mark.integration, pytest.mark.docker]


@pytest.fixture
def volume(docker_engine: Any) -> Iterator[tuple[str, Path]]:
    """A new local volume with a few files written straight into its folder."""
    name = f"zerodown-test-{secrets.token_hex(4)}"
    created = docker_engine.volumes.create(name=name, labels={"zerodown.test": "1"})
    folder = Path(created.attrs["Mountpoint"])
    (folder / "sub").mkdir()
    (folder / "sub" / "data.bin").write_bytes(os.urandom(100_000))
    (folder / "config.txt").write_text("v1\n")
    made = [name]
    try:
        yield name, folder
    finally:
        for volume in docker_engine.volumes.list(filters={"name": name}):
            if volume.name.startswith(name):
                made.append(volume.name)
        for each in set(made):
            try:
                docker_engine.volumes.get(each).remove(force=True)
            except Exception:  # already gone
                continue


def test_a_volume_round_trip_is_byte_identical(tmp_path: Path, volume: tuple[str, Path]) -> None:
    require_tool("restic", "restic")
    name, folder = volume
    settings = settings_for(tmp_path, f"- {{name: data, kind: docker-volume, volume: {name}}}")
    store, backups = open_backups(tmp_path)
    try:
        original = tree_manifest(folder)
        record = backups.take(settings, "data")
        assert record.status == BackupStatus.SUCCEEDED and record.kind == "docker-volume"
        assert record.artifacts[0].sha256 == original.sha256
        assert set(record.tools) == {"restic", "docker"}

        report = backups.restore(settings, record.id)
        assert report.destination == f"{name}-restored-{record.id}" and report.details["created"]
        assert tree_manifest(Path(report.details["mountpoint"])).sha256 == original.sha256

        (folder / "config.txt").write_text("changed\n")
        with pytest.raises(RefusedError, match="live volume"):
            backups.restore(settings, record.id, destination=name)
        forced = backups.restore(settings, record.id, destination=name, force=True)
        assert forced.replaced_live and tree_manifest(folder).sha256 == original.sha256
        aside = Path(forced.details["previous_moved_to"])
        assert (aside / "config.txt").read_text() == "changed\n"
        assert backups.verify(settings, record.id)[1].ok
    finally:
        store.close()


def test_a_missing_volume_fails_the_backup(tmp_path: Path, docker_engine: Any) -> None:
    require_tool("restic", "restic")
    settings = settings_for(tmp_path, "- {name: data, kind: docker-volume, volume: zd-nope-0}")
    store, backups = open_backups(tmp_path)
    try:
        with pytest.raises(OperationFailedError, match="no volume zd-nope-0"):
            backups.take(settings, "data")
        assert store.list_backups()[0].status == BackupStatus.FAILED
    finally:
        store.close()


def test_the_same_backup_restored_twice_over_the_live_volume_keeps_both_previous_copies(
    tmp_path: Path, volume: tuple[str, Path]
) -> None:
    """Each forced restore moves what the volume held into a folder of its own."""
    require_tool("restic", "restic")
    name, folder = volume
    settings = settings_for(tmp_path, f"- {{name: data, kind: docker-volume, volume: {name}}}")
    store, backups = open_backups(tmp_path)
    try:
        original = tree_manifest(folder)
        record = backups.take(settings, "data")
        asides = []
        for text in ("changed once\n", "changed twice\n"):
            (folder / "config.txt").write_text(text)
            forced = backups.restore(settings, record.id, destination=name, force=True)
            assert tree_manifest(folder).sha256 == original.sha256
            asides.append(Path(forced.details["previous_moved_to"]))
        assert asides[0] != asides[1]
        assert [(a / "config.txt").read_text() for a in asides] == [
            "changed once\n",
            "changed twice\n",
        ]
    finally:
        store.close()


def test_a_forced_restore_that_fails_part_way_leaves_the_volume_as_it_was(
    tmp_path: Path, volume: tuple[str, Path]
) -> None:
    """A file system mounted on one of the volume's folders cannot be moved (EBUSY): the
    entries moved aside before it are moved back and no aside folder is left."""
    require_tool("restic", "restic")
    name, folder = volume
    settings = settings_for(tmp_path, f"- {{name: data, kind: docker-volume, volume: {name}}}")
    store, backups = open_backups(tmp_path)
    pinned = folder / "zz-mounted"
    pinned.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "zerodown-test", str(pinned)], check=False)
    if mounted.returncode != 0:
        require_component("tmpfs mount", "mounting a tmpfs needs root and CAP_SYS_ADMIN")
    try:
        for number in range(5):
            (folder / f"file-{number}.txt").write_text(f"live {number}\n")
        (pinned / "inside.txt").write_text("on the mounted file system\n")
        record = backups.take(settings, "data")
        (folder / "config.txt").write_text("written after the backup\n")
        before = tree_manifest(folder)
        with pytest.raises(OperationFailedError, match="held before"):
            backups.restore(settings, record.id, destination=name, force=True)
        assert tree_manifest(folder).sha256 == before.sha256
        assert not list(folder.parent.glob("before-restore-*"))
    finally:
        subprocess.run(["umount", str(pinned)], check=False)
        store.close()
