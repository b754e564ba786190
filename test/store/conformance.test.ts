// The storage conformance suite: every engine must pass every test here.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { openStore } from '../../src/store/open.js';
import type { AttemptRef, ClaimedTask, Store } from '../../src/store/store.js';
import type { Json } from '../../src/model/task.js';
import { ENGINES, type TempDatabase } from '../helpers/engines.js';
import { eventually, newTask } from '../helpers/fixtures.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const lock = (workerId: string) => ({ host: 'test-host', pid: 1, workerId });
const ref = (t: ClaimedTask): AttemptRef => ({ id: t.id, workerId: t.lockedBy.workerId, attempt: t.attempts });

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`store conformance: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let db: TempDatabase;
    let store: Store;
    const claim = (limit = 10, now = at(0), workerId = 'w1', queues: string[] | null = null) =>
      store.claim({ lock: lock(workerId), queues, limit, now, leaseMs: 30_000 });

    beforeEach(async () => {
      db = await engine.create();
      store = await openStore(db.url);
    });
    afterEach(async () => {
      await store.close();
      await db.drop();
    });
    after(() => undefined);

    it('adds a task with every field and reads it back', async () => {
      const [r] = await store.add(
        [newTask('send-email', { payload: { to: 'a@b.c', n: [1, 2] }, priority: 5, queue: 'mail', note: 'hello', uniqueKey: 'k1' })],
        T0,
      );
      assert.ok(r?.created);
      const t = await store.get(r.task.id);
      assert.ok(t);
      assert.equal(t.name, 'send-email');
      assert.deepEqual(t.payload, { to: 'a@b.c', n: [1, 2] });
      assert.equal(t.status, 'WAITING');
      assert.equal(t.priority, 5);
      assert.equal(t.queue, 'mail');
      assert.equal(t.note, 'hello');
      assert.equal(t.uniqueKey, 'k1');
      assert.equal(t.attempts, 0);
      assert.equal(t.createdAt.getTime(), T0.getTime());
      assert.deepEqual(t.output, []);
      assert.equal(await store.get(999_999), null);
    });

    it('ids increase', async () => {
      const rs = await store.add([newTask('a'), newTask('a'), newTask('a')], T0);
      const ids = rs.map((r) => r.task.id);
      assert.ok(ids[0]! > 0 && ids[0]! < ids[1]! && ids[1]! < ids[2]!);
    });

    it('claims in order: priority, then runAt, then id (FIFO)', async () => {
      const rs = await store.add(
        [
          newTask('a', { note: 'low-1', runAt: T0 }),
          newTask('a', { note: 'high', priority: 10, runAt: T0 }),
          newTask('a', { note: 'low-2', runAt: T0 }),
          newTask('a', { note: 'low-early', runAt: at(-5000) }),
        ],
        T0,
      );
      assert.equal(rs.length, 4);
      const order: (string | null)[] = [];
      for (;;) {
        const [t] = await claim(1);
        if (!t) break;
        order.push(t.note);
      }
      assert.deepEqual(order, ['high', 'low-early', 'low-1', 'low-2']);
    });

    it('never claims a task before its runAt', async () => {
      await store.add([newTask('a', { runAt: at(60_000) })], T0);
      assert.equal((await claim(10, at(59_999))).length, 0);
      assert.equal((await store.nextRunAt(null))?.getTime(), at(60_000).getTime());
      const got = await claim(10, at(60_000));
      assert.equal(got.length, 1);
      assert.equal(got[0]?.attempts, 1);
      assert.equal(got[0]?.lockedBy.workerId, 'w1');
      const stored = await store.get(got[0]!.id);
      assert.equal(stored?.status, 'STARTED');
      assert.equal(stored?.startedAt?.getTime(), at(60_000).getTime());
      // The lease runs from the store's own clock, not the caller's `now`.
      const leaseLeft = (stored?.leaseExpiresAt?.getTime() ?? 0) - Date.now();
      assert.ok(leaseLeft > 20_000 && leaseLeft <= 30_000, `lease ends in ${leaseLeft} ms`);
    });

    it('a batch keeps each task\'s own values, whichever columns are shared across it', async () => {
      const varied = [
        newTask('a', { queue: 'q1', priority: 1, runAt: at(1000), maxAttempts: 2, timeoutMs: 1000, note: 'one' }),
        newTask('b', { queue: 'q2', priority: 2, runAt: at(2000), maxAttempts: 4, timeoutMs: 2000, note: null }),
        newTask('a', { queue: 'q1', priority: 1, runAt: at(1000), maxAttempts: 2, timeoutMs: 3000, note: 'three' }),
      ];
      const shared = [newTask('c', { payload: { n: 1 }, queue: 'q3' }), newTask('c', { payload: { n: 2 }, queue: 'q3' })];
      // every JSON shape a payload may take, with characters a text encoding must escape
      const shapes = ([null, 0, -1.5, 'a "quoted", back\\slash, {brace}, comma', true, [], [1, [2, { x: null }]], {}, { 'ké y': 'ü€😀\n\t' }] as Json[])
        .map((payload) => newTask('d', { payload }));
      for (const batch of [varied, shared, shapes]) {
        const added = await store.add(batch, T0);
        for (const [i, r] of added.entries()) {
          const t = await store.get(r.task.id);
          const want = batch[i]!;
          assert.deepEqual(
            [t?.name, t?.payload, t?.queue, t?.priority, t?.runAt.getTime(), t?.maxAttempts, t?.timeoutMs, t?.note],
            [want.name, want.payload, want.queue, want.priority, want.runAt.getTime(), want.maxAttempts, want.timeoutMs, want.note],
          );
        }
      }
    });

    it('the next run time is the earliest unblocked WAITING task of any priority, per queue when asked', async () => {
      assert.equal(await store.nextRunAt(null), null);
      const [blocker] = await store.add([newTask('a', { runAt: at(999_000) })], T0);
      await store.add(
        [
          newTask('a', { priority: 9, runAt: at(30_000), queue: 'b' }),
          newTask('a', { priority: 5, runAt: at(50_000) }),
          newTask('a', { priority: 1, runAt: at(20_000), queue: 'a' }),
          newTask('a', { priority: -3, runAt: at(10_000), queue: 'b' }),
          // blocked by a prerequisite: never the next run time, however early
          newTask('a', { priority: 0, runAt: at(1_000), prerequisites: [blocker!.task.id] }),
        ],
        T0,
      );
      assert.equal((await store.nextRunAt(null))?.getTime(), at(10_000).getTime());
      assert.equal((await store.nextRunAt(['a']))?.getTime(), at(20_000).getTime());
      assert.equal((await store.nextRunAt(['a', 'default']))?.getTime(), at(20_000).getTime());
      assert.equal((await store.nextRunAt(['b']))?.getTime(), at(10_000).getTime());
      assert.equal(await store.nextRunAt(['none']), null);
    });

    it('claims only from the requested queues', async () => {
      await store.add([newTask('a', { queue: 'mail' }), newTask('a', { queue: 'reports' })], T0);
      const got = await claim(10, at(0), 'w1', ['reports']);
      assert.deepEqual(got.map((t) => t.queue), ['reports']);
    });

    it('completes an attempt, storing result and output', async () => {
      await store.add([newTask('a')], T0);
      const [t] = await claim();
      assert.ok(t);
      await store.complete([{ ...ref(t), resultJson: JSON.stringify({ ok: true }), output: ['line 1', 'line 2'] }], at(5));
      const done = await store.get(t.id);
      assert.equal(done?.status, 'COMPLETED');
      assert.deepEqual(done?.result, { ok: true });
      assert.deepEqual(done?.output, ['line 1', 'line 2']);
      assert.equal(done?.finishedAt?.getTime(), at(5).getTime());
      assert.equal(done?.leaseExpiresAt, null);
    });

    it('ignores a completion from a worker that no longer holds the attempt', async () => {
      await store.add([newTask('a')], T0);
      const [t] = await claim();
      assert.ok(t);
      await store.complete([{ id: t.id, workerId: 'other', attempt: t.attempts, resultJson: JSON.stringify(1), output: [] }], at(1));
      await store.complete([{ id: t.id, workerId: 'w1', attempt: t.attempts + 1, resultJson: JSON.stringify(1), output: [] }], at(1));
      assert.equal((await store.get(t.id))?.status, 'STARTED');
    });

    it('fails with a retry time, then finally', async () => {
      await store.add([newTask('a', { maxAttempts: 2 })], T0);
      const [t1] = await claim();
      assert.ok(t1);
      await store.fail([{ ...ref(t1), error: 'boom', errorStack: 'stack', output: ['x'], retryAt: at(10_000) }], at(1));
      let t = await store.get(t1.id);
      assert.equal(t?.status, 'WAITING');
      assert.equal(t?.error, 'boom');
      assert.equal(t?.lockedBy, null, 'a task waiting for its next attempt is held by nobody');
      assert.equal(t?.runAt.getTime(), at(10_000).getTime());
      assert.equal((await claim(10, at(9_999))).length, 0);
      const [t2] = await claim(10, at(10_000));
      assert.equal(t2?.attempts, 2);
      assert.ok(t2);
      await store.fail([{ ...ref(t2), error: 'boom 2', errorStack: null, output: ['x', 'y'], retryAt: null }], at(10_001));
      t = await store.get(t1.id);
      assert.equal(t?.status, 'FAILED');
      assert.equal(t?.error, 'boom 2');
      assert.deepEqual(t?.output, ['x', 'x', 'y'], "the second attempt's output follows the first's");
      assert.equal(t?.finishedAt?.getTime(), at(10_001).getTime());
    });

    it('keeps a cancel requested while an attempt fails on its own: the task ends CANCELLED, not WAITING', async () => {
      await store.add([newTask('a', { maxAttempts: 5 }), newTask('b', { maxAttempts: 5 })], T0);
      const [ta, tb] = await claim();
      await store.cancel(ta!.id, at(1));
      await store.cancel(tb!.id, at(1));
      await store.fail(
        [
          { ...ref(ta!), error: 'boom', errorStack: null, output: [], retryAt: at(10_000) },
          { ...ref(tb!), error: 'timed out', errorStack: null, output: [], retryAt: null },
        ],
        at(2),
      );
      for (const id of [ta!.id, tb!.id]) {
        const t = await store.get(id);
        assert.equal(t?.status, 'CANCELLED');
        assert.equal(t?.cancelRequested, false);
        assert.match(t?.error ?? '', /^cancelled: /);
        assert.equal(t?.finishedAt?.getTime(), at(2).getTime());
      }
      assert.equal((await claim(10, at(20_000))).length, 0, 'nothing comes back');
    });

    it('keeps a cancel requested when the attempt is released on stop or rescued after its lease', async () => {
      await store.add([newTask('a', { maxAttempts: 5 }), newTask('b', { maxAttempts: 5 })], T0);
      const [ta] = await claim(1);
      const [tb] = await store.claim({ lock: lock('w2'), queues: null, limit: 1, now: at(0), leaseMs: 200 });
      await store.cancel(ta!.id, at(1));
      await store.cancel(tb!.id, at(1));
      await store.release([ref(ta!)], at(2));
      await eventually(async () => ((await store.rescueExpired(new Date())) === 1 ? true : undefined), 10_000, 'rescue');
      for (const id of [ta!.id, tb!.id]) assert.equal((await store.get(id))?.status, 'CANCELLED');
    });

    it('appends each attempt\'s output to the earlier ones, keeping the last 1,000 lines behind a marker', async () => {
      await store.add([newTask('a', { maxAttempts: 3 })], T0);
      let [t] = await claim();
      const lines = (from: number, n: number) => Array.from({ length: n }, (_, i) => `line ${from + i}`);
      await store.fail([{ ...ref(t!), error: 'e1', errorStack: null, output: lines(0, 600), retryAt: at(1) }], at(1));
      [t] = await claim(10, at(2));
      await store.fail([{ ...ref(t!), error: 'e2', errorStack: null, output: lines(600, 600), retryAt: at(3) }], at(3));
      let out = (await store.get(t!.id))?.output ?? [];
      assert.equal(out.length, 1000);
      assert.equal(out[0], '… 201 earlier lines dropped');
      assert.equal(out[1], 'line 201');
      assert.equal(out[999], 'line 1199');
      [t] = await claim(10, at(4));
      await store.complete([{ ...ref(t!), resultJson: '{"ok":true}', output: ['last'] }], at(5));
      out = (await store.get(t!.id))?.output ?? [];
      assert.equal(out.length, 1000);
      assert.equal(out[0], '… 202 earlier lines dropped');
      assert.equal(out[1], 'line 202');
      assert.equal(out[999], 'last');
      assert.deepEqual((await store.get(t!.id))?.result, { ok: true });
    });

    it('writes outcomes and claims the next tasks in one settle call', async () => {
      await store.add([newTask('a'), newTask('b'), newTask('c'), newTask('d')], T0);
      const [ta, tb] = await claim(2);
      const next = await store.settle(
        {
          completions: [{ ...ref(ta!), resultJson: '1', output: ['done'] }],
          failures: [{ ...ref(tb!), error: 'no', errorStack: null, output: [], retryAt: null }],
        },
        { lock: lock('w1'), queues: null, limit: 5, now: at(1), leaseMs: 30_000 },
        at(1),
      );
      assert.deepEqual(next.map((t) => t.name), ['c', 'd']);
      assert.equal((await store.get(ta!.id))?.status, 'COMPLETED');
      assert.deepEqual((await store.get(ta!.id))?.output, ['done']);
      assert.equal((await store.get(tb!.id))?.status, 'FAILED');
      assert.equal((await store.get(next[0]!.id))?.status, 'STARTED');
    });

    it('holds a task with prerequisites until all are COMPLETED', async () => {
      const [a, b] = await store.add([newTask('a'), newTask('b')], T0);
      const [c] = await store.add([newTask('c', { prerequisites: [a!.task.id, b!.task.id] })], T0);
      assert.deepEqual(c?.task.prerequisites, [a!.task.id, b!.task.id]);
      const first = await claim(10);
      assert.deepEqual(first.map((t) => t.name).sort(), ['a', 'b']);
      const ta = first.find((t) => t.name === 'a')!;
      const tb = first.find((t) => t.name === 'b')!;
      await store.complete([{ ...ref(ta), resultJson: JSON.stringify(null), output: [] }], at(1));
      assert.equal((await claim(10, at(2))).length, 0);
      await store.complete([{ ...ref(tb), resultJson: JSON.stringify(null), output: [] }], at(3));
      const next = await claim(10, at(4));
      assert.deepEqual(next.map((t) => t.id), [c!.task.id]);
    });

    it('treats an already COMPLETED prerequisite as met', async () => {
      const [a] = await store.add([newTask('a')], T0);
      const [ta] = await claim();
      await store.complete([{ ...ref(ta!), resultJson: JSON.stringify(null), output: [] }], at(1));
      const [c] = await store.add([newTask('c', { prerequisites: [a!.task.id] })], T0);
      const got = await claim(10, at(2));
      assert.deepEqual(got.map((t) => t.id), [c!.task.id]);
    });

    it('refuses an unknown prerequisite and adds nothing', async () => {
      const [a] = await store.add([newTask('a')], T0);
      await assert.rejects(
        store.add([newTask('b'), newTask('c', { prerequisites: [a!.task.id, 424242] })], T0),
        (err: Error & { code?: string }) => err.code === 'UNKNOWN_PREREQUISITE' && /#424242/.test(err.message),
      );
      assert.equal((await store.list({})).length, 1);
    });

    it('cascades a final failure to dependants, transitively, naming the prerequisite', async () => {
      const [a] = await store.add([newTask('a', { maxAttempts: 1 })], T0);
      const [b] = await store.add([newTask('b', { prerequisites: [a!.task.id] })], T0);
      const [c] = await store.add([newTask('c', { prerequisites: [b!.task.id] })], T0);
      const [other] = await store.add([newTask('other')], T0);
      const [ta] = await claim(1);
      assert.equal(ta?.id, a!.task.id);
      await store.fail([{ ...ref(ta!), error: 'bad', errorStack: null, output: [], retryAt: null }], at(1));
      const tb = await store.get(b!.task.id);
      const tc = await store.get(c!.task.id);
      assert.equal(tb?.status, 'FAILED');
      assert.match(tb?.error ?? '', new RegExp(`#${a!.task.id}`));
      assert.equal(tc?.status, 'FAILED');
      assert.match(tc?.error ?? '', new RegExp(`#${b!.task.id}`));
      assert.equal((await store.get(other!.task.id))?.status, 'WAITING');
      // A task added after its prerequisite failed ends at once.
      const [d] = await store.add([newTask('d', { prerequisites: [a!.task.id] })], T0);
      assert.equal(d?.task.status, 'FAILED');
    });

    it('cascades a cancel, and retry brings the dependants back', async () => {
      const [a] = await store.add([newTask('a')], T0);
      const [b] = await store.add([newTask('b', { prerequisites: [a!.task.id] })], T0);
      const cancelled = await store.cancel(a!.task.id, at(1));
      assert.equal(cancelled.status, 'CANCELLED');
      assert.equal((await store.get(b!.task.id))?.status, 'CANCELLED');
      await assert.rejects(store.retry(b!.task.id, at(2)), /retry that one first/);
      const again = await store.retry(a!.task.id, at(2));
      assert.equal(again.status, 'WAITING');
      assert.equal(again.attempts, 0);
      const tb = await store.get(b!.task.id);
      assert.equal(tb?.status, 'WAITING');
      assert.equal(tb?.error, null);
      const got = await claim(10, at(3));
      assert.deepEqual(got.map((t) => t.id), [a!.task.id]);
    });

    it('returns the live task for a duplicate unique key, and allows it again once finished', async () => {
      const [r1] = await store.add([newTask('a', { uniqueKey: 'only-one' })], T0);
      const [r2] = await store.add([newTask('a', { uniqueKey: 'only-one', payload: { other: true } })], T0);
      assert.equal(r2?.created, false);
      assert.equal(r2?.task.id, r1?.task.id);
      const [t] = await claim();
      const [r3] = await store.add([newTask('a', { uniqueKey: 'only-one' })], T0);
      assert.equal(r3?.task.id, r1?.task.id, 'a STARTED task still counts');
      await store.complete([{ ...ref(t!), resultJson: JSON.stringify(null), output: [] }], at(1));
      const [r4] = await store.add([newTask('a', { uniqueKey: 'only-one' })], T0);
      assert.equal(r4?.created, true);
      assert.notEqual(r4?.task.id, r1?.task.id);
    });

    it('keeps unique keys unique under concurrent adds from several connections', async () => {
      const others = await Promise.all([openStore(db.url), openStore(db.url), openStore(db.url)]);
      try {
        const all = [store, ...others];
        const results = await Promise.all(
          Array.from({ length: 40 }, (_, i) => all[i % all.length]!.add([newTask('a', { uniqueKey: 'race' })], T0)),
        );
        const ids = new Set(results.map((r) => r[0]!.task.id));
        assert.equal(ids.size, 1);
        assert.equal(results.filter((r) => r[0]!.created).length, 1);
        assert.equal((await store.list({})).length, 1);
      } finally {
        await Promise.all(others.map((s) => s.close()));
      }
    });

    it('adds a batch atomically: a bad task rolls back the whole batch', async () => {
      await assert.rejects(store.add([newTask('a'), newTask('b', { prerequisites: [777_777] })], T0));
      assert.equal((await store.list({})).length, 0);
      const rs = await store.add([newTask('a'), newTask('b')], T0);
      assert.equal(rs.length, 2);
    });

    it('renews leases, reports cancel requests and the attempts no longer held', async () => {
      await store.add([newTask('a'), newTask('b'), newTask('c')], T0);
      const [ta, tb, tc] = await claim();
      await store.cancel(tb!.id, at(1));
      assert.equal((await store.get(tb!.id))?.status, 'STARTED');
      assert.equal((await store.get(tb!.id))?.cancelRequested, true);
      await store.complete([{ ...ref(tc!), resultJson: 'null', output: [] }], at(2));
      const stale = { ...ref(ta!), attempt: ta!.attempts + 1 };
      const renewed = await store.renew([ref(ta!), ref(tb!), ref(tc!), stale], 100_000);
      assert.deepEqual(renewed.cancelled, [tb!.id]);
      assert.deepEqual(renewed.lost, [tc!.id, ta!.id]);
      const leaseLeft = ((await store.get(ta!.id))?.leaseExpiresAt?.getTime() ?? 0) - Date.now();
      assert.ok(leaseLeft > 90_000 && leaseLeft <= 100_000, `lease ends in ${leaseLeft} ms`);
      // The lease was renewed: nothing to rescue, whatever clock the rescuer runs on.
      assert.equal(await store.rescueExpired(at(10 * 365 * 86_400_000)), 0);
    });

    it('rescues an expired lease by the store clock, counting the attempt, and fails when none is left', async () => {
      await store.add([newTask('a', { maxAttempts: 2 })], T0);
      const shortClaim = (workerId: string) =>
        store.claim({ lock: lock(workerId), queues: null, limit: 1, now: new Date(), leaseMs: 300 });
      const [t1] = await shortClaim('w1');
      // A rescuer whose clock runs hours ahead steals nothing before the lease ends by the store's clock.
      assert.equal(await store.rescueExpired(new Date(Date.now() + 3_600_000)), 0);
      await eventually(async () => ((await store.rescueExpired(new Date())) === 1 ? true : undefined), 10_000, 'rescue');
      let t = await store.get(t1!.id);
      assert.equal(t?.status, 'WAITING');
      assert.equal(t?.attempts, 1);
      assert.equal(t?.lockedBy, null);
      assert.match(t?.error ?? '', /lease expired/);
      const [t2] = await shortClaim('w2');
      assert.equal(t2?.attempts, 2);
      // The first worker's late report changes nothing, and its renewal says the attempt is lost.
      await store.complete([{ ...ref(t1!), resultJson: '"late"', output: [] }], new Date());
      assert.equal((await store.get(t1!.id))?.status, 'STARTED');
      assert.deepEqual((await store.renew([ref(t1!)], 300)).lost, [t1!.id]);
      await eventually(async () => ((await store.rescueExpired(new Date())) === 1 ? true : undefined), 10_000, 'rescue');
      t = await store.get(t1!.id);
      assert.equal(t?.status, 'FAILED');
    });

    it('releases without counting the attempt', async () => {
      await store.add([newTask('a')], T0);
      const [t] = await claim();
      await store.release([ref(t!)], at(1));
      const back = await store.get(t!.id);
      assert.equal(back?.status, 'WAITING');
      assert.equal(back?.attempts, 0);
      assert.equal(back?.lockedBy, null);
      assert.equal((await claim(10, at(2))).length, 1);
    });

    it('cancels a WAITING task and refuses to cancel a finished one', async () => {
      const [a] = await store.add([newTask('a')], T0);
      const c = await store.cancel(a!.task.id, at(1));
      assert.equal(c.status, 'CANCELLED');
      await assert.rejects(store.cancel(a!.task.id, at(2)), (e: Error & { code?: string }) => e.code === 'INVALID_TRANSITION');
      await assert.rejects(store.cancel(123_456, at(2)), (e: Error & { code?: string }) => e.code === 'TASK_NOT_FOUND');
      await assert.rejects(store.retry(123_456, at(2)), (e: Error & { code?: string }) => e.code === 'TASK_NOT_FOUND');
    });

    it('retrying one failed prerequisite leaves a dependant that another still holds down ended, never stranded', async () => {
      const [a, b] = await store.add([newTask('a', { maxAttempts: 1 }), newTask('b', { maxAttempts: 1 })], T0);
      const [c] = await store.add([newTask('c', { prerequisites: [a!.task.id, b!.task.id] })], T0);
      const [ta, tb] = await claim(2);
      await store.fail([{ ...ref(ta!), error: 'a broke', errorStack: null, output: [], retryAt: null }], at(1));
      await store.fail([{ ...ref(tb!), error: 'b broke', errorStack: null, output: [], retryAt: null }], at(2));
      assert.equal((await store.get(c!.task.id))?.status, 'FAILED');
      await store.retry(a!.task.id, at(3));
      let dependant = await store.get(c!.task.id);
      assert.equal(dependant?.status, 'FAILED', 'b is still FAILED: c stays ended');
      assert.match(dependant?.error ?? '', new RegExp(`#${b!.task.id} ended FAILED`));
      await store.retry(b!.task.id, at(4));
      dependant = await store.get(c!.task.id);
      assert.equal(dependant?.status, 'WAITING', 'retrying the other prerequisite brings it back');
      const [ra, rb] = await claim(2, at(5));
      await store.complete([{ ...ref(ra!), resultJson: 'null', output: [] }, { ...ref(rb!), resultJson: 'null', output: [] }], at(6));
      assert.deepEqual((await claim(10, at(7))).map((t) => t.id), [c!.task.id]);
    });

    it('prunes in batches: more finished tasks than one batch holds', async () => {
      await store.add(Array.from({ length: 1_234 }, () => newTask('a')), T0);
      for (;;) {
        const got = await claim(500);
        if (got.length === 0) break;
        await store.complete(got.map((t) => ({ ...ref(t), resultJson: 'null', output: [] })), at(1));
      }
      assert.equal(await store.pruneFinished(at(2)), 1_234);
      assert.equal((await store.counts()).COMPLETED, 0);
    });

    it('refuses to retry a task that is not FAILED or CANCELLED', async () => {
      const [a] = await store.add([newTask('a')], T0);
      await assert.rejects(store.retry(a!.task.id, at(1)), (e: Error & { code?: string }) => e.code === 'INVALID_TRANSITION');
    });

    it('lists with filters, newest first, and counts by status', async () => {
      await store.add([newTask('a'), newTask('b'), newTask('a', { queue: 'q2' })], T0);
      const [t] = await claim(1);
      assert.ok(t);
      assert.deepEqual((await store.list({ name: 'a' })).map((x) => x.name), ['a', 'a']);
      const listed = await store.list({});
      assert.ok(listed[0]!.id > listed[1]!.id);
      assert.equal((await store.list({ status: ['STARTED'] })).length, 1);
      assert.equal((await store.list({ queue: 'q2' })).length, 1);
      assert.equal((await store.list({ limit: 2 })).length, 2);
      const counts = await store.counts();
      assert.equal(counts.WAITING, 2);
      assert.equal(counts.STARTED, 1);
      assert.equal(counts.COMPLETED, 0);
    });

    it('never hands one task to two concurrent claimers', async () => {
      const others = await Promise.all([openStore(db.url), openStore(db.url)]);
      try {
        await store.add(Array.from({ length: 300 }, (_, i) => newTask('a', { payload: i })), T0);
        const all = [store, ...others];
        const seen: number[] = [];
        await Promise.all(
          all.map(async (s, i) => {
            for (;;) {
              const got = await s.claim({ lock: lock(`w${i}`), queues: null, limit: 7, now: at(0), leaseMs: 30_000 });
              if (got.length === 0) return;
              seen.push(...got.map((t) => t.id));
            }
          }),
        );
        assert.equal(seen.length, 300);
        assert.equal(new Set(seen).size, 300);
      } finally {
        await Promise.all(others.map((s) => s.close()));
      }
    });

    it('wakes a subscriber when a task is added from another connection', async () => {
      const other = await openStore(db.url);
      try {
        const woke = new Promise<void>((resolve) => {
          const off = store.subscribe((e) => {
            if (e.kind === 'wake') {
              off();
              resolve();
            }
          });
        });
        // Give LISTEN / the file watcher a moment to be in place before the add.
        await new Promise((r) => setTimeout(r, 100));
        await other.add([newTask('a')], T0);
        await woke;
      } finally {
        await other.close();
      }
    });

    it('prunes finished tasks older than a time, and nothing live', async () => {
      await store.add([newTask('a'), newTask('b'), newTask('c')], T0);
      const [ta, tb] = await claim(2);
      await store.complete([{ ...ref(ta!), resultJson: JSON.stringify(null), output: [] }], at(1000));
      await store.complete([{ ...ref(tb!), resultJson: JSON.stringify(null), output: [] }], at(5000));
      assert.equal(await store.pruneFinished(at(2000)), 1);
      assert.equal(await store.get(ta!.id), null);
      assert.equal((await store.get(tb!.id))?.status, 'COMPLETED');
      assert.equal(await store.pruneFinished(at(999_999)), 1);
      assert.equal((await store.list({})).length, 1, 'the WAITING task stays');
      await store.ping();
    });

    it('records, lists and removes daemon heartbeats', async () => {
      const d = { id: 'h1:10:1', host: 'h1', pid: 10, startedAt: at(0), lastSeen: at(0), modules: [{ name: 'TaskWorker' }] };
      await store.heartbeat(d);
      await store.heartbeat({ ...d, lastSeen: at(10_000), modules: [{ name: 'TaskWorker', loops: 3 }] });
      await store.heartbeat({ ...d, id: 'h2:20:1', host: 'h2', pid: 20, lastSeen: at(5_000) });
      const all = await store.listDaemons();
      assert.deepEqual(all.map((x) => x.id), ['h1:10:1', 'h2:20:1']);
      assert.equal(all[0]?.lastSeen.getTime(), at(10_000).getTime());
      assert.deepEqual(all[0]?.modules, [{ name: 'TaskWorker', loops: 3 }]);
      await store.removeDaemon('h1:10:1');
      assert.deepEqual((await store.listDaemons()).map((x) => x.id), ['h2:20:1']);
    });

    it('migrate is idempotent and reports the version', async () => {
      const again = await store.migrate();
      assert.equal(again.from, again.to);
      assert.ok(again.to >= 1);
    });
  });
}
