// The one storage interface. Every engine implements it and passes test/store/conformance.test.ts.
// It speaks the domain (add, claim, complete, fail, release); SQL stays inside each engine.
// Time is always passed in (`now`), never read inside SQL, so tests pin it and engines agree.
import type { DaemonHeartbeat } from '../model/daemon.js';
import type { Overlap, Schedule, ScheduleDefinition } from '../model/schedule.js';
import type { LockInfo, NewTask, Task, TaskProgress, TaskStatus } from '../model/task.js';
import type { SortOrder, TaskListItem, TaskQueryFilter, TaskSort, TaskStats } from '../model/query.js';
import type { SessionRecord, TokenRecord, UserRecord } from '../model/user.js';
import type {
  ClaimedDelivery, DaemonCheck, DeliveryClaim, DeliveryMode, DeliveryRef, Notification,
} from '../model/notification.js';

/** What a worker needs of a task it claimed: no output, result or error (those stay in the database). */
export type ClaimedTask = Pick<
  Task,
  | 'id' | 'name' | 'payload' | 'queue' | 'priority' | 'runAt' | 'attempts' | 'maxAttempts' | 'backoff' | 'timeoutMs'
  | 'note' | 'cancelRequested' | 'scheduleName' | 'scheduledFor'
> & { lockedBy: LockInfo; startedAt: Date };

/** A caller's own open transaction (a `pg` client inside BEGIN): `add` joins it instead of committing alone. */
export interface ExternalTransaction {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

export interface AddResult {
  task: Task;
  /** False when a live task with the same uniqueKey already existed and was returned instead. */
  created: boolean;
}

export interface ClaimRequest {
  lock: LockInfo;
  /** Only these queues; null for all. */
  queues: readonly string[] | null;
  limit: number;
  now: Date;
  /** The lease's length; its expiry is reckoned by the store's own clock (see rescueExpired). */
  leaseMs: number;
}

/** Identifies one attempt: a late report from a worker that lost its lease changes nothing. */
export interface AttemptRef {
  id: number;
  workerId: string;
  attempt: number;
}

export interface Completion extends AttemptRef {
  /** The result as JSON text (the worker serialised it once, to check and measure it). */
  resultJson: string;
  /** This attempt's output only: the store appends it to earlier attempts' (at most MAX_OUTPUT_LINES in all). */
  output: string[];
  /** Tasks the handler added (ctx.add): written in the transaction that completes this attempt, or never. */
  followUps?: readonly FollowUp[];
}

export interface Failure extends AttemptRef {
  error: string;
  errorStack: string | null;
  /** This attempt's output only, as for Completion. */
  output: string[];
  /**
   * When to try again (status back to WAITING); null ends the task FAILED, or CANCELLED if `cancelled`.
   * A cancel requested meanwhile wins over a retry: the task then ends CANCELLED.
   */
  retryAt: Date | null;
  cancelled?: boolean;
}

export interface TaskFilter {
  status?: readonly TaskStatus[];
  name?: string;
  queue?: string;
  limit?: number;
  /** Newest first by default (as an operator reads them). */
  order?: 'asc' | 'desc';
}

/** Outcomes of finished attempts, written together. */
export interface Outcomes {
  completions: readonly Completion[];
  failures: readonly Failure[];
}

export interface RenewResult {
  /** Held attempts whose cancel was requested. */
  cancelled: number[];
  /** Attempts this worker no longer holds (rescued elsewhere, or ended): their handlers must stop. */
  lost: number[];
}

export type StoreEvent =
  /** A task may have become due (added, retried, released). */
  | { kind: 'wake' }
  /** A STARTED task was asked to stop; id null when another process cancelled one it did not name
   * (SQLite's signal file carries no id): a worker then checks its own tasks at once. */
  | { kind: 'cancel'; id: number | null }
  /** A schedule was added, changed or removed: fire times must be recomputed. */
  | { kind: 'schedules' };

/** One occurrence of a schedule to fire. */
export interface ScheduleFire {
  name: string;
  /** The due time it serves; with the name, the key that makes it fire once in a cluster. */
  dueAt: Date;
  task: NewTask;
  overlap: Overlap;
  /** A manual run ("run now"): no tick, and the schedule's served due times stay as they are. */
  manual?: boolean;
  /** Older occurrences the catch-up policy skipped: recorded only by the caller that wins this tick. */
  skippedBefore?: { count: number; reason: string };
}

export type FireOutcome =
  | { kind: 'fired'; taskId: number }
  /** Not fired: the overlap policy, or the schedule is gone or paused. */
  | { kind: 'skipped'; reason: string }
  /** Another scheduler fired this occurrence already. */
  | { kind: 'taken' };

/** Occurrences the catch-up policy does not run, recorded so operators can see them. */
export interface ScheduleSkip {
  name: string;
  count: number;
  /** The latest due time served by this skip (fired or not): becomes lastDueAt. */
  servedUntil: Date;
  reason: string;
}

// --- Follow-ups (ctx.add) and retention (pruning) ---

/**
 * A task added by a handler, under an id reserved for it (reserveTaskIds). It is inserted with that id
 * in the transaction that completes its parent, and only if that attempt still holds the task. Its
 * prerequisites may name the parent or earlier follow-ups of the same completion by their reserved ids.
 */
export interface FollowUp {
  id: number;
  task: NewTask;
}

export const PRUNABLE_STATUSES = ['COMPLETED', 'CANCELLED', 'FAILED'] as const;
export type PrunableStatus = (typeof PRUNABLE_STATUSES)[number];

export interface PruneRequest {
  /** Per status, tasks that finished before this time are deleted; a status left out is kept. */
  before: Partial<Record<PrunableStatus, Date>>;
  /** Count what would be deleted, delete nothing. */
  dryRun?: boolean;
}

export interface Store {
  readonly engine: 'sqlite' | 'postgres';
  /**
   * How many `settle` calls one worker gains from having under way at once: 1 where writes queue for
   * one lock anyway (SQLite), more where each call has a server process of its own (PostgreSQL).
   */
  readonly parallelSettles: number;
  /** Human-readable location, for messages (no password). */
  readonly where: string;

  /** Applies pending migrations; refuses a database written by a newer version. */
  migrate(): Promise<{ from: number; to: number }>;

  /**
   * Inserts tasks atomically (all or none). A task whose uniqueKey matches a WAITING or
   * STARTED task returns that task instead. Unknown prerequisites throw UnknownPrerequisiteError;
   * a prerequisite already FAILED or CANCELLED ends the new task the same way at once.
   */
  add(tasks: readonly NewTask[], now: Date, transaction?: ExternalTransaction): Promise<AddResult[]>;

  get(id: number): Promise<Task | null>;
  list(filter: TaskFilter): Promise<Task[]>;
  /** Counts by status, for summaries. */
  counts(): Promise<Record<TaskStatus, number>>;

  /**
   * Moves up to `limit` due tasks (WAITING, runAt ≤ now, every prerequisite COMPLETED) to STARTED,
   * in order priority desc, runAt, id; counts the attempt and sets the lease. Never hands one task
   * to two callers.
   */
  claim(request: ClaimRequest): Promise<ClaimedTask[]>;

  /**
   * The worker's one call per turn: writes outcomes (as complete and fail) and then claims (as claim),
   * in one round trip where the engine allows. When it throws, the caller may send the same outcomes
   * again (each write names its attempt, so none lands twice), and no task it claimed stays STARTED:
   * SQLite does it all in one transaction; PostgreSQL hands back what it claimed.
   */
  settle(outcomes: Outcomes, claim: ClaimRequest | null, now: Date): Promise<ClaimedTask[]>;

  /** STARTED → COMPLETED for each attempt still held; unblocks dependants. */
  complete(items: readonly Completion[], now: Date): Promise<void>;

  /** STARTED → WAITING (retryAt) or FAILED / CANCELLED with the cascade to dependants. */
  fail(items: readonly Failure[], now: Date): Promise<void>;

  /**
   * Extends the leases of these attempts by `leaseMs` from the store's clock; says which of them
   * were cancelled and which are no longer held.
   */
  renew(refs: readonly AttemptRef[], leaseMs: number): Promise<RenewResult>;

  /** STARTED → WAITING without counting the attempt (graceful stop). */
  release(refs: readonly AttemptRef[], now: Date): Promise<void>;

  /**
   * Returns tasks whose lease expired to WAITING (the attempt stays counted), or FAILED when
   * no attempt is left. Returns how many were rescued. Expiry is judged by the store's clock, never
   * the caller's: PostgreSQL's own (so hosts whose clocks differ agree), SQLite's host clock (every
   * process using the file runs on that host). `now` stamps finished_at and run_at only.
   */
  rescueExpired(now: Date): Promise<number>;

  /** WAITING → CANCELLED (with cascade); STARTED → cancel requested. Returns the task after. */
  cancel(id: number, now: Date): Promise<Task>;

  /** FAILED | CANCELLED → WAITING with a fresh attempt budget, with the dependants it took down. */
  retry(id: number, now: Date): Promise<Task>;

  /** Earliest runAt among claimable-later tasks (WAITING, unblocked), to sleep until it. */
  nextRunAt(queues: readonly string[] | null): Promise<Date | null>;

  /**
   * Creates or updates a schedule by name. A changed rule restarts its fire times from `now` (no
   * catch-up of the old rule); resuming a paused schedule does too.
   */
  saveSchedule(definition: ScheduleDefinition, now: Date): Promise<Schedule>;
  /** Removes a schedule; its past tasks stay. Returns false if there was none. */
  removeSchedule(name: string): Promise<boolean>;
  getSchedule(name: string): Promise<Schedule | null>;
  listSchedules(): Promise<Schedule[]>;
  /**
   * Fires one occurrence atomically: claims the (schedule, due time) tick, applies the overlap policy,
   * adds the task and records it on the schedule. Exactly one caller in a cluster gets `fired`.
   */
  fireSchedule(fire: ScheduleFire, now: Date): Promise<FireOutcome>;
  /**
   * Records occurrences skipped by the catch-up policy and moves lastDueAt past them; only the first
   * caller for `servedUntil` records (lastDueAt still before it), so a cluster counts them once.
   */
  skipSchedule(skip: ScheduleSkip, now: Date): Promise<void>;
  /** Deletes fire records older than `before` (they are never needed again once served). */
  pruneTicks(before: Date): Promise<number>;

  /** Answers when the database does (the daemon's modules wait for it before they run). */
  ping(): Promise<void>;
  /**
   * Deletes finished tasks (COMPLETED, FAILED, CANCELLED) that finished before `before`, in small
   * batches (each its own short transaction, so writers and claims keep flowing); returns how many.
   */
  pruneFinished(before: Date): Promise<number>;
  /**
   * Deletes (or counts, dryRun) finished tasks per status and age, in batches of a few hundred rows,
   * each its own short transaction. A finished task that a WAITING or STARTED task names as a
   * prerequisite is kept until that dependant has finished too.
   */
  prune(request: PruneRequest): Promise<Record<PrunableStatus, number>>;
  /** Reserves `count` fresh task ids (never handed out by an insert) for follow-ups. */
  reserveTaskIds(count: number): Promise<number[]>;
  /** The id of the WAITING or STARTED task holding this unique key, if any. */
  liveTaskId(uniqueKey: string): Promise<number | null>;
  /** Records a daemon's heartbeat (insert or update by id). */
  heartbeat(daemon: DaemonHeartbeat): Promise<void>;
  /** Removes a daemon's heartbeat (it stopped). */
  removeDaemon(id: string): Promise<void>;
  /** Every daemon that has a heartbeat, newest first. */
  listDaemons(): Promise<DaemonHeartbeat[]>;

  // --- Task queries, delete, stats and progress (the admin page, the HTTP API; src/store/*/queries.ts) ---
  /** One page of tasks in keyset order: those strictly after `after` (the previous page's last row). */
  queryTasks(page: TaskPageRequest): Promise<TaskListItem[]>;
  /** How many tasks match, counting no further than `cap` (so a count over millions stays cheap). */
  countTasks(filter: TaskQueryFilter, cap: number): Promise<number>;
  /**
   * Deletes a task. Refuses a STARTED one (InvalidTransitionError: cancel it first) and one that a
   * WAITING or STARTED task names as prerequisite (DependantsExistError naming them).
   */
  deleteTask(id: number): Promise<void>;
  /** The tasks that name `id` among their prerequisites, by id. */
  dependants(id: number): Promise<TaskListItem[]>;
  /** Completions and failures per minute of the hour before `now` (zero-filled), and the latest failures. */
  taskActivity(now: Date): Promise<Pick<TaskStats, 'perMinute' | 'latestFailures'>>;
  /** The lowest and highest task id (0 and 0 when there is none): the range countByQueue walks. */
  taskIdRange(): Promise<{ min: number; max: number }>;
  /** Tasks by queue and status among ids in (afterId, upToId]: a step of counting a large table. */
  countByQueue(afterId: number, upToId: number): Promise<QueueCount[]>;
  /** Stores the attempt's latest progress; false (nothing written) when that attempt no longer runs. */
  setProgress(ref: AttemptRef, progress: TaskProgress): Promise<boolean>;
  /** When a daemon last stopped cleanly (its heartbeat removed), or null. */
  lastDaemonStop(): Promise<Date | null>;

  // --- Notifications (src/store/*/notifications.ts). A task_failed notification is written by
  // `fail`/`settle` and `rescueExpired` in the transaction that ends its task FAILED.
  /** Writes delivery rows for notifications not routed yet, one per channel `route` names; returns how many it routed. */
  routeNotifications(route: (n: Notification) => readonly string[], now: Date): Promise<number>;
  /** Leases due deliveries of one channel to `owner` (see DeliveryClaim); never to two callers at once. */
  claimDeliveries(claim: DeliveryClaim): Promise<ClaimedDelivery[]>;
  /** These deliveries were sent: never claimed again. */
  markDelivered(refs: readonly DeliveryRef[], now: Date): Promise<void>;
  /** These deliveries failed: their lease is handed back and they wait until `retryAt`. */
  deferDeliveries(refs: readonly DeliveryRef[], owner: string, error: string, retryAt: Date): Promise<void>;
  /** Opens and closes per-host daemon outages, writing each alert once in a cluster (see DaemonCheck). */
  checkDaemons(request: DaemonCheckRequest): Promise<DaemonCheck>;
  /** Newest first, with each channel's delivery state (for inspection and tests). */
  listNotifications(limit: number): Promise<NotificationRecord[]>;
  /** Deletes notifications older than `before` with nothing left to send; returns how many. */
  pruneNotifications(before: Date): Promise<number>;

  /** Wake-ups and cancel requests, from this process and (where the engine can) from others. */
  subscribe(listener: (event: StoreEvent) => void): () => void;

  // --- Web authentication (src/store/*/users.ts). Only hashes are stored: the client hashes a
  // password, token, session id or login secret before any of these calls.
  /** False when a user of that name exists. */
  addUser(user: UserRecord): Promise<boolean>;
  getUser(name: string): Promise<UserRecord | null>;
  listUsers(): Promise<UserRecord[]>;
  /** Removes the user and ends their sessions; false if there was none. */
  removeUser(name: string): Promise<boolean>;
  addToken(token: Omit<TokenRecord, 'id' | 'lastUsedAt'>): Promise<TokenRecord>;
  findToken(tokenHash: string): Promise<TokenRecord | null>;
  touchToken(id: number, at: Date): Promise<void>;
  listTokens(): Promise<TokenRecord[]>;
  /** Revokes (deletes) a token; false if there was none. */
  removeToken(id: number): Promise<boolean>;
  /** Stores a session (and drops expired ones). */
  addSession(session: SessionRecord): Promise<void>;
  /** The session if it exists and has not expired at `now`. */
  findSession(idHash: string, now: Date): Promise<SessionRecord | null>;
  removeSession(idHash: string): Promise<void>;
  addLoginLink(secretHash: string, createdAt: Date, expiresAt: Date): Promise<void>;
  /** Consumes a one-time login link: true once for an unexpired one, false ever after. */
  useLoginLink(secretHash: string, now: Date): Promise<boolean>;
  countPrincipals(): Promise<{ users: number; tokens: number }>;

  close(): Promise<void>;
}

/** A task's position in a keyset order: its id, and the sort column's value in ms (null for 'id'). */
export interface TaskKey {
  id: number;
  value: number | null;
}

export interface QueueCount {
  queue: string;
  status: TaskStatus;
  n: number;
}

export interface TaskPageRequest {
  filter: TaskQueryFilter;
  sort: TaskSort;
  order: SortOrder;
  limit: number;
  after: TaskKey | null;
  /** Only ids above this (exclusive): the client scans a large table in windows of ids (see runPage). */
  idAbove?: number;
  /** Only ids below this (exclusive). */
  idBelow?: number;
}

// --- Notifications: the store's side (see src/model/notification.ts for the rest).
export interface DaemonCheckRequest {
  now: Date;
  /** A host whose newest heartbeat is older than this is down. */
  staleMs: number;
  /** Who is checking (host:pid and role), recorded on the outage. */
  by: string;
}

export interface NotificationRecord extends Notification {
  deliveries: {
    channel: string;
    state: 'pending' | 'sent';
    mode: DeliveryMode | null;
    attempts: number;
    lastError: string | null;
    sentAt: Date | null;
  }[];
}

export const SCHEMA_VERSION_KEY = 'schema_version';

/** Wraps a subscriber so an error in it is reported, never thrown into the store call that emitted. */
export function guardListener(listener: (event: StoreEvent) => void): (event: StoreEvent) => void {
  return (event) => {
    try {
      listener(event);
    } catch (err) {
      console.error('taskmill: a store event listener threw; the event was still delivered to the others', err);
    }
  };
}
