-- 008_finished_indexes: the task list's name, queue and run-time indexes leave out STARTED tasks.
-- Every status change here writes a new row version with an entry in every index that covers it (an
-- indexed column, status, changes, which rules out a heap-only update). Over a task's life (add, claim,
-- finish) these three cost nine index writes and a third of a worker's database time; without the
-- STARTED versions a claim writes none of them. STARTED tasks are few (those running now): a page of
-- them walks tasks_by_status. The queries split a page by status, so each part can use its index.
DROP INDEX tasks_by_name;
DROP INDEX tasks_by_queue;
DROP INDEX tasks_by_run_at;
CREATE INDEX tasks_by_name ON tasks (name, id) WHERE status IN ('WAITING', 'COMPLETED', 'FAILED', 'CANCELLED');
CREATE INDEX tasks_by_queue ON tasks (queue, id) WHERE status IN ('WAITING', 'COMPLETED', 'FAILED', 'CANCELLED');
CREATE INDEX tasks_by_run_at ON tasks (run_at, id) WHERE status IN ('WAITING', 'COMPLETED', 'FAILED', 'CANCELLED');
