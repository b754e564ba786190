// Wake-ups and cancel requests for the PostgreSQL store: NOTIFY between processes, an emitter within one.
import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { StoreEvent } from '../store.js';

/**
 * What the stores of one process on one schema share: an emitter, so a client and a worker in one
 * process wake each other without a round trip, and an origin that their notifications carry, so
 * their listeners skip the echo of what the emitter told them already.
 */
export interface LocalSignals {
  emitter: EventEmitter;
  origin: string;
}

const groups = new Map<string, LocalSignals>();

export function localSignals(key: string): LocalSignals {
  let group = groups.get(key);
  if (!group) {
    const emitter = new EventEmitter();
    emitter.setMaxListeners(0);
    group = { emitter, origin: randomUUID() };
    groups.set(key, group);
  }
  return group;
}

/** Channels are identifiers, at most 63 bytes: a long schema name is hashed. */
export function channelFor(schema: string): string {
  const name = `taskmill_${schema}`;
  return name.length <= 63 ? name : `taskmill_${createHash('sha1').update(schema).digest('hex').slice(0, 20)}`;
}

/** `wake`, `schedules` or `cancel:<id>`, then the origin when the sender's own process was told directly. */
export function encode(event: StoreEvent, origin: string | null): string {
  const kind = event.kind === 'cancel' ? `cancel:${event.id}` : event.kind;
  return origin === null ? kind : `${kind} ${origin}`;
}

export function decode(payload: string | undefined, ownOrigin: string): StoreEvent | null {
  const [kind = '', origin] = (payload ?? '').split(' ');
  if (origin === ownOrigin) return null;
  if (kind === 'wake') return { kind: 'wake' };
  if (kind === 'schedules') return { kind: 'schedules' };
  const id = kind.startsWith('cancel:') ? Number(kind.slice('cancel:'.length)) : NaN;
  return Number.isSafeInteger(id) ? { kind: 'cancel', id } : null;
}

const RECONNECT_DELAY_MS = 1_000;

/**
 * One dedicated connection LISTENing on the channel. When it drops it comes back after a delay and
 * reports a wake, since whatever was notified meanwhile is lost. It never throws to its owner.
 */
export class Listener {
  private client: pg.Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly channel: string,
    private readonly origin: string,
    private readonly deliver: (event: StoreEvent) => void,
  ) {}

  start(reconnecting = false): void {
    if (this.stopped) return;
    const client = new pg.Client({ ...this.config, keepAlive: true });
    this.client = client;
    client.on('notification', (n) => {
      const event = decode(n.payload, this.origin);
      if (event) this.deliver(event);
    });
    client.on('error', () => this.dropped(client));
    client.on('end', () => this.dropped(client));
    client
      .connect()
      .then(() => client.query(`LISTEN "${this.channel}"`))
      .then(() => {
        if (reconnecting && this.client === client) this.deliver({ kind: 'wake' });
      })
      .catch(() => this.dropped(client));
  }

  private dropped(client: pg.Client): void {
    if (this.stopped || this.client !== client) return;
    this.client = null;
    void client.end().catch(() => undefined);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.start(true);
    }, RECONNECT_DELAY_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }
}
