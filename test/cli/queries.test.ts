// The CLI's task listing filters (mirroring the client's query), the progress column, and `taskmill rm`,
// as a real process on both engines.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Taskmill } from '../../src/client/taskmill.js';
import type { TaskJson, TaskListJson } from '../../src/cli/output.js';
import { assertError, assertOk, runCli } from '../helpers/cli.js';
import { ENGINES, type TempDatabase } from '../helpers/engines.js';

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`cli task queries: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let db: TempDatabase;
    const cli = (...args: string[]) => runCli(args, { cwd: db.dir, env: { TASKMILL_DATABASE: db.url } });
    const add = async (...args: string[]) => Number(assertOk(await cli('add', ...args)).trim());

    beforeEach(async () => {
      db = await engine.create();
      assertOk(await cli('init'));
    });
    afterEach(async () => {
      await db.drop();
    });

    it('rule: tasks filters by --text and --schedule, and --cursor continues a listing', async () => {
      const a = await add('hello', '--payload', '{"name":"Grace Hopper"}');
      const b = await add('hello', '--note', 'nightly GRACE run');
      const c = await add('hello');
      const found = JSON.parse(assertOk(await cli('tasks', '--text', 'grace', '--json'))) as TaskListJson[];
      assert.deepEqual(found.map((t) => t.id), [b, a]);
      assert.ok(!('output' in (found[0] as object)), 'list items leave out output');
      assert.deepEqual(JSON.parse(assertOk(await cli('tasks', '--schedule', 'nightly', '--json'))), []);
      const first = await cli('tasks', '--limit', '2');
      const out = assertOk(first);
      const cursor = /more: taskmill tasks … --cursor (\S+)$/m.exec(out)?.[1];
      assert.ok(cursor, out);
      assert.match(out, new RegExp(`^ *${c} +hello`, 'm'));
      const rest = JSON.parse(assertOk(await cli('tasks', '--cursor', cursor, '--json'))) as TaskListJson[];
      assert.deepEqual(rest.map((t) => t.id), [a]);
      assertError(await cli('tasks', '--cursor', 'nonsense'), 2, /invalid cursor/);
      assertError(await cli('tasks', '--text', ''), 2, /invalid text/);
    });

    it('rule: progress shows in tasks (a column), show and the JSON', async () => {
      const id = await add('hello');
      const mill = await Taskmill.open({ config: { database: db.url }, cwd: db.dir, env: {} });
      try {
        const [claimed] = await mill.store.claim({
          lock: { host: 'h', pid: 1, workerId: 'w' }, queues: null, limit: 1, now: new Date(), leaseMs: 60_000,
        });
        assert.equal(claimed?.id, id);
        await mill.store.setProgress({ id, workerId: 'w', attempt: 1 }, { value: 42.5, message: 'halfway', at: new Date() });
      } finally {
        await mill.close();
      }
      const table = assertOk(await cli('tasks'));
      assert.match(table, /PROGRESS/);
      assert.match(table, /STARTED .* 42\.5% halfway/);
      assert.match(assertOk(await cli('show', String(id))), /^progress +42\.5% halfway \(at \d{4}-/m);
      const json = JSON.parse(assertOk(await cli('show', String(id), '--json'))) as TaskJson;
      assert.deepEqual(json.progress?.value, 42.5);
      assert.equal(json.progress?.message, 'halfway');
      assertError(await cli('rm', String(id)), 2, /it is STARTED \(running\)\. Cancel it first \("taskmill cancel \d+"\)/);
    });

    it('rule: rm deletes a task, refuses one that live tasks wait for, and an unknown id', async () => {
      const parent = await add('hello');
      const child = await add('hello', '--after', String(parent));
      assertError(await cli('rm', String(parent)), 2, new RegExp(`#${child} depends on it and has not ended`));
      assert.equal(assertOk(await cli('rm', String(child))), `${child} deleted\n`);
      assert.equal(assertOk(await cli('rm', String(parent))), `${parent} deleted\n`);
      assertError(await cli('rm', String(parent)), 1, /does not exist/);
      assert.deepEqual(JSON.parse(assertOk(await cli('tasks', '--json'))), []);
    });
  });
}
