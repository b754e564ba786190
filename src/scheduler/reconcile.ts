// Schedules from the config file: validated one by one (a bad entry is reported and skipped, the
// others still apply), then made so in the store: added, changed, and removed once they leave the file.
import { z } from 'zod';
import { InvalidInputError } from '../model/errors.js';
import {
  CATCH_UP_POLICIES,
  OVERLAP_POLICIES,
  SCHEDULE_NAME_PATTERN,
  type Schedule,
  type ScheduleDefinition,
} from '../model/schedule.js';
import type { Json } from '../model/task.js';
import type { Store } from '../store/store.js';
import { parseRule } from './rules.js';

/** What a schedule looks like in the config file, the API and the CLI. */
export interface ScheduleSpec {
  task: string;
  payload?: unknown;
  every?: string | number;
  cron?: string;
  timezone?: string;
  catchUp?: (typeof CATCH_UP_POLICIES)[number];
  overlap?: (typeof OVERLAP_POLICIES)[number];
  enabled?: boolean;
}

const specSchema = z
  .object({
    name: z.string().optional(),
    task: z.string({ error: 'expected the name of the task to create, such as "send-report"' }),
    payload: z.unknown().optional(),
    every: z.union([z.string(), z.number()]).optional(),
    cron: z.string().optional(),
    timezone: z.string().optional(),
    catchUp: z.enum(CATCH_UP_POLICIES).optional(),
    overlap: z.enum(OVERLAP_POLICIES).optional(),
    enabled: z.boolean().optional(),
  })
  .strict();

export function checkScheduleName(name: unknown): string {
  if (typeof name !== 'string' || !SCHEDULE_NAME_PATTERN.test(name)) {
    throw new InvalidInputError(
      `invalid schedule name ${JSON.stringify(name)}: use letters, digits and "_.:/-", starting with a letter or digit.`,
    );
  }
  return name;
}

/**
 * Validates one schedule; `checkTask` refuses an unknown task name and returns its stored form (lower
 * case: "GENERATE_CACHE" is the task "generate_cache"). Every message names the schedule, the field and the fix.
 */
export function toDefinition(
  name: string,
  raw: unknown,
  source: ScheduleDefinition['source'],
  checkTask: (task: string) => string,
): ScheduleDefinition {
  const where = `schedule "${name}"`;
  const parsed = specSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || '';
    const message =
      issue?.code === 'unrecognized_keys'
        ? `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}; allowed: task, payload, every, cron, timezone, catchUp, overlap, enabled`
        : `field "${field}": ${issue?.message ?? 'invalid'}`;
    throw new InvalidInputError(`${where}: ${message}.`);
  }
  const s = parsed.data;
  let task: string;
  try {
    task = checkTask(s.task);
  } catch (err) {
    throw new InvalidInputError(`${where}: field "task": ${(err as Error).message}`);
  }
  const rule = parseRule(s, where);
  let payload: Json;
  try {
    payload = JSON.parse(JSON.stringify(s.payload ?? {})) as Json;
  } catch {
    throw new InvalidInputError(`${where}: field "payload" must be JSON.`);
  }
  return {
    name,
    task,
    payload,
    rule,
    catchUp: s.catchUp ?? 'last',
    overlap: s.overlap ?? 'skip',
    enabled: s.enabled ?? true,
    source,
  };
}

export interface ReconcileReport {
  added: string[];
  changed: string[];
  removed: string[];
  /** Entries refused, each with its message; their stored version (if any) is kept. */
  errors: { name: string; message: string }[];
}

/** Makes the stored config schedules match the file's `schedules` list. */
export async function reconcileSchedules(
  store: Store,
  entries: readonly unknown[],
  checkTask: (task: string) => string,
  now: Date,
): Promise<ReconcileReport> {
  const report: ReconcileReport = { added: [], changed: [], removed: [], errors: [] };
  const wanted = new Map<string, ScheduleDefinition>();
  const keep = new Set<string>();
  for (const [i, entry] of entries.entries()) {
    const rawName = typeof entry === 'object' && entry !== null ? (entry as { name?: unknown }).name : undefined;
    const label = typeof rawName === 'string' ? rawName : `#${i + 1}`;
    try {
      const name = checkScheduleName(rawName);
      if (wanted.has(name) || keep.has(name)) {
        throw new InvalidInputError(`schedule "${name}": the name is used twice in "schedules"; rename one of them.`);
      }
      wanted.set(name, toDefinition(name, entry, 'config', checkTask));
    } catch (err) {
      if (typeof rawName === 'string') keep.add(rawName);
      report.errors.push({ name: label, message: (err as Error).message });
    }
  }
  const stored = new Map((await store.listSchedules()).map((s) => [s.name, s]));
  for (const [name, def] of wanted) {
    const current = stored.get(name);
    if (current && sameDefinition(current, def)) continue;
    await store.saveSchedule(def, now);
    (current ? report.changed : report.added).push(name);
  }
  for (const [name, s] of stored) {
    if (s.source === 'config' && !wanted.has(name) && !keep.has(name)) {
      await store.removeSchedule(name);
      report.removed.push(name);
    }
  }
  return report;
}

// Compared as canonical JSON (keys sorted): PostgreSQL's jsonb gives keys back in its own order,
// which must not count as a change (it would rewrite, and restart, every config schedule on each start).
function sameDefinition(s: Schedule, d: ScheduleDefinition): boolean {
  return (
    s.task === d.task &&
    canonicalJson(s.payload) === canonicalJson(d.payload) &&
    canonicalJson(s.rule) === canonicalJson(d.rule) &&
    s.catchUp === d.catchUp &&
    s.overlap === d.overlap &&
    s.enabled === d.enabled &&
    s.source === d.source
  );
}

/** JSON text with every object's keys in sorted order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
