-- The first schema of the store, PostgreSQL flavour: services, releases, events, instances, locks.
-- Times are epoch seconds (DOUBLE PRECISION); state, data and meta are JSON text.

CREATE TABLE services (
    name          TEXT PRIMARY KEY,
    spec_path     TEXT NOT NULL,
    spec_text     TEXT NOT NULL,
    desired_state TEXT NOT NULL,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL
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
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    PRIMARY KEY (service, revision)
);

-- An identity column never reuses ids; appends are serialised so ids also commit in order.
CREATE TABLE events (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service  TEXT NOT NULL,
    revision INTEGER,
    ts       DOUBLE PRECISION NOT NULL,
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
    started_at DOUBLE PRECISION NOT NULL,
    log_path   TEXT,
    state      TEXT NOT NULL,
    restarts   INTEGER NOT NULL,
    meta       TEXT NOT NULL
);

CREATE INDEX instances_by_service ON instances (service, state);

CREATE TABLE locks (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    acquired_at DOUBLE PRECISION NOT NULL,
    expires_at  DOUBLE PRECISION NOT NULL
);
