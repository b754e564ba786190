// SQLite is synchronous (better-sqlite3): a write that waited for another process's lock inside the
// call would freeze the whole event loop. These tests hold the write lock from another process and
// watch the worker's event loop, its idle behaviour and the signal files between processes.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterEach, describe, it } from 'node:test';
import type { StoreEvent } from '../../src/store/store.js';
import { ENGINES } from '../helpers/engines.js';
import { eventually } from '../helpers/fixtures.js';
import { makeProject, type Project } from '../helpers/project.js';

const sqlite = ENGINES.find((e) => e.name === 'sqlite')!;

const LOCKER = `
  const Database = require('better-sqlite3');
  const db = new Database(process.argv[1]);
  db.exec('BEGIN IMMEDIATE');
  db.prepare("UPDATE taskmill_meta SET value = value WHERE key = 'schema_version'").run();
  process.stdout.write('locked\\n');
  setTimeout(() => { db.exec('COMMIT'); db.close(); process.stdout.write('released\\n'); process.exit(0); }, Number(process.argv[2]));
`;

/** Another process that holds the database's write lock for `ms`; resolves once it holds it. */
async function holdWriteLock(file: string, ms: number): Promise<{ child: ChildProcess; released: Promise<unknown> }> {
  const child = spawn(process.execPath, ['-e', LOCKER, file, String(ms)], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const released = once(child, 'exit');
  await eventually(() => (out.includes('locked') ? true : undefined), 10_000, 'the lock holder');
  return { child, released };
}

describe('SQLite under another process\'s write lock', () => {
  let p: Project;
  const children: ChildProcess[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await p.close();
  });

  it('keeps the event loop running (delay p99 under 50 ms), handlers and timers going, and loses nothing', async () => {
    p = await makeProject(sqlite, {
      tick: `export default (payload) => new Promise((r) => setTimeout(() => r(payload.n), 50));`,
      // Runs across the lock: counts how often its own 10 ms timer fired in 5 s.
      long: `export default () => new Promise((r) => { let n = 0; const i = setInterval(() => n++, 10); setTimeout(() => { clearInterval(i); r(n); }, 5000); });`,
    });
    const escaped: unknown[] = [];
    const onError = (err: unknown) => escaped.push(err);
    process.on('uncaughtException', onError);
    process.on('unhandledRejection', onError);
    const worker = p.mill.worker({ concurrency: 6 });
    try {
      // A 5 s task, then 400 tasks of 50 ms at 5 at once: about 4 s of work, so the lock falls in the middle of the drain.
      const long = await p.mill.add('long', {}, { priority: 10 });
      await p.mill.addMany(Array.from({ length: 400 }, (_, n) => ({ name: 'tick', payload: { n } })));
      worker.start();
      await eventually(async () => ((await p.mill.store.counts()).COMPLETED > 20 ? true : undefined), 20_000, 'the drain to start');
      const file = p.db.url.slice('sqlite:'.length);
      const delay = monitorEventLoopDelay({ resolution: 5 });
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 10);
      const lock = await holdWriteLock(file, 3_000);
      children.push(lock.child);
      assert.ok(worker.processed < 400, 'the lock is taken while tasks remain');
      delay.enable();
      await lock.released;
      delay.disable();
      clearInterval(ticker);
      const p99 = delay.percentile(99) / 1e6;
      assert.ok(p99 < 50, `event-loop delay p99 ${p99.toFixed(1)} ms while the lock was held`);
      assert.ok(ticks > 100, `timers kept firing (${ticks} ticks of 10 ms in 3 s)`);
      assert.equal((await p.mill.get(long.id))?.status, 'STARTED', 'the long handler ran across the lock');
      const ran = await p.mill.wait(long.id, { timeout: '30s' });
      assert.ok(Number(ran.result) > 300, `the long handler's own timer fired ${String(ran.result)} times in 5 s`);
      await eventually(async () => ((await p.mill.store.counts()).COMPLETED === 401 ? true : undefined), 30_000, 'all 401 completed');
      const all = await p.mill.list({ limit: 1000 });
      assert.equal(all.length, 401);
      assert.ok(all.every((t) => t.attempts === 1), 'each ran once');
      assert.deepEqual(escaped, [], 'no error escaped');
    } finally {
      await worker.stop({ timeoutMs: 1000 });
      process.off('uncaughtException', onError);
      process.off('unhandledRejection', onError);
    }
  });

  it('an idle worker takes no write lock: its polls and rescues go on while another process writes', async () => {
    p = await makeProject(sqlite, { noop: `export default () => null;` }, { worker: { pollInterval: 20 } });
    const file = p.db.url.slice('sqlite:'.length);
    const lock = await holdWriteLock(file, 4_000);
    children.push(lock.child);
    const worker = p.mill.worker();
    try {
      const t0 = Date.now();
      worker.start();
      await worker.whenIdle();
      // Polls every 20 ms: each one looks and finds nothing, without waiting for the lock.
      await new Promise((r) => setTimeout(r, 300));
      await worker.whenIdle();
      assert.ok(Date.now() - t0 < 2_000, `idle within ${Date.now() - t0} ms while another process held the lock`);
      assert.equal(lock.child.exitCode, null, 'the lock was held all along');
    } finally {
      await worker.stop({ timeoutMs: 1000 });
    }
  });
});

describe('SQLite signal files', () => {
  let p: Project;
  afterEach(async () => p.close());

  it('watches the signal files alone, and again after one was removed', async () => {
    p = await makeProject(sqlite, {});
    const file = p.db.url.slice('sqlite:'.length);
    await p.mill.store.ping();
    const events: StoreEvent[] = [];
    const off = p.mill.store.subscribe((e) => events.push(e));
    try {
      // Other files in the folder (the WAL, anything else) are not signals.
      for (let i = 0; i < 5; i++) writeFileSync(path.join(path.dirname(file), `other-${i}`), String(i));
      writeFileSync(`${file}-wal-copy`, 'x');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(events.length, 0, 'no event from other files');
      // Another process's writer rewrites the byte.
      writeFileSync(`${file}-wake`, '1');
      await eventually(() => (events.some((e) => e.kind === 'wake') ? true : undefined), 5_000, 'a wake');
      writeFileSync(`${file}-cancel`, '1');
      await eventually(() => (events.some((e) => e.kind === 'cancel' && e.id === null) ? true : undefined), 5_000, 'a cancel');
      // The file is removed (a clean-up script, a restore): the watch is re-armed on the new one.
      rmSync(`${file}-wake`);
      await new Promise((r) => setTimeout(r, 200));
      events.length = 0;
      writeFileSync(`${file}-wake`, '1');
      await eventually(() => (events.some((e) => e.kind === 'wake') ? true : undefined), 5_000, 'a wake after re-arming');
    } finally {
      off();
    }
  });
});
