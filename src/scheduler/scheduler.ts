// The scheduler service: fires due occurrences of every enabled schedule, applies catch-up after
// downtime, and sleeps until the next fire time. Any number may run on one database: each due time
// is a tick row that only one of them can insert, so it fires once in the whole cluster.
import { type Clock, systemClock } from '../model/clock.js';
import { type Logger, silentLogger } from '../model/logger.js';
import type { Schedule } from '../model/schedule.js';
import type { NewTask } from '../model/task.js';
import type { Store } from '../store/store.js';
import { planCatchUp } from './catchup.js';
import { nextFireTime } from './rules.js';

export interface SchedulerOptions {
  store: Store;
  /** Turns a schedule into the task to add (name checked, per-type defaults applied). */
  buildTask: (schedule: Schedule, dueAt: Date) => Promise<NewTask>;
  clock?: Clock;
  logger?: Logger;
  /** Longest sleep between looks at the schedules (how soon another process's change is seen without a signal). */
  maxSleepMs?: number;
}

/** Fire records older than this are deleted; they only guard due times that are long served. */
const TICK_RETENTION_MS = 24 * 3_600_000;
const PRUNE_EVERY_MS = 10 * 60_000;

export class Scheduler {
  private readonly clock: Clock;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  private lastPrune = 0;
  /** Tasks this scheduler created, for tests and summaries. */
  fired = 0;

  constructor(private readonly options: SchedulerOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = options.logger ?? silentLogger;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe = this.options.store.subscribe((event) => {
      if (event.kind === 'schedules') this.poke();
    });
    this.poke();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    await this.running;
  }

  /** Looks at the schedules now (a change was made); a look already under way runs once more. */
  poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = null;
    });
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      if (this.timer) clearTimeout(this.timer);
      let sleep = this.options.maxSleepMs ?? 1_000;
      try {
        sleep = Math.min(sleep, await this.runDue());
      } catch (err) {
        this.log.error('scheduler pass failed; trying again shortly', { error: (err as Error).message });
      }
      if (!this.stopped && !this.again) this.timer = setTimeout(() => this.poke(), Math.max(1, sleep));
    } while (this.again && !this.stopped);
  }

  /** Fires what is due; returns ms until the next fire time. */
  private async runDue(): Promise<number> {
    const { store } = this.options;
    let now = this.clock.now();
    let sleep = Number.POSITIVE_INFINITY;
    for (const schedule of await store.listSchedules()) {
      if (!schedule.enabled || this.stopped) continue;
      try {
        await this.serve(schedule, now);
      } catch (err) {
        this.log.error('could not fire a schedule', { schedule: schedule.name, error: (err as Error).message });
      }
      now = this.clock.now();
      const next = nextFireTime(schedule.rule, schedule.anchorAt, now);
      if (next) sleep = Math.min(sleep, next.getTime() - now.getTime());
    }
    if (now.getTime() - this.lastPrune > PRUNE_EVERY_MS) {
      this.lastPrune = now.getTime();
      await store.pruneTicks(new Date(now.getTime() - TICK_RETENTION_MS));
    }
    return sleep;
  }

  private async serve(schedule: Schedule, now: Date): Promise<void> {
    const { store } = this.options;
    const after = schedule.lastDueAt ?? schedule.anchorAt;
    const plan = planCatchUp(schedule.rule, schedule.anchorAt, after, now, schedule.catchUp);
    if (!plan.servedUntil) return;
    const reason = `catch-up "${schedule.catchUp}": missed while no scheduler ran`;
    if (plan.fire.length === 0) {
      await store.skipSchedule({ name: schedule.name, count: plan.skipped, servedUntil: plan.servedUntil, reason }, now);
      this.log.warn('skipped missed occurrences', { schedule: schedule.name, count: plan.skipped });
      return;
    }
    for (const [i, dueAt] of plan.fire.entries()) {
      let task: NewTask;
      try {
        task = await this.options.buildTask(schedule, dueAt);
      } catch (err) {
        // The task type is gone (or its options are broken): record why, and do not retry this occurrence.
        const why = `cannot create task "${schedule.task}": ${(err as Error).message}`;
        await store.skipSchedule({ name: schedule.name, count: 1, servedUntil: dueAt, reason: why }, now);
        this.log.error('skipped an occurrence', { schedule: schedule.name, error: why });
        continue;
      }
      const outcome = await store.fireSchedule(
        {
          name: schedule.name,
          dueAt,
          task,
          overlap: schedule.overlap,
          skippedBefore: i === 0 && plan.skipped > 0 ? { count: plan.skipped, reason } : undefined,
        },
        this.clock.now(),
      );
      if (outcome.kind === 'fired') {
        this.fired++;
        this.log.debug('fired', { schedule: schedule.name, dueAt: dueAt.toISOString(), task: outcome.taskId });
      } else if (outcome.kind === 'skipped') {
        this.log.info('skipped an occurrence', { schedule: schedule.name, reason: outcome.reason });
      }
    }
  }
}
