"""Loading spec files: unreadable files are input errors, positions survive YAML features."""

from __future__ import annotations

from pathlib import Path

import pytest

from zerodown.core.errors import InputError, SpecError
from zerodown.spec import load_spec
from zerodown.spec.loader import read_yaml


def test_missing_file_is_an_input_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "zerodown.yaml"
    with pytest.raises(InputError, match="spec file not found") as caught:
        load_spec(missing)
    assert not isinstance(caught.value, SpecError)
    assert str(missing) in str(caught.value)


def test_folder_instead_of_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder"):
        load_spec(tmp_path)


def test_non_utf8_file_is_an_input_error(tmp_path: Path) -> None:
    file = tmp_path / "zerodown.yaml"
    file.write_bytes(b"service: caf\xe9\n")
    with pytest.raises(InputError, match="not UTF-8"):
        load_spec(file)


def test_problems_name_the_file_as_given(tmp_path: Path) -> None:
    file = tmp_path / "zerodown.yaml"
    file.write_text("service: web\nrun: {}\n")
    with pytest.raises(SpecError) as caught:
        load_spec(str(file))
    assert caught.value.problems[0].file == str(file)
    assert caught.value.problems[0].line == 2


def test_loaded_file_resolves_workdir_against_its_folder(tmp_path: Path) -> None:
    file = tmp_path / "svc" / "zerodown.yaml"
    file.parent.mkdir()
    file.write_text("service: web\nrun:\n  command: x\n  workdir: ../app\n")
    loaded = load_spec(file)
    assert loaded.path == file.resolve()
    assert loaded.workdir == (tmp_path / "app").resolve()


def test_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    file = tmp_path / "zerodown.yaml"
    file.write_bytes("service: web\nrun: {command: x}\n".encode("utf-8-sig"))
    assert load_spec(file).spec.service == "web"


def test_source_map_records_keys_values_and_list_items() -> None:
    data, source = read_yaml("a:\n  b: [1, 2]\n  c:\n    - x: 1\n")
    assert data == {"a": {"b": [1, 2], "c": [{"x": 1}]}}
    assert source.key(("a", "b")).line == 2
    assert source.value(("a", "b", 1)).column == 10  # the "2" in "  b: [1, 2]"
    assert source.value(("a", "c", 0, "x")).line == 4
    # a path that does not exist falls back to its nearest ancestor's key
    assert source.value(("a", "c", 0, "missing")).line == 4


def test_anchors_and_merge_keys_are_resolved() -> None:
    data, _ = read_yaml("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n")
    assert data["other"] == {"x": 1, "y": 2}


def test_non_string_keys_become_text() -> None:
    data, _ = read_yaml("1: a\nnull: b\n")
    assert data == {"1": "a", "null": "b"}
