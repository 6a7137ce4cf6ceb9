"""Shared setup of the backup integration tests: a spec with a ``backups:`` section, its
settings, a store that is the catalogue, and flipping one byte of a file."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import require_component
from zerodown.backup import Backups, BackupSettings, resolve_settings
from zerodown.spec import parse_spec
from zerodown.store import SqliteStore

PASSWORD = "correct horse battery staple"


def spec_text(targets_yaml: str, *, extra: str = "") -> str:
    """A minimal service whose ``backups:`` has the given targets (YAML list items)."""
    return (
        "service: web\n"
        "run: {command: 'python -m http.server'}\n"
        "backups:\n"
        "  repository: ./repo\n"
        "  passwordFile: ./backup.key\n"
        f"{extra}"
        "  targets:\n" + "".join(f"    {line}\n" for line in targets_yaml.strip().splitlines())
    )


def settings_for(folder: Path, targets_yaml: str) -> BackupSettings:
    (folder / "backup.key").write_text(PASSWORD + "\n")
    text = spec_text(targets_yaml)
    spec = parse_spec(text, filename=str(folder / "zerodown.yaml")).spec
    return resolve_settings(spec, spec_dir=folder, state_dir=folder / "state")


def open_backups(folder: Path) -> tuple[SqliteStore, Backups]:
    store = SqliteStore(folder / "state" / "zerodown.db")
    store.upsert_service(  # type: ignore[arg-type]
        "web", spec_path=str(folder / "zerodown.yaml"), spec_text="service: web\n"
    )
    return store, Backups(store)


def flip_byte(path: Path, offset: int | None = None) -> None:
    """Invert one byte of ``path`` (the middle one by default)."""
    data = bytearray(path.read_bytes())
    index = len(data) // 2 if offset is None else offset
    data[index] ^= 0xFF
    path.write_bytes(bytes(data))


def require_tool(name: str, package: str) -> None:
    if shutil.which(name) is None:
        require_component(name, f"install the Debian package '{package}' (make system-test)")
