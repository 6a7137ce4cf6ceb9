"""The state directory: token file permissions and controller.json."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from zerodown.core.state import ControllerInfo, StateDir


def test_token_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "s")
    assert state.token() is None
    first = state.token(create=True)
    assert first and len(first) >= 32
    assert stat.S_IMODE(state.token_file.stat().st_mode) == 0o600
    assert state.token(create=True) == first


def test_controller_info_round_trip_and_clear_only_by_owner(tmp_path: Path) -> None:
    state = StateDir(tmp_path).ensure()
    state.write_controller(ControllerInfo(pid=123, url="http://127.0.0.1:9", started_at=1.5))
    assert state.read_controller() == ControllerInfo(123, "http://127.0.0.1:9", 1.5)
    state.clear_controller(999)
    assert state.read_controller() is not None
    state.clear_controller(123)
    assert state.read_controller() is None


def test_garbled_controller_file_reads_as_none(tmp_path: Path) -> None:
    state = StateDir(tmp_path).ensure()
    state.controller_file.write_text("{not json")
    assert state.read_controller() is None


def test_environment_variable_chooses_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZERODOWN_HOME", str(tmp_path / "home"))
    assert StateDir().path == (tmp_path / "home").resolve()
    assert StateDir(tmp_path / "explicit").path == (tmp_path / "explicit").resolve()
