// The embedded engine: one SQLite file in WAL mode, shared by every process on the host.
// Writes are serialised by SQLite itself (BEGIN IMMEDIATE), so a claim can never hand out a task twice.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import {
  DatabaseBusyError,
  DatabaseUnreachableError,
  InvalidTransitionError,
  SchemaTooNewError,
  TaskNotFoundError,
  UnknownPrerequisiteError,
} from '../../model/errors.js';
import type { Json, NewTask, Task, TaskStatus } from '../../model/task.js';
import { newTaskRecord, prerequisiteError, TASK_STATUSES } from '../../model/task.js';
import { readMigrations } from '../migrations.js';
import { PRUNABLE_STATUSES } from '../store.js';
import { appendOutput } from '../output.js';
import type {
  AddResult,
  AttemptRef,
  ClaimedTask,
  ClaimRequest,
  Completion,
  Failure,
  Outcomes,
  PrunableStatus,
  PruneRequest,
  RenewResult,
  Store,
  StoreEvent,
  TaskFilter,
} from '../store.js';
import type { FireOutcome, ScheduleFire, ScheduleSkip } from '../store.js';
import type { Schedule, ScheduleDefinition } from '../../model/schedule.js';
import type { DaemonHeartbeat } from '../../model/daemon.js';
import * as schedules from './schedules.js';
import * as queries from './queries.js';
import type { TaskListItem, TaskQueryFilter, TaskStats } from '../../model/query.js';
import type { TaskProgress } from '../../model/task.js';
import * as followups from './followups.js';
import * as retention from './retention.js';
import type { QueueCount, TaskPageRequest } from '../store.js';
import * as users from './users.js';
import type { SessionRecord, TokenRecord, UserRecord } from '../../model/user.js';
import * as notifications from './notifications.js';
import type { ClaimedDelivery, DaemonCheck, DeliveryClaim, DeliveryRef, Notification } from '../../model/notification.js';
import type { DaemonCheckRequest, NotificationRecord } from '../store.js';
import { SqliteSignals } from './signals.js';

/**
 * How long a write waits for another process's write lock before it gives up. It waits without
 * blocking the event loop: SQLite's own busy handler sleeps inside the (synchronous) call, so it is
 * kept to a few milliseconds and the rest of the wait is an asynchronous back-off here.
 */
const BUSY_WAIT_MS = 60_000;
const BUSY_HANDLER_MS = 2;

/** A whole task row: a list row (queries.ts) and the columns only a single task's view reads. */
interface Row extends queries.ListRow {
  result: string | null;
  output: string;
  error_stack: string | null;
  has_dependants: number;
}

function toTask(r: Row): Task {
  // A list item (queries.ts) plus what only a single task's view carries.
  return {
    ...queries.toItem(r),
    result: r.result === null ? null : (JSON.parse(r.result) as Json),
    output: JSON.parse(r.output) as string[],
    errorStack: r.error_stack,
  };
}

/** The columns a claim returns: what the handler and the worker need, nothing they do not. */
const CLAIM_COLUMNS = `id, name, payload, queue, priority, run_at, attempts, max_attempts, backoff_base_ms, backoff_max_ms,
  timeout_ms, note, cancel_requested, schedule_name, scheduled_for`;

type ClaimRow = Pick<
  Row,
  | 'id' | 'name' | 'payload' | 'queue' | 'priority' | 'run_at' | 'attempts' | 'max_attempts' | 'backoff_base_ms'
  | 'backoff_max_ms' | 'timeout_ms' | 'note' | 'cancel_requested' | 'schedule_name' | 'scheduled_for'
>;

function toClaimed(r: ClaimRow, lockedBy: ClaimedTask['lockedBy'], startedAt: Date): ClaimedTask {
  return {
    id: r.id,
    name: r.name,
    payload: JSON.parse(r.payload) as Json,
    queue: r.queue,
    priority: r.priority,
    runAt: new Date(r.run_at),
    // Read before the claim's update, which counts this attempt.
    attempts: r.attempts + 1,
    maxAttempts: r.max_attempts,
    backoff: { baseMs: r.backoff_base_ms, maxMs: r.backoff_max_ms },
    timeoutMs: r.timeout_ms,
    note: r.note,
    cancelRequested: r.cancel_requested === 1,
    scheduleName: r.schedule_name,
    scheduledFor: r.scheduled_for === null ? null : new Date(r.scheduled_for),
    lockedBy,
    startedAt,
  };
}

/**
 * The earliest run time of an unblocked WAITING task (of one queue, with `queueTerm`): the due index
 * is in priority order, so a loose scan takes each priority present in turn (one seek each) and the
 * first run time under it. Priorities are few, so this costs a handful of seeks at any backlog.
 */
function nextRunSql(index: 'tasks_due' | 'tasks_due_queue', queueTerm: string): string {
  const due = `FROM tasks INDEXED BY ${index} WHERE status = 'WAITING' AND waiting_for = 0 ${queueTerm}`;
  return `WITH RECURSIVE p (pr) AS (
      SELECT (SELECT priority ${due} ORDER BY priority DESC LIMIT 1)
      UNION ALL
      SELECT (SELECT priority ${due} AND priority < p.pr ORDER BY priority DESC LIMIT 1) FROM p WHERE p.pr IS NOT NULL)
    SELECT min((SELECT run_at ${due} AND priority = p.pr ORDER BY priority DESC, run_at LIMIT 1)) AS t
      FROM p WHERE p.pr IS NOT NULL`;
}

function isBusy(err: unknown): boolean {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('SQLITE_BUSY');
}

export class SqliteStore implements Store {
  readonly engine = 'sqlite' as const;
  // One writer at a time: a second call would only wait for the lock.
  readonly parallelSettles = 1;
  readonly where: string;
  private readonly db: Database.Database;
  private readonly signals: SqliteSignals;
  private readonly statements = new Map<string, Database.Statement>();
  private closed = false;

  private constructor(
    private readonly file: string,
    db: Database.Database,
  ) {
    this.db = db;
    this.where = `sqlite:${file}`;
    this.signals = new SqliteSignals(file);
  }

  /** Opens (creating if needed) the file and applies migrations. */
  static async open(file: string, { migrate = true }: { migrate?: boolean } = {}): Promise<SqliteStore> {
    let db: Database.Database;
    try {
      if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
      db = new Database(file);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      // 64 MiB of page cache (the default is 2 MiB): a claim and a completion read index pages the default
      // cache had already dropped; measured 20% more claims and completions per second.
      db.pragma('cache_size = -65536');
      db.pragma(`busy_timeout = ${BUSY_HANDLER_MS}`);
      db.pragma('foreign_keys = ON');
    } catch (err) {
      throw new DatabaseUnreachableError(`sqlite:${file}`, err);
    }
    const store = new SqliteStore(file, db);
    if (migrate) {
      try {
        await store.migrate();
      } catch (err) {
        db.close();
        throw err;
      }
    }
    return store;
  }

  /**
   * Runs `work` in a write transaction (BEGIN IMMEDIATE). While another process holds the write lock
   * it waits asynchronously, backing off from 1 ms to 25 ms, so timers, lease renewals and handlers
   * keep running meanwhile; after BUSY_WAIT_MS it gives up with DatabaseBusyError.
   */
  private write<T>(work: () => T): Promise<T> {
    const tx = this.db.transaction(work);
    return this.untilFree(() => tx.immediate());
  }

  /** A read outside any transaction; waits as `write` does in the rare case a reader is told BUSY. */
  private read<T>(work: () => T): Promise<T> {
    return this.untilFree(work);
  }

  private async untilFree<T>(run: () => T): Promise<T> {
    const deadline = Date.now() + BUSY_WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return run();
      } catch (err) {
        if (!isBusy(err) || this.db.inTransaction) throw err;
        if (Date.now() >= deadline) throw new DatabaseBusyError(this.where, BUSY_WAIT_MS);
        await sleep(Math.min(25, 2 ** attempt) * (0.5 + Math.random()));
      }
    }
  }

  /** Prepares each statement once per connection: preparing costs more than running most of them. */
  private stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  async migrate(): Promise<{ from: number; to: number }> {
    const migrations = readMigrations(new URL('./migrations/', import.meta.url));
    const latest = migrations.at(-1)?.version ?? 0;
    const run = () => {
      const hasMeta = this.db
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'taskmill_meta'")
        .get();
      const from = hasMeta
        ? Number(
            (this.stmt("SELECT value FROM taskmill_meta WHERE key = 'schema_version'").get() as
              | { value: string }
              | undefined)?.value ?? 0,
          )
        : 0;
      if (from > latest) throw new SchemaTooNewError(from, latest);
      for (const m of migrations) {
        if (m.version <= from) continue;
        this.db.exec(m.sql);
        this.db
          .prepare(
            "INSERT INTO taskmill_meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
          )
          .run(String(m.version));
      }
      return { from, to: Math.max(from, latest) };
    };
    return this.write(run);
  }

  async add(tasks: readonly NewTask[], now: Date): Promise<AddResult[]> {
    const results = await this.write(() => this.insertTasks(tasks, now));
    if (results.some((r) => r.created)) this.emit({ kind: 'wake' });
    return results;
  }

  /** Inserts tasks inside the caller's transaction (add, or a schedule firing). */
  private insertTasks(tasks: readonly NewTask[], now: Date): AddResult[] {
    const insert = this.stmt(`
      INSERT INTO tasks (name, payload, queue, priority, status, run_at, max_attempts, backoff_base_ms,
        backoff_max_ms, timeout_ms, prerequisite_ids, unique_key, note, created_at, waiting_for,
        error, finished_at, failed_by, schedule_name, scheduled_for)
      VALUES (@name, @payload, @queue, @priority, @status, @runAt, @maxAttempts, @backoffBase,
        @backoffMax, @timeoutMs, @prerequisites, @uniqueKey, @note, @now, @waitingFor,
        @error, @finishedAt, @failedBy, @scheduleName, @scheduledFor)
      ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('WAITING', 'STARTED') DO NOTHING
      RETURNING *`);
    const findLive = this.stmt(
      "SELECT * FROM tasks WHERE unique_key = ? AND status IN ('WAITING', 'STARTED')",
    );
    const markPrereq = this.stmt('UPDATE tasks SET has_dependants = 1 WHERE id = ? RETURNING id, status');
    const link = this.stmt('INSERT INTO task_prerequisites (task_id, prerequisite_id) VALUES (?, ?)');

    const insertPlain = this.stmt(`
      INSERT INTO tasks (name, payload, queue, priority, status, run_at, max_attempts, backoff_base_ms,
        backoff_max_ms, timeout_ms, note, created_at, schedule_name, scheduled_for)
      VALUES (@name, @payload, @queue, @priority, 'WAITING', @runAt, @maxAttempts, @backoffBase,
        @backoffMax, @timeoutMs, @note, @now, @scheduleName, @scheduledFor)`);

    const results: AddResult[] = [];
    for (const t of tasks) {
      if (t.uniqueKey === null && t.prerequisites.length === 0) {
        // The common case: nothing to look up or read back; the task is what was inserted.
        const { lastInsertRowid } = insertPlain.run({
          name: t.name,
          payload: JSON.stringify(t.payload),
          queue: t.queue,
          priority: t.priority,
          runAt: t.runAt.getTime(),
          maxAttempts: t.maxAttempts,
          backoffBase: t.backoff.baseMs,
          backoffMax: t.backoff.maxMs,
          timeoutMs: t.timeoutMs,
          note: t.note,
          now: now.getTime(),
          scheduleName: t.scheduleName ?? null,
          scheduledFor: t.scheduledFor ? t.scheduledFor.getTime() : null,
        });
        results.push({ task: newTaskRecord(t, Number(lastInsertRowid), now), created: true });
        continue;
      }
      if (t.uniqueKey !== null) {
        const live = findLive.get(t.uniqueKey) as Row | undefined;
        if (live) {
          results.push({ task: toTask(live), created: false });
          continue;
        }
      }
      const prereqs = [...new Set(t.prerequisites)];
      const statuses: { id: number; status: TaskStatus }[] = [];
      const missing: number[] = [];
      for (const id of prereqs) {
        const row = markPrereq.get(id) as { id: number; status: TaskStatus } | undefined;
        if (row) statuses.push(row);
        else missing.push(id);
      }
      if (missing.length > 0) throw new UnknownPrerequisiteError(missing);
      const dead = statuses.find((s) => s.status === 'FAILED' || s.status === 'CANCELLED');
      const row = insert.get({
        name: t.name,
        payload: JSON.stringify(t.payload),
        queue: t.queue,
        priority: t.priority,
        status: dead ? dead.status : 'WAITING',
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
        error: dead ? prerequisiteError(dead.id, dead.status) : null,
        finishedAt: dead ? now.getTime() : null,
        failedBy: dead ? dead.id : null,
        scheduleName: t.scheduleName ?? null,
        scheduledFor: t.scheduledFor ? t.scheduledFor.getTime() : null,
      }) as Row;
      for (const id of prereqs) link.run(row.id, id);
      results.push({ task: toTask(row), created: true });
    }
    return results;
  }

  async get(id: number): Promise<Task | null> {
    const row = await this.read(() => this.stmt('SELECT * FROM tasks WHERE id = ?').get(id) as Row | undefined);
    return row ? toTask(row) : null;
  }

  async list(filter: TaskFilter): Promise<Task[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.status && filter.status.length > 0) {
      where.push(`status IN (${filter.status.map(() => '?').join(', ')})`);
      params.push(...filter.status);
    }
    if (filter.name !== undefined) {
      where.push('name = ?');
      params.push(filter.name);
    }
    if (filter.queue !== undefined) {
      where.push('queue = ?');
      params.push(filter.queue);
    }
    const sql = `SELECT * FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY id ${filter.order === 'asc' ? 'ASC' : 'DESC'} LIMIT ?`;
    params.push(filter.limit ?? 100);
    return (await this.read(() => this.stmt(sql).all(...params) as Row[])).map(toTask);
  }

  async counts(): Promise<Record<TaskStatus, number>> {
    const counts = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
    const rows = await this.read(
      () => this.stmt('SELECT status, count(*) AS n FROM tasks GROUP BY status').all() as { status: TaskStatus; n: number }[],
    );
    for (const r of rows) counts[r.status] = r.n;
    return counts;
  }

  claim(req: ClaimRequest): Promise<ClaimedTask[]> {
    return this.settle({ completions: [], failures: [] }, req, req.now);
  }

  async complete(items: readonly Completion[], now: Date): Promise<void> {
    await this.settle({ completions: items, failures: [] }, null, now);
  }

  async fail(items: readonly Failure[], now: Date): Promise<void> {
    await this.settle({ completions: [], failures: items }, null, now);
  }

  async settle(outcomes: Outcomes, claim: ClaimRequest | null, now: Date): Promise<ClaimedTask[]> {
    const writes = outcomes.completions.length > 0 || outcomes.failures.length > 0;
    // An idle worker takes no write lock: with nothing to write, a claim first looks (a plain read).
    if (!writes && (!claim || (await this.read(() => this.dueIds(claim, 1))).length === 0)) return [];
    const { claimed, wake } = await this.write(() => {
      const unblocked = this.completeAll(outcomes.completions, now);
      const retried = this.failRows(outcomes.failures, now);
      return { claimed: claim ? this.claimRows(claim) : [], wake: unblocked || retried };
    });
    if (wake) this.emit({ kind: 'wake' });
    return claimed;
  }

  // INDEXED BY: without statistics SQLite prefers tasks_by_status and sorts every waiting task on each
  // claim (200 claims/s at 20,000 waiting); the partial indexes in claim order make a claim a short scan.
  private dueIds(req: ClaimRequest, limit: number): { id: number }[] {
    return this.due(req, 'id').all(req.now.getTime(), ...(req.queues ?? []), limit) as { id: number }[];
  }

  /** The due tasks in claim order, `columns` of each. */
  private due(req: ClaimRequest, columns: string): Database.Statement {
    return this.stmt(
      req.queues
        ? `SELECT ${columns} FROM tasks INDEXED BY tasks_due_queue
            WHERE status = 'WAITING' AND waiting_for = 0 AND run_at <= ? AND queue IN (${req.queues.map(() => '?').join(', ')})
            ORDER BY priority DESC, run_at, id LIMIT ?`
        : `SELECT ${columns} FROM tasks INDEXED BY tasks_due
            WHERE status = 'WAITING' AND waiting_for = 0 AND run_at <= ?
            ORDER BY priority DESC, run_at, id LIMIT ?`,
    );
  }

  /**
   * Inside a write transaction. Two statements: the due rows in claim order, then one UPDATE of
   * exactly those (UPDATE … WHERE id IN (SELECT … LIMIT n) cost five times more: the planner left the
   * index). The rows are read before the update rather than returned by it: nothing else writes
   * inside this transaction, and RETURNING cost a tenth more per claimed task.
   */
  private claimRows(req: ClaimRequest): ClaimedTask[] {
    const rows = this.due(req, CLAIM_COLUMNS).all(req.now.getTime(), ...(req.queues ?? []), req.limit) as ClaimRow[];
    if (rows.length === 0) return [];
    const take = this.stmt(`
      UPDATE tasks
         SET status = 'STARTED', attempts = attempts + 1, started_at = ?, finished_at = NULL,
             locked_host = ?, locked_pid = ?, locked_worker = ?, lease_until = ?
       WHERE id IN (${rows.map(() => '?').join(', ')})`);
    // Leases are reckoned by the host's clock, whatever clock the caller runs on.
    const { changes } = take.run(req.now.getTime(), req.lock.host, req.lock.pid, req.lock.workerId, Date.now() + req.leaseMs, ...rows.map((r) => r.id));
    if (changes !== rows.length) throw new Error(`a claim updated ${changes} of the ${rows.length} tasks it read in its own transaction`);
    return rows.map((r) => toClaimed(r, req.lock, req.now));
  }

  /** This attempt's output after the earlier attempts' (only a retried task has any to read). */
  private mergedOutput(id: number, attempt: number, output: readonly string[]): string {
    if (attempt <= 1) return JSON.stringify(output);
    const row = this.stmt('SELECT output FROM tasks WHERE id = ?').get(id) as { output: string } | undefined;
    return JSON.stringify(appendOutput(row ? (JSON.parse(row.output) as string[]) : [], output));
  }

  /**
   * Inside a write transaction. Completions that carry follow-ups (ctx.add) are written one by one
   * with them (followups.ts); the rest, nearly all, take the batched path below unchanged.
   */
  private completeAll(items: readonly Completion[], now: Date): boolean {
    if (!items.some((c) => c.followUps && c.followUps.length > 0)) return this.completeRows(items, now);
    const plain = items.filter((c) => !c.followUps || c.followUps.length === 0);
    const withFollowUps = items.filter((c) => c.followUps && c.followUps.length > 0);
    const unblocked = this.completeRows(plain, now);
    return followups.completeWithFollowUps(this.db, withFollowUps, now, (one) => this.completeRows(one, now)) || unblocked;
  }

  /** Inside a write transaction; true when dependants were unblocked. */
  private completeRows(items: readonly Completion[], now: Date): boolean {
    if (items.length === 0) return false;
    const t = now.getTime();
    const parents: number[] = [];
    // First attempts (nearly all) in one statement, as the claim; a retried task's output is appended row by row.
    const first = items.filter((c) => c.attempt === 1);
    if (first.length > 0) {
      const done = this.stmt(`
        UPDATE tasks
           SET status = 'COMPLETED', result = v.column2, output = v.column3, finished_at = ?, error = NULL,
               error_stack = NULL, lease_until = NULL, cancel_requested = 0
          FROM (VALUES ${first.map(() => '(?, ?, ?, ?)').join(', ')}) AS v
         WHERE tasks.id = v.column1 AND tasks.status = 'STARTED' AND tasks.locked_worker = v.column4 AND tasks.attempts = 1
        RETURNING tasks.id, tasks.has_dependants`);
      const values: unknown[] = [t];
      for (const c of first) values.push(c.id, c.resultJson, JSON.stringify(c.output), c.workerId);
      for (const r of done.all(...values) as { id: number; has_dependants: number }[]) if (r.has_dependants) parents.push(r.id);
    }
    const one = this.stmt(`
      UPDATE tasks
         SET status = 'COMPLETED', result = ?, output = ?, finished_at = ?, error = NULL, error_stack = NULL,
             lease_until = NULL, cancel_requested = 0
       WHERE id = ? AND status = 'STARTED' AND locked_worker = ? AND attempts = ?
      RETURNING has_dependants`);
    for (const c of items) {
      if (c.attempt === 1) continue;
      const row = one.get(c.resultJson, this.mergedOutput(c.id, c.attempt, c.output), t, c.id, c.workerId, c.attempt) as
        | { has_dependants: number }
        | undefined;
      if (row?.has_dependants) parents.push(c.id);
    }
    const unblock = this.stmt(`
      UPDATE tasks SET waiting_for = waiting_for - 1
       WHERE status = 'WAITING' AND id IN (SELECT task_id FROM task_prerequisites WHERE prerequisite_id = ?)`);
    for (const id of parents) unblock.run(id);
    return parents.length > 0;
  }

  /** Inside a write transaction; true when a task went back to WAITING. */
  private failRows(items: readonly Failure[], now: Date): boolean {
    if (items.length === 0) return false;
    // A cancel requested while the attempt failed on its own wins over the retry: nothing may lose it.
    const stmt = this.stmt(`
      UPDATE tasks
         SET status = CASE WHEN cancel_requested = 1 OR @cancelled = 1 THEN 'CANCELLED'
                           WHEN @retryAt IS NOT NULL THEN 'WAITING' ELSE 'FAILED' END,
             run_at = CASE WHEN cancel_requested = 0 THEN coalesce(@retryAt, run_at) ELSE run_at END,
             error = CASE WHEN cancel_requested = 1 AND @cancelled = 0 THEN 'cancelled: ' || @error ELSE @error END,
             error_stack = @stack, output = @output,
             finished_at = CASE WHEN cancel_requested = 1 OR @retryAt IS NULL THEN @now END,
             lease_until = NULL, cancel_requested = 0,
             -- a task waiting for its next attempt is held by nobody; a finished one keeps who ran it
             locked_host = CASE WHEN cancel_requested = 1 OR @retryAt IS NULL THEN locked_host END,
             locked_pid = CASE WHEN cancel_requested = 1 OR @retryAt IS NULL THEN locked_pid END,
             locked_worker = CASE WHEN cancel_requested = 1 OR @retryAt IS NULL THEN locked_worker END
       WHERE id = @id AND status = 'STARTED' AND locked_worker = @workerId AND attempts = @attempt
      RETURNING status, has_dependants`);
    let retried = false;
    const failed: number[] = [];
    for (const f of items) {
      const row = stmt.get({
        cancelled: f.cancelled ? 1 : 0,
        retryAt: f.retryAt && !f.cancelled ? f.retryAt.getTime() : null,
        error: f.error,
        stack: f.errorStack,
        output: this.mergedOutput(f.id, f.attempt, f.output),
        now: now.getTime(),
        id: f.id,
        workerId: f.workerId,
        attempt: f.attempt,
      }) as { status: TaskStatus; has_dependants: number } | undefined;
      if (!row) continue;
      if (row.status === 'FAILED') failed.push(f.id);
      if (row.status === 'WAITING') retried = true;
      else if (row.has_dependants) this.cascade(f.id, row.status, now);
    }
    // Notifications: a task that failed for good is reported from this same transaction.
    notifications.recordFailures(this.db, failed, now);
    return retried;
  }

  /** Ends every WAITING dependant of `rootId`, transitively, with the root's final status. */
  private cascade(rootId: number, status: TaskStatus, now: Date): void {
    const stmt = this.stmt(`
      UPDATE tasks
         SET status = ?, error = ?, failed_by = ?, finished_at = ?
       WHERE status = 'WAITING' AND id IN (SELECT task_id FROM task_prerequisites WHERE prerequisite_id = ?)
      RETURNING id`);
    const frontier = [rootId];
    while (frontier.length > 0) {
      const parent = frontier.shift() as number;
      const message =
        parent === rootId ? prerequisiteError(parent, status) : `${prerequisiteError(parent, status)} (cascade from #${rootId})`;
      for (const r of stmt.all(status, message, parent, now.getTime(), parent) as { id: number }[]) frontier.push(r.id);
    }
  }

  async renew(refs: readonly AttemptRef[], leaseMs: number): Promise<RenewResult> {
    if (refs.length === 0) return { cancelled: [], lost: [] };
    const stmt = this.stmt(`
      UPDATE tasks SET lease_until = ?
       WHERE id = ? AND status = 'STARTED' AND locked_worker = ? AND attempts = ?
      RETURNING cancel_requested`);
    return this.write(() => {
      const result: RenewResult = { cancelled: [], lost: [] };
      const until = Date.now() + leaseMs;
      for (const r of refs) {
        const row = stmt.get(until, r.id, r.workerId, r.attempt) as { cancel_requested: number } | undefined;
        if (!row) result.lost.push(r.id);
        else if (row.cancel_requested) result.cancelled.push(r.id);
      }
      return result;
    });
  }

  async release(refs: readonly AttemptRef[], now: Date): Promise<void> {
    if (refs.length === 0) return;
    const stmt = this.stmt(`
      UPDATE tasks
         SET status = CASE WHEN cancel_requested = 1 THEN 'CANCELLED' ELSE 'WAITING' END,
             attempts = attempts - 1, started_at = NULL,
             finished_at = CASE WHEN cancel_requested = 1 THEN @now ELSE NULL END,
             error = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE error END,
             locked_host = NULL, locked_pid = NULL, locked_worker = NULL, lease_until = NULL
       WHERE id = @id AND status = 'STARTED' AND locked_worker = @workerId AND attempts = @attempt
      RETURNING status, has_dependants`);
    await this.write(() => {
      for (const r of refs) {
        const row = stmt.get({ now: now.getTime(), id: r.id, workerId: r.workerId, attempt: r.attempt }) as
          | { status: TaskStatus; has_dependants: number }
          | undefined;
        if (row?.status === 'CANCELLED' && row.has_dependants) this.cascade(r.id, 'CANCELLED', now);
      }
    });
    this.emit({ kind: 'wake' });
  }

  async rescueExpired(now: Date): Promise<number> {
    // Judged by the host's clock (see the interface); a look first, so no write lock when none expired.
    const expiredBefore = Date.now();
    const any = await this.read(() =>
      this.stmt("SELECT 1 FROM tasks INDEXED BY tasks_by_status WHERE status = 'STARTED' AND lease_until < ? LIMIT 1").get(
        expiredBefore,
      ),
    );
    if (!any) return 0;
    const stmt = this.stmt(`
      UPDATE tasks
         SET status = CASE WHEN cancel_requested = 1 THEN 'CANCELLED'
                           WHEN attempts >= max_attempts THEN 'FAILED' ELSE 'WAITING' END,
             error = 'the worker running this task stopped answering (' || coalesce(locked_host, '?') || ' pid ' ||
                     coalesce(locked_pid, '?') || '); its lease expired',
             finished_at = CASE WHEN cancel_requested = 1 OR attempts >= max_attempts THEN @now ELSE NULL END,
             run_at = CASE WHEN run_at > @now THEN run_at ELSE @now END,
             locked_host = NULL, locked_pid = NULL, locked_worker = NULL, lease_until = NULL,
             cancel_requested = 0
       WHERE status = 'STARTED' AND lease_until < @expiredBefore
      RETURNING id, status, has_dependants`);
    const rows = await this.write(() => {
      const rescued = stmt.all({ now: now.getTime(), expiredBefore }) as { id: number; status: TaskStatus; has_dependants: number }[];
      for (const r of rescued) if (r.status !== 'WAITING' && r.has_dependants) this.cascade(r.id, r.status, now);
      // Notifications: a task whose lease expired with no attempt left is reported from this transaction.
      notifications.recordFailures(this.db, rescued.filter((r) => r.status === 'FAILED').map((r) => r.id), now);
      return rescued;
    });
    if (rows.length > 0) this.emit({ kind: 'wake' });
    return rows.length;
  }

  async cancel(id: number, now: Date): Promise<Task> {
    const result = await this.write(() => {
      const row = this.stmt('SELECT status, has_dependants FROM tasks WHERE id = ?').get(id) as
        | { status: TaskStatus; has_dependants: number }
        | undefined;
      if (!row) throw new TaskNotFoundError(id);
      if (row.status === 'WAITING') {
        this.stmt("UPDATE tasks SET status = 'CANCELLED', finished_at = ?, error = 'cancelled' WHERE id = ?").run(now.getTime(), id);
        if (row.has_dependants) this.cascade(id, 'CANCELLED', now);
        return { started: false };
      }
      if (row.status === 'STARTED') {
        this.stmt('UPDATE tasks SET cancel_requested = 1 WHERE id = ?').run(id);
        return { started: true };
      }
      throw new InvalidTransitionError(id, row.status, 'cancel', 'WAITING or STARTED');
    });
    if (result.started) this.emit({ kind: 'cancel', id });
    return (await this.get(id)) as Task;
  }

  async retry(id: number, now: Date): Promise<Task> {
    const reset = this.stmt(`
      UPDATE tasks
         SET status = 'WAITING', attempts = 0, run_at = @now, error = NULL, error_stack = NULL, result = NULL,
             started_at = NULL, finished_at = NULL, failed_by = NULL, cancel_requested = 0,
             waiting_for = (SELECT count(*) FROM task_prerequisites p JOIN tasks d ON d.id = p.prerequisite_id
                             WHERE p.task_id = @id AND d.status <> 'COMPLETED')
       WHERE id = @id`);
    const deadPrereq = this.stmt(`
      SELECT d.id, d.status FROM task_prerequisites p JOIN tasks d ON d.id = p.prerequisite_id
       WHERE p.task_id = ? AND d.status IN ('FAILED', 'CANCELLED') ORDER BY d.id LIMIT 1`);
    const takenDown = this.stmt("SELECT id FROM tasks WHERE failed_by = ? AND status IN ('FAILED', 'CANCELLED') ORDER BY id");
    // A dependant that another ended prerequisite still holds down stays ended, now naming that one,
    // so retrying it later brings the dependant back; it is never left WAITING for ever.
    const heldDown = this.stmt('UPDATE tasks SET failed_by = ?, error = ? WHERE id = ?');
    await this.write(() => {
      const row = this.stmt('SELECT status FROM tasks WHERE id = ?').get(id) as { status: TaskStatus } | undefined;
      if (!row) throw new TaskNotFoundError(id);
      if (row.status !== 'FAILED' && row.status !== 'CANCELLED') {
        throw new InvalidTransitionError(id, row.status, 'retry', 'FAILED or CANCELLED');
      }
      const dead = deadPrereq.get(id) as { id: number; status: TaskStatus } | undefined;
      if (dead) {
        throw new InvalidTransitionError(
          id,
          row.status,
          `retry (its prerequisite #${dead.id} is ${dead.status}; retry that one first)`,
          'FAILED or CANCELLED tasks with live prerequisites',
        );
      }
      const frontier = [id];
      while (frontier.length > 0) {
        const current = frontier.shift() as number;
        reset.run({ now: now.getTime(), id: current });
        for (const d of takenDown.all(current) as { id: number }[]) {
          const other = deadPrereq.get(d.id) as { id: number; status: TaskStatus } | undefined;
          if (other) heldDown.run(other.id, prerequisiteError(other.id, other.status), d.id);
          else frontier.push(d.id);
        }
      }
    });
    this.emit({ kind: 'wake' });
    return (await this.get(id)) as Task;
  }

  async nextRunAt(queues: readonly string[] | null): Promise<Date | null> {
    const times = await this.read(() =>
      queues
        ? queues.map((queue) => (this.stmt(nextRunSql('tasks_due_queue', 'AND queue = @queue')).get({ queue }) as { t: number | null }).t)
        : [(this.stmt(nextRunSql('tasks_due', '')).get() as { t: number | null }).t],
    );
    const next = Math.min(...times.filter((t): t is number => t !== null));
    return Number.isFinite(next) ? new Date(next) : null;
  }

  async saveSchedule(definition: ScheduleDefinition, now: Date): Promise<Schedule> {
    const saved = await this.write(() => schedules.saveSchedule(this.db, definition, now));
    this.emit({ kind: 'schedules' });
    return saved;
  }

  async removeSchedule(name: string): Promise<boolean> {
    const removed = await this.write(() => schedules.removeSchedule(this.db, name));
    if (removed) this.emit({ kind: 'schedules' });
    return removed;
  }

  async getSchedule(name: string): Promise<Schedule | null> {
    return this.read(() => schedules.getSchedule(this.db, name));
  }

  async listSchedules(): Promise<Schedule[]> {
    return this.read(() => schedules.listSchedules(this.db));
  }

  async fireSchedule(fire: ScheduleFire, now: Date): Promise<FireOutcome> {
    const outcome = await this.write(() =>
      schedules.fireSchedule(this.db, fire, now, (task) => {
        const [added] = this.insertTasks([task], now);
        return (added as AddResult).task;
      }),
    );
    if (outcome.kind === 'fired') this.emit({ kind: 'wake' });
    return outcome;
  }

  async skipSchedule(skip: ScheduleSkip, now: Date): Promise<void> {
    await this.write(() => schedules.skipSchedule(this.db, skip, now));
  }

  async pruneTicks(before: Date): Promise<number> {
    return this.write(() => schedules.pruneTicks(this.db, before));
  }

  async ping(): Promise<void> {
    await this.read(() => this.stmt('SELECT 1').get());
  }

  async pruneFinished(before: Date): Promise<number> {
    const counts = await this.prune({ before: { COMPLETED: before, FAILED: before, CANCELLED: before } });
    return counts.COMPLETED + counts.FAILED + counts.CANCELLED;
  }

  // --- Follow-ups and retention: SQL in followups.ts and retention.ts ---

  async prune(request: PruneRequest): Promise<Record<PrunableStatus, number>> {
    const counts: Record<PrunableStatus, number> = { COMPLETED: 0, FAILED: 0, CANCELLED: 0 };
    for (const status of PRUNABLE_STATUSES) {
      const before = request.before[status];
      if (!before) continue;
      if (request.dryRun) {
        counts[status] = await this.read(() => retention.countPrunable(this.db, status, before));
        continue;
      }
      let after: retention.PruneCursor | null = null;
      for (;;) {
        const started = performance.now();
        const from: retention.PruneCursor | null = after;
        const batch: { deleted: number; next: retention.PruneCursor | null } = await this.write(() =>
          retention.pruneBatch(this.db, status, before, from),
        );
        counts[status] += batch.deleted;
        after = batch.next;
        if (after === null) break;
        // Between batches the lock is left free for as long as the batch held it: a writer of another
        // process that met the lock backs off for a few milliseconds and must find it free when it
        // tries again (right after, pruning would take it first, and claims would starve).
        await sleep(Math.max(2, performance.now() - started));
      }
    }
    return counts;
  }

  async reserveTaskIds(count: number): Promise<number[]> {
    return this.write(() => followups.reserveIds(this.db, count));
  }

  async liveTaskId(uniqueKey: string): Promise<number | null> {
    return this.read(() => followups.liveTaskId(this.db, uniqueKey));
  }

  async heartbeat(d: DaemonHeartbeat): Promise<void> {
    const stmt = this.stmt(
      `INSERT INTO daemons (id, host, pid, started_at, last_seen, modules) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, modules = excluded.modules`,
    );
    await this.write(() =>
      stmt.run(d.id, d.host, d.pid, d.startedAt.getTime(), d.lastSeen.getTime(), JSON.stringify(d.modules)),
    );
  }

  async removeDaemon(id: string): Promise<void> {
    await this.write(() => queries.removeDaemon(this.db, id));
  }

  async listDaemons(): Promise<DaemonHeartbeat[]> {
    const rows = await this.read(
      () =>
        this.stmt('SELECT * FROM daemons ORDER BY last_seen DESC').all() as {
          id: string; host: string; pid: number; started_at: number; last_seen: number; modules: string;
        }[],
    );
    return rows.map((r) => ({
      id: r.id,
      host: r.host,
      pid: r.pid,
      startedAt: new Date(r.started_at),
      lastSeen: new Date(r.last_seen),
      modules: JSON.parse(r.modules) as Json,
    }));
  }

  // --- Task queries, delete, stats and progress (SQL in queries.ts) ---
  async queryTasks(page: TaskPageRequest): Promise<TaskListItem[]> {
    return this.read(() => queries.queryTasks(this.db, page));
  }

  async countTasks(filter: TaskQueryFilter, cap: number): Promise<number> {
    return this.read(() => queries.countTasks(this.db, filter, cap));
  }

  async deleteTask(id: number): Promise<void> {
    await this.write(() => queries.deleteTask(this.db, id));
  }

  async dependants(id: number): Promise<TaskListItem[]> {
    return this.read(() => queries.dependants(this.db, id));
  }

  async taskActivity(now: Date): Promise<Pick<TaskStats, 'perMinute' | 'latestFailures'>> {
    return this.read(() => queries.taskActivity(this.db, now));
  }

  async taskIdRange(): Promise<{ min: number; max: number }> {
    return this.read(() => queries.taskIdRange(this.db));
  }

  async countByQueue(afterId: number, upToId: number): Promise<QueueCount[]> {
    return this.read(() => queries.countByQueue(this.db, afterId, upToId));
  }

  async setProgress(ref: AttemptRef, progress: TaskProgress): Promise<boolean> {
    return this.write(() => queries.setProgress(this.db, ref, progress));
  }

  async lastDaemonStop(): Promise<Date | null> {
    return this.read(() => queries.lastDaemonStop(this.db));
  }

  // --- Web authentication: see users.ts.
  addUser(user: UserRecord): Promise<boolean> {
    return this.write(() => users.addUser(this.db, user));
  }
  getUser(name: string): Promise<UserRecord | null> {
    return this.read(() => users.getUser(this.db, name));
  }
  listUsers(): Promise<UserRecord[]> {
    return this.read(() => users.listUsers(this.db));
  }
  removeUser(name: string): Promise<boolean> {
    return this.write(() => users.removeUser(this.db, name));
  }
  addToken(token: Omit<TokenRecord, 'id' | 'lastUsedAt'>): Promise<TokenRecord> {
    return this.write(() => users.addToken(this.db, token));
  }
  findToken(tokenHash: string): Promise<TokenRecord | null> {
    return this.read(() => users.findToken(this.db, tokenHash));
  }
  async touchToken(id: number, at: Date): Promise<void> {
    await this.write(() => users.touchToken(this.db, id, at));
  }
  listTokens(): Promise<TokenRecord[]> {
    return this.read(() => users.listTokens(this.db));
  }
  removeToken(id: number): Promise<boolean> {
    return this.write(() => users.removeToken(this.db, id));
  }
  async addSession(session: SessionRecord): Promise<void> {
    await this.write(() => users.addSession(this.db, session));
  }
  findSession(idHash: string, now: Date): Promise<SessionRecord | null> {
    return this.read(() => users.findSession(this.db, idHash, now));
  }
  async removeSession(idHash: string): Promise<void> {
    await this.write(() => users.removeSession(this.db, idHash));
  }
  async addLoginLink(secretHash: string, createdAt: Date, expiresAt: Date): Promise<void> {
    await this.write(() => users.addLoginLink(this.db, secretHash, createdAt, expiresAt));
  }
  useLoginLink(secretHash: string, now: Date): Promise<boolean> {
    return this.write(() => users.useLoginLink(this.db, secretHash, now));
  }
  countPrincipals(): Promise<{ users: number; tokens: number }> {
    return this.read(() => users.countPrincipals(this.db));
  }

  // --- Notifications (SQL in ./notifications.ts)
  async routeNotifications(route: (n: Notification) => readonly string[], now: Date): Promise<number> {
    const pending = await this.read(() => this.stmt('SELECT 1 FROM notifications WHERE routed = 0 LIMIT 1').get());
    if (!pending) return 0;
    return this.write(() => notifications.routeNotifications(this.db, route, now));
  }

  async claimDeliveries(claim: DeliveryClaim): Promise<ClaimedDelivery[]> {
    // A look first, so an idle deliverer takes no write lock.
    const due = await this.read(() =>
      this.stmt(
        `SELECT 1 FROM notification_deliveries WHERE channel = ? AND state = 'pending' AND next_at <= ?
            AND (lease_until IS NULL OR lease_until < ?) LIMIT 1`,
      ).get(claim.channel, claim.now.getTime(), claim.now.getTime()),
    );
    if (!due) return [];
    return this.write(() => notifications.claimDeliveries(this.db, claim));
  }

  async markDelivered(refs: readonly DeliveryRef[], now: Date): Promise<void> {
    await this.write(() => notifications.markDelivered(this.db, refs, now));
  }

  async deferDeliveries(refs: readonly DeliveryRef[], owner: string, error: string, retryAt: Date): Promise<void> {
    await this.write(() => notifications.deferDeliveries(this.db, refs, owner, error, retryAt));
  }

  async checkDaemons(request: DaemonCheckRequest): Promise<DaemonCheck> {
    // A look first: no write lock unless some heartbeat is stale or an outage is open.
    const staleBefore = request.now.getTime() - request.staleMs;
    const any = await this.read(() =>
      this.stmt(
        `SELECT 1 WHERE EXISTS (SELECT 1 FROM daemons WHERE last_seen < ?) OR EXISTS (SELECT 1 FROM daemon_outages WHERE open = 1)`,
      ).get(staleBefore),
    );
    if (!any) return { down: [], up: [] };
    return this.write(() => notifications.checkDaemons(this.db, request));
  }

  async listNotifications(limit: number): Promise<NotificationRecord[]> {
    return this.read(() => notifications.listNotifications(this.db, limit));
  }

  async pruneNotifications(before: Date): Promise<number> {
    return this.write(() => notifications.pruneNotifications(this.db, before));
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.signals.subscribe(listener);
  }

  private emit(event: StoreEvent): void {
    this.signals.emit(event);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.signals.close();
    this.db.close();
  }
}

