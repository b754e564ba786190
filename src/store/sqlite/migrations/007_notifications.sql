-- 007_notifications: the outbox of notifications (a task that failed for good, a daemon down or back),
-- written in the transaction that ends the task FAILED; one delivery row per channel, leased by the
-- process sending it; and daemon outages, one open row per host, so one process in a cluster alerts.

CREATE TABLE notifications (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  kind         TEXT    NOT NULL CHECK (kind IN ('task_failed', 'daemon_down', 'daemon_up')),
  -- the task as it ended (a snapshot: a later retry does not change what was reported)
  task_id      INTEGER REFERENCES tasks (id) ON DELETE CASCADE,
  task_name    TEXT,
  queue        TEXT,
  error        TEXT,
  error_stack  TEXT,
  attempts     INTEGER,
  max_attempts INTEGER,
  host         TEXT,
  -- the payload's JSON text, shortened; the last lines of output as a JSON array
  payload      TEXT,
  output_tail  TEXT    NOT NULL DEFAULT '[]',
  -- daemon alerts: host, last heartbeat, … as JSON
  detail       TEXT    NOT NULL DEFAULT '{}',
  created_at   INTEGER NOT NULL,
  -- 0 until a deliverer has written its delivery rows (one per channel that wants it)
  routed       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX notifications_unrouted ON notifications (id) WHERE routed = 0;
CREATE INDEX notifications_task ON notifications (task_id);

CREATE TABLE notification_deliveries (
  notification_id INTEGER NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  channel         TEXT    NOT NULL,
  state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent')),
  -- decided at the first claim: sent alone, gathered into its window's digest, or an alert (never gathered)
  mode            TEXT    CHECK (mode IN ('single', 'digest', 'alert')),
  window_start    INTEGER,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_at         INTEGER NOT NULL,
  lease_owner     TEXT,
  lease_until     INTEGER,
  last_error      TEXT,
  sent_at         INTEGER,
  PRIMARY KEY (notification_id, channel)
);
CREATE INDEX notification_deliveries_pending ON notification_deliveries (channel, next_at) WHERE state = 'pending';
CREATE INDEX notification_deliveries_window ON notification_deliveries (channel, window_start) WHERE mode = 'single';
CREATE INDEX notification_deliveries_digests ON notification_deliveries (channel, sent_at) WHERE mode = 'digest';

CREATE TABLE daemon_outages (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  host        TEXT    NOT NULL,
  last_seen   INTEGER NOT NULL,
  noticed_at  INTEGER NOT NULL,
  noticed_by  TEXT    NOT NULL,
  ended_at    INTEGER,
  open        INTEGER NOT NULL DEFAULT 1
);
-- At most one open outage per host: whoever inserts it sends the alert.
CREATE UNIQUE INDEX daemon_outages_open ON daemon_outages (host) WHERE open = 1;
