// Counts of tasks by queue and status for stats(). No index makes an exact count of a million rows cheap
// (each counted row is read), and counters kept by triggers would tax every status change of the hot
// path. So a small table (one COUNT_STEP of ids) is counted on every call, and a large one in steps of
// COUNT_STEP ids (each a short read, so SQLite's synchronous driver never holds the event loop long):
// callers get the last complete count, at most COUNTS_MAX_AGE_MS old while a fresh one is made behind it.
import type { Logger } from '../model/logger.js';
import type { TaskStats } from '../model/query.js';
import type { TaskStatus } from '../model/task.js';
import { zeroCounts } from '../store/query-shape.js';
import type { Store } from '../store/store.js';

/** Ids counted by one read: SQLite reads them synchronously, so fewer (a few ms of event loop at a time). */
export const COUNT_STEP = { sqlite: 5_000, postgres: 20_000 } as const;
/** How old the counts of a large table may be when served (one recount runs behind them). */
export const COUNTS_MAX_AGE_MS = 10_000;

type Counts = Pick<TaskStats, 'byStatus' | 'byQueue'>;

export class TaskCounts {
  private last: { counts: Counts; at: number } | null = null;
  private running: Promise<Counts> | null = null;

  constructor(
    private readonly store: Store,
    private readonly log: Logger | undefined,
  ) {}

  async get(): Promise<Counts> {
    const last = this.last;
    if (last && performance.now() - last.at <= COUNTS_MAX_AGE_MS) return last.counts;
    if (!last) return this.recount();
    // Stale: served as it is while the recount runs (one at a time).
    if (!this.running) {
      this.recount().catch((err: unknown) =>
        this.log?.warn('could not count tasks for stats', { error: (err as Error).message }),
      );
    }
    return last.counts;
  }

  private recount(): Promise<Counts> {
    this.running ??= this.count().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async count(): Promise<Counts> {
    const { min, max } = await this.store.taskIdRange();
    const step = COUNT_STEP[this.store.engine];
    const queues = new Map<string, Record<TaskStatus, number>>();
    const byStatus = zeroCounts();
    for (let from = min - 1; from < max; from += step) {
      // Between steps, whatever else waits (an HTTP request, a timer) gets its turn.
      if (from >= min) await new Promise((resolve) => setImmediate(resolve));
      for (const r of await this.store.countByQueue(from, Math.min(max, from + step))) {
        byStatus[r.status] += r.n;
        let q = queues.get(r.queue);
        if (!q) queues.set(r.queue, (q = zeroCounts()));
        q[r.status] += r.n;
      }
    }
    const counts: Counts = {
      byStatus,
      byQueue: [...queues].sort(([a], [b]) => a.localeCompare(b)).map(([queue, c]) => ({ queue, counts: c })),
    };
    // A small table is counted on every call: exact at once, as a test or a small installation expects.
    this.last = max - min < step ? null : { counts, at: performance.now() };
    return counts;
  }
}
