-- shipgate ledger, version 5: the deploys waiting for a deploy lock. Portable SQL (SQLite and
-- Postgres). A waiting deploy gives up as `superseded` when a newer one queued behind it (as
-- GitHub Actions' concurrency groups replace a pending run), so two pushes in a row never put
-- the older release live last. An entry lives while its deploy waits (expires_ms: the end of
-- its lock timeout), so one left by a killed process stops counting on its own.
CREATE TABLE lock_queue (
    run_id TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    environment TEXT NOT NULL,
    reason TEXT NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    queued_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX lock_queue_by_app ON lock_queue (app, environment, queued_ms)
