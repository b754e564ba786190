// The SQLite side of notifications: the outbox rows written where a task ends FAILED, their delivery
// rows per channel, claims with a lease (SQLite's write lock serialises claimers), and daemon outages.
// Every function runs inside the caller's write transaction (or a read, where it only reads).
import type Database from 'better-sqlite3';
import type { Json } from '../../model/task.js';
import {
  type ClaimedDelivery,
  type DaemonCheck,
  type DeliveryClaim,
  type DeliveryMode,
  type DeliveryRef,
  type Notification,
  type NotificationKind,
  NOTIFICATION_OUTPUT_LINES,
  NOTIFICATION_PAYLOAD_CHARS,
} from '../../model/notification.js';
import { type Candidate, planClaim, windowOf } from '../delivery-plan.js';
import type { DaemonCheckRequest, NotificationRecord } from '../store.js';

type Db = Database.Database;

interface NotificationRow {
  id: number;
  kind: NotificationKind;
  task_id: number | null;
  task_name: string | null;
  queue: string | null;
  error: string | null;
  error_stack: string | null;
  attempts: number | null;
  max_attempts: number | null;
  host: string | null;
  payload: string | null;
  output_tail: string;
  detail: string;
  created_at: number;
}

function toNotification(r: NotificationRow): Notification {
  return {
    id: r.id,
    kind: r.kind,
    taskId: r.task_id,
    taskName: r.task_name,
    queue: r.queue,
    error: r.error,
    errorStack: r.error_stack,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    host: r.host,
    payload: r.payload,
    outputTail: JSON.parse(r.output_tail) as string[],
    detail: JSON.parse(r.detail) as Json,
    createdAt: new Date(r.created_at),
  };
}

/**
 * Inside the transaction that ended these tasks FAILED: one task_failed notification each, a snapshot
 * of the task as it ended (the payload shortened, the last lines of output).
 */
export function recordFailures(db: Db, ids: readonly number[], now: Date): void {
  if (ids.length === 0) return;
  const insert = db.prepare(`
    INSERT INTO notifications (kind, task_id, task_name, queue, error, error_stack, attempts, max_attempts, host,
                               payload, output_tail, created_at)
    SELECT 'task_failed', id, name, queue, error, error_stack, attempts, max_attempts, locked_host,
           substr(payload, 1, ${NOTIFICATION_PAYLOAD_CHARS}),
           (SELECT json_group_array(value) FROM (
              SELECT value FROM json_each(tasks.output)
               WHERE key >= json_array_length(tasks.output) - ${NOTIFICATION_OUTPUT_LINES} ORDER BY key)),
           ?
      FROM tasks WHERE id = ? AND status = 'FAILED'`);
  for (const id of ids) insert.run(now.getTime(), id);
}

/** Writes the delivery rows of notifications not routed yet: one per channel `route` names. */
export function routeNotifications(db: Db, route: (n: Notification) => readonly string[], now: Date): number {
  const rows = db
    .prepare('SELECT * FROM notifications WHERE routed = 0 ORDER BY id LIMIT 500')
    .all() as NotificationRow[];
  const insert = db.prepare(
    `INSERT INTO notification_deliveries (notification_id, channel, state, next_at) VALUES (?, ?, 'pending', ?)
     ON CONFLICT DO NOTHING`,
  );
  const mark = db.prepare('UPDATE notifications SET routed = 1 WHERE id = ?');
  for (const r of rows) {
    for (const channel of route(toNotification(r))) insert.run(r.id, channel, now.getTime());
    mark.run(r.id);
  }
  return rows.length;
}

export function claimDeliveries(db: Db, claim: DeliveryClaim): ClaimedDelivery[] {
  const now = claim.now.getTime();
  const candidates = (
    db
      .prepare(
        `SELECT d.notification_id, n.kind, d.mode, d.window_start
           FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id
          WHERE d.channel = ? AND d.state = 'pending' AND d.next_at <= ? AND (d.lease_until IS NULL OR d.lease_until < ?)
          ORDER BY d.notification_id LIMIT 2000`,
      )
      .all(claim.channel, now, now) as { notification_id: number; kind: NotificationKind; mode: DeliveryMode | null; window_start: number | null }[]
  ).map(
    (r): Candidate => ({ notificationId: r.notification_id, kind: r.kind, mode: r.mode, windowStart: r.window_start }),
  );
  if (candidates.length === 0) return [];
  const { n: used } = db
    .prepare("SELECT count(*) AS n FROM notification_deliveries WHERE channel = ? AND mode = 'single' AND window_start = ?")
    .get(claim.channel, windowOf(claim.now, claim.windowMs)) as { n: number };
  const { d: digestInWindow } = db
    .prepare(
      `SELECT EXISTS (SELECT 1 FROM notification_deliveries WHERE channel = ? AND mode = 'digest'
                        AND (sent_at >= ? OR (state = 'pending' AND lease_until >= ?))) AS d`,
    )
    .get(claim.channel, windowOf(claim.now, claim.windowMs), now) as { d: number };
  const plan = planClaim(candidates, used, claim, digestInWindow === 1);
  const gather = db.prepare("UPDATE notification_deliveries SET mode = 'digest', window_start = ? WHERE notification_id = ? AND channel = ?");
  for (const g of plan.gather) gather.run(g.windowStart, g.notificationId, claim.channel);
  const take = db.prepare(`
    UPDATE notification_deliveries
       SET mode = ?, window_start = ?, lease_owner = ?, lease_until = ?, attempts = attempts + 1
     WHERE notification_id = ? AND channel = ?
    RETURNING attempts`);
  const read = db.prepare('SELECT * FROM notifications WHERE id = ?');
  return plan.take.map((t) => {
    const { attempts } = take.get(t.mode, t.windowStart, claim.owner, now + claim.leaseMs, t.notificationId, claim.channel) as {
      attempts: number;
    };
    return {
      notification: toNotification(read.get(t.notificationId) as NotificationRow),
      channel: claim.channel,
      mode: t.mode,
      attempts,
      windowStart: t.windowStart === null ? null : new Date(t.windowStart),
    };
  });
}

/** Sent: never claimed again (whoever holds the lease now: a second send is what this prevents). */
export function markDelivered(db: Db, refs: readonly DeliveryRef[], now: Date): void {
  const stmt = db.prepare(`
    UPDATE notification_deliveries SET state = 'sent', sent_at = ?, lease_owner = NULL, lease_until = NULL, last_error = NULL
     WHERE notification_id = ? AND channel = ? AND state = 'pending'`);
  for (const r of refs) stmt.run(now.getTime(), r.notificationId, r.channel);
}

/** Not sent: the lease is handed back and the delivery waits until `retryAt`. */
export function deferDeliveries(db: Db, refs: readonly DeliveryRef[], owner: string, error: string, retryAt: Date): void {
  const stmt = db.prepare(`
    UPDATE notification_deliveries SET next_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL
     WHERE notification_id = ? AND channel = ? AND state = 'pending' AND lease_owner = ?`);
  for (const r of refs) stmt.run(retryAt.getTime(), error.slice(0, 2_000), r.notificationId, r.channel, owner);
}

/**
 * Opens an outage for each host whose newest heartbeat is older than `staleMs`, and closes the open
 * outage of each host whose daemon sends heartbeats again, writing the alert of each in the same
 * transaction: the open-outage row (unique per host) makes one caller in a cluster the one who alerts.
 * Heartbeats of dead daemons on a host whose daemon runs again are deleted, so a later graceful stop
 * there (which removes only its own heartbeat) is not taken for an outage.
 */
export function checkDaemons(db: Db, req: DaemonCheckRequest): DaemonCheck {
  const now = req.now.getTime();
  const staleBefore = now - req.staleMs;
  const hosts = db.prepare('SELECT host, max(last_seen) AS last FROM daemons GROUP BY host ORDER BY host').all() as {
    host: string;
    last: number;
  }[];
  const open = db.prepare('SELECT id, last_seen, noticed_at FROM daemon_outages WHERE host = ? AND open = 1');
  const insertOutage = db.prepare('INSERT INTO daemon_outages (host, last_seen, noticed_at, noticed_by) VALUES (?, ?, ?, ?)');
  const close = db.prepare('UPDATE daemon_outages SET open = 0, ended_at = ? WHERE id = ?');
  const alert = db.prepare("INSERT INTO notifications (kind, host, detail, created_at) VALUES (?, ?, ?, ?)");
  const dropDead = db.prepare('DELETE FROM daemons WHERE host = ? AND last_seen < ?');
  const result: DaemonCheck = { down: [], up: [] };
  for (const h of hosts) {
    const outage = open.get(h.host) as { id: number; last_seen: number; noticed_at: number } | undefined;
    if (h.last < staleBefore) {
      if (outage) continue;
      insertOutage.run(h.host, h.last, now, req.by);
      const detail = { host: h.host, lastSeen: new Date(h.last).toISOString(), noticedBy: req.by };
      alert.run('daemon_down', h.host, JSON.stringify(detail), now);
      result.down.push(h.host);
    } else {
      dropDead.run(h.host, staleBefore);
      if (!outage) continue;
      close.run(now, outage.id);
      const detail = {
        host: h.host,
        lastSeen: new Date(h.last).toISOString(),
        downSince: new Date(outage.last_seen).toISOString(),
        noticedBy: req.by,
      };
      alert.run('daemon_up', h.host, JSON.stringify(detail), now);
      result.up.push(h.host);
    }
  }
  return result;
}

export function listNotifications(db: Db, limit: number): NotificationRecord[] {
  const rows = db.prepare('SELECT * FROM notifications ORDER BY id DESC LIMIT ?').all(limit) as NotificationRow[];
  const deliveries = db.prepare(
    'SELECT channel, state, mode, attempts, last_error, sent_at FROM notification_deliveries WHERE notification_id = ? ORDER BY channel',
  );
  return rows.map((r) => ({
    ...toNotification(r),
    deliveries: (
      deliveries.all(r.id) as { channel: string; state: 'pending' | 'sent'; mode: DeliveryMode | null; attempts: number; last_error: string | null; sent_at: number | null }[]
    ).map((d) => ({
      channel: d.channel,
      state: d.state,
      mode: d.mode,
      attempts: d.attempts,
      lastError: d.last_error,
      sentAt: d.sent_at === null ? null : new Date(d.sent_at),
    })),
  }));
}

/** Deletes notifications older than `before` that have nothing left to send. */
export function pruneNotifications(db: Db, before: Date): number {
  return db
    .prepare(
      `DELETE FROM notifications WHERE id IN (
         SELECT id FROM notifications n WHERE n.created_at < ? AND n.routed = 1
            AND NOT EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.notification_id = n.id AND d.state = 'pending')
          LIMIT 500)`,
    )
    .run(before.getTime()).changes;
}
