-- The backup catalogue, SQLite flavour: one row per backup, written as 'running' before any
-- artifact exists and completed in one statement, so a crash never leaves a backup that looks
-- good. Times are epoch seconds (REAL); artifacts, tools, verify_detail and meta are JSON text.

CREATE TABLE backups (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    service          TEXT NOT NULL,
    target           TEXT NOT NULL,
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL,
    reason           TEXT NOT NULL,
    owner            TEXT NOT NULL,
    started_at       REAL NOT NULL,
    finished_at      REAL,
    duration_s       REAL,
    size_bytes       INTEGER,
    artifacts        TEXT NOT NULL,
    tools            TEXT NOT NULL,
    release_revision INTEGER,
    release_version  TEXT,
    error            TEXT NOT NULL,
    verified_at      REAL,
    verify_status    TEXT,
    verify_detail    TEXT NOT NULL,
    meta             TEXT NOT NULL
);

CREATE INDEX backups_by_target ON backups (service, target, id);

CREATE INDEX backups_by_status ON backups (status);
