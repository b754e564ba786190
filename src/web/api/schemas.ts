// The shapes the API accepts and answers, as zod schemas: they validate input once at the edge and,
// through z.toJSONSchema, make the OpenAPI document. Finer rules (names, durations, limits) are the
// client's, which answers with a 400 naming the problem.
import { z } from 'zod';
import { TASK_STATUSES } from '../../model/task.js';

const duration = z.union([z.string(), z.number().nonnegative()]).describe('a duration: "90s", "5 minutes", or milliseconds');

export const idParams = z.object({
  id: z.coerce.number({ error: 'expected a task id' }).int('expected a whole number').positive('expected a task id of 1 or more'),
});

export const nameParams = z.object({ name: z.string().min(1).max(200) });

export const addOptions = z
  .object({
    runAt: z.string().describe('ISO-8601 time; not started before it').optional(),
    delay: duration.optional(),
    after: z.union([z.number().int().positive(), z.array(z.number().int().positive()).max(1000)]).describe('ids of tasks that must complete first').optional(),
    priority: z.number().int().optional(),
    queue: z.string().max(100).optional(),
    uniqueKey: z.string().max(10_000).optional(),
    maxAttempts: z.number().int().min(1).max(1000).optional(),
    timeout: duration.optional(),
    backoff: duration.optional(),
    backoffMax: duration.optional(),
    note: z.string().max(10_000).optional(),
  })
  .strict();

export const taskSpec = z
  .object({
    name: z.string({ error: 'expected the task name, a string such as "send-email"' }).min(1).max(200),
    payload: z.unknown().describe('any JSON; checked against the handler\'s schema where it has one').optional(),
    options: addOptions.optional(),
  })
  .strict();

/** Most tasks one batch may add (one transaction). */
export const MAX_BATCH = 1000;

export const batchBody = z
  .object({ tasks: z.array(taskSpec).min(1, 'expected at least one task').max(MAX_BATCH, `at most ${MAX_BATCH} tasks per batch`) })
  .strict();

const status = z.enum(TASK_STATUSES);

/** "FAILED,CANCELLED" or a repeated parameter: both give a list. */
const statusList = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim().toUpperCase()).filter((s) => s.length > 0) : v),
  z.array(status, { error: `expected statuses among ${TASK_STATUSES.join(', ')}` }),
);

const time = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO-8601 time such as 2026-12-01T09:00:00Z').transform((s) => new Date(s));

/** The filter of the task list, the count and the bulk actions: each field optional, all must hold. */
export const taskFilter = z
  .object({
    status: statusList.optional(),
    name: z.string().max(200).optional(),
    queue: z.string().max(100).optional(),
    schedule: z.string().max(200).optional(),
    createdFrom: time.optional(),
    createdTo: time.optional(),
    text: z.string().max(1000).describe('case-insensitive substring of payload, note or error').optional(),
  })
  .strict();

export const taskQuery = taskFilter
  .extend({
    sort: z.enum(['id', 'runAt', 'finishedAt']).optional(),
    order: z.enum(['asc', 'desc']).optional(),
    limit: z.coerce.number().int().min(1).max(500).optional(),
    cursor: z.string().max(1000).optional(),
  })
  .strict();

export const countQuery = taskFilter.extend({ cap: z.coerce.number().int().min(1).max(10_000_000).optional() }).strict();

export const bulkBody = z.union([
  z.object({ action: z.enum(['retry', 'cancel', 'delete']), ids: z.array(z.number().int().positive()).min(1).max(10_000) }).strict(),
  z.object({ action: z.enum(['retry', 'cancel', 'delete']), filter: taskFilter }).strict(),
]);

export const scheduleBody = z
  .object({
    task: z.string().min(1).max(200),
    payload: z.unknown().optional(),
    every: duration.optional(),
    cron: z.string().max(200).optional(),
    timezone: z.string().max(100).optional(),
    catchUp: z.enum(['last', 'none', 'all']).optional(),
    overlap: z.enum(['skip', 'allow']).optional(),
    enabled: z.boolean().optional(),
  })
  .strict();

export const schemaQuery = z.object({ name: z.string().min(1).max(200) }).strict();

// --- Answers (documentation only: the server sends what the client returns, times as ISO-8601).

const isoTime = z.string().describe('ISO-8601 time');
const nullableTime = isoTime.nullable();

export const taskJson = z.object({
  id: z.number().int(),
  name: z.string(),
  payload: z.unknown(),
  queue: z.string(),
  priority: z.number().int(),
  status,
  runAt: isoTime,
  attempts: z.number().int(),
  maxAttempts: z.number().int(),
  backoff: z.object({ baseMs: z.number(), maxMs: z.number() }),
  timeoutMs: z.number(),
  prerequisites: z.array(z.number().int()),
  uniqueKey: z.string().nullable(),
  note: z.string().nullable(),
  result: z.unknown().optional(),
  output: z.array(z.string()).optional(),
  error: z.string().nullable(),
  errorStack: z.string().nullable().optional(),
  createdAt: isoTime,
  startedAt: nullableTime,
  finishedAt: nullableTime,
  cancelRequested: z.boolean(),
  scheduleName: z.string().nullable(),
  scheduledFor: nullableTime,
  progress: z.object({ value: z.unknown(), message: z.string().nullable(), at: isoTime }).nullable().optional(),
});

export const taskPage = z.object({ tasks: z.array(taskJson), nextCursor: z.string().nullable() });

export const scheduleJson = z.object({
  name: z.string(),
  task: z.string(),
  payload: z.unknown(),
  rule: z.unknown(),
  catchUp: z.string(),
  overlap: z.string(),
  enabled: z.boolean(),
  source: z.enum(['config', 'api']),
  lastFiredAt: nullableTime,
  lastSkippedAt: nullableTime,
  lastSkipReason: z.string().nullable(),
  next: z.array(isoTime),
});

export const daemonJson = z.object({
  id: z.string(),
  host: z.string(),
  pid: z.number().int(),
  startedAt: isoTime,
  lastSeen: isoTime,
  modules: z.unknown(),
  stale: z.boolean().optional(),
});

export const errorJson = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
