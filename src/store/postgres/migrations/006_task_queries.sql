-- 006_task_queries: the latest progress a handler reported, and the indexes that keep the task list
-- fast at any depth. Every index on tasks costs each status transition here (a non-HOT update
-- writes an entry in every index), so they are few; status filters reuse tasks_by_status (status, id),
-- and the creation time gets a BRIN index (tiny, cheap to keep: created_at grows with id).

-- {"value": …, "message": …, "at": ms}, written by ctx.progress (throttled) for the attempt that runs.
ALTER TABLE tasks ADD COLUMN progress jsonb;

CREATE INDEX tasks_by_queue ON tasks (queue, id);
CREATE INDEX tasks_by_schedule ON tasks (schedule_name, id) WHERE schedule_name IS NOT NULL;
CREATE INDEX tasks_by_created ON tasks USING brin (created_at);
CREATE INDEX tasks_by_run_at ON tasks (run_at, id);

-- The per-minute activity of stats reads finish times with their status: with the status in the index
-- it never visits the table. Same rows as before (finished tasks only), so pruning uses it as it did.
DROP INDEX tasks_finished;
CREATE INDEX tasks_finished ON tasks (finished_at, status) WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED');
