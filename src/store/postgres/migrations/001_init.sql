-- 001_init: tasks, their prerequisites, and the schema version.
-- Runs inside the store's schema (search_path); times are timestamptz, JSON is jsonb.

CREATE TABLE taskmill_meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE tasks (
  id               bigserial   PRIMARY KEY,
  name             text        NOT NULL,
  payload          jsonb       NOT NULL,
  queue            text        NOT NULL,
  priority         integer     NOT NULL,
  status           text        NOT NULL CHECK (status IN ('WAITING', 'STARTED', 'COMPLETED', 'FAILED', 'CANCELLED')),
  run_at           timestamptz NOT NULL,
  attempts         integer     NOT NULL DEFAULT 0,
  max_attempts     integer     NOT NULL,
  backoff_base_ms  bigint      NOT NULL,
  backoff_max_ms   bigint      NOT NULL,
  timeout_ms       bigint      NOT NULL,
  prerequisite_ids bigint[]    NOT NULL DEFAULT '{}',
  unique_key       text,
  note             text,
  result           jsonb,
  output           jsonb       NOT NULL DEFAULT '[]',
  error            text,
  error_stack      text,
  created_at       timestamptz NOT NULL,
  started_at       timestamptz,
  finished_at      timestamptz,
  locked_host      text,
  locked_pid       integer,
  locked_worker    text,
  lease_until      timestamptz,
  cancel_requested boolean     NOT NULL DEFAULT false,
  -- prerequisites not yet COMPLETED; the task is claimable only at 0
  waiting_for      integer     NOT NULL DEFAULT 0,
  -- set once another task names this one in "after", so completing it knows to unblock
  has_dependants   boolean     NOT NULL DEFAULT false,
  -- the prerequisite whose failure or cancel ended this task, so a retry can bring it back
  failed_by        bigint
);

CREATE TABLE task_prerequisites (
  task_id         bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  prerequisite_id bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
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
-- retry() finds the dependants a failure took down (SQLite scans; here the table may be large)
CREATE INDEX tasks_failed_by ON tasks (failed_by) WHERE failed_by IS NOT NULL;
