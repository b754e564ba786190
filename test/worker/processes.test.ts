// Real worker processes: killed with SIGKILL mid-task, and racing over one database.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { ENGINES } from '../helpers/engines.js';
import { eventually } from '../helpers/fixtures.js';
import { makeProject, type Project } from '../helpers/project.js';
import { killAll, spawnWorker, type WorkerProcess } from '../helpers/spawn.js';

// Appends "start|done <id> <pid>" to payload.log; the first attempt of a "block" task never finishes;
// an "untilCancelled" task throws when its signal fires.
const MARKER = `
import { appendFileSync } from 'node:fs';
export default async (payload, ctx) => {
  appendFileSync(payload.log, 'start ' + ctx.task.id + ' ' + process.pid + '\\n');
  if (payload.block && ctx.task.attempt === 1) await new Promise(() => {});
  if (payload.untilCancelled) {
    await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped: ' + ctx.signal.reason))));
  }
  appendFileSync(payload.log, 'done ' + ctx.task.id + ' ' + process.pid + '\\n');
  return process.pid;
};`;

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : []);

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`worker processes: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let p: Project;
    let procs: WorkerProcess[] = [];
    afterEach(async () => {
      await killAll(procs);
      procs = [];
      await p.close();
    });

    it('finishes, exactly once, the task of a worker killed with SIGKILL mid-task', async () => {
      p = await makeProject(engine, { marker: MARKER }, { worker: { lease: '1s', pollInterval: 50 } });
      const log = path.join(p.dir, 'marker.log');
      const first = await spawnWorker(p.config);
      procs.push(first);
      const t = await p.mill.add('marker', { log, block: true });
      await eventually(() => (lines(log).some((l) => l.startsWith(`start ${t.id}`)) ? true : undefined), 15_000, 'first start');
      first.child.kill('SIGKILL');
      await first.exited;
      const second = await spawnWorker(p.config);
      procs.push(second);
      const done = await p.mill.wait(t.id, { timeout: '20s' });
      assert.equal(done.status, 'COMPLETED');
      assert.equal(done.attempts, 2, 'the lost attempt counts');
      assert.equal(done.result, second.child.pid);
      const doneLines = lines(log).filter((l) => l.startsWith(`done ${t.id} `));
      assert.deepEqual(doneLines, [`done ${t.id} ${second.child.pid}`]);
    });

    it('a task cancelled from another process stops at once, not at the next lease renewal', async () => {
      // A 60 s lease is renewed every 20 s: only the cancel signal itself can be this quick.
      p = await makeProject(engine, { marker: MARKER }, { worker: { lease: '60s' } });
      const log = path.join(p.dir, 'cancel.log');
      procs.push(await spawnWorker(p.config));
      const t = await p.mill.add('marker', { log, untilCancelled: true });
      await eventually(() => (lines(log).some((l) => l.startsWith(`start ${t.id}`)) ? true : undefined), 15_000, 'the start');
      const asked = Date.now();
      await p.mill.cancel(t.id);
      const done = await p.mill.wait(t.id, { timeout: '15s' });
      const took = Date.now() - asked;
      assert.equal(done.status, 'CANCELLED');
      assert.match(done.error ?? '', /cancelled/);
      assert.ok(took < 5_000, `the cancel took ${took} ms to reach the other process`);
      assert.deepEqual(lines(log).filter((l) => l.startsWith('done ')), [], 'the handler did not finish');
    });

    it('two worker processes over 2,000 tasks: each runs once, none twice', async () => {
      p = await makeProject(engine, { marker: MARKER }, { worker: { concurrency: 10, pollInterval: 50 } });
      const log = path.join(p.dir, 'race.log');
      procs.push(await spawnWorker(p.config), await spawnWorker(p.config));
      const ids: number[] = [];
      for (let chunk = 0; chunk < 4; chunk++) {
        const added = await p.mill.addMany(Array.from({ length: 500 }, () => ({ name: 'marker', payload: { log } })));
        ids.push(...added.map((t) => t.id));
      }
      await eventually(
        async () => ((await p.mill.store.counts()).COMPLETED === 2000 ? true : undefined),
        60_000,
        '2,000 completions',
      );
      const done = lines(log).filter((l) => l.startsWith('done '));
      const doneIds = done.map((l) => Number(l.split(' ')[1]));
      assert.equal(done.length, 2000);
      assert.equal(new Set(doneIds).size, 2000);
      assert.deepEqual([...new Set(doneIds)].sort((a, b) => a - b), [...ids].sort((a, b) => a - b));
      const pids = new Set(done.map((l) => l.split(' ')[2]));
      assert.equal(pids.size, 2, 'both processes took part');
      const starts = lines(log).filter((l) => l.startsWith('start '));
      assert.equal(starts.length, 2000, 'no task was even started twice');
    });
  });
}
