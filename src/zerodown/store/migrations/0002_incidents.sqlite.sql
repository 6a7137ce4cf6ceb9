-- Incidents, SQLite flavour: one row per incident and one row per lifecycle stage it reached
-- (detected, assessed, mitigated, recovered, reviewed), with when and who moved it there.
-- Times are epoch seconds (REAL); details, impact and snapshot are JSON text.

CREATE TABLE incidents (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    service         TEXT NOT NULL,
    incident_key    TEXT NOT NULL,
    source          TEXT NOT NULL,
    severity        TEXT NOT NULL,
    title           TEXT NOT NULL,
    revision        INTEGER,
    stage           TEXT NOT NULL,
    started_at      REAL,
    detected_at     REAL NOT NULL,
    details         TEXT NOT NULL,
    impact          TEXT NOT NULL,
    snapshot        TEXT,
    postmortem_path TEXT,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);

-- One open incident per key: opening it again while it is not recovered finds this row.
CREATE UNIQUE INDEX incidents_open_key ON incidents (incident_key)
    WHERE stage IN ('detected', 'assessed', 'mitigated');

CREATE INDEX incidents_by_service ON incidents (service, id);

CREATE INDEX incidents_by_key ON incidents (incident_key, id);

CREATE TABLE incident_stages (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    stage       TEXT NOT NULL,
    reached_at  REAL NOT NULL,
    who         TEXT NOT NULL,
    note        TEXT,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (incident_id, stage)
);

-- A postmortem reads the service's events around the incident by time.
CREATE INDEX events_by_service_time ON events (service, ts);
