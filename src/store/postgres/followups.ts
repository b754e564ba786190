// The PostgreSQL side of follow-ups (ctx.add): ids drawn from the tasks' sequence ahead, and the tasks
// inserted in the transaction that completes their parent, so they exist if and only if it completed.
import { prerequisiteError, type TaskStatus } from '../../model/task.js';
import type { ExternalTransaction, FollowUp } from '../store.js';

type Db = ExternalTransaction;

async function rows<T>(db: Db, sql: string, values: unknown[] = []): Promise<T[]> {
  return (await db.query(sql, values)).rows as T[];
}

/** Draws `count` ids from the sequence behind tasks.id: no insert ever takes them (an unused one is a gap). */
export async function reserveIds(db: Db, count: number): Promise<number[]> {
  const drawn = await rows<{ id: string }>(
    db,
    "SELECT nextval(pg_get_serial_sequence('tasks', 'id')) AS id FROM generate_series(1, $1::int)",
    [count],
  );
  return drawn.map((r) => Number(r.id)).sort((a, b) => a - b);
}

export async function liveTaskId(db: Db, uniqueKey: string): Promise<number | null> {
  const [row] = await rows<{ id: string }>(db, "SELECT id FROM tasks WHERE unique_key = $1 AND status IN ('WAITING', 'STARTED')", [
    uniqueKey,
  ]);
  return row ? Number(row.id) : null;
}

/**
 * Inside the transaction that completed their parent: inserts follow-ups under their reserved ids, in
 * order. Returns how many were inserted. Unique keys and prerequisites behave as in add().
 */
export async function insertFollowUps(db: Db, followUps: readonly FollowUp[], now: Date): Promise<number> {
  // A follow-up that a live task's unique key replaced: later follow-ups naming it wait for that task.
  const replaced = new Map<number, number>();
  let inserted = 0;
  for (const { id, task: t } of followUps) {
    // As add() and SQLite: a live holder of its unique key stands in for it, and then nothing of it is
    // written (its prerequisites are not marked as having dependants either).
    if (t.uniqueKey !== null) {
      const live = await liveTaskId(db, t.uniqueKey);
      if (live !== null) {
        replaced.set(id, live);
        continue;
      }
    }
    const prereqs = [...new Set(t.prerequisites.map((p) => replaced.get(p) ?? p))];
    // Row-locks the prerequisites until the commit, as add() does.
    const statuses =
      prereqs.length === 0
        ? []
        : await rows<{ id: string; status: TaskStatus }>(
            db,
            'UPDATE tasks SET has_dependants = true WHERE id = ANY($1::bigint[]) RETURNING id, status',
            [prereqs],
          );
    const found = new Set(statuses.map((s) => Number(s.id)));
    const missing = prereqs.filter((p) => !found.has(p));
    const dead = statuses.find((s) => s.status === 'FAILED' || s.status === 'CANCELLED');
    // Checked at ctx.add; a prerequisite deleted since then ends the follow-up FAILED, saying so,
    // rather than refusing the parent's completion.
    const error =
      missing.length > 0
        ? `prerequisite task #${missing[0]} no longer exists (it was deleted before this follow-up was written)`
        : dead
          ? prerequisiteError(Number(dead.id), dead.status)
          : null;
    const status = missing.length > 0 ? 'FAILED' : dead ? dead.status : 'WAITING';
    for (;;) {
      const [row] = await rows<{ id: string }>(
        db,
        `INSERT INTO tasks (id, name, payload, queue, priority, status, run_at, max_attempts, backoff_base_ms,
           backoff_max_ms, timeout_ms, prerequisite_ids, unique_key, note, created_at, waiting_for,
           error, finished_at, failed_by, schedule_name, scheduled_for)
         VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9, $10, $11, $12::bigint[], $13, $14, $15, $16, $17, $18, $19,
                 $20, $21)
         ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('WAITING', 'STARTED') DO NOTHING
         RETURNING id`,
        [
          id, t.name, JSON.stringify(t.payload), t.queue, t.priority, status, t.runAt, t.maxAttempts, t.backoff.baseMs,
          t.backoff.maxMs, t.timeoutMs, prereqs, t.uniqueKey, t.note, now,
          statuses.filter((s) => s.status !== 'COMPLETED').length,
          error, error === null ? null : now, dead && missing.length === 0 ? dead.id : null,
          t.scheduleName ?? null, t.scheduledFor ?? null,
        ],
      );
      // No row: another transaction took the key meanwhile; look again (it may have finished since).
      // (Its prerequisites stay marked then: a flag that only makes pruning look closer.)
      if (!row) {
        const live = t.uniqueKey === null ? null : await liveTaskId(db, t.uniqueKey);
        if (live !== null) {
          replaced.set(id, live);
          break;
        }
        continue;
      }
      if (found.size > 0) {
        await db.query('INSERT INTO task_prerequisites (task_id, prerequisite_id) SELECT $1::bigint, unnest($2::bigint[])', [
          id,
          [...found],
        ]);
      }
      inserted++;
      break;
    }
  }
  return inserted;
}
