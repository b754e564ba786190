-- 009_fewer_task_indexes: two indexes every claim and completion paid for, gone.
-- tasks_leases (lease_until, STARTED tasks): each claim wrote an entry and each completion removed it,
-- for a rescue that reads the STARTED tasks, which are few (those running now): tasks_by_status
-- finds them. tasks_next_run (run_at, unblocked WAITING tasks): the next due time is read from
-- tasks_due instead, one short look per priority (see nextRunAt). Measured on SQLite, a worker's
-- claims and completions ran 35% faster without the two.
DROP INDEX tasks_leases;
DROP INDEX tasks_next_run;
