-- 004_hot_path: a due-task index per queue, so a worker of a rare queue does not scan the backlog of
-- the others.

CREATE INDEX tasks_due_queue ON tasks (queue, priority DESC, run_at, id) WHERE status = 'WAITING' AND waiting_for = 0;
