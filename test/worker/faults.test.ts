// The worker under faults, on both engines: a stop while a claim is under way, a database that is away
// for a moment or refuses one row, a lease lost to another worker, clocks minutes apart, long timeouts.
// Faults are injected around a real store (a call delayed or failed), never in place of one.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Clock } from '../../src/model/clock.js';
import type { Store } from '../../src/store/store.js';
import { Worker } from '../../src/worker/worker.js';
import { ENGINES, PG_BASE_URL } from '../helpers/engines.js';
import { eventually } from '../helpers/fixtures.js';
import { makeProject, type Project } from '../helpers/project.js';

const HANDLERS = {
  echo: `export default async (payload) => ({ got: payload });`,
  nul: `export default async () => ({ text: 'a\\u0000b' });`,
  big: `export default async () => 'x'.repeat(5000);`,
  chatty: `export default async () => { for (let i = 0; i < 2000; i++) console.log('line', i, 'y'.repeat(50)); return 1; };`,
  hang: `export default (payload, ctx) => new Promise((resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));`,
  slow: `export default (payload, ctx) => new Promise((resolve) => { const t = setTimeout(() => resolve('slow done'), payload.ms); ctx.signal.addEventListener('abort', () => clearTimeout(t)); });`,
  watch: `
    import { writeFileSync } from 'node:fs';
    export default (payload, ctx) => new Promise((resolve, reject) => {
      ctx.signal.addEventListener('abort', () => { writeFileSync(payload.marker, String(ctx.signal.reason?.message)); reject(ctx.signal.reason); });
    });`,
};

type Settle = Store['settle'];

/** The real store, with `settle` wrapped by `around`. */
function wrapSettle(store: Store, around: (real: Settle, ...args: Parameters<Settle>) => ReturnType<Settle>): Store {
  const real: Settle = store.settle.bind(store);
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'settle') return (...args: Parameters<Settle>) => around(real, ...args);
      const value: unknown = Reflect.get(target, prop);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const shifted = (ms: number): Clock => ({ now: () => new Date(Date.now() + ms) });

/** Moves a task's lease into the past, as a stall or a network cut would let it expire. */
async function expireLease(p: Project, engine: string, id: number): Promise<void> {
  if (engine === 'sqlite') {
    const db = new Database(p.db.url.slice('sqlite:'.length));
    try {
      db.prepare('UPDATE tasks SET lease_until = 0 WHERE id = ?').run(id);
    } finally {
      db.close();
    }
    return;
  }
  const schema = new URL(p.db.url).searchParams.get('schema');
  const client = new pg.Client({ connectionString: PG_BASE_URL });
  await client.connect();
  try {
    await client.query(`UPDATE "${schema}".tasks SET lease_until = now() - interval '1 hour' WHERE id = $1`, [id]);
  } finally {
    await client.end();
  }
}

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`worker faults: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let p: Project;
    const workers: Worker[] = [];
    const worker = (over: Partial<ConstructorParameters<typeof Worker>[0]> = {}) => {
      const w = new Worker({ store: p.mill.store, handlers: p.mill.handlers, concurrency: 10, pollIntervalMs: 100, leaseMs: 5_000, ...over });
      workers.push(w);
      return w;
    };
    afterEach(async () => {
      await Promise.all(workers.splice(0).map((w) => w.stop({ timeoutMs: 100 })));
      await p.close();
    });

    it('hands back at once, attempt not counted, the tasks a claim returns after stop() began', async () => {
      p = await makeProject(engine, HANDLERS);
      const added = await p.mill.addMany([1, 2, 3].map((n) => ({ name: 'echo', payload: { n } })));
      let claimed!: () => void;
      const inClaim = new Promise<void>((resolve) => (claimed = resolve));
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const store = wrapSettle(p.mill.store, async (real, outcomes, claim, now) => {
        const got = await real(outcomes, claim, now);
        if (claim && got.length > 0) {
          claimed();
          await gate;
        }
        return got;
      });
      const w = worker({ store, pollIntervalMs: 60_000 });
      w.start();
      await inClaim;
      for (const t of added) assert.equal((await p.mill.get(t.id))?.status, 'STARTED', 'the claim committed');
      const stopping = w.stop({ timeoutMs: 30_000 });
      open();
      const t0 = Date.now();
      assert.deepEqual(await stopping, { released: 0 });
      assert.ok(Date.now() - t0 < 5_000, 'the stop did not wait for anything');
      for (const t of added) {
        const after = await p.mill.get(t.id);
        assert.equal(after?.status, 'WAITING');
        assert.equal(after?.attempts, 0, 'the attempt is not counted');
        assert.equal(after?.lockedBy, null);
        assert.equal(after?.result, null, 'no handler ran');
      }
    });

    it('keeps outcomes while the database is away, retries them, and loses none', async () => {
      p = await makeProject(engine, HANDLERS);
      const added = await p.mill.addMany(Array.from({ length: 30 }, (_, n) => ({ name: 'echo', payload: { n } })));
      let refusals = 0;
      const store = wrapSettle(p.mill.store, async (real, outcomes, claim, now) => {
        if (outcomes.completions.length > 0 && refusals < 4) {
          refusals++;
          throw new Error('Connection terminated unexpectedly');
        }
        return real(outcomes, claim, now);
      });
      const w = worker({ store });
      w.start();
      await eventually(async () => ((await p.mill.store.counts()).COMPLETED === 30 ? true : undefined), 30_000, 'all completed');
      assert.equal(refusals, 4);
      for (const t of added) {
        const after = await p.mill.get(t.id);
        assert.equal(after?.attempts, 1, `task #${t.id} ran once: its lease was held while its outcome waited`);
      }
    });

    it('stops within its bounds while the database stays away, and the unwritten task runs again later', async () => {
      p = await makeProject(engine, HANDLERS);
      const t = await p.mill.add('echo', { n: 1 });
      const away = wrapSettle(p.mill.store, async (real, outcomes, claim, now) => {
        if (outcomes.completions.length > 0 || outcomes.failures.length > 0) throw new Error('Connection terminated unexpectedly');
        return real(outcomes, claim, now);
      });
      const stuck = worker({ store: away, leaseMs: 1_000 });
      stuck.start();
      await eventually(() => (stuck.processed === 1 ? true : undefined), 10_000, 'the handler to finish');
      const t0 = Date.now();
      await stuck.stop({ timeoutMs: 1_000 });
      assert.ok(Date.now() - t0 < 15_000, `stop returned after ${Date.now() - t0} ms`);
      assert.equal((await p.mill.get(t.id))?.status, 'STARTED', 'its outcome was never written');
      worker({ leaseMs: 1_000 }).start();
      const done = await p.mill.wait(t.id, { timeout: '30s' });
      assert.equal(done.status, 'COMPLETED');
      assert.equal(done.attempts, 2, 'run again once its lease expired');
    });

    it('a claim that fails beside a successful outcome never turns that success into a failure', async () => {
      p = await makeProject(engine, HANDLERS);
      // More tasks than slots: each claim is full, so the next call carries an outcome and a claim.
      const added = await p.mill.addMany(Array.from({ length: 15 }, (_, n) => ({ name: 'echo', payload: { n } })));
      let failed = 0;
      const store = wrapSettle(p.mill.store, async (real, outcomes, claim, now) => {
        if (claim && outcomes.completions.length > 0 && failed === 0) {
          failed++;
          throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
        }
        return real(outcomes, claim, now);
      });
      // One slot: the failing call carries a single outcome (a batch of more was always halved and written).
      worker({ store, concurrency: 1 }).start();
      for (const t of added) {
        const done = await p.mill.wait(t.id, { timeout: '20s' });
        assert.equal(done.status, 'COMPLETED', done.error ?? '');
        assert.equal(done.attempts, 1);
      }
      assert.equal(failed, 1);
    });

    it('keeps renewing leases while a stop waits for a long task, so no other worker takes it', async () => {
      p = await makeProject(engine, HANDLERS);
      const t = await p.mill.add('slow', { ms: 3_000 });
      const a = worker({ leaseMs: 900 });
      a.start();
      await eventually(async () => ((await p.mill.get(t.id))?.status === 'STARTED' ? true : undefined), 10_000, 'started');
      const stopping = a.stop({ timeoutMs: 20_000 });
      worker({ leaseMs: 900 }).start(); // rescues every 450 ms
      assert.deepEqual(await stopping, { released: 0 });
      const done = await p.mill.wait(t.id, { timeout: '20s' });
      assert.equal(done.status, 'COMPLETED');
      assert.equal(done.attempts, 1, 'never rescued while its worker was stopping');
    });

    it('hears a cancel at once while a stop waits for the task', async () => {
      p = await makeProject(engine, HANDLERS);
      const t = await p.mill.add('hang', {});
      const a = worker({ leaseMs: 30_000 }); // renewals every 10 s: only the cancel event can be this quick
      a.start();
      await eventually(async () => ((await p.mill.get(t.id))?.status === 'STARTED' ? true : undefined), 10_000, 'started');
      const stopping = a.stop({ timeoutMs: 20_000 });
      const t0 = Date.now();
      await p.mill.cancel(t.id);
      assert.deepEqual(await stopping, { released: 0 });
      assert.ok(Date.now() - t0 < 5_000, `the stop ended ${Date.now() - t0} ms after the cancel`);
      assert.equal((await p.mill.get(t.id))?.status, 'CANCELLED');
    });

    it('isolates an outcome the database refuses: the others of its batch are written, that one ends FAILED saying why', async () => {
      p = await makeProject(engine, HANDLERS);
      const [bad] = await p.mill.addMany([{ name: 'nul' }, ...Array.from({ length: 9 }, (_, n) => ({ name: 'echo', payload: { n } }))]);
      let batch = 0;
      const store = wrapSettle(p.mill.store, async (real, outcomes, claim, now) => {
        batch = Math.max(batch, outcomes.completions.length);
        return real(outcomes, claim, now);
      });
      const w = worker({ store });
      w.start();
      await eventually(async () => {
        const c = await p.mill.store.counts();
        return c.COMPLETED + c.FAILED === 10 ? true : undefined;
      }, 20_000, 'all ended');
      const after = await p.mill.get(bad!.id);
      if (engine.name === 'postgres') {
        // jsonb cannot hold a NUL character.
        assert.equal(after?.status, 'FAILED');
        assert.match(after?.error ?? '', /the database refused this attempt's outcome \(.*\\u0000.*\)/);
        assert.equal((await p.mill.store.counts()).COMPLETED, 9);
        assert.ok(batch > 1, 'the bad row came in a batch with others');
      } else {
        assert.equal(after?.status, 'COMPLETED');
        assert.deepEqual(after?.result, { text: 'a\u0000b' });
      }
    });

    it('aborts a handler at once when its lease is lost to another worker, and drops its outcome', async () => {
      p = await makeProject(engine, HANDLERS);
      const marker = path.join(p.dir, 'aborted.txt');
      const [t] = await p.mill.addMany([{ name: 'watch', payload: { marker } }]);
      const a = worker({ leaseMs: 900, maxTasks: 1 }); // claims this task and no other, so it goes to b
      a.start();
      await eventually(async () => ((await p.mill.get(t!.id))?.status === 'STARTED' ? true : undefined), 10_000, 'started');
      await expireLease(p, engine.name, t!.id);
      assert.equal(await p.mill.store.rescueExpired(new Date()), 1);
      const [taken] = await p.mill.store.claim({ lock: { host: 'h', pid: 1, workerId: 'b' }, queues: null, limit: 1, now: new Date(), leaseMs: 60_000 });
      assert.equal(taken?.id, t!.id);
      await eventually(() => (existsSync(marker) ? true : undefined), 5_000, 'the handler to be aborted');
      assert.match(readFileSync(marker, 'utf8'), /no longer holds the task/);
      await eventually(() => (a.activeCount === 0 ? true : undefined), 5_000, 'the slot to be free');
      await a.whenIdle();
      const after = await p.mill.get(t!.id);
      assert.equal(after?.status, 'STARTED');
      assert.equal(after?.lockedBy?.workerId, 'b', 'the task stays with the worker that holds it');
      assert.equal(after?.attempts, 2);
    });

    it('keeps leases right with clocks ten minutes apart: no task is rescued while its worker lives', async () => {
      p = await makeProject(engine, HANDLERS);
      // Due times are the worker's to judge (a clock behind starts tasks late); leases are the store's.
      const [t] = await p.mill.addMany([{ name: 'slow', payload: { ms: 3_000 }, options: { runAt: new Date(Date.now() - 3_600_000) } }]);
      const behind = worker({ leaseMs: 1_000, clock: shifted(-10 * 60_000) });
      const ahead = worker({ leaseMs: 1_000, clock: shifted(10 * 60_000), queues: ['nothing-here'] });
      behind.start();
      ahead.start();
      const done = await p.mill.wait(t!.id, { timeout: '30s' });
      assert.equal(done.status, 'COMPLETED');
      assert.equal(done.attempts, 1, 'never rescued, never run twice');
      assert.deepEqual(done.result, 'slow done');
    });

    it('runs a task whose timeout is beyond a timer\'s range (30 days) instead of timing it out at once', async () => {
      p = await makeProject(engine, HANDLERS);
      const t = await p.mill.add('slow', { ms: 300 }, { timeout: '30 days' });
      worker().start();
      const done = await p.mill.wait(t.id, { timeout: '20s' });
      assert.equal(done.status, 'COMPLETED', done.error ?? '');
    });

    it('enforces the result and output limits at completion, naming the size and the limit', async () => {
      p = await makeProject(engine, HANDLERS);
      const big = await p.mill.add('big', {}, { maxAttempts: 1 });
      const chatty = await p.mill.add('chatty', {}, { maxAttempts: 1 });
      worker({ limits: { resultBytes: 1_000, outputBytes: 20_000 } }).start();
      const failed = await p.mill.wait(big.id, { timeout: '20s' });
      assert.equal(failed.status, 'FAILED');
      assert.match(failed.error ?? '', /result is 5002 bytes of JSON, over the limit of 1000 \(limits\.result\)/);
      const trimmed = await p.mill.wait(chatty.id, { timeout: '20s' });
      assert.equal(trimmed.status, 'COMPLETED');
      assert.match(trimmed.output[0] ?? '', /^… output was \d+ bytes, over the limit of 20000 \(limits\.output\): the first \d+ lines were dropped$/);
      assert.ok(trimmed.output.join('\n').length <= 20_000);
      assert.match(trimmed.output.at(-1) ?? '', /^line 1999 y+$/, 'the last lines are kept');
    });
  });
}
