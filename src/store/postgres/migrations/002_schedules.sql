-- 002_schedules: recurring schedules, the ticks that make each due time fire once, and the link
-- from a task to the schedule occurrence it serves.

ALTER TABLE tasks ADD COLUMN schedule_name text;
ALTER TABLE tasks ADD COLUMN scheduled_for timestamptz;
CREATE INDEX tasks_live_by_schedule ON tasks (schedule_name)
  WHERE schedule_name IS NOT NULL AND status IN ('WAITING', 'STARTED');

CREATE TABLE schedules (
  name             text        PRIMARY KEY,
  task             text        NOT NULL,
  payload          jsonb       NOT NULL,
  rule_kind        text        NOT NULL CHECK (rule_kind IN ('every', 'cron')),
  every_ms         bigint,
  cron             text,
  timezone         text,
  catch_up         text        NOT NULL CHECK (catch_up IN ('last', 'none', 'all')),
  overlap          text        NOT NULL CHECK (overlap IN ('skip', 'allow')),
  enabled          boolean     NOT NULL,
  source           text        NOT NULL CHECK (source IN ('config', 'api')),
  created_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL,
  -- interval fire times count from here; reset when the rule changes
  anchor_at        timestamptz NOT NULL,
  -- the latest due time served (fired or skipped)
  last_due_at      timestamptz,
  last_fired_at    timestamptz,
  last_task_id     bigint,
  last_skipped_at  timestamptz,
  last_skip_reason text,
  skipped_count    integer     NOT NULL DEFAULT 0
);

-- One row per (schedule, due time): whoever inserts it first fires that occurrence, in the whole cluster.
CREATE TABLE schedule_ticks (
  schedule_name text        NOT NULL,
  due_at        timestamptz NOT NULL,
  task_id       bigint,
  PRIMARY KEY (schedule_name, due_at)
);
