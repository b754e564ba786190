// Notifications in the store, on both engines: written in the transaction that ends a task FAILED,
// routed per channel, claimed with a lease by one caller at a time, gathered into digests past the
// window's quota, and daemon outages opened and closed once in a cluster.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { DeliveryClaim } from '../../src/model/notification.js';
import { openStore } from '../../src/store/open.js';
import type { AttemptRef, ClaimedTask, Store } from '../../src/store/store.js';
import { ENGINES, type TempDatabase } from '../helpers/engines.js';
import { eventually, newTask } from '../helpers/fixtures.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const lock = (workerId: string) => ({ host: 'test-host', pid: 1, workerId });
const ref = (t: ClaimedTask): AttemptRef => ({ id: t.id, workerId: t.lockedBy.workerId, attempt: t.attempts });

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`notifications in the store: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let db: TempDatabase;
    let store: Store;
    const claimTasks = (limit = 10, now = at(0), leaseMs = 30_000) =>
      store.claim({ lock: lock('w1'), queues: null, limit, now, leaseMs });
    const deliveryClaim = (over: Partial<DeliveryClaim> = {}): DeliveryClaim => ({
      channel: 'email', owner: 'd1', now: at(0), leaseMs: 60_000, limit: 50, windowMs: 60_000, perWindow: 100, ...over,
    });
    /** Fails `n` tasks for good at `now` (one attempt each). */
    const failTasks = async (n: number, now = at(0)) => {
      await store.add(Array.from({ length: n }, (_, i) => newTask(`job-${i}`, { maxAttempts: 1 })), T0);
      const claimed = await claimTasks(n, now);
      await store.fail(claimed.map((t) => ({ ...ref(t), error: `boom ${t.id}`, errorStack: null, output: [], retryAt: null })), now);
      return claimed.map((t) => t.id);
    };

    beforeEach(async () => {
      db = await engine.create();
      store = await openStore(db.url);
    });
    afterEach(async () => {
      await store.close();
      await db.drop();
    });

    it('writes one notification, with the task as it ended, when the last attempt fails; none on a retry or a cancel', async () => {
      const lines = Array.from({ length: 30 }, (_, i) => `line ${i}`);
      await store.add([newTask('send-mail', { maxAttempts: 2, payload: { to: 'a@b.c', big: 'x'.repeat(5_000) } }), newTask('other')], T0);
      const [first, other] = await claimTasks(2);
      let t = first;
      await store.cancel(other!.id, at(1));
      await store.fail([{ ...ref(other!), error: 'stopped', errorStack: null, output: [], retryAt: null }], at(1));
      await store.fail([{ ...ref(t!), error: 'first', errorStack: null, output: ['a'], retryAt: at(2) }], at(1));
      assert.equal((await store.listNotifications(10)).length, 0, 'a retry or a cancel notifies nothing');
      [t] = await claimTasks(1, at(3));
      // settle is the worker's path: the failure and the next claim together
      await store.settle({ completions: [], failures: [{ ...ref(t!), error: 'smtp refused', errorStack: 'Error: smtp refused\n    at send', output: lines, retryAt: null }] }, null, at(4));
      const [n] = await store.listNotifications(10);
      assert.ok(n);
      assert.equal(n.kind, 'task_failed');
      assert.equal(n.taskId, t!.id);
      assert.equal(n.taskName, 'send-mail');
      assert.equal(n.error, 'smtp refused');
      assert.match(n.errorStack ?? '', /at send/);
      assert.equal(n.attempts, 2);
      assert.equal(n.maxAttempts, 2);
      assert.equal(n.host, 'test-host');
      assert.equal(n.payload?.length, 2_000);
      assert.ok(n.payload?.includes('"to"'));
      assert.equal(n.outputTail.length, 20);
      assert.equal(n.outputTail.at(-1), 'line 29');
      assert.equal(n.createdAt.getTime(), at(4).getTime());
      assert.deepEqual(n.deliveries, []);
    });

    it('writes one when a lease expires with no attempt left', async () => {
      await store.add([newTask('crashy', { maxAttempts: 1 })], T0);
      await claimTasks(1, at(0), 200);
      await eventually(async () => ((await store.rescueExpired(new Date())) === 1 ? true : undefined), 10_000, 'rescue');
      const [n] = await store.listNotifications(10);
      assert.equal(n?.taskName, 'crashy');
      assert.match(n?.error ?? '', /lease expired/);
    });

    it('routes each notification once per channel and leases a delivery to one claimer until sent', async () => {
      const [id] = await failTasks(1);
      assert.equal(await store.routeNotifications(() => ['email', 'webhook'], at(0)), 1);
      assert.equal(await store.routeNotifications(() => ['email', 'webhook'], at(0)), 0, 'routed once');
      const [first, again] = await Promise.all([store.claimDeliveries(deliveryClaim()), store.claimDeliveries(deliveryClaim({ owner: 'd2' }))]);
      assert.equal(first.length + again.length, 1, 'one claimer gets it');
      const got = [...first, ...again][0];
      assert.equal(got?.notification.taskId, id);
      assert.equal(got?.mode, 'single');
      assert.equal(got?.attempts, 1);
      assert.equal((await store.claimDeliveries(deliveryClaim({ now: at(59_000) }))).length, 0, 'leased');
      // The holder died: after the lease another takes it (the claim counts).
      const [retaken] = await store.claimDeliveries(deliveryClaim({ owner: 'd3', now: at(61_000) }));
      assert.equal(retaken?.attempts, 2);
      await store.markDelivered([{ notificationId: retaken!.notification.id, channel: 'email' }], at(61_500));
      assert.equal((await store.claimDeliveries(deliveryClaim({ now: at(10 * 60_000) }))).length, 0, 'sent is never claimed again');
      const [web] = await store.claimDeliveries(deliveryClaim({ channel: 'webhook', now: at(62_000) }));
      assert.equal(web?.notification.taskId, id, 'each channel on its own');
      const [record] = await store.listNotifications(1);
      assert.deepEqual(record?.deliveries.map((d) => [d.channel, d.state]), [['email', 'sent'], ['webhook', 'pending']]);
    });

    it('a channel route of none leaves nothing to send', async () => {
      await failTasks(1);
      await store.routeNotifications(() => [], at(0));
      assert.equal((await store.claimDeliveries(deliveryClaim())).length, 0);
      assert.equal(await store.pruneNotifications(at(1)), 1);
    });

    it('defers a failed delivery until its retry time, and only its holder can', async () => {
      await failTasks(1);
      await store.routeNotifications(() => ['email'], at(0));
      const [d] = await store.claimDeliveries(deliveryClaim());
      const key = { notificationId: d!.notification.id, channel: 'email' };
      await store.deferDeliveries([key], 'someone-else', 'nope', at(1_000_000));
      await store.deferDeliveries([key], 'd1', 'connection refused', at(5_000));
      assert.equal((await store.claimDeliveries(deliveryClaim({ now: at(4_999) }))).length, 0);
      const [again] = await store.claimDeliveries(deliveryClaim({ now: at(5_000) }));
      assert.equal(again?.attempts, 2);
      const [record] = await store.listNotifications(1);
      assert.equal(record?.deliveries[0]?.lastError, 'connection refused');
    });

    it('past the window\'s quota, further failures gather into one digest sent when the window closes', async () => {
      const ids = await failTasks(10, at(1_000));
      await store.routeNotifications(() => ['email'], at(1_000));
      const c = (ms: number) => deliveryClaim({ now: at(ms), perWindow: 3, windowMs: 10_000 });
      const singles = await store.claimDeliveries(c(1_000));
      assert.deepEqual(singles.map((d) => d.mode), ['single', 'single', 'single']);
      assert.equal((await store.claimDeliveries(c(2_000))).length, 0, 'the rest wait for the window to close');
      const digest = await store.claimDeliveries(c(10_000));
      assert.equal(digest.length, 7);
      assert.ok(digest.every((d) => d.mode === 'digest' && d.windowStart?.getTime() === at(0).getTime()));
      assert.deepEqual([...singles, ...digest].map((d) => d.notification.taskId).sort((a, b) => a! - b!), ids);
      // A new window has a fresh quota.
      await failTasks(1, at(11_000));
      await store.routeNotifications(() => ['email'], at(11_000));
      assert.deepEqual((await store.claimDeliveries(c(11_000))).map((d) => d.mode), ['single']);
    });

    it('a backlog larger than one digest goes out one digest per window, never as a burst', async () => {
      await failTasks(7, at(1_000));
      await store.routeNotifications(() => ['email'], at(1_000));
      const c = (ms: number) => deliveryClaim({ now: at(ms), perWindow: 0, windowMs: 10_000, digestMax: 3 });
      assert.equal((await store.claimDeliveries(c(1_000))).length, 0, 'all gathered');
      const first = await store.claimDeliveries(c(10_000));
      assert.equal(first.length, 3);
      // A digest that fails to send may be tried again in the same window...
      await store.deferDeliveries(first.map((d) => ({ notificationId: d.notification.id, channel: 'email' })), 'd1', 'down', at(10_500));
      const again = await store.claimDeliveries(c(10_500));
      assert.equal(again.length, 3);
      await store.markDelivered(again.map((d) => ({ notificationId: d.notification.id, channel: 'email' })), at(10_600));
      // ...but once one went out, the next waits for the next window.
      assert.equal((await store.claimDeliveries(c(15_000))).length, 0);
      assert.equal((await store.claimDeliveries(c(20_000))).length, 3);
    });

    it('opens an outage once per host however many check, and closes it once when the daemon returns', async () => {
      const hb = (host: string, lastSeen: Date, id = `${host}:1`) =>
        store.heartbeat({ id, host, pid: 1, startedAt: T0, lastSeen, modules: [] });
      await hb('alpha', at(0));
      await hb('beta', at(270_000));
      const check = (ms: number, by: string) => store.checkDaemons({ now: at(ms), staleMs: 120_000, by });
      const results = await Promise.all([check(300_000, 'p1'), check(300_000, 'p2'), check(301_000, 'p3')]);
      assert.deepEqual(results.flatMap((r) => r.down), ['alpha'], 'one caller alerts');
      assert.deepEqual(results.flatMap((r) => r.up), []);
      // alpha's daemon starts again (a new heartbeat row); the dead one's row is cleared away.
      await hb('alpha', at(400_000), 'alpha:2');
      const back = await Promise.all([check(400_500, 'p1'), check(400_500, 'p2')]);
      assert.deepEqual(back.flatMap((r) => r.up), ['alpha']);
      assert.deepEqual(back.flatMap((r) => r.down), ['beta'], 'beta went quiet meanwhile');
      assert.deepEqual((await store.listDaemons()).filter((d) => d.host === 'alpha').map((d) => d.id), ['alpha:2']);
      const kinds = (await store.listNotifications(10)).map((n) => [n.kind, (n.detail as { host: string }).host]).reverse();
      assert.deepEqual(kinds, [['daemon_down', 'alpha'], ['daemon_up', 'alpha'], ['daemon_down', 'beta']]);
      // Alerts are never gathered into a digest.
      await store.routeNotifications(() => ['email'], at(400_500));
      const alerts = await store.claimDeliveries(deliveryClaim({ now: at(400_500), perWindow: 0 }));
      assert.deepEqual(alerts.map((d) => d.mode), ['alert', 'alert', 'alert']);
    });
  });
}
