// The worker's pool of handler processes: one task per process at a time; a process is reused until
// it ran isolationMaxTasks tasks or grew past isolationMaxRssMb, ended on timeout, cancel and stop,
// and never started in a loop (a process that fails to start, or dies loading a handler, backs off).
import { HandlerProcessError } from '../../model/errors.js';
import type { Logger } from '../../model/logger.js';
import type { TaskContext } from '../handlers.js';
import type { OutputBuffer } from '../output.js';
import { type Exit, HandlerProcess } from './handler-process.js';
import { type FromChild, fromWire, type ToChild, toWire } from './protocol.js';

const MB = 1_048_576;
/** How often the memory of busy processes is read. */
const MEMORY_CHECK_MS = 1_000;
/** A process that fails to start: the next start waits 0.5 s, doubling up to this. */
const START_BACKOFF_MAX_MS = 30_000;
/** A handler whose process dies while loading it: tasks of that name fail at once for 1 s, doubling up to this. */
const LOAD_BACKOFF_MAX_MS = 60_000;
/** Processes starting at once: a start costs a core for a while, and the first one free serves the next task anyway. */
const PARALLEL_STARTS = 2;

export interface PoolOptions {
  tasksDir: string;
  /** Most processes kept (the worker's concurrency): more are never busy at once. */
  size: number;
  maxTasks: number;
  /** Heap limit of each process (--max-old-space-size); recycled above it, killed above twice it. */
  maxRssMb: number;
  killGraceMs: number;
  logger: Logger;
  /** The Node binary the processes run (default: this process's); a seam for tests of a failing spawn. */
  execPath?: string;
}

export interface IsolatedJob {
  name: string;
  payload: unknown;
  ctx: TaskContext;
  output: OutputBuffer;
  /** A process that never ran a task, ended after this one. */
  fresh: boolean;
}

/** A task waiting for a process: served by the first one free or started (a used one only if it need not be fresh). */
interface Waiter {
  fresh: boolean;
  resolve(proc: HandlerProcess): void;
  reject(err: unknown): void;
}

export class ProcessPool {
  private readonly idle: HandlerProcess[] = [];
  private readonly busy = new Set<HandlerProcess>();
  private readonly waiters: Waiter[] = [];
  private starting = 0;
  /** Every process not yet exited, dying ones included. */
  private readonly all = new Set<HandlerProcess>();
  private startFailures = 0;
  private startBlockedUntil = 0;
  private lastStartError = '';
  private readonly loadCrashes = new Map<string, { count: number; until: number; message: string }>();
  private memoryTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Runs handed to processes so far: each run's number tags its ctx calls. */
  private runs = 0;
  /** Processes started so far (for tests and diagnostics). */
  started = 0;

  constructor(private readonly options: PoolOptions) {}

  /** Pids of the live processes (for tests and diagnostics). */
  get pids(): number[] {
    return [...this.all].flatMap((p) => (p.pid === undefined ? [] : [p.pid]));
  }

  /** Processes not yet exited, dying ones included (for tests and diagnostics). */
  get processCount(): number {
    return this.all.size;
  }

  /** Starts one process ahead of the first task (a worker that isolates every task does so when it starts). */
  warm(): void {
    if (this.all.size === 0 && !this.closed) void this.start();
  }

  /** Runs one task in a process; resolves with its result, rejects with what it threw or how its process died. */
  async run(job: IsolatedJob): Promise<unknown> {
    if (this.closed) throw new HandlerProcessError('the worker is stopping; the task was not started');
    this.refuseCrashing(job.name);
    const proc = await this.acquire(job.fresh, job.ctx.signal);
    try {
      // Aborted in the turn it was handed over, or its handler crashed another process meanwhile:
      // the process goes to the next task.
      if (job.ctx.signal.aborted) throw job.ctx.signal.reason;
      this.refuseCrashing(job.name);
    } catch (err) {
      this.offer(proc);
      throw err;
    }
    return this.runOn(proc, job);
  }

  /** Ends every process: SIGTERM, SIGKILL after the grace period. Resolves when all have exited. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.memoryTimer) clearInterval(this.memoryTimer);
    this.memoryTimer = null;
    this.idle.length = 0;
    for (const w of this.waiters.splice(0)) w.reject(new HandlerProcessError('the worker is stopping; the task was not started'));
    await Promise.all([...this.all].map((p) => p.kill(this.options.killGraceMs)));
  }

  private acquire(fresh: boolean, signal: AbortSignal): Promise<HandlerProcess> {
    if (signal.aborted) return Promise.reject(signal.reason);
    // The most recently used first: its caches are warm, and under a light load the others rest.
    const i = this.idle.findLastIndex((p) => p.alive && !p.ending && (!fresh || p.tasks === 0));
    if (i >= 0) return Promise.resolve(this.idle.splice(i, 1)[0] as HandlerProcess);
    return new Promise((resolve, reject) => {
      // A timeout or cancel while it waits: it leaves the queue, and no process is spent on it.
      const onAbort = () => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(signal.reason);
      };
      const waiter: Waiter = {
        fresh,
        resolve: (proc) => {
          signal.removeEventListener('abort', onAbort);
          resolve(proc);
        },
        reject: (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.grow();
    });
  }

  /** A process free for a task: to the first waiter that can take it, or idle. */
  private offer(proc: HandlerProcess): void {
    // One told to end (a timeout or cancel of its last task) is about to exit: it serves no one, and
    // a replacement starts for whoever waits.
    if (!proc.alive || proc.ending || proc.endReason !== null) {
      void proc.kill(this.options.killGraceMs);
      this.grow();
      return;
    }
    const i = this.waiters.findIndex((w) => !w.fresh || proc.tasks === 0);
    if (i >= 0) (this.waiters.splice(i, 1)[0] as Waiter).resolve(proc);
    else this.idle.push(proc);
    this.grow();
  }

  /**
   * Starts processes for waiters that the running and starting ones will not serve, at most
   * PARALLEL_STARTS at a time and `size` in all. While starts back off, waiters that nothing will
   * serve fail with the start error.
   */
  private grow(): void {
    while (!this.closed && this.waiters.length > this.starting && this.starting < PARALLEL_STARTS) {
      const working = [...this.busy].filter((p) => !p.ending).length;
      if (this.idle.length + working + this.starting >= this.options.size) {
        // Full: only a waiter for a fresh process makes room, by ending an idle used one.
        const stale = this.idle.findIndex((p) => p.tasks > 0);
        if (stale < 0 || !this.waiters.some((w) => w.fresh)) return;
        void (this.idle.splice(stale, 1)[0] as HandlerProcess).kill(this.options.killGraceMs);
      }
      const wait = this.startBlockedUntil - Date.now();
      if (wait > 0) {
        if (working + this.starting > 0) return;
        const err = new HandlerProcessError(
          `handler processes fail to start (${this.lastStartError}); the next start is in ${seconds(wait)}; see the worker's log`,
        );
        for (const w of this.waiters.splice(0)) w.reject(err);
        return;
      }
      void this.start();
    }
  }

  private async start(): Promise<void> {
    this.starting++;
    const proc = new HandlerProcess(this.options.tasksDir, this.options.maxRssMb, this.options.execPath);
    proc.maxTasks = Math.max(1, Math.round(this.options.maxTasks * (1 - 0.1 * Math.random())));
    proc.onRawLine = this.stray(proc);
    this.started++;
    this.all.add(proc);
    void proc.exited.then(() => {
      this.all.delete(proc);
      const i = this.idle.indexOf(proc);
      if (i >= 0) this.idle.splice(i, 1);
    });
    try {
      await proc.ready;
    } catch (err) {
      this.starting--;
      // Killed by close() while starting: not a failure to start.
      if (this.closed) return;
      // Never reused, and the next start waits: a broken setup must not spawn in a loop.
      void proc.kill(0);
      this.startFailures++;
      const delay = Math.min(START_BACKOFF_MAX_MS, 500 * 2 ** (this.startFailures - 1));
      this.startBlockedUntil = Date.now() + delay;
      this.lastStartError = (err as Error).message;
      this.options.logger.error('a handler process failed to start', { error: this.lastStartError, retryInMs: delay });
      this.waiters.shift()?.reject(new HandlerProcessError(`could not start a handler process: ${this.lastStartError}`));
      this.grow();
      return;
    }
    this.starting--;
    this.startFailures = 0;
    if (this.closed) void proc.kill(this.options.killGraceMs);
    else this.offer(proc);
  }

  private runOn(proc: HandlerProcess, job: IsolatedJob): Promise<unknown> {
    const { ctx, output } = job;
    const run = ++this.runs;
    this.busy.add(proc);
    this.memoryTimer ??= setInterval(() => this.checkMemory(), MEMORY_CHECK_MS).unref();
    return new Promise<unknown>((resolve, reject) => {
      let settled = false;
      // A death before the handler is loaded is a crash while loading (see noteLoadCrash).
      let loaded = proc.loaded.has(job.name);
      const finish = () => {
        settled = true;
        ctx.signal.removeEventListener('abort', onAbort);
        proc.onMessage = null;
        proc.onExit = null;
        proc.onRawLine = this.stray(proc);
        this.busy.delete(proc);
      };
      // Timeout, cancel or stop: the handler sees its signal, its process gets SIGTERM, then SIGKILL.
      const onAbort = () => {
        proc.send({ t: 'abort', reason: toWire(ctx.signal.reason) });
        void proc.kill(this.options.killGraceMs);
      };
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      proc.onRawLine = (stream, line) => output.push(stream === 'stderr' ? 'error' : 'log', ['%s', line]);
      proc.onMessage = (message: FromChild) => {
        if (settled) return;
        switch (message.t) {
          case 'out':
            output.push(message.level, ['%s', message.text]);
            break;
          case 'loaded':
            loaded = true;
            proc.loaded.set(job.name, message.isolation);
            this.loadCrashes.delete(job.name);
            break;
          case 'call':
            // A call of an earlier run in this process (its handler's late timer) is not this task's.
            if (message.run === run) void this.answer(proc, ctx, message);
            break;
          case 'done':
            finish();
            proc.tasks++;
            // Aborted (timeout, cancel, stop): the process was told to end and exits after this answer.
            this.afterTask(proc, job.fresh || ctx.signal.aborted || proc.loaded.get(job.name) === 'process-per-task', message.rssBytes);
            if (message.ok) resolve(message.json === undefined ? undefined : JSON.parse(message.json));
            else reject(fromWire(message.error));
            break;
          case 'ready':
            break;
        }
      };
      const onExit = (exit: Exit) => {
        if (settled) return;
        finish();
        // Waiters that counted on this process need another.
        this.grow();
        if (ctx.signal.aborted) return reject(ctx.signal.reason);
        const how = proc.endReason ?? `the handler's process (pid ${proc.pid}) ${proc.describe(exit)}`;
        if (!loaded && proc.endReason === null) this.noteLoadCrash(job.name, how);
        const err = new HandlerProcessError(`${how} ${loaded ? 'while running the task' : 'while loading the handler'}; the attempt failed`);
        // Where the worker noticed is of no use; what the process printed last may be.
        const tail = proc.errorTail();
        err.stack = `${err.name}: ${err.message}${tail ? `\n--- its error output ---\n${tail}` : ''}`;
        reject(err);
      };
      proc.onExit = onExit;
      // Gone already (between its exit and the pool noticing): the hook would never be called.
      if (proc.gone && proc.exit) {
        onExit(proc.exit);
        return;
      }
      const { task, methods, fields } = describeContext(ctx);
      const refused = proc.send({ t: 'run', run, name: job.name, payload: job.payload, task, methods, fields });
      if (refused) {
        finish();
        this.afterTask(proc, false, 0);
        reject(new HandlerProcessError(`the task could not be passed to its handler process: ${refused.message}`));
      }
    });
  }

  /** A ctx method called in the process: run here, answer there. */
  private async answer(proc: HandlerProcess, ctx: TaskContext, call: Extract<FromChild, { t: 'call' }>): Promise<void> {
    let reply: ToChild;
    try {
      const fn = (ctx as unknown as Record<string, unknown>)[call.method];
      if (typeof fn !== 'function') throw new Error(`ctx.${call.method} is not a function`);
      reply = { t: 'reply', call: call.call, ok: true, value: await (fn as (...a: unknown[]) => unknown).apply(ctx, call.args) };
    } catch (err) {
      reply = { t: 'reply', call: call.call, ok: false, error: toWire(err) };
    }
    const refused = proc.send(reply);
    if (refused) proc.send({ t: 'reply', call: call.call, ok: false, error: toWire(refused) });
  }

  /** Back in the pool, or ended: after its task count, above its memory limit, on request, or when the pool is full or closed. */
  private afterTask(proc: HandlerProcess, retire: boolean, rssBytes: number): void {
    // Dead or ending (told to end: SIGTERM sent, or an end reason set): never offered again, so no
    // task is handed a process about to exit; its place is free for a new one.
    if (!proc.alive || proc.ending || proc.endReason !== null) {
      if (proc.alive) void proc.kill(this.options.killGraceMs);
      this.grow();
      return;
    }
    const { maxTasks, maxRssMb, size } = this.options;
    const why = this.closed
      ? 'the worker is stopping'
      : retire
        ? 'a fresh process per task'
        : proc.tasks >= proc.maxTasks
          ? `it ran ${proc.tasks} tasks (worker.isolationMaxTasks ${maxTasks}, less up to 10 % so processes are not all replaced at once)`
          : rssBytes > maxRssMb * MB
            ? `its memory (${Math.round(rssBytes / MB)} MB) passed worker.isolationMaxRssMb (${maxRssMb} MB)`
            : this.idle.length >= size
              ? 'the pool is full'
              : null;
    if (why === null) {
      this.offer(proc);
      return;
    }
    if (!retire) this.options.logger.info('recycling a handler process', { pid: proc.pid, why });
    void proc.kill(this.options.killGraceMs);
    // It leaves room: a waiter may need a new one.
    this.grow();
  }

  /** Memory outside the V8 heap (buffers) is not bounded by --max-old-space-size: past twice the limit, the process is killed. */
  private checkMemory(): void {
    const limit = 2 * this.options.maxRssMb * MB;
    for (const proc of this.busy) {
      const rss = proc.rssBytes();
      if (rss === null || rss <= limit || proc.endReason !== null) continue;
      proc.endReason = `the handler's process (pid ${proc.pid}) used ${Math.round(rss / MB)} MB, over twice worker.isolationMaxRssMb (${this.options.maxRssMb} MB), and was killed`;
      this.options.logger.warn('killed a handler process for its memory', { pid: proc.pid, rssMb: Math.round(rss / MB) });
      void proc.kill(0);
    }
  }

  /** What a process prints between tasks (a late timer of a handler, say) goes to the worker's log. */
  private stray(proc: HandlerProcess): (stream: 'stdout' | 'stderr', line: string) => void {
    return (stream, line) => this.options.logger.warn('a handler process printed outside any task', { pid: proc.pid, stream, line });
  }

  /** While a handler that crashed its process loading is backed off, its tasks fail at once. */
  private refuseCrashing(name: string): void {
    const crash = this.loadCrashes.get(name);
    if (crash && Date.now() < crash.until) {
      throw new HandlerProcessError(`${crash.message}; it is not loaded again for ${seconds(crash.until - Date.now())}`);
    }
  }

  private noteLoadCrash(name: string, how: string): void {
    const count = (this.loadCrashes.get(name)?.count ?? 0) + 1;
    const delay = Math.min(LOAD_BACKOFF_MAX_MS, 1_000 * 2 ** (count - 1));
    this.loadCrashes.set(name, { count, until: Date.now() + delay, message: `the handler of "${name}" crashed its process while loading (${how})` });
    this.options.logger.error('a handler crashed its process while loading; its tasks fail at once for a while', { name, retryInMs: delay });
  }
}

/** The worker's ctx, split into what crosses as data and the methods the process calls back (all but log). */
function describeContext(ctx: TaskContext): { task: TaskContext['task']; methods: string[]; fields: Record<string, unknown> } {
  const methods: string[] = [];
  const fields: Record<string, unknown> = {};
  for (const [key, d] of Object.entries(Object.getOwnPropertyDescriptors(ctx))) {
    // signal is a getter (made on first use) and is rebuilt in the process; log and task likewise.
    if (key === 'task' || key === 'signal' || key === 'log' || !('value' in d)) continue;
    if (typeof d.value === 'function') methods.push(key);
    else fields[key] = d.value;
  }
  return { task: ctx.task, methods, fields };
}

function seconds(ms: number): string {
  return `${Math.max(1, Math.ceil(ms / 1000))} s`;
}
