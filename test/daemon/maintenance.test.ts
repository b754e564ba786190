// The Maintenance module's retention: one run prunes by completedAfter and failedAfter (or the
// deprecated pruneAfter), on both engines, and its summary says what it keeps.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import maintenance from '../../src/daemon/modules/maintenance.js';
import type { ModuleContext } from '../../src/daemon/module.js';
import { silentLogger } from '../../src/model/logger.js';
import { ENGINES } from '../helpers/engines.js';
import { newTask } from '../helpers/fixtures.js';
import { makeProject, type Project } from '../helpers/project.js';

const DAY = 86_400_000;

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`Maintenance retention: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let p: Project;
    afterEach(async () => p.close());

    /** A task that ended `status` `days` ago. */
    const ended = async (name: string, status: 'COMPLETED' | 'FAILED', days: number) => {
      const at = new Date(Date.now() - days * DAY);
      const { store } = p.mill;
      await store.add([newTask(name, { maxAttempts: 1 })], at);
      const [t] = await store.claim({ lock: { host: 'h', pid: 1, workerId: 'w' }, queues: null, limit: 1, now: at, leaseMs: 60_000 });
      const ref = { id: t!.id, workerId: 'w', attempt: t!.attempts };
      await store.settle(
        status === 'COMPLETED'
          ? { completions: [{ ...ref, resultJson: 'null', output: [] }], failures: [] }
          : { completions: [], failures: [{ ...ref, error: 'no', errorStack: null, output: [], retryAt: null }] },
        null,
        at,
      );
    };
    const run = async (options: Record<string, unknown>) => {
      const ctx = {
        name: 'Maintenance', options, config: p.mill.config, log: silentLogger, debug: false,
        mill: async () => p.mill, signal: new AbortController().signal, requestReload: () => undefined,
      } satisfies ModuleContext;
      const m = maintenance(ctx);
      await m.run();
      const summary = await m.summary?.();
      return Array.isArray(summary) ? summary[0] : summary;
    };
    const names = async () => (await p.mill.list({ order: 'asc' })).map((t) => t.name);

    it('prunes COMPLETED after 7 days and FAILED after 30 by default', async () => {
      p = await makeProject(engine, {});
      await ended('completed-8d', 'COMPLETED', 8);
      await ended('completed-6d', 'COMPLETED', 6);
      await ended('failed-8d', 'FAILED', 8);
      await ended('failed-31d', 'FAILED', 31);
      const summary = await run({});
      assert.deepEqual(await names(), ['completed-6d', 'failed-8d']);
      assert.match(summary?.header ?? '', /COMPLETED and CANCELLED after 7d, FAILED after 30d/);
      assert.equal(summary?.rows[0]?.pruned, 2);
    });

    it('follows completedAfter and failedAfter, and the deprecated pruneAfter as the default of both', async () => {
      p = await makeProject(engine, {});
      await ended('completed-2d', 'COMPLETED', 2);
      await ended('failed-2d', 'FAILED', 2);
      await run({ completedAfter: '1 day', failedAfter: false });
      assert.deepEqual(await names(), ['failed-2d']);
      await run({ pruneAfter: '1 day' });
      assert.deepEqual(await names(), []);
    });
  });
}
