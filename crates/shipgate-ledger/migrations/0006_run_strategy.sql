-- shipgate ledger, version 6: how each run's release reached users (`rolling`, `bluegreen`,
-- `canary`; NULL for runs recorded before this version). Portable SQL (SQLite and Postgres).
ALTER TABLE runs ADD COLUMN strategy TEXT
