-- 007_notifications: the outbox of notifications (a task that failed for good, a daemon down or back),
-- written in the transaction that ends the task FAILED; one delivery row per channel, leased by the
-- process sending it; and daemon outages, one open row per host, so one process in a cluster alerts.

CREATE TABLE notifications (
  id           bigserial   PRIMARY KEY,
  kind         text        NOT NULL CHECK (kind IN ('task_failed', 'daemon_down', 'daemon_up')),
  -- the task as it ended (a snapshot: a later retry does not change what was reported)
  task_id      bigint      REFERENCES tasks (id) ON DELETE CASCADE,
  task_name    text,
  queue        text,
  error        text,
  error_stack  text,
  attempts     integer,
  max_attempts integer,
  host         text,
  -- the payload's JSON text, shortened; the last lines of output
  payload      text,
  output_tail  jsonb       NOT NULL DEFAULT '[]',
  -- daemon alerts: host, last heartbeat, …
  detail       jsonb       NOT NULL DEFAULT '{}',
  created_at   timestamptz NOT NULL,
  -- false until a deliverer has written its delivery rows (one per channel that wants it)
  routed       boolean     NOT NULL DEFAULT false
);
CREATE INDEX notifications_unrouted ON notifications (id) WHERE NOT routed;
CREATE INDEX notifications_task ON notifications (task_id);

CREATE TABLE notification_deliveries (
  notification_id bigint      NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  channel         text        NOT NULL,
  state           text        NOT NULL CHECK (state IN ('pending', 'sent')),
  -- decided at the first claim: sent alone, gathered into its window's digest, or an alert (never gathered)
  mode            text        CHECK (mode IN ('single', 'digest', 'alert')),
  window_start    timestamptz,
  attempts        integer     NOT NULL DEFAULT 0,
  next_at         timestamptz NOT NULL,
  lease_owner     text,
  lease_until     timestamptz,
  last_error      text,
  sent_at         timestamptz,
  PRIMARY KEY (notification_id, channel)
);
CREATE INDEX notification_deliveries_pending ON notification_deliveries (channel, next_at) WHERE state = 'pending';
CREATE INDEX notification_deliveries_window ON notification_deliveries (channel, window_start) WHERE mode = 'single';
CREATE INDEX notification_deliveries_digests ON notification_deliveries (channel, sent_at) WHERE mode = 'digest';

CREATE TABLE daemon_outages (
  id          bigserial   PRIMARY KEY,
  host        text        NOT NULL,
  last_seen   timestamptz NOT NULL,
  noticed_at  timestamptz NOT NULL,
  noticed_by  text        NOT NULL,
  ended_at    timestamptz,
  open        boolean     NOT NULL DEFAULT true
);
-- At most one open outage per host: whoever inserts it sends the alert.
CREATE UNIQUE INDEX daemon_outages_open ON daemon_outages (host) WHERE open;
