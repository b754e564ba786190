// The PostgreSQL side of retention: finished tasks deleted by status and age, a few hundred per
// statement (each its own short transaction), skipping rows another transaction holds, so claims and
// writers never wait behind a long delete.
import type { ExternalTransaction, PrunableStatus } from '../store.js';

/** Rows one pruning statement deletes: short enough that claims and writers barely wait. */
export const PRUNE_BATCH = 500;

// A finished task that a live (WAITING or STARTED) task names as a prerequisite stays until that one ends.
const PRUNABLE = `FROM tasks f
   WHERE f.status = $1 AND f.finished_at < $2
     AND NOT (f.has_dependants AND EXISTS (
           SELECT 1 FROM task_prerequisites p JOIN tasks d ON d.id = p.task_id
            WHERE p.prerequisite_id = f.id AND d.status IN ('WAITING', 'STARTED')))`;

/** How many tasks of `status` finished before `before` could be pruned now. */
export async function countPrunable(db: ExternalTransaction, status: PrunableStatus, before: Date): Promise<number> {
  const { rows } = await db.query(`SELECT count(*)::int AS n ${PRUNABLE}`, [status, before]);
  return (rows[0] as { n: number }).n;
}

/** Deletes one batch; returns how many rows went. */
export async function pruneBatch(db: ExternalTransaction, status: PrunableStatus, before: Date): Promise<number> {
  const { rows } = await db.query(
    `WITH gone AS (
       DELETE FROM tasks WHERE id IN (SELECT f.id ${PRUNABLE} LIMIT ${PRUNE_BATCH} FOR UPDATE OF f SKIP LOCKED)
       RETURNING 1)
     SELECT count(*)::int AS n FROM gone`,
    [status, before],
  );
  return (rows[0] as { n: number }).n;
}
