// The SQLite side of schedules: rows, upsert, and firing one occurrence inside one transaction.
import type Database from 'better-sqlite3';
import type { CatchUp, Overlap, Schedule, ScheduleDefinition, ScheduleRule, ScheduleSource } from '../../model/schedule.js';
import type { Json, NewTask, Task } from '../../model/task.js';
import type { FireOutcome, ScheduleFire, ScheduleSkip } from '../store.js';

interface ScheduleRow {
  name: string;
  task: string;
  payload: string;
  rule_kind: 'every' | 'cron';
  every_ms: number | null;
  cron: string | null;
  timezone: string | null;
  catch_up: CatchUp;
  overlap: Overlap;
  enabled: number;
  source: ScheduleSource;
  created_at: number;
  updated_at: number;
  anchor_at: number;
  last_due_at: number | null;
  last_fired_at: number | null;
  last_task_id: number | null;
  last_skipped_at: number | null;
  last_skip_reason: string | null;
  skipped_count: number;
}

const date = (ms: number | null) => (ms === null ? null : new Date(ms));

function toSchedule(r: ScheduleRow): Schedule {
  const rule: ScheduleRule =
    r.rule_kind === 'every'
      ? { kind: 'every', everyMs: r.every_ms ?? 0 }
      : { kind: 'cron', expression: r.cron ?? '', timezone: r.timezone ?? 'UTC' };
  return {
    name: r.name,
    task: r.task,
    payload: JSON.parse(r.payload) as Json,
    rule,
    catchUp: r.catch_up,
    overlap: r.overlap,
    enabled: r.enabled === 1,
    source: r.source,
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
    anchorAt: new Date(r.anchor_at),
    lastDueAt: date(r.last_due_at),
    lastFiredAt: date(r.last_fired_at),
    lastTaskId: r.last_task_id,
    lastSkippedAt: date(r.last_skipped_at),
    lastSkipReason: r.last_skip_reason,
    skippedCount: r.skipped_count,
  };
}

function sameRule(a: ScheduleRule, b: ScheduleRule): boolean {
  return a.kind === 'every' && b.kind === 'every'
    ? a.everyMs === b.everyMs
    : a.kind === 'cron' && b.kind === 'cron' && a.expression === b.expression && a.timezone === b.timezone;
}

export function saveSchedule(db: Database.Database, d: ScheduleDefinition, now: Date): Schedule {
  return db
    .transaction(() => {
      const old = db.prepare('SELECT * FROM schedules WHERE name = ?').get(d.name) as ScheduleRow | undefined;
      const previous = old ? toSchedule(old) : null;
      // A new rule, or a resumed schedule, starts counting from now: no flood of "missed" occurrences.
      const restart = !previous || !sameRule(previous.rule, d.rule) || (!previous.enabled && d.enabled);
      const t = now.getTime();
      db.prepare(
        `INSERT INTO schedules (name, task, payload, rule_kind, every_ms, cron, timezone, catch_up, overlap, enabled,
           source, created_at, updated_at, anchor_at, last_due_at)
         VALUES (@name, @task, @payload, @kind, @everyMs, @cron, @timezone, @catchUp, @overlap, @enabled,
           @source, @now, @now, @now, NULL)
         ON CONFLICT (name) DO UPDATE SET
           task = excluded.task, payload = excluded.payload, rule_kind = excluded.rule_kind,
           every_ms = excluded.every_ms, cron = excluded.cron, timezone = excluded.timezone,
           catch_up = excluded.catch_up, overlap = excluded.overlap, enabled = excluded.enabled,
           source = excluded.source, updated_at = excluded.updated_at,
           anchor_at = CASE WHEN @restart THEN @now ELSE anchor_at END,
           last_due_at = CASE WHEN @restart THEN @now ELSE last_due_at END`,
      ).run({
        name: d.name,
        task: d.task,
        payload: JSON.stringify(d.payload),
        kind: d.rule.kind,
        everyMs: d.rule.kind === 'every' ? d.rule.everyMs : null,
        cron: d.rule.kind === 'cron' ? d.rule.expression : null,
        timezone: d.rule.kind === 'cron' ? d.rule.timezone : null,
        catchUp: d.catchUp,
        overlap: d.overlap,
        enabled: d.enabled ? 1 : 0,
        source: d.source,
        now: t,
        restart: restart ? 1 : 0,
      });
      return toSchedule(db.prepare('SELECT * FROM schedules WHERE name = ?').get(d.name) as ScheduleRow);
    })
    .immediate();
}

export function removeSchedule(db: Database.Database, name: string): boolean {
  return db.prepare('DELETE FROM schedules WHERE name = ?').run(name).changes > 0;
}

export function getSchedule(db: Database.Database, name: string): Schedule | null {
  const row = db.prepare('SELECT * FROM schedules WHERE name = ?').get(name) as ScheduleRow | undefined;
  return row ? toSchedule(row) : null;
}

export function listSchedules(db: Database.Database): Schedule[] {
  return (db.prepare('SELECT * FROM schedules ORDER BY name').all() as ScheduleRow[]).map(toSchedule);
}

export function fireSchedule(
  db: Database.Database,
  f: ScheduleFire,
  now: Date,
  insertTask: (task: NewTask) => Task,
): FireOutcome {
  return db
    .transaction((): FireOutcome => {
      const row = db.prepare('SELECT * FROM schedules WHERE name = ?').get(f.name) as ScheduleRow | undefined;
      if (!row) return { kind: 'skipped', reason: 'the schedule no longer exists' };
      const due = f.dueAt.getTime();
      if (!f.manual) {
        if (!row.enabled) return { kind: 'skipped', reason: 'the schedule is paused' };
        // Served already (fired or skipped), perhaps by a scheduler working from an older snapshot after
        // the tick row was pruned: an occurrence fires once, for ever.
        if (row.last_due_at !== null && due <= row.last_due_at) return { kind: 'taken' };
        const tick = db
          .prepare('INSERT INTO schedule_ticks (schedule_name, due_at) VALUES (?, ?) ON CONFLICT DO NOTHING')
          .run(f.name, due);
        if (tick.changes === 0) return { kind: 'taken' };
        if (f.skippedBefore && f.skippedBefore.count > 0) {
          db.prepare(
            `UPDATE schedules SET skipped_count = skipped_count + ?, last_skipped_at = ?, last_skip_reason = ?
             WHERE name = ?`,
          ).run(f.skippedBefore.count, now.getTime(), f.skippedBefore.reason, f.name);
        }
      }
      if (f.overlap === 'skip' && !f.manual) {
        const live = db
          .prepare(
            "SELECT id, status FROM tasks WHERE schedule_name = ? AND status IN ('WAITING', 'STARTED') ORDER BY id LIMIT 1",
          )
          .get(f.name) as { id: number; status: string } | undefined;
        if (live) {
          const reason = `overlap: task #${live.id} of the previous occurrence is still ${live.status}`;
          db.prepare(
            `UPDATE schedules SET last_due_at = max(coalesce(last_due_at, 0), @due), last_skipped_at = @due,
               last_skip_reason = @reason, skipped_count = skipped_count + 1 WHERE name = @name`,
          ).run({ due, reason, name: f.name });
          return { kind: 'skipped', reason };
        }
      }
      const task = insertTask({ ...f.task, scheduleName: f.name, scheduledFor: f.dueAt });
      if (!f.manual) db.prepare('UPDATE schedule_ticks SET task_id = ? WHERE schedule_name = ? AND due_at = ?').run(task.id, f.name, due);
      db.prepare(
        `UPDATE schedules SET last_fired_at = @now, last_task_id = @id,
           last_due_at = CASE WHEN @manual THEN last_due_at ELSE max(coalesce(last_due_at, 0), @due) END
         WHERE name = @name`,
      ).run({ now: now.getTime(), id: task.id, manual: f.manual ? 1 : 0, due, name: f.name });
      return { kind: 'fired', taskId: task.id };
    })
    .immediate();
}

export function skipSchedule(db: Database.Database, s: ScheduleSkip, now: Date): void {
  db.prepare(
    `UPDATE schedules SET last_due_at = max(coalesce(last_due_at, 0), @until), last_skipped_at = @now,
       last_skip_reason = @reason, skipped_count = skipped_count + @count
     WHERE name = @name AND (last_due_at IS NULL OR last_due_at < @until)`,
  ).run({ until: s.servedUntil.getTime(), now: now.getTime(), reason: s.reason, count: s.count, name: s.name });
}

export function pruneTicks(db: Database.Database, before: Date): number {
  return db.prepare('DELETE FROM schedule_ticks WHERE due_at < ?').run(before.getTime()).changes;
}
