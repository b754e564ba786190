// The CLI as a real process (dist/cli/main.js, built by `npm test`): what it prints for people and
// for scripts, its exit codes, and its one-line errors.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { TaskJson } from '../../src/cli/output.js';
import { assertError, assertOk, type CliProcess, runCli, startCli } from '../helpers/cli.js';
import { ENGINES, type TempDatabase, tempSqlite } from '../helpers/engines.js';
import { eventually } from '../helpers/fixtures.js';

const TASK_KEYS = [
  'id', 'name', 'payload', 'queue', 'priority', 'status', 'runAt', 'attempts', 'maxAttempts', 'backoff', 'timeoutMs',
  'prerequisites', 'uniqueKey', 'note', 'result', 'output', 'error', 'errorStack', 'createdAt', 'startedAt',
  'finishedAt', 'lockedBy', 'leaseExpiresAt', 'cancelRequested', 'scheduleName', 'scheduledFor', 'progress',
].sort();

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** A fresh project made by `taskmill init` on a fresh database. */
async function project(db: TempDatabase) {
  const env = { TASKMILL_DATABASE: db.url };
  const cli = (...args: string[]) => runCli(args, { cwd: db.dir, env });
  const start = (...args: string[]) => startCli(args, { cwd: db.dir, env });
  assertOk(await cli('init'));
  const show = async (id: string) => JSON.parse(assertOk(await cli('show', id, '--json'))) as TaskJson;
  const add = async (...args: string[]) => assertOk(await cli('add', ...args)).trim();
  return { dir: db.dir, cli, start, show, add };
}

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`cli: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let db: TempDatabase;
    let p: Awaited<ReturnType<typeof project>>;
    let worker: CliProcess | undefined;

    beforeEach(async () => {
      db = await engine.create();
      p = await project(db);
    });
    afterEach(async () => {
      await worker?.kill();
      worker = undefined;
      await db.drop();
    });

    it('add prints only the new id; show --json returns every field', async () => {
      const before = Date.now();
      const out = assertOk(await p.cli('add', 'hello', '--payload', '{"name":"Ada"}', '--in', '1 hour', '--priority', '5',
        '--queue', 'mail', '--unique', 'k1', '--max-attempts', '4', '--note', 'first one'));
      assert.match(out, /^\d+\n$/);
      const id = out.trim();
      const t = await p.show(id);
      assert.deepEqual(Object.keys(t).sort(), TASK_KEYS);
      assert.equal(t.id, Number(id));
      assert.equal(t.name, 'hello');
      assert.deepEqual(t.payload, { name: 'Ada' });
      assert.equal(t.status, 'WAITING');
      assert.equal(t.queue, 'mail');
      assert.equal(t.priority, 5);
      assert.equal(t.maxAttempts, 4);
      assert.equal(t.attempts, 0);
      assert.equal(t.uniqueKey, 'k1');
      assert.equal(t.note, 'first one');
      assert.equal(t.lockedBy, null);
      assert.deepEqual([t.prerequisites, t.output, t.result, t.error], [[], [], null, null]);
      assert.match(t.createdAt, ISO);
      assert.match(t.runAt, ISO);
      const delay = Date.parse(t.runAt) - before;
      assert.ok(delay > 3_500_000 && delay < 3_700_000, `runAt is about an hour ahead (${delay} ms)`);

      assert.equal(await p.add('hello', '--unique', 'k1'), id, 'a live task with the key is returned');
      writeFileSync(path.join(p.dir, 'payload.json'), '{"name":"from a file"}');
      const second = await p.add('hello', '--payload', '@payload.json', '--after', id);
      assert.deepEqual((await p.show(second)).payload, { name: 'from a file' });
      assert.deepEqual((await p.show(second)).prerequisites, [Number(id)]);

      const human = assertOk(await p.cli('show', id));
      assert.match(human, /^status +WAITING$/m);
      assert.match(human, /^note +first one$/m);
    });

    it('tasks lists newest first as a table or JSON; --status filters', async () => {
      const a = await p.add('hello');
      const b = await p.add('hello', '--note', 'to cancel');
      assertOk(await p.cli('cancel', b));
      const all = JSON.parse(assertOk(await p.cli('tasks', '--json'))) as TaskJson[];
      assert.deepEqual(all.map((t) => t.id), [Number(b), Number(a)]);
      assert.match(all[0]?.createdAt ?? '', ISO);
      const cancelled = JSON.parse(assertOk(await p.cli('tasks', '--status', 'cancelled', '--json'))) as TaskJson[];
      assert.deepEqual(cancelled.map((t) => [t.id, t.status]), [[Number(b), 'CANCELLED']]);
      assert.deepEqual(JSON.parse(assertOk(await p.cli('tasks', '--name', 'nothing', '--json'))), []);

      const lines = assertOk(await p.cli('tasks')).trimEnd().split('\n');
      assert.equal(lines.length, 3);
      assert.match(lines[0] ?? '', /^ID +NAME +STATUS +QUEUE +PRI +ATTEMPTS +RUN AT +CREATED +PROGRESS +NOTE \/ ERROR$/);
      assert.match(lines[1] ?? '', /hello +CANCELLED +default +0 +0\/3 .* to cancel$/);
      const column = (line: string | undefined) => line?.indexOf('default');
      assert.equal(column(lines[1]), column(lines[2]), 'columns line up');
      assertError(await p.cli('tasks', '--status', 'BOGUS'), 2, /unknown status "BOGUS"/);
    });

    it('cancel and retry print the id and the new status', async () => {
      const id = await p.add('hello', '--in', '1 hour');
      assert.equal(assertOk(await p.cli('cancel', id)), `${id} CANCELLED\n`);
      assert.equal(assertOk(await p.cli('retry', id)), `${id} WAITING\n`);
      assertError(await p.cli('retry', id), 2, /cannot retry task #\d+: it is WAITING/);
      assertError(await p.cli('cancel', '9999'), 1, /task #9999 does not exist/);
      assertError(await p.cli('show', '9999'), 1, /task #9999 does not exist/);
    });

    it('refuses an unknown task name (listing the known ones) and an unknown prerequisite', async () => {
      assertError(await p.cli('add', 'helo'), 2, /unknown task "helo".*Known tasks: hello/);
      assertError(await p.cli('add', 'hello', '--after', '9999'), 2, /unknown prerequisite task #9999/);
      assert.deepEqual(JSON.parse(assertOk(await p.cli('tasks', '--json'))), []);
    });

    it('work runs a task added by add, and exits 0 on SIGTERM', async () => {
      const id = await p.add('hello', '--payload', '{"name":"Ada"}');
      worker = p.start('work', '--concurrency', '2');
      await worker.waitForStdout(/^taskmill worker \S+ ready: 2 slots, tasks from .*tasks, database /m);
      const t = await eventually(async () => {
        const task = await p.show(id);
        return task.status === 'COMPLETED' ? task : undefined;
      }, 20_000, `task ${id} COMPLETED`);
      assert.deepEqual(t.result, { greeting: 'Hello, Ada!' });
      assert.match(t.output.join('\n'), /saying hello to Ada/);
      assert.match(t.finishedAt ?? '', ISO);

      worker.child.kill('SIGTERM');
      const r = await within(worker.exited, 5_000, 'work to exit after SIGTERM');
      assert.equal(r.code, 0, r.stderr);
    });

    it('work fires config schedules and applies a changed config file at once; an invalid one is ignored', async () => {
      const configFile = path.join(p.dir, 'taskmill.config.json');
      const write = (schedules: unknown[]) =>
        writeFileSync(configFile, JSON.stringify({ tasksDir: 'tasks', worker: { pollInterval: '50ms' }, schedules }));
      write([{ name: 'greet', task: 'hello', every: '1s', overlap: 'allow', payload: { name: 'cron' } }]);
      worker = p.start('work');
      await worker.waitForStdout(/schedules from the config: added greet/);
      await eventually(async () => {
        const done = JSON.parse(assertOk(await p.cli('tasks', '--json', '--status', 'COMPLETED'))) as TaskJson[];
        return done.some((t) => t.scheduleName === 'greet' && t.scheduledFor !== null) ? true : undefined;
      }, 20_000, 'a scheduled task COMPLETED');

      writeFileSync(configFile, '{ "schedules": [ ');
      await eventually(() => (/the changed config is invalid, schedules unchanged/.test(worker!.stderr()) ? true : undefined), 10_000);
      write([]);
      await worker.waitForStdout(/schedules from the config: removed greet/);
      assert.deepEqual(JSON.parse(assertOk(await p.cli('schedules', '--json'))), []);
    });

    it('work: a second signal forces the stop and releases what still runs', async () => {
      writeFileSync(path.join(p.dir, 'tasks', 'deaf.ts'), 'export default () => new Promise(() => {});\n');
      const config = { worker: { stopTimeout: '1 minute', forceStopTimeout: '300ms', pollInterval: '50ms' } };
      writeFileSync(path.join(p.dir, 'taskmill.config.json'), JSON.stringify(config));
      const id = await p.add('deaf');
      worker = p.start('work');
      await worker.waitForStdout(/ready/);
      await eventually(async () => ((await p.show(id)).status === 'STARTED' ? true : undefined), 20_000, 'STARTED');
      worker.child.kill('SIGTERM');
      await worker.waitForStdout(/stopping/);
      worker.child.kill('SIGTERM');
      const r = await within(worker.exited, 5_000, 'work to exit after a second SIGTERM');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /released 1 unfinished task/);
      const t = await p.show(id);
      assert.equal(t.status, 'WAITING');
      assert.equal(t.lockedBy, null);
    });
  });
}

describe('cli: setup, usage and failures', () => {
  let db: TempDatabase;
  const cli = (args: string[], env: Record<string, string> = { TASKMILL_DATABASE: db.url }) =>
    runCli(args, { cwd: db.dir, env });

  beforeEach(async () => {
    db = await tempSqlite();
  });
  afterEach(async () => {
    await db.drop();
  });

  it('init creates the config and an example handler, and refuses a second time', async () => {
    const out = assertOk(await cli(['init']));
    assert.match(out, /created taskmill\.config\.json/);
    assert.match(out, /created tasks\/hello\.ts/);
    assert.match(out, /taskmill work/);
    const configFile = path.join(db.dir, 'taskmill.config.json');
    assert.deepEqual(JSON.parse(readFileSync(configFile, 'utf8')), {
      database: 'sqlite:var/taskmill.db',
      tasksDir: 'tasks',
      varDir: 'var',
      worker: { concurrency: 10 },
    });
    const hello = readFileSync(path.join(db.dir, 'tasks', 'hello.ts'), 'utf8');
    assert.match(hello, /export default async function/);
    assert.match(hello, /export const options/);

    writeFileSync(configFile, '{"worker": {"concurrency": 3}}');
    assertError(await cli(['init']), 2, /taskmill\.config\.json already exists/);
    assert.equal(readFileSync(configFile, 'utf8'), '{"worker": {"concurrency": 3}}', 'left untouched');
  });

  it('the database named by init works without TASKMILL_DATABASE', async () => {
    assertOk(await cli(['init'], {}));
    // A fresh database: migrate reports what it applied, then that nothing is left.
    assert.match(assertOk(await cli(['migrate'], {})), /schema version 0 → [1-9]\d*\n/);
    assert.match(assertOk(await cli(['migrate'], {})), /schema version ([1-9]\d*) → \1 \(up to date\)/);
    assert.match(assertOk(await cli(['add', 'hello'], {})), /^1\n$/);
    assert.ok(existsSync(path.join(db.dir, 'var', 'taskmill.db')));
    assert.match(assertOk(await cli(['migrate'], {})), /schema version \d+ → \d+/);
  });

  it('bad input exits 2 with one line naming the problem', async () => {
    assertOk(await cli(['init']));
    const cases: [string[], RegExp][] = [
      [['add', 'hello', '--payload', '{to: 1}'], /--payload is not valid JSON: .*; pass a JSON object such as/],
      [['add', 'hello', '--payload', '@missing.json'], /cannot read --payload file missing\.json/],
      [['add', 'hello', '--in', '5 parsecs'], /invalid --in "5 parsecs": write a number with a unit/],
      [['add', 'hello', '--in', '5s', '--at', '2030-01-01T00:00:00Z'], /either --in or --at/],
      [['add', 'hello', '--at', 'tomorrow'], /invalid --at "tomorrow": use an ISO-8601 time/],
      [['add', 'hello', '--priority', 'high'], /invalid --priority "high": use a whole number/],
      [['add', 'hello', '--max-attempts', '0'], /invalid --max-attempts "0"/],
      [['add', 'hello', '--after', 'x'], /invalid --after id "x"/],
      [['add', 'hello', '--frobnicate'], /unknown option '--frobnicate'/],
      [['add'], /missing required argument 'name'/],
      [['show', 'abc'], /invalid task id "abc"/],
      [['tasks', '--limit', '0'], /invalid --limit "0"/],
      [['work', '--concurrency', 'lots'], /invalid --concurrency "lots"/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [[], /no command given/],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(args)));
    results.forEach((r, i) => assertError(r, 2, cases[i]?.[1] ?? /./));
  });

  it('an unreachable database exits 1 quickly', async () => {
    const r = await cli(['tasks'], { TASKMILL_DATABASE: 'postgres://postgres@127.0.0.1:1/none' });
    assertError(r, 1, /cannot open the database postgres:\/\/postgres@127\.0\.0\.1:1\/none/);
    assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
  });

  it('a broken config file exits 2 naming the file or the key', async () => {
    const configFile = path.join(db.dir, 'taskmill.config.json');
    writeFileSync(configFile, '{"database": "sqlite:var/t.db",');
    assertError(await cli(['tasks'], {}), 2, /taskmill\.config\.json is not valid JSON/);
    writeFileSync(configFile, JSON.stringify({ worker: { concurrency: 'lots' } }));
    assertError(await cli(['tasks'], {}), 2, /key "worker\.concurrency": got "lots"/);
    assertError(await cli(['--config', 'nowhere.json', 'tasks'], {}), 2, /nowhere\.json does not exist/);
  });

  it('--help and --version print to stdout and exit 0', async () => {
    const help = assertOk(await cli(['--help']));
    for (const command of ['init', 'migrate', 'add', 'tasks', 'show', 'cancel', 'retry', 'work']) {
      assert.match(help, new RegExp(`^  ${command}\\b`, 'm'));
    }
    assert.match(assertOk(await cli(['add', '--help'])), /--payload <json>/);
    assert.match(assertOk(await cli(['--version'])), /^\d+\.\d+\.\d+\n$/);
  });
});

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
