// The client's task queries on every engine: validation at the edge, the opaque cursor, count, delete,
// bulk actions (by ids and by filter), dependants, stats and daemon status. Each test names its rule.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HEARTBEAT_STALE_MS } from '../../src/model/daemon.js';
import { ENGINES } from '../helpers/engines.js';
import { makeProject } from '../helpers/project.js';

const invalid = (pattern: RegExp) => (e: Error & { code?: string }) => {
  assert.equal(e.code, 'INVALID_INPUT', e.message);
  assert.match(e.message, pattern);
  return true;
};

const handlers = { echo: 'export default async (x) => x;', other: 'export default async () => 1;' };

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`client task queries: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    it('rule: pages follow the opaque cursor to the end, and the cursor is bound to its sort', async () => {
      const p = await makeProject(engine, handlers);
      try {
        const added = await p.mill.addMany(Array.from({ length: 7 }, (_, i) => ({ name: i % 2 ? 'echo' : 'other', payload: { i } })));
        const seen: number[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page = await p.mill.query({ limit: 3, cursor });
          seen.push(...page.tasks.map((t) => t.id));
          cursor = page.nextCursor;
          pages++;
        } while (cursor);
        assert.deepEqual(seen, added.map((t) => t.id).reverse());
        assert.equal(pages, 3);
        const exact = await p.mill.query({ limit: 7 });
        assert.equal(exact.nextCursor, null, 'no cursor when nothing follows');
        const first = await p.mill.query({ limit: 2, sort: 'runAt', order: 'asc' });
        assert.ok(first.nextCursor);
        await assert.rejects(p.mill.query({ cursor: first.nextCursor }), invalid(/sorted by runAt asc, not id desc; start again/));
        const next = await p.mill.query({ limit: 2, sort: 'runAt', order: 'asc', cursor: first.nextCursor });
        assert.deepEqual(next.tasks.map((t) => t.id), [added[2]?.id, added[3]?.id]);
        const [item] = exact.tasks;
        assert.ok(item && !('output' in item) && !('result' in item) && !('errorStack' in item));
        assert.deepEqual((await p.mill.query({ name: 'ECHO' })).tasks.length, 3, 'names match whatever their case');
      } finally {
        await p.close();
      }
    });

    it('rule: bad query input is refused at the edge, naming the field and the fix', async () => {
      const p = await makeProject(engine, handlers);
      try {
        const q = p.mill.query.bind(p.mill) as (q: unknown) => Promise<unknown>;
        await assert.rejects(q({ status: ['DONE'] }), invalid(/unknown status "DONE": use WAITING, STARTED/));
        await assert.rejects(q({ limit: 501 }), invalid(/invalid limit 501: use a whole number from 1 to 500/));
        await assert.rejects(q({ limit: 0 }), invalid(/invalid limit 0/));
        await assert.rejects(q({ sort: 'name' }), invalid(/invalid sort "name": use id, runAt, finishedAt/));
        await assert.rejects(q({ order: 'up' }), invalid(/invalid order "up": use asc or desc/));
        await assert.rejects(q({ cursor: 'garbage' }), invalid(/invalid cursor: pass the nextCursor of the previous page unchanged/));
        await assert.rejects(q({ createdFrom: 'yesterday' }), invalid(/invalid createdFrom "yesterday": use a Date or an ISO-8601 time/));
        await assert.rejects(q({ name: '../etc' }), invalid(/invalid task name "..\/etc"/));
        await assert.rejects(q({ queue: 'a b' }), invalid(/invalid queue "a b"/));
        await assert.rejects(q({ text: '' }), invalid(/invalid text: search for a string of 1 to 200 characters/));
        await assert.rejects(q({ colour: 'red' }), invalid(/unknown field "colour" in the task query/));
        await assert.rejects(p.mill.count({}, 0), invalid(/invalid cap 0/));
        await assert.rejects(p.mill.bulk('explode' as 'retry', { ids: [1] }), invalid(/invalid bulk action "explode": use retry, cancel or delete/));
        await assert.rejects(p.mill.bulk('retry', {} as { ids: number[] }), invalid(/needs "ids" \(a list of task ids\) or "filter"/));
        await assert.rejects(p.mill.bulk('retry', { ids: [0] }), invalid(/invalid task id 0 in "ids"/));
        await assert.rejects(p.mill.delete(-1), invalid(/invalid task id -1/));
        // A createdFrom given as ISO text (as the API passes it) is accepted.
        assert.deepEqual((await q({ createdFrom: '2000-01-01T00:00:00Z' })) as object, { tasks: [], nextCursor: null });
      } finally {
        await p.close();
      }
    });

    it('rule: count matches the filter and stops at its cap', async () => {
      const p = await makeProject(engine, handlers);
      try {
        await p.mill.addMany(Array.from({ length: 12 }, (_, i) => ({ name: i < 5 ? 'echo' : 'other', payload: { n: `item-${i}` } })));
        assert.equal(await p.mill.count(), 12);
        assert.equal(await p.mill.count({ name: 'echo' }), 5);
        assert.equal(await p.mill.count({}, 10), 10);
        assert.equal(await p.mill.count({ text: 'ITEM-1' }), 3, 'item-1, item-10, item-11');
        // Given a whole query (as a page passes its URL's), count uses the filter fields.
        const whole = { name: 'echo', sort: 'runAt', limit: 5, cursor: null } as Parameters<typeof p.mill.count>[0];
        assert.equal(await p.mill.count(whole), 5);
        await assert.rejects(p.mill.count({ colour: 'red' } as Parameters<typeof p.mill.count>[0]), invalid(/unknown field "colour"/));
      } finally {
        await p.close();
      }
    });

    it('rule: bulk by ids skips tasks that cannot take the action and counts what changed', async () => {
      const p = await makeProject(engine, handlers);
      try {
        const [a, b, c] = await p.mill.addMany([{ name: 'echo' }, { name: 'echo' }, { name: 'echo' }]);
        await p.mill.cancel(a!.id);
        const retried = await p.mill.bulk('retry', { ids: [a!.id, b!.id, 999_999] });
        assert.deepEqual(retried, { matched: 2, changed: 1 }, 'b is WAITING (skipped); 999999 does not exist');
        assert.equal((await p.mill.get(a!.id))?.status, 'WAITING');
        assert.deepEqual(await p.mill.bulk('cancel', { ids: [a!.id, b!.id, c!.id] }), { matched: 3, changed: 3 });
        assert.deepEqual(await p.mill.bulk('cancel', { ids: [a!.id] }), { matched: 1, changed: 0 });
        assert.deepEqual(await p.mill.bulk('delete', { ids: [a!.id, b!.id] }), { matched: 2, changed: 2 });
        assert.equal(await p.mill.get(a!.id), null);
      } finally {
        await p.close();
      }
    });

    it('rule: bulk by filter acts on every match in short steps; delete takes a chain dependants first', async () => {
      const p = await makeProject(engine, handlers);
      try {
        const many = await p.mill.addMany(Array.from({ length: 1_203 }, () => ({ name: 'echo' })));
        await p.mill.add('other');
        assert.deepEqual(await p.mill.bulk('cancel', { filter: { name: 'echo' } }), { matched: 1_203, changed: 1_203 });
        assert.equal(await p.mill.count({ status: ['CANCELLED'] }), 1_203);
        assert.equal(await p.mill.count({ status: ['WAITING'] }), 1, 'the other task is untouched');
        assert.deepEqual(await p.mill.bulk('retry', { filter: { status: ['CANCELLED'] } }), { matched: 1_203, changed: 1_203 });
        // A chain: parent ← child. Deleting both by filter works (child first).
        const parent = await p.mill.add('other', {}, { note: 'chain' });
        await p.mill.add('other', {}, { after: parent.id, note: 'chain' });
        assert.deepEqual(await p.mill.bulk('delete', { filter: { text: 'chain' } }), { matched: 2, changed: 2 });
        // An empty match changes nothing.
        assert.deepEqual(await p.mill.bulk('retry', { filter: { name: 'nothing' } }), { matched: 0, changed: 0 });
        assert.equal((await p.mill.get(many[0]!.id))?.status, 'WAITING');
      } finally {
        await p.close();
      }
    });

    it('rule: delete refuses a running task, and one live tasks wait for; dependants lists them', async () => {
      const p = await makeProject(engine, handlers);
      try {
        const parent = await p.mill.add('echo');
        const child = await p.mill.add('echo', {}, { after: parent.id });
        assert.deepEqual((await p.mill.dependants(parent.id)).map((t) => t.id), [child.id]);
        await assert.rejects(p.mill.delete(parent.id), (e: Error & { code?: string; dependants?: number[] }) => {
          assert.equal(e.code, 'INVALID_TRANSITION');
          assert.deepEqual(e.dependants, [child.id]);
          assert.match(e.message, new RegExp(`#${child.id} depends on it and has not ended\\. Cancel or delete that task first`));
          return true;
        });
        await p.mill.delete(child.id);
        await p.mill.delete(parent.id);
        await assert.rejects(p.mill.delete(parent.id), /does not exist/);
      } finally {
        await p.close();
      }
    });

    it('rule: stats come through the client with the clock it was given', async () => {
      const p = await makeProject(engine, handlers);
      try {
        await p.mill.addMany([{ name: 'echo', options: { queue: 'q1' } }, { name: 'echo' }]);
        const s = await p.mill.stats();
        assert.equal(s.byStatus.WAITING, 2);
        assert.deepEqual(s.byQueue.map((q) => q.queue), ['default', 'q1']);
        assert.equal(s.perMinute.length, 60);
        assert.deepEqual(s.latestFailures, []);
        // A small table is counted afresh on every call.
        await p.mill.add('echo');
        assert.equal((await p.mill.stats()).byStatus.WAITING, 3);
      } finally {
        await p.close();
      }
    });

    it('rule: daemonStatus is running while a heartbeat is fresh, and says since when either way', async () => {
      const p = await makeProject(engine, handlers);
      try {
        assert.deepEqual(await p.mill.daemonStatus(), { running: false, since: null, hosts: [], daemons: [] });
        const now = Date.now();
        const started = new Date(now - 3_600_000);
        await p.mill.store.heartbeat({ id: 'h1:1:0', host: 'h1', pid: 1, startedAt: started, lastSeen: new Date(now), modules: [] });
        await p.mill.store.heartbeat({
          id: 'h2:1:0', host: 'h2', pid: 1, startedAt: new Date(now - 60_000), lastSeen: new Date(now - 1000), modules: [],
        });
        const up = await p.mill.daemonStatus();
        assert.equal(up.running, true);
        assert.deepEqual(up.since, started);
        assert.deepEqual(up.hosts, ['h1', 'h2']);
        assert.equal(up.daemons.length, 2);
        // Both go silent: the outage began at the last heartbeat.
        const last = new Date(now - HEARTBEAT_STALE_MS - 5_000);
        await p.mill.store.heartbeat({ id: 'h1:1:0', host: 'h1', pid: 1, startedAt: started, lastSeen: last, modules: [] });
        await p.mill.store.heartbeat({
          id: 'h2:1:0', host: 'h2', pid: 1, startedAt: started, lastSeen: new Date(last.getTime() - 9_000), modules: [],
        });
        const down = await p.mill.daemonStatus();
        assert.equal(down.running, false);
        assert.deepEqual(down.since, last);
        assert.deepEqual(down.hosts, ['h1']);
        // A clean stop removes the heartbeat, yet the time stays known.
        await p.mill.store.removeDaemon('h1:1:0');
        await p.mill.store.removeDaemon('h2:1:0');
        const gone = await p.mill.daemonStatus();
        assert.equal(gone.running, false);
        assert.deepEqual(gone.since, last);
      } finally {
        await p.close();
      }
    });

    it('rule: taskNames lists the handler files, leaving out those starting with "_"', async () => {
      const p = await makeProject(engine, { ...handlers, _private: 'export default async () => 1;', 'billing/charge': 'export default async () => 1;' });
      try {
        assert.deepEqual(p.mill.taskNames(), ['billing/charge', 'echo', 'other']);
      } finally {
        await p.close();
      }
    });
  });
}
