-- shipgate ledger, version 1. Portable SQL: runs unchanged on SQLite and Postgres.
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    environment TEXT NOT NULL,
    image_tag TEXT NOT NULL,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started_ms BIGINT NOT NULL,
    finished_ms BIGINT,
    outcome TEXT,
    summary_path TEXT
);
CREATE INDEX runs_by_app ON runs (app, environment, started_ms);
CREATE TABLE steps (
    run_id TEXT NOT NULL REFERENCES runs (id),
    seq BIGINT NOT NULL,
    name TEXT NOT NULL,
    started_ms BIGINT NOT NULL,
    finished_ms BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE deployments (
    run_id TEXT NOT NULL REFERENCES runs (id),
    position BIGINT NOT NULL,
    target TEXT NOT NULL,
    service TEXT NOT NULL,
    from_image TEXT,
    to_image TEXT NOT NULL,
    revision TEXT NOT NULL,
    kind TEXT NOT NULL,
    verdict TEXT NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE TABLE locks (
    app TEXT NOT NULL,
    environment TEXT NOT NULL,
    run_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    reason TEXT NOT NULL,
    acquired_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (app, environment)
);
CREATE TABLE lock_events (
    app TEXT NOT NULL,
    environment TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    event TEXT NOT NULL,
    run_id TEXT NOT NULL,
    detail TEXT NOT NULL
)
