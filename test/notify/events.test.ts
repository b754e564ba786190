// In-process task events: the worker's (and the client's) completed, failed, retried and cancelled,
// each once its outcome is written; a listener that throws is logged and changes nothing.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { Logger } from '../../src/model/logger.js';
import type { TaskEventMap } from '../../src/notify/events.js';
import type { Worker } from '../../src/worker/worker.js';
import { ENGINES } from '../helpers/engines.js';
import { eventually } from '../helpers/fixtures.js';
import { makeProject, type Project } from '../helpers/project.js';

const HANDLERS = {
  ok: `export default async (p) => ({ doubled: p.n * 2 });`,
  flaky: `export const options = { maxAttempts: 2, backoff: 10 };
    export default async (p, ctx) => { if (ctx.task.attempt === 1) throw new Error('first try fails'); return 'second'; };`,
  doomed: `export const options = { maxAttempts: 1 }; export default async () => { throw new Error('doomed'); };`,
  hang: `export default (p, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));`,
};

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`task events: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let p: Project | undefined;
    let worker: Worker | undefined;
    afterEach(async () => {
      await worker?.stop({ timeoutMs: 100 });
      await p?.close();
      worker = p = undefined;
    });

    it('emits completed, retried, failed and cancelled; a throwing listener is logged and changes nothing', async () => {
      const errors: string[] = [];
      const logger: Logger = { debug() {}, info() {}, warn() {}, error: (m, c) => errors.push(`${m} ${JSON.stringify(c)}`) };
      p = await makeProject(engine, HANDLERS);
      worker = p.mill.worker({ logger });
      const seen: { [K in keyof TaskEventMap]: TaskEventMap[K][] } = { completed: [], failed: [], retried: [], cancelled: [] };
      // Throwing and rejecting listeners first: the others must still hear every event.
      worker.on('completed', () => {
        throw new Error('listener bug');
      });
      worker.on('failed', async () => {
        throw new Error('async listener bug');
      });
      worker.on('completed', (e) => void seen.completed.push(e));
      worker.on('failed', (e) => void seen.failed.push(e));
      worker.on('retried', (e) => void seen.retried.push(e));
      const off = worker.on('cancelled', (e) => void seen.cancelled.push(e));
      worker.start();
      const { mill } = p;
      const [ok, flaky, doomed, hang] = await mill.addMany([
        { name: 'ok', payload: { n: 21 } }, { name: 'flaky' }, { name: 'doomed' }, { name: 'hang' },
      ]);
      await eventually(async () => ((await mill.get(hang!.id))?.status === 'STARTED' ? true : undefined), 10_000, 'hang started');
      await mill.cancel(hang!.id);
      for (const t of [ok, flaky, doomed, hang]) await mill.wait(t!.id, { timeout: '20s' });
      await eventually(() => (seen.completed.length === 2 && seen.cancelled.length === 1 ? true : undefined), 10_000, 'events');
      assert.deepEqual(seen.completed.map((e) => [e.id, e.name, e.attempt, e.result]).sort(), [
        [flaky!.id, 'flaky', 2, 'second'],
        [ok!.id, 'ok', 1, { doubled: 42 }],
      ].sort());
      assert.deepEqual(seen.retried.map((e) => [e.id, e.error, e.attempt, e.maxAttempts]), [[flaky!.id, 'first try fails', 1, 2]]);
      assert.ok(seen.retried[0]!.retryAt instanceof Date);
      assert.deepEqual(seen.failed.map((e) => [e.id, e.name, e.error]), [[doomed!.id, 'doomed', 'doomed']]);
      assert.match(seen.failed[0]!.errorStack ?? '', /Error: doomed/);
      assert.deepEqual(seen.cancelled.map((e) => e.id), [hang!.id]);
      // The listeners' errors were logged; the tasks ended as their handlers decided.
      await eventually(() => (errors.length >= 3 ? true : undefined), 5_000, 'logged listener errors');
      assert.equal(errors.filter((e) => e.includes('"completed" event listener threw') && e.includes('listener bug')).length, 2);
      assert.equal(errors.filter((e) => e.includes('"failed" event listener threw') && e.includes('async listener bug')).length, 1);
      assert.equal((await mill.get(ok!.id))?.status, 'COMPLETED');
      assert.equal((await mill.get(doomed!.id))?.status, 'FAILED');
      off();
      assert.equal(worker.events.has('cancelled'), false, 'unsubscribed');
    });

    it('the client hears its workers, and cancels of waiting tasks made through it', async () => {
      p = await makeProject(engine, HANDLERS);
      const { mill } = p;
      const heard: string[] = [];
      mill.events.on('completed', (e) => void heard.push(`completed ${e.name}`));
      mill.events.on('cancelled', (e) => void heard.push(`cancelled ${e.name} ${e.error}`));
      const later = await mill.add('ok', { n: 1 }, { delay: '1 hour' });
      await mill.cancel(later.id);
      worker = mill.worker();
      worker.start();
      const t = await mill.add('ok', { n: 2 });
      await mill.wait(t.id, { timeout: '20s' });
      await eventually(() => (heard.length === 2 ? true : undefined), 10_000, 'client events');
      assert.deepEqual(heard, ['cancelled ok cancelled', 'completed ok']);
    });
  });
}
