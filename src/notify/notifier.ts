// The Notifier: delivers what the store's outbox holds. Each pass it (1) checks daemon heartbeats,
// when asked to, so a dead host is alerted once in the cluster; (2) routes new notifications to the
// configured channels; (3) per channel, leases due deliveries, sends them (a digest per recipient
// list for those gathered past the storm quota), and marks them sent at once. A send that fails is
// logged and tried again later with back-off; it never touches the task. A deliverer killed mid-send
// leaves its lease to expire, and another sends it then.
import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';
import { type Clock, type Random, systemClock } from '../model/clock.js';
import type { Logger } from '../model/logger.js';
import type { ClaimedDelivery, DeliveryRef } from '../model/notification.js';
import type { Store } from '../store/store.js';
import { retryDelay } from '../worker/backoff.js';
import { type Channel, type Message, routeFor } from './channels.js';
import { EmailChannel } from './email.js';
import { WebhookChannel } from './webhook.js';

export interface NotifierOptions {
  store: Store;
  config: Pick<Config, 'notify' | 'web'>;
  log: Logger;
  /** Who delivers and notices, as recorded on outages: "daemon", "watchdog", "web", … */
  role: string;
  /** Check daemon heartbeats and alert on outages (every pass, at most every few seconds). */
  watchDaemons?: boolean;
  /** The channels; by default built from `config.notify`. */
  channels?: Channel[];
  clock?: Clock;
  random?: Random;
}

export interface PassReport {
  sent: number;
  failed: number;
  down: string[];
  up: string[];
}

/** Deliveries claimed per round; a pass goes on while rounds come back full. */
const CLAIM_LIMIT = 20;
const MAX_ROUNDS = 20;
/** Daemon heartbeats are checked every pass, but at most this often. */
const DAEMON_CHECK_MIN_MS = 1_000;
const PRUNE_EVERY_MS = 3_600_000;
/** Sent notifications are kept this long (for inspection), then deleted. */
const KEEP_SENT_MS = 30 * 86_400_000;

export function createChannels(config: Pick<Config, 'notify' | 'web'>): Channel[] {
  const render = { publicUrl: config.web.publicUrl };
  const channels: Channel[] = [];
  if (config.notify.email) channels.push(new EmailChannel(config.notify.email, render));
  if (config.notify.webhook) channels.push(new WebhookChannel(config.notify.webhook, render));
  return channels;
}

export class Notifier {
  readonly owner: string;
  private readonly channels: Channel[];
  private readonly clock: Clock;
  private readonly random: Random;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<PassReport> | null = null;
  private stopped = false;
  private lastCheck = 0;
  private lastPrune = 0;
  /** Totals since start, for the daemon's summary. */
  readonly totals = { sent: 0, failed: 0, alerts: 0, lastError: null as string | null };

  constructor(private readonly options: NotifierOptions) {
    this.owner = `${hostname()}:${process.pid}:${options.role}:${Math.random().toString(36).slice(2, 8)}`;
    this.channels = options.channels ?? createChannels(options.config);
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
  }

  /** Runs a pass every `notify.pollInterval` until stopped; idempotent. */
  start(): void {
    if (this.timer || this.stopped) return;
    const loop = () => {
      void this.pass()
        .catch((err: unknown) => this.options.log.error('a notification pass failed; trying again', { error: message(err) }))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, this.options.config.notify.pollInterval);
        });
    };
    this.timer = setTimeout(loop, 0);
  }

  /** Waits for the pass under way, then closes the channels; leaves no timer behind. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
    for (const c of this.channels) c.close();
  }

  /** One pass (see the header); concurrent calls share the pass under way. */
  pass(): Promise<PassReport> {
    this.running ??= this.passNow().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /**
   * Opens or closes per-host outages from the heartbeats, writing their alerts (sent by the next pass,
   * here or elsewhere). The daemon that is down cannot notice itself: the watchdog and other daemons do.
   */
  async checkDaemons(): Promise<{ down: string[]; up: string[] }> {
    const { store, config, log } = this.options;
    const now = this.clock.now();
    this.lastCheck = now.getTime();
    const check = await store.checkDaemons({ now, staleMs: config.notify.daemonDownAfter, by: this.owner });
    for (const host of check.down) log.warn('no daemon heartbeat from a host: alerting', { host });
    for (const host of check.up) log.info('a daemon is running again: alerting', { host });
    this.totals.alerts += check.down.length + check.up.length;
    return check;
  }

  private async passNow(): Promise<PassReport> {
    const { store, config } = this.options;
    const report: PassReport = { sent: 0, failed: 0, down: [], up: [] };
    const now = this.clock.now();
    if (this.options.watchDaemons && now.getTime() - this.lastCheck >= DAEMON_CHECK_MIN_MS) {
      // A failed check (the database away) must not keep what is already due from being sent.
      try {
        Object.assign(report, await this.checkDaemons());
      } catch (err) {
        this.options.log.error('checking daemon heartbeats failed; trying again next pass', { error: message(err) });
      }
    }
    if (this.channels.length === 0) return report;
    const route = routeFor(config.notify);
    const configured = new Set(this.channels.map((c) => c.name));
    while ((await store.routeNotifications((n) => route(n).filter((c) => configured.has(c)), this.clock.now())) > 0) {
      // a burst of failures is routed 500 at a time
    }
    // Each channel on its own: one whose store calls fail does not stop the other.
    const results = await Promise.allSettled(this.channels.map((c) => this.deliver(c)));
    for (const [i, r] of results.entries()) {
      if (r.status === 'fulfilled') {
        report.sent += r.value.sent;
        report.failed += r.value.failed;
      } else {
        this.options.log.error(`delivering by ${this.channels[i]?.name} failed; trying again next pass`, { error: message(r.reason) });
      }
    }
    if (now.getTime() - this.lastPrune >= PRUNE_EVERY_MS) {
      this.lastPrune = now.getTime();
      await store.pruneNotifications(new Date(now.getTime() - KEEP_SENT_MS));
    }
    return report;
  }

  /** Claims and sends one channel's due deliveries, round after round while rounds come back full. */
  private async deliver(channel: Channel): Promise<{ sent: number; failed: number }> {
    const { store, config } = this.options;
    const result = { sent: 0, failed: 0 };
    for (let round = 0; round < MAX_ROUNDS && !this.stopped; round++) {
      const claimed = await store.claimDeliveries({
        channel: channel.name,
        owner: this.owner,
        now: this.clock.now(),
        leaseMs: config.notify.lease,
        limit: CLAIM_LIMIT,
        windowMs: config.notify.interval,
        perWindow: config.notify.maxPerInterval,
      });
      if (claimed.length === 0) break;
      const claimedAt = Date.now();
      const batch = messages(channel, claimed);
      for (const [i, m] of batch.entries()) {
        // Sends are one after another: past half the lease, the rest are handed back rather than sent
        // late, when another deliverer may already have taken them.
        if (Date.now() - claimedAt > config.notify.lease / 2) {
          const rest = batch.slice(i).flatMap((r) => (r.kind === 'digest' ? r.deliveries : [r.delivery]));
          await store.deferDeliveries(
            rest.map((d) => ({ notificationId: d.notification.id, channel: channel.name })),
            this.owner,
            'handed back unsent: the sends before it took half the lease',
            this.clock.now(),
          );
          return result;
        }
        const ok = await this.sendOne(channel, m);
        const n = m.kind === 'digest' ? m.deliveries.length : 1;
        if (ok) result.sent += n;
        else result.failed += n;
      }
      if (claimed.filter((d) => d.mode !== 'digest').length < CLAIM_LIMIT) break;
    }
    return result;
  }

  private async sendOne(channel: Channel, m: Message): Promise<boolean> {
    const { store, config, log } = this.options;
    const deliveries = m.kind === 'digest' ? m.deliveries : [m.delivery];
    const refs: DeliveryRef[] = deliveries.map((d) => ({ notificationId: d.notification.id, channel: channel.name }));
    const what = describe(m);
    try {
      await channel.send(m);
    } catch (err) {
      const attempts = Math.max(...deliveries.map((d) => d.attempts));
      const delay = retryDelay(attempts, { baseMs: config.notify.backoff, maxMs: config.notify.backoffMax }, this.random);
      const retryAt = new Date(this.clock.now().getTime() + delay);
      this.totals.failed += deliveries.length;
      this.totals.lastError = `${channel.name}: ${message(err)}`;
      log.warn(`sending a notification by ${channel.name} failed; it is tried again later (the task is unaffected)`, {
        ...what,
        attempt: attempts,
        error: message(err),
        retryAt: retryAt.toISOString(),
      });
      await store.deferDeliveries(refs, this.owner, message(err), retryAt);
      return false;
    }
    // Marked at once: a process that dies between the accept and this write sends it again after
    // the lease (at least once); nothing else can send it twice.
    await this.markSent(refs);
    this.totals.sent += deliveries.length;
    log.info(`notification sent by ${channel.name}`, what);
    return true;
  }

  /** The message is out: the mark is retried (briefly) rather than let the lease lapse and send it again. */
  private async markSent(refs: DeliveryRef[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.options.store.markDelivered(refs, this.clock.now());
        return;
      } catch (err) {
        if (attempt >= 5) {
          this.options.log.error('a sent notification could not be marked sent; it will be sent again after its lease', {
            ids: refs.map((r) => r.notificationId),
            error: message(err),
          });
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
      }
    }
  }
}

/** Singles and alerts one message each; digests one message per recipient list. */
function messages(channel: Channel, claimed: readonly ClaimedDelivery[]): Message[] {
  const out: Message[] = [];
  const digests = new Map<string, { recipients: readonly string[] | null; deliveries: ClaimedDelivery[] }>();
  for (const d of claimed) {
    if (d.mode !== 'digest') {
      out.push({ kind: 'single', delivery: d });
      continue;
    }
    const recipients = channel.recipients(d.notification);
    const key = recipients ? [...recipients].sort().join(',') : '';
    const group = digests.get(key) ?? { recipients, deliveries: [] };
    group.deliveries.push(d);
    digests.set(key, group);
  }
  for (const g of digests.values()) out.push({ kind: 'digest', deliveries: g.deliveries, recipients: g.recipients });
  return out;
}

function describe(m: Message): Record<string, unknown> {
  if (m.kind === 'digest') return { digest: m.deliveries.length, tasks: m.deliveries.map((d) => d.notification.taskId) };
  const n = m.delivery.notification;
  return n.kind === 'task_failed' ? { kind: n.kind, task: n.taskId, name: n.taskName } : { kind: n.kind, detail: n.detail };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
