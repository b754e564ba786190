// `taskmill schedules` and `taskmill schedule add|rm|pause|resume|run`, run as real processes on both
// engines: the table and the JSON, updates by name, and bad input refused with exit 2 and one line.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { ScheduleJson, TaskJson } from '../../src/cli/output.js';
import { Taskmill } from '../../src/client/taskmill.js';
import { assertError, assertOk, type CliResult, runCli } from '../helpers/cli.js';
import { ENGINES, type TempDatabase } from '../helpers/engines.js';

const SCHEDULE_KEYS = [
  'name', 'task', 'payload', 'rule', 'catchUp', 'overlap', 'enabled', 'source', 'createdAt', 'updatedAt', 'anchorAt',
  'lastDueAt', 'lastFiredAt', 'lastTaskId', 'lastSkippedAt', 'lastSkipReason', 'skippedCount', 'next',
].sort();

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ISO_SECONDS = '\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z';

const assertUsageError = (r: CliResult, pattern: RegExp) => assertError(r, 2, pattern);

/** Local wall-clock time "HH:MM" of `iso` in `zone`. */
function wallClock(iso: string, zone: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(
    new Date(iso),
  );
}

/** A fresh project made by `taskmill init` on a fresh database. */
async function project(db: TempDatabase) {
  const env = { TASKMILL_DATABASE: db.url };
  const cli = (args: string[], extraEnv: Record<string, string> = {}) =>
    runCli(args, { cwd: db.dir, env: { ...env, ...extraEnv } });
  assertOk(await cli(['init']));
  const list = async () => JSON.parse(assertOk(await cli(['schedules', '--json']))) as ScheduleJson[];
  return { dir: db.dir, env, cli, list };
}

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`cli schedules: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let db: TempDatabase;
    let p: Awaited<ReturnType<typeof project>>;

    beforeEach(async () => {
      db = await engine.create();
      p = await project(db);
    });
    afterEach(async () => {
      await db.drop();
    });

    it('add, then list as a table and as JSON with the next three fire times', async () => {
      assert.equal(assertOk(await p.cli(['schedules'])), 'no schedules\n');
      writeFileSync(path.join(p.dir, 'payload.json'), '{"name":"night owl"}');
      const before = Date.now();
      const nightly = assertOk(await p.cli(['schedule', 'add', 'nightly', '--task', 'hello', '--cron', '0 3 * * *',
        '--tz', 'Europe/Berlin', '--payload', '@payload.json', '--catch-up', 'none', '--overlap', 'allow']));
      assert.match(nightly, /^nightly: next at \d{4}-\d{2}-\d{2}T\d{2}:00:00\.000Z\n$/);
      assert.match(assertOk(await p.cli(['schedule', 'add', 'tick', '--task', 'hello', '--every', '5s'])),
        /^tick: next at \S+Z\n$/);
      // A cron rule without --tz takes the host's time zone.
      assert.equal(assertOk(await p.cli(['schedule', 'add', 'quiet', '--task', 'hello', '--cron', '*/10 * * * *',
        '--paused'], { TZ: 'Asia/Tokyo' })), 'quiet: paused\n');

      const all = await p.list();
      assert.deepEqual(all.map((s) => s.name), ['nightly', 'quiet', 'tick']);
      const [n, q, t] = all as [ScheduleJson, ScheduleJson, ScheduleJson];
      for (const s of all) assert.deepEqual(Object.keys(s).sort(), SCHEDULE_KEYS);
      assert.deepEqual(n.rule, { kind: 'cron', expression: '0 3 * * *', timezone: 'Europe/Berlin' });
      assert.deepEqual([n.task, n.payload, n.catchUp, n.overlap, n.enabled, n.source], ['hello', { name: 'night owl' }, 'none', 'allow', true, 'api']);
      assert.equal(n.next.length, 3);
      for (const time of n.next) {
        assert.match(time, ISO);
        assert.equal(wallClock(time, 'Europe/Berlin'), '03:00', `${time} is 03:00 in Berlin`);
      }
      assert.ok(Date.parse(n.next[0] ?? '') > before);
      assert.equal(`${nightly.trim().split(' ').at(-1)}`, n.next[0], 'add printed the first fire time');
      assert.deepEqual([n.lastFiredAt, n.lastTaskId, n.lastSkippedAt, n.lastSkipReason, n.skippedCount], [null, null, null, null, 0]);
      assert.match(n.createdAt, ISO);

      assert.deepEqual(t.rule, { kind: 'every', everyMs: 5000 });
      assert.deepEqual([t.catchUp, t.overlap, t.payload], ['last', 'skip', {}]);
      // Every 5 s from its anchor: the next three are consecutive multiples of 5 s after it (which
      // multiple comes first depends on how long the CLI calls above took on a loaded machine).
      const offsets = t.next.map((time) => Date.parse(time) - Date.parse(t.anchorAt));
      assert.equal(offsets.length, 3);
      assert.ok((offsets[0] ?? 0) >= 5000 && (offsets[0] ?? 0) % 5000 === 0, `first fire ${offsets[0]} ms after the anchor`);
      assert.deepEqual(offsets, [offsets[0], (offsets[0] ?? 0) + 5000, (offsets[0] ?? 0) + 10000]);

      assert.deepEqual(q.rule, { kind: 'cron', expression: '*/10 * * * *', timezone: 'Asia/Tokyo' });
      assert.equal(q.enabled, false);
      assert.deepEqual(q.next, [], 'a paused schedule does not fire');

      const lines = assertOk(await p.cli(['schedules'])).trimEnd().split('\n');
      assert.match(lines[0] ?? '', /^NAME +TASK +RULE +TIME ZONE +STATE +SOURCE +LAST RUN +NEXT +LAST SKIP$/);
      assert.match(lines[1] ?? '', new RegExp(`^nightly +hello +cron 0 3 \\* \\* \\* +Europe/Berlin +enabled +api +- +${ISO_SECONDS} +-$`));
      const nextColumn = lines[0]?.indexOf('NEXT');
      for (const line of [lines[2], lines[3]]) {
        assert.match(line ?? '', new RegExp(`^ +${ISO_SECONDS}$`), 'the next fire times continue below');
        assert.equal(line?.search(/\d/), nextColumn);
      }
      assert.match(lines[4] ?? '', /^quiet +hello +cron \*\/10 \* \* \* \* +Asia\/Tokyo +paused +api +- +- +-$/);
      assert.match(lines[5] ?? '', new RegExp(`^tick +hello +every 5s +- +enabled +api +- +${ISO_SECONDS} +-$`));
      assert.equal(lines.length, 8);
    });

    it('add with the same name replaces it; pause, resume, run and rm', async () => {
      assertOk(await p.cli(['schedule', 'add', 'tick', '--task', 'hello', '--every', '1 hour', '--payload', '{"name":"Ada"}']));
      const [first] = await p.list();
      assert.match(assertOk(await p.cli(['schedule', 'add', 'tick', '--task', 'hello', '--cron', '*/5 * * * *', '--tz', 'UTC',
        '--payload', '{"name":"Bo"}'])), /^tick: next at \d{4}-\d{2}-\d{2}T\d{2}:\d[05]:00\.000Z\n$/);
      assert.equal(assertOk(await p.cli(['schedule', 'pause', 'tick'])), 'tick: paused\n');
      assert.match(assertOk(await p.cli(['schedule', 'resume', 'tick'])), /^tick: next at \S+:\d[05]:00\.000Z\n$/);
      const id = assertOk(await p.cli(['schedule', 'run', 'tick']));
      assert.match(id, /^\d+\n$/);
      const task = JSON.parse(assertOk(await p.cli(['show', id.trim(), '--json']))) as TaskJson;
      assert.deepEqual([task.name, task.payload, task.status, task.note], ['hello', { name: 'Bo' }, 'WAITING', 'schedule tick']);
      const after = await p.list();
      assert.equal(after.length, 1, 'updated, not added');
      const [s] = after as [ScheduleJson];
      assert.deepEqual(s.rule, { kind: 'cron', expression: '*/5 * * * *', timezone: 'UTC' });
      assert.deepEqual(s.payload, { name: 'Bo' });
      assert.equal(s.createdAt, first?.createdAt);
      assert.deepEqual([s.enabled, s.lastTaskId, s.next.length], [true, Number(id), 3]);
      assert.match(s.lastFiredAt ?? '', ISO);

      assert.equal(assertOk(await p.cli(['schedule', 'rm', 'tick'])), 'tick: removed\n');
      assert.equal(assertOk(await p.cli(['schedules'])), 'no schedules\n');
    });

    it('bad input exits 2 with one line naming the schedule, the field and the fix', async () => {
      assertOk(await p.cli(['schedule', 'add', 'tick', '--task', 'hello', '--every', '1 hour']));
      const add = (...args: string[]) => ['schedule', 'add', 'x', '--task', 'hello', ...args];
      const cases: [string[], RegExp][] = [
        [add('--cron', '61 * * * *'), /schedule "x": field "cron": invalid expression "61 \* \* \* \*"/],
        [add('--cron', '0 3 * * *', '--tz', 'Mars/Olympus'), /schedule "x": unknown time zone "Mars\/Olympus"; use an IANA name/],
        [add('--every', '5 parsecs'), /schedule "x": field "every": invalid interval "5 parsecs": write a number with a unit/],
        [add(), /schedule "x": give exactly one of "every" .* or "cron"/],
        [add('--every', '5s', '--cron', '* * * * *'), /schedule "x": give exactly one of "every"/],
        [add('--every', '5s', '--catch-up', 'some'), /schedule "x": field "catchUp": .*"last"\|"none"\|"all"/],
        [add('--every', '5s', '--overlap', 'never'), /schedule "x": field "overlap": .*"skip"\|"allow"/],
        [['schedule', 'add', 'x', '--task', 'helo', '--every', '5s'], /schedule "x": field "task": unknown task "helo".*Known tasks: hello/],
        [['schedule', 'rm', 'nope'], /no schedule named "nope"; list them with "taskmill schedules"/],
        [['schedule', 'pause', 'nope'], /no schedule named "nope"/],
        [['schedule', 'resume', 'nope'], /no schedule named "nope"/],
        [['schedule', 'run', 'nope'], /no schedule named "nope"/],
      ];
      const results = await Promise.all(cases.map(([args]) => p.cli(args)));
      results.forEach((r, i) => assertUsageError(r, cases[i]?.[1] ?? /./));
      assert.deepEqual((await p.list()).map((s) => s.name), ['tick'], 'nothing was added');
    });

    it('a schedule from the config file is listed as such and cannot be changed here', async () => {
      const config = { database: 'sqlite:var/taskmill.db', tasksDir: 'tasks', schedules: [{ name: 'from-file', task: 'hello', every: '1 hour' }] };
      writeFileSync(path.join(p.dir, 'taskmill.config.json'), JSON.stringify(config));
      // The scheduler reconciles the file; here the library does it, and records a skip as the scheduler would.
      const mill = await Taskmill.open({ cwd: p.dir, env: p.env });
      try {
        assert.deepEqual((await mill.reconcileSchedules()).added, ['from-file']);
        const s = await mill.store.getSchedule('from-file');
        const at = new Date((s?.anchorAt.getTime() ?? 0) + 1000);
        await mill.store.skipSchedule({ name: 'from-file', count: 2, servedUntil: at, reason: 'missed while down' }, at);
      } finally {
        await mill.close();
      }
      const lines = assertOk(await p.cli(['schedules'])).trimEnd().split('\n');
      assert.match(lines[1] ?? '', new RegExp(`^from-file +hello +every 1h +- +enabled +config +- +${ISO_SECONDS} +${ISO_SECONDS} missed while down$`));
      const [r1, r2] = await Promise.all([
        p.cli(['schedule', 'add', 'from-file', '--task', 'hello', '--every', '5s']),
        p.cli(['schedule', 'rm', 'from-file']),
      ]);
      assertUsageError(r1, /schedule "from-file" comes from the config file; change it there/);
      assertUsageError(r2, /schedule "from-file" comes from the config file; remove it there/);
    });
  });
}
