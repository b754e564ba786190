// Store conformance for retention (prune): per-status cutoffs, batches, dry runs, and finished tasks
// that live dependants still name are kept. Every engine must pass every test here.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { ENGINES, type TempDatabase } from '../helpers/engines.js';
import { newTask } from '../helpers/fixtures.js';

const DAY = 86_400_000;
const T0 = new Date('2026-01-01T00:00:00Z');
const day = (n: number) => new Date(T0.getTime() + n * DAY);
const lock = { host: 'test-host', pid: 1, workerId: 'w1' };

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`store retention: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let db: TempDatabase;
    let store: Store;

    /** `n` tasks named `name` that end with `status` on day `d`; returns their ids. */
    const finished = async (name: string, status: 'COMPLETED' | 'FAILED' | 'CANCELLED', d: number, n = 1): Promise<number[]> => {
      const added = await store.add(Array.from({ length: n }, () => newTask(name, { maxAttempts: 1 })), day(d));
      const ids = added.map((r) => r.task.id);
      if (status === 'CANCELLED') {
        for (const id of ids) await store.cancel(id, day(d));
        return ids;
      }
      const claimed = await store.claim({ lock, queues: null, limit: n, now: day(d), leaseMs: 60_000 });
      assert.equal(claimed.length, n);
      const refs = claimed.map((t) => ({ id: t.id, workerId: 'w1', attempt: t.attempts }));
      await store.settle(
        status === 'COMPLETED'
          ? { completions: refs.map((r) => ({ ...r, resultJson: 'null', output: [] })), failures: [] }
          : { completions: [], failures: refs.map((r) => ({ ...r, error: 'no', errorStack: null, output: [], retryAt: null })) },
        null,
        day(d),
      );
      return ids;
    };
    const names = async () => (await store.list({ limit: 10_000, order: 'asc' })).map((t) => `${t.name}:${t.status}`);

    beforeEach(async () => {
      db = await engine.create();
      store = await openStore(db.url);
    });
    afterEach(async () => {
      await store.close();
      await db.drop();
    });

    it('deletes each status by its own cutoff and leaves live tasks alone', async () => {
      await finished('old', 'COMPLETED', 0);
      await finished('old', 'CANCELLED', 0);
      await finished('old', 'FAILED', 0);
      await finished('new', 'COMPLETED', 9);
      await finished('new', 'FAILED', 9);
      await store.add([newTask('live')], day(0));
      // On day 10: COMPLETED and CANCELLED after 7 days, FAILED after 30.
      const removed = await store.prune({ before: { COMPLETED: day(3), CANCELLED: day(3), FAILED: day(-20) } });
      assert.deepEqual(removed, { COMPLETED: 1, CANCELLED: 1, FAILED: 0 });
      assert.deepEqual(await names(), ['old:FAILED', 'new:COMPLETED', 'new:FAILED', 'live:WAITING']);
      // A status without a cutoff is kept whatever its age.
      assert.deepEqual(await store.prune({ before: { COMPLETED: day(100) } }), { COMPLETED: 1, CANCELLED: 0, FAILED: 0 });
      assert.deepEqual(await names(), ['old:FAILED', 'new:FAILED', 'live:WAITING']);
    });

    it('a dry run counts what would go and deletes nothing', async () => {
      await finished('a', 'COMPLETED', 0, 3);
      await finished('b', 'FAILED', 0, 2);
      const before = { COMPLETED: day(1), CANCELLED: day(1), FAILED: day(1) };
      assert.deepEqual(await store.prune({ before, dryRun: true }), { COMPLETED: 3, CANCELLED: 0, FAILED: 2 });
      assert.equal((await names()).length, 5);
      assert.deepEqual(await store.prune({ before }), { COMPLETED: 3, CANCELLED: 0, FAILED: 2 });
      assert.equal((await names()).length, 0);
    });

    it('deletes more than one batch (1,234 tasks) and the deprecated pruneFinished still works', async () => {
      await finished('bulk', 'COMPLETED', 0, 1234);
      await finished('bulk', 'FAILED', 0, 3);
      assert.deepEqual(await store.prune({ before: { COMPLETED: day(1) } }), { COMPLETED: 1234, CANCELLED: 0, FAILED: 0 });
      assert.equal(await store.pruneFinished(day(1)), 3);
      assert.deepEqual(await names(), []);
    });

    it('walks past kept rows older than the cutoff (protected prerequisites, other statuses) and deletes every prunable one', async () => {
      // Six days of finished tasks: per day prunable COMPLETED, COMPLETED ones a WAITING task still
      // names, and FAILED ones (kept longer), interleaved on finished_at; more than one batch to delete.
      const prunable: number[] = [];
      const kept: number[] = [];
      for (let d = 0; d < 6; d++) {
        prunable.push(...(await finished('p', 'COMPLETED', d, 60)));
        kept.push(...(await finished('k', 'COMPLETED', d, 40)));
        prunable.push(...(await finished('p', 'COMPLETED', d, 100)));
        kept.push(...(await finished('f', 'FAILED', d, 40)));
      }
      const protectedIds = kept.filter((_, i) => Math.floor(i / 40) % 2 === 0);
      const [other] = await store.add([newTask('other')], day(7));
      const [dep] = await store.add([newTask('dep', { prerequisites: [...protectedIds, other!.task.id] })], day(7));
      assert.equal(prunable.length, 960);
      const removed = await store.prune({ before: { COMPLETED: day(10), CANCELLED: day(10), FAILED: day(-20) } });
      assert.deepEqual(removed, { COMPLETED: 960, CANCELLED: 0, FAILED: 0 });
      const left = new Set((await store.list({ limit: 10_000, order: 'asc' })).map((t) => t.id));
      assert.deepEqual([...left].sort((a, b) => a - b), [...kept, other!.task.id, dep!.task.id].sort((a, b) => a - b));
      // Nothing more to do: a second run finds nothing.
      assert.deepEqual(await store.prune({ before: { COMPLETED: day(10), CANCELLED: day(10), FAILED: day(-20) } }), { COMPLETED: 0, CANCELLED: 0, FAILED: 0 });
    });

    it('keeps a finished prerequisite that a WAITING dependant still names, until the dependant ends', async () => {
      const [done] = await finished('prereq', 'COMPLETED', 0);
      const [other] = await store.add([newTask('other')], day(0));
      const [dep] = await store.add([newTask('dep', { prerequisites: [done as number, other!.task.id] })], day(0));
      const before = { COMPLETED: day(5), CANCELLED: day(5), FAILED: day(5) };
      assert.deepEqual(await store.prune({ before, dryRun: true }), { COMPLETED: 0, CANCELLED: 0, FAILED: 0 });
      assert.deepEqual(await store.prune({ before }), { COMPLETED: 0, CANCELLED: 0, FAILED: 0 });
      assert.ok(await store.get(done as number), 'still there while its dependant waits');
      // The dependant ends (cancelled): now nothing holds the prerequisite.
      await store.cancel(dep!.task.id, day(1));
      assert.deepEqual(await store.prune({ before }), { COMPLETED: 1, CANCELLED: 1, FAILED: 0 });
      assert.equal(await store.get(done as number), null);
    });
  });
}
