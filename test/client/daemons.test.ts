// mill.daemons(): what an application shows its administrators about running daemons.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Taskmill } from '../../src/client/taskmill.js';
import { ENGINES } from '../helpers/engines.js';
import { makeProject } from '../helpers/project.js';

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`client daemons(): ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    it('lists the daemons with a heartbeat and marks the ones not seen for a minute', async () => {
      const p = await makeProject(engine, {});
      const now = new Date('2026-06-01T12:00:00Z');
      const mill = await Taskmill.open({ config: p.config, env: {}, clock: { now: () => now } });
      try {
        assert.deepEqual(await mill.daemons(), [], 'no daemon: the application can warn');
        const beat = { host: 'a', pid: 1, startedAt: new Date(now.getTime() - 3_600_000), modules: [{ name: 'TaskWorker' }] };
        await mill.store.heartbeat({ ...beat, id: 'a:1', lastSeen: new Date(now.getTime() - 5_000) });
        await mill.store.heartbeat({ ...beat, id: 'b:2', host: 'b', pid: 2, lastSeen: new Date(now.getTime() - 120_000) });
        const ds = await mill.daemons();
        assert.deepEqual(ds.map((d) => [d.host, d.stale]), [['a', false], ['b', true]]);
        assert.deepEqual(ds[0]?.modules, [{ name: 'TaskWorker' }]);
      } finally {
        await mill.close();
        await p.close();
      }
    });
  });
}
