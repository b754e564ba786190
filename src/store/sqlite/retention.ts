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

/** Where the previous batch stopped: the last row it took, in the index's order. */
export interface PruneCursor {
  finishedAt: number;
  id: number;
}

/**
 * Deletes one batch (inside the caller's write transaction), continuing after `after`; returns how
 * many rows went and where the next batch starts (null: none is needed). Each batch starts where the
 * last one stopped, in the order of tasks_finished (finished_at, status, then rowid): the rows it
 * walked past and kept (a prerequisite still named, another status) are behind it for good, so a
 * whole run reads each row of the index once, instead of every batch re-reading all kept rows from
 * the oldest, which grew with the square of the backlog while holding the write lock.
 */
export function pruneBatch(
  db: Database.Database,
  status: PrunableStatus,
  before: Date,
  after: PruneCursor | null,
): { deleted: number; next: PruneCursor | null } {
  const rows = db
    .prepare(
      `SELECT f.id AS id, f.finished_at AS finishedAt ${PRUNABLE}
         AND (f.finished_at, f.status, f.id) > (@afterAt, @status, @afterId)
       ORDER BY f.finished_at, f.status, f.id LIMIT ${PRUNE_BATCH}`,
    )
    .all({ status, before: before.getTime(), afterAt: after?.finishedAt ?? Number.MIN_SAFE_INTEGER, afterId: after?.id ?? 0 }) as PruneCursor[];
  if (rows.length === 0) return { deleted: 0, next: null };
  const { changes } = db.prepare(`DELETE FROM tasks WHERE id IN (SELECT value FROM json_each(?))`).run(JSON.stringify(rows.map((r) => r.id)));
  return { deleted: changes, next: rows.length < PRUNE_BATCH ? null : (rows.at(-1) as PruneCursor) };
}
