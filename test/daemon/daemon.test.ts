// The daemon as a user runs it: `taskmill start` (detached), `status`, `stop`, `list`, `summary`,
// `watchdog`, with real module processes, on both engines. Each test owns a temp project
// (taskmill.config.json, tasks/, var/) and leaves no process behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  alive,
  BUILT_IN,
  DaemonProject,
  DEAF_HANDLER,
  lines,
  moduleOf,
  RECORD_HANDLER,
} from '../helpers/daemon.js';
import { ENGINES, type TempDatabase } from '../helpers/engines.js';

/** A custom module: appends "<pid> <options.value>" to options.file, then asks to be discarded. */
const FLAKY_MODULE = `
import { appendFileSync } from 'node:fs';

export default function flaky(ctx: { options: Record<string, unknown> }) {
  return {
    run() {
      appendFileSync(String(ctx.options.file), process.pid + ' ' + String(ctx.options.value) + '\\n');
      return false;
    },
  };
}
`;

/** A well-behaved custom module (a class) with a summary. */
const ECHO_MODULE = `
export const settings = { sleep: '100ms' };

export default class Echo {
  loops = 0;
  constructor(ctx) {
    this.ctx = ctx;
  }
  run() {
    this.loops++;
  }
  summary() {
    return {
      header: 'Echo says ' + this.ctx.options.greeting,
      columns: [{ name: 'greeting', displayName: 'Greeting', size: 10 }],
      rows: [{ greeting: this.ctx.options.greeting }],
      noDataMessage: 'Nothing to say.',
    };
  }
}
`;

/** The pid of a process that has just ended. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(r.stdout);
  assert.ok(pid > 0 && !alive(pid));
  return pid;
}

const availability = await Promise.all(ENGINES.map((e) => e.available()));

// The two engines run side by side (their tests are mostly waiting); the tests of one engine run
// one after the other.
describe('daemon', { concurrency: 2 }, () => {
  for (const [i, engine] of ENGINES.entries()) {
    describe(`daemon: ${engine.name}`, { concurrency: 1, skip: availability[i] ? false : 'PostgreSQL not reachable' }, () => {
      let db: TempDatabase;
      let p: DaemonProject;
      let doneLog: string;

      const project = (config: Record<string, unknown> = {}, handlers: Record<string, string> = {}) => {
        p = new DaemonProject({ dir: db.dir, database: db.url, config, handlers: { record: RECORD_HANDLER, ...handlers } });
        doneLog = p.path('done.log');
        return p;
      };

      beforeEach(async () => {
        db = await engine.create();
      });
      afterEach(async () => {
        const problems = p ? await p.cleanup() : [];
        await db.drop();
        if (problems.length > 0) throw new Error(`cleanup: ${problems.join('; ')}`);
      });

      it('start → status 0 with the four modules → stop → status 3, no process left', async () => {
        project();
        const status = await p.start();
        assert.deepEqual(status.modules.map((m) => m.name), BUILT_IN);
        for (const m of status.modules) {
          assert.ok(Number.isInteger(m.pid) && m.pid !== status.pid && alive(m.pid ?? 0), `${m.name} has a live pid`);
        }
        const human = await p.cli(['status']);
        assert.equal(human.code, 0, human.stderr);
        assert.match(human.stdout, new RegExp(`taskmill daemon: running \\(pid ${status.pid}, up `));
        for (const name of BUILT_IN) assert.match(human.stdout, new RegExp(`^${name} +\\d+ +running `, 'm'));
        const pids = [status.pid, ...status.modules.map((m) => m.pid ?? 0)];

        assert.match(await p.ok('stop'), new RegExp(`taskmill daemon stopped \\(pid ${status.pid}\\)`));
        const after = await p.cli(['status']);
        assert.equal(after.code, 3, after.stderr);
        assert.match(after.stdout, /taskmill daemon: not running/);
        assert.equal((await p.status()).running, false);
        assert.deepEqual(pids.filter(alive), [], 'the daemon and its modules are gone');
        assert.deepEqual(p.processes(), []);
        assert.ok(!existsSync(p.pidFile), 'the pid file is removed');
        assert.match(await p.ok('stop'), /the daemon is not running/);
      });

      it('refuses a second start naming the pid; a stale pid file is cleaned up', async () => {
        project();
        mkdirSync(path.dirname(p.pidFile), { recursive: true });
        const dead = deadPid();
        writeFileSync(p.pidFile, `${dead}\n`);
        const r = await p.cli(['status']);
        assert.equal(r.code, 3, 'a stale pid file is not a running daemon');

        writeFileSync(p.pidFile, `${dead}\n`);
        const out = await p.ok('start');
        assert.match(out, new RegExp(`removed a stale pid file \\(pid ${dead} is not running\\)`));
        const { pid } = await p.waitRunning();
        assert.equal(p.pidFromFile(), pid);

        const again = await p.cli(['start']);
        assert.equal(again.code, 1, again.stderr);
        assert.equal(again.stdout, '');
        assert.match(again.stderr, new RegExp(`^taskmill: the daemon is already running \\(pid ${pid}\\)`));
        const still = await p.status();
        assert.equal(still.daemon?.pid, pid, 'the running daemon is untouched');
        assert.equal(p.pidFromFile(), pid);
      });

      it('a module killed with SIGKILL comes back with a new pid; the crash is logged with the signal', async () => {
        project();
        const before = await p.start();
        const victim = moduleOf(before, 'TaskWorker')?.pid ?? 0;
        const others = before.modules.filter((m) => m.name !== 'TaskWorker').map((m) => m.pid);
        process.kill(victim, 'SIGKILL');
        const after = await p.waitStatus((s) => {
          const m = moduleOf(s.daemon, 'TaskWorker');
          return m && m.pid !== null && m.pid !== victim && m.state === 'running' ? s.daemon : undefined;
        }, 'TaskWorker to come back');
        const m = moduleOf(after, 'TaskWorker');
        assert.equal(after?.pid, before.pid, 'the main daemon is the same');
        assert.equal(m?.restarts, 1);
        assert.equal(m?.lastError, 'exited with signal SIGKILL');
        assert.deepEqual(after?.modules.filter((x) => x.name !== 'TaskWorker').map((x) => x.pid), others, 'the other modules are untouched');
        const crash = p.logRecords('Main').find((l) => l.msg === 'module process ended unexpectedly; starting it again');
        assert.ok(crash, 'Main.log reports the crash');
        assert.equal(crash.module, 'TaskWorker');
        assert.equal(crash.signal, 'SIGKILL');
        assert.equal(crash.level, 50, 'at error level');

        // And the new worker works.
        const id = await p.add('record', '--payload', JSON.stringify({ log: doneLog }));
        const t = await p.waitFor(async () => {
          const task = await p.show(id);
          return task.status === 'COMPLETED' ? task : undefined;
        }, 'the task to complete');
        assert.equal(t.result, m?.pid);
      });

      it('a custom module whose run returns false is re-spawned in a fresh process that re-reads the config', async () => {
        const file = path.join(db.dir, 'flaky.log');
        project();
        p.writeFile('daemon/flaky.ts', FLAKY_MODULE);
        const withValue = (value: string) => ({ daemonModules: { Flaky: { module: 'daemon/flaky.ts', options: { file, value } } } });
        p.writeConfig(withValue('one'));
        // Flaky never stays "running": it is discarded after each run.
        const { pid } = await p.start(BUILT_IN);
        const parse = () => lines(file).map((l) => ({ pid: Number(l.split(' ')[0]), value: l.split(' ')[1] }));
        await p.waitFor(() => parse().length >= 2, 'two runs of Flaky');
        const seen = parse();
        assert.ok(seen.every((r) => r.value === 'one'));

        p.writeConfig(withValue('two'));
        await p.waitFor(() => parse().filter((r) => r.value === 'two').length >= 2, 'Flaky runs with the new value');
        const runs = parse();
        const pids = runs.map((r) => r.pid);
        assert.equal(new Set(pids).size, pids.length, 'every run is a fresh process');
        const firstTwo = runs.findIndex((r) => r.value === 'two');
        assert.ok(runs.slice(firstTwo).every((r) => r.value === 'two'), `once seen, the new value stays: ${JSON.stringify(runs)}`);
        assert.ok(!seen.some((r) => r.pid === runs[firstTwo]?.pid), 'the new value comes with a new pid');
        const discards = p.logRecords('Main').filter((l) => l.msg === 'module discarded itself' && l.module === 'Flaky');
        assert.ok(discards.length >= 3, 'each discard is logged');
        assert.equal(discards[0]?.reason, 'run returned false');
        const status = await p.status();
        assert.equal(status.daemon?.pid, pid, 'the main daemon is the same');
        assert.equal(
          p.logRecords('Main').filter((l) => l.msg === 'module process ended unexpectedly; starting it again').length,
          0,
          'a discard is not a crash',
        );
      });

      it('stop releases long-running tasks to WAITING without counting the attempt; the next start completes them', async () => {
        const gate = path.join(db.dir, 'gate');
        project({ worker: { stopTimeout: '1s' } });
        await p.start();
        const mill = await p.mill();
        const ids = (await mill.addMany([1, 2, 3].map(() => ({ name: 'record', payload: { log: doneLog, gate } })))).map((t) => t.id);
        await p.waitTasks('STARTED', ids, 'the three tasks STARTED');

        await p.ok('stop');
        for (const t of (await p.tasks()).filter((x) => ids.includes(x.id))) {
          assert.equal(t.status, 'WAITING', `task ${t.id}`);
          assert.equal(t.attempts, 0, `task ${t.id}: the interrupted attempt does not count`);
          assert.equal(t.lockedBy, null);
        }
        assert.deepEqual(lines(doneLog), []);

        writeFileSync(gate, '');
        const worker = moduleOf(await p.start(), 'TaskWorker')?.pid;
        const done = await p.waitTasks('COMPLETED', ids, 'the three tasks COMPLETED');
        for (const t of done) {
          assert.equal(t.attempts, 1);
          assert.equal(t.result, worker);
        }
        assert.deepEqual(lines(doneLog).map((l) => Number(l.split(' ')[0])).sort((a, b) => a - b), ids, 'each ran once');
      });

      it('stop --force returns within about 5 s while a task ignores its signal; the task goes back to WAITING', async () => {
        project({ worker: { stopTimeout: '1 minute' } }, { deaf: DEAF_HANDLER });
        const { pid } = await p.start();
        const id = await p.add('deaf');
        await p.waitFor(async () => (await p.show(id)).status === 'STARTED', 'the task STARTED');
        const r = await p.cli(['stop', '--force']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`taskmill daemon stopped \\(pid ${pid}\\)`));
        // 5 s for the task, plus starting the CLI and the processes' exits.
        assert.ok(r.ms < 10_000, `stop --force took ${r.ms} ms (forceStopTimeout is 5 s)`);
        assert.ok(r.ms > 4_000, `stop --force waited for the task (${r.ms} ms)`);
        assert.deepEqual(p.processes(), []);
        const t = await p.show(id);
        assert.equal(t.status, 'WAITING');
        assert.equal(t.attempts, 0);
        assert.equal(t.lockedBy, null);
      });

      it('a worker with maxTasks 50 is replaced after each 50 of 200 tasks; none is lost or run twice', async () => {
        project({ daemonModules: { TaskWorker: { options: { maxTasks: 50 }, sleep: '100ms' } } });
        const mill = await p.mill();
        const added = await mill.addMany(Array.from({ length: 200 }, () => ({ name: 'record', payload: { log: doneLog } })));
        const ids = added.map((t) => t.id).sort((a, b) => a - b);
        await p.closeMill();
        const { pid } = await p.start();
        const all = await p.waitTasks('COMPLETED', ids, '200 tasks COMPLETED', 90_000);
        assert.ok(all.every((t) => t.status === 'COMPLETED' && t.attempts === 1), 'all COMPLETED at the first attempt');
        const ran = lines(doneLog).map((l) => Number(l.split(' ')[0]));
        assert.equal(ran.length, 200, 'no task ran twice');
        assert.deepEqual([...new Set(ran)].sort((a, b) => a - b), ids, 'every task ran');

        const byPid = new Map<number, number>();
        for (const t of all) byPid.set(Number(t.result), (byPid.get(Number(t.result)) ?? 0) + 1);
        assert.ok(byPid.size >= 4, `at least four worker processes (replaced three times): ${JSON.stringify([...byPid])}`);
        assert.ok([...byPid.values()].every((n) => n <= 50), `none ran more than maxTasks: ${JSON.stringify([...byPid])}`);
        const started = p.logRecords('Main').filter((l) => l.msg === 'module started' && l.module === 'TaskWorker').map((l) => l.pid);
        for (const worker of byPid.keys()) assert.ok(started.includes(worker), `Main.log has 'module started' for ${worker}`);
        assert.equal((await p.status()).daemon?.pid, pid);
      });

      it('a valid config change restarts the modules; an invalid one is logged and ignored', async () => {
        project();
        const first = await p.start();
        const oldPids = new Set(first.modules.map((m) => m.pid));
        // ConfigSync takes its baseline on its first loop; change the file only after it.
        await p.waitStatus((s) => (moduleOf(s.daemon, 'ConfigSync')?.loops ?? 0) >= 1, 'ConfigSync to loop');

        const changedAt = Date.now();
        p.writeConfig({ worker: { concurrency: 4 } });
        const second = await p.waitStatus(
          (s) => s.daemon && s.daemon.modules.length === 4 && s.daemon.modules.every((m) => m.pid !== null && !oldPids.has(m.pid) && m.state === 'running') && s.daemon,
          'every module to restart',
          30_000,
        );
        // A few seconds when the machine is idle; the bound allows for a loaded one.
        const took = Date.now() - changedAt;
        assert.ok(took < 20_000, `the modules restarted ${took} ms after the change`);
        assert.equal(second.pid, first.pid, 'the main daemon stays');
        assert.ok(p.logRecords('ConfigSync').some((l) => /config or the tasks changed/.test(String(l.msg))));
        assert.ok(p.logRecords('Main').some((l) => l.msg === 'config changed: restarting the modules'));

        await p.waitStatus((s) => (moduleOf(s.daemon, 'ConfigSync')?.loops ?? 0) >= 1, 'the new ConfigSync to loop');
        // While the file is broken, the CLI reads a valid copy of it (same folder, so the same var/).
        const copy = p.writeFile('copy.config.json', readFileSync(p.configFile, 'utf8'));
        p.writeConfigText('{ "database": ');
        const error = await p.waitFor(
          () => p.logRecords('ConfigSync').find((l) => l.msg === 'the changed config is invalid; still running on the last good one'),
          'ConfigSync to report the invalid config',
          30_000,
        );
        assert.equal(error.level, 50);
        assert.match(String(error.error), /taskmill\.config\.json is not valid JSON/);
        // Let ConfigSync loop twice more: nothing may restart.
        const loops = moduleOf((await p.status(copy)).daemon, 'ConfigSync')?.loops ?? 0;
        const third = await p.waitStatus(
          (s) => (moduleOf(s.daemon, 'ConfigSync')?.loops ?? 0) >= loops + 2 && s.daemon,
          'ConfigSync to loop twice more',
          30_000,
          copy,
        );
        assert.equal(third.pid, first.pid, 'the daemon still runs');
        assert.deepEqual(third.modules.map((m) => [m.name, m.pid, m.state]), second.modules.map((m) => [m.name, m.pid, 'running']), 'no module was replaced');
        assert.deepEqual(p.processes().sort(), [second.pid, ...second.modules.map((m) => m.pid)].sort(), 'no process came or went');
        // A broken file does not keep the operator from the running daemon: status warns and answers.
        const r = await p.cli(['status']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /warning: .*not valid JSON/);
        assert.match(r.stdout, new RegExp(`running \\(pid ${first.pid}`));
        assert.equal(
          p.logRecords('ConfigSync').filter((l) => l.msg === 'the changed config is invalid; still running on the last good one').length,
          1,
          'the same invalid file is reported once',
        );

        // Fixed again: the daemon is still in charge and answers.
        p.writeConfig({ worker: { concurrency: 4 } });
        assert.equal((await p.waitRunning()).pid, first.pid);
      });

      it('with a config that fails validation, status and stop still reach the daemon in its own varDir', async () => {
        project({ varDir: 'run' });
        const first = await p.start();
        p.writeConfig({ worker: { concurrency: 0 } });
        const r = await p.cli(['status']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /warning: config file .* is invalid: key "worker\.concurrency": got 0;.* Using its varDir "run" to reach the daemon\./);
        assert.match(r.stdout, new RegExp(`running \\(pid ${first.pid}`));
        const stopped = await p.cli(['stop']);
        assert.equal(stopped.code, 0, stopped.stderr);
        assert.match(stopped.stdout, new RegExp(`taskmill daemon stopped \\(pid ${first.pid}\\)`));
        assert.deepEqual(p.processes(), [], 'no process left');
      });

      it('list shows the configured modules; summary shows the running ones', async () => {
        project({
          daemonModules: {
            Echo: { module: 'daemon/echo.ts', options: { greeting: 'hi' } },
            Maintenance: { enabled: false },
          },
        });
        p.writeFile('daemon/echo.ts', ECHO_MODULE);
        const list = await p.ok('list');
        const rows = list.trimEnd().split('\n');
        assert.match(rows[0] ?? '', /^MODULE +SOURCE +ENABLED +OPTIONS$/);
        assert.match(list, /^TaskWorker +built in +yes +\{\}$/m);
        assert.match(list, /^Scheduler +built in +yes +\{\}$/m);
        assert.match(list, /^ConfigSync +built in +yes +\{\}$/m);
        assert.match(list, /^Maintenance +built in +no +\{\}$/m);
        assert.match(list, /^Web +built in +no +\{\}$/m, 'web.enabled: false (the helper\'s) turns it off');
        assert.match(list, new RegExp(`^Echo +${p.path('daemon/echo.ts').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} +yes +\\{"greeting":"hi"\\}$`, 'm'));
        const json = JSON.parse(await p.ok('list', '--json')) as { name: string; module: string | null; enabled: boolean; options: object }[];
        assert.deepEqual(json, [
          { name: 'TaskWorker', module: null, enabled: true, options: {} },
          { name: 'Scheduler', module: null, enabled: true, options: {} },
          { name: 'ConfigSync', module: null, enabled: true, options: {} },
          { name: 'Maintenance', module: null, enabled: false, options: {} },
          { name: 'Web', module: null, enabled: false, options: {} },
          { name: 'Notifier', module: null, enabled: false, options: {} },
          { name: 'Echo', module: p.path('daemon/echo.ts'), enabled: true, options: { greeting: 'hi' } },
        ]);

        const notRunning = await p.cli(['summary']);
        assert.equal(notRunning.code, 3);
        assert.match(notRunning.stdout, /the daemon is not running/);

        const running = ['TaskWorker', 'Scheduler', 'ConfigSync', 'Echo'];
        const status = await p.start(running);
        assert.deepEqual(status.modules.map((m) => m.name), running, 'a disabled module does not run');

        const text = await p.ok('summary');
        assert.match(text, /^TaskWorker: Task worker \(0 tasks done by this process\)\n {2}No task is running\.$/m);
        assert.match(text, /^Scheduler: Recurring schedules\n {2}No schedules\.$/m);
        assert.match(text, /^ConfigSync: Config sync\n {2}Watching\n {2}.*taskmill\.config\.json\n {2}.*tasks$/m);
        assert.match(text, /^Echo: Echo says hi\n {2}Greeting\n {2}hi$/m);
        assert.doesNotMatch(text, /Maintenance/);

        const summaries = JSON.parse(await p.ok('summary', '--json')) as { module: string; summaries: { header: string; rows: unknown[] }[] }[];
        assert.deepEqual(summaries.map((s) => s.module), ['ConfigSync', 'Echo', 'Scheduler', 'TaskWorker']);
        const echo = summaries.find((s) => s.module === 'Echo')?.summaries;
        assert.deepEqual(echo?.map((s) => [s.header, s.rows]), [['Echo says hi', [{ greeting: 'hi' }]]]);
        const worker = summaries.find((s) => s.module === 'TaskWorker')?.summaries[0];
        assert.equal(worker?.header, 'Task worker (0 tasks done by this process)');
        assert.deepEqual(worker?.rows, []);
      });

      it('watchdog starts the daemon when it is not running and leaves a running one alone', async () => {
        project();
        const first = await p.cli(['watchdog']);
        assert.equal(first.code, 0, first.stderr);
        const pid = Number(/daemon started \(pid (\d+)\)/.exec(first.stdout)?.[1]);
        assert.ok(pid > 0, first.stdout);
        const status = await p.waitRunning();
        assert.equal(status.pid, pid);

        const second = await p.cli(['watchdog']);
        assert.equal(second.code, 0, second.stderr);
        assert.equal(second.stdout, `the daemon is running (pid ${pid})\n`);
        const again = await p.status();
        assert.equal(again.daemon?.pid, pid);
        assert.deepEqual(again.daemon?.modules.map((m) => m.pid), status.modules.map((m) => m.pid), 'nothing was restarted');
        assert.equal(readFileSync(p.pidFile, 'utf8').trim(), String(pid));
      });
    });
  }
});
