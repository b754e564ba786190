// The worker against real stores: handlers from a real tasks folder, real timers with generous bounds.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { Store } from '../../src/store/store.js';
import { Worker } from '../../src/worker/worker.js';
import { ENGINES } from '../helpers/engines.js';
import { makeProject, type Project } from '../helpers/project.js';

const HANDLERS = {
  echo: `export default async (payload, ctx) => { ctx.log('echo', ctx.task.id); return { got: payload }; };`,
  chatty: `
    export default async (payload, ctx) => {
      for (let i = 0; i < 5; i++) {
        console.log('console', payload.n, i);
        ctx.log('ctx', payload.n, i);
        await new Promise((r) => setTimeout(r, Math.random() * 20));
      }
      console.error('oops', payload.n);
      return payload.n;
    };`,
  hang: `
    export default (payload, ctx) => new Promise((resolve, reject) => {
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
    });`,
  deaf: `export default () => new Promise(() => {});`,
  flaky: `
    export default async (payload, ctx) => {
      if (ctx.task.attempt < 3) throw new Error('flaky failure ' + ctx.task.attempt);
      return 'ok on ' + ctx.task.attempt;
    };`,
  slow: `export default (payload, ctx) => new Promise((resolve) => { const t = setTimeout(() => resolve('slow done'), payload.ms); ctx.signal.addEventListener('abort', () => clearTimeout(t)); });`,
  doomed: `export default async () => { throw new Error('always'); };`,
  'typed/opts': `
    export const options = { maxAttempts: 7, queue: 'special', priority: 3, timeout: '2 minutes' };
    export default async (payload: { a: number }): Promise<number> => payload.a * 2;`,
  _disabled: `export default async () => 'never';`,
  follow: `export default async (payload, ctx) => ctx.add('echo', { from: ctx.task.id }, { note: 'follow-up' });`,
  notjson: `export default async () => ({ big: 10n });`,
  noop: `export default () => {};`,
};

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`worker: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let p: Project;
    let worker: Worker | undefined;

    const start = async (config = {}) => {
      p = await makeProject(engine, HANDLERS, config);
      worker = p.mill.worker();
      worker.start();
      return p.mill;
    };
    afterEach(async () => {
      await worker?.stop({ timeoutMs: 100 });
      worker = undefined;
      await p.close();
    });

    it('claims exactly maxTasks from a large backlog, however many claims it has under way', async () => {
      p = await makeProject(engine, HANDLERS);
      await p.mill.addMany(Array.from({ length: 500 }, () => ({ name: 'noop' })));
      worker = p.mill.worker({ maxTasks: 30 });
      worker.start();
      const deadline = Date.now() + 20_000;
      while (!worker.exhausted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await worker.whenIdle();
      const counts = await p.mill.store.counts();
      assert.deepEqual([counts.COMPLETED, counts.STARTED, counts.WAITING], [30, 0, 470]);
    });

    it('claims one call at a time when woken for a task or two, and two at once over a backlog', async () => {
      p = await makeProject(engine, HANDLERS);
      // The real store, counting the claims under way at once.
      let under = 0;
      let most = 0;
      const settle = p.mill.store.settle.bind(p.mill.store);
      const store = new Proxy(p.mill.store, {
        get(target, prop) {
          if (prop !== 'settle') {
            const value: unknown = Reflect.get(target, prop);
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          }
          return async (...args: Parameters<Store['settle']>) => {
            if (args[1]) most = Math.max(most, ++under);
            try {
              return await settle(...args);
            } finally {
              if (args[1]) under--;
            }
          };
        },
      });
      const w = new Worker({ store, handlers: p.mill.handlers, concurrency: 10, pollIntervalMs: 60_000, leaseMs: 30_000 });
      worker = w;
      w.start();
      await w.whenIdle();
      for (let i = 0; i < 5; i++) {
        const [task] = await p.mill.addMany([{ name: 'noop' }]);
        const deadline = Date.now() + 20_000;
        while ((await p.mill.get(task!.id))?.status !== 'COMPLETED' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        await w.whenIdle();
      }
      assert.equal(most, 1, 'a wake-up for one task made one claim, not one per call the store allows');
      // A backlog: once a claim comes back full, the store's parallel calls are used.
      await p.mill.addMany(Array.from({ length: 3_000 }, () => ({ name: 'noop' })));
      const deadline = Date.now() + 60_000;
      while ((await p.mill.store.counts()).COMPLETED < 3_005 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal((await p.mill.store.counts()).COMPLETED, 3_005);
      assert.equal(most, p.mill.store.parallelSettles, 'claims ran side by side over the backlog');
    });

    it('runs a task: result and output stored, COMPLETED', async () => {
      const mill = await start();
      const t = await mill.add('echo', { x: 1 }, { note: 'first' });
      const done = await mill.wait(t.id, { timeout: '10s' });
      assert.equal(done.status, 'COMPLETED');
      assert.deepEqual(done.result, { got: { x: 1 } });
      assert.deepEqual(done.output, [`echo ${t.id}`]);
      assert.equal(done.attempts, 1);
      assert.equal(done.note, 'first');
      assert.ok(done.startedAt && done.finishedAt && done.finishedAt >= done.startedAt);
    });

    it('keeps each task\'s output apart with 10 tasks running at once', async () => {
      const mill = await start();
      const tasks = await mill.addMany(Array.from({ length: 10 }, (_, n) => ({ name: 'chatty', payload: { n } })));
      for (const [n, t] of tasks.entries()) {
        const done = await mill.wait(t.id, { timeout: '10s' });
        assert.equal(done.status, 'COMPLETED');
        const expected: string[] = [];
        for (let i = 0; i < 5; i++) expected.push(`console ${n} ${i}`, `ctx ${n} ${i}`);
        expected.push(`error: oops ${n}`);
        assert.deepEqual(done.output, expected);
      }
    });

    it('runs tasks in parallel, so a long task does not block the others', async () => {
      const mill = await start();
      const long = await mill.add('slow', { ms: 5000 });
      await new Promise((r) => setTimeout(r, 100));
      const quick = await mill.add('echo');
      const done = await mill.wait(quick.id, { timeout: '3s' });
      assert.equal(done.status, 'COMPLETED');
      assert.equal((await mill.get(long.id))?.status, 'STARTED');
    });

    it('aborts a handler on timeout and fails the attempt, even one that ignores its signal', async () => {
      const mill = await start();
      const polite = await mill.add('hang', {}, { timeout: '200ms', maxAttempts: 1 });
      const deaf = await mill.add('deaf', {}, { timeout: '200ms', maxAttempts: 1 });
      for (const t of [polite, deaf]) {
        const done = await mill.wait(t.id, { timeout: '10s' });
        assert.equal(done.status, 'FAILED');
        assert.match(done.error ?? '', /did not finish within its timeout of 200 ms/);
      }
    });

    it('retries with exponential backoff until it succeeds', async () => {
      const mill = await start();
      const t = await mill.add('flaky', {}, { maxAttempts: 3, backoff: '200ms' });
      const done = await mill.wait(t.id, { timeout: '10s' });
      assert.equal(done.status, 'COMPLETED');
      assert.equal(done.result, 'ok on 3');
      assert.equal(done.attempts, 3);
      assert.ok(done.output.includes('--- attempt 2 ---'));
      // Two waits: ≥ 150 ms (200 − 25 % jitter) then ≥ 300 ms (400 − 25 %).
      const elapsed = done.finishedAt!.getTime() - done.createdAt.getTime();
      assert.ok(elapsed >= 450, `elapsed ${elapsed} ms`);
    });

    it('ends FAILED with message and stack when attempts run out', async () => {
      const mill = await start();
      const t = await mill.add('doomed', {}, { maxAttempts: 2, backoff: '10ms' });
      const done = await mill.wait(t.id, { timeout: '10s' });
      assert.equal(done.status, 'FAILED');
      assert.equal(done.attempts, 2);
      assert.equal(done.error, 'always');
      assert.match(done.errorStack ?? '', /Error: always/);
    });

    it('lets a handler add a follow-up task through ctx.add', async () => {
      const mill = await start();
      const t = await mill.add('follow');
      const done = await mill.wait(t.id, { timeout: '10s' });
      assert.equal(done.status, 'COMPLETED');
      const followUp = await mill.wait(done.result as number, { timeout: '10s' });
      assert.equal(followUp.status, 'COMPLETED');
      assert.deepEqual(followUp.result, { got: { from: t.id } });
      assert.equal(followUp.note, 'follow-up');
    });

    it('fails a result that is not JSON', async () => {
      const mill = await start();
      const t = await mill.add('notjson', {}, { maxAttempts: 1 });
      const done = await mill.wait(t.id, { timeout: '10s' });
      assert.equal(done.status, 'FAILED');
      assert.match(done.error ?? '', /not JSON/);
    });

    it('runs prerequisites first and cascades their failure', async () => {
      const mill = await start();
      const a = await mill.add('slow', { ms: 300 });
      const b = await mill.add('echo', { after: 'a' }, { after: [a.id] });
      const bad = await mill.add('doomed', {}, { maxAttempts: 1 });
      const c = await mill.add('echo', {}, { after: [bad.id, a.id] });
      const doneB = await mill.wait(b.id, { timeout: '10s' });
      const doneA = await mill.get(a.id);
      assert.equal(doneB.status, 'COMPLETED');
      assert.ok(doneB.startedAt! >= doneA!.finishedAt!, 'b started after a finished');
      const doneC = await mill.wait(c.id, { timeout: '10s' });
      assert.equal(doneC.status, 'FAILED');
      assert.match(doneC.error ?? '', new RegExp(`prerequisite task #${bad.id} ended FAILED`));
    });

    it('cancels a running task through its signal', async () => {
      const mill = await start();
      const t = await mill.add('hang');
      await waitFor(async () => (await mill.get(t.id))?.status === 'STARTED');
      await mill.cancel(t.id);
      const done = await mill.wait(t.id, { timeout: '15s' });
      assert.equal(done.status, 'CANCELLED');
    });

    it('uses the handler\'s options export and loads handlers from sub-folders', async () => {
      const mill = await start({ worker: { queues: ['special', 'default'] } });
      const t = await mill.add('typed/opts', { a: 21 });
      assert.equal(t.maxAttempts, 7);
      assert.equal(t.queue, 'special');
      assert.equal(t.priority, 3);
      assert.equal(t.timeoutMs, 120_000);
      const done = await mill.wait(t.id, { timeout: '10s' });
      assert.equal(done.result, 42);
    });

    it('refuses an unknown or disabled task name, listing the known ones', async () => {
      const mill = await start();
      await assert.rejects(mill.add('nope'), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'UNKNOWN_TASK');
        assert.match(e.message, /Known tasks: .*echo/);
        assert.doesNotMatch(e.message, /_disabled/);
        return true;
      });
      await assert.rejects(mill.add('_disabled'), /invalid task name/);
      await assert.rejects(mill.add('../escape'), /invalid task name/);
      await assert.rejects(mill.add('echo', {}, { delay: '5 parsecs' }), /invalid delay "5 parsecs"/);
      assert.equal((await mill.list()).length, 0);
    });

    it('fails a task whose handler disappeared before it ran', async () => {
      const mill = await start();
      await worker!.stop({ timeoutMs: 100 });
      const t = await mill.add('echo', {}, { maxAttempts: 1 });
      rmSync(path.join(p.tasksDir, 'echo.ts'));
      worker = mill.worker();
      worker.start();
      const done = await mill.wait(t.id, { timeout: '10s' });
      assert.equal(done.status, 'FAILED');
      assert.match(done.error ?? '', /no handler for task "echo"/);
    });

    it('on a graceful stop, waits for short tasks and releases long ones without counting the attempt', async () => {
      const mill = await start();
      const short = await mill.add('slow', { ms: 100 });
      const long = await mill.add('slow', { ms: 60_000 });
      await waitFor(async () => (await mill.get(long.id))?.status === 'STARTED' && (await mill.get(short.id))?.status === 'STARTED');
      const { released } = await worker!.stop({ timeoutMs: 1000 });
      worker = undefined;
      assert.equal(released, 1);
      assert.equal((await mill.get(short.id))?.status, 'COMPLETED');
      const back = await mill.get(long.id);
      assert.equal(back?.status, 'WAITING');
      assert.equal(back?.attempts, 0);
      assert.equal(back?.lockedBy, null);
    });

    it('starts a future task no earlier than its runAt, and promptly after', async () => {
      const mill = await start();
      const runAt = new Date(Date.now() + 700);
      const t = await mill.add('echo', {}, { runAt });
      const done = await mill.wait(t.id, { timeout: '10s' });
      assert.ok(done.startedAt!.getTime() >= runAt.getTime(), 'not before runAt');
      assert.ok(done.startedAt!.getTime() - runAt.getTime() < 500, 'promptly after');
    });
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
