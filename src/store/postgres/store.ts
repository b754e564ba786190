// The server engine: one PostgreSQL schema shared by every worker and client, on any host.
// Row locks do the serialising: a claim skips rows another claimer holds (SKIP LOCKED), and every
// report names the attempt it belongs to, so a task is never handed out twice nor finished twice.
import pg from 'pg';
import {
  DatabaseUnreachableError,
  InvalidInputError,
  InvalidTransitionError,
  SchemaTooNewError,
  TaskNotFoundError,
  UnknownPrerequisiteError,
} from '../../model/errors.js';
import type { Json, NewTask, Task, TaskStatus } from '../../model/task.js';
import { newTaskRecord, prerequisiteError, TASK_STATUSES } from '../../model/task.js';
import { readMigrations } from '../migrations.js';
import type {
  AddResult,
  AttemptRef,
  ClaimedTask,
  ClaimRequest,
  Completion,
  ExternalTransaction,
  Failure,
  Outcomes,
  PrunableStatus,
  PruneRequest,
  RenewResult,
  Store,
  StoreEvent,
  TaskFilter,
} from '../store.js';
import { channelFor, encode, Listener, type LocalSignals, localSignals } from './signals.js';
import { guardListener, PRUNABLE_STATUSES } from '../store.js';
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

/** A pool, a pooled client inside our BEGIN, or the caller's own transaction. */
type Db = ExternalTransaction;

/** A whole task row: a list row (queries.ts) and the columns only a single task's view reads. */
interface Row extends queries.ListRow {
  result: Json | null;
  output: string[];
  error_stack: string | null;
}

// Named rather than *: what a claim needs, and a later migration's new column cannot change its result.
const CLAIM_COLUMNS = `id, name, payload, queue, priority, run_at, attempts, max_attempts, backoff_base_ms, backoff_max_ms,
  timeout_ms, note, cancel_requested, schedule_name, scheduled_for`;

/** A claimed row as json_agg gives it: times as ISO text, numbers as numbers. */
interface ClaimJson {
  id: number;
  name: string;
  payload: Json;
  queue: string;
  priority: number;
  run_at: string;
  attempts: number;
  max_attempts: number;
  backoff_base_ms: number;
  backoff_max_ms: number;
  timeout_ms: number;
  note: string | null;
  cancel_requested: boolean;
  schedule_name: string | null;
  scheduled_for: string | null;
}

function toClaimed(r: ClaimJson, lockedBy: ClaimedTask['lockedBy'], startedAt: Date): ClaimedTask {
  return {
    id: r.id,
    name: r.name,
    payload: r.payload,
    queue: r.queue,
    priority: r.priority,
    runAt: new Date(r.run_at),
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    backoff: { baseMs: r.backoff_base_ms, maxMs: r.backoff_max_ms },
    timeoutMs: r.timeout_ms,
    note: r.note,
    cancelRequested: r.cancel_requested,
    scheduleName: r.schedule_name,
    scheduledFor: r.scheduled_for === null ? null : new Date(r.scheduled_for),
    lockedBy,
    startedAt,
  };
}

/** Claimed rows in claim order (priority desc, runAt, id): an UPDATE returns them in any order. */
function claimedInOrder(rows: readonly ClaimJson[], claim: ClaimRequest): ClaimedTask[] {
  return rows
    .map((r) => toClaimed(r, claim.lock, claim.now))
    .sort((a, b) => b.priority - a.priority || a.runAt.getTime() - b.runAt.getTime() || a.id - b.id);
}

/**
 * The claim's two CTEs, `next` and `claimed` (CLAIM_COLUMNS), with the statement's own placeholders:
 * shared by settle's one statement and the claim alone.
 */
function claimCtes(p: { now: string; limit: string; host: string; pid: string; worker: string; lease: string; queues: string | null }): string {
  return `next AS (
         SELECT id FROM tasks
          WHERE status = 'WAITING' AND waiting_for = 0 AND run_at <= ${p.now} ${p.queues ? `AND queue = ANY(${p.queues}::text[])` : ''}
          ORDER BY priority DESC, run_at, id
          LIMIT ${p.limit}
          FOR UPDATE SKIP LOCKED),
       claimed AS (
         UPDATE tasks
            SET status = 'STARTED', attempts = attempts + 1, started_at = ${p.now}, finished_at = NULL,
                locked_host = ${p.host}, locked_pid = ${p.pid}, locked_worker = ${p.worker},
                -- the database's clock: hosts whose clocks differ still agree on when a lease ends
                lease_until = now() + ${p.lease}::bigint * interval '1 millisecond'
          WHERE id IN (SELECT id FROM next)
         RETURNING ${CLAIM_COLUMNS})`;
}

/** A schema name as an SQL identifier: quoted, so a reserved word such as `user` works. */
function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}


// pg returns bigint as a string (it may exceed 2^53); ids and durations in ms never do.
function toTask(r: Row): Task {
  // A list item (queries.ts) plus what only a single task's view carries.
  return { ...queries.toItem(r), result: r.result, output: r.output, errorStack: r.error_stack };
}

async function select<T>(db: Db, sql: string, values: unknown[] = []): Promise<T[]> {
  return (await db.query(sql, values)).rows as T[];
}

/**
 * The columns a batch insert writes from its tasks besides the payload (which always travels, as one
 * JSON array, and so gives the row count): column, SQL type, value.
 */
const INSERT_COLUMNS: readonly (readonly [string, string, (t: NewTask) => unknown])[] = [
  ['name', 'text', (t) => t.name],
  ['queue', 'text', (t) => t.queue],
  ['priority', 'int', (t) => t.priority],
  ['run_at', 'timestamptz', (t) => t.runAt],
  ['max_attempts', 'int', (t) => t.maxAttempts],
  ['backoff_base_ms', 'bigint', (t) => t.backoff.baseMs],
  ['backoff_max_ms', 'bigint', (t) => t.backoff.maxMs],
  ['timeout_ms', 'bigint', (t) => t.timeoutMs],
  ['note', 'text', (t) => t.note],
  ['schedule_name', 'text', (t) => t.scheduleName ?? null],
  ['scheduled_for', 'timestamptz', (t) => t.scheduledFor ?? null],
];

/** For the hot path: parsed and planned once per connection. */
async function selectPrepared<T>(db: pg.Pool | pg.PoolClient, name: string, sql: string, values: unknown[]): Promise<T[]> {
  return (await db.query({ name, text: sql, values })).rows as T[];
}

interface Target {
  connectionString: string;
  schema: string;
  /** Server options for every connection: the URL's own, plus our search_path. */
  options: string;
  where: string;
}

function parseUrl(url: string): Target {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidInputError('invalid database URL: expected "postgres://USER@HOST:PORT/DB[?schema=NAME]".');
  }
  const schema = u.searchParams.get('schema') ?? 'taskmill';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new InvalidInputError(
      `invalid schema "${schema}" in the database URL: use a lower-case letter or _ followed by lower-case ` +
        'letters, digits or _, at most 63 in all.',
    );
  }
  u.searchParams.delete('schema');
  // pg lets the URL's parameters override the config object's, so ours must ride along with them.
  const options = [u.searchParams.get('options'), `-c search_path=${quoteIdent(schema)}`].filter(Boolean).join(' ');
  u.searchParams.delete('options');
  const shown = new URL(u);
  shown.password = '';
  shown.search = '';
  return { connectionString: u.toString(), schema, options, where: `${shown.toString()}?schema=${schema}` };
}

export class PostgresStore implements Store {
  readonly engine = 'postgres' as const;
  // Two: the database works on one batch while the worker runs the other (2 cores measured; more gained nothing).
  readonly parallelSettles = 2;
  readonly where: string;
  private readonly pool: pg.Pool;
  private readonly schema: string;
  private readonly channel: string;
  private readonly clientConfig: pg.ClientConfig;
  private readonly local: LocalSignals;
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private listen: Listener | null = null;
  private closed = false;
  private readonly workPool: pg.Pool;

  private constructor(target: Target) {
    this.where = target.where;
    this.schema = target.schema;
    this.channel = channelFor(target.schema);
    this.clientConfig = {
      connectionString: target.connectionString,
      options: target.options,
      connectionTimeoutMillis: 5_000,
      // Names the schema too, so an operator can tell several taskmill databases apart in pg_stat_activity.
      application_name: `taskmill ${target.schema}`,
    };
    this.pool = new pg.Pool({ ...this.clientConfig, max: 10 });
    // Claims and outcomes need no fsync before we go on: if the server crashes and loses the last
    // ones, those tasks are STARTED again with a lease that expires, and run again (at least once).
    // Adds, cancels and schedules stay durable on the other pool.
    this.workPool = new pg.Pool({ ...this.clientConfig, options: `${target.options} -c synchronous_commit=off`, max: 10 });
    // A connection the server drops (a restart, a failover) emits 'error'; unhandled, that ends the
    // process. The pool listens only while a connection is idle, so each connection gets its own
    // listener for its whole life: a query in flight rejects, and the pool replaces the connection.
    for (const pool of [this.pool, this.workPool]) {
      pool.on('error', () => undefined);
      pool.on('connect', (client) => client.on('error', () => undefined));
    }
    this.local = localSignals(`${target.connectionString}#${target.schema}`);
  }

  /** Connects, then applies migrations. */
  static async open(url: string, { migrate = true }: { migrate?: boolean } = {}): Promise<PostgresStore> {
    const store = new PostgresStore(parseUrl(url));
    try {
      await store.pool.query('SELECT 1');
    } catch (err) {
      await Promise.all([store.pool.end(), store.workPool.end()]).catch(() => undefined);
      throw new DatabaseUnreachableError(store.where, err);
    }
    try {
      if (migrate) await store.migrate();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  async migrate(): Promise<{ from: number; to: number }> {
    const migrations = readMigrations(new URL('./migrations/', import.meta.url));
    const latest = migrations.at(-1)?.version ?? 0;
    let from: number | null = null;
    // One transaction per migration; the advisory lock makes concurrent processes take turns.
    for (let applied = true; applied; ) {
      applied = await this.transaction(async (db) => {
        await db.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`taskmill migrate ${this.schema}`]);
        // CREATE SCHEMA IF NOT EXISTS would still need the CREATE privilege, which a deployed role may lack.
        const [found] = await select<{ schema: boolean; meta: boolean }>(
          db,
          "SELECT to_regnamespace($1) IS NOT NULL AS schema, to_regclass('taskmill_meta') IS NOT NULL AS meta",
          [this.schema],
        );
        if (!found?.schema) await db.query(`CREATE SCHEMA ${quoteIdent(this.schema)}`);
        const [row] = found?.meta
          ? await select<{ value: string }>(db, "SELECT value FROM taskmill_meta WHERE key = 'schema_version'")
          : [];
        const current = Number(row?.value ?? 0);
        from ??= current;
        if (current > latest) throw new SchemaTooNewError(current, latest);
        const next = migrations.find((m) => m.version > current);
        if (!next) return false;
        await db.query(next.sql);
        await db.query(
          `INSERT INTO taskmill_meta (key, value) VALUES ('schema_version', $1)
           ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
          [String(next.version)],
        );
        return true;
      });
    }
    const start = from ?? 0;
    return { from: start, to: Math.max(start, latest) };
  }

  async add(tasks: readonly NewTask[], now: Date, transaction?: ExternalTransaction): Promise<AddResult[]> {
    if (tasks.length === 0) return [];
    if (transaction) {
      // The savepoint keeps the batch all-or-none even if the caller catches our error and commits.
      await transaction.query('SAVEPOINT taskmill_add');
      try {
        // The caller's connection has its own search_path: point it at our schema for these statements only
        // (rolling back to the savepoint undoes this too).
        const [path] = await select<{ previous: string }>(transaction, "SELECT current_setting('search_path') AS previous");
        await transaction.query("SELECT set_config('search_path', $1, true)", [quoteIdent(this.schema)]);
        const results = await this.insert(transaction, tasks, now, false);
        await transaction.query("SELECT set_config('search_path', $1, true)", [path?.previous ?? '']);
        await transaction.query('RELEASE SAVEPOINT taskmill_add');
        // No local wake: the tasks exist only once the caller commits, and the NOTIFY tells us then.
        return results;
      } catch (err) {
        await transaction.query('ROLLBACK TO SAVEPOINT taskmill_add');
        throw err;
      }
    }
    const results = tasks.every(isPlain)
      ? (await this.insertPlain(this.pool, tasks, now, true)).map((task) => ({ task, created: true }))
      : await this.transaction((db) => this.insert(db, tasks, now, true));
    if (results.some((r) => r.created)) this.emit({ kind: 'wake' });
    return results;
  }

  /** Keeps the batch's order (ids increase along it), inserting each run of plain tasks in one statement. */
  private async insert(db: Db, tasks: readonly NewTask[], now: Date, fromHere: boolean): Promise<AddResult[]> {
    const results: AddResult[] = [];
    for (let i = 0; i < tasks.length; ) {
      let end = i;
      while (end < tasks.length && isPlain(tasks[end] as NewTask)) end++;
      if (end > i) {
        for (const task of await this.insertPlain(db, tasks.slice(i, end), now, fromHere)) results.push({ task, created: true });
        i = end;
      } else {
        results.push(await this.insertOne(db, tasks[i] as NewTask, now));
        i++;
      }
    }
    if (results.some((r) => r.created)) await this.notify(db, { kind: 'wake' }, fromHere);
    return results;
  }

  /**
   * Tasks with neither unique key nor prerequisites. Notifies in the same statement, so it may run alone.
   * A column whose value is the same for the whole batch (most of the time all but the payload, and
   * often the name) travels once as a parameter rather than as an array the server parses element by element:
   * a fifth less time per batch of 1,000.
   */
  private async insertPlain(db: Db, tasks: readonly NewTask[], now: Date, fromHere: boolean): Promise<Task[]> {
    if (tasks.length === 1 && fromHere) return [await this.insertOnePlain(db as pg.Pool | pg.PoolClient, tasks[0] as NewTask, now)];
    // The payloads as one JSON array: the server parses one document and splits it, rather than an
    // array literal of escaped JSON texts parsed one by one.
    const payloads = `[${tasks.map((t) => JSON.stringify(t.payload)).join(',')}]`;
    const values: unknown[] = [now, this.channel, encode({ kind: 'wake' }, fromHere ? this.local.origin : null), payloads];
    const sources = ['jsonb_array_elements($4::jsonb)'];
    const sourceColumns = ['payload'];
    const picks: string[] = [];
    let shape = '';
    const comparable = (v: unknown) => (v instanceof Date ? v.getTime() : v);
    for (const [column, type, pick] of INSERT_COLUMNS) {
      const first = pick(tasks[0] as NewTask);
      const key = comparable(first);
      const uniform = tasks.every((t) => comparable(pick(t)) === key);
      if (uniform) {
        picks.push(`$${values.push(first)}::${type}`);
        shape += 's';
      } else {
        sources.push(`unnest($${values.push(tasks.map(pick))}::${type}[])`);
        sourceColumns.push(column);
        picks.push(`t.${column}`);
        shape += 'a';
      }
    }
    const text = `WITH inserted AS (
         INSERT INTO tasks (${INSERT_COLUMNS.map(([column]) => column).join(', ')}, payload, status, created_at)
         SELECT ${picks.join(', ')}, t.payload, 'WAITING', $1::timestamptz
           FROM ROWS FROM (${sources.join(', ')}) WITH ORDINALITY AS t (${sourceColumns.join(', ')}, n)
          ORDER BY n
         RETURNING id)
       SELECT inserted.id FROM inserted, pg_notify($2, $3)`;
    // Our own connections keep it prepared (parsed and planned once per shape); a caller's transaction may not allow that.
    const rows = fromHere
      ? await selectPrepared<{ id: string }>(db as pg.Pool | pg.PoolClient, `taskmill_insert_many_${shape}`, text, values)
      : await select<{ id: string }>(db, text, values);
    // Ids are drawn in the batch's order (ORDER BY n), so the sorted ids match the tasks one to one.
    const ids = rows.map((r) => Number(r.id)).sort((a, b) => a - b);
    return tasks.map((t, i) => newTaskRecord(t, ids[i] as number, now));
  }

  /** One task, the common `add`: a VALUES insert costs half the batch's unnest (no arrays to encode and unpack). */
  private async insertOnePlain(db: pg.Pool | pg.PoolClient, t: NewTask, now: Date): Promise<Task> {
    const [row] = await selectPrepared<{ id: string }>(
      db,
      'taskmill_insert_one',
      `WITH inserted AS (
         INSERT INTO tasks (name, payload, queue, priority, status, run_at, max_attempts, backoff_base_ms,
           backoff_max_ms, timeout_ms, note, created_at, schedule_name, scheduled_for)
         VALUES ($1, $2::jsonb, $3, $4, 'WAITING', $5, $6, $7, $8, $9, $10, $11, $12, $13)
         RETURNING id)
       SELECT inserted.id FROM inserted, pg_notify($14, $15)`,
      [
        t.name, JSON.stringify(t.payload), t.queue, t.priority, t.runAt, t.maxAttempts, t.backoff.baseMs, t.backoff.maxMs,
        t.timeoutMs, t.note, now, t.scheduleName ?? null, t.scheduledFor ?? null,
        this.channel, encode({ kind: 'wake' }, this.local.origin),
      ],
    );
    return newTaskRecord(t, Number(row?.id), now);
  }

  private async insertOne(db: Db, t: NewTask, now: Date): Promise<AddResult> {
    if (t.uniqueKey !== null) {
      const live = await this.findLive(db, t.uniqueKey);
      if (live) return { task: live, created: false };
    }
    const prereqs = [...new Set(t.prerequisites)];
    // Row-locks the prerequisites until we commit: a complete() racing us either committed first
    // (we read COMPLETED) or waits for us and then finds our task among its dependants.
    const statuses =
      prereqs.length === 0
        ? []
        : await select<{ id: string; status: TaskStatus }>(
            db,
            'UPDATE tasks SET has_dependants = true WHERE id = ANY($1::bigint[]) RETURNING id, status',
            [prereqs],
          );
    const found = new Set(statuses.map((s) => Number(s.id)));
    const missing = prereqs.filter((id) => !found.has(id));
    if (missing.length > 0) throw new UnknownPrerequisiteError(missing);
    const dead = statuses.find((s) => s.status === 'FAILED' || s.status === 'CANCELLED');
    for (;;) {
      const [row] = await select<Row>(
        db,
        `INSERT INTO tasks (name, payload, queue, priority, status, run_at, max_attempts, backoff_base_ms,
           backoff_max_ms, timeout_ms, prerequisite_ids, unique_key, note, created_at, waiting_for,
           error, finished_at, failed_by, schedule_name, scheduled_for)
         VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7, $8, $9, $10, $11::bigint[], $12, $13, $14, $15, $16, $17, $18,
                 $19, $20)
         ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('WAITING', 'STARTED') DO NOTHING
         RETURNING *`,
        [
          t.name, JSON.stringify(t.payload), t.queue, t.priority, dead ? dead.status : 'WAITING', t.runAt,
          t.maxAttempts, t.backoff.baseMs, t.backoff.maxMs, t.timeoutMs, prereqs, t.uniqueKey, t.note, now,
          statuses.filter((s) => s.status !== 'COMPLETED').length,
          dead ? prerequisiteError(Number(dead.id), dead.status) : null,
          dead ? now : null,
          dead ? dead.id : null,
          t.scheduleName ?? null,
          t.scheduledFor ?? null,
        ],
      );
      if (row) {
        if (prereqs.length > 0) {
          await db.query(
            'INSERT INTO task_prerequisites (task_id, prerequisite_id) SELECT $1::bigint, unnest($2::bigint[])',
            [row.id, prereqs],
          );
        }
        return { task: toTask(row), created: true };
      }
      // Another transaction holds the key. It may have finished since, and then the key is free again.
      const live = await this.findLive(db, t.uniqueKey ?? '');
      if (live) return { task: live, created: false };
    }
  }

  private async findLive(db: Db, uniqueKey: string): Promise<Task | null> {
    const [row] = await select<Row>(db, "SELECT * FROM tasks WHERE unique_key = $1 AND status IN ('WAITING', 'STARTED')", [
      uniqueKey,
    ]);
    return row ? toTask(row) : null;
  }

  async get(id: number): Promise<Task | null> {
    const [row] = await select<Row>(this.pool, 'SELECT * FROM tasks WHERE id = $1', [id]);
    return row ? toTask(row) : null;
  }

  async list(filter: TaskFilter): Promise<Task[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    const param = (value: unknown) => `$${values.push(value)}`;
    if (filter.status && filter.status.length > 0) where.push(`status = ANY(${param(filter.status)}::text[])`);
    if (filter.name !== undefined) where.push(`name = ${param(filter.name)}`);
    if (filter.queue !== undefined) where.push(`queue = ${param(filter.queue)}`);
    const sql = `SELECT * FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY id ${filter.order === 'asc' ? 'ASC' : 'DESC'} LIMIT ${param(filter.limit ?? 100)}`;
    return (await select<Row>(this.pool, sql, values)).map(toTask);
  }

  async counts(): Promise<Record<TaskStatus, number>> {
    const counts = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
    const rows = await select<{ status: TaskStatus; n: number }>(
      this.pool,
      'SELECT status, count(*)::int AS n FROM tasks GROUP BY status',
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

  /**
   * Failures (rarer; they may cascade) go first in their own transaction. Then one statement, one
   * round trip, completes every task that has no dependants and claims the next ones; a completion
   * it left (dependants to unblock, or an attempt no longer held) goes through the transactional path.
   * Each write names its attempt, so sending an outcome again after an error changes nothing twice.
   */
  async settle(outcomes: Outcomes, claim: ClaimRequest | null, now: Date): Promise<ClaimedTask[]> {
    if (outcomes.failures.length > 0) await this.failTransaction(outcomes.failures, now);
    // Completions that carry follow-ups (ctx.add) take the transactional path below, with them; the
    // rest, nearly all, the one-statement path unchanged.
    const carrying = outcomes.completions.some(hasFollowUps);
    const completions = byId(carrying ? outcomes.completions.filter((c) => !hasFollowUps(c)) : outcomes.completions);
    if (completions.length === 0 && !claim) {
      if (carrying) await this.completeTransaction(byId(outcomes.completions.filter(hasFollowUps)), now);
      return [];
    }
    const queues = claim?.queues ?? null;
    if (completions.length === 0 && claim && !carrying) {
      // A claim alone (an idle worker woken by a new task): the shorter statement, for pickup latency.
      const [only] = await selectPrepared<{ claimed: ClaimJson[] | null }>(
        this.workPool,
        queues ? 'taskmill_claim_queues' : 'taskmill_claim',
        `WITH ${claimCtes({ now: '$1', limit: '$2', host: '$3', pid: '$4', worker: '$5', lease: '$6', queues: queues ? '$7' : null })}
         SELECT json_agg(claimed) AS claimed FROM claimed`,
        [now, claim.limit, claim.lock.host, claim.lock.pid, claim.lock.workerId, claim.leaseMs, ...(queues ? [queues] : [])],
      );
      return claimedInOrder(only?.claimed ?? [], claim);
    }
    const [row] = await selectPrepared<{ done: string[] | null; claimed: ClaimJson[] | null }>(
      this.workPool,
      queues ? 'taskmill_settle_queues' : 'taskmill_settle',
      `WITH done AS (
         UPDATE tasks t
            SET status = 'COMPLETED', result = c.result, finished_at = $1, error = NULL, error_stack = NULL,
                output = CASE WHEN c.attempt > 1 THEN append_output(t.output, c.output) ELSE c.output END,
                lease_until = NULL, cancel_requested = false
           FROM unnest($2::bigint[], $3::text[], $4::int[], $5::jsonb[], $6::jsonb[]) AS c (id, worker, attempt, result, output)
          -- The rows are found by primary key: "status || ''" keeps the planner off tasks_by_status, where
          -- it would walk every entry a finished task left there until vacuum, more at each batch.
          WHERE t.id = c.id AND t.status || '' = 'STARTED' AND t.locked_worker = c.worker AND t.attempts = c.attempt
            AND NOT t.has_dependants
         RETURNING t.id),
       ${claimCtes({ now: '$1', limit: '$7', host: '$8', pid: '$9', worker: '$10', lease: '$11', queues: queues ? '$12' : null })}
       SELECT (SELECT array_agg(id) FROM done) AS done, (SELECT json_agg(claimed) FROM claimed) AS claimed`,
      [
        now,
        completions.map((c) => c.id),
        completions.map((c) => c.workerId),
        completions.map((c) => c.attempt),
        completions.map((c) => c.resultJson),
        completions.map((c) => JSON.stringify(c.output)),
        claim?.limit ?? 0,
        claim?.lock.host ?? null,
        claim?.lock.pid ?? null,
        claim?.lock.workerId ?? null,
        claim?.leaseMs ?? 0,
        ...(queues ? [queues] : []),
      ],
    );
    const done = new Set((row?.done ?? []).map(Number));
    const left = completions.filter((c) => !done.has(c.id));
    if (carrying) left.push(...byId(outcomes.completions.filter(hasFollowUps)));
    const claimed = claim ? claimedInOrder(row?.claimed ?? [], claim) : [];
    if (left.length > 0) {
      try {
        await this.completeTransaction(left, now);
      } catch (err) {
        // The caller hears of the failure and never of these tasks: hand them back (attempt not
        // counted) rather than leave them STARTED until their leases expire.
        const refs = claimed.map((t) => ({ id: t.id, workerId: t.lockedBy.workerId, attempt: t.attempts }));
        await this.release(refs, now).catch(() => undefined);
        throw err;
      }
    }
    return claimed;
  }

  /** Completions of tasks with dependants: the dependants are unblocked in the same transaction. */
  private async completeTransaction(items: readonly Completion[], now: Date): Promise<void> {
    const unblocked = await this.transaction(async (db) => {
      const done = await selectPrepared<{ id: string; has_dependants: boolean }>(
        db,
        'taskmill_complete',
        `UPDATE tasks t
            SET status = 'COMPLETED', result = c.result, finished_at = $1, error = NULL, error_stack = NULL,
                output = CASE WHEN c.attempt > 1 THEN append_output(t.output, c.output) ELSE c.output END,
                lease_until = NULL, cancel_requested = false
           FROM unnest($2::bigint[], $3::text[], $4::int[], $5::jsonb[], $6::jsonb[])
                AS c (id, worker, attempt, result, output)
          WHERE t.id = c.id AND t.status || '' = 'STARTED' AND t.locked_worker = c.worker AND t.attempts = c.attempt
         RETURNING t.id, t.has_dependants`,
        [
          now, items.map((c) => c.id), items.map((c) => c.workerId), items.map((c) => c.attempt),
          items.map((c) => c.resultJson), items.map((c) => JSON.stringify(c.output)),
        ],
      );
      const parents = done.filter((d) => d.has_dependants).map((d) => d.id);
      if (parents.length > 0) {
        // A second statement takes a fresh snapshot: it sees the dependants of any add() we waited for above.
        await db.query(
          `UPDATE tasks t SET waiting_for = t.waiting_for - p.n
             FROM (SELECT task_id, count(*)::int AS n FROM task_prerequisites
                    WHERE prerequisite_id = ANY($1::bigint[]) GROUP BY task_id) p
            WHERE t.id = p.task_id AND t.status = 'WAITING'`,
          [parents],
        );
      }
      // Follow-ups of the attempts this transaction completed, after the unblocking (a follow-up that
      // names its parent finds it COMPLETED, and must not be counted down once more).
      let added = 0;
      if (items.some(hasFollowUps)) {
        const completed = new Set(done.map((d) => Number(d.id)));
        for (const c of items) {
          if (hasFollowUps(c) && completed.has(c.id)) added += await followups.insertFollowUps(db, c.followUps ?? [], now);
        }
      }
      if (parents.length === 0 && added === 0) return false;
      await this.notify(db, { kind: 'wake' });
      return true;
    }, this.workPool);
    if (unblocked) this.emit({ kind: 'wake' });
  }

  private async failTransaction(items: readonly Failure[], now: Date): Promise<void> {
    const sorted = byId(items);
    const retried = await this.transaction(async (db) => {
      // A cancel requested while the attempt failed on its own wins over the retry: nothing may lose it.
      const rows = await select<{ id: string; status: TaskStatus; has_dependants: boolean }>(
        db,
        `UPDATE tasks t
            SET status = CASE WHEN t.cancel_requested OR f.cancelled THEN 'CANCELLED'
                              WHEN f.retry_at IS NOT NULL THEN 'WAITING' ELSE 'FAILED' END,
                run_at = CASE WHEN t.cancel_requested OR f.cancelled THEN t.run_at ELSE coalesce(f.retry_at, t.run_at) END,
                error = CASE WHEN t.cancel_requested AND NOT f.cancelled THEN 'cancelled: ' || f.error ELSE f.error END,
                error_stack = f.stack,
                output = CASE WHEN f.attempt > 1 THEN append_output(t.output, f.output) ELSE f.output END,
                finished_at = CASE WHEN t.cancel_requested OR f.cancelled OR f.retry_at IS NULL THEN $1::timestamptz END,
                -- a task waiting for its next attempt is held by nobody; a finished one keeps who ran it
                locked_host = CASE WHEN t.cancel_requested OR f.cancelled OR f.retry_at IS NULL THEN t.locked_host END,
                locked_pid = CASE WHEN t.cancel_requested OR f.cancelled OR f.retry_at IS NULL THEN t.locked_pid END,
                locked_worker = CASE WHEN t.cancel_requested OR f.cancelled OR f.retry_at IS NULL THEN t.locked_worker END,
                lease_until = NULL, cancel_requested = false
           FROM unnest($2::bigint[], $3::text[], $4::int[], $5::bool[], $6::text[], $7::text[], $8::jsonb[],
                       $9::timestamptz[])
                AS f (id, worker, attempt, cancelled, error, stack, output, retry_at)
          WHERE t.id = f.id AND t.status || '' = 'STARTED' AND t.locked_worker = f.worker AND t.attempts = f.attempt
         RETURNING t.id, t.status, t.has_dependants`,
        [
          now, sorted.map((f) => f.id), sorted.map((f) => f.workerId), sorted.map((f) => f.attempt),
          sorted.map((f) => f.cancelled === true), sorted.map((f) => f.error), sorted.map((f) => f.errorStack),
          sorted.map((f) => JSON.stringify(f.output)), sorted.map((f) => (f.cancelled ? null : f.retryAt)),
        ],
      );
      for (const r of rows) {
        if (r.status !== 'WAITING' && r.has_dependants) await this.cascade(db, Number(r.id), r.status, now);
      }
      // Notifications: a task that failed for good is reported from this same transaction.
      await notifications.recordFailures(db, rows.filter((r) => r.status === 'FAILED').map((r) => Number(r.id)), now);
      const anyRetried = rows.some((r) => r.status === 'WAITING');
      if (anyRetried) await this.notify(db, { kind: 'wake' });
      return anyRetried;
    }, this.workPool);
    if (retried) this.emit({ kind: 'wake' });
  }

  /**
   * Ends every WAITING dependant of `rootId`, transitively, with the root's final status. Each step is
   * its own statement (a fresh snapshot) and its parent is locked by now, so no add() slips past it.
   */
  private async cascade(db: Db, rootId: number, status: TaskStatus, now: Date): Promise<void> {
    const frontier = [rootId];
    for (let parent = frontier.shift(); parent !== undefined; parent = frontier.shift()) {
      const message = prerequisiteError(parent, status) + (parent === rootId ? '' : ` (cascade from #${rootId})`);
      const taken = await select<{ id: string; has_dependants: boolean }>(
        db,
        `UPDATE tasks SET status = $1, error = $2, failed_by = $3, finished_at = $4
          WHERE status = 'WAITING' AND id IN (SELECT task_id FROM task_prerequisites WHERE prerequisite_id = $3)
         RETURNING id, has_dependants`,
        [status, message, parent, now],
      );
      for (const t of taken) if (t.has_dependants) frontier.push(Number(t.id));
    }
  }

  async renew(refs: readonly AttemptRef[], leaseMs: number): Promise<RenewResult> {
    if (refs.length === 0) return { cancelled: [], lost: [] };
    const sorted = byId(refs);
    const rows = await selectPrepared<{ id: string; attempts: number; cancel_requested: boolean }>(
      this.workPool,
      'taskmill_renew',
      `UPDATE tasks t SET lease_until = now() + $1::bigint * interval '1 millisecond'
         FROM unnest($2::bigint[], $3::text[], $4::int[]) AS r (id, worker, attempt)
        WHERE t.id = r.id AND t.status || '' = 'STARTED' AND t.locked_worker = r.worker AND t.attempts = r.attempt
       RETURNING t.id, t.attempts, t.cancel_requested`,
      [leaseMs, sorted.map((r) => r.id), sorted.map((r) => r.workerId), sorted.map((r) => r.attempt)],
    );
    const held = new Map(rows.map((r) => [`${r.id}:${r.attempts}`, r.cancel_requested]));
    const key = (r: AttemptRef) => `${r.id}:${r.attempt}`;
    return {
      cancelled: refs.filter((r) => held.get(key(r)) === true).map((r) => r.id),
      lost: refs.filter((r) => !held.has(key(r))).map((r) => r.id),
    };
  }

  async release(refs: readonly AttemptRef[], now: Date): Promise<void> {
    if (refs.length === 0) return;
    const sorted = byId(refs);
    const released = await this.transaction(async (db) => {
      const rows = await select<{ id: string; status: TaskStatus; has_dependants: boolean }>(
        db,
        `UPDATE tasks t
            SET status = CASE WHEN t.cancel_requested THEN 'CANCELLED' ELSE 'WAITING' END,
                attempts = t.attempts - 1, started_at = NULL,
                finished_at = CASE WHEN t.cancel_requested THEN $1::timestamptz END,
                error = CASE WHEN t.cancel_requested THEN 'cancelled' ELSE t.error END,
                locked_host = NULL, locked_pid = NULL, locked_worker = NULL, lease_until = NULL
           FROM unnest($2::bigint[], $3::text[], $4::int[]) AS r (id, worker, attempt)
          WHERE t.id = r.id AND t.status || '' = 'STARTED' AND t.locked_worker = r.worker AND t.attempts = r.attempt
         RETURNING t.id, t.status, t.has_dependants`,
        [now, sorted.map((r) => r.id), sorted.map((r) => r.workerId), sorted.map((r) => r.attempt)],
      );
      for (const r of rows) {
        if (r.status === 'CANCELLED' && r.has_dependants) await this.cascade(db, Number(r.id), r.status, now);
      }
      if (rows.length > 0) await this.notify(db, { kind: 'wake' });
      return rows.length > 0;
    });
    if (released) this.emit({ kind: 'wake' });
  }

  async rescueExpired(now: Date): Promise<number> {
    const rescued = await this.transaction(async (db) => {
      const rows = await select<{ id: string; status: TaskStatus; has_dependants: boolean }>(
        db,
        `UPDATE tasks
            SET status = CASE WHEN cancel_requested THEN 'CANCELLED'
                              WHEN attempts >= max_attempts THEN 'FAILED' ELSE 'WAITING' END,
                error = 'the worker running this task stopped answering (' || coalesce(locked_host, '?') || ' pid ' ||
                        coalesce(locked_pid::text, '?') || '); its lease expired',
                finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts THEN $1::timestamptz END,
                run_at = greatest(run_at, $1::timestamptz),
                locked_host = NULL, locked_pid = NULL, locked_worker = NULL, lease_until = NULL,
                cancel_requested = false
          -- the database's clock, as the lease was set: a host whose clock runs ahead steals nothing
          WHERE status = 'STARTED' AND lease_until < now()
         RETURNING id, status, has_dependants`,
        [now],
      );
      for (const r of rows) {
        if (r.status !== 'WAITING' && r.has_dependants) await this.cascade(db, Number(r.id), r.status, now);
      }
      // Notifications: a task whose lease expired with no attempt left is reported from this transaction.
      await notifications.recordFailures(db, rows.filter((r) => r.status === 'FAILED').map((r) => Number(r.id)), now);
      if (rows.length > 0) await this.notify(db, { kind: 'wake' });
      return rows.length;
    });
    if (rescued > 0) this.emit({ kind: 'wake' });
    return rescued;
  }

  async cancel(id: number, now: Date): Promise<Task> {
    const { row, started } = await this.transaction(async (db) => {
      const [before] = await select<{ status: TaskStatus; has_dependants: boolean }>(
        db,
        'SELECT status, has_dependants FROM tasks WHERE id = $1 FOR UPDATE',
        [id],
      );
      if (!before) throw new TaskNotFoundError(id);
      if (before.status === 'WAITING') {
        const [after] = await select<Row>(
          db,
          "UPDATE tasks SET status = 'CANCELLED', finished_at = $2, error = 'cancelled' WHERE id = $1 RETURNING *",
          [id, now],
        );
        if (before.has_dependants) await this.cascade(db, id, 'CANCELLED', now);
        return { row: after as Row, started: false };
      }
      if (before.status === 'STARTED') {
        const [after] = await select<Row>(db, 'UPDATE tasks SET cancel_requested = true WHERE id = $1 RETURNING *', [id]);
        await this.notify(db, { kind: 'cancel', id });
        return { row: after as Row, started: true };
      }
      throw new InvalidTransitionError(id, before.status, 'cancel', 'WAITING or STARTED');
    });
    if (started) this.emit({ kind: 'cancel', id });
    return toTask(row);
  }

  async retry(id: number, now: Date): Promise<Task> {
    const row = await this.transaction(async (db) => {
      const [before] = await select<{ status: TaskStatus }>(db, 'SELECT status FROM tasks WHERE id = $1 FOR UPDATE', [id]);
      if (!before) throw new TaskNotFoundError(id);
      if (before.status !== 'FAILED' && before.status !== 'CANCELLED') {
        throw new InvalidTransitionError(id, before.status, 'retry', 'FAILED or CANCELLED');
      }
      let root: Row | undefined;
      const frontier = [id];
      for (let current = frontier.shift(); current !== undefined; current = frontier.shift()) {
        // Locks the prerequisites as add() does, so no completion slips between this count and the reset.
        const prereqs = await select<{ id: string; status: TaskStatus }>(
          db,
          `UPDATE tasks SET has_dependants = true
            WHERE id IN (SELECT prerequisite_id FROM task_prerequisites WHERE task_id = $1)
           RETURNING id, status`,
          [current],
        );
        const dead = prereqs
          .filter((p) => p.status === 'FAILED' || p.status === 'CANCELLED')
          .sort((a, b) => Number(a.id) - Number(b.id))[0];
        if (current === id && dead) {
          throw new InvalidTransitionError(
            id,
            before.status,
            `retry (its prerequisite #${dead.id} is ${dead.status}; retry that one first)`,
            'FAILED or CANCELLED tasks with live prerequisites',
          );
        }
        if (dead) {
          // Another ended prerequisite still holds this dependant down: it stays ended, now naming that
          // one, so retrying it later brings the dependant back; it is never left WAITING for ever.
          await db.query('UPDATE tasks SET failed_by = $2, error = $3 WHERE id = $1', [
            current, dead.id, prerequisiteError(Number(dead.id), dead.status),
          ]);
          continue;
        }
        const [reset] = await select<Row>(
          db,
          `UPDATE tasks
              SET status = 'WAITING', attempts = 0, run_at = $2, error = NULL, error_stack = NULL, result = NULL,
                  started_at = NULL, finished_at = NULL, failed_by = NULL, cancel_requested = false, waiting_for = $3
            WHERE id = $1
           RETURNING *`,
          [current, now, prereqs.filter((p) => p.status !== 'COMPLETED').length],
        );
        root ??= reset;
        const takenDown = await select<{ id: string }>(
          db,
          "SELECT id FROM tasks WHERE failed_by = $1 AND status IN ('FAILED', 'CANCELLED') ORDER BY id FOR UPDATE",
          [current],
        );
        for (const d of takenDown) frontier.push(Number(d.id));
      }
      await this.notify(db, { kind: 'wake' });
      return root as Row;
    });
    this.emit({ kind: 'wake' });
    return toTask(row);
  }

  async nextRunAt(queues: readonly string[] | null): Promise<Date | null> {
    // The earliest run time of an unblocked WAITING task: a loose scan of the due index (in priority
    // order), one seek per priority present and one for the first run time under it; priorities are few.
    const due = `FROM tasks WHERE status = 'WAITING' AND waiting_for = 0 ${queues ? 'AND queue = q.queue' : ''}`;
    const [row] = await selectPrepared<{ t: Date | null }>(
      this.pool,
      queues ? 'taskmill_next_run_queues' : 'taskmill_next_run',
      `SELECT min(n.t) AS t FROM ${queues ? 'unnest($1::text[]) AS q (queue)' : '(VALUES (NULL::text)) AS q (queue)'},
         LATERAL (
           WITH RECURSIVE p (pr) AS (
             SELECT (SELECT priority ${due} ORDER BY priority DESC LIMIT 1)
             UNION ALL
             SELECT (SELECT priority ${due} AND priority < p.pr ORDER BY priority DESC LIMIT 1) FROM p WHERE p.pr IS NOT NULL)
           SELECT min((SELECT run_at ${due} AND priority = p.pr ORDER BY priority DESC, run_at LIMIT 1)) AS t
             FROM p WHERE p.pr IS NOT NULL) AS n`,
      queues ? [queues] : [],
    );
    return row?.t ?? null;
  }

  // --- Task queries, delete, stats and progress (SQL in queries.ts) ---
  async queryTasks(page: TaskPageRequest): Promise<TaskListItem[]> {
    return queries.queryTasks(this.pool, page);
  }

  async countTasks(filter: TaskQueryFilter, cap: number): Promise<number> {
    return queries.countTasks(this.pool, filter, cap);
  }

  async deleteTask(id: number): Promise<void> {
    await this.transaction((db) => queries.deleteTask(db, id));
  }

  async dependants(id: number): Promise<TaskListItem[]> {
    return queries.dependants(this.pool, id);
  }

  async taskActivity(now: Date): Promise<Pick<TaskStats, 'perMinute' | 'latestFailures'>> {
    return queries.taskActivity(this.pool, now);
  }

  async taskIdRange(): Promise<{ min: number; max: number }> {
    return queries.taskIdRange(this.pool);
  }

  async countByQueue(afterId: number, upToId: number): Promise<QueueCount[]> {
    return queries.countByQueue(this.pool, afterId, upToId);
  }

  async setProgress(ref: AttemptRef, progress: TaskProgress): Promise<boolean> {
    return queries.setProgress(this.workPool, ref, progress);
  }

  async lastDaemonStop(): Promise<Date | null> {
    return queries.lastDaemonStop(this.pool);
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    listener = guardListener(listener);
    this.local.emitter.on('event', listener);
    this.listeners.add(listener);
    if (!this.listen && !this.closed) {
      this.listen = new Listener(this.clientConfig, this.channel, this.local.origin, (event) => {
        for (const l of this.listeners) l(event);
      });
      this.listen.start();
    }
    return () => {
      this.local.emitter.off('event', listener);
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.listen) {
        void this.listen.stop();
        this.listen = null;
      }
    };
  }

  async saveSchedule(definition: ScheduleDefinition, now: Date): Promise<Schedule> {
    const saved = await this.transaction(async (db) => {
      const s = await schedules.saveSchedule(db, definition, now);
      await this.notify(db, { kind: 'schedules' });
      return s;
    });
    this.emit({ kind: 'schedules' });
    return saved;
  }

  async removeSchedule(name: string): Promise<boolean> {
    const removed = await this.transaction(async (db) => {
      const gone = await schedules.removeSchedule(db, name);
      if (gone) await this.notify(db, { kind: 'schedules' });
      return gone;
    });
    if (removed) this.emit({ kind: 'schedules' });
    return removed;
  }

  async getSchedule(name: string): Promise<Schedule | null> {
    return schedules.getSchedule(this.pool, name);
  }

  async listSchedules(): Promise<Schedule[]> {
    return schedules.listSchedules(this.pool);
  }

  async fireSchedule(fire: ScheduleFire, now: Date): Promise<FireOutcome> {
    const outcome = await this.transaction((db) =>
      // The same insert as add(): unique keys and prerequisites hold for a schedule's task too.
      schedules.fireSchedule(db, fire, now, async (task) => ((await this.insert(db, [task], now, true))[0] as AddResult).task),
    );
    if (outcome.kind === 'fired') this.emit({ kind: 'wake' });
    return outcome;
  }

  async skipSchedule(skip: ScheduleSkip, now: Date): Promise<void> {
    await schedules.skipSchedule(this.pool, skip, now);
  }

  async pruneTicks(before: Date): Promise<number> {
    return schedules.pruneTicks(this.pool, before);
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
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
        counts[status] = await retention.countPrunable(this.pool, status, before);
        continue;
      }
      let after: retention.PruneCursor | null = null;
      for (;;) {
        const batch = await retention.pruneBatch(this.pool, status, before, after);
        counts[status] += batch.deleted;
        after = batch.next;
        if (after === null) break;
      }
    }
    return counts;
  }

  async reserveTaskIds(count: number): Promise<number[]> {
    return followups.reserveIds(this.pool, count);
  }

  async liveTaskId(uniqueKey: string): Promise<number | null> {
    return followups.liveTaskId(this.pool, uniqueKey);
  }

  async heartbeat(d: DaemonHeartbeat): Promise<void> {
    await this.pool.query(
      `INSERT INTO daemons (id, host, pid, started_at, last_seen, modules) VALUES ($1, $2, $3, $4, $5, $6::jsonb)
       ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, modules = excluded.modules`,
      [d.id, d.host, d.pid, d.startedAt, d.lastSeen, JSON.stringify(d.modules)],
    );
  }

  async removeDaemon(id: string): Promise<void> {
    await queries.removeDaemon(this.pool, id);
  }

  async listDaemons(): Promise<DaemonHeartbeat[]> {
    const { rows } = await this.pool.query<{
      id: string; host: string; pid: number; started_at: Date; last_seen: Date; modules: Json;
    }>('SELECT * FROM daemons ORDER BY last_seen DESC');
    return rows.map((r) => ({
      id: r.id, host: r.host, pid: r.pid, startedAt: r.started_at, lastSeen: r.last_seen, modules: r.modules,
    }));
  }

  // --- Web authentication: see users.ts.
  addUser(user: UserRecord): Promise<boolean> {
    return users.addUser(this.pool, user);
  }
  getUser(name: string): Promise<UserRecord | null> {
    return users.getUser(this.pool, name);
  }
  listUsers(): Promise<UserRecord[]> {
    return users.listUsers(this.pool);
  }
  removeUser(name: string): Promise<boolean> {
    return this.transaction((db) => users.removeUser(db, name));
  }
  addToken(token: Omit<TokenRecord, 'id' | 'lastUsedAt'>): Promise<TokenRecord> {
    return users.addToken(this.pool, token);
  }
  findToken(tokenHash: string): Promise<TokenRecord | null> {
    return users.findToken(this.pool, tokenHash);
  }
  touchToken(id: number, at: Date): Promise<void> {
    return users.touchToken(this.pool, id, at);
  }
  listTokens(): Promise<TokenRecord[]> {
    return users.listTokens(this.pool);
  }
  removeToken(id: number): Promise<boolean> {
    return users.removeToken(this.pool, id);
  }
  addSession(session: SessionRecord): Promise<void> {
    return this.transaction((db) => users.addSession(db, session));
  }
  findSession(idHash: string, now: Date): Promise<SessionRecord | null> {
    return users.findSession(this.pool, idHash, now);
  }
  removeSession(idHash: string): Promise<void> {
    return users.removeSession(this.pool, idHash);
  }
  addLoginLink(secretHash: string, createdAt: Date, expiresAt: Date): Promise<void> {
    return this.transaction((db) => users.addLoginLink(db, secretHash, createdAt, expiresAt));
  }
  useLoginLink(secretHash: string, now: Date): Promise<boolean> {
    return users.useLoginLink(this.pool, secretHash, now);
  }
  countPrincipals(): Promise<{ users: number; tokens: number }> {
    return users.countPrincipals(this.pool);
  }

  // --- Notifications (SQL in ./notifications.ts)
  async routeNotifications(route: (n: Notification) => readonly string[], now: Date): Promise<number> {
    const { rows } = await this.pool.query('SELECT 1 FROM notifications WHERE NOT routed LIMIT 1');
    if (rows.length === 0) return 0;
    return this.transaction((db) => notifications.routeNotifications(db, route, now));
  }

  async claimDeliveries(claim: DeliveryClaim): Promise<ClaimedDelivery[]> {
    // A look first, so an idle deliverer opens no transaction.
    const { rows } = await this.pool.query(
      `SELECT 1 FROM notification_deliveries WHERE channel = $1 AND state = 'pending' AND next_at <= $2
          AND (lease_until IS NULL OR lease_until < $2) LIMIT 1`,
      [claim.channel, claim.now],
    );
    if (rows.length === 0) return [];
    return this.transaction((db) => notifications.claimDeliveries(db, claim));
  }

  async markDelivered(refs: readonly DeliveryRef[], now: Date): Promise<void> {
    await notifications.markDelivered(this.pool, refs, now);
  }

  async deferDeliveries(refs: readonly DeliveryRef[], owner: string, error: string, retryAt: Date): Promise<void> {
    await notifications.deferDeliveries(this.pool, refs, owner, error, retryAt);
  }

  async checkDaemons(request: DaemonCheckRequest): Promise<DaemonCheck> {
    // A look first: no transaction unless some heartbeat is stale or an outage is open.
    const { rows } = await this.pool.query(
      'SELECT 1 WHERE EXISTS (SELECT 1 FROM daemons WHERE last_seen < $1) OR EXISTS (SELECT 1 FROM daemon_outages WHERE open)',
      [new Date(request.now.getTime() - request.staleMs)],
    );
    if (rows.length === 0) return { down: [], up: [] };
    return this.transaction((db) => notifications.checkDaemons(db, request));
  }

  async listNotifications(limit: number): Promise<NotificationRecord[]> {
    return notifications.listNotifications(this.pool, limit);
  }

  async pruneNotifications(before: Date): Promise<number> {
    return notifications.pruneNotifications(this.pool, before);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.listeners) this.local.emitter.off('event', l);
    this.listeners.clear();
    await this.listen?.stop();
    this.listen = null;
    await Promise.all([this.pool.end(), this.workPool.end()]);
  }

  /** Queues the event for other processes; PostgreSQL delivers it only if the transaction commits. */
  private async notify(db: Db, event: StoreEvent, fromHere = true): Promise<void> {
    await db.query('SELECT pg_notify($1, $2)', [this.channel, encode(event, fromHere ? this.local.origin : null)]);
  }

  /** Tells this process's subscribers at once; only after the commit. */
  private emit(event: StoreEvent): void {
    this.local.emitter.emit('event', event);
  }

  /** BEGIN … COMMIT on one pooled connection; after a deadlock, rolls back and runs `work` again. */
  private async transaction<T>(work: (db: pg.PoolClient) => Promise<T>, pool: pg.Pool = this.pool): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((e: Error) => {
          broken = e;
        });
        if (isDeadlock(err) && attempt < 5) continue;
        throw err;
      } finally {
        client.release(broken);
      }
    }
  }
}

function isDeadlock(err: unknown): boolean {
  return err instanceof Error && 'code' in err && err.code === '40P01';
}

function hasFollowUps(c: Completion): boolean {
  return c.followUps !== undefined && c.followUps.length > 0;
}

function isPlain(t: NewTask): boolean {
  return t.uniqueKey === null && t.prerequisites.length === 0;
}

/** Every batch locks its rows in id order, which keeps concurrent batches from deadlocking. */
function byId<T extends { id: number }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => a.id - b.id);
}

