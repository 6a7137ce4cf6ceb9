"""``open_store``: which backend a configured location selects, and the errors for bad ones.

PostgreSQL URLs are checked against a stand-in class (no server needed) and against a closed
port, which must be a ``TemporaryError`` and never a psycopg exception.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

import pytest

import zerodown.store
from zerodown.core.errors import InputError, TemporaryError
from zerodown.store import PostgresStore, SqliteStore, open_store


def test_no_location_means_sqlite_file_in_the_state_dir(tmp_path: Path) -> None:
    state_dir = tmp_path / "state" / "nested"  # missing folders are created

    store = open_store(None, state_dir=state_dir)
    try:
        assert isinstance(store, SqliteStore)
        assert store.path == state_dir / "zerodown.db"
        assert (state_dir / "zerodown.db").is_file()
    finally:
        store.close()


@pytest.mark.parametrize("as_path", [True, False], ids=["Path", "str"])
def test_a_plain_path_means_sqlite_there(tmp_path: Path, as_path: bool) -> None:
    target = tmp_path / "elsewhere" / "deploys.db"

    store = open_store(target if as_path else str(target), state_dir=tmp_path / "state")
    try:
        assert isinstance(store, SqliteStore)
        assert store.path == target
        assert not (tmp_path / "state").exists()
    finally:
        store.close()


def test_sqlite_url_with_four_slashes_is_an_absolute_path(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/z.db", state_dir=tmp_path)
    try:
        assert isinstance(store, SqliteStore)
        assert store.path == tmp_path / "z.db"
    finally:
        store.close()


def test_sqlite_url_with_three_slashes_is_relative_to_the_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    store = open_store("sqlite:///data/z.db", state_dir=tmp_path / "state")
    try:
        assert isinstance(store, SqliteStore)
        assert store.path == Path("data/z.db")
        assert (tmp_path / "data" / "z.db").is_file()
    finally:
        store.close()


@pytest.mark.parametrize("location", ["sqlite://", "sqlite:///:memory:", ":memory:"])
def test_memory_locations_open_a_private_in_memory_database(tmp_path: Path, location: str) -> None:
    store = open_store(location, state_dir=tmp_path)
    try:
        assert isinstance(store, SqliteStore)
        assert store.path == ":memory:"
        assert store.list_services() == []
        assert list(tmp_path.iterdir()) == []
    finally:
        store.close()


@pytest.mark.parametrize(
    "url", ["postgresql://zd@db.example/zerodown", "postgres://zd@db.example/zerodown"]
)
def test_postgres_urls_select_the_postgres_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    opened: list[str] = []

    class StandIn:
        def __init__(self, given: str, *, clock: Any = None) -> None:
            opened.append(given)

    monkeypatch.setattr(zerodown.store, "PostgresStore", StandIn)

    store = open_store(url, state_dir=tmp_path)

    assert isinstance(store, StandIn)
    assert opened == [url]


@pytest.mark.parametrize(
    "location",
    ["mysql://root@db/zerodown", "redis://localhost", "sqlite://host/z.db", "", "   "],
)
def test_unsupported_locations_raise_input_error(tmp_path: Path, location: str) -> None:
    with pytest.raises(InputError):
        open_store(location, state_dir=tmp_path)


def test_unreachable_postgres_server_is_a_temporary_error(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

        with pytest.raises(TemporaryError, match="cannot connect") as raised:
            open_store(f"postgresql://zd:secret@127.0.0.1:{port}/zd", state_dir=tmp_path)

    assert "secret" not in raised.value.message
    assert raised.value.__cause__ is not None  # the driver's exception is kept as the cause
    assert "psycopg" in type(raised.value.__cause__).__module__


def test_malformed_postgres_url_is_an_input_error() -> None:
    with pytest.raises(InputError, match="invalid PostgreSQL URL"):
        PostgresStore("postgresql://zd@127.0.0.1:1/zd?bogus_option=1")


def test_missing_psycopg_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes `import psycopg` fail

    with pytest.raises(InputError, match=r"pip install 'zerodown\[postgres\]'"):
        open_store("postgresql://zd@127.0.0.1/zd", state_dir=tmp_path)
