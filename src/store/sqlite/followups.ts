// The SQLite side of follow-ups (ctx.add): ids reserved ahead, and the tasks inserted in the
// transaction that completes their parent, so they exist if and only if the parent completed.
import type Database from 'better-sqlite3';
import { prerequisiteError, type TaskStatus } from '../../model/task.js';
import type { Completion, FollowUp } from '../store.js';

/**
 * Reserves `count` ids inside a write transaction. `tasks.id` is AUTOINCREMENT, so SQLite never hands
 * out an id at or below `sqlite_sequence.seq` again: moving seq past the reserved ids keeps every
 * other insert off them, whether or not the follow-up is ever written (an unused id is a gap).
 */
export function reserveIds(db: Database.Database, count: number): number[] {
  const seq = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'tasks'").get() as { seq: number } | undefined;
  const { top } = db.prepare('SELECT coalesce(max(id), 0) AS top FROM tasks').get() as { top: number };
  const from = Math.max(seq?.seq ?? 0, top);
  if (seq) db.prepare("UPDATE sqlite_sequence SET seq = ? WHERE name = 'tasks'").run(from + count);
  else db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('tasks', ?)").run(from + count);
  return Array.from({ length: count }, (_, i) => from + 1 + i);
}

export function liveTaskId(db: Database.Database, uniqueKey: string): number | null {
  const row = db.prepare("SELECT id FROM tasks WHERE unique_key = ? AND status IN ('WAITING', 'STARTED')").get(uniqueKey) as
    | { id: number }
    | undefined;
  return row?.id ?? null;
}

/**
 * Inside the write transaction of a settle: completes each attempt that still holds its task (with
 * `complete`, the ordinary completion) and then inserts its follow-ups; an attempt no longer held
 * (its lease was lost, or the outcome was written already) adds nothing. Returns whether any task
 * became claimable (dependants unblocked or follow-ups added).
 */
export function completeWithFollowUps(
  db: Database.Database,
  items: readonly Completion[],
  now: Date,
  complete: (items: readonly Completion[]) => boolean,
): boolean {
  const held = db.prepare("SELECT 1 FROM tasks WHERE id = ? AND status = 'STARTED' AND locked_worker = ? AND attempts = ?");
  let wake = false;
  for (const c of items) {
    // Writes are serialised (BEGIN IMMEDIATE): what this read finds holds until the commit.
    if (!held.get(c.id, c.workerId, c.attempt)) continue;
    if (complete([c])) wake = true;
    if (insertFollowUps(db, c.followUps ?? [], now) > 0) wake = true;
  }
  return wake;
}

/** Inserts follow-ups under their reserved ids, in order; returns how many were inserted. */
function insertFollowUps(db: Database.Database, followUps: readonly FollowUp[], now: Date): number {
  const findLive = db.prepare("SELECT id FROM tasks WHERE unique_key = ? AND status IN ('WAITING', 'STARTED')");
  const markPrereq = db.prepare('UPDATE tasks SET has_dependants = 1 WHERE id = ? RETURNING id, status');
  const link = db.prepare('INSERT INTO task_prerequisites (task_id, prerequisite_id) VALUES (?, ?)');
  const insert = db.prepare(`
    INSERT INTO tasks (id, name, payload, queue, priority, status, run_at, max_attempts, backoff_base_ms,
      backoff_max_ms, timeout_ms, prerequisite_ids, unique_key, note, created_at, waiting_for,
      error, finished_at, failed_by, schedule_name, scheduled_for)
    VALUES (@id, @name, @payload, @queue, @priority, @status, @runAt, @maxAttempts, @backoffBase,
      @backoffMax, @timeoutMs, @prerequisites, @uniqueKey, @note, @now, @waitingFor,
      @error, @finishedAt, @failedBy, @scheduleName, @scheduledFor)`);
  // A follow-up that a live task's unique key replaced: later follow-ups naming it wait for that task.
  const replaced = new Map<number, number>();
  let inserted = 0;
  for (const { id, task: t } of followUps) {
    if (t.uniqueKey !== null) {
      const live = findLive.get(t.uniqueKey) as { id: number } | undefined;
      if (live) {
        replaced.set(id, live.id);
        continue;
      }
    }
    const prereqs = [...new Set(t.prerequisites.map((p) => replaced.get(p) ?? p))];
    const statuses: { id: number; status: TaskStatus }[] = [];
    const missing: number[] = [];
    for (const p of prereqs) {
      const row = markPrereq.get(p) as { id: number; status: TaskStatus } | undefined;
      if (row) statuses.push(row);
      else missing.push(p);
    }
    const dead = statuses.find((s) => s.status === 'FAILED' || s.status === 'CANCELLED');
    // Checked at ctx.add; a prerequisite deleted since then ends the follow-up FAILED, saying so,
    // rather than refusing the parent's completion.
    const error = missing.length > 0
      ? `prerequisite task #${missing[0]} no longer exists (it was deleted before this follow-up was written)`
      : dead
        ? prerequisiteError(dead.id, dead.status)
        : null;
    insert.run({
      id,
      name: t.name,
      payload: JSON.stringify(t.payload),
      queue: t.queue,
      priority: t.priority,
      status: missing.length > 0 ? 'FAILED' : dead ? dead.status : 'WAITING',
      runAt: t.runAt.getTime(),
      maxAttempts: t.maxAttempts,
      backoffBase: t.backoff.baseMs,
      backoffMax: t.backoff.maxMs,
      timeoutMs: t.timeoutMs,
      prerequisites: JSON.stringify(prereqs),
      uniqueKey: t.uniqueKey,
      note: t.note,
      now: now.getTime(),
      waitingFor: statuses.filter((s) => s.status !== 'COMPLETED').length,
      error,
      finishedAt: error === null ? null : now.getTime(),
      failedBy: dead && missing.length === 0 ? dead.id : null,
      scheduleName: t.scheduleName ?? null,
      scheduledFor: t.scheduledFor ? t.scheduledFor.getTime() : null,
    });
    for (const s of statuses) link.run(id, s.id);
    inserted++;
  }
  return inserted;
}
