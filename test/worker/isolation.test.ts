// Isolated handlers in real child processes: bad handlers (exit, unbounded memory, a spinning CPU, a
// file that throws or exits on import) beside a stream of quick tasks; parity with in-process runs;
// kills on timeout, cancel, stop and a killed worker. `ps` confirms no handler process outlives a test.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, it } from 'node:test';
import { Taskmill } from '../../src/client/taskmill.js';
import { loadConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { silentLogger } from '../../src/model/logger.js';
import type { Task } from '../../src/model/task.js';
import type { TaskContext } from '../../src/worker/handlers.js';
import { ProcessPool } from '../../src/worker/isolation/pool.js';
import { OutputBuffer } from '../../src/worker/output.js';
import type { Worker } from '../../src/worker/worker.js';
import { ENGINES, tempSqlite } from '../helpers/engines.js';
import { eventually } from '../helpers/fixtures.js';
import { makeProject, type Project } from '../helpers/project.js';
import { killAll, spawnWorker, type WorkerProcess } from '../helpers/spawn.js';

const ISOLATED = `export const options = { isolation: 'process' };\n`;

const HANDLERS: Record<string, string> = {
  quick: `export default async (payload: { n?: number }) => payload.n ?? 0;`,
  pid: `${ISOLATED}export default async () => process.pid;`,
  nap: `export default async () => { await new Promise((r) => setTimeout(r, 300)); return process.pid; };`,
  fresh: `export const options = { isolation: 'process-per-task' };\nexport default async () => process.pid;`,
  exiter: `${ISOLATED}export default async () => { console.log('about to exit'); process.exit(7); };`,
  hog: `${ISOLATED}
    export default async () => {
      const keep: number[][] = [];
      for (;;) { keep.push(new Array(1_000_000).fill(1)); await new Promise((r) => setImmediate(r)); }
    };`,
  'buffer-hog': `${ISOLATED}
    export default async () => {
      const keep: Buffer[] = [];
      for (;;) { keep.push(Buffer.alloc(16 * 1024 * 1024, 1)); await new Promise((r) => setTimeout(r, 20)); }
    };`,
  spin: `${ISOLATED}
    export default () => { console.log('pid', process.pid); const end = Date.now() + 10_000; while (Date.now() < end) {} return 'spun'; };`,
  polite: `${ISOLATED}
    export default (payload: unknown, ctx: { signal: AbortSignal }) => new Promise((resolve, reject) => {
      console.log('pid', process.pid);
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
    });`,
  // Calls ctx.add from a timer after it returned (a bug in a handler): it must reach no other task.
  'late-add': `${ISOLATED}
    export default async (payload: unknown, ctx: { add(name: string, payload: unknown): Promise<number> }) => {
      setTimeout(() => { ctx.add('quick', { n: 99 }).then(() => console.log('late add accepted'), (e) => console.log('late add refused: ' + e.message)); }, 300);
      return 'returned';
    };`,
  lingering: `${ISOLATED}export default async () => { await new Promise((r) => setTimeout(r, 1_200)); return process.pid; };`,
  // Obeys its signal, after a short clean-up.
  tidy: `${ISOLATED}
    export default (payload: unknown, ctx: { signal: AbortSignal }) => new Promise((resolve, reject) => {
      ctx.signal.addEventListener('abort', () => setTimeout(() => reject(ctx.signal.reason), 300));
    });`,
  deaf: `${ISOLATED}export default () => { console.log('pid', process.pid); return new Promise(() => {}); };`,
  // The same code runs in-process and isolated, so everything it leaves must be the same.
  parity: `
    interface Ctx { task: { attempt: number; queue: string; note: string | null }; log(...a: unknown[]): void; add(name: string, payload?: unknown): Promise<number>; progress(value: unknown, message?: string): unknown }
    export default async (payload: { mode: string }, ctx: Ctx) => {
      console.log('console %s', 'formatted', { a: 1 }, '100%%');
      console.warn('careful');
      console.error('bad', 42);
      ctx.log('ctx', ctx.task.attempt, ctx.task.queue, ctx.task.note, 'two\\nlines');
      ctx.progress({ done: 1, total: 2 }, 'half way');
      if (payload.mode === 'throw') { const e = new Error('thrown on purpose'); throw e; }
      if (payload.mode === 'string') throw 'a bare string';
      if (payload.mode === 'bigint') return { n: 10n };
      if (payload.mode === 'fn') return () => 1;
      if (payload.mode === 'nothing') return undefined;
      const id = await ctx.add('quick', { n: 5 });
      return { id, payload, when: new Date(0) };
    };`,
};

/** Handler processes of this project still alive (zombies, already dead, left out). */
function liveChildren(tasksDir: string): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,stat=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes('isolation/child.') && l.includes(tasksDir) && !/^\s*\d+\s+Z/.test(l))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function pidIn(task: Task): number {
  const line = task.output.find((l) => l.startsWith('pid '));
  assert.ok(line, `no pid in the output: ${JSON.stringify(task.output)}`);
  return Number(line.slice(4));
}

/**
 * Adds a quick task every 100 ms until `bad` has ended, then waits for all of them: returns how many
 * ran and the longest time one took from add to finish.
 */
async function quickStream(mill: Taskmill, bad: Promise<unknown>): Promise<{ count: number; worstMs: number }> {
  let over = false;
  void bad.then(
    () => (over = true),
    () => (over = true),
  );
  const ids: number[] = [];
  while (!over) {
    ids.push((await mill.add('quick', { n: ids.length })).id);
    await new Promise((r) => setTimeout(r, 100));
  }
  let worstMs = 0;
  for (const id of ids) {
    const t = await mill.wait(id, { timeout: '30s' });
    assert.equal(t.status, 'COMPLETED', `quick task ${id}: ${t.error}`);
    worstMs = Math.max(worstMs, (t.finishedAt as Date).getTime() - t.createdAt.getTime());
  }
  return { count: ids.length, worstMs };
}

// A quick task is late by a claim, a write and a loaded machine's scheduling: seconds at worst,
// never the 10 s of the spinning handler nor a crashed worker's forever.
const QUICK_BOUND_MS = 3_000;

const WORKER_CONFIG = { concurrency: 4, isolationKillGrace: 500, isolationMaxRssMb: 128 };

let p: Project | undefined;
let worker: Worker | undefined;
let extra: Taskmill | undefined;

async function start(engine = ENGINES[0], worker_: ConfigInput['worker'] = {}): Promise<Taskmill> {
  p = await makeProject(engine as (typeof ENGINES)[number], HANDLERS, {
    defaults: { backoff: 0 },
    worker: { ...WORKER_CONFIG, ...worker_ },
  });
  worker = p.mill.worker();
  worker.start();
  return p.mill;
}

afterEach(async () => {
  await worker?.stop({ timeoutMs: 100 });
  worker = undefined;
  await extra?.close();
  extra = undefined;
  if (p) {
    const tasksDir = p.tasksDir;
    const left = await eventually(() => (liveChildren(tasksDir).length === 0 ? [] : undefined), 5_000, 'no handler process left').catch(
      () => liveChildren(tasksDir),
    );
    for (const pid of left) process.kill(pid, 'SIGKILL');
    await p.close();
    p = undefined;
    assert.deepEqual(left, [], 'handler processes outlived their test');
  }
});

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`isolation: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    it('runs a handler in a child process: result, output, ctx.add as in-process', async () => {
      const mill = await start(engine);
      const t = await mill.add('pid', {});
      const done = await mill.wait(t.id, { timeout: '30s' });
      assert.equal(done.status, 'COMPLETED', done.error ?? '');
      assert.notEqual(done.result, process.pid);
      assert.ok(worker?.isolation.pids.includes(done.result as number));
    });

    it('a handler that calls process.exit fails its attempt with the exit code, is retried, and the worker goes on', async () => {
      const mill = await start(engine);
      const bad = await mill.add('exiter', {}, { maxAttempts: 2 });
      const ended = mill.wait(bad.id, { timeout: '60s' });
      const quick = await quickStream(mill, ended);
      const t = await ended;
      assert.equal(t.status, 'FAILED');
      assert.equal(t.attempts, 2);
      assert.match(t.error ?? '', /the handler's process \(pid \d+\) exited with code 7 while running the task/);
      assert.ok(t.output.includes('about to exit'), JSON.stringify(t.output));
      assert.ok(quick.count > 0 && quick.worstMs < QUICK_BOUND_MS, JSON.stringify(quick));
    });
  });
}

describe('isolation: bad handlers beside quick tasks (sqlite)', () => {
  it('a handler that allocates without bound dies at its heap limit with a clear error', async () => {
    const mill = await start();
    const bad = await mill.add('hog', {}, { maxAttempts: 1 });
    const ended = mill.wait(bad.id, { timeout: '90s' });
    const quick = await quickStream(mill, ended);
    const t = await ended;
    assert.equal(t.status, 'FAILED');
    assert.match(t.error ?? '', /heap out of memory|over twice worker\.isolationMaxRssMb/);
    assert.ok(quick.count > 0 && quick.worstMs < QUICK_BOUND_MS, JSON.stringify(quick));
  });

  it('memory outside the heap (buffers) is bounded too: the process is killed past twice the limit', async () => {
    const mill = await start();
    const bad = await mill.add('buffer-hog', {}, { maxAttempts: 1 });
    const t = await mill.wait(bad.id, { timeout: '60s' });
    assert.equal(t.status, 'FAILED');
    assert.match(t.error ?? '', /used \d+ MB, over twice worker\.isolationMaxRssMb \(128 MB\), and was killed/);
  });

  it('a handler spinning the CPU for 10 s is killed at its timeout (SIGTERM, then SIGKILL) and blocks nothing', async () => {
    const mill = await start();
    // A warm process, so the 3 s are the handler's, not a start's on a loaded machine.
    await mill.wait((await mill.add('pid', {})).id, { timeout: '60s' });
    const started = Date.now();
    const bad = await mill.add('spin', {}, { maxAttempts: 1, timeout: '3s' });
    const ended = mill.wait(bad.id, { timeout: '60s' });
    const quick = await quickStream(mill, ended);
    const t = await ended;
    assert.equal(t.status, 'FAILED');
    assert.match(t.error ?? '', /did not finish within its timeout of 3000 ms/);
    const pid = pidIn(t);
    // It ignores SIGTERM (its event loop is blocked): SIGKILL after the 500 ms grace, long before its 10 s.
    await eventually(() => (alive(pid) ? undefined : true), 5_000, 'the spinning process to die');
    assert.ok(Date.now() - started < 9_000, `killed only after ${Date.now() - started} ms`);
    assert.ok(quick.count > 0 && quick.worstMs < QUICK_BOUND_MS, JSON.stringify(quick));
  });

  it('a handler file that throws on import fails its attempts with the load error and spawns nothing more', async () => {
    const mill = await start(undefined, { isolation: 'process' });
    // Queued while the file was good (adding imports it for its options), broken before they run.
    p?.writeHandler('broken', `export default async () => 1;`);
    // The pool warm first (four at once), so the stream measures running, not starting, processes.
    await Promise.all((await mill.addMany(Array.from({ length: 4 }, () => ({ name: 'nap', payload: {} })))).map((t) => mill.wait(t.id, { timeout: '60s' })));
    const bad = await mill.addMany(Array.from({ length: 6 }, () => ({ name: 'broken', payload: {}, options: { maxAttempts: 2, delay: '1s' } })));
    p?.writeHandler('broken', `throw new Error('broken at import');\nexport default async () => 1;`);
    const ended = Promise.all(bad.map((b) => mill.wait(b.id, { timeout: '60s' })));
    const quick = await quickStream(mill, ended);
    for (const t of await ended) {
      assert.equal(t.status, 'FAILED');
      assert.match(t.error ?? '', /cannot load the handler of "broken" from .*broken\.ts: broken at import/);
    }
    // Every quick task and every load ran in the processes of one pool of at most 4: none died.
    assert.ok((worker?.isolation.started ?? 0) <= WORKER_CONFIG.concurrency, `started ${worker?.isolation.started}`);
    assert.ok(quick.count > 0 && quick.worstMs < QUICK_BOUND_MS, JSON.stringify(quick));
  });

  it('a handler file that exits its process on import backs off instead of spawning in a loop', async () => {
    const mill = await start(undefined, { isolation: 'process' });
    // Queued while the file was good (it would end the adding process too), broken before they run.
    p?.writeHandler('suicidal', `export default async () => 1;`);
    const bad = await mill.addMany(Array.from({ length: 8 }, () => ({ name: 'suicidal', payload: {}, options: { maxAttempts: 1, delay: '1s' } })));
    p?.writeHandler('suicidal', `process.exit(5);\nexport default async () => 1;`);
    const ended = await Promise.all(bad.map((b) => mill.wait(b.id, { timeout: '60s' })));
    const errors = ended.map((t) => t.error ?? '');
    for (const e of errors) assert.match(e, /crashed its process while loading|exited with code 5 while loading the handler/);
    assert.ok(errors.some((e) => /it is not loaded again for \d+ s/.test(e)), errors.join('\n'));
    assert.ok((worker?.isolation.started ?? 0) <= 4, `started ${worker?.isolation.started}`);
    const ok = await mill.wait((await mill.add('quick', { n: 1 })).id, { timeout: '30s' });
    assert.equal(ok.status, 'COMPLETED');
  });
});

describe('isolation: processes that cannot start (sqlite)', () => {
  it('are never used; starts back off, the tasks fail with the start error, and the pool recovers', async () => {
    // Every process this test's pool starts fails before it is ready (Node cannot preload the file).
    const saved = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = `${saved ?? ''} --require /nonexistent/taskmill-broken-preload.cjs`;
    try {
      const mill = await start(undefined, { isolation: 'process' });
      const tasks = await mill.addMany(Array.from({ length: 6 }, (_, n) => ({ name: 'quick', payload: { n }, options: { maxAttempts: 1 } })));
      const ended = await Promise.all(tasks.map((t) => mill.wait(t.id, { timeout: '60s' })));
      for (const t of ended) {
        assert.equal(t.status, 'FAILED');
        assert.match(t.error ?? '', /could not start a handler process: .*exited with code|handler processes fail to start \(.*\); the next start is in \d+ s/);
      }
      assert.ok(ended.some((t) => /nonexistent\/taskmill-broken-preload/.test(t.error ?? '')), ended.map((t) => t.error).join('\n'));
      // The warm start plus at most one per task: never a loop.
      assert.ok((worker?.isolation.started ?? 0) <= 1 + tasks.length, `started ${worker?.isolation.started}`);
      assert.equal(worker?.isolation.pids.length, 0);
    } finally {
      if (saved === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = saved;
    }
    const mill = p?.mill as Taskmill;
    const ok = await eventually(async () => {
      const t = await mill.wait((await mill.add('quick', { n: 9 }, { maxAttempts: 1 })).id, { timeout: '30s' });
      return t.status === 'COMPLETED' ? t : undefined;
    }, 40_000, 'a task to run once processes start again');
    assert.equal(ok.result, 9);
  });
});

describe('isolation: a process that cannot even be spawned', () => {
  it('the pool closes at once: no exit ever comes, the spawn error counts as one', async () => {
    // Node reports a failed spawn (ENOENT) with 'error' and no 'exit'.
    const errors: string[] = [];
    const pool = new ProcessPool({
      tasksDir: '/nonexistent/tasks',
      size: 1,
      maxTasks: 10,
      maxRssMb: 128,
      killGraceMs: 500,
      logger: { ...silentLogger, error: (message, context) => void errors.push(`${message} ${JSON.stringify(context)}`) },
      execPath: '/nonexistent/taskmill-node',
    });
    pool.warm();
    await eventually(() => (errors.length > 0 ? true : undefined), 5_000, 'the spawn to fail');
    assert.match(errors[0] ?? '', /failed to start.*spawn \/nonexistent\/taskmill-node ENOENT/);
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      pool.close().then(() => 'closed'),
      new Promise((r) => {
        timer = setTimeout(() => r('hung'), 5_000);
      }),
    ]);
    clearTimeout(timer);
    assert.equal(closed, 'closed');
    assert.equal(pool.processCount, 0, 'the failed process is not kept');
  });
});

describe('isolation: memory of finished tasks', () => {
  it("a finished task's ctx and output are not held until its process exits", async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const tasksDir = mkdtempSync(path.join(tmpdir(), 'taskmill-pool-'));
    writeFileSync(path.join(tasksDir, 'quick.ts'), `export default async (payload: { n: number }) => { console.log('x'.repeat(1000)); return payload.n; };`);
    const pool = new ProcessPool({ tasksDir, size: 1, maxTasks: 1_000, maxRssMb: 128, killGraceMs: 500, logger: silentLogger });
    const outputs: WeakRef<OutputBuffer>[] = [];
    try {
      const runs = 40;
      for (let n = 0; n < runs; n++) {
        const output = new OutputBuffer();
        outputs.push(new WeakRef(output));
        const ctx = {
          task: { id: n + 1, name: 'quick', attempt: 1, maxAttempts: 1, queue: 'default', note: null, scheduleName: null, scheduledFor: null },
          signal: new AbortController().signal,
          log: () => undefined,
        } as unknown as TaskContext;
        assert.equal(await pool.run({ name: 'quick', payload: { n }, ctx, output, fresh: false }), n);
      }
      assert.equal(pool.started, 1, 'one process served every task');
      // A WeakRef's target is kept to the end of the job that made or read it: gc in later turns.
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setImmediate(r));
        gc();
      }
      const held = outputs.filter((w) => w.deref() !== undefined).length;
      // Before: every one (a handler per task on the process's exit). Now a constant few at most.
      assert.ok(held <= 2, `${held} of ${runs} finished tasks' outputs are still held`);
    } finally {
      await pool.close();
      rmSync(tasksDir, { recursive: true, force: true });
    }
  });
});

describe('isolation: configuration', () => {
  it('defaults: off, a memory limit, a recycle count, a kill grace; a bad mode is refused with the choices', () => {
    const w = loadConfig({ cwd: '/', env: {}, overrides: {} }).worker;
    assert.deepEqual([w.isolation, w.isolationMaxRssMb, w.isolationMaxTasks, w.isolationKillGrace], ['none', 512, 10_000, 5_000]);
    assert.throws(
      () => loadConfig({ cwd: '/', env: {}, overrides: { worker: { isolation: 'thread' as 'none' } } }),
      /worker\.isolation.*"none".*"process".*"process-per-task"/s,
    );
    assert.throws(() => loadConfig({ cwd: '/', env: {}, overrides: { worker: { isolationMaxRssMb: 8 } } }), /worker\.isolationMaxRssMb/);
  });

  it('a handler asking for an unknown isolation is refused with the choices', async () => {
    const mill = await start();
    p?.writeHandler('odd', `export const options = { isolation: 'thread' };\nexport default async () => 1;`);
    await assert.rejects(mill.add('odd', {}), /invalid "options" export in .*odd\.ts: isolation: .*"none".*"process".*"process-per-task"/);
  });
});

describe('isolation: parity, recycling, kills (sqlite)', () => {
  it('output, ctx.log, ctx.add, ctx.progress, results and thrown errors are the same in-process and isolated', async () => {
    const mill = await start();
    const modes = ['ok', 'throw', 'string', 'bigint', 'fn', 'nothing'];
    const run = async (m: Taskmill) => {
      const out: Task[] = [];
      for (const mode of modes) {
        const t = await m.add('parity', { mode }, { maxAttempts: 1, note: 'n' });
        out.push(await m.wait(t.id, { timeout: '30s' }));
      }
      return out;
    };
    const inProcess = await run(mill);
    await worker?.stop({ timeoutMs: 1000 });
    extra = await Taskmill.open({
      config: { ...p?.config, worker: { ...p?.config.worker, isolation: 'process' } },
      cwd: p?.dir,
      env: {},
    });
    worker = extra.worker();
    worker.start();
    const isolated = await run(extra);
    assert.ok((worker.isolation.started ?? 0) >= 1);
    for (const [i, a] of inProcess.entries()) {
      const b = isolated[i] as Task;
      assert.equal(b.status, a.status, modes[i]);
      assert.deepEqual(b.output, a.output, modes[i]);
      assert.equal(b.error, a.error, modes[i]);
      assert.deepEqual([b.progress?.value, b.progress?.message], [a.progress?.value, a.progress?.message], modes[i]);
      if (modes[i] === 'ok') {
        const r = b.result as { id: number; when: string };
        assert.equal(r.when, '1970-01-01T00:00:00.000Z');
        assert.equal((await extra.wait(r.id, { timeout: '30s' })).result, 5);
      } else assert.deepEqual(b.result, a.result, modes[i]);
      if (modes[i] === 'throw') {
        assert.ok(a.errorStack?.includes('parity.ts'), a.errorStack ?? '');
        // The same frame, down to line and column; only tsx's per-import namespace differs.
        const top = (stack: string | null) => stack?.split('\n').slice(0, 2).join('\n').replace(/namespace%3D[0-9a-f-]+/g, 'namespace');
        assert.equal(top(b.errorStack), top(a.errorStack));
      }
    }
    assert.deepEqual(inProcess[0]?.output, [
      "console formatted { a: 1 } 100%%",
      'warn: careful',
      'error: bad 42',
      'ctx 1 default n two',
      'lines',
    ]);
    assert.deepEqual(inProcess[0]?.progress?.value, { done: 1, total: 2 });
  });

  it('a process is reused, replaced after isolationMaxTasks, and fresh per task on request', async () => {
    const mill = await start(undefined, { isolationMaxTasks: 2 });
    const pids: number[] = [];
    for (let i = 0; i < 5; i++) pids.push((await mill.wait((await mill.add('pid', {})).id, { timeout: '30s' })).result as number);
    assert.equal(pids[0], pids[1]);
    assert.equal(pids[2], pids[3]);
    assert.equal(new Set(pids).size, 3, JSON.stringify(pids));
    const fresh: number[] = [];
    for (let i = 0; i < 3; i++) fresh.push((await mill.wait((await mill.add('fresh', {})).id, { timeout: '30s' })).result as number);
    assert.equal(new Set([...fresh, ...pids]).size, 6, JSON.stringify({ pids, fresh }));
    await eventually(() => (fresh.some(alive) ? undefined : true), 5_000, 'per-task processes to end');
  });

  it('cancel reaches ctx.signal in the child and ends its process', async () => {
    const mill = await start();
    // A warm process (a cancel while one starts leaves it to the pool: no handler ran in it yet).
    const pid = (await mill.wait((await mill.add('pid', {})).id, { timeout: '30s' })).result as number;
    const t = await mill.add('polite', {});
    await eventually(async () => ((await mill.get(t.id))?.status === 'STARTED' ? true : undefined));
    await mill.cancel(t.id);
    const done = await mill.wait(t.id, { timeout: '30s' });
    assert.equal(done.status, 'CANCELLED');
    assert.match(done.error ?? '', /cancelled/);
    await eventually(() => (alive(pid as number) ? undefined : true), 5_000, 'the cancelled task\'s process to end');
  });

  it('a handler that ignores its signal is killed after the grace period when it times out', async () => {
    const mill = await start();
    await mill.wait((await mill.add('pid', {})).id, { timeout: '30s' });
    const t = await mill.add('deaf', {}, { timeout: '2s', maxAttempts: 1 });
    const done = await mill.wait(t.id, { timeout: '30s' });
    assert.equal(done.status, 'FAILED');
    assert.match(done.error ?? '', /did not finish within its timeout of 2000 ms/);
    const pid = pidIn(done);
    await eventually(() => (alive(pid) ? undefined : true), 5_000, 'the timed-out process to be killed');
  });

  it('a process ending after a timeout is never handed to the next task: the tasks queued behind it run on their first attempt', async () => {
    const mill = await start(undefined, { concurrency: 1, isolation: 'process' });
    // A warm process: the timeout must strike while the handler runs, not while a process starts.
    await mill.wait((await mill.add('pid', {})).id, { timeout: '30s' });
    const t = await mill.add('tidy', {}, { timeout: '1s', maxAttempts: 1 });
    const quick = await mill.addMany(Array.from({ length: 3 }, (_, n) => ({ name: 'quick', payload: { n }, options: { maxAttempts: 1 } })));
    const done = await mill.wait(t.id, { timeout: '30s' });
    assert.equal(done.status, 'FAILED');
    assert.match(done.error ?? '', /did not finish within its timeout/);
    for (const q of quick) {
      const r = await mill.wait(q.id, { timeout: '30s' });
      assert.equal(r.status, 'COMPLETED', `quick task ${q.id}: ${r.error}`);
      assert.equal(r.attempts, 1);
    }
  });

  it("a handler's late ctx.add (from a timer, after it returned) is refused, never applied to the next task in its process", async () => {
    const mill = await start(undefined, { concurrency: 1, isolation: 'process' });
    const a = await mill.add('late-add', {});
    const b = await mill.add('lingering', {});
    const doneA = await mill.wait(a.id, { timeout: '30s' });
    const doneB = await mill.wait(b.id, { timeout: '30s' });
    assert.equal(doneA.status, 'COMPLETED', doneA.error ?? '');
    assert.equal(doneB.status, 'COMPLETED', doneB.error ?? '');
    assert.ok(worker?.isolation.pids.includes(doneB.result as number), 'B ran in the same process as A');
    const quick = await mill.list({ name: 'quick' });
    assert.deepEqual(quick.map((t) => t.payload), [], 'no follow-up from the late ctx.add');
    // What the handler saw, printed during B (output between tasks belongs to the running one).
    assert.ok(
      doneB.output.some((l) => /late add refused: the attempt of task #\d+ has ended, so ctx\.add adds nothing now/.test(l)),
      JSON.stringify(doneB.output),
    );
  });

  it('a graceful stop lets isolated tasks finish, then ends every process', async () => {
    const mill = await start();
    p?.writeHandler('slow', `${ISOLATED}export default async () => { await new Promise((r) => setTimeout(r, 800)); return 'finished'; };`);
    const t = await mill.add('slow', {});
    await eventually(() => (worker?.activeCount === 1 ? true : undefined), 30_000);
    await eventually(async () => ((await mill.get(t.id))?.status === 'STARTED' ? true : undefined));
    await worker?.stop({ timeoutMs: 20_000 });
    assert.equal((await mill.get(t.id))?.status, 'COMPLETED');
    assert.deepEqual(liveChildren(p?.tasksDir as string), []);
  });

  it('when the worker process is SIGKILLed, its handler processes end too (a spinning one included)', async () => {
    const db = await tempSqlite();
    p = await makeProject({ name: 'sqlite', create: async () => db, available: async () => true }, HANDLERS, {
      worker: { ...WORKER_CONFIG, isolation: 'process' },
    });
    const procs: WorkerProcess[] = [];
    try {
      procs.push(await spawnWorker(p.config));
      const spin = await p.mill.add('spin', {});
      await p.mill.wait((await p.mill.add('quick', {})).id, { timeout: '30s' });
      await eventually(async () => ((await p?.mill.get(spin.id))?.status === 'STARTED' ? true : undefined), 30_000);
      await eventually(() => (liveChildren(p?.tasksDir as string).length >= 2 ? true : undefined), 30_000, 'two handler processes');
      procs[0]?.child.kill('SIGKILL');
      await procs[0]?.exited;
      await eventually(() => (liveChildren(p?.tasksDir as string).length === 0 ? true : undefined), 5_000, 'orphans to end');
    } finally {
      await killAll(procs);
    }
  });
});
