// The SQLite side of retention: finished tasks deleted by status and age, a few hundred per write
// transaction, so other processes' writers and claims wait for one short batch at most.
import type Database from 'better-sqlite3';
import type { PrunableStatus } from '../store.js';

/** Rows one pruning transaction deletes: short enough that writers and claims barely wait. */
export const PRUNE_BATCH = 500;

// INDEXED BY the partial index on finished_at (its condition is repeated so SQLite may use it). A
// finished task that a live (WAITING or STARTED) task names as a prerequisite stays until that one ends.
const PRUNABLE = `FROM tasks AS f INDEXED BY tasks_finished
   WHERE f.status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND f.status = @status AND f.finished_at < @before
     AND NOT (f.has_dependants = 1 AND EXISTS (
           SELECT 1 FROM task_prerequisites p JOIN tasks d ON d.id = p.task_id
            WHERE p.prerequisite_id = f.id AND d.status IN ('WAITING', 'STARTED')))`;

/** How many tasks of `status` finished before `before` could be pruned now. */
export function countPrunable(db: Database.Database, status: PrunableStatus, before: Date): number {
  return (db.prepare(`SELECT count(*) AS n ${PRUNABLE}`).get({ status, before: before.getTime() }) as { n: number }).n;
}

/** Deletes one batch (inside the caller's write transaction); returns how many rows went. */
export function pruneBatch(db: Database.Database, status: PrunableStatus, before: Date): number {
  return db
    .prepare(`DELETE FROM tasks WHERE id IN (SELECT f.id ${PRUNABLE} LIMIT ${PRUNE_BATCH})`)
    .run({ status, before: before.getTime() }).changes;
}
