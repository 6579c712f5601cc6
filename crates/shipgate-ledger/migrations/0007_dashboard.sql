-- shipgate ledger, version 7: what the dashboard reads. Portable SQL (SQLite and Postgres).
-- Each finished run's summary, the same redacted JSON as its summary file, so a run page can
-- show it wherever the run ran (a CI runner's files are gone once the job ends).
CREATE TABLE run_summaries (
    run_id TEXT PRIMARY KEY,
    summary TEXT NOT NULL
);
-- The monitor's check latencies per target and 5-minute bucket: checks, failures, the sum and
-- the largest, and a histogram (non-cumulative counts per bound: 10, 25, 50, 100, 250, 500 ms,
-- 1, 2.5, 5, 10 s, above), so a day's p50/p95 sums at most 288 rows per target; and per hour
-- for a week's. Buckets older than the monitor's retention are deleted as it goes.
CREATE TABLE monitor_latency (
    target_id TEXT NOT NULL,
    bucket_ms BIGINT NOT NULL,
    checks BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    total_ms BIGINT NOT NULL,
    max_ms BIGINT NOT NULL,
    h0 BIGINT NOT NULL,
    h1 BIGINT NOT NULL,
    h2 BIGINT NOT NULL,
    h3 BIGINT NOT NULL,
    h4 BIGINT NOT NULL,
    h5 BIGINT NOT NULL,
    h6 BIGINT NOT NULL,
    h7 BIGINT NOT NULL,
    h8 BIGINT NOT NULL,
    h9 BIGINT NOT NULL,
    h10 BIGINT NOT NULL,
    PRIMARY KEY (target_id, bucket_ms)
);
-- Retention deletes by age.
CREATE INDEX monitor_latency_by_bucket ON monitor_latency (bucket_ms);
-- The same per hour, so a week reads 168 rows per target instead of 2,016.
CREATE TABLE monitor_latency_hourly (
    target_id TEXT NOT NULL,
    bucket_ms BIGINT NOT NULL,
    checks BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    total_ms BIGINT NOT NULL,
    max_ms BIGINT NOT NULL,
    h0 BIGINT NOT NULL,
    h1 BIGINT NOT NULL,
    h2 BIGINT NOT NULL,
    h3 BIGINT NOT NULL,
    h4 BIGINT NOT NULL,
    h5 BIGINT NOT NULL,
    h6 BIGINT NOT NULL,
    h7 BIGINT NOT NULL,
    h8 BIGINT NOT NULL,
    h9 BIGINT NOT NULL,
    h10 BIGINT NOT NULL,
    PRIMARY KEY (target_id, bucket_ms)
);
CREATE INDEX monitor_latency_hourly_by_bucket ON monitor_latency_hourly (bucket_ms);
-- What each target and service of an environment runs now: its newest healthy deployment or
-- rollback, kept current as deployments are recorded (the overview reads a handful of rows
-- instead of searching a million runs). Backfilled from existing deployments.
CREATE TABLE live_releases (
    app TEXT NOT NULL,
    environment TEXT NOT NULL,
    target TEXT NOT NULL,
    service TEXT NOT NULL,
    image TEXT NOT NULL,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    since_ms BIGINT NOT NULL,
    PRIMARY KEY (app, environment, target, service)
);
INSERT INTO live_releases (app, environment, target, service, image, run_id, kind, since_ms)
SELECT app, environment, target, service, to_image, run_id, kind, since_ms FROM (
    SELECT r.app AS app, r.environment AS environment, d.target AS target, d.service AS service,
        d.to_image AS to_image, d.run_id AS run_id, d.kind AS kind,
        COALESCE(r.finished_ms, r.started_ms) AS since_ms,
        ROW_NUMBER() OVER (PARTITION BY r.app, r.environment, d.target, d.service
            ORDER BY r.started_ms DESC, d.position DESC) AS newest
    FROM runs r JOIN deployments d ON d.run_id = r.id
    WHERE d.verdict = 'healthy'
) ranked
WHERE newest = 1
