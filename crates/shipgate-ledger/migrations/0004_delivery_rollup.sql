-- shipgate ledger, version 4: the delivery report's rollup. Portable SQL (SQLite and Postgres).
-- Finished runs counted per app, environment, UTC day of their start and outcome (service ''
-- is the run itself; other rows count the runs that deployed that service), kept current by
-- finish_run, so a report reads days instead of every run. A change failure that needed a
-- later run to restore service (rollback_failed, unhealthy) gets that run's end in
-- runs.restored_ms, and its rollup row the restore count and time. When the deployed commit's
-- time is known (runs.commit_ms), a succeeded run adds its lead time (commit to live).
-- Backfilled from existing runs.
ALTER TABLE runs ADD COLUMN restored_ms BIGINT;
ALTER TABLE runs ADD COLUMN commit_ms BIGINT;
CREATE TABLE delivery_rollup (
    app TEXT NOT NULL,
    environment TEXT NOT NULL,
    service TEXT NOT NULL,
    day_ms BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    runs BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    restored BIGINT NOT NULL,
    restore_ms BIGINT NOT NULL,
    lead_runs BIGINT NOT NULL,
    lead_time_ms BIGINT NOT NULL,
    PRIMARY KEY (app, environment, service, day_ms, outcome)
);
-- Covering: a report reads a range of days without touching the table.
CREATE INDEX delivery_rollup_by_day ON delivery_rollup (day_ms, app, environment, service, outcome, runs, duration_ms, restored, restore_ms, lead_runs, lead_time_ms);
-- The window's partial first and last days are read from runs by start time.
CREATE INDEX runs_by_start ON runs (started_ms);
-- The failures still waiting for a good release, found when one finishes.
CREATE INDEX runs_unrestored ON runs (app, environment, started_ms)
    WHERE restored_ms IS NULL AND outcome IN ('rollback_failed', 'unhealthy');
-- Fresh statistics first, so Postgres plans the per-failure lookup below as an index scan
-- even on a ledger that was just restored or bulk-loaded.
ANALYZE runs;
UPDATE runs SET restored_ms = (
    SELECT n.finished_ms FROM runs n
    WHERE n.app = runs.app AND n.environment = runs.environment AND n.started_ms >= runs.started_ms
    AND n.id <> runs.id AND n.finished_ms IS NOT NULL AND n.outcome IN ('succeeded', 'rolled_back')
    ORDER BY n.started_ms LIMIT 1)
WHERE outcome IN ('rollback_failed', 'unhealthy') AND finished_ms IS NOT NULL;
INSERT INTO delivery_rollup (app, environment, service, day_ms, outcome, runs, duration_ms, restored, restore_ms, lead_runs, lead_time_ms)
SELECT app, environment, '', started_ms - started_ms % 86400000, outcome, COUNT(*), SUM(finished_ms - started_ms),
    SUM(CASE WHEN restored_ms IS NULL THEN 0 ELSE 1 END),
    SUM(CASE WHEN restored_ms IS NULL THEN 0 ELSE restored_ms - started_ms END),
    SUM(CASE WHEN outcome = 'succeeded' AND commit_ms IS NOT NULL THEN 1 ELSE 0 END),
    SUM(CASE WHEN outcome = 'succeeded' AND commit_ms IS NOT NULL THEN finished_ms - commit_ms ELSE 0 END)
FROM runs WHERE finished_ms IS NOT NULL AND outcome IS NOT NULL
GROUP BY app, environment, started_ms - started_ms % 86400000, outcome;
INSERT INTO delivery_rollup (app, environment, service, day_ms, outcome, runs, duration_ms, restored, restore_ms, lead_runs, lead_time_ms)
SELECT app, environment, service, day_ms, outcome, COUNT(*), SUM(duration_ms), 0, 0, 0, 0 FROM (
    SELECT DISTINCT r.id AS id, r.app AS app, r.environment AS environment, d.service AS service,
        r.started_ms - r.started_ms % 86400000 AS day_ms, r.outcome AS outcome,
        r.finished_ms - r.started_ms AS duration_ms
    FROM runs r JOIN deployments d ON d.run_id = r.id
    WHERE d.kind = 'deploy' AND r.finished_ms IS NOT NULL AND r.outcome IS NOT NULL
) per_run
GROUP BY app, environment, service, day_ms, outcome
