// The daemon's edges, with real processes: starting is exclusive, a pid file naming somebody else's
// process is not ours, the control socket is private and refuses bad requests, module processes
// do not inherit the database URL, and daemon.out is rotated without leaking a descriptor per
// re-spawn. What does not depend on the engine runs on SQLite only; the secrets test on both.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { alive, DaemonProject, lines, openFds, until, waitFor } from '../helpers/daemon.js';
import { ENGINES, type TempDatabase } from '../helpers/engines.js';

/** Every built-in module off: these tests are about the main daemon, and fewer processes start faster. */
const NO_BUILT_INS = {
  TaskWorker: { enabled: false },
  Scheduler: { enabled: false },
  ConfigSync: { enabled: false },
  Maintenance: { enabled: false },
  Web: { enabled: false },
};

/** Writes what its process (and a child it spawns) can see of the environment to options.file. */
const ENV_MODULE = `
import { spawnSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

export const settings = { sleep: '1 hour' };

export default function envRecorder(ctx) {
  return {
    async run() {
      const mill = await ctx.mill();
      await mill.store.ping();
      const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(require("node:fs").readFileSync("/proc/self/environ", "utf8") + "\\\\n" + JSON.stringify(process.env))'], { encoding: 'utf8' });
      const record = {
        env: process.env,
        environ: readFileSync('/proc/self/environ', 'utf8'),
        child: child.stdout,
        database: ctx.config.database,
        clientDatabase: mill.config.database,
      };
      const file = String(ctx.options.file);
      writeFileSync(file + '.tmp', JSON.stringify(record));
      renameSync(file + '.tmp', file);
      return true;
    },
  };
}
`;

/** Prints a line and discards itself at once, without waiting for the database. */
const DISCARD_MODULE = `
export default {
  preRun: () => true,
  run() {
    console.log('discarding ' + process.pid);
    return false;
  },
};
`;

interface RawAnswer {
  text: string;
  /** The daemon closed the connection (within the deadline). */
  closed: boolean;
}

/** Sends `data` on a plain socket and collects what comes back until the daemon closes it. */
function rawRequest(socket: string, data: string, timeoutMs = 15_000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socket);
    let text = '';
    const timer = setTimeout(() => {
      conn.destroy();
      resolve({ text, closed: false });
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(data));
    conn.on('data', (d: string) => (text += d));
    // The daemon may close while we still write the long line: EPIPE/ECONNRESET, then 'close'.
    conn.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') {
        clearTimeout(timer);
        reject(err);
      }
    });
    conn.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
  });
}

const day = (d: Date) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;

const availability = await Promise.all(ENGINES.map((e) => e.available()));

describe('daemon edges', { concurrency: 1 }, () => {
  let db: TempDatabase;
  let p: DaemonProject | undefined;
  /** Unrelated processes a test started: killed by pid at the end. */
  let others: ChildProcess[] = [];

  const sleeper = (): number => {
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    others.push(child);
    assert.ok(child.pid && alive(child.pid), 'sleep 60 runs');
    return child.pid;
  };

  afterEach(async () => {
    const problems = p ? await p.cleanup() : [];
    p = undefined;
    for (const child of others) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await until(() => others.every((c) => !c.pid || !alive(c.pid)), 10_000);
    others = [];
    await db.drop();
    if (problems.length > 0) throw new Error(`cleanup: ${problems.join('; ')}`);
  });

  describe('the main daemon (sqlite)', () => {
    const sqlite = ENGINES[0];
    beforeEach(async () => {
      db = await (sqlite as (typeof ENGINES)[number]).create();
    });
    const project = (config: Record<string, unknown> = {}) => {
      p = new DaemonProject({ dir: db.dir, database: db.url, config: { daemonModules: NO_BUILT_INS, ...config } });
      return p;
    };

    it('two starts at the same moment leave one daemon; the other exits 1 naming its pid', async () => {
      const q = project();
      const results = await Promise.all([q.cli(['start'], 60_000), q.cli(['start'], 60_000)]);
      const report = results.map((r) => `exit ${r.code}\n  stdout: ${r.stdout}  stderr: ${r.stderr}`).join('\n');
      const won = results.filter((r) => r.code === 0);
      const lost = results.filter((r) => r.code !== 0);
      assert.equal(won.length, 1, `exactly one start succeeds:\n${report}${q.diagnostics()}`);
      const pid = Number(/daemon started \(pid (\d+)\)/.exec(won[0]?.stdout ?? '')?.[1]);
      assert.ok(pid > 0, report);
      q.seenPids.add(pid);
      assert.equal(lost[0]?.code, 1, report);
      assert.equal(lost[0]?.stdout, '');
      assert.match(lost[0]?.stderr ?? '', new RegExp(`^taskmill: the daemon is already running \\(pid ${pid}\\); stop it first`));

      assert.equal((await q.waitRunning([])).pid, pid);
      assert.equal(q.pidFromFile(), pid);
      // The loser's daemon process (if it got that far) is gone: one taskmill process in the project.
      const one = await until(() => q.processes().length === 1, 20_000);
      assert.ok(one, `one daemon process, found ${q.processes().join(', ')}`);
      assert.deepEqual(q.processes(), [pid]);
    });

    it('a pid file naming an unrelated live process neither blocks start nor gets it signalled by stop', async () => {
      const q = project();
      // A daemon that crashed (SIGKILL) leaves its pid file and socket behind …
      const first = await q.start([]);
      process.kill(first.pid, 'SIGKILL');
      assert.ok(await until(() => q.processes().length === 0, 20_000), 'the killed daemon is gone');
      assert.ok(existsSync(path.join(q.dir, 'var', 'daemon', 'control.sock')), 'its socket file is left behind');
      // … and its pid is reused by a process that is none of ours.
      const other = sleeper();
      writeFileSync(q.pidFile, `${other}\n`);

      const status = await q.cli(['status']);
      assert.equal(status.code, 3, `status: not running\n${status.stdout}${status.stderr}`);
      const stop = await q.cli(['stop']);
      assert.equal(stop.code, 0, stop.stderr);
      assert.equal(stop.stdout, `the daemon is not running (removed a stale pid file: pid ${other} is not this installation's daemon)\n`);
      assert.ok(alive(other), 'stop did not signal the unrelated process');
      assert.ok(!existsSync(q.pidFile), 'the stale pid file is removed');

      writeFileSync(q.pidFile, `${other}\n`);
      const r = await q.cli(['start']);
      assert.equal(r.code, 0, `start: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, new RegExp(`removed a stale pid file \\(pid ${other} is not this installation's daemon\\)`));
      const pid = Number(/daemon started \(pid (\d+)\)/.exec(r.stdout)?.[1]);
      q.seenPids.add(pid);
      assert.equal((await q.waitRunning([])).pid, pid);
      assert.equal(q.pidFromFile(), pid);
      assert.match(await q.ok('stop'), new RegExp(`taskmill daemon stopped \\(pid ${pid}\\)`));
      assert.ok(alive(other), 'the unrelated process still runs');
    });

    it('the socket is the owner\'s alone; a long line, garbage and an unknown command get an error and are closed', async () => {
      const q = project();
      const dir = path.join(q.dir, 'var', 'daemon');
      // A folder left open by an earlier install is closed down at start.
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o777);
      const { pid } = await q.start([]);
      const socket = path.join(dir, 'control.sock');
      assert.equal((statSync(dir).mode & 0o777).toString(8), '700', 'varDir/daemon is 0700');
      assert.equal((statSync(socket).mode & 0o777).toString(8), '600', 'the socket is 0600');

      const answers: [string, string, RegExp][] = [
        ['a line over 64 KiB', 'x'.repeat(70 * 1024), /request line longer than 65536 bytes/],
        ['garbage', 'hello daemon\n', /bad request: not a JSON line/],
        ['an unknown command', '{"cmd":"reboot"}\n', /unknown command "reboot"; expected one of status, summary, identity/],
        ['no command', '{"hello":1}\n', /unknown command undefined/],
      ];
      for (const [what, data, error] of answers) {
        const a = await rawRequest(socket, data);
        assert.ok(a.closed, `${what}: the daemon closes the connection (got ${JSON.stringify(a.text.slice(0, 200))})`);
        assert.match(a.text, /^[^\n]*\n$/, `${what}: one line`);
        const answer = JSON.parse(a.text) as { error?: string };
        assert.match(String(answer.error), error, what);
        assert.equal((await q.status()).daemon?.pid, pid, `${what}: the daemon is still up`);
      }
      const good = await rawRequest(socket, '{"cmd":"identity"}\n');
      assert.ok(good.closed);
      assert.equal((JSON.parse(good.text) as { pid: number }).pid, pid);
    });

    it('daemon.out is rotated like the logs, and re-spawning a module leaks no descriptor', async () => {
      const q = project({ daemonModules: { ...NO_BUILT_INS, Discard: { module: 'daemon/discard.mjs' } } });
      q.writeFile('daemon/discard.mjs', DISCARD_MODULE);
      // daemon.out from two days ago, and a rotated one past the retention (7 days).
      mkdirSync(q.logDir, { recursive: true });
      const out = path.join(q.logDir, 'daemon.out');
      writeFileSync(out, 'a line from before\n');
      const then = new Date(Date.now() - 2 * 86_400_000);
      utimesSync(out, then, then);
      const ancient = path.join(q.logDir, 'daemon.2000-01-01.out');
      writeFileSync(ancient, 'very old\n');

      const { pid } = await q.start([]);
      const discards = () => lines(out).filter((l) => l.startsWith('discarding ')).length;
      await q.waitFor(() => discards() >= 3, 'three discards');
      const before = openFds(pid);
      const target = discards() + 30;
      await q.waitFor(() => discards() >= target, '30 more discards', 120_000);
      const after = openFds(pid);
      // At either count a module may be alive (its IPC channel and two pipes) and the one before
      // it not yet reaped (two pipes); a descriptor lost per re-spawn would add 30.
      assert.ok(after - before <= 8, `the daemon had ${before} descriptors open, ${after} after 30 re-spawns`);

      assert.equal(readFileSync(path.join(q.logDir, `daemon.${day(then)}.out`), 'utf8'), 'a line from before\n', 'yesterday\'s lines were moved aside');
      assert.ok(!lines(out).includes('a line from before'));
      assert.ok(!existsSync(ancient), 'a rotated file past the retention is deleted');
      const pids = new Set(lines(out).filter((l) => l.startsWith('discarding ')).map((l) => l.split(' ')[1]));
      assert.ok(pids.size >= 30, 'each line comes from a fresh process');
      assert.equal((await q.status()).daemon?.pid, pid);
    });
  });

  for (const [i, engine] of ENGINES.entries()) {
    describe(`module environment: ${engine.name}`, { skip: availability[i] ? false : 'PostgreSQL not reachable' }, () => {
      beforeEach(async () => {
        db = await engine.create();
      });

      it('module processes and what they start never see the database URL or its password', async () => {
        const secret = `pw-${Math.random().toString(36).slice(2, 12)}`;
        let secretUrl: string;
        if (engine.name === 'postgres') {
          // Trust authentication accepts any password: the URL works and carries a secret.
          const u = new URL(db.url);
          u.password = secret;
          secretUrl = u.toString();
        } else {
          secretUrl = `sqlite:${path.join(db.dir, 'var', `${secret}.db`)}`;
        }
        const file = path.join(db.dir, 'env.json');
        const q = new DaemonProject({
          dir: db.dir,
          database: db.url,
          config: { daemonModules: { ...NO_BUILT_INS, EnvRecorder: { module: 'daemon/env.ts', options: { file } } } },
        });
        p = q;
        q.writeFile('daemon/env.ts', ENV_MODULE);
        await q.start(['EnvRecorder'], { TASKMILL_DATABASE: secretUrl });
        const record = await waitFor(
          () => (existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : undefined),
          'the module to record its environment',
        );
        // The module works on the database TASKMILL_DATABASE names: it came over IPC.
        assert.equal(record.database, secretUrl);
        assert.equal(record.clientDatabase, secretUrl);
        const env = record.env as Record<string, string>;
        assert.equal(env.TASKMILL_DATABASE, undefined);
        assert.equal(env.TASKMILL_GOOD_CONFIG, undefined);
        for (const [where, text] of [
          ['process.env', JSON.stringify(env)],
          ['/proc/self/environ', String(record.environ)],
          ["a child process's environment", String(record.child)],
        ] as const) {
          assert.ok(text.length > 0, `${where} was recorded`);
          assert.ok(!text.includes(secret), `${where} holds the password`);
          assert.ok(!text.includes(secretUrl), `${where} holds TASKMILL_DATABASE`);
          assert.ok(!text.includes(db.url), `${where} holds the config's database URL`);
        }
      });
    });
  }
});
