-- 003_daemons: one heartbeat row per running daemon, so any process (and the cluster) can tell who runs.

CREATE TABLE daemons (
  id         text        PRIMARY KEY,
  host       text        NOT NULL,
  pid        integer     NOT NULL,
  started_at timestamptz NOT NULL,
  last_seen  timestamptz NOT NULL,
  -- the daemon's modules and their states
  modules    jsonb       NOT NULL DEFAULT '[]'
);

-- Pruning finished tasks by age.
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED');
