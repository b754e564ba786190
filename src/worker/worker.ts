// The claim loop: claims due tasks up to `concurrency`, runs their handlers, records the outcome in
// batches, renews leases, rescues tasks of dead workers, and stops without losing any.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { type Clock, type Random, systemClock } from '../model/clock.js';
import { TaskTimeoutError } from '../model/errors.js';
import { type Logger, silentLogger } from '../model/logger.js';
import type { Json, LockInfo, Task } from '../model/task.js';
import type { AttemptRef, Completion, Failure, Store } from '../store/store.js';
import { retryDelay } from './backoff.js';
import { contextTask, type FollowUpOptions, type HandlerRegistry } from './handlers.js';
import { OutputBuffer, runWithOutput } from './output.js';

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
  /** How ctx.add enqueues follow-up tasks (the client's add, validated as any other). */
  enqueue?: (name: string, payload: unknown, options: FollowUpOptions) => Promise<{ id: number }>;
  clock?: Clock;
  random?: Random;
  logger?: Logger;
}

export interface StopOptions {
  /** How long to wait for running tasks before releasing them. */
  timeoutMs: number;
}

interface Running {
  task: Task;
  controller: AbortController;
  /** Set once the worker has given the task up (released on stop); its outcome is then ignored. */
  abandoned: boolean;
  cancelled: boolean;
  done: Promise<void>;
}

class StopSignal extends Error {
  constructor() {
    super('the worker is stopping; the task goes back to WAITING');
  }
}

export class Worker {
  readonly id: string;
  private readonly lock: LockInfo;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: Logger;
  private readonly running = new Map<number, Running>();
  private completions: Completion[] = [];
  private failures: Failure[] = [];
  private flushing: Promise<void> | null = null;
  private claiming = false;
  private claimAgain = false;
  private started = false;
  private stopping = false;
  private wakeTimer: NodeJS.Timeout | null = null;
  private timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | null = null;
  private claimedCount = 0;
  private stopResult: Promise<{ released: number }> | null = null;
  private shortenStop: ((timeoutMs: number) => void) | null = null;
  private claimErrors = 0;
  private wakeQueued = false;
  private pausedUntil = 0;
  private idleWaiters: (() => void)[] = [];
  /** Tasks finished by this worker (any outcome). */
  processed = 0;

  constructor(private readonly options: WorkerOptions) {
    this.id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.lock = { host: hostname(), pid: process.pid, workerId: this.id };
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = options.logger ?? silentLogger;
  }

  get activeCount(): number {
    return this.running.size;
  }

  /** The tasks running now, oldest claim first. */
  runningTasks(): Task[] {
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
      setInterval(() => void this.renewLeases(), Math.max(50, Math.floor(leaseMs / 3))),
      setInterval(() => void this.rescue(), Math.max(100, Math.floor(leaseMs / 2))),
    );
    void this.rescue();
    this.wake();
  }

  /** Resolves when no task is running and none is due, for tests and `work --once`-style use. */
  whenIdle(): Promise<void> {
    if (this.running.size === 0 && !this.claiming) return Promise.resolve();
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

  private async stopNow(timeoutMs: number): Promise<{ released: number }> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.unsubscribe?.();
    this.unsubscribe = null;

    const all = Promise.all([...this.running.values()].map((r) => r.done));
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
    await Promise.race([all, deadline]);
    clearTimeout(timer);
    this.shortenStop = null;
    await this.flush();

    const unfinished = [...this.running.values()];
    for (const r of unfinished) {
      r.abandoned = true;
      r.controller.abort(new StopSignal());
    }
    if (unfinished.length > 0) {
      await this.options.store.release(unfinished.map((r) => ref(r.task, this.id)), this.clock.now());
      this.log.warn('released unfinished tasks back to WAITING', { ids: unfinished.map((r) => r.task.id) });
    }
    this.running.clear();
    return { released: unfinished.length };
  }

  /** After a task ends: tasks ending in the same turn free their slots together, for one claim. */
  private wakeSoon(): void {
    if (this.wakeQueued) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      this.wake();
    });
  }

  /** Asks for a claim soon; many wake-ups in a burst cost one claim. */
  private wake(): void {
    if (this.stopping || Date.now() < this.pausedUntil) return;
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    void this.claimLoop();
  }

  private async claimLoop(): Promise<void> {
    this.claiming = true;
    try {
      do {
        this.claimAgain = false;
        const free = this.options.concurrency - this.running.size;
        const allowance = this.options.maxTasks === undefined ? free : Math.min(free, this.options.maxTasks - this.claimedCount);
        if (allowance <= 0 || this.stopping) break;
        const now = this.clock.now();
        const tasks = await this.options.store.claim({
          lock: this.lock,
          queues: this.options.queues ?? null,
          limit: allowance,
          now,
          leaseMs: this.options.leaseMs,
        });
        this.claimedCount += tasks.length;
        for (const task of tasks) this.execute(task);
        if (tasks.length === allowance) this.claimAgain = true;
        else await this.sleepUntilNextDue();
      } while (this.claimAgain && !this.stopping);
      this.claimErrors = 0;
    } catch (err) {
      // The database may be down: back off (1 s doubling to 30 s) instead of failing at every poll.
      this.claimErrors++;
      const pause = Math.min(30_000, 1_000 * 2 ** (this.claimErrors - 1));
      this.pausedUntil = Date.now() + pause;
      this.log.error('claiming tasks failed; trying again later', { error: (err as Error).message, retryInMs: pause });
    } finally {
      this.claiming = false;
      this.notifyIdle();
    }
  }

  /** Sets a timer for the earliest future task, so it starts on time rather than at the next poll. */
  private async sleepUntilNextDue(): Promise<void> {
    const next = await this.options.store.nextRunAt(this.options.queues ?? null);
    if (!next || this.stopping) return;
    const delay = next.getTime() - this.clock.now().getTime();
    if (delay <= 0) {
      this.claimAgain = true;
      return;
    }
    if (delay < this.options.pollIntervalMs) {
      if (this.wakeTimer) clearTimeout(this.wakeTimer);
      this.wakeTimer = setTimeout(() => this.wake(), delay);
    }
  }

  private execute(task: Task): void {
    const controller = new AbortController();
    const entry: Running = { task, controller, abandoned: false, cancelled: task.cancelRequested, done: Promise.resolve() };
    this.running.set(task.id, entry);
    entry.done = this.runHandler(entry).finally(() => {
      this.running.delete(task.id);
      this.processed++;
      if (!this.stopping) this.wakeSoon();
      this.notifyIdle();
    });
  }

  private async runHandler(entry: Running): Promise<void> {
    const { task, controller } = entry;
    const lines = [...task.output];
    if (task.attempts > 1) lines.push(`--- attempt ${task.attempts} ---`);
    const output = new OutputBuffer(lines);
    const timeout = setTimeout(() => controller.abort(new TaskTimeoutError(task.timeoutMs)), task.timeoutMs);
    try {
      const handler = await this.options.handlers.load(task.name);
      if (!handler) {
        throw new Error(
          `no handler for task "${task.name}" in ${this.options.handlers.tasksDir} any more; restore its file, then retry the task`,
        );
      }
      const ctx = {
        task: contextTask(task),
        signal: controller.signal,
        log: (...args: unknown[]) => output.push('log', args),
        add: async (name: string, payload: unknown = {}, options: FollowUpOptions = {}) => {
          if (!this.options.enqueue) throw new Error('this worker cannot add tasks (no enqueue function given)');
          return (await this.options.enqueue(name, payload, options)).id;
        },
      };
      const aborted = new Promise<never>((_, reject) => {
        if (controller.signal.aborted) reject(controller.signal.reason);
        controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
      });
      // A handler that ignores its signal cannot hold the slot: the race ends the attempt anyway.
      const value = await Promise.race([
        runWithOutput(output, () => Promise.resolve().then(() => handler.run(task.payload, ctx))),
        aborted,
      ]);
      if (entry.abandoned) return;
      this.completions.push({ ...ref(task, this.id), result: toJson(value), output: output.lines });
    } catch (err) {
      if (entry.abandoned) return;
      const error = err instanceof Error ? err : new Error(String(err));
      const final = entry.cancelled || task.attempts >= task.maxAttempts;
      const retryAt = final
        ? null
        : new Date(this.clock.now().getTime() + retryDelay(task.attempts, task.backoff, this.random));
      if (!entry.cancelled) this.log.warn('task attempt failed', { id: task.id, name: task.name, error: error.message });
      this.failures.push({
        ...ref(task, this.id),
        error: entry.cancelled ? `cancelled: ${error.message}` : error.message,
        errorStack: error.stack ?? null,
        output: output.lines,
        retryAt,
        cancelled: entry.cancelled,
      });
    } finally {
      clearTimeout(timeout);
    }
    await this.flush();
  }

  /** Writes the outcomes gathered so far in one batch; callers arriving meanwhile join the next one. */
  private flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => (this.completions.length || this.failures.length ? this.flush() : undefined));
    if (this.completions.length === 0 && this.failures.length === 0) return Promise.resolve();
    this.flushing = (async () => {
      // Let the other handlers finishing in this turn join the batch.
      await new Promise((r) => setImmediate(r));
      const completions = this.completions;
      const failures = this.failures;
      this.completions = [];
      this.failures = [];
      const now = this.clock.now();
      try {
        if (completions.length > 0) await this.options.store.complete(completions, now);
        if (failures.length > 0) await this.options.store.fail(failures, now);
      } catch (err) {
        // The lease will expire and another attempt will run: at-least-once, never lost.
        this.log.error('recording task outcomes failed', {
          error: (err as Error).message,
          ids: [...completions, ...failures].map((c) => c.id),
        });
      } finally {
        this.flushing = null;
      }
    })();
    return this.flushing;
  }

  private async renewLeases(): Promise<void> {
    if (this.running.size === 0 || this.stopping) return;
    const refs = [...this.running.values()].filter((r) => !r.abandoned).map((r) => ref(r.task, this.id));
    try {
      const until = new Date(this.clock.now().getTime() + this.options.leaseMs);
      for (const id of await this.options.store.renew(refs, until)) this.cancelRunning(id);
    } catch (err) {
      this.log.error('renewing leases failed', { error: (err as Error).message });
    }
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
    if (!entry || entry.cancelled) return;
    entry.cancelled = true;
    entry.controller.abort(new Error('the task was cancelled'));
  }

  private notifyIdle(): void {
    if (this.running.size > 0 || this.claiming) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

function ref(task: Task, workerId: string): AttemptRef {
  return { id: task.id, workerId, attempt: task.attempts };
}

/** The result must be JSON: undefined becomes null; anything JSON cannot hold fails the attempt. */
function toJson(value: unknown): Json {
  if (value === undefined) return null;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new Error(`the handler's return value is not JSON: ${(err as Error).message}`);
  }
  if (text === undefined) throw new Error('the handler returned a value JSON cannot hold (a function or symbol)');
  return JSON.parse(text) as Json;
}
