// Human durations ("90s", "5 minutes", "1 hour", "2 days") to milliseconds.
import { InvalidInputError } from '../model/errors.js';

const UNITS: Record<string, number> = {
  ms: 1, millisecond: 1, milliseconds: 1,
  s: 1_000, sec: 1_000, secs: 1_000, second: 1_000, seconds: 1_000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hr: 3_600_000, hrs: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
  w: 604_800_000, week: 604_800_000, weeks: 604_800_000,
};

/**
 * The longest delay a JS timer can wait (2^31 − 1 ms, about 24.8 days); a longer one fires at once.
 * Durations that drive a timer directly (poll interval, lease, stop timeouts) are refused above it.
 */
export const MAX_TIMER_MS = 2_147_483_647;

const PART = /(\d+(?:\.\d+)?)\s*([a-z]+)/gy;

/**
 * Parses a duration. A bare number is milliseconds. Several parts add up
 * ("1h 30m"). Throws InvalidInputError naming the value and the accepted forms.
 */
export function parseDuration(value: string | number, what = 'duration'): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0 && value <= Number.MAX_SAFE_INTEGER) return Math.round(value);
    throw bad(String(value), what);
  }
  const text = value.trim().toLowerCase();
  if (/^\d+$/.test(text)) return safe(Number(text), value, what);
  let total = 0;
  let pos = 0;
  let parts = 0;
  while (pos < text.length) {
    while (text[pos] === ' ' || text[pos] === ',') pos++;
    if (pos >= text.length) break;
    PART.lastIndex = pos;
    const m = PART.exec(text);
    const unit = m?.[2] !== undefined ? UNITS[m[2]] : undefined;
    if (!m || unit === undefined) throw bad(value, what);
    total += Number(m[1]) * unit;
    pos = PART.lastIndex;
    parts++;
  }
  if (parts === 0) throw bad(value, what);
  return safe(Math.round(total), value, what);
}

/** A duration past 285,000 years is a typo, not a wish; refusing it keeps every sum exact. */
function safe(ms: number, value: string, what: string): number {
  if (!Number.isSafeInteger(ms)) throw new InvalidInputError(`invalid ${what} "${value}": it is too long to be meant.`);
  return ms;
}

/**
 * Checks a parsed duration against what its use allows: `min` (0 or 1 ms) and, for a duration that
 * drives a timer, MAX_TIMER_MS. Returns a reason, or null when it is fine.
 */
export function durationProblem(ms: number, { min = 1, timer = false }: { min?: 0 | 1; timer?: boolean } = {}): string | null {
  if (ms < min) return 'must be longer than 0, such as "250ms" or "5s"';
  if (timer && ms > MAX_TIMER_MS) {
    return `must be at most ${MAX_TIMER_MS} ms (about 24.8 days, the longest a timer can wait), such as "1 day"`;
  }
  return null;
}

/** parseDuration, then durationProblem; throws InvalidInputError naming `what`. */
export function parseBoundedDuration(
  value: string | number,
  what: string,
  bounds: { min?: 0 | 1; timer?: boolean } = {},
): number {
  const ms = parseDuration(value, what);
  const problem = durationProblem(ms, bounds);
  if (problem) throw new InvalidInputError(`invalid ${what} ${JSON.stringify(value)}: it ${problem}.`);
  return ms;
}

function bad(value: string, what: string): InvalidInputError {
  const negative = value.trim().startsWith('-') ? 'it cannot be negative; ' : '';
  return new InvalidInputError(
    `invalid ${what} "${value}": ${negative}write a number with a unit, such as "250ms", "90s", "5 minutes", "1 hour" or "2 days".`,
  );
}

/** Formats milliseconds compactly for tables ("1h 5m", "90s"). */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${ms}ms`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1_000);
  for (const [unit, size] of [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.slice(0, 2).join(' ');
}
