// How one claim of a channel's pending deliveries is decided, the same on every engine: digests of
// closed storm windows first, then retries of singles and alerts, then new deliveries, of which at most
// `perWindow` per window go out alone and the rest gather into that window's digest.
import type { DeliveryClaim, DeliveryMode, NotificationKind } from '../model/notification.js';

/** A pending, unleased, due delivery as the engine found it (oldest notification first). */
export interface Candidate {
  notificationId: number;
  kind: NotificationKind;
  mode: DeliveryMode | null;
  windowStart: number | null;
}

export interface Plan {
  /** Claimed now, with the mode and window they are sent under. */
  take: { notificationId: number; mode: DeliveryMode; windowStart: number | null }[];
  /** New deliveries past the window's quota: marked digest of this window, sent when it closes. */
  gather: { notificationId: number; windowStart: number }[];
}

/** The most deliveries one digest lists; more go into the next digest. */
export const DIGEST_MAX = 1_000;

export function windowOf(now: Date, windowMs: number): number {
  return Math.floor(now.getTime() / windowMs) * windowMs;
}

/**
 * `usedInWindow`: single deliveries of this channel already counted in the current window (by any
 * process: the engines call this under the channel's lock). `digestInWindow`: a digest of this channel
 * was sent (or is being sent) in the current window, so a backlog larger than one digest goes out
 * one digest per window, never as a burst.
 */
export function planClaim(candidates: readonly Candidate[], usedInWindow: number, claim: DeliveryClaim, digestInWindow = false): Plan {
  const digestMax = digestInWindow ? 0 : (claim.digestMax ?? DIGEST_MAX);
  const current = windowOf(claim.now, claim.windowMs);
  const plan: Plan = { take: [], gather: [] };
  let digests = 0;
  let singles = 0;
  let used = usedInWindow;
  for (const c of candidates) {
    if (c.mode === 'digest') {
      // A digest goes out once its window has closed, with everything gathered in it (and older ones).
      if ((c.windowStart ?? 0) < current && digests < digestMax) {
        plan.take.push({ notificationId: c.notificationId, mode: 'digest', windowStart: c.windowStart });
        digests++;
      }
      continue;
    }
    if (c.mode === 'single' || c.mode === 'alert') {
      if (singles < claim.limit) {
        plan.take.push({ notificationId: c.notificationId, mode: c.mode, windowStart: c.windowStart });
        singles++;
      }
      continue;
    }
    // New: an alert is never held back; a failure goes alone while the window's quota lasts.
    if (c.kind !== 'task_failed') {
      if (singles < claim.limit) {
        plan.take.push({ notificationId: c.notificationId, mode: 'alert', windowStart: null });
        singles++;
      }
    } else if (used < claim.perWindow) {
      if (singles < claim.limit) {
        plan.take.push({ notificationId: c.notificationId, mode: 'single', windowStart: current });
        singles++;
        used++;
      }
    } else {
      plan.gather.push({ notificationId: c.notificationId, windowStart: current });
    }
  }
  return plan;
}
