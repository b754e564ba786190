// Built-in module Notifier: delivers notifications (failure e-mail, webhooks, digests) from the
// store's outbox, and alerts once in the cluster when a host's daemon stops sending heartbeats (it
// cannot notice its own daemon's death: the watchdog and the other daemons do). Enabled by default
// when `notify.email` or `notify.webhook` is configured.
import { isoSeconds } from '../../model/clock.js';
import { Notifier } from '../../notify/notifier.js';
import type { DaemonModule, ModuleContext } from '../module.js';

export const settings = { sleep: '5s' };

export default function notifierModule(ctx: ModuleContext): DaemonModule {
  let notifier: Notifier | null = null;
  let startedAt: Date | null = null;
  return {
    async run() {
      if (!notifier) {
        const mill = await ctx.mill();
        notifier = new Notifier({ store: mill.store, config: ctx.config, log: ctx.log, role: 'daemon', watchDaemons: true });
        notifier.start();
        startedAt = new Date();
        ctx.log.info('notifier started', { owner: notifier.owner });
      }
      return true;
    },
    async stop() {
      await notifier?.stop();
      notifier = null;
    },
    summary() {
      const t = notifier?.totals;
      return {
        header: 'Notifier (failure e-mail, webhooks, daemon alerts)',
        columns: [
          { name: 'since', displayName: 'Since', size: 20 },
          { name: 'sent', displayName: 'Sent', size: 6 },
          { name: 'failed', displayName: 'Failed sends', size: 12 },
          { name: 'alerts', displayName: 'Alerts', size: 6 },
          { name: 'lastError', displayName: 'Last error', size: 40 },
        ],
        rows: t && startedAt ? [{ since: isoSeconds(startedAt), sent: t.sent, failed: t.failed, alerts: t.alerts, lastError: t.lastError }] : [],
        noDataMessage: 'Not started yet.',
      };
    },
  };
}
