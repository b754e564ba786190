// Built-in module Maintenance: returns tasks of dead workers to the queue once their lease expires
// (workers do it too; this covers a cluster with no idle worker) and prunes finished tasks.
import { parseDuration } from '../../config/duration.js';
import type { BuiltInModuleOptions } from '../../config/schema.js';
import { isoSeconds } from '../../model/clock.js';
import type { DaemonModule, ModuleContext } from '../module.js';

export const settings = { sleep: '1 minute' };

export default function maintenance(ctx: ModuleContext): DaemonModule {
  // Validated by the config schema (BUILT_IN_MODULE_OPTIONS.Maintenance) when the file was loaded.
  const { pruneAfter = '7 days' } = ctx.options as BuiltInModuleOptions<'Maintenance'>;
  // false keeps finished tasks forever.
  const pruneAfterMs = pruneAfter === false ? null : parseDuration(pruneAfter, 'pruneAfter');
  const last = { at: null as Date | null, rescued: 0, pruned: 0 };
  return {
    async run() {
      const mill = await ctx.mill();
      const now = new Date();
      last.rescued = await mill.store.rescueExpired(now);
      last.pruned = pruneAfterMs === null ? 0 : await mill.store.pruneFinished(new Date(now.getTime() - pruneAfterMs));
      last.at = now;
      if (last.rescued + last.pruned > 0) ctx.log.info('maintenance', { rescued: last.rescued, pruned: last.pruned });
      return true;
    },
    summary() {
      return {
        header: `Maintenance (prunes finished tasks after ${pruneAfterMs === null ? 'never' : `${pruneAfterMs / 86_400_000} days`})`,
        columns: [
          { name: 'at', displayName: 'Last run', size: 20 },
          { name: 'rescued', displayName: 'Rescued', size: 8 },
          { name: 'pruned', displayName: 'Pruned', size: 8 },
        ],
        rows: last.at ? [{ at: isoSeconds(last.at), rescued: last.rescued, pruned: last.pruned }] : [],
        noDataMessage: 'Not run yet.',
      };
    },
  };
}
