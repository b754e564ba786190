-- 003_daemons: one heartbeat row per running daemon, so any process (and the cluster) can tell who runs.

CREATE TABLE daemons (
  id         TEXT    PRIMARY KEY,
  host       TEXT    NOT NULL,
  pid        INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  last_seen  INTEGER NOT NULL,
  -- the daemon's modules and their states, as JSON
  modules    TEXT    NOT NULL DEFAULT '[]'
);

-- Pruning finished tasks by age.
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED');
