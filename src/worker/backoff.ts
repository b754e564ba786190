// When a failed attempt is tried again: exponential, capped, with jitter so retries spread out.
import type { Random } from '../model/clock.js';
import type { Backoff } from '../model/task.js';

/** Delay before the attempt after `attempt` (1-based): base·2^(attempt-1), capped at max, ±25 % jitter. */
export function retryDelay(attempt: number, backoff: Backoff, random: Random): number {
  const exponential = backoff.baseMs * 2 ** Math.max(0, attempt - 1);
  const capped = Math.min(exponential, backoff.maxMs);
  return Math.round(capped * (0.75 + 0.5 * random()));
}
