// Follow-ups through the worker (ctx.add): they exist if and only if their parent completed, on both
// stores, including when the worker process is killed (SIGKILL) between the handler's return and the commit.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { Task } from '../../src/model/task.js';
import type { Worker } from '../../src/worker/worker.js';
import { ENGINES } from '../helpers/engines.js';
import { eventually } from '../helpers/fixtures.js';
import { makeProject, type Project } from '../helpers/project.js';
import { killAll, spawnWorker, type WorkerProcess } from '../helpers/spawn.js';

const HANDLERS = {
  // Adds a follow-up that waits for its parent and a second that waits for the first; may then throw.
  fanout: `
    export default async (payload, ctx) => {
      const a = await ctx.add('record', { step: 'a', parent: ctx.task.id, attempt: ctx.task.attempt }, { after: [ctx.task.id] });
      const b = await ctx.add('record', { step: 'b', parent: ctx.task.id, attempt: ctx.task.attempt }, { after: a });
      if (payload.throwUntil && ctx.task.attempt <= payload.throwUntil) throw new Error('failed after adding, attempt ' + ctx.task.attempt);
      return { a, b };
    };`,
  record: `export default async (payload) => payload;`,
  // First run: adds, then waits until the worker gives the attempt up (its lease lost) and returns anyway.
  stubborn: `
    import { existsSync, writeFileSync } from 'node:fs';
    export default async (payload, ctx) => {
      if (existsSync(payload.marker)) {
        await ctx.add('record', { step: 'kept' });
        return 'second run';
      }
      writeFileSync(payload.marker, 'started');
      // Refused if the attempt was given up meanwhile: it adds nothing either way.
      await ctx.add('record', { step: 'lost' }).catch(() => undefined);
      if (!ctx.signal.aborted) await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      writeFileSync(payload.marker + '.aborted', String(ctx.signal.reason));
      return 'finished anyway';
    };`,
  // The same as fanout, in the worker's pool of child processes: ctx.add crosses the channel.
  'isolated-fanout': `
    export const options = { isolation: 'process' };
    export default async (payload, ctx) => {
      const a = await ctx.add('record', { step: 'a', parent: ctx.task.id, attempt: ctx.task.attempt }, { after: [ctx.task.id] });
      void ctx.add('record', { step: 'b', parent: ctx.task.id, attempt: ctx.task.attempt }, { after: a });
      if (payload.throwUntil && ctx.task.attempt <= payload.throwUntil) throw new Error('failed after adding, attempt ' + ctx.task.attempt);
      return { a };
    };`,
  // Does not await ctx.add: the call still belongs to the attempt.
  floating: `export default async (payload, ctx) => { void ctx.add('record', { step: 'floating' }); return 'returned'; };`,
  // Every way ctx.add can be refused at once; returns what each call threw.
  refusals: `
    export default async (payload, ctx) => {
      const tries = [
        () => ctx.add('no-such-task'),
        () => ctx.add('record', { big: 'x'.repeat(2000) }),
        () => ctx.add('record', { bad: 'a\\u0000b' }),
        () => ctx.add('record', {}, { delay: '-5s' }),
        () => ctx.add('record', {}, { after: [987654] }),
      ];
      const out = [];
      for (const t of tries) {
        try { await t(); out.push(null); } catch (err) { out.push({ code: err.code, message: err.message }); }
      }
      return out;
    };`,
  // Keeps adding after it returned: refused, and nothing is added.
  late: `
    export default async (payload, ctx) => {
      setTimeout(() => ctx.add('record', { step: 'late' }).then(
        () => ctx.log('late add accepted'),
        (err) => { globalThis.lateAddError = err.message; }), 20);
      return 'done';
    };`,
};

const records = async (p: Project): Promise<Task[]> => p.mill.list({ name: 'record', order: 'asc' });

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`worker follow-ups: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let p: Project;
    let worker: Worker | undefined;
    let procs: WorkerProcess[] = [];

    const start = async (config = {}) => {
      p = await makeProject(engine, HANDLERS, { limits: { payload: '1kb' }, ...config });
      worker = p.mill.worker();
      worker.start();
      return p.mill;
    };
    afterEach(async () => {
      await killAll(procs);
      procs = [];
      await worker?.stop({ timeoutMs: 100 });
      worker = undefined;
      await p.close();
    });

    it('writes the follow-ups with a completed parent; the one waiting for its parent runs after it', async () => {
      const mill = await start();
      const t = await mill.add('fanout');
      const done = await mill.wait(t.id, { timeout: '20s' });
      assert.equal(done.status, 'COMPLETED');
      const { a, b } = done.result as { a: number; b: number };
      const ta = await mill.wait(a, { timeout: '20s' });
      const tb = await mill.wait(b, { timeout: '20s' });
      assert.equal(ta.status, 'COMPLETED');
      assert.equal(tb.status, 'COMPLETED');
      assert.deepEqual(ta.prerequisites, [t.id]);
      assert.deepEqual(tb.prerequisites, [a]);
      assert.ok((ta.startedAt as Date) >= (done.finishedAt as Date), 'a starts once its parent finished');
      assert.ok((tb.startedAt as Date) >= (ta.finishedAt as Date), 'b starts once a finished');
      assert.equal((await records(p)).length, 2);
    });

    it('a handler that adds and then throws leaves none; a retried parent adds once, for its successful attempt', async () => {
      const mill = await start();
      const doomed = await mill.add('fanout', { throwUntil: 9 }, { maxAttempts: 1 });
      const retried = await mill.add('fanout', { throwUntil: 2 }, { maxAttempts: 3, backoff: '50ms' });
      assert.equal((await mill.wait(doomed.id, { timeout: '20s' })).status, 'FAILED');
      const done = await mill.wait(retried.id, { timeout: '20s' });
      assert.equal(done.status, 'COMPLETED');
      assert.equal(done.attempts, 3);
      const { a, b } = done.result as { a: number; b: number };
      await mill.wait(b, { timeout: '20s' });
      const all = await records(p);
      assert.deepEqual(
        all.map((r) => r.payload),
        [
          { step: 'a', parent: retried.id, attempt: 3 },
          { step: 'b', parent: retried.id, attempt: 3 },
        ],
      );
      assert.deepEqual(all.map((r) => r.id), [a, b]);
    });

    it('in an isolated handler (a child process) too: none for a failed attempt, once for the one that completed', async () => {
      const mill = await start();
      const t = await mill.add('isolated-fanout', { throwUntil: 1 }, { maxAttempts: 2, backoff: '50ms' });
      const done = await mill.wait(t.id, { timeout: '30s' });
      assert.equal(done.status, 'COMPLETED', done.error ?? '');
      assert.equal(done.attempts, 2);
      const { a } = done.result as { a: number };
      await eventually(async () => ((await records(p)).every((r) => r.status === 'COMPLETED') && (await records(p)).length === 2 ? true : undefined), 20_000, 'both follow-ups done');
      const all = await records(p);
      assert.equal(all[0]?.id, a);
      assert.deepEqual(all.map((r) => r.payload), [
        { step: 'a', parent: t.id, attempt: 2 },
        { step: 'b', parent: t.id, attempt: 2 },
      ]);
      assert.deepEqual(all[1]?.prerequisites, [a]);
    });

    it('an attempt whose lease was lost adds none; the attempt that then completes adds its own', async () => {
      p = await makeProject(engine, HANDLERS, { worker: { lease: '1s', pollInterval: 50 } });
      const marker = path.join(p.dir, 'stubborn');
      // The first worker takes one task only, so the task cannot come back to it.
      const first = p.mill.worker({ maxTasks: 1 });
      first.start();
      try {
        const t = await p.mill.add('stubborn', { marker });
        await eventually(() => (existsSync(marker) ? true : undefined), 10_000, 'the first run');
        const running = await p.mill.get(t.id);
        assert.equal(running?.status, 'STARTED');
        // As if its lease had expired and another worker were to take it: the attempt is no longer held.
        await p.mill.store.release([{ id: t.id, workerId: running!.lockedBy!.workerId, attempt: running!.attempts }], new Date());
        worker = p.mill.worker();
        worker.start();
        const done = await p.mill.wait(t.id, { timeout: '20s' });
        assert.equal(done.result, 'second run');
        await eventually(() => (existsSync(`${marker}.aborted`) ? true : undefined), 10_000, 'the first run aborted');
        assert.match(readFileSync(`${marker}.aborted`, 'utf8'), /no longer holds the task/);
        await first.whenIdle();
        assert.deepEqual((await records(p)).map((r) => r.payload), [{ step: 'kept' }]);
      } finally {
        await first.stop({ timeoutMs: 1000 });
      }
    });

    it('a ctx.add the handler did not await still belongs to the completion', async () => {
      const mill = await start();
      const t = await mill.add('floating');
      assert.equal((await mill.wait(t.id, { timeout: '20s' })).status, 'COMPLETED');
      const [r] = await records(p);
      assert.deepEqual(r?.payload, { step: 'floating' });
    });

    it('refuses bad follow-ups at ctx.add with the same errors as the client\'s add', async () => {
      const mill = await start();
      const t = await mill.add('refusals');
      const done = await mill.wait(t.id, { timeout: '20s' });
      assert.equal(done.status, 'COMPLETED');
      const got = done.result as { code: string; message: string }[];
      const expected = await Promise.all(
        [
          () => mill.add('no-such-task'),
          () => mill.add('record', { big: 'x'.repeat(2000) }),
          () => mill.add('record', { bad: 'a\u0000b' }),
          () => mill.add('record', {}, { delay: '-5s' }),
          () => mill.add('record', {}, { after: [987654] }),
        ].map(async (f) => {
          try {
            await f();
            return null;
          } catch (err) {
            return { code: (err as { code: string }).code, message: (err as Error).message };
          }
        }),
      );
      assert.deepEqual(got, expected);
      assert.ok(got.every((e) => e !== null));
      assert.deepEqual(await records(p), []);
    });

    it('a ctx.add after the handler returned is refused and adds nothing', async () => {
      delete (globalThis as { lateAddError?: string }).lateAddError;
      const mill = await start();
      const t = await mill.add('late');
      assert.equal((await mill.wait(t.id, { timeout: '20s' })).status, 'COMPLETED');
      const message = await eventually(() => (globalThis as { lateAddError?: string }).lateAddError, 5_000, 'the late add refused');
      assert.match(message, /has ended, so ctx.add adds nothing now/);
      assert.deepEqual(await records(p), []);
    });

    for (const hook of ['before', 'after'] as const) {
      it(`SIGKILL ${hook === 'before' ? 'between the handler\'s return and the commit leaves no follow-up; the rerun adds them once' : 'right after the commit leaves parent and follow-ups'}`, async () => {
        p = await makeProject(engine, HANDLERS, { worker: { lease: '1s', pollInterval: 50 } });
        const t = await p.mill.add('fanout');
        process.env.TASKMILL_TEST_HOOK = hook;
        let hooked: WorkerProcess;
        try {
          hooked = await spawnWorker(p.config, 'followups-worker.ts');
        } finally {
          delete process.env.TASKMILL_TEST_HOOK;
        }
        procs.push(hooked);
        const signal = hook === 'before' ? 'settling' : 'settled';
        await eventually(() => (hooked.stdout().includes(signal) ? true : undefined), 20_000, signal);
        hooked.child.kill('SIGKILL');
        await hooked.exited;
        const parent = await p.mill.get(t.id);
        if (hook === 'before') {
          assert.equal(parent?.status, 'STARTED', 'the completion was never written');
          assert.deepEqual(await records(p), [], 'so neither were its follow-ups');
        } else {
          assert.equal(parent?.status, 'COMPLETED');
          assert.equal((await records(p)).length, 2);
        }
        // A healthy worker: rescues the parent once its lease expires (before) or runs the follow-ups (after).
        procs.push(await spawnWorker(p.config));
        const done = await p.mill.wait(t.id, { timeout: '30s' });
        assert.equal(done.status, 'COMPLETED');
        assert.equal(done.attempts, hook === 'before' ? 2 : 1);
        const { a, b } = done.result as { a: number; b: number };
        await p.mill.wait(b, { timeout: '30s' });
        const all = await records(p);
        assert.deepEqual(all.map((r) => r.id), [a, b]);
        assert.ok(all.every((r) => r.status === 'COMPLETED'));
        assert.deepEqual(
          all.map((r) => (r.payload as { attempt: number }).attempt),
          hook === 'before' ? [2, 2] : [1, 1],
        );
      });
    }
  });
}
