// /metrics in the Prometheus text format (prom-client), behind authentication like everything else.
//
// Gauges are read from the client when scraped: tasks by status and queue, worker slots busy (tasks
// STARTED, per queue: the slots in use across the cluster), the daemons' heartbeats. Durations come
// from the tasks themselves: at each scrape this process reads the tasks that finished since the last
// one (newest first by finishedAt, through mill.query, at most MAX_PER_SCRAPE) and feeds the
// histograms and counters, so counters start at zero when this web process starts, as Prometheus
// expects of a fresh process; tasks that finished while no one scraped are counted at the next scrape.
// A window of OVERLAP_MS is read again each time (ids remembered), so a task whose finish was
// committed just after a scrape is not missed.
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TaskListItem } from '../model/query.js';
import { TASK_STATUSES } from '../model/task.js';
import type { WebDeps } from './types.js';

const MAX_PER_SCRAPE = 10_000;
const PAGE = 500;
const OVERLAP_MS = 10_000;

/** Reads the tasks that finished since the previous call. */
class FinishedReader {
  /** Tasks finished at or after this time are still to be read (or were, when in `seen`). */
  private from: number;
  /** Tasks that finished before this process started are not counted. */
  private readonly floor: number;
  private readonly seen = new Map<number, number>();

  constructor(private readonly deps: WebDeps) {
    this.floor = deps.clock.now().getTime();
    this.from = this.floor;
  }

  async read(): Promise<TaskListItem[]> {
    const fresh: TaskListItem[] = [];
    let cursor: string | null = null;
    let newest = this.from;
    let read = 0;
    outer: for (;;) {
      const page = await this.deps.mill.query({ sort: 'finishedAt', order: 'desc', limit: PAGE, cursor });
      for (const t of page.tasks) {
        const at = t.finishedAt?.getTime() ?? 0;
        if (at < this.from - OVERLAP_MS) break outer;
        newest = Math.max(newest, at);
        if (at >= this.floor && !this.seen.has(t.id)) {
          this.seen.set(t.id, at);
          fresh.push(t);
        }
        if (++read >= MAX_PER_SCRAPE) break outer;
      }
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    this.from = newest;
    for (const [id, at] of this.seen) if (at < this.from - OVERLAP_MS) this.seen.delete(id);
    return fresh;
  }
}

export function registerMetrics(app: FastifyInstance, deps: WebDeps): void {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const { mill } = deps;

  const tasks = new Gauge({ name: 'taskmill_tasks', help: 'Tasks by status and queue', labelNames: ['status', 'queue'], registers: [registry] });
  const busy = new Gauge({ name: 'taskmill_worker_slots_busy', help: 'Worker slots in use across the cluster (tasks STARTED), by queue', labelNames: ['queue'], registers: [registry] });
  const daemonsUp = new Gauge({ name: 'taskmill_daemons_running', help: 'Daemons with a heartbeat in the last minute', registers: [registry] });
  const heartbeat = new Gauge({ name: 'taskmill_daemon_last_heartbeat_seconds', help: 'Unix time of each daemon\'s last heartbeat', labelNames: ['host', 'pid'], registers: [registry] });
  const duration = new Histogram({
    name: 'taskmill_task_duration_seconds',
    help: 'Run time of the last attempt of each finished task (started to finished), by task name',
    labelNames: ['name', 'status'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800, 3600],
    registers: [registry],
  });
  const lateness = new Histogram({
    name: 'taskmill_scheduling_lateness_seconds',
    help: 'How long after its due time (runAt) a finished task\'s last attempt started, by task name',
    labelNames: ['name'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [registry],
  });
  const finished = new Counter({ name: 'taskmill_tasks_finished_total', help: 'Tasks finished since this web process started, by name and status', labelNames: ['name', 'status'], registers: [registry] });
  const failedAttempts = new Counter({ name: 'taskmill_attempts_failed_total', help: 'Failed attempts of the tasks finished since this web process started, by name', labelNames: ['name'], registers: [registry] });

  const reader = new FinishedReader(deps);
  const scrape = async () => {
    const [stats, daemons, fresh] = await Promise.all([mill.stats(), mill.daemons(), reader.read()]);
    tasks.reset();
    busy.reset();
    for (const q of stats.byQueue) {
      for (const s of TASK_STATUSES) tasks.set({ status: s, queue: q.queue }, q.counts[s] ?? 0);
      busy.set({ queue: q.queue }, q.counts.STARTED ?? 0);
    }
    heartbeat.reset();
    daemonsUp.set(daemons.filter((d) => !d.stale).length);
    for (const d of daemons) heartbeat.set({ host: d.host, pid: String(d.pid) }, d.lastSeen.getTime() / 1000);
    for (const t of fresh) {
      finished.inc({ name: t.name, status: t.status });
      const failed = t.status === 'FAILED' ? t.attempts : Math.max(0, t.attempts - 1);
      if (failed > 0) failedAttempts.inc({ name: t.name }, failed);
      if (t.startedAt && t.finishedAt) {
        duration.observe({ name: t.name, status: t.status }, Math.max(0, t.finishedAt.getTime() - t.startedAt.getTime()) / 1000);
        lateness.observe({ name: t.name }, Math.max(0, t.startedAt.getTime() - t.runAt.getTime()) / 1000);
      }
    }
  };

  // One scrape at a time: two at once would read the same finished tasks twice.
  let last: Promise<unknown> = Promise.resolve();
  app.get('/metrics', async (_request, reply) => {
    const run = last.then(scrape, scrape);
    last = run.catch(() => undefined);
    await run;
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}
