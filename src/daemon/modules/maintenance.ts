// Built-in module Maintenance: returns tasks of dead workers to the queue once their lease expires
// (workers do it too; this covers a cluster with no idle worker) and prunes finished tasks by age
// (retention: COMPLETED and CANCELLED after `completedAfter`, FAILED after `failedAfter`).
import { formatDuration } from '../../config/duration.js';
import { cutoffs, describeRetention, retentionOf } from '../../config/retention.js';
import type { BuiltInModuleOptions } from '../../config/schema.js';
import { isoSeconds } from '../../model/clock.js';
import type { DaemonModule, ModuleContext } from '../module.js';

export const settings = { sleep: '1 minute' };

export default function maintenance(ctx: ModuleContext): DaemonModule {
  // Validated by the config schema (BUILT_IN_MODULE_OPTIONS.Maintenance) when the file was loaded.
  const retention = retentionOf(ctx.options as BuiltInModuleOptions<'Maintenance'>);
  const last = { at: null as Date | null, rescued: 0, pruned: 0 };
  return {
    async run() {
      const mill = await ctx.mill();
      const now = new Date();
      last.rescued = await mill.store.rescueExpired(now);
      // In batches of a few hundred rows, each its own short transaction: workers keep claiming meanwhile.
      const pruned = await mill.store.prune({ before: cutoffs(retention, now) });
      last.pruned = pruned.COMPLETED + pruned.CANCELLED + pruned.FAILED;
      last.at = now;
      if (last.rescued + last.pruned > 0) ctx.log.info('maintenance', { rescued: last.rescued, pruned: last.pruned, ...pruned });
      return true;
    },
    summary() {
      return {
        header: `Maintenance (prunes ${describeRetention(retention, formatDuration)})`,
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
