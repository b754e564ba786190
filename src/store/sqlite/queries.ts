// The SQLite side of task queries: keyset pages, capped counts, delete, dependants, stats, progress.
// Each statement is shaped to use one index (see 006_task_queries.sql) and never a full sort of the table.
import type Database from 'better-sqlite3';
import { DependantsExistError, TaskNotFoundError, TaskRunningError } from '../../model/errors.js';
import type { TaskListItem, TaskQueryFilter, TaskStats } from '../../model/query.js';
import type { Json, TaskProgress, TaskStatus } from '../../model/task.js';
import { likePattern, mergePages, PER_MINUTE_WINDOW, perMinuteSlots } from '../query-shape.js';
import type { AttemptRef, QueueCount, TaskPageRequest } from '../store.js';

/** Every column but the large ones (output, result, error_stack). */
const LIST_COLUMNS = `id, name, payload, queue, priority, status, run_at, attempts, max_attempts, backoff_base_ms,
  backoff_max_ms, timeout_ms, prerequisite_ids, unique_key, note, error, created_at, started_at, finished_at,
  locked_host, locked_pid, locked_worker, lease_until, cancel_requested, schedule_name, scheduled_for, progress`;

export interface ListRow {
  id: number;
  name: string;
  payload: string;
  queue: string;
  priority: number;
  status: TaskStatus;
  run_at: number;
  attempts: number;
  max_attempts: number;
  backoff_base_ms: number;
  backoff_max_ms: number;
  timeout_ms: number;
  prerequisite_ids: string;
  unique_key: string | null;
  note: string | null;
  error: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  locked_host: string | null;
  locked_pid: number | null;
  locked_worker: string | null;
  lease_until: number | null;
  cancel_requested: number;
  schedule_name: string | null;
  scheduled_for: number | null;
  progress: string | null;
}

const date = (ms: number | null) => (ms === null ? null : new Date(ms));

/** The stored progress column ({"value", "message", "at"}) as the task's field. */
export function toProgress(text: string | null): TaskProgress | null {
  if (text === null) return null;
  const p = JSON.parse(text) as { value: Json; message: string | null; at: number };
  return { value: p.value, message: p.message, at: new Date(p.at) };
}

export function toItem(r: ListRow): TaskListItem {
  return {
    id: r.id,
    name: r.name,
    payload: JSON.parse(r.payload) as Json,
    queue: r.queue,
    priority: r.priority,
    status: r.status,
    runAt: new Date(r.run_at),
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    backoff: { baseMs: r.backoff_base_ms, maxMs: r.backoff_max_ms },
    timeoutMs: r.timeout_ms,
    prerequisites: JSON.parse(r.prerequisite_ids) as number[],
    uniqueKey: r.unique_key,
    note: r.note,
    error: r.error,
    createdAt: new Date(r.created_at),
    startedAt: date(r.started_at),
    finishedAt: date(r.finished_at),
    lockedBy:
      r.locked_worker === null ? null : { host: r.locked_host ?? '', pid: r.locked_pid ?? 0, workerId: r.locked_worker },
    leaseExpiresAt: date(r.lease_until),
    cancelRequested: r.cancel_requested === 1,
    scheduleName: r.schedule_name,
    scheduledFor: date(r.scheduled_for),
    progress: toProgress(r.progress),
  };
}

/** WHERE terms for a filter; `params` receives the values in order. */
function whereTerms(f: TaskQueryFilter, params: unknown[]): string[] {
  const where: string[] = [];
  if (f.status && f.status.length > 0) {
    where.push(`status IN (${f.status.map(() => '?').join(', ')})`);
    params.push(...f.status);
  }
  const term = (sql: string, value: unknown) => {
    where.push(sql);
    params.push(value);
  };
  if (f.name !== undefined) term('name = ?', f.name);
  if (f.queue !== undefined) term('queue = ?', f.queue);
  if (f.schedule !== undefined) term('schedule_name = ?', f.schedule);
  if (f.createdFrom !== undefined) term('created_at >= ?', f.createdFrom.getTime());
  if (f.createdTo !== undefined) term('created_at < ?', f.createdTo.getTime());
  if (f.text !== undefined) {
    // LIKE folds ASCII case; the payload is the JSON text as stored.
    const pattern = likePattern(f.text);
    where.push("(payload LIKE ? ESCAPE '\\' OR note LIKE ? ESCAPE '\\' OR error LIKE ? ESCAPE '\\')");
    params.push(pattern, pattern, pattern);
  }
  return where;
}

const SORT_COLUMN = { id: 'id', runAt: 'run_at', finishedAt: 'finished_at' } as const;

function queryOne(db: Database.Database, page: TaskPageRequest): TaskListItem[] {
  const params: unknown[] = [];
  const where = whereTerms(page.filter, params);
  const desc = page.order === 'desc';
  const cmp = desc ? '<' : '>';
  const dir = desc ? 'DESC' : 'ASC';
  if (page.idAbove !== undefined) {
    where.push('id > ?');
    params.push(page.idAbove);
  }
  if (page.idBelow !== undefined) {
    where.push('id < ?');
    params.push(page.idBelow);
  }
  let order: string;
  if (page.sort === 'id') {
    if (page.after) {
      where.push(`id ${cmp} ?`);
      params.push(page.after.id);
    }
    order = `id ${dir}`;
  } else {
    const col = SORT_COLUMN[page.sort];
    // Only finished tasks have a finish time; the same predicate as the partial index tasks_finished.
    if (page.sort === 'finishedAt') where.push("status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND finished_at IS NOT NULL");
    if (page.after) {
      where.push(`(${col}, id) ${cmp} (?, ?)`);
      params.push(page.after.value, page.after.id);
    }
    order = `${col} ${dir}, id ${dir}`;
  }
  const sql = `SELECT ${LIST_COLUMNS} FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY ${order} LIMIT ?`;
  params.push(page.limit);
  return (db.prepare(sql).all(...params) as ListRow[]).map(toItem);
}

export function queryTasks(db: Database.Database, page: TaskPageRequest): TaskListItem[] {
  return mergePages(page, (p) => queryOne(db, p));
}

export function countTasks(db: Database.Database, filter: TaskQueryFilter, cap: number): number {
  const params: unknown[] = [];
  const where = whereTerms(filter, params);
  const sql = `SELECT count(*) AS n FROM (SELECT 1 FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''} LIMIT ?)`;
  return (db.prepare(sql).get(...params, cap) as { n: number }).n;
}

/** Inside a write transaction. */
export function deleteTask(db: Database.Database, id: number): void {
  const row = db.prepare('SELECT status FROM tasks WHERE id = ?').get(id) as { status: TaskStatus } | undefined;
  if (!row) throw new TaskNotFoundError(id);
  if (row.status === 'STARTED') throw new TaskRunningError(id);
  const live = db
    .prepare(
      `SELECT t.id FROM task_prerequisites p JOIN tasks t ON t.id = p.task_id
        WHERE p.prerequisite_id = ? AND t.status IN ('WAITING', 'STARTED') ORDER BY t.id LIMIT 11`,
    )
    .all(id) as { id: number }[];
  if (live.length > 0) throw new DependantsExistError(id, row.status, live.map((r) => r.id));
  // task_prerequisites rows go with it (ON DELETE CASCADE): ended dependants keep their list of ids.
  db.prepare('DELETE FROM tasks WHERE id = ?').run(id);
}

export function dependants(db: Database.Database, id: number): TaskListItem[] {
  const rows = db
    .prepare(
      `SELECT ${LIST_COLUMNS} FROM tasks WHERE id IN (SELECT task_id FROM task_prerequisites WHERE prerequisite_id = ?)
        ORDER BY id`,
    )
    .all(id) as ListRow[];
  return rows.map(toItem);
}

export function taskActivity(db: Database.Database, now: Date): Pick<TaskStats, 'perMinute' | 'latestFailures'> {
  const slots = perMinuteSlots(now);
  const from = slots[0]?.minute.getTime() ?? now.getTime() - PER_MINUTE_WINDOW;
  const minutes = db
    .prepare(
      `SELECT finished_at / 60000 AS m, sum(status = 'COMPLETED') AS completed, sum(status = 'FAILED') AS failed
         FROM tasks INDEXED BY tasks_finished
        WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND finished_at >= ?
        GROUP BY m`,
    )
    .all(from) as { m: number; completed: number; failed: number }[];
  const byMinute = new Map(minutes.map((r) => [Math.floor(r.m) * 60_000, r]));
  for (const s of slots) {
    const r = byMinute.get(s.minute.getTime());
    if (r) {
      s.completed = r.completed;
      s.failed = r.failed;
    }
  }
  // Newest by id: tasks_by_status (status, id) read backwards, ten rows.
  const latestFailures = (
    db.prepare(`SELECT ${LIST_COLUMNS} FROM tasks WHERE status = 'FAILED' ORDER BY id DESC LIMIT 10`).all() as ListRow[]
  ).map(toItem);
  return { perMinute: slots, latestFailures };
}

/** Two subqueries: SQLite reads min() or max() alone from the end of the index, but both together by a scan. */
export function taskIdRange(db: Database.Database): { min: number; max: number } {
  const row = db.prepare('SELECT (SELECT min(id) FROM tasks) AS min, (SELECT max(id) FROM tasks) AS max').get() as { min: number | null; max: number | null };
  return { min: row.min ?? 0, max: row.max ?? 0 };
}

export function countByQueue(db: Database.Database, afterId: number, upToId: number): QueueCount[] {
  return db
    .prepare('SELECT queue, status, count(*) AS n FROM tasks WHERE id > ? AND id <= ? GROUP BY queue, status')
    .all(afterId, upToId) as QueueCount[];
}

/** Inside a write transaction; writes only while the attempt named still runs. */
export function setProgress(db: Database.Database, ref: AttemptRef, p: TaskProgress): boolean {
  const text = JSON.stringify({ value: p.value, message: p.message, at: p.at.getTime() });
  return (
    db
      .prepare(
        `UPDATE tasks SET progress = ?
          WHERE id = ? AND status = 'STARTED' AND locked_worker = ? AND attempts = ?`,
      )
      .run(text, ref.id, ref.workerId, ref.attempt).changes > 0
  );
}

/** Inside a write transaction: removes a stopped daemon's heartbeat, remembering when it was last seen. */
export function removeDaemon(db: Database.Database, id: string): void {
  const row = db.prepare('DELETE FROM daemons WHERE id = ? RETURNING last_seen').get(id) as { last_seen: number } | undefined;
  if (!row) return;
  db.prepare(
    `INSERT INTO taskmill_meta (key, value) VALUES ('daemon_last_stop', ?)
     ON CONFLICT (key) DO UPDATE SET value = CASE WHEN CAST(excluded.value AS INTEGER) > CAST(value AS INTEGER)
                                                  THEN excluded.value ELSE value END`,
  ).run(String(row.last_seen));
}

export function lastDaemonStop(db: Database.Database): Date | null {
  const row = db.prepare("SELECT value FROM taskmill_meta WHERE key = 'daemon_last_stop'").get() as
    | { value: string }
    | undefined;
  return row ? new Date(Number(row.value)) : null;
}
