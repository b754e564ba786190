// Which due times of a schedule to fire now, and which to skip, after the scheduler was away.
import { Cron } from 'croner';
import { CATCH_UP_ALL_MAX, type CatchUp, MISSED_AFTER_MS, type ScheduleRule } from '../model/schedule.js';

export interface CatchUpPlan {
  /** Due times to fire, oldest first. */
  fire: Date[];
  /** How many due times are skipped (not fired) by the policy. */
  skipped: number;
  /** The latest due time this plan serves (fired or skipped): the schedule's new lastDueAt. */
  servedUntil: Date | null;
}

/** Counting past this many missed occurrences is pointless; the count is then reported as this. */
const COUNT_CAP = 100_000;

/**
 * Plans the due times in (after, now]. `last` fires the newest once; `none` fires it only if it is
 * not missed (younger than MISSED_AFTER_MS); `all` fires each, at most CATCH_UP_ALL_MAX (the newest).
 */
export function planCatchUp(rule: ScheduleRule, anchor: Date, after: Date, now: Date, policy: CatchUp): CatchUpPlan {
  const newest = newestDue(rule, anchor, after, now, policy === 'all' ? CATCH_UP_ALL_MAX : 1);
  const latest = newest[0];
  if (!latest) return { fire: [], skipped: 0, servedUntil: null };
  const total = countDue(rule, anchor, after, latest);
  if (policy === 'all') {
    return { fire: [...newest].reverse(), skipped: Math.max(0, total - newest.length), servedUntil: latest };
  }
  const onTime = now.getTime() - latest.getTime() <= MISSED_AFTER_MS;
  if (policy === 'none' && !onTime) return { fire: [], skipped: total, servedUntil: latest };
  return { fire: [latest], skipped: total - 1, servedUntil: latest };
}

/** Up to `limit` due times in (after, now], newest first. */
function newestDue(rule: ScheduleRule, anchor: Date, after: Date, now: Date, limit: number): Date[] {
  if (rule.kind === 'every') {
    const a = anchor.getTime();
    const lastK = Math.floor((now.getTime() - a) / rule.everyMs);
    const out: Date[] = [];
    for (let k = lastK; k >= 0 && out.length < limit; k--) {
      const t = a + k * rule.everyMs;
      if (t <= after.getTime()) break;
      out.push(new Date(t));
    }
    return out;
  }
  const cron = new Cron(rule.expression, { paused: true, timezone: rule.timezone, mode: '5-or-6-parts' });
  // previousRuns excludes its reference, so nudge it to include a due time exactly at `now`.
  return cron.previousRuns(limit, new Date(now.getTime() + 1)).filter((d) => d.getTime() > after.getTime());
}

/** Number of due times in (after, until], capped at COUNT_CAP. */
function countDue(rule: ScheduleRule, anchor: Date, after: Date, until: Date): number {
  if (rule.kind === 'every') {
    const a = anchor.getTime();
    const first = Math.max(0, Math.floor((after.getTime() - a) / rule.everyMs) + 1);
    const last = Math.floor((until.getTime() - a) / rule.everyMs);
    return Math.min(COUNT_CAP, Math.max(0, last - first + 1));
  }
  const cron = new Cron(rule.expression, { paused: true, timezone: rule.timezone, mode: '5-or-6-parts' });
  let n = 0;
  let cursor: Date | null = after;
  while (n < COUNT_CAP) {
    cursor = cron.nextRun(cursor);
    if (!cursor || cursor.getTime() > until.getTime()) break;
    n++;
  }
  return n;
}
