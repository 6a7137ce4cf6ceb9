-- Incidents, PostgreSQL flavour: one row per incident and one row per lifecycle stage it reached
-- (detected, assessed, mitigated, recovered, reviewed), with when and who moved it there.
-- Times are epoch seconds (DOUBLE PRECISION); details, impact and snapshot are JSON text.

CREATE TABLE incidents (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service         TEXT NOT NULL,
    incident_key    TEXT NOT NULL,
    source          TEXT NOT NULL,
    severity        TEXT NOT NULL,
    title           TEXT NOT NULL,
    revision        INTEGER,
    stage           TEXT NOT NULL,
    started_at      DOUBLE PRECISION,
    detected_at     DOUBLE PRECISION NOT NULL,
    details         TEXT NOT NULL,
    impact          TEXT NOT NULL,
    snapshot        TEXT,
    postmortem_path TEXT,
    created_at      DOUBLE PRECISION NOT NULL,
    updated_at      DOUBLE PRECISION NOT NULL
);

-- One open incident per key: opening it again while it is not recovered finds this row.
CREATE UNIQUE INDEX incidents_open_key ON incidents (incident_key)
    WHERE stage IN ('detected', 'assessed', 'mitigated');

CREATE INDEX incidents_by_service ON incidents (service, id);

CREATE INDEX incidents_by_key ON incidents (incident_key, id);

CREATE TABLE incident_stages (
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    stage       TEXT NOT NULL,
    reached_at  DOUBLE PRECISION NOT NULL,
    who         TEXT NOT NULL,
    note        TEXT,
    recorded_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (incident_id, stage)
);

-- A postmortem reads the service's events around the incident by time.
CREATE INDEX events_by_service_time ON events (service, ts);
