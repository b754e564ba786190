// The schedule half of the storage conformance suite: every engine must pass every test here.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { ScheduleDefinition } from '../../src/model/schedule.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { ENGINES, type TempDatabase } from '../helpers/engines.js';
import { newTask } from '../helpers/fixtures.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const def = (over: Partial<ScheduleDefinition> = {}): ScheduleDefinition => ({
  name: 'nightly',
  task: 'report',
  payload: { kind: 'daily' },
  rule: { kind: 'cron', expression: '0 3 * * *', timezone: 'Europe/Berlin' },
  catchUp: 'last',
  overlap: 'skip',
  enabled: true,
  source: 'api',
  ...over,
});

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`schedule store conformance: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let db: TempDatabase;
    let store: Store;
    beforeEach(async () => {
      db = await engine.create();
      store = await openStore(db.url);
    });
    afterEach(async () => {
      await store.close();
      await db.drop();
    });

    it('saves, reads, lists and removes schedules by unique name', async () => {
      const s = await store.saveSchedule(def(), T0);
      assert.equal(s.name, 'nightly');
      assert.deepEqual(s.rule, { kind: 'cron', expression: '0 3 * * *', timezone: 'Europe/Berlin' });
      assert.deepEqual(s.payload, { kind: 'daily' });
      assert.equal(s.anchorAt.getTime(), T0.getTime());
      assert.equal(s.lastDueAt, null);
      await store.saveSchedule(def({ name: 'every-minute', rule: { kind: 'every', everyMs: 60_000 } }), T0);
      assert.deepEqual((await store.listSchedules()).map((x) => x.name), ['every-minute', 'nightly']);
      assert.equal((await store.getSchedule('every-minute'))?.rule.kind, 'every');
      assert.equal(await store.removeSchedule('nightly'), true);
      assert.equal(await store.removeSchedule('nightly'), false);
      assert.equal(await store.getSchedule('nightly'), null);
    });

    it('saving again updates; a changed rule restarts its fire times, an unchanged one keeps them', async () => {
      await store.saveSchedule(def(), T0);
      await store.fireSchedule({ name: 'nightly', dueAt: at(1000), task: newTask('report'), overlap: 'allow' }, at(1000));
      const same = await store.saveSchedule(def({ payload: { kind: 'changed' } }), at(2000));
      assert.equal(same.lastDueAt?.getTime(), at(1000).getTime());
      assert.equal(same.anchorAt.getTime(), T0.getTime());
      assert.deepEqual(same.payload, { kind: 'changed' });
      const changed = await store.saveSchedule(def({ rule: { kind: 'every', everyMs: 5000 } }), at(3000));
      assert.equal(changed.anchorAt.getTime(), at(3000).getTime());
      assert.equal(changed.lastDueAt?.getTime(), at(3000).getTime());
      assert.equal((await store.listSchedules()).length, 1);
    });

    it('fires an occurrence once, with the schedule name and due time on the task', async () => {
      await store.saveSchedule(def(), T0);
      const fire = { name: 'nightly', dueAt: at(10_000), task: newTask('report', { payload: { p: 1 } }), overlap: 'allow' as const };
      const first = await store.fireSchedule(fire, at(10_005));
      assert.equal(first.kind, 'fired');
      const again = await store.fireSchedule(fire, at(10_006));
      assert.equal(again.kind, 'taken');
      const task = await store.get(first.kind === 'fired' ? first.taskId : -1);
      assert.equal(task?.scheduleName, 'nightly');
      assert.equal(task?.scheduledFor?.getTime(), at(10_000).getTime());
      assert.deepEqual(task?.payload, { p: 1 });
      const s = await store.getSchedule('nightly');
      assert.equal(s?.lastDueAt?.getTime(), at(10_000).getTime());
      assert.equal(s?.lastFiredAt?.getTime(), at(10_005).getTime());
      assert.equal(s?.lastTaskId, task?.id);
    });

    it('fires an occurrence exactly once when several connections race for it', async () => {
      const others = await Promise.all([openStore(db.url), openStore(db.url)]);
      try {
        await store.saveSchedule(def({ rule: { kind: 'every', everyMs: 1000 } }), T0);
        const all = [store, ...others];
        const outcomes = [];
        // Due times come in order, as schedulers fire them; three connections race for each one.
        for (let due = 1; due <= 10; due++) {
          outcomes.push(
            ...(await Promise.all(
              all.map((s) =>
                s.fireSchedule({ name: 'nightly', dueAt: at(1000 * due), task: newTask('report'), overlap: 'allow' }, at(20_000)),
              ),
            )),
          );
        }
        assert.equal(outcomes.filter((o) => o.kind === 'fired').length, 10);
        assert.equal(outcomes.filter((o) => o.kind === 'taken').length, 20);
        assert.equal((await store.list({ name: 'report' })).length, 10);
      } finally {
        await Promise.all(others.map((s) => s.close()));
      }
    });

    it('never fires an occurrence at or before the last one served, even after its tick was pruned', async () => {
      await store.saveSchedule(def({ rule: { kind: 'every', everyMs: 1000 } }), T0);
      const fire = (ms: number) =>
        store.fireSchedule({ name: 'nightly', dueAt: at(ms), task: newTask('report'), overlap: 'allow' }, at(ms));
      assert.equal((await fire(2000)).kind, 'fired');
      assert.equal(await store.pruneTicks(at(10_000)), 1);
      // A scheduler working from an old snapshot offers the same occurrence, and an older one.
      assert.equal((await fire(2000)).kind, 'taken');
      assert.equal((await fire(1000)).kind, 'taken');
      // Skipped occurrences count as served too.
      await store.skipSchedule({ name: 'nightly', count: 2, servedUntil: at(4000), reason: 'catch-up' }, at(4000));
      assert.equal((await fire(4000)).kind, 'taken');
      assert.equal((await fire(5000)).kind, 'fired');
      assert.equal((await store.list({ name: 'report' })).length, 2);
    });

    it('fires with the same task options as add: a unique key, prerequisites', async () => {
      await store.saveSchedule(def({ rule: { kind: 'every', everyMs: 1000 } }), T0);
      const [live] = await store.add([newTask('report', { uniqueKey: 'one-report' })], T0);
      const [prereq] = await store.add([newTask('prepare')], T0);
      const fire = (ms: number, over: Parameters<typeof newTask>[1]) =>
        store.fireSchedule({ name: 'nightly', dueAt: at(ms), task: newTask('report', over), overlap: 'allow' }, at(ms));
      const unique = await fire(1000, { uniqueKey: 'one-report' });
      assert.deepEqual(unique, { kind: 'fired', taskId: live!.task.id }, 'the live task holding the key is the occurrence');
      assert.equal((await store.list({ name: 'report' })).length, 1);
      const after = await fire(2000, { prerequisites: [prereq!.task.id] });
      assert.equal(after.kind, 'fired');
      const task = await store.get(after.kind === 'fired' ? after.taskId : 0);
      assert.deepEqual(task?.prerequisites, [prereq!.task.id]);
      assert.equal((await store.claim({ lock: { host: 'h', pid: 1, workerId: 'w' }, queues: null, limit: 10, now: at(3000), leaseMs: 30_000 }))
        .filter((t) => t.id === task?.id).length, 0, 'it waits for its prerequisite');
    });

    it('skips an occurrence while the previous task is live (overlap: skip) and records why', async () => {
      await store.saveSchedule(def(), T0);
      const f = (ms: number) => ({ name: 'nightly', dueAt: at(ms), task: newTask('report'), overlap: 'skip' as const });
      const first = await store.fireSchedule(f(1000), at(1000));
      assert.equal(first.kind, 'fired');
      const second = await store.fireSchedule(f(2000), at(2000));
      assert.equal(second.kind, 'skipped');
      assert.match(second.kind === 'skipped' ? second.reason : '', /overlap: task #\d+ .* still WAITING/);
      const s = await store.getSchedule('nightly');
      assert.equal(s?.skippedCount, 1);
      assert.equal(s?.lastSkippedAt?.getTime(), at(2000).getTime());
      assert.equal(s?.lastDueAt?.getTime(), at(2000).getTime());
      // overlap: allow creates it anyway
      const third = await store.fireSchedule({ ...f(3000), overlap: 'allow' }, at(3000));
      assert.equal(third.kind, 'fired');
    });

    it('does not fire a paused or removed schedule; a manual run fires without a tick', async () => {
      await store.saveSchedule(def({ enabled: false }), T0);
      const paused = await store.fireSchedule({ name: 'nightly', dueAt: at(1000), task: newTask('report'), overlap: 'allow' }, at(1000));
      assert.deepEqual(paused, { kind: 'skipped', reason: 'the schedule is paused' });
      const manual = await store.fireSchedule(
        { name: 'nightly', dueAt: at(1500), task: newTask('report'), overlap: 'skip', manual: true },
        at(1500),
      );
      assert.equal(manual.kind, 'fired');
      assert.equal((await store.getSchedule('nightly'))?.lastDueAt, null, 'a manual run serves no due time');
      await store.removeSchedule('nightly');
      const gone = await store.fireSchedule({ name: 'nightly', dueAt: at(2000), task: newTask('report'), overlap: 'allow' }, at(2000));
      assert.equal(gone.kind, 'skipped');
    });

    it('records catch-up skips and prunes old ticks', async () => {
      await store.saveSchedule(def(), T0);
      await store.skipSchedule({ name: 'nightly', count: 4, servedUntil: at(5000), reason: 'catch-up "none"' }, at(6000));
      const s = await store.getSchedule('nightly');
      assert.equal(s?.skippedCount, 4);
      assert.equal(s?.lastDueAt?.getTime(), at(5000).getTime());
      assert.equal(s?.lastSkipReason, 'catch-up "none"');
      // A second scheduler recording the same skip changes nothing: the cluster counts it once.
      await store.skipSchedule({ name: 'nightly', count: 4, servedUntil: at(5000), reason: 'catch-up "none"' }, at(6001));
      assert.equal((await store.getSchedule('nightly'))?.skippedCount, 4);
      const won = await store.fireSchedule(
        { name: 'nightly', dueAt: at(6500), task: newTask('report'), overlap: 'allow', skippedBefore: { count: 2, reason: 'catch-up "last"' } },
        at(6500),
      );
      assert.equal(won.kind, 'fired');
      const lost = await store.fireSchedule(
        { name: 'nightly', dueAt: at(6500), task: newTask('report'), overlap: 'allow', skippedBefore: { count: 2, reason: 'catch-up "last"' } },
        at(6500),
      );
      assert.equal(lost.kind, 'taken');
      assert.equal((await store.getSchedule('nightly'))?.skippedCount, 6);
      await store.fireSchedule({ name: 'nightly', dueAt: at(7000), task: newTask('report'), overlap: 'allow' }, at(7000));
      assert.equal(await store.pruneTicks(at(8000)), 2);
      assert.equal(await store.pruneTicks(at(8000)), 0);
    });

    it('tells subscribers when schedules change', async () => {
      const seen: string[] = [];
      const off = store.subscribe((e) => seen.push(e.kind));
      await store.saveSchedule(def(), T0);
      await store.removeSchedule('nightly');
      off();
      assert.equal(seen.filter((k) => k === 'schedules').length, 2);
    });
  });
}
