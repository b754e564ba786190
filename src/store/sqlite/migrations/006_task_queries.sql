-- 006_task_queries: the latest progress a handler reported, and the indexes that keep the task list
-- fast at any depth. Every index on tasks costs each write that changes its columns, so these use
-- columns that never change after insert (queue, schedule_name, created_at), or rarely (run_at
-- changes only when an attempt is retried later); status filters reuse tasks_by_status (status, id).

-- {"value": …, "message": …, "at": ms}, written by ctx.progress (throttled) for the attempt that runs.
ALTER TABLE tasks ADD COLUMN progress TEXT;

CREATE INDEX tasks_by_queue ON tasks (queue, id);
CREATE INDEX tasks_by_schedule ON tasks (schedule_name, id) WHERE schedule_name IS NOT NULL;
-- SQLite adds the rowid (id) to every index, so these are (created_at, id) and (run_at, id): keyset order.
CREATE INDEX tasks_by_created ON tasks (created_at);
CREATE INDEX tasks_by_run_at ON tasks (run_at);

-- The per-minute activity of stats reads finish times with their status: with the status in the index
-- it never visits the table. Same rows as before (finished tasks only), so pruning uses it as it did.
DROP INDEX tasks_finished;
CREATE INDEX tasks_finished ON tasks (finished_at, status) WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED');
