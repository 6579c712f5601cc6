-- shipgate ledger, version 3: the monitor's targets and alert state. Portable SQL (SQLite and
-- Postgres). One row per watched target, claimed by one monitor replica at a time; the alert
-- state survives restarts. Transitions are kept in monitor_events.
CREATE TABLE monitor_targets (
    id TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    retired BIGINT NOT NULL,
    state TEXT NOT NULL,
    streak BIGINT NOT NULL,
    next_due_ms BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_until_ms BIGINT,
    checks BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    last_checked_ms BIGINT,
    last_passed BIGINT,
    last_detail TEXT,
    failing_since_ms BIGINT,
    alert_opened_ms BIGINT,
    issue_number BIGINT,
    issue_url TEXT,
    last_comment_ms BIGINT
);
CREATE INDEX monitor_targets_due ON monitor_targets (app, next_due_ms);
CREATE TABLE monitor_events (
    target_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX monitor_events_by_target ON monitor_events (target_id, at_ms)
