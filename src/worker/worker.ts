// The claim loop: claims due tasks, runs their handlers, records outcomes, renews leases, rescues
// tasks of dead workers, and stops without losing any.
//
// A slot is freed the moment its handler settles. Outcomes queue up and a "pump" writes them in the
// background, in the same store call (one transaction) that claims the next tasks, so a busy worker
// costs one round trip per batch rather than three per task. Where the engine gains from it
// (PostgreSQL: another connection, another server process), a second call runs while the first is
// under way, so the database works on one batch while this process runs the other.
// Until its outcome is written a task's lease is held and renewed, so a database that is away for a
// while loses nothing: the write is retried with back-off, and a row the database refuses is isolated
// so the rest of its batch lands.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { MAX_TIMER_MS } from '../config/duration.js';
import { DEFAULT_LIMIT_BYTES } from '../config/size.js';
import { type Clock, type Random, systemClock } from '../model/clock.js';
import { TaskTimeoutError } from '../model/errors.js';
import { type Logger, silentLogger } from '../model/logger.js';
import type { LockInfo } from '../model/task.js';
import type { AttemptRef, ClaimedTask, ClaimRequest, Completion, Failure, Outcomes, Store } from '../store/store.js';
import { retryDelay } from './backoff.js';
import { AttemptFollowUps, attemptEnded, type PrepareTask } from './followups.js';
import { contextTask, type FollowUpOptions, type HandlerRegistry, type TaskContext } from './handlers.js';
import { DEFAULT_ISOLATION, Isolation, type IsolationOptions } from './isolation/isolation.js';
import { OutputBuffer, runWithOutput } from './output.js';
import { ProgressWriter } from './progress.js';
import { emitOutcome, type TaskEventListener, type TaskEventName, TaskEvents } from '../notify/events.js';

export interface WorkerOptions {
  store: Store;
  handlers: HandlerRegistry;
  concurrency: number;
  /** How often an idle worker looks for due tasks without being woken. */
  pollIntervalMs: number;
  leaseMs: number;
  queues?: readonly string[] | null;
  /** Stop claiming after this many tasks (the daemon then starts a fresh worker). */
  maxTasks?: number;
  /**
   * How ctx.add validates a follow-up (the client's checks, same errors). Follow-ups are written with
   * their parent's completion, in the same transaction (see followups.ts).
   */
  prepare?: PrepareTask;
  /** Largest result (JSON text, bytes) and output of one attempt (bytes); default 1 MiB each. */
  limits?: { resultBytes: number; outputBytes: number };
  /** Handlers in child processes (worker.isolation and the pool's limits); off unless a handler asks. */
  isolation?: IsolationOptions;
  clock?: Clock;
  random?: Random;
  logger?: Logger;
  /** In-process task events (the client passes its own, so `mill.events` hears its workers). */
  events?: TaskEvents;
}

export interface StopOptions {
  /** How long to wait for running tasks before releasing them. */
  timeoutMs: number;
}

/**
 * How far ahead a worker claims: the tasks its slots will finish in this long, judged by the mean
 * handler time (at most a full claim per call the store may have under way). Fast tasks then travel
 * in larger batches; slow ones are not held back from other workers in a buffer.
 */
const CLAIM_AHEAD_MS = 10;
/**
 * The most one call claims is five times the slots, or this many if more: very fast tasks then cost
 * one round trip per 200 (on PostgreSQL a drain of no-op tasks ran 30% faster than with 50 per call),
 * while the claim-ahead rule above keeps slower tasks out of the buffer.
 */
const MIN_CLAIM_BATCH = 200;
/** After a stop, how long unwritten outcomes are retried before their leases are left to expire. */
const FINAL_FLUSH_MS = 5_000;

interface Running {
  task: ClaimedTask;
  /** Made when the handler first reads ctx.signal: most handlers never do. */
  controller: AbortController | null;
  abortReason: unknown;
  output: OutputBuffer;
  cancelTimer: (() => void) | null;
  startedAt: number;
  settled: boolean;
  cancelled: boolean;
  /** Given up by the worker (released on stop, or its lease lost): it records no outcome. */
  abandoned: boolean;
  /** Made on the first ctx.progress call. */
  progress?: ProgressWriter;
  /** Tasks its handler added (ctx.add), made on the first call: written only with a completion. */
  followUps: AttemptFollowUps | null;
}

/** `task` is there for the events emitted once the outcome is written. */
type Outcome = ({ kind: 'completion'; item: Completion } | { kind: 'failure'; item: Failure }) & { task?: ClaimedTask };

class StopSignal extends Error {
  constructor() {
    super('the worker is stopping; the task goes back to WAITING');
  }
}

class LeaseLost extends Error {
  constructor() {
    super('this worker no longer holds the task (its lease expired and another worker took it, or it ended elsewhere)');
  }
}

export class Worker {
  readonly id: string;
  private readonly lock: LockInfo;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: Logger;
  private readonly limits: { resultBytes: number; outputBytes: number };
  private readonly running = new Map<number, Running>();
  /** Isolated handlers: the pool of child processes (src/worker/isolation/). */
  readonly isolation: Isolation;
  /** Claimed, leased, not started yet. */
  private buffer: ClaimedTask[] = [];
  /** Outcomes not yet written, in order; their attempts stay leased until they are. */
  private pending: Outcome[] = [];
  private readonly unwritten = new Map<number, AttemptRef>();
  /** Store calls the pump may have under way at once (Store.parallelSettles). */
  private readonly maxLanes: number;
  /** The pump's loops running now, each with at most one store call under way. */
  private readonly lanes = new Set<Promise<void>>();
  /** Of the calls under way: tasks they may claim, and outcomes they carry. */
  private claimingLimit = 0;
  private writingCount = 0;
  private pumpQueued = false;
  private wantClaim = true;
  /** The last claim came back full: more may be due than one call takes, so two may claim at once. */
  private backlog = false;
  /** Counts wake-ups, so a short claim can tell whether a task may have come since it began. */
  private wakeSeq = 0;
  private pausedUntil = 0;
  private pauseTimer: NodeJS.Timeout | null = null;
  private writeErrors = 0;
  private claimErrors = 0;
  private started = false;
  private stopping = false;
  private renewing = false;
  private lookingAhead = false;
  private wakeTimer: NodeJS.Timeout | null = null;
  private timers: NodeJS.Timeout[] = [];
  private renewTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private claimedCount = 0;
  private stopResult: Promise<{ released: number }> | null = null;
  private shortenStop: ((timeoutMs: number) => void) | null = null;
  private idleWaiters: (() => void)[] = [];
  private drainWaiters: (() => void)[] = [];
  /** Exponentially weighted mean handler time, ms: decides how far ahead to claim. */
  private meanTaskMs = Number.POSITIVE_INFINITY;
  /** Tasks finished by this worker (any outcome). */
  processed = 0;
  // --- Events: completed, failed (for good), retried, cancelled; emitted once the outcome is written.
  readonly events: TaskEvents;

  constructor(private readonly options: WorkerOptions) {
    this.id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.lock = { host: hostname(), pid: process.pid, workerId: this.id };
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = options.logger ?? silentLogger;
    this.limits = options.limits ?? { resultBytes: DEFAULT_LIMIT_BYTES, outputBytes: DEFAULT_LIMIT_BYTES };
    this.isolation = new Isolation(options.isolation ?? DEFAULT_ISOLATION, {
      tasksDir: options.handlers.tasksDir,
      size: options.concurrency,
      logger: this.log,
    });
    this.events = options.events ?? new TaskEvents(options.logger);
    this.maxLanes = Math.max(1, options.store.parallelSettles);
  }

  /** Subscribes to a task event (`worker.on('failed', (e) => report(e.error))`); returns the unsubscribe. */
  on<K extends TaskEventName>(event: K, listener: TaskEventListener<K>): () => void {
    return this.events.on(event, listener);
  }

  private announce(outcomes: readonly Outcome[]): void {
    for (const o of outcomes) {
      if (!o.task) continue;
      emitOutcome(this.events, o.kind === 'completion' ? { task: o.task, completion: o.item } : { task: o.task, failure: o.item }, this.options.logger);
    }
  }

  get activeCount(): number {
    return this.running.size;
  }

  /** The tasks running now, oldest claim first. */
  runningTasks(): ClaimedTask[] {
    return [...this.running.values()].map((r) => r.task);
  }

  /** True once `maxTasks` tasks were claimed: the worker claims no more. */
  get exhausted(): boolean {
    return this.options.maxTasks !== undefined && this.claimedCount >= this.options.maxTasks;
  }

  /** Starts claiming; idempotent. */
  start(): void {
    if (this.started) return;
    this.started = true;
    const { store, leaseMs, pollIntervalMs } = this.options;
    this.unsubscribe = store.subscribe((event) => {
      if (event.kind === 'wake') this.wake();
      else if (event.kind === 'cancel') {
        // Without an id, some task was cancelled elsewhere: the lease renewal reports which are ours.
        if (event.id === null) void this.renewLeases();
        else this.cancelRunning(event.id);
      }
    });
    this.timers.push(
      setInterval(() => this.wake(), pollIntervalMs),
      setInterval(() => void this.rescue(), Math.max(100, Math.floor(leaseMs / 2))),
    );
    // Renewals go on while a stop waits for running tasks and writes their outcomes: a lease that
    // lapsed then would let another worker start a task that still runs here.
    this.renewTimer = setInterval(() => void this.renewLeases(), Math.max(50, Math.floor(leaseMs / 3)));
    void this.rescue();
    this.wake();
    // Isolation: with worker.isolation set, the first handler process starts now.
    this.isolation.start();
  }

  /** Resolves when nothing runs, nothing is buffered or unwritten, and no claim is under way. */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops claiming, waits up to `timeoutMs` for running tasks, then releases the rest to WAITING
   * without counting their attempt. Idempotent; leaves no timer or listener behind.
   */
  stop({ timeoutMs }: StopOptions): Promise<{ released: number }> {
    if (this.stopResult) {
      // A second stop (a forced one) can only shorten the wait of the first.
      this.shortenStop?.(timeoutMs);
      return this.stopResult;
    }
    this.stopResult = this.stopNow(timeoutMs);
    return this.stopResult;
  }

  private get idle(): boolean {
    return this.running.size === 0 && this.buffer.length === 0 && this.pending.length === 0 && this.lanes.size === 0 && !this.pumpQueued;
  }

  private async stopNow(timeoutMs: number): Promise<{ released: number }> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    // Still subscribed: a cancel of a task that runs while the stop waits arrives at once (wake-ups
    // are ignored from now on, see wake()).

    // Claimed but never started: back at once, the attempt not counted.
    const unstarted = this.buffer;
    this.buffer = [];
    let released = await this.releaseSafely(unstarted.map((t) => ref(t)));

    let timer: NodeJS.Timeout | undefined;
    let deadlineAt = Date.now() + timeoutMs;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      this.shortenStop = (ms) => {
        deadlineAt = Math.min(deadlineAt, Date.now() + ms);
        clearTimeout(timer);
        timer = setTimeout(resolve, Math.max(0, deadlineAt - Date.now()));
      };
    });
    await Promise.race([this.drained(), deadline]);
    clearTimeout(timer);
    this.shortenStop = null;

    const unfinished = [...this.running.values()];
    for (const entry of unfinished) this.abandon(entry, new StopSignal());
    released += await this.releaseSafely(unfinished.map((r) => ref(r.task)));
    if (unfinished.length > 0) this.log.warn('released unfinished tasks back to WAITING', { ids: unfinished.map((r) => r.task.id) });

    // Isolation: every handler process ends (those of released tasks were told when they were
    // aborted), while the outcomes are written.
    const closing = this.isolation.close();

    // A claim that was under way returns its tasks to the pump, which hands them back (see pump).
    await this.flushFinal();
    await closing;
    if (this.pauseTimer) clearTimeout(this.pauseTimer);
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    // Stopped: nothing more will happen, whatever was left unwritten.
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
    return { released };
  }

  /** Writes what is still unwritten, for at most FINAL_FLUSH_MS; after that the leases expire and the tasks run again. */
  private async flushFinal(): Promise<void> {
    const until = Date.now() + FINAL_FLUSH_MS;
    // A store call may hang (a network cut without a reset): the wait is bounded, the call finishes on its own.
    const bounded = async (work: Promise<void>) => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([work, new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, until - Date.now()))))]);
      clearTimeout(timer);
    };
    while ((this.lanes.size > 0 || this.pending.length > 0) && Date.now() < until) {
      if (this.lanes.size > 0) {
        await bounded(this.pumpDone());
        continue;
      }
      this.pausedUntil = 0;
      await bounded(this.pump());
      if (this.pending.length > 0) await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, until - Date.now()))));
    }
    if (this.pending.length > 0) {
      this.log.error('could not record some outcomes before stopping; those tasks run again once their leases expire', {
        ids: this.pending.map((o) => o.item.id),
      });
    }
  }

  private async releaseSafely(refs: AttemptRef[]): Promise<number> {
    if (refs.length === 0) return 0;
    try {
      await this.options.store.release(refs, this.clock.now());
      return refs.length;
    } catch (err) {
      // Not lost: their leases expire and any worker returns them to WAITING (the attempt then counts).
      this.log.error('handing tasks back failed; they return once their leases expire', {
        error: (err as Error).message,
        ids: refs.map((r) => r.id),
      });
      return 0;
    }
  }

  private drained(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Asks for a claim soon; many wake-ups in a burst cost one claim. */
  private wake(): void {
    if (this.stopping) return;
    this.wantClaim = true;
    this.wakeSeq++;
    this.schedulePump();
  }

  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    // Tasks ending in the same turn of the event loop join one batch.
    setImmediate(() => {
      this.pumpQueued = false;
      void this.pump();
    });
  }

  /** How many tasks the next claim may take, beside the outcomes of the calls under way and about to go. */
  private claimRoom(): number {
    if (this.stopping || this.exhausted) return 0;
    // Outcomes left unwritten by earlier calls (the database is away) stop new claims: nothing piles up.
    if (this.unwritten.size - this.writingCount >= this.options.concurrency * 4) return 0;
    const { concurrency } = this.options;
    // With two calls under way, the tasks one claimed run while the other is in the database.
    const batch = Math.max(MIN_CLAIM_BATCH, 5 * concurrency);
    const prefetch = Math.min(batch * this.maxLanes - concurrency, Math.floor((concurrency * CLAIM_AHEAD_MS) / this.meanTaskMs));
    const room = Math.min(batch, concurrency + prefetch - this.running.size - this.buffer.length - this.claimingLimit);
    const left = this.options.maxTasks === undefined ? room : Math.min(room, this.options.maxTasks - this.claimedCount - this.claimingLimit);
    return Math.max(0, left);
  }

  /**
   * Writes pending outcomes and claims until there is nothing to do: one loop ("lane") per store call
   * under way, a second one only while the first is in the database and there is work for another.
   */
  private pump(): Promise<void> {
    if (this.lanes.size < this.maxLanes && (this.lanes.size === 0 || this.hasWork())) {
      const lane: Promise<void> = this.pumpLoop().finally(() => {
        this.lanes.delete(lane);
        this.notifyIdle();
      });
      this.lanes.add(lane);
    }
    return this.pumpDone();
  }

  /** Resolves when no lane runs any more (a lane started meanwhile is waited for too). */
  private async pumpDone(): Promise<void> {
    while (this.lanes.size > 0) await Promise.all([...this.lanes]);
  }

  /** Something another lane could take now: outcomes to write, or room to claim into. */
  private hasWork(): boolean {
    if (Date.now() < this.pausedUntil) return false;
    return this.pending.length > 0 || (this.mayClaim() && this.claimRoom() > 0);
  }

  /**
   * Whether a call may claim now: one claim at a time until one comes back full. A wake-up on an idle
   * worker (one task added) costs one claim, not one per lane.
   */
  private mayClaim(): boolean {
    return this.wantClaim && (this.claimingLimit === 0 || this.backlog);
  }

  private async pumpLoop(): Promise<void> {
    // Joins the pump's turn: handlers that settled in this turn are in `pending` by then.
    await Promise.resolve();
    for (;;) {
      const paused = Date.now() < this.pausedUntil;
      const outcomes = paused ? [] : this.pending.splice(0);
      this.writingCount += outcomes.length;
      const room = this.claimRoom();
      const claim: ClaimRequest | null =
        room > 0 && this.mayClaim() && !paused
          ? { lock: this.lock, queues: this.options.queues ?? null, limit: room, now: this.clock.now(), leaseMs: this.options.leaseMs }
          : null;
      if (outcomes.length === 0 && !claim) break;
      const wakeSeq = this.wakeSeq;
      this.claimingLimit += claim?.limit ?? 0;
      // More work than this call takes (room left to claim into): another lane may start beside it.
      if (this.lanes.size < this.maxLanes && this.hasWork()) this.schedulePump();
      let claimed: ClaimedTask[];
      try {
        claimed = await this.options.store.settle(split(outcomes), claim, this.clock.now());
      } catch (err) {
        await this.recover(outcomes, err, claim !== null);
        continue;
      } finally {
        this.claimingLimit -= claim?.limit ?? 0;
        this.writingCount -= outcomes.length;
      }
      this.writeErrors = 0;
      for (const o of outcomes) this.unwritten.delete(o.item.id);
      this.announce(outcomes);
      if (claim) {
        this.claimErrors = 0;
        this.claimedCount += claimed.length;
        this.backlog = claimed.length >= claim.limit;
        if (this.stopping) {
          // stop() began while this claim was under way: hand them back, never start them.
          await this.releaseSafely(claimed.map((t) => ref(t)));
        } else {
          for (const t of claimed) this.buffer.push(t);
          this.fillSlots();
        }
        // A short claim: nothing more is due, unless a wake-up came since it began.
        if (claimed.length < claim.limit) {
          if (this.wakeSeq === wakeSeq) this.wantClaim = false;
          void this.lookAhead();
        }
      }
      // Handlers that settle now (a no-op settles within this turn) join the next batch.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * After a failed store call: outcomes are retried with back-off and kept leased meanwhile. When the
   * database answers but refused the batch, the offending row is found by halving, so the others are
   * written; that one ends FAILED saying why.
   */
  private async recover(outcomes: Outcome[], err: unknown, claiming: boolean): Promise<void> {
    const message = describe(err);
    let left = outcomes;
    if (outcomes.length > 0) left = await this.writeAlone(outcomes, err);
    if (left.length > 0 || (claiming && outcomes.length === 0)) {
      const errors = left.length > 0 ? ++this.writeErrors : ++this.claimErrors;
      const pause = Math.min(30_000, (left.length > 0 ? 250 : 1_000) * 2 ** (errors - 1));
      this.log.error(left.length > 0 ? 'recording task outcomes failed; trying again later' : 'claiming tasks failed; trying again later', {
        error: message,
        retryInMs: pause,
        ...(left.length > 0 ? { ids: left.map((o) => o.item.id) } : {}),
      });
      this.pending.unshift(...left);
      this.pausedUntil = Date.now() + pause;
      if (this.pauseTimer) clearTimeout(this.pauseTimer);
      this.pauseTimer = setTimeout(() => {
        this.pauseTimer = null;
        this.schedulePump();
      }, pause);
    }
  }

  /**
   * Writes `outcomes` without a claim (the claim may have been what failed); returns those still
   * unwritten. Only when the database refuses the data itself (see isDataError) is the batch halved
   * to find the bad row; any other error (a timeout, a deadlock, the database away) leaves them all
   * to be retried, since a successful attempt must never be recorded as FAILED for a passing fault.
   */
  private async writeAlone(outcomes: Outcome[], first: unknown): Promise<Outcome[]> {
    let err = first;
    try {
      await this.options.store.settle(split(outcomes), null, this.clock.now());
      for (const o of outcomes) this.unwritten.delete(o.item.id);
      this.announce(outcomes);
      return [];
    } catch (e) {
      err = e;
    }
    if (!isDataError(err) || !(await this.reachable())) return outcomes;
    return this.isolate(outcomes, err);
  }

  /** `outcomes` were refused as data: halves them until the bad row is alone, and ends that one FAILED. */
  private async isolate(outcomes: Outcome[], err: unknown): Promise<Outcome[]> {
    const now = () => this.clock.now();
    if (outcomes.length === 1) {
      const bad = outcomes[0] as Outcome;
      const message = describe(err);
      const replacement: Failure = {
        ...attemptOf(bad.item),
        error: `the database refused this attempt's outcome (${message}); its result and output were dropped`,
        errorStack: null,
        output: [],
        retryAt: null,
      };
      try {
        await this.options.store.settle({ completions: [], failures: [replacement] }, null, now());
        this.unwritten.delete(bad.item.id);
        this.log.error('the database refused a task outcome; the task ended FAILED', { id: bad.item.id, error: message });
        return [];
      } catch (again) {
        if (!isDataError(again)) return outcomes;
        // Not even the failure can be written: give the attempt up; its lease expires and it runs again.
        this.unwritten.delete(bad.item.id);
        this.log.error('the database refused a task outcome and its failure; the task runs again once its lease expires', {
          id: bad.item.id,
          error: describe(again),
        });
        return [];
      }
    }
    const half = Math.ceil(outcomes.length / 2);
    const left: Outcome[] = [];
    for (const part of [outcomes.slice(0, half), outcomes.slice(half)]) {
      try {
        await this.options.store.settle(split(part), null, now());
        for (const o of part) this.unwritten.delete(o.item.id);
        this.announce(part);
      } catch (e) {
        if (isDataError(e) && (await this.reachable())) left.push(...(await this.isolate(part, e)));
        else left.push(...part);
      }
    }
    return left;
  }

  private async reachable(): Promise<boolean> {
    try {
      await this.options.store.ping();
      return true;
    } catch {
      return false;
    }
  }

  /** Sets a timer for the earliest future task, so it starts on time rather than at the next poll. */
  private async lookAhead(): Promise<void> {
    if (this.lookingAhead || this.stopping) return;
    this.lookingAhead = true;
    try {
      const next = await this.options.store.nextRunAt(this.options.queues ?? null);
      if (!next || this.stopping) return;
      const delay = next.getTime() - this.clock.now().getTime();
      if (delay <= 0) return this.wake();
      if (delay < this.options.pollIntervalMs) {
        if (this.wakeTimer) clearTimeout(this.wakeTimer);
        this.wakeTimer = setTimeout(() => this.wake(), delay);
      }
    } catch (err) {
      this.log.error('looking for the next due task failed', { error: (err as Error).message });
    } finally {
      this.lookingAhead = false;
    }
  }

  private fillSlots(): void {
    while (this.buffer.length > 0 && this.running.size < this.options.concurrency && !this.stopping) {
      this.execute(this.buffer.shift() as ClaimedTask);
    }
  }

  private execute(task: ClaimedTask): void {
    const entry: Running = {
      task,
      controller: null,
      abortReason: undefined,
      output: new OutputBuffer(),
      cancelTimer: null,
      startedAt: performance.now(),
      settled: false,
      cancelled: task.cancelRequested,
      abandoned: false,
      followUps: null,
    };
    this.running.set(task.id, entry);
    entry.cancelTimer = longTimeout(() => this.abort(entry, new TaskTimeoutError(task.timeoutMs)), task.timeoutMs);
    if (entry.cancelled) this.abort(entry, new Error('the task was cancelled'));
    else void this.runHandler(entry);
  }

  private async runHandler(entry: Running): Promise<void> {
    const { task } = entry;
    let value: unknown;
    try {
      // Isolation: with worker.isolation set the handler is imported in a child process only.
      const handler = this.isolation.everyTask ? null : await this.options.handlers.load(task.name);
      if (!handler && !this.isolation.everyTask) {
        throw new Error(
          `no handler for task "${task.name}" in ${this.options.handlers.tasksDir} any more; restore its file, then retry the task`,
        );
      }
      if (entry.settled) return;
      const ctx = this.context(entry);
      const mode = this.isolation.modeFor(handler?.options.isolation);
      if (handler && mode === 'none') {
        // A handler that ignores its signal cannot hold the slot: abort() settles the entry at once,
        // and whatever the handler does later is ignored.
        value = runWithOutput(entry.output, () => handler.run(task.payload, ctx));
        if (isThenable(value)) value = await value;
      } else {
        value = await this.isolation.run(task, ctx, entry.output, mode);
      }
      // ctx.add calls the handler did not await belong to this attempt too: their outcome first.
      if (entry.followUps) await entry.followUps.whenSettled();
    } catch (err) {
      this.settle(entry, err instanceof Error ? err : new Error(String(err)), undefined);
      return;
    }
    this.settle(entry, null, value);
  }

  private context(entry: Running): TaskContext {
    const { task } = entry;
    const prepare = this.options.prepare;
    return {
      task: contextTask(task),
      get signal(): AbortSignal {
        if (!entry.controller) {
          entry.controller = new AbortController();
          if (entry.abortReason !== undefined) entry.controller.abort(entry.abortReason);
        }
        return entry.controller.signal;
      },
      log: (...args: unknown[]) => entry.output.push('log', args),
      add: async (name: string, payload: unknown = {}, options: FollowUpOptions = {}) => {
        if (!prepare) throw new Error('this worker cannot add tasks (no prepare function given)');
        if (entry.settled) throw attemptEnded(task.id);
        entry.followUps ??= new AttemptFollowUps(this.options.store, prepare, task.id);
        return entry.followUps.add(name, payload, options);
      },
      progress: (value, message) => {
        entry.progress ??= new ProgressWriter(this.options.store, ref(task), () => this.clock.now(), this.log);
        entry.progress.report(value, message);
      },
    };
  }

  /** Ends the attempt at once (timeout, cancel): the signal fires and the slot is free. */
  private abort(entry: Running, reason: Error): void {
    if (entry.settled) return;
    entry.abortReason = reason;
    entry.controller?.abort(reason);
    this.settle(entry, reason, undefined);
  }

  /** Gives a task up without an outcome (stop, or a lost lease): its handler is told through its signal. */
  private abandon(entry: Running, reason: Error): void {
    entry.abandoned = true;
    this.abort(entry, reason);
  }

  private settle(entry: Running, error: Error | null, value: unknown): void {
    if (entry.settled) return;
    entry.settled = true;
    entry.cancelTimer?.();
    entry.progress?.close();
    // No ctx.add from now on, whatever the outcome (an abandoned attempt adds nothing either).
    entry.followUps?.end();
    const { task } = entry;
    // The task may run here again by now (this attempt lost its lease, the next was claimed here).
    if (this.running.get(task.id) === entry) this.running.delete(task.id);
    this.processed++;
    const ms = performance.now() - entry.startedAt;
    this.meanTaskMs = this.meanTaskMs === Number.POSITIVE_INFINITY ? ms : this.meanTaskMs * 0.9 + ms * 0.1;
    if (!entry.abandoned) {
      const outcome = error === null ? this.completion(entry, value) : this.failure(entry, error);
      this.pending.push({ ...outcome, task });
      this.unwritten.set(task.id, attemptOf(outcome.item));
    }
    this.fillSlots();
    if (!this.stopping || this.pending.length > 0) this.schedulePump();
    if (this.running.size === 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  private completion(entry: Running, value: unknown): Outcome {
    let json: string | undefined;
    try {
      json = value === undefined ? 'null' : JSON.stringify(value);
    } catch (err) {
      return this.failure(entry, new Error(`the handler's return value is not JSON: ${(err as Error).message}`));
    }
    if (json === undefined) return this.failure(entry, new Error('the handler returned a value JSON cannot hold (a function or symbol)'));
    const size = byteSize(json, this.limits.resultBytes);
    if (size > this.limits.resultBytes) {
      return this.failure(
        entry,
        new Error(
          `the handler's result is ${size} bytes of JSON, over the limit of ${this.limits.resultBytes} (limits.result); ` +
            'store large data elsewhere and return a reference to it, or raise the limit',
        ),
      );
    }
    const followUps = entry.followUps?.end() ?? [];
    const item: Completion = { ...ref(entry.task), resultJson: json, output: this.outputOf(entry) };
    // Only when there are some: a completion without follow-ups takes the store's batched path.
    if (followUps.length > 0) item.followUps = followUps;
    return { kind: 'completion', item };
  }

  private failure(entry: Running, error: Error): Outcome {
    const { task } = entry;
    // A failed attempt adds nothing: its follow-ups are dropped (their reserved ids stay unused).
    entry.followUps?.end();
    const final = entry.cancelled || task.attempts >= task.maxAttempts;
    const retryAt = final ? null : new Date(this.clock.now().getTime() + retryDelay(task.attempts, task.backoff, this.random));
    if (!entry.cancelled) this.log.warn('task attempt failed', { id: task.id, name: task.name, error: error.message });
    return {
      kind: 'failure',
      item: {
        ...ref(task),
        error: entry.cancelled ? `cancelled: ${error.message}` : error.message,
        errorStack: error.stack ?? null,
        output: this.outputOf(entry),
        retryAt,
        cancelled: entry.cancelled,
      },
    };
  }

  /** This attempt's lines (behind a marker from the second attempt on), trimmed to limits.output. */
  private outputOf(entry: Running): string[] {
    const own = entry.output.lines;
    const lines = entry.task.attempts > 1 ? [`--- attempt ${entry.task.attempts} ---`, ...own] : own;
    if (lines.length === 0) return lines;
    let total = 0;
    for (const l of lines) total += l.length;
    if (total * 3 <= this.limits.outputBytes) return lines;
    const sizes = lines.map((l) => Buffer.byteLength(l) + 1);
    let bytes = sizes.reduce((a, b) => a + b, 0);
    if (bytes <= this.limits.outputBytes) return lines;
    const fullSize = bytes;
    let cut = 0;
    while (cut < lines.length && bytes > this.limits.outputBytes - 200) bytes -= sizes[cut++] as number;
    return [`… output was ${fullSize} bytes, over the limit of ${this.limits.outputBytes} (limits.output): the first ${cut} lines were dropped`, ...lines.slice(cut)];
  }

  private async renewLeases(): Promise<void> {
    if (this.renewing) return;
    const refs: AttemptRef[] = [];
    const ids = new Set<number>();
    for (const r of this.running.values()) if (!r.settled) refs.push(ref(r.task));
    for (const t of this.buffer) refs.push(ref(t));
    for (const r of refs) ids.add(r.id);
    // One attempt per task: an unwritten outcome of an earlier attempt of a task running again here
    // is stale anyway, and a report of it as lost must not stop the attempt that runs.
    for (const a of this.unwritten.values()) if (!ids.has(a.id)) refs.push(a);
    if (refs.length === 0) return;
    this.renewing = true;
    try {
      const { cancelled, lost } = await this.options.store.renew(refs, this.options.leaseMs);
      for (const id of cancelled) this.cancelRunning(id);
      for (const id of lost) this.lose(id, refs);
    } catch (err) {
      this.log.error('renewing leases failed', { error: (err as Error).message });
    } finally {
      this.renewing = false;
    }
  }

  /** The store says this attempt is not ours any more: stop its handler at once, start it never. */
  private lose(id: number, asked: AttemptRef[]): void {
    const attempt = asked.find((r) => r.id === id)?.attempt;
    const entry = this.running.get(id);
    if (entry && entry.task.attempts === attempt) {
      this.log.warn('lost the lease of a running task; its handler is aborted and its outcome dropped', { id, name: entry.task.name });
      this.abandon(entry, new LeaseLost());
      return;
    }
    const i = this.buffer.findIndex((t) => t.id === id && t.attempts === attempt);
    if (i >= 0) this.buffer.splice(i, 1);
    // An unwritten outcome is left alone: its write names the attempt and changes nothing if it is stale.
  }

  private async rescue(): Promise<void> {
    if (this.stopping) return;
    try {
      const n = await this.options.store.rescueExpired(this.clock.now());
      if (n > 0) this.log.warn('returned tasks of a lost worker to the queue', { count: n });
    } catch (err) {
      this.log.error('rescuing expired leases failed', { error: (err as Error).message });
    }
  }

  private cancelRunning(id: number): void {
    const entry = this.running.get(id);
    if (entry && !entry.cancelled) {
      entry.cancelled = true;
      this.abort(entry, new Error('the task was cancelled'));
      return;
    }
    const queued = this.buffer.find((t) => t.id === id);
    if (queued) queued.cancelRequested = true;
  }

  private notifyIdle(): void {
    if (!this.idle) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

/**
 * The database refused the data itself, not the moment: PostgreSQL's data exceptions, integrity and
 * limit errors (SQLSTATE classes 22, 23, 54), SQLite's constraint, size and type errors.
 */
function isDataError(err: unknown): boolean {
  const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : '';
  return /^(22|23|54)[0-9A-Z]{3}$/.test(code) || /^SQLITE_(CONSTRAINT|TOOBIG|MISMATCH|RANGE)/.test(code);
}

/** A database error's message with its detail (PostgreSQL says there which value it refused). */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const detail = 'detail' in err && typeof err.detail === 'string' ? err.detail : '';
  return detail ? `${err.message}: ${detail}` : err.message;
}

function ref(task: ClaimedTask): AttemptRef {
  return { id: task.id, workerId: task.lockedBy.workerId, attempt: task.attempts };
}

function attemptOf(item: AttemptRef): AttemptRef {
  return { id: item.id, workerId: item.workerId, attempt: item.attempt };
}

function split(outcomes: readonly Outcome[]): Outcomes {
  const completions: Completion[] = [];
  const failures: Failure[] = [];
  for (const o of outcomes) {
    if (o.kind === 'completion') completions.push(o.item);
    else failures.push(o.item);
  }
  return { completions, failures };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** UTF-8 size of `text`; counted only when it might pass `limit` (a UTF-16 unit is at most 3 bytes). */
function byteSize(text: string, limit: number): number {
  return text.length * 3 <= limit ? text.length : Buffer.byteLength(text);
}

/** setTimeout for any delay: past the timer's range (24.8 days) it waits in steps. Returns the cancel. */
function longTimeout(fn: () => void, ms: number): () => void {
  let timer: NodeJS.Timeout;
  const arm = (left: number) => {
    timer = left > MAX_TIMER_MS ? setTimeout(() => arm(left - MAX_TIMER_MS), MAX_TIMER_MS) : setTimeout(fn, left);
  };
  arm(ms);
  return () => clearTimeout(timer);
}
