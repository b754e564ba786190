// Store conformance for follow-ups (ctx.add): written in the transaction that completes their parent,
// and only if that attempt still holds the task. Every engine must pass every test here.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { NewTask } from '../../src/model/task.js';
import { openStore } from '../../src/store/open.js';
import type { ClaimedTask, Completion, FollowUp, Store } from '../../src/store/store.js';
import { ENGINES, PG_BASE_URL, type TempDatabase } from '../helpers/engines.js';
import { newTask } from '../helpers/fixtures.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const lock = (workerId: string) => ({ host: 'test-host', pid: 1, workerId });

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`store follow-ups: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let db: TempDatabase;
    let store: Store;
    const claim = async (limit = 10, workerId = 'w1', now = at(0)) =>
      store.claim({ lock: lock(workerId), queues: null, limit, now, leaseMs: 30_000 });
    const done = (t: ClaimedTask, followUps: FollowUp[] = []): Completion => ({
      id: t.id,
      workerId: t.lockedBy.workerId,
      attempt: t.attempts,
      resultJson: '"ok"',
      output: [],
      ...(followUps.length > 0 ? { followUps } : {}),
    });
    const followUp = async (name: string, over: Partial<NewTask> = {}): Promise<FollowUp> => {
      const [id] = await store.reserveTaskIds(1);
      return { id: id as number, task: newTask(name, over) };
    };

    beforeEach(async () => {
      db = await engine.create();
      store = await openStore(db.url);
    });
    afterEach(async () => {
      await store.close();
      await db.drop();
    });

    it('reserved ids are never taken by an add, and are unused until written', async () => {
      await store.add([newTask('a')], T0);
      const reserved = await store.reserveTaskIds(3);
      assert.equal(new Set(reserved).size, 3);
      const [added] = await store.add([newTask('a')], T0);
      assert.ok(added!.task.id > Math.max(...reserved), `add took ${added!.task.id}, reserved ${reserved.join(',')}`);
      for (const id of reserved) assert.equal(await store.get(id), null);
    });

    it('writes follow-ups under their reserved ids with the completion; one naming its parent is claimable at once', async () => {
      await store.add([newTask('parent')], T0);
      const [parent] = await claim(1);
      const a = await followUp('child', { payload: { n: 1 }, prerequisites: [parent!.id], note: 'from parent' });
      const b = await followUp('child', { payload: { n: 2 } });
      await store.settle({ completions: [done(parent!, [a, b])], failures: [] }, null, at(10));
      assert.equal((await store.get(parent!.id))?.status, 'COMPLETED');
      const ta = await store.get(a.id);
      assert.equal(ta?.status, 'WAITING');
      assert.deepEqual(ta?.payload, { n: 1 });
      assert.deepEqual(ta?.prerequisites, [parent!.id]);
      assert.equal(ta?.note, 'from parent');
      assert.equal((await store.get(b.id))?.status, 'WAITING');
      const next = await claim(10, 'w1', at(20));
      assert.deepEqual(next.map((t) => t.id).sort((x, y) => x - y), [a.id, b.id]);
    });

    it('adds nothing for an attempt that no longer holds its task, nor twice when the outcome is sent again', async () => {
      await store.add([newTask('parent', { maxAttempts: 3 })], T0);
      const [first] = await claim(1);
      // The first attempt's lease is lost: the task is released and claimed again by another worker.
      await store.release([{ id: first!.id, workerId: 'w1', attempt: first!.attempts }], at(1));
      const [second] = await claim(1, 'w2', at(2));
      const lost = await followUp('child');
      await store.settle({ completions: [done(first!, [lost])], failures: [] }, null, at(3));
      assert.equal(await store.get(lost.id), null, 'a refused completion adds nothing');
      assert.equal((await store.get(second!.id))?.status, 'STARTED');
      const kept = await followUp('child');
      const outcome = done(second!, [kept]);
      await store.settle({ completions: [outcome], failures: [] }, null, at(4));
      await store.settle({ completions: [outcome], failures: [] }, null, at(5));
      assert.equal((await store.get(kept.id))?.status, 'WAITING');
      assert.equal((await store.list({ name: 'child' })).length, 1);
    });

    it('a follow-up may wait for an earlier one; the parent\'s other dependants are counted down once', async () => {
      const [p] = await store.add([newTask('parent')], T0);
      // An ordinary dependant of the parent, added before it ran.
      const [dep] = await store.add([newTask('dep', { prerequisites: [p!.task.id] })], T0);
      const [parent] = await claim(1);
      const a = await followUp('a', { prerequisites: [parent!.id] });
      const b = await followUp('b', { prerequisites: [parent!.id, a.id] });
      await store.settle({ completions: [done(parent!, [a, b])], failures: [] }, null, at(10));
      const claimed = await claim(10, 'w1', at(20));
      assert.deepEqual(claimed.map((t) => t.id).sort((x, y) => x - y), [dep!.task.id, a.id]);
      const ca = claimed.find((t) => t.id === a.id) as ClaimedTask;
      await store.settle({ completions: [done(ca)], failures: [] }, null, at(30));
      assert.deepEqual((await claim(10, 'w1', at(40))).map((t) => t.id), [b.id]);
    });

    it('completes plain completions and ones with follow-ups in the same batch', async () => {
      await store.add([newTask('p'), newTask('p'), newTask('p')], T0);
      const [x, y, z] = await claim(3);
      const f = await followUp('child', { prerequisites: [z!.id] });
      await store.settle({ completions: [done(x!), done(y!, [f]), done(z!)], failures: [] }, null, at(10));
      for (const t of [x, y, z]) assert.equal((await store.get(t!.id))?.status, 'COMPLETED');
      const tf = await store.get(f.id);
      assert.equal(tf?.status, 'WAITING');
      assert.deepEqual((await claim(10, 'w1', at(20))).map((t) => t.id), [f.id]);
    });

    it('unique keys as in add: a live holder replaces the follow-up; the parent\'s own key is free once it completes', async () => {
      const [holder] = await store.add([newTask('other', { uniqueKey: 'shared' })], T0);
      await store.add([newTask('parent', { uniqueKey: 'self', priority: 10 })], T0);
      const [parent] = await claim(1);
      assert.equal(parent!.name, 'parent');
      const dup = await followUp('child', { uniqueKey: 'shared' });
      const after = await followUp('child', { prerequisites: [dup.id] });
      const again = await followUp('parent', { uniqueKey: 'self' });
      await store.settle({ completions: [done(parent!, [dup, after, again])], failures: [] }, null, at(10));
      assert.equal(await store.get(dup.id), null, 'the live holder of the key stands in for it');
      assert.deepEqual((await store.get(after.id))?.prerequisites, [holder!.task.id]);
      const re = await store.get(again.id);
      assert.equal(re?.status, 'WAITING');
      assert.equal(re?.uniqueKey, 'self');
    });

    it('a follow-up whose unique key a live task holds marks none of its prerequisites as having dependants', async () => {
      // has_dependants is internal (it lets pruning skip the dependants check): read it directly.
      const hasDependants = async (id: number): Promise<boolean> => {
        if (engine.name === 'sqlite') {
          const raw = new Database(db.url.slice('sqlite:'.length), { readonly: true });
          try {
            return (raw.prepare('SELECT has_dependants AS h FROM tasks WHERE id = ?').get(id) as { h: number }).h === 1;
          } finally {
            raw.close();
          }
        }
        const client = new pg.Client({ connectionString: PG_BASE_URL });
        await client.connect();
        try {
          const schema = new URL(db.url).searchParams.get('schema') as string;
          const { rows } = await client.query(`SELECT has_dependants AS h FROM ${client.escapeIdentifier(schema)}.tasks WHERE id = $1`, [id]);
          return (rows[0] as { h: boolean }).h;
        } finally {
          await client.end();
        }
      };
      await store.add([newTask('prereq')], T0);
      const [prereq] = await claim(1);
      await store.settle({ completions: [done(prereq!)], failures: [] }, null, at(5));
      // The key's holder waits for later, so the claim below takes the parent.
      const [holder] = await store.add([newTask('holder', { uniqueKey: 'k', runAt: at(3_600_000) })], T0);
      await store.add([newTask('parent')], T0);
      const [parent] = await claim(1);
      assert.equal(parent?.name, 'parent');
      const f = await followUp('child', { uniqueKey: 'k', prerequisites: [prereq!.id] });
      await store.settle({ completions: [done(parent!, [f])], failures: [] }, null, at(10));
      assert.equal((await store.get(parent!.id))?.status, 'COMPLETED');
      assert.equal(await store.get(f.id), null, 'the live holder replaced the follow-up');
      assert.ok(await store.get(holder!.task.id));
      assert.equal(await hasDependants(prereq!.id), false);
    });

    it('a prerequisite deleted before the commit ends the follow-up FAILED, and the parent still completes', async () => {
      await store.add([newTask('gone')], T0);
      const [gone] = await claim(1);
      await store.settle({ completions: [done(gone!)], failures: [] }, null, at(1));
      await store.add([newTask('parent')], T0);
      const [parent] = await claim(1, 'w1', at(2));
      const f = await followUp('child', { prerequisites: [gone!.id] });
      await store.pruneFinished(at(5));
      await store.settle({ completions: [done(parent!, [f])], failures: [] }, null, at(10));
      assert.equal((await store.get(parent!.id))?.status, 'COMPLETED');
      const tf = await store.get(f.id);
      assert.equal(tf?.status, 'FAILED');
      assert.match(tf?.error ?? '', new RegExp(`prerequisite task #${gone!.id} no longer exists`));
    });
  });
}
