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

/** Where the previous batch stopped: the last row it took, in the index's order (finished_at as text: exact to the microsecond). */
export interface PruneCursor {
  finishedAt: string;
  id: number;
}

/**
 * Deletes one batch, continuing after `after`; returns how many rows went and where the next batch
 * starts (null: none is needed). Each batch starts where the last one stopped, in the order of
 * tasks_finished (finished_at, status, then id): the rows it walked past and kept (a prerequisite
 * still named, another status, one locked elsewhere) are behind it for good, so a whole run reads
 * each row of the index once, instead of every batch re-reading all kept rows from the oldest.
 */
export async function pruneBatch(
  db: ExternalTransaction,
  status: PrunableStatus,
  before: Date,
  after: PruneCursor | null,
): Promise<{ deleted: number; next: PruneCursor | null }> {
  const { rows } = await db.query(
    `WITH batch AS (
       SELECT f.id, f.finished_at ${PRUNABLE}
          AND (f.finished_at, f.status, f.id) > ($3::timestamptz, $1, $4::bigint)
        ORDER BY f.finished_at, f.status, f.id LIMIT ${PRUNE_BATCH} FOR UPDATE OF f SKIP LOCKED),
     gone AS (DELETE FROM tasks WHERE id IN (SELECT id FROM batch) RETURNING 1),
     last AS (SELECT id, finished_at FROM batch ORDER BY finished_at DESC, id DESC LIMIT 1)
     SELECT (SELECT count(*)::int FROM gone) AS n, (SELECT count(*)::int FROM batch) AS taken,
            (SELECT id::int FROM last) AS last_id, (SELECT finished_at::text FROM last) AS last_at`,
    [status, before, after?.finishedAt ?? '-infinity', after?.id ?? 0],
  );
  const row = rows[0] as { n: number; taken: number; last_id: number | null; last_at: string | null };
  const next = row.taken < PRUNE_BATCH || row.last_id === null || row.last_at === null ? null : { finishedAt: row.last_at, id: row.last_id };
  return { deleted: row.n, next };
}
