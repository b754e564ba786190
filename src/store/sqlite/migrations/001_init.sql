-- 001_init: tasks, their prerequisites, and the schema version.
-- Times are milliseconds since the epoch (UTC); JSON is stored as text.

CREATE TABLE taskmill_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE tasks (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  name             TEXT    NOT NULL,
  payload          TEXT    NOT NULL,
  queue            TEXT    NOT NULL,
  priority         INTEGER NOT NULL,
  status           TEXT    NOT NULL CHECK (status IN ('WAITING', 'STARTED', 'COMPLETED', 'FAILED', 'CANCELLED')),
  run_at           INTEGER NOT NULL,
  attempts         INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL,
  backoff_base_ms  INTEGER NOT NULL,
  backoff_max_ms   INTEGER NOT NULL,
  timeout_ms       INTEGER NOT NULL,
  prerequisite_ids TEXT    NOT NULL DEFAULT '[]',
  unique_key       TEXT,
  note             TEXT,
  result           TEXT,
  output           TEXT    NOT NULL DEFAULT '[]',
  error            TEXT,
  error_stack      TEXT,
  created_at       INTEGER NOT NULL,
  started_at       INTEGER,
  finished_at      INTEGER,
  locked_host      TEXT,
  locked_pid       INTEGER,
  locked_worker    TEXT,
  lease_until      INTEGER,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  -- prerequisites not yet COMPLETED; the task is claimable only at 0
  waiting_for      INTEGER NOT NULL DEFAULT 0,
  -- set once another task names this one in "after", so completing it knows to unblock
  has_dependants   INTEGER NOT NULL DEFAULT 0,
  -- the prerequisite whose failure or cancel ended this task, so a retry can bring it back
  failed_by        INTEGER
);

CREATE TABLE task_prerequisites (
  task_id         INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  prerequisite_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  PRIMARY KEY (task_id, prerequisite_id)
);
CREATE INDEX task_prerequisites_dependants ON task_prerequisites (prerequisite_id);

-- The claim order: priority, then runAt, then id.
CREATE INDEX tasks_due ON tasks (priority DESC, run_at, id) WHERE status = 'WAITING' AND waiting_for = 0;
CREATE INDEX tasks_next_run ON tasks (run_at) WHERE status = 'WAITING' AND waiting_for = 0;
CREATE UNIQUE INDEX tasks_unique_live ON tasks (unique_key)
  WHERE unique_key IS NOT NULL AND status IN ('WAITING', 'STARTED');
CREATE INDEX tasks_leases ON tasks (lease_until) WHERE status = 'STARTED';
CREATE INDEX tasks_by_status ON tasks (status, id);
CREATE INDEX tasks_by_name ON tasks (name, id);
