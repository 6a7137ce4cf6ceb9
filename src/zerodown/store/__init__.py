"""The store: services, releases, events, instances and locks (SQLite or PostgreSQL).

``open_store`` picks the backend from what the user configured: nothing means the SQLite file
``zerodown.db`` in the state directory; a path or ``sqlite:///path`` means SQLite there; a
``postgresql://`` (or ``postgres://``) URL means PostgreSQL.
"""

from __future__ import annotations

import re
from pathlib import Path

from zerodown.core.clock import Clock
from zerodown.core.errors import InputError
from zerodown.store.base import (
    EventRecord,
    InstanceRecord,
    LockRecord,
    ReleaseRecord,
    ReleaseStatus,
    ServiceRecord,
    Store,
)
from zerodown.store.postgres import PostgresStore
from zerodown.store.sqlite import MEMORY, SqliteStore

__all__ = [
    "DEFAULT_DATABASE",
    "EventRecord",
    "InstanceRecord",
    "LockRecord",
    "PostgresStore",
    "ReleaseRecord",
    "ReleaseStatus",
    "ServiceRecord",
    "SqliteStore",
    "Store",
    "open_store",
]

DEFAULT_DATABASE = "zerodown.db"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def open_store(
    url_or_path: str | Path | None, *, state_dir: Path, clock: Clock | None = None
) -> Store:
    """Open (creating and migrating if needed) the store the user configured.

    - ``None`` -> SQLite at ``state_dir / "zerodown.db"``
    - ``"sqlite:///relative/path"``, ``"sqlite:////absolute/path"``, ``"sqlite://"`` (in
      memory) or a plain path -> SQLite
    - ``"postgresql://..."`` or ``"postgres://..."`` -> PostgreSQL

    Anything else raises ``InputError``.
    """
    if url_or_path is None:
        return SqliteStore(Path(state_dir) / DEFAULT_DATABASE, clock=clock)
    if isinstance(url_or_path, Path):
        return SqliteStore(url_or_path, clock=clock)
    text = url_or_path.strip()
    if not text:
        raise InputError("the store location is empty: give a path or a database URL")
    match = _SCHEME.match(text)
    if match is None:
        return SqliteStore(text, clock=clock)
    scheme = match.group(1).lower()
    if scheme == "sqlite":
        rest = text[len(match.group(0)) :]
        if rest and not rest.startswith("/"):
            raise InputError(
                f"invalid SQLite URL {text!r}: use sqlite:///relative/path or sqlite:////absolute/path"
            )
        return SqliteStore(rest.removeprefix("/") or MEMORY, clock=clock)
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(text, clock=clock)
    raise InputError(
        f"unsupported store URL scheme {scheme!r}: use a path, sqlite:///path,"
        " or postgresql://user@host/dbname"
    )
