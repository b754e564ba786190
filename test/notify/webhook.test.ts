// The webhook channel against a real HTTP receiver on loopback: a signed JSON POST, verified the way
// README tells receivers to, retried with back-off on a non-2xx answer or a refused connection.
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { silentLogger } from '../../src/model/logger.js';
import { Notifier } from '../../src/notify/notifier.js';
import type { Worker } from '../../src/worker/worker.js';
import { ENGINES } from '../helpers/engines.js';
import { eventually } from '../helpers/fixtures.js';
import { makeProject, type Project } from '../helpers/project.js';

const SECRET = 'a-webhook-secret-of-some-length';
const HANDLERS = { broken: `export const options = { maxAttempts: 1 }; export default async () => { throw new Error('broken for good'); };` };

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  verified: boolean;
}

/** What a receiver does: recompute the HMAC over "timestamp.body", compare in constant time, refuse old timestamps. */
function verify(headers: IncomingHttpHeaders, body: string, nowSeconds: number): boolean {
  const timestamp = String(headers['x-taskmill-timestamp'] ?? '');
  const signature = String(headers['x-taskmill-signature'] ?? '');
  if (!/^\d+$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > 300) return false;
  const expected = Buffer.from(`sha256=${createHmac('sha256', SECRET).update(`${timestamp}.${body}`).digest('hex')}`);
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`webhook: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let p: Project | undefined;
    let server: Server | undefined;
    let worker: Worker | undefined;
    let notifier: Notifier | undefined;

    afterEach(async () => {
      await notifier?.stop();
      await worker?.stop({ timeoutMs: 100 });
      await p?.close();
      if (server) await new Promise((r) => server!.close(r));
      notifier = worker = p = server = undefined;
    });

    it('posts a signed JSON body, retried with back-off until a 2xx, under one delivery id', async () => {
      const received: Received[] = [];
      const answers = [500, 503];
      server = createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          received.push({ headers: req.headers, body, verified: verify(req.headers, body, Math.floor(Date.now() / 1000)) });
          res.statusCode = answers.shift() ?? 204;
          res.end();
        });
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/taskmill?token=x`;
      p = await makeProject(engine, HANDLERS, {
        web: { publicUrl: 'https://tasks.example.com' },
        notify: { webhook: { url, secret: SECRET }, pollInterval: 50, backoff: 150, backoffMax: 600 },
      });
      worker = p.mill.worker();
      worker.start();
      notifier = new Notifier({ store: p.mill.store, config: p.mill.config, log: silentLogger, role: 'test' });
      notifier.start();
      const task = await p.mill.add('broken', { order: 7 });
      await eventually(() => (received.length >= 3 ? true : undefined), 20_000, 'three requests');
      await notifier.pass();
      assert.equal(received.length, 3, 'two refusals, then one accepted; nothing after');
      assert.ok(received.every((r) => r.verified), 'every request carries a valid, fresh signature');
      assert.ok(received.every((r) => r.headers['content-type'] === 'application/json'));
      assert.deepEqual(new Set(received.map((r) => r.headers['x-taskmill-delivery'])).size, 1, 'one delivery id for all retries');
      const stamps = received.map((r) => Number(r.headers['x-taskmill-timestamp']));
      assert.ok(stamps.every((s, i) => i === 0 || s >= (stamps[i - 1] as number)), 'each attempt signs its own time');
      const body = JSON.parse(received[2]!.body) as { type: string; task: Record<string, unknown> };
      assert.equal(body.type, 'task.failed');
      assert.equal(body.task.id, task.id);
      assert.equal(body.task.name, 'broken');
      assert.equal(body.task.error, 'broken for good');
      assert.equal(body.task.link, `https://tasks.example.com/tasks/${task.id}`);
      assert.match(String(body.task.payload), /"order": ?7/);
      // A replay (the same request later) fails the receiver's timestamp check.
      assert.equal(verify(received[2]!.headers, received[2]!.body, Math.floor(Date.now() / 1000) + 600), false);
      assert.equal(verify(received[2]!.headers, received[2]!.body.replace('broken', 'BROKEN'), Math.floor(Date.now() / 1000)), false);
      const [record] = await p.mill.store.listNotifications(1);
      assert.equal(record?.deliveries[0]?.state, 'sent');
      assert.equal(record?.deliveries[0]?.attempts, 3);
      assert.equal((await p.mill.get(task.id))?.status, 'FAILED', 'a failing channel never changes the task');
    });
  });
}
