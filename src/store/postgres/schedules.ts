// The PostgreSQL side of schedules: rows, upsert, and firing one occurrence inside one transaction.
// The tick row (schedule, due time) is the cluster-wide "who fires this": the first insert wins.
import type { CatchUp, Overlap, Schedule, ScheduleDefinition, ScheduleRule, ScheduleSource } from '../../model/schedule.js';
import type { Json, NewTask, Task } from '../../model/task.js';
import type { ExternalTransaction, FireOutcome, ScheduleFire, ScheduleSkip } from '../store.js';

type Db = ExternalTransaction;

interface ScheduleRow {
  name: string;
  task: string;
  payload: Json;
  rule_kind: 'every' | 'cron';
  every_ms: string | null;
  cron: string | null;
  timezone: string | null;
  catch_up: CatchUp;
  overlap: Overlap;
  enabled: boolean;
  source: ScheduleSource;
  created_at: Date;
  updated_at: Date;
  anchor_at: Date;
  last_due_at: Date | null;
  last_fired_at: Date | null;
  last_task_id: string | null;
  last_skipped_at: Date | null;
  last_skip_reason: string | null;
  skipped_count: number;
}

function toSchedule(r: ScheduleRow): Schedule {
  const rule: ScheduleRule =
    r.rule_kind === 'every'
      ? { kind: 'every', everyMs: Number(r.every_ms) }
      : { kind: 'cron', expression: r.cron ?? '', timezone: r.timezone ?? 'UTC' };
  return {
    name: r.name,
    task: r.task,
    payload: r.payload,
    rule,
    catchUp: r.catch_up,
    overlap: r.overlap,
    enabled: r.enabled,
    source: r.source,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    anchorAt: r.anchor_at,
    lastDueAt: r.last_due_at,
    lastFiredAt: r.last_fired_at,
    lastTaskId: r.last_task_id === null ? null : Number(r.last_task_id),
    lastSkippedAt: r.last_skipped_at,
    lastSkipReason: r.last_skip_reason,
    skippedCount: r.skipped_count,
  };
}

async function rows<T>(db: Db, sql: string, values: unknown[] = []): Promise<T[]> {
  return (await db.query(sql, values)).rows as T[];
}

/** Upserts by name; a changed rule or a resume restarts fire times from now (decided in SQL, under the row lock). */
export async function saveSchedule(db: Db, d: ScheduleDefinition, now: Date): Promise<Schedule> {
  const [row] = await rows<ScheduleRow>(
    db,
    `INSERT INTO schedules AS s (name, task, payload, rule_kind, every_ms, cron, timezone, catch_up, overlap, enabled,
       source, created_at, updated_at, anchor_at, last_due_at)
     VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $12, NULL)
     ON CONFLICT (name) DO UPDATE SET
       task = excluded.task, payload = excluded.payload, rule_kind = excluded.rule_kind,
       every_ms = excluded.every_ms, cron = excluded.cron, timezone = excluded.timezone,
       catch_up = excluded.catch_up, overlap = excluded.overlap, enabled = excluded.enabled,
       source = excluded.source, updated_at = excluded.updated_at,
       anchor_at = CASE WHEN ${RESTART} THEN excluded.updated_at ELSE s.anchor_at END,
       last_due_at = CASE WHEN ${RESTART} THEN excluded.updated_at ELSE s.last_due_at END
     RETURNING *`,
    [
      d.name,
      d.task,
      JSON.stringify(d.payload),
      d.rule.kind,
      d.rule.kind === 'every' ? d.rule.everyMs : null,
      d.rule.kind === 'cron' ? d.rule.expression : null,
      d.rule.kind === 'cron' ? d.rule.timezone : null,
      d.catchUp,
      d.overlap,
      d.enabled,
      d.source,
      now,
    ],
  );
  return toSchedule(row as ScheduleRow);
}

const RESTART = `(s.rule_kind IS DISTINCT FROM excluded.rule_kind OR s.every_ms IS DISTINCT FROM excluded.every_ms
  OR s.cron IS DISTINCT FROM excluded.cron OR s.timezone IS DISTINCT FROM excluded.timezone
  OR (NOT s.enabled AND excluded.enabled))`;

export async function removeSchedule(db: Db, name: string): Promise<boolean> {
  return (await rows(db, 'DELETE FROM schedules WHERE name = $1 RETURNING name', [name])).length > 0;
}

export async function getSchedule(db: Db, name: string): Promise<Schedule | null> {
  const [row] = await rows<ScheduleRow>(db, 'SELECT * FROM schedules WHERE name = $1', [name]);
  return row ? toSchedule(row) : null;
}

export async function listSchedules(db: Db): Promise<Schedule[]> {
  return (await rows<ScheduleRow>(db, 'SELECT * FROM schedules ORDER BY name')).map(toSchedule);
}

/** Runs inside the caller's transaction; `insertTask` adds the task on the same connection. */
export async function fireSchedule(
  db: Db,
  f: ScheduleFire,
  now: Date,
  insertTask: (task: NewTask) => Promise<Task>,
): Promise<FireOutcome> {
  // Locks the schedule row: firings of one schedule take turns, so the overlap check below is sound.
  const [row] = await rows<{ enabled: boolean; last_due_at: Date | null }>(
    db,
    'SELECT enabled, last_due_at FROM schedules WHERE name = $1 FOR UPDATE',
    [f.name],
  );
  if (!row) return { kind: 'skipped', reason: 'the schedule no longer exists' };
  if (!f.manual) {
    if (!row.enabled) return { kind: 'skipped', reason: 'the schedule is paused' };
    // Served already (fired or skipped), perhaps by a scheduler working from an older snapshot after
    // the tick row was pruned: an occurrence fires once, for ever.
    if (row.last_due_at !== null && f.dueAt.getTime() <= row.last_due_at.getTime()) return { kind: 'taken' };
    const tick = await rows(
      db,
      'INSERT INTO schedule_ticks (schedule_name, due_at) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING due_at',
      [f.name, f.dueAt],
    );
    if (tick.length === 0) return { kind: 'taken' };
    if (f.skippedBefore && f.skippedBefore.count > 0) {
      await db.query(
        `UPDATE schedules SET skipped_count = skipped_count + $2, last_skipped_at = $3, last_skip_reason = $4
         WHERE name = $1`,
        [f.name, f.skippedBefore.count, now, f.skippedBefore.reason],
      );
    }
  }
  if (f.overlap === 'skip' && !f.manual) {
    const [live] = await rows<{ id: string; status: string }>(
      db,
      "SELECT id, status FROM tasks WHERE schedule_name = $1 AND status IN ('WAITING', 'STARTED') ORDER BY id LIMIT 1",
      [f.name],
    );
    if (live) {
      const reason = `overlap: task #${live.id} of the previous occurrence is still ${live.status}`;
      await db.query(
        `UPDATE schedules SET last_due_at = greatest(last_due_at, $2), last_skipped_at = $2, last_skip_reason = $3,
           skipped_count = skipped_count + 1 WHERE name = $1`,
        [f.name, f.dueAt, reason],
      );
      return { kind: 'skipped', reason };
    }
  }
  const task = await insertTask({ ...f.task, scheduleName: f.name, scheduledFor: f.dueAt });
  if (!f.manual) {
    await db.query('UPDATE schedule_ticks SET task_id = $3 WHERE schedule_name = $1 AND due_at = $2', [f.name, f.dueAt, task.id]);
  }
  await db.query(
    `UPDATE schedules SET last_fired_at = $2, last_task_id = $3,
       last_due_at = CASE WHEN $4 THEN last_due_at ELSE greatest(last_due_at, $5) END
     WHERE name = $1`,
    [f.name, now, task.id, f.manual === true, f.dueAt],
  );
  return { kind: 'fired', taskId: task.id };
}

export async function skipSchedule(db: Db, s: ScheduleSkip, now: Date): Promise<void> {
  await db.query(
    `UPDATE schedules SET last_due_at = greatest(last_due_at, $2), last_skipped_at = $3, last_skip_reason = $4,
       skipped_count = skipped_count + $5
     WHERE name = $1 AND (last_due_at IS NULL OR last_due_at < $2)`,
    [s.name, s.servedUntil, now, s.reason, s.count],
  );
}

export async function pruneTicks(db: Db, before: Date): Promise<number> {
  return (await rows(db, 'DELETE FROM schedule_ticks WHERE due_at < $1 RETURNING due_at', [before])).length;
}
