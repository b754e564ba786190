// Retention: how long finished tasks are kept, from the Maintenance module's options. The Maintenance
// module prunes by it, and `taskmill prune` without --older-than does the same by hand.
import type { PrunableStatus } from '../store/store.js';
import { parseDuration } from './duration.js';
import type { BuiltInModuleOptions, Config } from './schema.js';

export const DEFAULT_COMPLETED_AFTER = '7 days';
export const DEFAULT_FAILED_AFTER = '30 days';

/** Per status, how long after finishing a task is kept; null keeps it for ever. */
export type Retention = Record<PrunableStatus, number | null>;

/**
 * `completedAfter` (COMPLETED and CANCELLED, default 7 days) and `failedAfter` (FAILED, default 30
 * days), each a duration or false. The deprecated `pruneAfter`, when given, is the default of both.
 */
export function retentionOf(options: BuiltInModuleOptions<'Maintenance'>): Retention {
  const ms = (value: string | number | false | undefined, fallback: string | number | false, what: string) => {
    const v = value ?? fallback;
    return v === false ? null : parseDuration(v, what);
  };
  const completed = ms(options.completedAfter, options.pruneAfter ?? DEFAULT_COMPLETED_AFTER, 'completedAfter');
  return {
    COMPLETED: completed,
    CANCELLED: completed,
    FAILED: ms(options.failedAfter, options.pruneAfter ?? DEFAULT_FAILED_AFTER, 'failedAfter'),
  };
}

/** The retention the config file sets (validated when it was loaded). */
export function configRetention(config: Config): Retention {
  const m = config.daemonModules.Maintenance;
  // A Maintenance module replaced by a file has options of its own: the defaults apply.
  const options = m && !m.module ? (m.options as BuiltInModuleOptions<'Maintenance'>) : {};
  return retentionOf(options);
}

/** The cutoffs for `now`: tasks that finished before them go. */
export function cutoffs(retention: Retention, now: Date): Partial<Record<PrunableStatus, Date>> {
  const before: Partial<Record<PrunableStatus, Date>> = {};
  for (const [status, ms] of Object.entries(retention) as [PrunableStatus, number | null][]) {
    if (ms !== null) before[status] = new Date(now.getTime() - ms);
  }
  return before;
}

/** "COMPLETED and CANCELLED after 7d, FAILED after 30d" (for summaries and the CLI). */
export function describeRetention(retention: Retention, format: (ms: number) => string): string {
  const parts: string[] = [];
  const same = retention.COMPLETED === retention.CANCELLED;
  const say = (label: string, ms: number | null) => parts.push(`${label} ${ms === null ? 'kept' : `after ${format(ms)}`}`);
  if (same) say('COMPLETED and CANCELLED', retention.COMPLETED);
  else {
    say('COMPLETED', retention.COMPLETED);
    say('CANCELLED', retention.CANCELLED);
  }
  say('FAILED', retention.FAILED);
  return parts.join(', ');
}
