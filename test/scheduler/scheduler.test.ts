// The scheduler against real stores: real time with generous bounds, or an injected clock for outages.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Taskmill } from '../../src/client/taskmill.js';
import type { Clock } from '../../src/model/clock.js';
import type { Task } from '../../src/model/task.js';
import type { Scheduler } from '../../src/scheduler/scheduler.js';
import { ENGINES } from '../helpers/engines.js';
import { eventually } from '../helpers/fixtures.js';
import { makeProject, type Project } from '../helpers/project.js';
import { killAll, spawnWorker, type WorkerProcess } from '../helpers/spawn.js';

const HANDLERS = { report: `export default async () => 'ok';` };

/** A clock the test moves by hand. */
class ManualClock implements Clock {
  constructor(private t: number) {}
  now(): Date {
    return new Date(this.t);
  }
  set(iso: string): void {
    this.t = Date.parse(iso);
  }
}

const scheduled = async (mill: Taskmill, name: string): Promise<Task[]> =>
  (await mill.list({ name: 'report', limit: 1000, order: 'asc' })).filter((t) => t.scheduleName === name);

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`scheduler: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let p: Project;
    let schedulers: Scheduler[] = [];
    let extra: Taskmill[] = [];
    let procs: WorkerProcess[] = [];
    afterEach(async () => {
      await Promise.all(schedulers.map((s) => s.stop()));
      schedulers = [];
      await killAll(procs);
      procs = [];
      await Promise.all(extra.map((m) => m.close()));
      extra = [];
      await p.close();
    });
    const run = (mill: Taskmill) => {
      const s = mill.scheduler({ maxSleepMs: 200 });
      schedulers.push(s);
      s.start();
      return s;
    };

    it('a 1-second schedule makes one task per second, each carrying its due time', async () => {
      p = await makeProject(engine, HANDLERS);
      await p.mill.schedule('tick', { task: 'report', every: '1s', overlap: 'allow', payload: { x: 1 } });
      run(p.mill);
      const tasks = await eventually(async () => {
        const ts = await scheduled(p.mill, 'tick');
        return ts.length >= 4 ? ts : undefined;
      }, 15_000, 'four tasks');
      const due = tasks.map((t) => t.scheduledFor!.getTime());
      for (let i = 1; i < due.length; i++) assert.equal(due[i]! - due[i - 1]!, 1000, 'one per second, none missing');
      for (const t of tasks) {
        const late = t.createdAt.getTime() - t.scheduledFor!.getTime();
        assert.ok(late >= 0 && late < 1000, `created ${late} ms after its due time`);
        assert.deepEqual(t.payload, { x: 1 });
      }
      const [info] = await p.mill.schedules();
      assert.equal(info?.next.length, 3);
      assert.ok(info!.next[0]!.getTime() > tasks.at(-1)!.scheduledFor!.getTime());
    });

    it('a changed rule applies at once', async () => {
      p = await makeProject(engine, HANDLERS);
      await p.mill.schedule('slowly', { task: 'report', every: '1 hour' });
      run(p.mill);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await scheduled(p.mill, 'slowly')).length, 0);
      const changedAt = Date.now();
      await p.mill.schedule('slowly', { task: 'report', every: '1s', overlap: 'allow' });
      const [first] = await eventually(async () => {
        const ts = await scheduled(p.mill, 'slowly');
        return ts.length > 0 ? ts : undefined;
      }, 5_000, 'the first task of the new rule');
      // Due one second after the change; the slack allows for a loaded machine (the old rule said an hour).
      const after = first!.createdAt.getTime() - changedAt;
      assert.ok(after < 2_500, `fired ${after} ms after the change, within the first seconds of the new rule`);
    });

    it('config schedules are added, and removed (with their fire times) when they leave the file', async () => {
      p = await makeProject(engine, HANDLERS, {
        schedules: [
          { name: 'from-config', task: 'report', every: '1s', overlap: 'allow' },
          { name: 'broken', task: 'report', cron: '61 * * * *' },
          { name: 'nobody', task: 'no-such-task', every: '1m' },
          { name: 'from-config', task: 'report', every: '5s' },
        ],
      });
      await p.mill.schedule('from-api', { task: 'report', every: '1 hour' });
      const report = await p.mill.reconcileSchedules();
      assert.deepEqual(report.added, ['from-config']);
      assert.deepEqual(
        report.errors.map((e) => e.name),
        ['broken', 'nobody', 'from-config'],
      );
      assert.match(report.errors[0]!.message, /schedule "broken": field "cron": invalid expression "61 \* \* \* \*"/);
      assert.match(report.errors[1]!.message, /schedule "nobody": field "task": unknown task "no-such-task"/);
      assert.match(report.errors[2]!.message, /used twice/);
      run(p.mill);
      await eventually(async () => ((await scheduled(p.mill, 'from-config')).length >= 1 ? true : undefined), 5_000);

      // The same database, the file now without the schedule.
      const edited = await Taskmill.open({ config: { ...p.config, schedules: [] }, env: {} });
      extra.push(edited);
      const second = await edited.reconcileSchedules();
      assert.deepEqual(second.removed, ['from-config']);
      assert.deepEqual((await edited.schedules()).map((s) => s.name), ['from-api'], 'API schedules stay');
      await new Promise((r) => setTimeout(r, 500));
      const count = (await scheduled(p.mill, 'from-config')).length;
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await scheduled(p.mill, 'from-config')).length, count, 'no task after removal');
    });

    it('leaves an unchanged config schedule alone on the next start, whatever order the database keeps its keys in', async () => {
      const payload = { bb: 1, a: { zz: [1, { y: 2, x: 1 }], c: null } };
      p = await makeProject(engine, HANDLERS, {
        schedules: [{ name: 'keys', task: 'report', cron: '0 3 * * *', timezone: 'Europe/Berlin', payload }],
      });
      assert.deepEqual((await p.mill.reconcileSchedules()).added, ['keys']);
      const before = await p.mill.store.getSchedule('keys');
      const again = await Taskmill.open({ config: p.config, env: {} });
      extra.push(again);
      const second = await again.reconcileSchedules();
      assert.deepEqual(second.changed, [], 'not rewritten');
      assert.equal((await again.store.getSchedule('keys'))?.updatedAt.getTime(), before?.updatedAt.getTime());
      assert.deepEqual((await again.store.getSchedule('keys'))?.payload, payload);
    });

    it('skips an occurrence while the previous task still waits (overlap: skip)', async () => {
      p = await makeProject(engine, HANDLERS);
      await p.mill.schedule('no-pileup', { task: 'report', every: '1s' });
      run(p.mill);
      const info = await eventually(async () => {
        const [s] = await p.mill.schedules();
        return s && s.skippedCount >= 2 ? s : undefined;
      }, 10_000, 'two skipped occurrences');
      assert.equal((await scheduled(p.mill, 'no-pileup')).length, 1, 'no worker runs: only the first task exists');
      assert.match(info.lastSkipReason ?? '', /overlap: task #\d+ of the previous occurrence is still WAITING/);
    });

    for (const [policy, expectFired, expectSkipped] of [
      ['last', ['2026-06-01T05:00:00.000Z'], 4],
      ['none', [], 5],
      ['all', ['01', '02', '03', '04', '05'].map((h) => `2026-06-01T${h}:00:00.000Z`), 0],
    ] as const) {
      it(`catch-up "${policy}" after the scheduler was down from 00:00 to 05:20`, async () => {
        const clock = new ManualClock(Date.parse('2026-06-01T00:00:00Z'));
        p = await makeProject(engine, HANDLERS);
        const mill = await Taskmill.open({ config: p.config, env: {}, clock });
        extra.push(mill);
        await mill.schedule('hourly', { task: 'report', cron: '0 * * * *', timezone: 'UTC', catchUp: policy, overlap: 'allow' });
        clock.set('2026-06-01T05:20:00Z');
        run(mill);
        const info = await eventually(async () => {
          const [s] = await mill.schedules();
          return s?.lastDueAt?.toISOString() === '2026-06-01T05:00:00.000Z' ? s : undefined;
        }, 10_000, 'the outage served');
        const fired = (await scheduled(mill, 'hourly')).map((t) => t.scheduledFor!.toISOString());
        assert.deepEqual(fired, expectFired);
        assert.equal(info.skippedCount, expectSkipped);
        if (expectSkipped > 0) assert.match(info.lastSkipReason ?? '', new RegExp(`catch-up "${policy}"`));
      });
    }

    it('refuses bad schedules with the schedule, the field and the fix, losing nothing stored', async () => {
      p = await makeProject(engine, HANDLERS);
      await p.mill.schedule('good', { task: 'report', cron: '0 3 * * *', timezone: 'Europe/Berlin' });
      const bad: [Parameters<Taskmill['schedule']>[1], RegExp][] = [
        [{ task: 'report', cron: '0 25 * * *' }, /schedule "good": field "cron": invalid expression/],
        [{ task: 'report', cron: '0 3 * * *', timezone: 'Europe/Atlantis' }, /unknown time zone "Europe\/Atlantis"/],
        [{ task: 'report', every: 'sometimes' }, /field "every": invalid interval "sometimes"/],
        [{ task: 'nope', every: '1m' }, /field "task": unknown task "nope"/],
        [{ task: 'report' }, /exactly one of "every"/],
        [{ task: 'report', every: '1m', catchUp: 'twice' as 'all' }, /field "catchUp"/],
      ];
      for (const [spec, message] of bad) await assert.rejects(p.mill.schedule('good', spec), message);
      const [kept] = await p.mill.schedules();
      assert.deepEqual(kept?.rule, { kind: 'cron', expression: '0 3 * * *', timezone: 'Europe/Berlin' });
      await assert.rejects(p.mill.schedule('bad name!', { task: 'report', every: '1m' }), /invalid schedule name/);
    });

    it('pause, resume, run now and unschedule', async () => {
      p = await makeProject(engine, HANDLERS);
      await p.mill.schedule('manual', { task: 'report', every: '1 hour' });
      const paused = await p.mill.setScheduleEnabled('manual', false);
      assert.equal(paused.enabled, false);
      assert.deepEqual(paused.next, []);
      const task = await p.mill.runSchedule('manual');
      assert.equal(task.scheduleName, 'manual');
      const resumed = await p.mill.setScheduleEnabled('manual', true);
      assert.equal(resumed.next.length, 3);
      assert.equal(await p.mill.unschedule('manual'), true);
      assert.deepEqual(await p.mill.schedules(), []);
      await assert.rejects(p.mill.runSchedule('manual'), /no schedule named "manual"/);
    });

    it('three scheduler processes on one database make exactly one task per tick, even when one is killed', async () => {
      p = await makeProject(engine, HANDLERS);
      await p.mill.schedule('cluster', { task: 'report', cron: '* * * * * *', timezone: 'UTC', overlap: 'allow' });
      procs = await Promise.all([0, 1, 2].map(() => spawnWorker(p.config, 'scheduler-process.ts')));
      const startedAt = Date.now();
      await eventually(async () => ((await scheduled(p.mill, 'cluster')).length >= 4 ? true : undefined), 20_000);
      procs[0]!.child.kill('SIGKILL');
      await procs[0]!.exited;
      await eventually(async () => ((await scheduled(p.mill, 'cluster')).length >= 11 ? true : undefined), 30_000);
      assert.ok(Date.now() - startedAt >= 10_000 || (await scheduled(p.mill, 'cluster')).length >= 11);
      const due = (await scheduled(p.mill, 'cluster')).map((t) => t.scheduledFor!.getTime()).sort((a, b) => a - b);
      assert.equal(new Set(due).size, due.length, 'no tick fired twice');
      for (let i = 1; i < due.length; i++) assert.equal(due[i]! - due[i - 1]!, 1000, 'no tick missed');
    });
  });
}
