// Development stand-in for the web server while it is being built: cookies, form bodies, CSRF and a
// fixed principal around the pages plugin. The browser tests use the real server instead.
import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import formbody from '@fastify/formbody';
import Fastify from 'fastify';
import type { Taskmill } from '../../src/client/taskmill.js';
import { systemClock } from '../../src/model/clock.js';
import pagesPlugin from '../../src/web/pages/index.js';
import type { Principal } from '../../src/web/types.js';

export async function devServer(mill: Taskmill, principal: Principal): Promise<{ url: string; close(): Promise<void> }> {
  const app = Fastify();
  await app.register(cookie);
  await app.register(formbody);
  await app.register(csrf);
  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (request) => {
    request.principal = principal;
  });
  app.addHook('preHandler', (request, reply, done) => {
    if (request.method === 'POST') app.csrfProtection(request, reply, done);
    else done();
  });
  const logger = { debug() {}, info() {}, warn() {}, error: (m: string, c?: unknown) => console.error(m, c) };
  await app.register(pagesPlugin, { deps: { mill, config: mill.config, logger, clock: systemClock } });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url: address, close: () => app.close() };
}

/** Until the client's query methods land: the same answers built from list() (small data only). */
export function shimQueries(mill: Taskmill): void {
  const m = mill as unknown as Record<string, unknown>;
  if (typeof m.query === 'function') return;
  type F = { status?: string[]; name?: string; queue?: string; text?: string };
  const all = async (f: F) =>
    (await mill.list({ limit: 100_000 })).filter(
      (t) =>
        (!f.status || f.status.includes(t.status)) &&
        (!f.name || t.name === f.name) &&
        (!f.queue || t.queue === f.queue) &&
        (!f.text || JSON.stringify([t.payload, t.note, t.error]).toLowerCase().includes(f.text.toLowerCase())),
    );
  m.query = async (q: F & { limit?: number; cursor?: string | null; order?: string }) => {
    const rows = await all(q);
    if (q.order === 'asc') rows.reverse();
    const from = Number(q.cursor ?? 0);
    const limit = q.limit ?? 50;
    return { tasks: rows.slice(from, from + limit), nextCursor: rows.length > from + limit ? String(from + limit) : null };
  };
  m.count = async (q: F) => (await all(q)).length;
  m.taskNames = () => mill.handlers.names().filter((n) => !n.split('/').pop()?.startsWith('_'));
  m.taskSchema = async () => null;
  m.dependants = async (id: number) => (await all({})).filter((t) => t.prerequisites.includes(id));
  m.delete = async () => undefined;
  m.bulk = async (action: 'retry' | 'cancel' | 'delete', target: { ids?: number[]; filter?: F }) => {
    const ids = target.ids ?? (await all(target.filter ?? {})).map((t) => t.id);
    let changed = 0;
    for (const id of ids) {
      try {
        if (action === 'retry') await mill.retry(id);
        else if (action === 'cancel') await mill.cancel(id);
        changed++;
      } catch {
        /* skipped */
      }
    }
    return { matched: ids.length, changed };
  };
  m.stats = async () => {
    const rows = await all({});
    const zero = () => ({ WAITING: 0, STARTED: 0, COMPLETED: 0, FAILED: 0, CANCELLED: 0 }) as Record<string, number>;
    const byStatus = zero();
    const queues = new Map<string, Record<string, number>>();
    for (const t of rows) {
      byStatus[t.status] = (byStatus[t.status] ?? 0) + 1;
      const q = queues.get(t.queue) ?? zero();
      q[t.status] = (q[t.status] ?? 0) + 1;
      queues.set(t.queue, q);
    }
    const now = Math.floor(Date.now() / 60_000) * 60_000;
    const perMinute = Array.from({ length: 60 }, (_, i) => {
      const minute = now - (59 - i) * 60_000;
      const inMinute = rows.filter((t) => t.finishedAt && t.finishedAt.getTime() >= minute && t.finishedAt.getTime() < minute + 60_000);
      return { minute: new Date(minute), completed: inMinute.filter((t) => t.status === 'COMPLETED').length, failed: inMinute.filter((t) => t.status === 'FAILED').length };
    });
    return { byStatus, byQueue: [...queues].map(([queue, counts]) => ({ queue, counts })), perMinute, latestFailures: rows.filter((t) => t.status === 'FAILED').slice(0, 10) };
  };
  m.daemonStatus = async () => {
    const d = await mill.daemons();
    const alive = d.filter((x) => !x.stale);
    return { running: alive.length > 0, since: d[0]?.lastSeen ?? null, hosts: d.map((x) => x.host), daemons: d };
  };
}
