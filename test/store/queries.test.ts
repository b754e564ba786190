// Conformance of task queries on every engine: filters, keyset pages in every order, capped counts,
// delete and its refusals, dependants, stats and progress. Each test names the rule it holds.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { TaskListItem } from '../../src/model/query.js';
import { openStore } from '../../src/store/open.js';
import type { AttemptRef, ClaimedTask, Store, TaskKey, TaskPageRequest } from '../../src/store/store.js';
import { ENGINES, type TempDatabase } from '../helpers/engines.js';
import { newTask } from '../helpers/fixtures.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const lock = (workerId: string) => ({ host: 'test-host', pid: 1, workerId });
const ref = (t: ClaimedTask): AttemptRef => ({ id: t.id, workerId: t.lockedBy.workerId, attempt: t.attempts });

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`store task queries: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let db: TempDatabase;
    let store: Store;
    const claimAll = (now = at(0), workerId = 'w1') =>
      store.claim({ lock: lock(workerId), queues: null, limit: 100, now, leaseMs: 30_000 });
    const page = (over: Partial<TaskPageRequest> = {}): Promise<TaskListItem[]> =>
      store.queryTasks({ filter: {}, sort: 'id', order: 'desc', limit: 50, after: null, ...over });
    const ids = (rows: TaskListItem[]) => rows.map((r) => r.id);

    /** Every page of a listing, walked by keyset, `size` rows at a time. */
    async function walk(req: Omit<TaskPageRequest, 'after' | 'limit'>, size: number): Promise<number[]> {
      const out: number[] = [];
      let after: TaskKey | null = null;
      for (let i = 0; i < 100; i++) {
        const rows = await store.queryTasks({ ...req, limit: size, after });
        out.push(...ids(rows));
        const last = rows.at(-1);
        if (!last || rows.length < size) return out;
        const v = req.sort === 'runAt' ? last.runAt.getTime() : req.sort === 'finishedAt' ? (last.finishedAt?.getTime() ?? 0) : null;
        after = { id: last.id, value: v };
      }
      throw new Error('too many pages');
    }

    beforeEach(async () => {
      db = await engine.create();
      store = await openStore(db.url);
    });
    afterEach(async () => {
      await store.close();
      await db.drop();
    });

    it('rule: every filter narrows the list (status list, name, queue, schedule, created range)', async () => {
      await store.add(
        [
          newTask('mail', { queue: 'q1', note: 'one' }),
          newTask('mail', { queue: 'q2' }),
          newTask('report', { queue: 'q1', scheduleName: 'nightly', scheduledFor: T0 }),
        ],
        T0,
      );
      await store.add([newTask('report', { queue: 'q2' })], at(60_000));
      const [c] = await store.claim({ lock: lock('w'), queues: null, limit: 1, now: at(61_000), leaseMs: 30_000 });
      assert.ok(c);
      await store.complete([{ ...ref(c), resultJson: 'null', output: [] }], at(62_000));

      assert.deepEqual(ids(await page()), [4, 3, 2, 1]);
      assert.deepEqual(ids(await page({ filter: { name: 'mail' } })), [2, 1]);
      assert.deepEqual(ids(await page({ filter: { queue: 'q1' } })), [3, 1]);
      assert.deepEqual(ids(await page({ filter: { schedule: 'nightly' } })), [3]);
      assert.deepEqual(ids(await page({ filter: { createdFrom: at(1) } })), [4]);
      assert.deepEqual(ids(await page({ filter: { createdTo: at(1) } })), [3, 2, 1]);
      assert.deepEqual(ids(await page({ filter: { status: ['COMPLETED'] } })), [c.id]);
      assert.deepEqual(ids(await page({ filter: { status: ['WAITING', 'COMPLETED'] } })), [4, 3, 2, 1]);
      assert.deepEqual(ids(await page({ filter: { status: ['WAITING', 'COMPLETED'], name: 'report', queue: 'q2' } })), [4]);
      assert.deepEqual(ids(await page({ filter: { status: ['FAILED'] } })), []);
    });

    it('rule: text matches payload, note or error, ignoring case, with % and _ taken literally', async () => {
      await store.add(
        [
          newTask('a', { payload: { to: 'Alice@Example.com' } }),
          newTask('a', { note: 'Monthly REPORT' }),
          newTask('a', { payload: { pct: '100%' } }),
          newTask('a', { payload: { x: 'plain' } }),
        ],
        T0,
      );
      const [t] = await store.claim({ lock: lock('w'), queues: null, limit: 1, now: T0, leaseMs: 30_000 });
      assert.ok(t);
      await store.fail([{ ...ref(t), error: 'Connection REFUSED by host', errorStack: null, output: [], retryAt: null }], T0);

      assert.deepEqual(ids(await page({ filter: { text: 'alice@example' } })), [1]);
      assert.deepEqual(ids(await page({ filter: { text: 'monthly report' } })), [2]);
      assert.deepEqual(ids(await page({ filter: { text: 'refused' } })), [t.id]);
      assert.deepEqual(ids(await page({ filter: { text: '100%' } })), [3]);
      assert.deepEqual(ids(await page({ filter: { text: '%' } })), [3], '% is no wildcard');
      assert.deepEqual(ids(await page({ filter: { text: 'p_ain' } })), [], '_ is no wildcard');
    });

    it('rule: keyset pages cover every task once, in order, for every sort and direction', async () => {
      // runAt with ties (several tasks at one time), so the id must break them.
      const specs = Array.from({ length: 23 }, (_, i) => newTask('a', { runAt: at((i % 5) * 1000), queue: i % 2 ? 'odd' : 'even' }));
      await store.add(specs, T0);
      // Finish some at distinct (and tied) times.
      const claimed = await store.claim({ lock: lock('w'), queues: null, limit: 12, now: at(10_000), leaseMs: 30_000 });
      for (const [i, c] of claimed.entries()) {
        await store.complete([{ ...ref(c), resultJson: 'null', output: [] }], at(20_000 + (i % 4) * 1000));
      }
      const all = await store.queryTasks({ filter: {}, sort: 'id', order: 'asc', limit: 500, after: null });
      const byRun = [...all].sort((a, b) => a.runAt.getTime() - b.runAt.getTime() || a.id - b.id).map((t) => t.id);
      const finished = all.filter((t) => t.finishedAt);
      const byFinish = finished.sort((a, b) => (a.finishedAt?.getTime() ?? 0) - (b.finishedAt?.getTime() ?? 0) || a.id - b.id).map((t) => t.id);
      const byId = all.map((t) => t.id);

      for (const size of [1, 4, 50]) {
        assert.deepEqual(await walk({ filter: {}, sort: 'id', order: 'asc' }, size), byId);
        assert.deepEqual(await walk({ filter: {}, sort: 'id', order: 'desc' }, size), [...byId].reverse());
        assert.deepEqual(await walk({ filter: {}, sort: 'runAt', order: 'asc' }, size), byRun);
        assert.deepEqual(await walk({ filter: {}, sort: 'runAt', order: 'desc' }, size), [...byRun].reverse());
        assert.deepEqual(await walk({ filter: {}, sort: 'finishedAt', order: 'asc' }, size), byFinish, 'only finished tasks');
        assert.deepEqual(await walk({ filter: {}, sort: 'finishedAt', order: 'desc' }, size), [...byFinish].reverse());
      }
      // Several statuses in id order (one index range per status, merged) page alike.
      const live = await walk({ filter: { status: ['WAITING', 'COMPLETED'], queue: 'odd' }, sort: 'id', order: 'desc' }, 3);
      assert.deepEqual(live, all.filter((t) => t.queue === 'odd').map((t) => t.id).reverse());
    });

    it('rule: a filtered page or count reads every status, STARTED among them', async () => {
      // Name, queue and runAt pages run once per status on PostgreSQL (indexes that leave STARTED out).
      await store.add(Array.from({ length: 12 }, (_, i) => newTask(i % 3 ? 'x' : 'y', { runAt: at((i % 4) * 1000), queue: i % 2 ? 'odd' : 'even' })), T0);
      const started = await store.claim({ lock: lock('w'), queues: null, limit: 6, now: at(10_000), leaseMs: 30_000 });
      for (const c of started.slice(0, 3)) await store.complete([{ ...ref(c), resultJson: 'null', output: [] }], at(20_000));
      const all = await store.queryTasks({ filter: {}, sort: 'id', order: 'asc', limit: 500, after: null });
      assert.deepEqual(new Set(all.map((t) => t.status)), new Set(['WAITING', 'STARTED', 'COMPLETED']));
      for (const filter of [{ name: 'x' }, { queue: 'odd' }, { name: 'y', queue: 'even' }]) {
        const match = all.filter((t) => (!filter.name || t.name === filter.name) && (!('queue' in filter) || t.queue === filter.queue));
        const byId = match.map((t) => t.id);
        const byRun = [...match].sort((a, b) => a.runAt.getTime() - b.runAt.getTime() || a.id - b.id).map((t) => t.id);
        assert.deepEqual(await walk({ filter, sort: 'id', order: 'desc' }, 2), [...byId].reverse());
        assert.deepEqual(await walk({ filter, sort: 'runAt', order: 'asc' }, 2), byRun);
        assert.equal(await store.countTasks(filter, 1000), match.length);
        assert.equal(await store.countTasks(filter, 2), Math.min(2, match.length));
      }
    });

    it('rule: a count stops at its cap', async () => {
      await store.add(Array.from({ length: 30 }, () => newTask('a')), T0);
      assert.equal(await store.countTasks({}, 1000), 30);
      assert.equal(await store.countTasks({}, 10), 10);
      assert.equal(await store.countTasks({ name: 'b' }, 10), 0);
      assert.equal(await store.countTasks({ status: ['WAITING'], text: '{}' }, 100), 30);
    });

    it('rule: delete refuses a STARTED task (cancel first) and a prerequisite of live tasks (naming them)', async () => {
      const [p] = await store.add([newTask('a')], T0);
      assert.ok(p);
      const [d1, d2] = await store.add([newTask('b', { prerequisites: [p.task.id] }), newTask('b', { prerequisites: [p.task.id] })], T0);
      assert.ok(d1 && d2);
      await assert.rejects(store.deleteTask(p.task.id), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'INVALID_TRANSITION');
        assert.match(e.message, new RegExp(`cannot delete task #${p.task.id}: #${d1.task.id}, #${d2.task.id} depend on it`));
        assert.match(e.message, /Cancel or delete those tasks first/);
        return true;
      });
      const [c] = await claimAll();
      assert.equal(c?.id, p.task.id);
      await assert.rejects(store.deleteTask(p.task.id), /it is STARTED \(running\)\. Cancel it first/);
      await store.deleteTask(d2.task.id);
      await store.deleteTask(d1.task.id);
      assert.equal(await store.get(d1.task.id), null);
      await assert.rejects(store.deleteTask(d1.task.id), /does not exist/);
      // Once no live task waits for it and it has ended, it goes.
      await store.complete([{ ...ref(c as ClaimedTask), resultJson: '1', output: [] }], T0);
      await store.deleteTask(p.task.id);
      assert.equal(await store.get(p.task.id), null);
    });

    it('rule: a prerequisite whose dependants have all ended can be deleted; they keep its id in their list', async () => {
      const [p] = await store.add([newTask('a')], T0);
      const [d] = await store.add([newTask('b', { prerequisites: [p!.task.id] })], T0);
      await store.cancel(p!.task.id, T0); // the cascade cancels d too
      assert.equal((await store.get(d!.task.id))?.status, 'CANCELLED');
      await store.deleteTask(p!.task.id);
      assert.deepEqual((await store.get(d!.task.id))?.prerequisites, [p!.task.id]);
      assert.deepEqual(await store.dependants(p!.task.id), []);
    });

    it('rule: dependants are the tasks naming it in their prerequisites, by id', async () => {
      const [a, b] = await store.add([newTask('a'), newTask('a')], T0);
      const deps = await store.add([newTask('c', { prerequisites: [a!.task.id, b!.task.id] }), newTask('c', { prerequisites: [a!.task.id] })], T0);
      assert.deepEqual(ids(await store.dependants(a!.task.id)), deps.map((d) => d.task.id));
      assert.deepEqual(ids(await store.dependants(b!.task.id)), [deps[0]!.task.id]);
      const [item] = await store.dependants(b!.task.id);
      assert.ok(item && !('output' in item) && !('result' in item) && !('errorStack' in item), 'list items leave out large fields');
    });

    it('rule: activity counts per minute of the last hour zero-filled, and the latest failures; counts go by id range', async () => {
      await store.add([newTask('a', { queue: 'q1' }), newTask('a', { queue: 'q1' }), newTask('a', { queue: 'q2' }), newTask('a', { queue: 'q2' })], T0);
      const now = at(3 * 3_600_000 + 30_500);
      const [c1, c2, c3] = await store.claim({ lock: lock('w'), queues: null, limit: 3, now: T0, leaseMs: 3_600_000 * 4 });
      await store.complete([{ ...ref(c1!), resultJson: '1', output: [] }], new Date(now.getTime() - 5 * 60_000));
      await store.complete([{ ...ref(c2!), resultJson: '1', output: [] }], new Date(now.getTime() - 2 * 3_600_000));
      await store.fail([{ ...ref(c3!), error: 'boom', errorStack: 's', output: [], retryAt: null }], new Date(now.getTime() - 1000));
      const s = await store.taskActivity(now);
      assert.deepEqual(await store.taskIdRange(), { min: 1, max: 4 });
      const sorted = (rows: { queue: string; status: string; n: number }[]) =>
        [...rows].sort((a, b) => a.queue.localeCompare(b.queue) || a.status.localeCompare(b.status));
      assert.deepEqual(sorted(await store.countByQueue(0, 4)), [
        { queue: 'q1', status: 'COMPLETED', n: 2 },
        { queue: 'q2', status: 'FAILED', n: 1 },
        { queue: 'q2', status: 'WAITING', n: 1 },
      ]);
      assert.deepEqual(sorted(await store.countByQueue(2, 3)), [{ queue: 'q2', status: 'FAILED', n: 1 }]);
      assert.equal(s.perMinute.length, 60);
      assert.equal(s.perMinute[59]?.minute.getTime(), Math.floor(now.getTime() / 60_000) * 60_000);
      assert.ok(s.perMinute.every((m, i) => i === 0 || m.minute.getTime() - (s.perMinute[i - 1]?.minute.getTime() ?? 0) === 60_000));
      assert.deepEqual(s.perMinute.map((m) => m.completed).reduce((x, y) => x + y), 1, 'the one two hours ago is outside');
      assert.equal(s.perMinute[54]?.completed, 1);
      assert.equal(s.perMinute[59]?.failed, 1);
      assert.deepEqual(ids(s.latestFailures), [c3!.id]);
      assert.equal(s.latestFailures[0]?.error, 'boom');
    });

    it('rule: progress is written only for the attempt that runs, and shows in get and in lists', async () => {
      await store.add([newTask('a')], T0);
      const [c] = await claimAll();
      assert.ok(c);
      assert.equal((await store.get(c.id))?.progress, null);
      assert.equal(await store.setProgress(ref(c), { value: 40, message: 'step 2', at: at(5) }), true);
      assert.deepEqual((await store.get(c.id))?.progress, { value: 40, message: 'step 2', at: at(5) });
      assert.equal(await store.setProgress({ ...ref(c), attempt: 9 }, { value: 90, message: null, at: at(6) }), false);
      assert.equal(await store.setProgress({ ...ref(c), workerId: 'other' }, { value: 90, message: null, at: at(6) }), false);
      assert.equal(await store.setProgress(ref(c), { value: { done: 3, total: 4 }, message: null, at: at(7) }), true);
      await store.complete([{ ...ref(c), resultJson: '1', output: [] }], at(8));
      assert.equal(await store.setProgress(ref(c), { value: 99, message: 'late', at: at(9) }), false, 'never after the outcome');
      const [listed] = await page();
      assert.deepEqual(listed?.progress, { value: { done: 3, total: 4 }, message: null, at: at(7) });
    });

    it('rule: a daemon that stops cleanly leaves the time it was last seen', async () => {
      assert.equal(await store.lastDaemonStop(), null);
      await store.heartbeat({ id: 'h:1:0', host: 'h', pid: 1, startedAt: T0, lastSeen: at(5000), modules: [] });
      await store.removeDaemon('h:1:0');
      assert.deepEqual(await store.lastDaemonStop(), at(5000));
      assert.deepEqual(await store.listDaemons(), []);
    });
  });
}

// The client's windowed search (runPage) over each engine: rare matches in a large table come back in
// short calls, possibly as short pages with a cursor, and all pages together are exactly the matches.
for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`windowed pages: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    it('rule: windows of ids, however small and whatever the budget, yield every match once, in order', async () => {
      const { runPage, toPageRequest } = await import('../../src/client/queries.js');
      const db = await engine.create();
      const store = await openStore(db.url);
      try {
        await store.add(Array.from({ length: 60 }, (_, i) => newTask('a', { note: i % 7 === 0 ? `Needle ${i}` : 'hay' })), T0);
        const expected = (await store.queryTasks({ filter: { text: 'needle' }, sort: 'id', order: 'asc', limit: 500, after: null })).map((t) => t.id);
        assert.equal(expected.length, 9);
        for (const order of ['asc', 'desc'] as const) {
          for (const tuning of [{ window: 5 }, { window: 5, budgetMs: 0 }, { window: 1000 }]) {
            const seen: number[] = [];
            let cursor: string | null = null;
            let calls = 0;
            do {
              const page = await runPage(store, toPageRequest({ text: 'needle', order, limit: 2, cursor }), tuning);
              assert.ok(page.tasks.length <= 2);
              seen.push(...page.tasks.map((t) => t.id));
              cursor = page.nextCursor;
              calls++;
            } while (cursor && calls < 200);
            assert.deepEqual(seen, order === 'asc' ? expected : [...expected].reverse(), JSON.stringify({ order, tuning }));
            if (tuning.budgetMs === 0) assert.ok(calls > 5, 'a spent budget returns short pages with a cursor');
          }
        }
      } finally {
        await store.close();
        await db.drop();
      }
    });
  });
}
