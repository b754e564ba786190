// Built-in module Scheduler: future tasks need nothing here (workers start them on time); this
// module applies the config file's schedules and fires recurring ones, once per cluster.
import { isoSeconds } from '../../model/clock.js';
import { describeRule } from '../../scheduler/rules.js';
import type { Scheduler } from '../../scheduler/scheduler.js';
import type { DaemonModule, ModuleContext } from '../module.js';

export const settings = { sleep: '1s' };

export default function schedulerModule(ctx: ModuleContext): DaemonModule {
  let scheduler: Scheduler | null = null;
  return {
    async run() {
      if (!scheduler) {
        const mill = await ctx.mill();
        const report = await mill.reconcileSchedules();
        for (const e of report.errors) ctx.log.error('ignored a schedule in the config', { schedule: e.name, error: e.message });
        if (report.added.length + report.changed.length + report.removed.length > 0) {
          ctx.log.info('applied the config schedules', { ...report, errors: undefined });
        }
        scheduler = mill.scheduler({ logger: ctx.log });
        scheduler.start();
      }
      return true;
    },
    async stop() {
      await scheduler?.stop();
      scheduler = null;
    },
    async summary() {
      const schedules = await (await ctx.mill()).schedules();
      return {
        header: 'Recurring schedules',
        columns: [
          { name: 'name', displayName: 'Name', size: 24 },
          { name: 'task', displayName: 'Task', size: 24 },
          { name: 'rule', displayName: 'Rule', size: 20 },
          { name: 'last', displayName: 'Last run', size: 20 },
          { name: 'next', displayName: 'Next run', size: 20 },
        ],
        rows: schedules.map((s) => ({
          name: s.name,
          task: s.task,
          rule: describeRule(s.rule),
          last: s.lastFiredAt ? isoSeconds(s.lastFiredAt) : null,
          next: s.next[0] ? isoSeconds(s.next[0]) : s.enabled ? null : 'paused',
        })),
        noDataMessage: 'No schedules.',
      };
    },
  };
}
