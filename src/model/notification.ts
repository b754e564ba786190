// A notification: what happened (a task failed for good, a daemon stopped or came back), as written
// in the transaction that decided it; and one channel's delivery of it. Knows nothing of SMTP or HTTP.
import type { Json } from './task.js';

export const NOTIFICATION_KINDS = ['task_failed', 'daemon_down', 'daemon_up'] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

/** Lines of output a notification keeps (the last ones), and characters of payload. */
export const NOTIFICATION_OUTPUT_LINES = 20;
export const NOTIFICATION_PAYLOAD_CHARS = 2_000;

export interface Notification {
  id: number;
  kind: NotificationKind;
  /** The task as it ended (task_failed); null for daemon alerts. */
  taskId: number | null;
  taskName: string | null;
  queue: string | null;
  error: string | null;
  errorStack: string | null;
  attempts: number | null;
  maxAttempts: number | null;
  /** The host that ran the last attempt, when known (a rescued task's host is named in its error). */
  host: string | null;
  /** The payload's JSON text, at most NOTIFICATION_PAYLOAD_CHARS characters. */
  payload: string | null;
  outputTail: string[];
  /** Daemon alerts: { host, lastSeen, noticedBy, downSince? }. */
  detail: Json;
  createdAt: Date;
}

/** How a delivery is sent: alone, in its window's digest, or as an alert (never gathered). */
export type DeliveryMode = 'single' | 'digest' | 'alert';

/** One channel's delivery of one notification, leased to the caller that claimed it. */
export interface ClaimedDelivery {
  notification: Notification;
  channel: string;
  mode: DeliveryMode;
  /** Claims so far, this one included (a killed deliverer's claim counts). */
  attempts: number;
  /** The storm window it was counted in (single) or gathered into (digest). */
  windowStart: Date | null;
}

export interface DeliveryRef {
  notificationId: number;
  channel: string;
}

export interface DeliveryClaim {
  channel: string;
  /** Who holds the lease (a process-unique id). */
  owner: string;
  now: Date;
  /** How long a claim is held before another process may take it again (a killed deliverer). */
  leaseMs: number;
  /** Most single deliveries claimed in one call. */
  limit: number;
  /** The storm window: at most `perWindow` single deliveries per window; the rest gather into a digest. */
  windowMs: number;
  perWindow: number;
  /** Most deliveries one digest lists (default 1,000); one digest is claimed per window at most. */
  digestMax?: number;
}

/** What the daemon check found and recorded (each alert written by exactly one caller in a cluster). */
export interface DaemonCheck {
  /** Hosts whose outage this call opened (a daemon_down notification was written). */
  down: string[];
  /** Hosts whose outage this call closed (a daemon_up notification was written). */
  up: string[];
}
