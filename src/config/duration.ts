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

const PART = /(\d+(?:\.\d+)?)\s*([a-z]+)/gy;

/**
 * Parses a duration. A bare number is milliseconds. Several parts add up
 * ("1h 30m"). Throws InvalidInputError naming the value and the accepted forms.
 */
export function parseDuration(value: string | number, what = 'duration'): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return Math.round(value);
    throw bad(String(value), what);
  }
  const text = value.trim().toLowerCase();
  if (/^\d+$/.test(text)) return Number(text);
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
  return Math.round(total);
}

function bad(value: string, what: string): InvalidInputError {
  return new InvalidInputError(
    `invalid ${what} "${value}": write a number with a unit, such as "250ms", "90s", "5 minutes", "1 hour" or "2 days".`,
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
