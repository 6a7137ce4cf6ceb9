-- The backup catalogue, PostgreSQL flavour: one row per backup, written as 'running' before any
-- artifact exists and completed in one statement, so a crash never leaves a backup that looks
-- good. Times are epoch seconds (DOUBLE PRECISION); artifacts, tools, verify_detail and meta
-- are JSON text.

CREATE TABLE backups (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service          TEXT NOT NULL,
    target           TEXT NOT NULL,
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL,
    reason           TEXT NOT NULL,
    owner            TEXT NOT NULL,
    started_at       DOUBLE PRECISION NOT NULL,
    finished_at      DOUBLE PRECISION,
    duration_s       DOUBLE PRECISION,
    size_bytes       BIGINT,
    artifacts        TEXT NOT NULL,
    tools            TEXT NOT NULL,
    release_revision INTEGER,
    release_version  TEXT,
    error            TEXT NOT NULL,
    verified_at      DOUBLE PRECISION,
    verify_status    TEXT,
    verify_detail    TEXT NOT NULL,
    meta             TEXT NOT NULL
);

CREATE INDEX backups_by_target ON backups (service, target, id);

CREATE INDEX backups_by_status ON backups (status);
