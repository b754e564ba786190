// Failed logins are limited per client address and per user name: after MAX_FAILURES within WINDOW_MS
// a key is refused until its oldest failure leaves the window. Kept in memory, per web process: a
// restart forgets it, and N web processes allow N times as many guesses, which scrypt's cost per
// guess (and this limit) still keep to a few thousand a day; the database is spared a write per try.
import type { Clock } from '../../model/clock.js';

export const MAX_FAILURES = 10;
export const WINDOW_MS = 15 * 60_000;
/** Keys tracked at most; the oldest are forgotten first, so a flood of addresses cannot exhaust memory. */
const MAX_KEYS = 10_000;

export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly clock: Clock,
    private readonly max = MAX_FAILURES,
    private readonly windowMs = WINDOW_MS,
  ) {}

  /** Milliseconds until any of these keys may try again; 0 when all may. */
  retryAfter(keys: readonly string[]): number {
    const now = this.clock.now().getTime();
    let wait = 0;
    for (const key of keys) {
      const recent = this.recent(key, now);
      if (recent.length >= this.max) wait = Math.max(wait, (recent[0] as number) + this.windowMs - now);
    }
    return wait;
  }

  fail(keys: readonly string[]): void {
    const now = this.clock.now().getTime();
    for (const key of keys) {
      const recent = this.recent(key, now);
      recent.push(now);
      this.failures.delete(key);
      this.failures.set(key, recent);
    }
    while (this.failures.size > MAX_KEYS) this.failures.delete(this.failures.keys().next().value as string);
  }

  succeed(keys: readonly string[]): void {
    for (const key of keys) this.failures.delete(key);
  }

  private recent(key: string, now: number): number[] {
    return (this.failures.get(key) ?? []).filter((t) => t > now - this.windowMs);
  }
}
