-- The monitor's tables, PostgreSQL flavour: its time series (full-resolution samples for a
-- short window, one-minute aggregates for longer), the silences, the
-- notification log and the alert states.
-- Times are epoch seconds (DOUBLE PRECISION); matchers and fingerprints are JSON text.

-- One row per series; key is the canonical JSON of its labels (the name as "__name__").
CREATE TABLE monitor_series (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key     TEXT NOT NULL UNIQUE,
    name    TEXT NOT NULL,
    service TEXT NOT NULL,
    kind    TEXT NOT NULL
);

CREATE INDEX monitor_series_by_service ON monitor_series (service, name);

-- A NULL value is a staleness marker: the series ended at that time.
CREATE TABLE monitor_samples (
    series_id BIGINT NOT NULL,
    ts        DOUBLE PRECISION NOT NULL,
    value     DOUBLE PRECISION,
    PRIMARY KEY (series_id, ts)
);

CREATE INDEX monitor_samples_by_time ON monitor_samples (ts);

-- One row per series and minute: count, sum, min, max and the last value with its time.
CREATE TABLE monitor_rollups (
    series_id BIGINT NOT NULL,
    minute    DOUBLE PRECISION NOT NULL,
    samples   INTEGER NOT NULL,
    total     DOUBLE PRECISION NOT NULL,
    low       DOUBLE PRECISION NOT NULL,
    high      DOUBLE PRECISION NOT NULL,
    last      DOUBLE PRECISION NOT NULL,
    last_ts   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (series_id, minute)
);

CREATE INDEX monitor_rollups_by_time ON monitor_rollups (minute);

-- Progress marks of the monitor's housekeeping (how far samples are rolled up).
CREATE TABLE monitor_marks (
    name  TEXT PRIMARY KEY,
    value DOUBLE PRECISION NOT NULL
);

CREATE TABLE monitor_silences (
    id         TEXT PRIMARY KEY,
    matchers   TEXT NOT NULL,
    starts_at  DOUBLE PRECISION NOT NULL,
    ends_at    DOUBLE PRECISION NOT NULL,
    created_by TEXT NOT NULL,
    comment    TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

-- Alertmanager's notification log: what each receiver integration was last told per group.
CREATE TABLE monitor_nflog (
    scope       TEXT NOT NULL,
    group_key   TEXT NOT NULL,
    receiver    TEXT NOT NULL,
    integration INTEGER NOT NULL,
    firing      TEXT NOT NULL,
    resolved    TEXT NOT NULL,
    at          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, group_key, receiver, integration)
);

-- The alerts of each scope's rule evaluator (pending, firing, recently resolved), as
-- Prometheus' ALERTS_FOR_STATE, so a restarted controller keeps their states. rule_id names
-- the rule and what decides its alerts (group, name, expression, labels); labels and
-- annotations are JSON lists of [name, value] pairs. A NULL value is NaN.
CREATE TABLE monitor_alert_states (
    scope             TEXT NOT NULL,
    rule_id           TEXT NOT NULL,
    fingerprint       TEXT NOT NULL,
    rule              TEXT NOT NULL,
    labels            TEXT NOT NULL,
    annotations       TEXT NOT NULL,
    state             TEXT NOT NULL,
    value             DOUBLE PRECISION,
    active_at         DOUBLE PRECISION NOT NULL,
    fired_at          DOUBLE PRECISION,
    resolved_at       DOUBLE PRECISION,
    keep_firing_since DOUBLE PRECISION,
    PRIMARY KEY (scope, rule_id, fingerprint)
);
