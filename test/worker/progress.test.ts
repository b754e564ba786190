// ctx.progress through a real worker on both engines: checked at the call, cheap in a tight loop
// (throttled writes), the latest value stored, and a bad value refused with a clear message.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AttemptRef } from '../../src/store/store.js';
import type { TaskProgress } from '../../src/model/task.js';
import { ENGINES } from '../helpers/engines.js';
import { eventually } from '../helpers/fixtures.js';
import { makeProject } from '../helpers/project.js';

const HANDLERS = {
  // 100,000 reports in a tight loop, then a last one; waits past the throttle before returning.
  stepper: `
    export default async (payload, ctx) => {
      const started = performance.now();
      for (let i = 0; i < 100000; i++) ctx.progress({ done: i, total: 100000 });
      const loopMs = performance.now() - started;
      ctx.progress(100, 'all done');
      await new Promise((r) => setTimeout(r, 600));
      return loopMs;
    };`,
  slowsteps: `
    export default async (payload, ctx) => {
      for (let i = 1; i <= 4; i++) {
        ctx.progress(i * 25, 'step ' + i);
        await new Promise((r) => setTimeout(r, 300));
      }
    };`,
  tooMuch: `export default async (payload, ctx) => { ctx.progress(150); };`,
  tooBig: `export default async (payload, ctx) => { ctx.progress({ blob: 'x'.repeat(5000) }); };`,
  notJson: `export default async (payload, ctx) => { ctx.progress('half'); };`,
  longMessage: `export default async (payload, ctx) => { ctx.progress(5, 'm'.repeat(600)); };`,
};

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`ctx.progress: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    it('rule: a tight loop of reports costs little and writes a few times; the latest value is stored', async () => {
      const p = await makeProject(engine, HANDLERS);
      // Counts the writes that reach the store (it still does them).
      const store = p.mill.store;
      const write = store.setProgress.bind(store);
      let writes = 0;
      store.setProgress = (ref: AttemptRef, progress: TaskProgress) => {
        writes++;
        return write(ref, progress);
      };
      const worker = p.mill.worker();
      try {
        const t = await p.mill.add('stepper');
        worker.start();
        const done = await p.mill.wait(t.id, { timeout: '30s' });
        assert.equal(done.status, 'COMPLETED', done.error ?? '');
        assert.ok((done.result as number) < 2_000, `100,000 reports took ${String(done.result)} ms`);
        assert.ok(writes >= 2 && writes <= 8, `${writes} writes`);
        assert.equal(done.progress?.value, 100);
        assert.equal(done.progress?.message, 'all done');
        const [listed] = (await p.mill.query({ status: ['COMPLETED'] })).tasks;
        assert.deepEqual(listed?.progress, done.progress);
      } finally {
        await worker.stop({ timeoutMs: 1000 });
        await p.close();
      }
    });

    it('rule: progress is visible while the task runs', async () => {
      const p = await makeProject(engine, HANDLERS);
      const worker = p.mill.worker();
      try {
        const t = await p.mill.add('slowsteps');
        worker.start();
        const seen = await eventually(async () => {
          const now = await p.mill.get(t.id);
          return now?.status === 'STARTED' && now.progress && (now.progress.value as number) >= 50 ? now.progress : undefined;
        }, 20_000, 'progress at 50 or more while STARTED');
        assert.match(seen.message ?? '', /^step [234]$/);
        const done = await p.mill.wait(t.id, { timeout: '20s' });
        assert.equal(done.status, 'COMPLETED');
      } finally {
        await worker.stop({ timeoutMs: 1000 });
        await p.close();
      }
    });

    it('rule: a bad report is refused at the call with a message that says what is allowed', async () => {
      const p = await makeProject(engine, HANDLERS);
      const worker = p.mill.worker();
      try {
        const ids = await Promise.all(['tooMuch', 'tooBig', 'notJson', 'longMessage'].map(async (n) => (await p.mill.add(n, {}, { maxAttempts: 1 })).id));
        worker.start();
        const errors = await Promise.all(ids.map(async (id) => (await p.mill.wait(id, { timeout: '20s' })).error));
        assert.match(errors[0] ?? '', /invalid progress 150: use a number from 0 to 100, or a small JSON object/);
        assert.match(errors[1] ?? '', /invalid progress: \d+ characters of JSON, over 1024; report a few numbers/);
        assert.match(errors[2] ?? '', /invalid progress "half": use a number from 0 to 100/);
        assert.match(errors[3] ?? '', /invalid progress message: use a string of at most 500 characters/);
      } finally {
        await worker.stop({ timeoutMs: 1000 });
        await p.close();
      }
    });
  });
}
