// The client API: what an application (or the CLI, or the daemon) uses to add, inspect and control tasks.
// Input is validated here, at the edge; the store below trusts it.
import { existsSync } from 'node:fs';
import { parseBoundedDuration, parseDuration } from '../config/duration.js';
import { formatSize } from '../config/size.js';
import { type LoadOptions, loadConfig } from '../config/load.js';
import type { Config, ConfigInput } from '../config/schema.js';
import { type Clock, type Random, systemClock } from '../model/clock.js';
import {
  InvalidInputError,
  TaskNotFoundError,
  UnknownTaskError,
  WaitTimeoutError,
} from '../model/errors.js';
import type { Logger } from '../model/logger.js';
import {
  FINAL_STATUSES,
  type Json,
  type NewTask,
  type Task,
  type TaskStatus,
  isTaskStatus,
} from '../model/task.js';
import { openStore } from '../store/open.js';
import { type ExternalTransaction, PRUNABLE_STATUSES, type PrunableStatus, type Store, type TaskFilter } from '../store/store.js';
import { configRetention, cutoffs, type Retention } from '../config/retention.js';
import type { Schedule } from '../model/schedule.js';
import { type DaemonHeartbeat, HEARTBEAT_STALE_MS } from '../model/daemon.js';
import { checkScheduleName, reconcileSchedules, type ReconcileReport, type ScheduleSpec, toDefinition } from '../scheduler/reconcile.js';
import { upcoming } from '../scheduler/rules.js';
import { Scheduler } from '../scheduler/scheduler.js';
import {
  type FollowUpOptions,
  HandlerRegistry,
  type LoadedHandler,
  validatePayload,
  validateTaskName,
} from '../worker/handlers.js';
import { Worker } from '../worker/worker.js';
import type {
  BulkAction,
  BulkResult,
  BulkTarget,
  DaemonStatus,
  TaskListItem,
  TaskPage,
  TaskQuery,
  TaskQueryFilter,
  TaskSchemaInfo,
  TaskStats,
} from '../model/query.js';
import { checkBulk, checkCap, checkFilter, runBulk, runPage, toPageRequest } from './queries.js';
import { payloadJsonSchema } from './schema.js';
import { TaskCounts } from './task-counts.js';
import { WebAuth } from './auth.js';
import { TaskEvents } from '../notify/events.js';

export interface AddOptions extends FollowUpOptions {
  /** Delay before the second attempt ("5s"); doubles for each further attempt. */
  backoff?: string | number;
  /** Longest delay between attempts. */
  backoffMax?: string | number;
  /** PostgreSQL: the caller's client inside BEGIN; the task commits (or not) with the caller's data. */
  transaction?: ExternalTransaction;
}

export interface TaskSpec {
  name: string;
  payload?: unknown;
  options?: Omit<AddOptions, 'transaction'>;
}

export interface OpenOptions extends LoadOptions {
  config?: ConfigInput;
  /** Apply pending migrations on open (default true). */
  migrate?: boolean;
  clock?: Clock;
  random?: Random;
  logger?: Logger;
}

export interface ListFilter {
  status?: TaskStatus | readonly TaskStatus[];
  name?: string;
  queue?: string;
  limit?: number;
  order?: 'asc' | 'desc';
}

export interface WorkerOverrides {
  concurrency?: number;
  queues?: readonly string[];
  maxTasks?: number;
  logger?: Logger;
}

export interface PruneOptions {
  /** One age for every chosen status ("30 days"); default: the configured retention of each. */
  olderThan?: string | number;
  /** Default all three. */
  statuses?: readonly PrunableStatus[];
  dryRun?: boolean;
}

export interface PruneReport {
  /** Per status, how many were deleted (or, dryRun, would be). */
  removed: Record<PrunableStatus, number>;
  /** The cutoffs applied; a status without one was kept. */
  before: Partial<Record<PrunableStatus, Date>>;
  dryRun: boolean;
}

/** A schedule with its next fire times, as listings show it. */
export interface ScheduleInfo extends Schedule {
  next: Date[];
}

export class Taskmill {
  readonly handlers: HandlerRegistry;
  // --- Web authentication: users, bearer tokens, sessions and the one-time login link (see auth.ts).
  readonly auth: WebAuth;
  // --- Events: completed, failed (for good), retried, cancelled — from this client's workers, and
  // cancels of waiting tasks made through it. `mill.events.on('failed', (e) => report(e))`.
  readonly events: TaskEvents;

  private constructor(
    readonly config: Config,
    readonly store: Store,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly logger: Logger | undefined,
  ) {
    this.handlers = new HandlerRegistry(config.tasksDir);
    this.auth = new WebAuth(store, clock);
    this.events = new TaskEvents(logger);
  }

  /** Loads the config (file, TASKMILL_DATABASE, `config` overrides), opens the store and migrates it. */
  static async open(options: OpenOptions = {}): Promise<Taskmill> {
    const config = loadConfig({ ...options, overrides: options.config });
    const store = await openStore(config.database, { migrate: options.migrate });
    return new Taskmill(config, store, options.clock ?? systemClock, options.random ?? Math.random, options.logger);
  }

  /** Adds one task; returns it (or the live task holding the same uniqueKey). */
  async add(name: string, payload: unknown = {}, options: AddOptions = {}): Promise<Task> {
    const [task] = await this.addMany([{ name, payload, options }], { transaction: options.transaction });
    return task as Task;
  }

  /** Adds several tasks in one transaction: all or none. */
  async addMany(specs: readonly TaskSpec[], { transaction }: { transaction?: ExternalTransaction } = {}): Promise<Task[]> {
    if (transaction && this.store.engine !== 'postgres') {
      throw new InvalidInputError('"transaction" is only supported on PostgreSQL; on SQLite add the task after your commit.');
    }
    const now = this.clock.now();
    const tasks: NewTask[] = [];
    for (const spec of specs) tasks.push(await this.prepare(spec, now));
    const results = await this.store.add(tasks, now, transaction);
    return results.map((r) => r.task);
  }

  async get(id: number): Promise<Task | null> {
    return this.store.get(checkId(id));
  }

  async list(filter: ListFilter = {}): Promise<Task[]> {
    const statuses = filter.status === undefined ? undefined : Array.isArray(filter.status) ? filter.status : [filter.status];
    for (const s of statuses ?? []) {
      if (!isTaskStatus(s)) {
        throw new InvalidInputError(`unknown status "${String(s)}": use WAITING, STARTED, COMPLETED, FAILED or CANCELLED.`);
      }
    }
    if (filter.limit !== undefined && (!Number.isInteger(filter.limit) || filter.limit < 1)) {
      throw new InvalidInputError(`invalid limit ${filter.limit}: use a whole number of 1 or more.`);
    }
    // Names are stored lower case, so "GENERATE_CACHE" finds the tasks it added.
    const name = filter.name === undefined ? undefined : filter.name.toLowerCase();
    const f: TaskFilter = { ...filter, name, status: statuses as TaskStatus[] | undefined };
    return this.store.list(f);
  }

  /** Cancels a WAITING task at once; a STARTED one gets its signal aborted and ends CANCELLED. */
  async cancel(id: number): Promise<Task> {
    const task = await this.store.cancel(checkId(id), this.clock.now());
    // A STARTED task's event comes from the worker running it, once its handler stops.
    if (task.status === 'CANCELLED') {
      const { id: taskId, name, queue, attempts, maxAttempts, error } = task;
      this.events.emit('cancelled', { id: taskId, name, queue, attempt: attempts, maxAttempts, error });
    }
    return task;
  }

  /** Moves a FAILED or CANCELLED task back to WAITING with a fresh attempt budget. */
  async retry(id: number): Promise<Task> {
    return this.store.retry(checkId(id), this.clock.now());
  }

  /** Resolves with the task once it is COMPLETED, FAILED or CANCELLED; throws WaitTimeoutError after `timeout`. */
  async wait(id: number, { timeout = '1 hour' }: { timeout?: string | number } = {}): Promise<Task> {
    const timeoutMs = parseDuration(timeout, 'timeout');
    const deadline = Date.now() + timeoutMs;
    let wake: (() => void) | null = null;
    const off = this.store.subscribe(() => wake?.());
    try {
      for (;;) {
        const task = await this.store.get(checkId(id));
        if (!task) throw new TaskNotFoundError(id);
        if (FINAL_STATUSES.includes(task.status)) return task;
        const left = deadline - Date.now();
        if (left <= 0) throw new WaitTimeoutError(id, timeoutMs, task.status);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 100));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
    } finally {
      off();
    }
  }

  /** A worker on this store, configured from `worker` in the config. Call start() and stop(). */
  worker(overrides: WorkerOverrides = {}): Worker {
    const w = this.config.worker;
    return new Worker({
      store: this.store,
      handlers: this.handlers,
      concurrency: overrides.concurrency ?? w.concurrency,
      pollIntervalMs: w.pollInterval,
      leaseMs: w.lease,
      queues: overrides.queues ?? w.queues ?? null,
      maxTasks: overrides.maxTasks,
      limits: this.config.limits,
      // Isolation: worker.isolation and the pool's limits.
      isolation: { mode: w.isolation, maxTasks: w.isolationMaxTasks, maxRssMb: w.isolationMaxRssMb, killGraceMs: w.isolationKillGrace },
      // ctx.add: validated here as add() validates; written by the worker with the parent's completion.
      prepare: (name, payload, options) => this.prepare({ name, payload, options }, this.clock.now()),
      clock: this.clock,
      random: this.random,
      logger: overrides.logger ?? this.logger,
      events: this.events,
    });
  }

  /**
   * Creates or updates a recurring schedule (stored in the database; kept until `unschedule`).
   * `every` ("5 minutes") or `cron` ("0 3 * * *", 6 fields with seconds) with an IANA `timezone`.
   */
  async schedule(name: string, spec: ScheduleSpec): Promise<ScheduleInfo> {
    checkScheduleName(name);
    await this.refuseConfigSchedule(name, 'change');
    const def = toDefinition(name, spec, 'api', (task) => this.checkTaskName(task));
    return this.withNext(await this.store.saveSchedule(def, this.clock.now()));
  }

  /** Removes a schedule made through the API or CLI; returns false if there was none. */
  async unschedule(name: string): Promise<boolean> {
    await this.refuseConfigSchedule(name, 'remove');
    return this.store.removeSchedule(checkScheduleName(name));
  }

  /** Every schedule with its next three fire times, last run and last skip. */
  async schedules(): Promise<ScheduleInfo[]> {
    return (await this.store.listSchedules()).map((s) => this.withNext(s));
  }

  /** Pauses or resumes a schedule; a resumed one starts counting from now (no burst of missed runs). */
  async setScheduleEnabled(name: string, enabled: boolean): Promise<ScheduleInfo> {
    await this.refuseConfigSchedule(name, enabled ? 'resume' : 'pause (set "enabled": false)');
    const s = await this.requireSchedule(name);
    return this.withNext(await this.store.saveSchedule({ ...s, enabled }, this.clock.now()));
  }

  /** Fires one occurrence now, whatever the rule and the overlap policy; returns the task. */
  async runSchedule(name: string): Promise<Task> {
    const s = await this.requireSchedule(name);
    const now = this.clock.now();
    const outcome = await this.store.fireSchedule(
      { name, dueAt: now, task: await this.scheduledTask(s), overlap: 'allow', manual: true },
      now,
    );
    if (outcome.kind !== 'fired') throw new InvalidInputError(`schedule "${name}" did not fire: ${outcome.kind}.`);
    return (await this.store.get(outcome.taskId)) as Task;
  }

  /** Makes the stored config schedules match `schedules` of the config file (or of a newer version of it). */
  async reconcileSchedules(entries: readonly unknown[] = this.config.schedules): Promise<ReconcileReport> {
    return reconcileSchedules(this.store, entries, (task) => this.checkTaskName(task), this.clock.now());
  }

  /** A scheduler service on this store. Call start() and stop(). */
  scheduler(options: { logger?: Logger; maxSleepMs?: number } = {}): Scheduler {
    return new Scheduler({
      store: this.store,
      buildTask: (s) => this.scheduledTask(s),
      clock: this.clock,
      logger: options.logger ?? this.logger,
      maxSleepMs: options.maxSleepMs,
    });
  }

  /**
   * The daemons running on this database (one per host and start), from their heartbeats; `stale` when
   * one has not been seen for a minute. An application can warn its administrators when none runs.
   */
  async daemons(): Promise<(DaemonHeartbeat & { stale: boolean })[]> {
    const now = this.clock.now().getTime();
    return (await this.store.listDaemons()).map((d) => ({ ...d, stale: now - d.lastSeen.getTime() > HEARTBEAT_STALE_MS }));
  }

  // --- Task queries, bulk actions, stats, daemon status and payload schemas (the admin page, the API) ---

  /**
   * A page of tasks matching `q`, in keyset order; pass `nextCursor` back for the next page. A search for
   * rare text may return fewer tasks than `limit` (even none) with a cursor: more may follow; only a null
   * `nextCursor` means the end (see runPage).
   */
  async query(q: TaskQuery = {}): Promise<TaskPage> {
    return runPage(this.store, toPageRequest(q));
  }

  /** How many tasks match the filter, counting no further than `cap` (default 10,000): a result equal to cap means "at least". */
  async count(filter: TaskQueryFilter = {}, cap?: number): Promise<number> {
    return this.store.countTasks(checkFilter(filter), checkCap(cap));
  }

  /**
   * Deletes a task for good. A STARTED task is refused (cancel it first), and so is one that a WAITING or
   * STARTED task waits for (DependantsExistError names them: cancel or delete those first).
   */
  async delete(id: number): Promise<void> {
    await this.store.deleteTask(checkId(id));
  }

  /**
   * Retries, cancels or deletes the tasks given by id, or every task matching a filter; those that cannot
   * take the action (a COMPLETED task cannot be cancelled) are skipped and counted in `matched` only.
   */
  async bulk(action: BulkAction, target: BulkTarget): Promise<BulkResult> {
    const checked = checkBulk(action, target);
    return runBulk(this.store, checked.action, checked.target, () => this.clock.now());
  }

  /** The tasks that name this one among their prerequisites. */
  async dependants(id: number): Promise<TaskListItem[]> {
    return this.store.dependants(checkId(id));
  }

  /**
   * Counts by status and by queue, completed and failed per minute over the last hour, latest failures.
   * On a large table (more than 5,000 ids on SQLite, 20,000 on PostgreSQL) the counts may be up to 10 s old (see task-counts.ts); the rest is live.
   */
  async stats(): Promise<TaskStats> {
    this.taskCounts ??= new TaskCounts(this.store, this.logger);
    const [counts, activity] = await Promise.all([this.taskCounts.get(), this.store.taskActivity(this.clock.now())]);
    return { ...counts, ...activity };
  }

  private taskCounts: TaskCounts | undefined;
  private tasksDirSeen = false;
  private tasksDirCheckedAt = Number.NEGATIVE_INFINITY;

  /**
   * Whether a daemon runs (a heartbeat newer than HEARTBEAT_STALE_MS), since when (the oldest live daemon's
   * start; when none runs, the last heartbeat seen), and on which hosts: enough for an application's notice.
   */
  async daemonStatus(): Promise<DaemonStatus> {
    const now = this.clock.now().getTime();
    const daemons = await this.store.listDaemons();
    const live = daemons.filter((d) => now - d.lastSeen.getTime() <= HEARTBEAT_STALE_MS);
    if (live.length > 0) {
      const since = new Date(Math.min(...live.map((d) => d.startedAt.getTime())));
      return { running: true, since, hosts: [...new Set(live.map((d) => d.host))].sort(), daemons };
    }
    const stopped = await this.store.lastDaemonStop();
    const seen = [...daemons.map((d) => d.lastSeen.getTime()), ...(stopped ? [stopped.getTime()] : [])];
    const lastSeen = seen.length > 0 ? Math.max(...seen) : null;
    const hosts = daemons.filter((d) => d.lastSeen.getTime() === lastSeen).map((d) => d.host);
    return { running: false, since: lastSeen === null ? null : new Date(lastSeen), hosts: [...new Set(hosts)].sort(), daemons };
  }

  /** Task names with a handler file in the tasks folder (files and folders starting with "_" left out). */
  taskNames(): string[] {
    return this.tasksDirExists() ? this.handlers.names() : [];
  }

  /**
   * The payload's JSON Schema (when the handler's `schema` can give one, through the Standard JSON Schema
   * interface) and its `example`; null when no handler file has this name.
   */
  async taskSchema(name: string): Promise<TaskSchemaInfo | null> {
    const canonical = validateTaskName(String(name));
    if (!this.tasksDirExists() || !this.handlers.has(canonical)) return null;
    const handler = await this.handlers.load(canonical);
    if (!handler) return null;
    return { jsonSchema: payloadJsonSchema(handler), example: handler.example };
  }

  // --- Retention (taskmill prune; the Maintenance module prunes the same way on its own) ---

  /**
   * Deletes finished tasks older than their retention (the Maintenance module's `completedAfter` and
   * `failedAfter`), or older than `olderThan` for every chosen status; `dryRun` only counts them. In
   * batches of a few hundred rows, so workers keep claiming meanwhile. A finished task that a WAITING
   * or STARTED task still names as a prerequisite is kept.
   */
  async prune(options: PruneOptions = {}): Promise<PruneReport> {
    const statuses = options.statuses ?? PRUNABLE_STATUSES;
    for (const s of statuses) {
      if (!(PRUNABLE_STATUSES as readonly string[]).includes(s)) {
        throw new InvalidInputError(`cannot prune status "${String(s)}": only finished tasks go, COMPLETED, CANCELLED or FAILED.`);
      }
    }
    const configured = configRetention(this.config);
    const olderThan = options.olderThan === undefined ? undefined : parseDuration(options.olderThan, 'olderThan');
    const retention: Retention = { COMPLETED: null, CANCELLED: null, FAILED: null };
    for (const s of statuses) retention[s] = olderThan ?? configured[s];
    const before = cutoffs(retention, this.clock.now());
    const removed = await this.store.prune({ before, dryRun: options.dryRun === true });
    return { removed, before, dryRun: options.dryRun === true };
  }

  /** Answers when the database does (the web server's /healthz). */
  async ping(): Promise<void> {
    await this.store.ping();
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  private async scheduledTask(s: Schedule): Promise<NewTask> {
    return this.prepare({ name: s.task, payload: s.payload, options: { note: `schedule ${s.name}` } }, this.clock.now());
  }

  private withNext(s: Schedule): ScheduleInfo {
    const from = new Date(Math.max(this.clock.now().getTime(), (s.lastDueAt ?? s.anchorAt).getTime()));
    return { ...s, next: s.enabled ? upcoming(s.rule, s.anchorAt, from, 3) : [] };
  }

  private async requireSchedule(name: string): Promise<Schedule> {
    const s = await this.store.getSchedule(checkScheduleName(name));
    if (!s) throw new InvalidInputError(`no schedule named "${name}"; list them with "taskmill schedules".`);
    return s;
  }

  private async refuseConfigSchedule(name: string, action: string): Promise<void> {
    const s = await this.store.getSchedule(name);
    if (s?.source === 'config') {
      throw new InvalidInputError(
        `schedule "${name}" comes from the config file; ${action} it there (the file wins at the next reconcile).`,
      );
    }
  }

  /**
   * Whether this process can see the tasks folder, looked up at most every 250 ms (as the handler
   * registry re-reads it): a batch of adds pays for one look, not one per task.
   */
  private tasksDirExists(): boolean {
    const now = Date.now();
    if (now - this.tasksDirCheckedAt >= 250) {
      this.tasksDirSeen = existsSync(this.config.tasksDir);
      this.tasksDirCheckedAt = now;
    }
    return this.tasksDirSeen;
  }

  /**
   * Returns the name's stored form (lower case); refuses an invalid name, and an unknown one when this
   * process can see the tasks folder. An unknown name costs a directory scan at most, never an import.
   */
  private checkTaskName(name: string): string {
    const canonical = validateTaskName(name);
    if (this.tasksDirExists() && !this.handlers.has(canonical)) {
      throw new UnknownTaskError(canonical, this.handlers.names(), this.config.tasksDir);
    }
    return canonical;
  }

  /** Resolves defaults (explicit option, then the handler's `options` export, then the config) and validates. */
  private async prepare(spec: TaskSpec, now: Date): Promise<NewTask> {
    if (typeof spec.name !== 'string') throw new InvalidInputError('a task needs a name (a string).');
    const name = this.checkTaskName(spec.name);
    const o = spec.options ?? {};
    const handler = await this.loadHandler(name);
    const typeOptions = handler?.options ?? {};
    const d = this.config.defaults;

    let runAt = now;
    if (o.runAt !== undefined && o.delay !== undefined) {
      throw new InvalidInputError('give either "runAt" or "delay", not both.');
    }
    if (o.runAt !== undefined) {
      runAt = o.runAt instanceof Date ? o.runAt : new Date(o.runAt);
      if (Number.isNaN(runAt.getTime())) {
        throw new InvalidInputError(`invalid runAt "${String(o.runAt)}": use an ISO-8601 time such as 2026-12-01T09:00:00Z.`);
      }
    } else if (o.delay !== undefined) {
      runAt = new Date(now.getTime() + parseBoundedDuration(o.delay, 'delay', { min: 0 }));
    }
    const after = o.after === undefined ? [] : Array.isArray(o.after) ? [...o.after] : [o.after as number];
    for (const id of after) checkId(id, 'prerequisite id');

    return {
      name,
      // Checked against the handler's `schema` export, when it has one (the validated value is stored).
      payload: toJsonPayload(
        name,
        handler ? await validatePayload(handler, spec.payload ?? {}) : (spec.payload ?? {}),
        this.config.limits.payloadBytes,
      ),
      queue: checkQueue(o.queue ?? typeOptions.queue ?? 'default'),
      priority: checkInt(o.priority ?? typeOptions.priority ?? 0, 'priority', -1_000_000),
      runAt,
      maxAttempts: checkInt(o.maxAttempts ?? typeOptions.maxAttempts ?? d.maxAttempts, 'maxAttempts', 1),
      backoff: {
        baseMs: o.backoff !== undefined ? parseDuration(o.backoff, 'backoff') : (typeOptions.backoffBaseMs ?? d.backoff),
        maxMs:
          o.backoffMax !== undefined ? parseDuration(o.backoffMax, 'backoffMax') : (typeOptions.backoffMaxMs ?? d.backoffMax),
      },
      // Longer than a timer's range is fine: passed through unchanged, the worker waits in steps.
      timeoutMs: o.timeout !== undefined ? parseBoundedDuration(o.timeout, 'timeout') : (typeOptions.timeoutMs ?? d.timeout),
      prerequisites: after,
      uniqueKey: o.uniqueKey === undefined ? null : checkText(o.uniqueKey, 'uniqueKey'),
      note: o.note === undefined ? null : checkText(o.note, 'note'),
    };
  }

  /**
   * When this process can see the tasks folder, an unknown name is refused with the known ones, the
   * handler's own `options` export supplies per-type defaults and its `schema` checks the payload. A process without the folder (a web app on
   * another host) adds by name and leaves the check to the worker.
   */
  private async loadHandler(name: string): Promise<LoadedHandler | null> {
    if (!this.tasksDirExists()) return null;
    return this.handlers.load(name);
  }
}

function checkId(id: number, what = 'task id'): number {
  if (!Number.isSafeInteger(id) || id < 1) {
    throw new InvalidInputError(`invalid ${what} ${JSON.stringify(id)}: use a positive whole number.`);
  }
  return id;
}

function checkInt(value: number, what: string, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new InvalidInputError(`invalid ${what} ${JSON.stringify(value)}: use a whole number of at least ${min}.`);
  }
  return value;
}

function checkQueue(queue: string): string {
  if (typeof queue !== 'string' || !/^[A-Za-z0-9_.:-]{1,100}$/.test(queue)) {
    throw new InvalidInputError(`invalid queue ${JSON.stringify(queue)}: use letters, digits, "_", "-", "." or ":".`);
  }
  return queue;
}

function checkText(value: string, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 10_000) {
    throw new InvalidInputError(`invalid ${what}: use a non-empty string of at most 10,000 characters.`);
  }
  if (value.includes('\u0000')) {
    throw new InvalidInputError(`invalid ${what}: it contains the NUL character (\\u0000), which PostgreSQL cannot store; remove it.`);
  }
  return value;
}

/** `\u0000` in JSON text that is an escape, not an escaped backslash followed by "u0000". */
const NUL_ESCAPE = /(?:^|[^\\])(?:\\\\)*\\u0000/;

/**
 * The payload as stored: JSON, within `limitBytes` of JSON text, and without the NUL character, which
 * PostgreSQL's jsonb cannot hold; refused on SQLite too, so a task behaves alike on both engines.
 */
function toJsonPayload(name: string, payload: unknown, limitBytes: number): Json {
  let text: string | undefined;
  try {
    text = JSON.stringify(payload);
  } catch (err) {
    throw new InvalidInputError(`the payload is not JSON: ${(err as Error).message}.`);
  }
  if (text === undefined) throw new InvalidInputError('the payload is not JSON (a function, symbol or undefined).');
  // Cheap bound first: no character takes more than 3 bytes of UTF-8 (a surrogate pair is 4 for 2).
  if (text.length * 3 > limitBytes) {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > limitBytes) {
      throw new InvalidInputError(
        `the payload of "${name}" is ${formatSize(bytes)} of JSON, over the limit of ${formatSize(limitBytes)}; ` +
          'store large data elsewhere and pass a reference, or raise "limits.payload" in the config.',
      );
    }
  }
  if (text.includes('\\u0000') && NUL_ESCAPE.test(text)) {
    throw new InvalidInputError(
      `the payload of "${name}" contains the NUL character (\\u0000) in a string or key, which PostgreSQL cannot store ` +
        '(refused on every engine, so a task behaves alike on both); remove it, or encode the data (e.g. base64).',
    );
  }
  return JSON.parse(text) as Json;
}
