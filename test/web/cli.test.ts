// The web's commands as real processes (built CLI): users, tokens, `taskmill web`, and the Web daemon
// module: `taskmill start --foreground` (npm start) prints the address and the one-time link, status
// shows the address, and a taken port is retried with back-off instead of crashing the module.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { assertError, assertOk, CLI_MAIN, startCli, type CliProcess } from '../helpers/cli.js';
import { DaemonProject, lines } from '../helpers/daemon.js';
import { tempSqlite, type TempDatabase } from '../helpers/engines.js';

const NO_OTHER_MODULES = { TaskWorker: { enabled: false }, Scheduler: { enabled: false }, ConfigSync: { enabled: false }, Maintenance: { enabled: false } };

describe('web commands', () => {
  let db: TempDatabase;
  let p: DaemonProject;
  const running: CliProcess[] = [];
  let blocker: Server | null = null;
  const project = async (config: Record<string, unknown> = {}) => {
    db = await tempSqlite();
    p = new DaemonProject({ dir: db.dir, database: db.url, config: { web: { enabled: true, port: 0 }, ...config } });
    return p;
  };
  afterEach(async () => {
    for (const c of running.splice(0)) await c.kill();
    await new Promise<void>((r) => (blocker ? blocker.close(() => r()) : r()));
    blocker = null;
    await p?.cleanup();
    await db?.drop();
  });
  const withStdin = (args: string[], input: string) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TASKMILL_')));
    const r = spawnSync(process.execPath, [CLI_MAIN, ...args], { cwd: p.dir, input, env, encoding: 'utf8' });
    return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: 0 };
  };

  it('adds, lists and removes users; creates, lists and revokes tokens; refuses bad input with exit 2', async () => {
    await project();
    assertOk(withStdin(['user', 'add', 'ada', '--role', 'admin', '--password-stdin'], 'a long password\n'));
    assertError(withStdin(['user', 'add', 'ada', '--role', 'admin', '--password-stdin'], 'a long password\n'), 2, /exists/);
    assertError(withStdin(['user', 'add', 'bob', '--role', 'root', '--password-stdin'], 'a long password\n'), 2, /invalid role "root"/);
    assertError(withStdin(['user', 'add', 'bob', '--role', 'viewer', '--password-stdin'], 'short\n'), 2, /at least 8/);
    assertError(withStdin(['user', 'add', '../bob', '--role', 'viewer', '--password-stdin'], 'a long password\n'), 2, /invalid user name/);
    assert.match(await p.ok('users'), /^ada +admin +\d{4}-/m);
    const token = (await p.ok('token', 'create', '--role', 'viewer', '--name', 'grafana')).trim();
    assert.match(token, /^tm_[A-Za-z0-9_-]{43}$/);
    const list = await p.ok('tokens');
    assert.match(list, /^ *1 +grafana +viewer /m);
    assert.equal(list.includes(token), false, 'a token is shown once, never listed');
    assert.match(await p.ok('token', 'revoke', '1'), /token 1 revoked/);
    assertError(await p.cli(['token', 'revoke', '1']), 2, /no token 1/);
    // Neither the password nor the token is anywhere in the project: database, WAL, logs.
    const everything = filesUnder(p.dir).map((f) => readFileSync(f).toString('latin1')).join('\n');
    assert.equal(everything.includes('a long password'), false, 'the password is stored or logged in clear');
    assert.equal(everything.includes(token), false, 'the token is stored or logged in clear');
    assert.match(await p.ok('user', 'rm', 'ada'), /user ada removed/);
    assertError(await p.cli(['user', 'rm', 'ada']), 2, /no user named "ada"/);
    assert.match(await p.ok('users'), /no users/);
  });

  it('taskmill web serves in the foreground and prints its address and the one-time link', async () => {
    await project();
    const web = startCli(['web', '--port', '0'], { cwd: p.dir });
    running.push(web);
    await web.waitForStdout(/log in once with (\S+)/);
    const url = /serving on (\S+)/.exec(web.stdout())?.[1] as string;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const link = /log in once with (\S+)/.exec(web.stdout())?.[1] as string;
    assert.ok(link.startsWith(`${url}login/link/`));
    assert.equal((await fetch(`${url}healthz`)).status, 200);
    assert.equal((await fetch(link, { redirect: 'manual' })).status, 303);
    web.child.kill('SIGTERM');
    assert.equal((await web.exited).code, 0);
  });

  it('taskmill start --foreground (npm start) prints the address and the link; status shows the address', async () => {
    await project({ daemonModules: NO_OTHER_MODULES });
    const daemon = startCli(['start', '--foreground'], { cwd: p.dir });
    running.push(daemon);
    await daemon.waitForStdout(/log in once with (\S+)/, 60_000);
    const url = /admin page and API on (\S+)/.exec(daemon.stdout())?.[1] as string;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal((await fetch(`${url}healthz`)).status, 200);
    const status = await p.status();
    assert.equal(status.daemon?.web, url);
    assert.match(await p.ok('status'), new RegExp(`admin page and API: ${url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.ok(lines(`${p.logDir}/Main.log`).some((l) => l.includes('/login/link/')), 'the link is in the Main log');
    daemon.child.kill('SIGTERM');
    assert.equal((await daemon.exited).code, 0);
  });

  it('a taken port is logged clearly and retried with back-off; the module serves once it is free', async () => {
    blocker = createServer();
    const port = await new Promise<number>((resolve) => blocker?.listen(0, '127.0.0.1', () => resolve((blocker?.address() as { port: number }).port)));
    await project({ daemonModules: NO_OTHER_MODULES, web: { enabled: true, port } });
    await p.start(['Web']);
    await p.waitFor(() => p.logRecords('Web').some((r) => /port \d+ on 127\.0\.0\.1 is taken/.test(String(r.msg))), 'the EADDRINUSE error in Web.log');
    await new Promise<void>((r) => blocker?.close(() => r()));
    blocker = null;
    const s = await p.waitStatus((st) => (st.daemon?.web ? st.daemon : undefined), 'the Web module serving', 90_000);
    assert.equal(s.web, `http://127.0.0.1:${port}/`);
    const web = s.modules.find((m) => m.name === 'Web');
    assert.equal(web?.restarts, 0, 'no crash loop: the module process stayed up');
  });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = path.join(dir, e);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}
