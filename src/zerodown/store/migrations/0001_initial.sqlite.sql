-- The first schema of the store, SQLite flavour: services, releases, events, instances, locks.
-- Times are epoch seconds (REAL); state, data and meta are JSON text.

CREATE TABLE services (
    name          TEXT PRIMARY KEY,
    spec_path     TEXT NOT NULL,
    spec_text     TEXT NOT NULL,
    desired_state TEXT NOT NULL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);

CREATE TABLE releases (
    service     TEXT NOT NULL REFERENCES services (name),
    revision    INTEGER NOT NULL,
    version     TEXT NOT NULL,
    spec_hash   TEXT NOT NULL,
    spec_text   TEXT NOT NULL,
    strategy    TEXT NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    finished_at REAL,
    PRIMARY KEY (service, revision)
);

-- AUTOINCREMENT: ids are never reused, even after the newest rows are deleted.
CREATE TABLE events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    service  TEXT NOT NULL,
    revision INTEGER,
    ts       REAL NOT NULL,
    kind     TEXT NOT NULL,
    message  TEXT NOT NULL,
    data     TEXT NOT NULL
);

CREATE INDEX events_by_service ON events (service, id);

CREATE TABLE instances (
    id         TEXT PRIMARY KEY,
    service    TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    version    TEXT NOT NULL,
    slot       INTEGER NOT NULL,
    platform   TEXT NOT NULL,
    host       TEXT NOT NULL,
    port       INTEGER NOT NULL,
    pid        INTEGER,
    started_at REAL NOT NULL,
    log_path   TEXT,
    state      TEXT NOT NULL,
    restarts   INTEGER NOT NULL,
    meta       TEXT NOT NULL
);

CREATE INDEX instances_by_service ON instances (service, state);

CREATE TABLE locks (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    acquired_at REAL NOT NULL,
    expires_at  REAL NOT NULL
);
