"""Docker volumes on a real engine: backed up through restic from the volume's folder,
restored into a new volume byte for byte, and over the live volume only with force."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.backup.helpers import open_backups, require_tool, settings_for
from zerodown.backup import BackupStatus, tree_manifest
from zerodown.core.errors import OperationFailedError, RefusedError

pytestmark = pytest.mark.integration


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
