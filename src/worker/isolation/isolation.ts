// Which tasks run isolated, and the pool they run in: the one object the worker holds. The pool is
// made on the first isolated task, so a worker that isolates nothing starts no process.
import type { Logger } from '../../model/logger.js';
import type { ClaimedTask } from '../../store/store.js';
import type { TaskContext } from '../handlers.js';
import type { OutputBuffer } from '../output.js';
import { ProcessPool } from './pool.js';
import type { IsolationMode } from './protocol.js';

export type { IsolationMode } from './protocol.js';

export interface IsolationOptions {
  /** worker.isolation: for every task; a handler's own `options.isolation` can only ask for more. */
  mode: IsolationMode;
  /** worker.isolationMaxTasks: a process is replaced after this many tasks. */
  maxTasks: number;
  /** worker.isolationMaxRssMb: heap limit of a process; replaced above it, killed while running above twice it. */
  maxRssMb: number;
  /** worker.isolationKillGrace: between SIGTERM and SIGKILL. */
  killGraceMs: number;
}

/** The config's defaults (src/config/schema.ts), for a worker made without them. */
export const DEFAULT_ISOLATION: IsolationOptions = { mode: 'none', maxTasks: 10_000, maxRssMb: 512, killGraceMs: 5_000 };

const RANK: Record<IsolationMode, number> = { none: 0, process: 1, 'process-per-task': 2 };

export class Isolation {
  private pool: ProcessPool | null = null;
  private closed = false;

  constructor(
    private readonly options: IsolationOptions,
    private readonly deps: { tasksDir: string; size: number; logger: Logger },
  ) {}

  /** Every task runs isolated: the worker does not even import handlers (a file that misbehaves on import cannot hurt it). */
  get everyTask(): boolean {
    return this.options.mode !== 'none';
  }

  /** The stronger of the worker's mode and what the handler asks for. */
  modeFor(asked: IsolationMode | undefined): IsolationMode {
    return asked !== undefined && RANK[asked] > RANK[this.options.mode] ? asked : this.options.mode;
  }

  /** Pids of the pool's live processes. */
  get pids(): number[] {
    return this.pool?.pids ?? [];
  }

  /** Handler processes started so far. */
  get started(): number {
    return this.pool?.started ?? 0;
  }

  /** When every task is isolated, the first process starts with the worker rather than with its first task. */
  start(): void {
    if (this.everyTask) this.ensurePool()?.warm();
  }

  run(task: ClaimedTask, ctx: TaskContext, output: OutputBuffer, mode: IsolationMode): Promise<unknown> {
    const pool = this.ensurePool();
    if (!pool) return Promise.reject(new Error('the worker has stopped'));
    return pool.run({ name: task.name, payload: task.payload, ctx, output, fresh: mode === 'process-per-task' });
  }

  private ensurePool(): ProcessPool | null {
    if (!this.pool && !this.closed) {
      const { maxTasks, maxRssMb, killGraceMs } = this.options;
      this.pool = new ProcessPool({ ...this.deps, maxTasks, maxRssMb, killGraceMs });
    }
    return this.closed ? null : this.pool;
  }

  /** Ends every handler process (after the worker stopped its tasks); resolves when none is left. */
  async close(): Promise<void> {
    this.closed = true;
    await this.pool?.close();
  }
}
