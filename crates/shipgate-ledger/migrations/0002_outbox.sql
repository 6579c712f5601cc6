-- shipgate ledger, version 2: the notification outbox. Portable SQL (SQLite and Postgres).
-- Payloads are built from redacted summaries; channel secrets (webhook URLs, signing keys)
-- are never stored, only the channel's name.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    claimed_until_ms BIGINT,
    delivered_ms BIGINT,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox (delivered_ms, next_attempt_ms)
