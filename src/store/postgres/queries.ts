// The PostgreSQL side of task queries: keyset pages, capped counts, delete, dependants, stats, progress.
// Each statement is shaped to use one index (see 006_task_queries.sql) and never a full sort of the table.
import { DependantsExistError, TaskNotFoundError, TaskRunningError } from '../../model/errors.js';
import type { TaskListItem, TaskQueryFilter, TaskStats } from '../../model/query.js';
import type { Json, TaskProgress, TaskStatus } from '../../model/task.js';
import { likePattern, mergePagesAsync, perMinuteSlots } from '../query-shape.js';
import type { AttemptRef, ExternalTransaction, QueueCount, TaskPageRequest } from '../store.js';

type Db = ExternalTransaction;

/** Every column but the large ones (output, result, error_stack). */
const LIST_COLUMNS = `id, name, payload, queue, priority, status, run_at, attempts, max_attempts, backoff_base_ms,
  backoff_max_ms, timeout_ms, prerequisite_ids, unique_key, note, error, created_at, started_at, finished_at,
  locked_host, locked_pid, locked_worker, lease_until, cancel_requested, schedule_name, scheduled_for, progress`;

export interface ListRow {
  id: string;
  name: string;
  payload: Json;
  queue: string;
  priority: number;
  status: TaskStatus;
  run_at: Date;
  attempts: number;
  max_attempts: number;
  backoff_base_ms: string;
  backoff_max_ms: string;
  timeout_ms: string;
  prerequisite_ids: string[];
  unique_key: string | null;
  note: string | null;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  locked_host: string | null;
  locked_pid: number | null;
  locked_worker: string | null;
  lease_until: Date | null;
  cancel_requested: boolean;
  schedule_name: string | null;
  scheduled_for: Date | null;
  progress: StoredProgress | null;
}

interface StoredProgress {
  value: Json;
  message: string | null;
  at: number;
}

/** The stored progress column ({"value", "message", "at"}) as the task's field. */
export function toProgress(p: StoredProgress | null): TaskProgress | null {
  return p === null ? null : { value: p.value, message: p.message, at: new Date(p.at) };
}

// pg returns bigint as a string (it may exceed 2^53); ids and durations in ms never do.
export function toItem(r: ListRow): TaskListItem {
  return {
    id: Number(r.id),
    name: r.name,
    payload: r.payload,
    queue: r.queue,
    priority: r.priority,
    status: r.status,
    runAt: r.run_at,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    backoff: { baseMs: Number(r.backoff_base_ms), maxMs: Number(r.backoff_max_ms) },
    timeoutMs: Number(r.timeout_ms),
    prerequisites: r.prerequisite_ids.map(Number),
    uniqueKey: r.unique_key,
    note: r.note,
    error: r.error,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    lockedBy:
      r.locked_worker === null ? null : { host: r.locked_host ?? '', pid: r.locked_pid ?? 0, workerId: r.locked_worker },
    leaseExpiresAt: r.lease_until,
    cancelRequested: r.cancel_requested,
    scheduleName: r.schedule_name,
    scheduledFor: r.scheduled_for,
    progress: toProgress(r.progress),
  };
}

async function select<T>(db: Db, sql: string, values: unknown[] = []): Promise<T[]> {
  return (await db.query(sql, values)).rows as T[];
}

/** WHERE terms for a filter; `param` binds a value and returns its placeholder. */
function whereTerms(f: TaskQueryFilter, param: (value: unknown) => string): string[] {
  const where: string[] = [];
  if (f.status && f.status.length > 0) {
    where.push(f.status.length === 1 ? `status = ${param(f.status[0])}` : `status = ANY(${param(f.status)}::text[])`);
  }
  if (f.name !== undefined) where.push(`name = ${param(f.name)}`);
  if (f.queue !== undefined) where.push(`queue = ${param(f.queue)}`);
  if (f.schedule !== undefined) where.push(`schedule_name = ${param(f.schedule)}`);
  if (f.createdFrom !== undefined) where.push(`created_at >= ${param(f.createdFrom)}`);
  if (f.createdTo !== undefined) where.push(`created_at < ${param(f.createdTo)}`);
  if (f.text !== undefined) {
    // The payload as jsonb's text form ({"a": 1}); ILIKE folds case in every script.
    const p = param(likePattern(f.text));
    where.push(`(payload::text ILIKE ${p} OR note ILIKE ${p} OR error ILIKE ${p})`);
  }
  return where;
}

const SORT_COLUMN = { id: 'id', runAt: 'run_at', finishedAt: 'finished_at' } as const;

async function queryOne(db: Db, page: TaskPageRequest): Promise<TaskListItem[]> {
  const values: unknown[] = [];
  const param = (value: unknown) => `$${values.push(value)}`;
  const where = whereTerms(page.filter, param);
  const desc = page.order === 'desc';
  const cmp = desc ? '<' : '>';
  const dir = desc ? 'DESC' : 'ASC';
  if (page.idAbove !== undefined) where.push(`id > ${param(page.idAbove)}`);
  if (page.idBelow !== undefined) where.push(`id < ${param(page.idBelow)}`);
  let order: string;
  if (page.sort === 'id') {
    if (page.after) where.push(`id ${cmp} ${param(page.after.id)}`);
    order = `id ${dir}`;
  } else {
    const col = SORT_COLUMN[page.sort];
    // Only finished tasks have a finish time; the same predicate as the partial index tasks_finished.
    if (page.sort === 'finishedAt') where.push("status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND finished_at IS NOT NULL");
    if (page.after) {
      where.push(`(${col}, id) ${cmp} (${param(new Date(page.after.value ?? 0))}::timestamptz, ${param(page.after.id)}::bigint)`);
    }
    order = `${col} ${dir}, id ${dir}`;
  }
  const sql = `SELECT ${LIST_COLUMNS} FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY ${order} LIMIT ${param(page.limit)}`;
  return (await select<ListRow>(db, sql, values)).map(toItem);
}

export function queryTasks(db: Db, page: TaskPageRequest): Promise<TaskListItem[]> {
  return mergePagesAsync(page, (p) => queryOne(db, p), readsFinishedIndexes);
}

/**
 * The name, queue and run-time indexes leave out STARTED tasks (migration 008): a page that filters or
 * sorts by one of them runs once per status, so every other status's part uses that index and the
 * STARTED part (the tasks running now, few) walks tasks_by_status.
 */
function readsFinishedIndexes(page: TaskPageRequest): boolean {
  return page.filter.name !== undefined || page.filter.queue !== undefined || page.sort === 'runAt';
}

export async function countTasks(db: Db, filter: TaskQueryFilter, cap: number): Promise<number> {
  // As queryTasks: STARTED tasks and the rest counted apart, each part with an index of its own.
  if ((filter.status ?? []).length === 0 && (filter.name !== undefined || filter.queue !== undefined)) {
    const parts = await Promise.all([NOT_STARTED, ['STARTED' as const]].map((status) => countOne(db, { ...filter, status }, cap)));
    return Math.min(cap, parts.reduce((a, b) => a + b, 0));
  }
  return countOne(db, filter, cap);
}

const NOT_STARTED: TaskStatus[] = ['WAITING', 'COMPLETED', 'FAILED', 'CANCELLED'];

async function countOne(db: Db, filter: TaskQueryFilter, cap: number): Promise<number> {
  const values: unknown[] = [];
  const param = (value: unknown) => `$${values.push(value)}`;
  const where = whereTerms(filter, param);
  const sql = `SELECT count(*)::int AS n FROM (SELECT 1 FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    LIMIT ${param(cap)}) AS capped`;
  const [row] = await select<{ n: number }>(db, sql, values);
  return row?.n ?? 0;
}

/** Inside a transaction: the row is locked, so no claim starts it meanwhile. */
export async function deleteTask(db: Db, id: number): Promise<void> {
  const [row] = await select<{ status: TaskStatus }>(db, 'SELECT status FROM tasks WHERE id = $1 FOR UPDATE', [id]);
  if (!row) throw new TaskNotFoundError(id);
  if (row.status === 'STARTED') throw new TaskRunningError(id);
  const live = await select<{ id: string }>(
    db,
    `SELECT t.id FROM task_prerequisites p JOIN tasks t ON t.id = p.task_id
      WHERE p.prerequisite_id = $1 AND t.status IN ('WAITING', 'STARTED') ORDER BY t.id LIMIT 11`,
    [id],
  );
  if (live.length > 0) throw new DependantsExistError(id, row.status, live.map((r) => Number(r.id)));
  // task_prerequisites rows go with it (ON DELETE CASCADE): ended dependants keep their list of ids.
  await db.query('DELETE FROM tasks WHERE id = $1', [id]);
}

export async function dependants(db: Db, id: number): Promise<TaskListItem[]> {
  const rows = await select<ListRow>(
    db,
    `SELECT ${LIST_COLUMNS} FROM tasks WHERE id IN (SELECT task_id FROM task_prerequisites WHERE prerequisite_id = $1)
      ORDER BY id`,
    [id],
  );
  return rows.map(toItem);
}

export async function taskActivity(db: Db, now: Date): Promise<Pick<TaskStats, 'perMinute' | 'latestFailures'>> {
  const slots = perMinuteSlots(now);
  const from = slots[0]?.minute ?? now;
  const [minutes, failures] = await Promise.all([
    select<{ m: string; completed: number; failed: number }>(
      db,
      `SELECT (floor(extract(epoch FROM finished_at) / 60) * 60000)::bigint AS m,
              count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
              count(*) FILTER (WHERE status = 'FAILED')::int AS failed
         FROM tasks
        WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND finished_at >= $1
        GROUP BY 1`,
      [from],
    ),
    // Newest by id: tasks_by_status (status, id) read backwards, ten rows.
    select<ListRow>(db, `SELECT ${LIST_COLUMNS} FROM tasks WHERE status = 'FAILED' ORDER BY id DESC LIMIT 10`),
  ]);
  const byMinute = new Map(minutes.map((r) => [Number(r.m), r]));
  for (const s of slots) {
    const r = byMinute.get(s.minute.getTime());
    if (r) {
      s.completed = r.completed;
      s.failed = r.failed;
    }
  }
  return { perMinute: slots, latestFailures: failures.map(toItem) };
}

export async function taskIdRange(db: Db): Promise<{ min: number; max: number }> {
  const [row] = await select<{ min: string | null; max: string | null }>(db, 'SELECT (SELECT min(id) FROM tasks) AS min, (SELECT max(id) FROM tasks) AS max');
  return { min: Number(row?.min ?? 0), max: Number(row?.max ?? 0) };
}

export async function countByQueue(db: Db, afterId: number, upToId: number): Promise<QueueCount[]> {
  return select<QueueCount>(
    db,
    'SELECT queue, status, count(*)::int AS n FROM tasks WHERE id > $1 AND id <= $2 GROUP BY queue, status',
    [afterId, upToId],
  );
}

/** Writes only while the attempt named still runs. */
export async function setProgress(db: Db, ref: AttemptRef, p: TaskProgress): Promise<boolean> {
  const r = await db.query(
    `UPDATE tasks SET progress = $1::jsonb
      WHERE id = $2 AND status = 'STARTED' AND locked_worker = $3 AND attempts = $4 RETURNING id`,
    [JSON.stringify({ value: p.value, message: p.message, at: p.at.getTime() }), ref.id, ref.workerId, ref.attempt],
  );
  return r.rows.length > 0;
}

/** Removes a stopped daemon's heartbeat, remembering when it was last seen. */
export async function removeDaemon(db: Db, id: string): Promise<void> {
  await db.query(
    `WITH gone AS (DELETE FROM daemons WHERE id = $1 RETURNING last_seen)
     INSERT INTO taskmill_meta (key, value)
     SELECT 'daemon_last_stop', (extract(epoch FROM last_seen) * 1000)::bigint::text FROM gone
     ON CONFLICT (key) DO UPDATE
       SET value = CASE WHEN excluded.value::bigint > taskmill_meta.value::bigint THEN excluded.value ELSE taskmill_meta.value END`,
    [id],
  );
}

export async function lastDaemonStop(db: Db): Promise<Date | null> {
  const [row] = await select<{ value: string }>(db, "SELECT value FROM taskmill_meta WHERE key = 'daemon_last_stop'");
  return row ? new Date(Number(row.value)) : null;
}
