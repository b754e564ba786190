// The task: its fields and its statuses (the lifecycle between them is drawn in docs/architecture.md
// and kept by each store's SQL). Knows nothing of storage or execution.

export const TASK_STATUSES = ['WAITING', 'STARTED', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Statuses a task never leaves on its own (only `retry` moves FAILED or CANCELLED back). */
export const FINAL_STATUSES: readonly TaskStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED'];

export function isTaskStatus(value: string): value is TaskStatus {
  return (TASK_STATUSES as readonly string[]).includes(value);
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface Backoff {
  /** Delay before the second attempt, in ms; doubles for each further attempt. */
  baseMs: number;
  /** Upper bound of one delay, in ms. */
  maxMs: number;
}

export interface LockInfo {
  host: string;
  pid: number;
  workerId: string;
}

export interface Task {
  id: number;
  name: string;
  payload: Json;
  queue: string;
  priority: number;
  status: TaskStatus;
  runAt: Date;
  attempts: number;
  maxAttempts: number;
  backoff: Backoff;
  timeoutMs: number;
  prerequisites: number[];
  uniqueKey: string | null;
  note: string | null;
  result: Json | null;
  output: string[];
  error: string | null;
  errorStack: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  lockedBy: LockInfo | null;
  leaseExpiresAt: Date | null;
  /** True while a cancel of a STARTED task waits for its handler to stop. */
  cancelRequested: boolean;
  /** The schedule that created this task, if any. */
  scheduleName: string | null;
  /** The due time (occurrence) of that schedule this task serves, even when it runs late. */
  scheduledFor: Date | null;
  /** The latest progress its handler reported (ctx.progress); kept after the task ends. */
  progress: TaskProgress | null;
}

/** The latest progress a handler reported (`ctx.progress`): a number 0–100 or a small JSON object. */
export interface TaskProgress {
  value: Json;
  message: string | null;
  at: Date;
}

/** What a store needs to insert a task: every default already resolved. */
export interface NewTask {
  name: string;
  payload: Json;
  queue: string;
  priority: number;
  runAt: Date;
  maxAttempts: number;
  backoff: Backoff;
  timeoutMs: number;
  prerequisites: number[];
  uniqueKey: string | null;
  note: string | null;
  scheduleName?: string | null;
  scheduledFor?: Date | null;
}

/** The error of a task ended by its prerequisite (add, the cascade, a retry that cannot revive it, follow-ups). */
export function prerequisiteError(id: number, status: TaskStatus): string {
  return `prerequisite task #${id} ended ${status}`;
}

/** A task name in its stored form: lower case (names match case-insensitively; see validateTaskName). */
export const TASK_NAME_PATTERN = /^[a-z0-9][a-z0-9_/-]*$/;

export const DEFAULT_QUEUE = 'default';
export const DEFAULT_PRIORITY = 0;
export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_BACKOFF: Backoff = { baseMs: 5_000, maxMs: 3_600_000 };
export const DEFAULT_TIMEOUT_MS = 30 * 60_000;

/** Longest output kept per task: older lines are dropped first, with a marker. */
export const MAX_OUTPUT_LINES = 1_000;
export const MAX_OUTPUT_LINE_LENGTH = 4_000;

/**
 * The task a plain insert (no unique key, no prerequisites) has just created: WAITING, nothing run.
 * Stores build it from what they inserted instead of reading every column back.
 */
export function newTaskRecord(t: NewTask, id: number, createdAt: Date): Task {
  return {
    id,
    name: t.name,
    payload: t.payload,
    queue: t.queue,
    priority: t.priority,
    status: 'WAITING',
    runAt: t.runAt,
    attempts: 0,
    maxAttempts: t.maxAttempts,
    backoff: { baseMs: t.backoff.baseMs, maxMs: t.backoff.maxMs },
    timeoutMs: t.timeoutMs,
    prerequisites: [],
    uniqueKey: null,
    note: t.note,
    result: null,
    output: [],
    error: null,
    errorStack: null,
    createdAt,
    startedAt: null,
    finishedAt: null,
    lockedBy: null,
    leaseExpiresAt: null,
    cancelRequested: false,
    scheduleName: t.scheduleName ?? null,
    scheduledFor: t.scheduledFor ?? null,
    progress: null,
  };
}
