// The PostgreSQL side of notifications: the outbox rows written where a task ends FAILED, their delivery
// rows per channel, claims with a lease (a per-channel advisory lock, rows taken FOR UPDATE SKIP LOCKED),
// and daemon outages. Functions that write several statements run inside the caller's transaction.
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
import type { DaemonCheckRequest, ExternalTransaction, NotificationRecord } from '../store.js';

type Db = ExternalTransaction;

interface NotificationRow {
  id: string;
  kind: NotificationKind;
  task_id: string | null;
  task_name: string | null;
  queue: string | null;
  error: string | null;
  error_stack: string | null;
  attempts: number | null;
  max_attempts: number | null;
  host: string | null;
  payload: string | null;
  output_tail: string[];
  detail: Json;
  created_at: Date;
}

function toNotification(r: NotificationRow): Notification {
  return {
    id: Number(r.id),
    kind: r.kind,
    taskId: r.task_id === null ? null : Number(r.task_id),
    taskName: r.task_name,
    queue: r.queue,
    error: r.error,
    errorStack: r.error_stack,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    host: r.host,
    payload: r.payload,
    outputTail: r.output_tail,
    detail: r.detail,
    createdAt: r.created_at,
  };
}

async function rows<T>(db: Db, sql: string, values: unknown[] = []): Promise<T[]> {
  return (await db.query(sql, values)).rows as T[];
}

/**
 * Inside the transaction that ended these tasks FAILED: one task_failed notification each, a snapshot
 * of the task as it ended (the payload shortened, the last lines of output).
 */
export async function recordFailures(db: Db, ids: readonly number[], now: Date): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    `INSERT INTO notifications (kind, task_id, task_name, queue, error, error_stack, attempts, max_attempts, host,
                                payload, output_tail, created_at)
     SELECT 'task_failed', t.id, t.name, t.queue, t.error, t.error_stack, t.attempts, t.max_attempts, t.locked_host,
            left(t.payload::text, ${NOTIFICATION_PAYLOAD_CHARS}),
            (SELECT coalesce(jsonb_agg(e.line ORDER BY e.i), '[]'::jsonb)
               FROM jsonb_array_elements(t.output) WITH ORDINALITY AS e (line, i)
              WHERE e.i > jsonb_array_length(t.output) - ${NOTIFICATION_OUTPUT_LINES}),
            $2
       FROM tasks t WHERE t.id = ANY($1::bigint[]) AND t.status = 'FAILED'
      ORDER BY t.id`,
    [ids, now],
  );
}

/** Writes the delivery rows of notifications not routed yet: one per channel `route` names. */
export async function routeNotifications(db: Db, route: (n: Notification) => readonly string[], now: Date): Promise<number> {
  const found = await rows<NotificationRow>(
    db,
    'SELECT * FROM notifications WHERE NOT routed ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED',
  );
  if (found.length === 0) return 0;
  const ids: number[] = [];
  const channels: string[] = [];
  for (const r of found) {
    for (const channel of route(toNotification(r))) {
      ids.push(Number(r.id));
      channels.push(channel);
    }
  }
  await db.query(
    `INSERT INTO notification_deliveries (notification_id, channel, state, next_at)
     SELECT id, channel, 'pending', $3 FROM unnest($1::bigint[], $2::text[]) AS d (id, channel)
     ON CONFLICT DO NOTHING`,
    [ids, channels, now],
  );
  await db.query('UPDATE notifications SET routed = true WHERE id = ANY($1::bigint[])', [found.map((r) => Number(r.id))]);
  return found.length;
}

export async function claimDeliveries(db: Db, claim: DeliveryClaim): Promise<ClaimedDelivery[]> {
  // Claimers of one channel take turns (the window's count must not be read by two at once); the lock
  // ends with the transaction. The schema is in the key, so separate taskmill schemas never wait on each other.
  await db.query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':notify:' || $1))", [claim.channel]);
  const found = await rows<{ notification_id: string; kind: NotificationKind; mode: DeliveryMode | null; window_start: Date | null }>(
    db,
    `SELECT d.notification_id, n.kind, d.mode, d.window_start
       FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id
      WHERE d.channel = $1 AND d.state = 'pending' AND d.next_at <= $2 AND (d.lease_until IS NULL OR d.lease_until < $2)
      ORDER BY d.notification_id LIMIT 2000
        FOR UPDATE OF d SKIP LOCKED`,
    [claim.channel, claim.now],
  );
  if (found.length === 0) return [];
  const candidates = found.map(
    (r): Candidate => ({
      notificationId: Number(r.notification_id),
      kind: r.kind,
      mode: r.mode,
      windowStart: r.window_start === null ? null : r.window_start.getTime(),
    }),
  );
  const [count] = await rows<{ n: number }>(
    db,
    "SELECT count(*)::int AS n FROM notification_deliveries WHERE channel = $1 AND mode = 'single' AND window_start = $2",
    [claim.channel, new Date(windowOf(claim.now, claim.windowMs))],
  );
  const [digest] = await rows<{ d: boolean }>(
    db,
    `SELECT EXISTS (SELECT 1 FROM notification_deliveries WHERE channel = $1 AND mode = 'digest'
                      AND (sent_at >= $2 OR (state = 'pending' AND lease_until >= $3))) AS d`,
    [claim.channel, new Date(windowOf(claim.now, claim.windowMs)), claim.now],
  );
  const plan = planClaim(candidates, count?.n ?? 0, claim, digest?.d === true);
  if (plan.gather.length > 0) {
    await db.query(
      `UPDATE notification_deliveries d SET mode = 'digest', window_start = g.w
         FROM unnest($1::bigint[], $2::timestamptz[]) AS g (id, w)
        WHERE d.notification_id = g.id AND d.channel = $3`,
      [plan.gather.map((g) => g.notificationId), plan.gather.map((g) => new Date(g.windowStart)), claim.channel],
    );
  }
  if (plan.take.length === 0) return [];
  const taken = await rows<NotificationRow & { d_mode: DeliveryMode; d_window: Date | null; d_attempts: number }>(
    db,
    `WITH taken AS (
       UPDATE notification_deliveries d
          SET mode = t.mode, window_start = t.w, lease_owner = $4, lease_until = $5, attempts = d.attempts + 1
         FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS t (id, mode, w)
        WHERE d.notification_id = t.id AND d.channel = $6
       RETURNING d.notification_id, d.mode, d.window_start, d.attempts)
     SELECT n.*, taken.mode AS d_mode, taken.window_start AS d_window, taken.attempts AS d_attempts
       FROM taken JOIN notifications n ON n.id = taken.notification_id
      ORDER BY n.id`,
    [
      plan.take.map((t) => t.notificationId),
      plan.take.map((t) => t.mode),
      plan.take.map((t) => (t.windowStart === null ? null : new Date(t.windowStart))),
      claim.owner,
      new Date(claim.now.getTime() + claim.leaseMs),
      claim.channel,
    ],
  );
  return taken.map((r) => ({
    notification: toNotification(r),
    channel: claim.channel,
    mode: r.d_mode,
    attempts: r.d_attempts,
    windowStart: r.d_window,
  }));
}

/** Sent: never claimed again (whoever holds the lease now: a second send is what this prevents). */
export async function markDelivered(db: Db, refs: readonly DeliveryRef[], now: Date): Promise<void> {
  await db.query(
    `UPDATE notification_deliveries d
        SET state = 'sent', sent_at = $3, lease_owner = NULL, lease_until = NULL, last_error = NULL
       FROM unnest($1::bigint[], $2::text[]) AS r (id, channel)
      WHERE d.notification_id = r.id AND d.channel = r.channel AND d.state = 'pending'`,
    [refs.map((r) => r.notificationId), refs.map((r) => r.channel), now],
  );
}

/** Not sent: the lease is handed back and the delivery waits until `retryAt`. */
export async function deferDeliveries(db: Db, refs: readonly DeliveryRef[], owner: string, error: string, retryAt: Date): Promise<void> {
  await db.query(
    `UPDATE notification_deliveries d
        SET next_at = $4, last_error = $5, lease_owner = NULL, lease_until = NULL
       FROM unnest($1::bigint[], $2::text[]) AS r (id, channel)
      WHERE d.notification_id = r.id AND d.channel = r.channel AND d.state = 'pending' AND d.lease_owner = $3`,
    [refs.map((r) => r.notificationId), refs.map((r) => r.channel), owner, retryAt, error.slice(0, 2_000)],
  );
}

/**
 * Opens an outage for each host whose newest heartbeat is older than `staleMs`, and closes the open
 * outage of each host whose daemon sends heartbeats again, writing each alert in the same transaction:
 * the open-outage row (unique per host) decides which caller in a cluster alerts. Heartbeats of dead
 * daemons on a host whose daemon runs again are deleted, so a later graceful stop there is no outage.
 */
export async function checkDaemons(db: Db, req: DaemonCheckRequest): Promise<DaemonCheck> {
  const staleBefore = new Date(req.now.getTime() - req.staleMs);
  const hosts = await rows<{ host: string; last: Date }>(
    db,
    'SELECT host, max(last_seen) AS last FROM daemons GROUP BY host ORDER BY host',
  );
  const result: DaemonCheck = { down: [], up: [] };
  for (const h of hosts) {
    if (h.last < staleBefore) {
      const opened = await rows(
        db,
        `INSERT INTO daemon_outages (host, last_seen, noticed_at, noticed_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT (host) WHERE open DO NOTHING RETURNING id`,
        [h.host, h.last, req.now, req.by],
      );
      if (opened.length === 0) continue;
      const detail = { host: h.host, lastSeen: h.last.toISOString(), noticedBy: req.by };
      await db.query("INSERT INTO notifications (kind, host, detail, created_at) VALUES ('daemon_down', $1, $2::jsonb, $3)", [
        h.host,
        JSON.stringify(detail),
        req.now,
      ]);
      result.down.push(h.host);
    } else {
      await db.query('DELETE FROM daemons WHERE host = $1 AND last_seen < $2', [h.host, staleBefore]);
      const closed = await rows<{ last_seen: Date }>(
        db,
        'UPDATE daemon_outages SET open = false, ended_at = $2 WHERE host = $1 AND open RETURNING last_seen',
        [h.host, req.now],
      );
      const outage = closed[0];
      if (!outage) continue;
      const detail = {
        host: h.host,
        lastSeen: h.last.toISOString(),
        downSince: outage.last_seen.toISOString(),
        noticedBy: req.by,
      };
      await db.query("INSERT INTO notifications (kind, host, detail, created_at) VALUES ('daemon_up', $1, $2::jsonb, $3)", [
        h.host,
        JSON.stringify(detail),
        req.now,
      ]);
      result.up.push(h.host);
    }
  }
  return result;
}

export async function listNotifications(db: Db, limit: number): Promise<NotificationRecord[]> {
  const found = await rows<NotificationRow & { deliveries: { channel: string; state: 'pending' | 'sent'; mode: DeliveryMode | null; attempts: number; last_error: string | null; sent_at: string | null }[] }>(
    db,
    `SELECT n.*, coalesce((SELECT json_agg(json_build_object('channel', d.channel, 'state', d.state, 'mode', d.mode,
                                     'attempts', d.attempts, 'last_error', d.last_error, 'sent_at', d.sent_at) ORDER BY d.channel)
                             FROM notification_deliveries d WHERE d.notification_id = n.id), '[]') AS deliveries
       FROM notifications n ORDER BY n.id DESC LIMIT $1`,
    [limit],
  );
  return found.map((r) => ({
    ...toNotification(r),
    deliveries: r.deliveries.map((d) => ({
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
export async function pruneNotifications(db: Db, before: Date): Promise<number> {
  const r = await db.query(
    `DELETE FROM notifications WHERE id IN (
       SELECT id FROM notifications n WHERE n.created_at < $1 AND n.routed
          AND NOT EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.notification_id = n.id AND d.state = 'pending')
        LIMIT 500)
     RETURNING id`,
    [before],
  );
  return r.rows.length;
}
