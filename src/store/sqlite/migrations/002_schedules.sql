-- 002_schedules: recurring schedules, the ticks that make each due time fire once, and the link
-- from a task to the schedule occurrence it serves.

ALTER TABLE tasks ADD COLUMN schedule_name TEXT;
ALTER TABLE tasks ADD COLUMN scheduled_for INTEGER;
CREATE INDEX tasks_live_by_schedule ON tasks (schedule_name)
  WHERE schedule_name IS NOT NULL AND status IN ('WAITING', 'STARTED');

CREATE TABLE schedules (
  name             TEXT    PRIMARY KEY,
  task             TEXT    NOT NULL,
  payload          TEXT    NOT NULL,
  rule_kind        TEXT    NOT NULL CHECK (rule_kind IN ('every', 'cron')),
  every_ms         INTEGER,
  cron             TEXT,
  timezone         TEXT,
  catch_up         TEXT    NOT NULL CHECK (catch_up IN ('last', 'none', 'all')),
  overlap          TEXT    NOT NULL CHECK (overlap IN ('skip', 'allow')),
  enabled          INTEGER NOT NULL,
  source           TEXT    NOT NULL CHECK (source IN ('config', 'api')),
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  -- interval fire times count from here; reset when the rule changes
  anchor_at        INTEGER NOT NULL,
  -- the latest due time served (fired or skipped)
  last_due_at      INTEGER,
  last_fired_at    INTEGER,
  last_task_id     INTEGER,
  last_skipped_at  INTEGER,
  last_skip_reason TEXT,
  skipped_count    INTEGER NOT NULL DEFAULT 0
);

-- One row per (schedule, due time): whoever inserts it first fires that occurrence.
CREATE TABLE schedule_ticks (
  schedule_name TEXT    NOT NULL,
  due_at        INTEGER NOT NULL,
  task_id       INTEGER,
  PRIMARY KEY (schedule_name, due_at)
);
