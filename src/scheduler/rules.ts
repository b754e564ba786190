// Fire times of a schedule rule: an interval counted from an anchor, or a cron expression
// evaluated in an IANA time zone (croner, which is right across daylight-saving changes).
import { Cron } from 'croner';
import { formatDuration, parseDuration } from '../config/duration.js';
import { InvalidInputError } from '../model/errors.js';
import type { ScheduleRule } from '../model/schedule.js';

/** The host's time zone, the default for cron rules. */
export function hostTimezone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

export function validateTimezone(zone: string, where: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return zone;
  } catch {
    throw new InvalidInputError(
      `${where}: unknown time zone "${zone}"; use an IANA name such as "Europe/Berlin", "America/New_York" or "UTC".`,
    );
  }
}

/** Builds a rule from `every` or `cron` (exactly one), validating it; `where` names the schedule in messages. */
export function parseRule(
  spec: { every?: string | number; cron?: string; timezone?: string },
  where: string,
): ScheduleRule {
  if ((spec.every === undefined) === (spec.cron === undefined)) {
    throw new InvalidInputError(`${where}: give exactly one of "every" (such as "5 minutes") or "cron" (such as "0 3 * * *").`);
  }
  if (spec.every !== undefined) {
    let everyMs: number;
    try {
      everyMs = parseDuration(spec.every, 'interval');
    } catch (err) {
      throw new InvalidInputError(`${where}: field "every": ${(err as Error).message}`);
    }
    if (everyMs < 1000) throw new InvalidInputError(`${where}: field "every" must be at least 1 second.`);
    if (spec.timezone !== undefined) validateTimezone(spec.timezone, where);
    return { kind: 'every', everyMs };
  }
  const expression = (spec.cron ?? '').trim();
  const fields = expression.split(/\s+/).length;
  if (fields !== 5 && fields !== 6) {
    throw new InvalidInputError(
      `${where}: field "cron": "${expression}" has ${fields} fields; use 5 (minute hour day month weekday) or 6 (with seconds first).`,
    );
  }
  const timezone = validateTimezone(spec.timezone ?? hostTimezone(), where);
  try {
    new Cron(expression, { paused: true, timezone, mode: '5-or-6-parts' });
  } catch (err) {
    throw new InvalidInputError(`${where}: field "cron": invalid expression "${expression}": ${(err as Error).message}`);
  }
  return { kind: 'cron', expression, timezone };
}

/** The first fire time strictly after `after`, or null if the rule never fires again. */
export function nextFireTime(rule: ScheduleRule, anchor: Date, after: Date): Date | null {
  if (rule.kind === 'every') {
    const elapsed = after.getTime() - anchor.getTime();
    const k = elapsed < 0 ? 0 : Math.floor(elapsed / rule.everyMs) + 1;
    return new Date(anchor.getTime() + k * rule.everyMs);
  }
  const cron = new Cron(rule.expression, { paused: true, timezone: rule.timezone, mode: '5-or-6-parts' });
  return cron.nextRun(after);
}

/** Up to `limit` fire times in (after, until], oldest first. */
export function fireTimesBetween(rule: ScheduleRule, anchor: Date, after: Date, until: Date, limit: number): Date[] {
  const times: Date[] = [];
  let cursor = after;
  while (times.length < limit) {
    const next = nextFireTime(rule, anchor, cursor);
    if (!next || next.getTime() > until.getTime()) break;
    times.push(next);
    cursor = next;
  }
  return times;
}

/** The next `count` fire times after `after`, for listings. */
export function upcoming(rule: ScheduleRule, anchor: Date, after: Date, count: number): Date[] {
  const times: Date[] = [];
  let cursor = after;
  for (let i = 0; i < count; i++) {
    const next = nextFireTime(rule, anchor, cursor);
    if (!next) break;
    times.push(next);
    cursor = next;
  }
  return times;
}

/** A rule as people write it, for tables ("every 5m", "cron 0 3 * * *"); the zone has its own column. */
export function describeRule(rule: ScheduleRule): string {
  return rule.kind === 'every' ? `every ${formatDuration(rule.everyMs)}` : `cron ${rule.expression}`;
}
