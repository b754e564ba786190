// `taskmill prune` as a real process (dist/cli/main.js): what it removes by the configured retention or
// --older-than and --status, what --dry-run says, and its one-line errors, on both engines.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { assertError, assertOk, runCli } from '../helpers/cli.js';
import { ENGINES, type TempDatabase } from '../helpers/engines.js';
import { newTask } from '../helpers/fixtures.js';

const DAY = 86_400_000;
const daysAgo = (n: number) => new Date(Date.now() - n * DAY);

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`cli prune: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let db: TempDatabase;
    let store: Store;
    const env = () => ({ TASKMILL_DATABASE: db.url });
    const cli = (...args: string[]) => runCli(args, { cwd: db.dir, env: env() });

    /** One task named `name` that ended with `status` `days` ago. */
    const finished = async (name: string, status: 'COMPLETED' | 'FAILED' | 'CANCELLED', days: number): Promise<number> => {
      const at = daysAgo(days);
      const [added] = await store.add([newTask(name, { maxAttempts: 1 })], at);
      const id = added!.task.id;
      if (status === 'CANCELLED') {
        await store.cancel(id, at);
        return id;
      }
      const [t] = await store.claim({ lock: { host: 'h', pid: 1, workerId: 'w' }, queues: null, limit: 1, now: at, leaseMs: 60_000 });
      const ref = { id: t!.id, workerId: 'w', attempt: t!.attempts };
      await store.settle(
        status === 'COMPLETED'
          ? { completions: [{ ...ref, resultJson: 'null', output: [] }], failures: [] }
          : { completions: [], failures: [{ ...ref, error: 'no', errorStack: null, output: [], retryAt: null }] },
        null,
        at,
      );
      return id;
    };
    const left = async () => (await store.list({ order: 'asc' })).map((t) => t.name).sort();

    beforeEach(async () => {
      db = await engine.create();
      assertOk(await cli('init'));
      store = await openStore(db.url);
      await finished('completed-10d', 'COMPLETED', 10);
      await finished('cancelled-10d', 'CANCELLED', 10);
      await finished('completed-2d', 'COMPLETED', 2);
      await finished('failed-10d', 'FAILED', 10);
      await finished('failed-40d', 'FAILED', 40);
      await store.add([newTask('waiting')], daysAgo(100));
    });
    afterEach(async () => {
      await store.close();
      await db.drop();
    });

    it('by the default retention: --dry-run says what would go, then prune removes it', async () => {
      const dry = assertOk(await cli('prune', '--dry-run'));
      assert.equal(dry, 'Would remove 3 finished tasks: COMPLETED 1 (older than 7d), CANCELLED 1 (older than 7d), FAILED 1 (older than 30d).\n');
      assert.equal((await left()).length, 6);
      const out = assertOk(await cli('prune'));
      assert.equal(out, 'Removed 3 finished tasks: COMPLETED 1 (older than 7d), CANCELLED 1 (older than 7d), FAILED 1 (older than 30d).\n');
      assert.deepEqual(await left(), ['completed-2d', 'failed-10d', 'waiting']);
      assert.match(assertOk(await cli('prune')), /^Removed 0 finished tasks: /);
    });

    it('--older-than and --status choose what goes', async () => {
      const out = assertOk(await cli('prune', '--older-than', '1 day', '--status', 'failed'));
      assert.equal(out, 'Removed 2 finished tasks: FAILED 2 (older than 1d).\n');
      assert.deepEqual(await left(), ['cancelled-10d', 'completed-10d', 'completed-2d', 'waiting']);
      assert.match(assertOk(await cli('prune', '--older-than', '1 day', '--status', 'COMPLETED,cancelled')), /^Removed 3 finished tasks: COMPLETED 2 \(older than 1d\), CANCELLED 1 /);
      assert.deepEqual(await left(), ['waiting']);
    });

    it('follows the Maintenance module\'s completedAfter and failedAfter in the config file', async () => {
      const file = path.join(db.dir, 'taskmill.config.json');
      const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      config.daemonModules = { Maintenance: { options: { completedAfter: '1 day', failedAfter: false } } };
      writeFileSync(file, JSON.stringify(config));
      const out = assertOk(await cli('prune'));
      assert.equal(out, 'Removed 3 finished tasks: COMPLETED 2 (older than 1d), CANCELLED 1 (older than 1d), FAILED kept (retention off).\n');
      assert.deepEqual(await left(), ['failed-10d', 'failed-40d', 'waiting']);
    });

    it('refuses a status that is not finished and an age it cannot read, removing nothing', async () => {
      assertError(await cli('prune', '--status', 'STARTED'), 2, /invalid --status "STARTED": prune removes finished tasks only/);
      assertError(await cli('prune', '--older-than', 'soon'), 2, /invalid --older-than "soon"/);
      assert.equal((await left()).length, 6);
    });
  });
}
