// Time and randomness come from here, so tests can pin both.

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A number in [0, 1), as Math.random. */
export type Random = () => number;

/** ISO-8601 to the second: tables and summaries are read by people, JSON keeps the milliseconds. */
export function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
