// One run of one workload on one engine, defined as in the peers harness (shared/bench/peers/bench.mjs);
// prints one JSON line. bench/run.mjs runs it in a fresh process per run, as the peers harness does.
//   node bench/one.mjs --engine sqlite|postgres
//                      --workload enqueue-single|enqueue-batch|drain|drain-io|store|latency|lateness|cron|prune
//                      [--concurrency 10] [--drain-timeout-s 60] [--prof DIR] [--isolation process]
// drain-io: as drain, but each task awaits a 5 ms timer (I/O-like). store: claims and completions per
// second on the store itself (mill.store.claim / complete in batches of 10 and of 50), no worker.
// --isolation process|process-per-task: worker.isolation, so every handler runs in the worker's pool of
// child processes; the handlers' hit() cannot reach the worker there, so completions are counted in
// the store and latency figures come back as the tasks' results.
// prune: 100,000 old finished tasks pruned (by the default retention) while a worker drains a backlog;
// pickup latency of high-priority tasks added meanwhile, beside the same measured just before.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Taskmill } from '../dist/index.js';

const { values: opt } = parseArgs({ options: {
  engine: { type: 'string' }, workload: { type: 'string' },
  concurrency: { type: 'string', default: '10' },
  'drain-timeout-s': { type: 'string', default: '60' },
  prof: { type: 'string' }, // directory: the worker child runs with --cpu-prof into it
  isolation: { type: 'string', default: 'none' },
} });
const isolated = opt.isolation !== 'none';
const concurrency = Number(opt.concurrency);
const SINGLE_N = 5000, BATCH_N = 20000, CHUNK = 1000, DRAIN_N = 20000;
const LAT_N = 300, LAT_GAP_MS = 20;
const LATE_N = 200, LATE_MIN_MS = 300, LATE_SPREAD_MS = 500;
const CRON_N = 15;
const IO_MS = 5;
const STORE_N = 20000, STORE_BATCHES = [10, 50]; // half the tasks claimed/completed per batch size
const PG_BASE = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

// ------------------------------------------------------------------ a fresh database + tasks folder
const dir = mkdtempSync(path.join(tmpdir(), 'taskmill-bench-'));
const tasksDir = path.join(dir, 'tasks');
mkdirSync(tasksDir);
// .mjs handlers, so no TypeScript loader cost is measured. hit() is set up by bench/worker.mjs.
writeFileSync(path.join(tasksDir, 'noop.mjs'), 'export default function noop() { globalThis.__taskmillBench?.hit(); }\n');
writeFileSync(path.join(tasksDir, 'io.mjs'), `export default async function io() {
  await new Promise((r) => setTimeout(r, ${IO_MS}));
  globalThis.__taskmillBench?.hit();
}
`);
// Retention bench: records its pickup latency with the phase it was added in (before or during pruning).
writeFileSync(path.join(tasksDir, 'pickup.mjs'),
  'export default function pickup(p) { globalThis.__taskmillBench?.hit({ phase: p.phase, ms: Date.now() - p.t }); }\n');
// Records Date.now() - payload.t when it starts (pickup latency; for lateness t is the runAt).
writeFileSync(path.join(tasksDir, 'latency.mjs'), isolated
  ? 'export default function latency(p) { return Date.now() - p.t; }\n'
  : 'export default function latency(p) { globalThis.__taskmillBench?.hit(Date.now() - p.t); }\n');
// Records start - the occurrence's due time, for tasks a schedule created.
writeFileSync(path.join(tasksDir, 'cron.mjs'),
  'export default function cron(p, ctx) { globalThis.__taskmillBench?.hit(Date.now() - ctx.task.scheduledFor.getTime()); }\n');

let database, schema;
if (opt.engine === 'sqlite') database = `sqlite:${path.join(dir, 'var', 'taskmill.db')}`;
else if (opt.engine === 'postgres') {
  schema = `bench_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  database = `${PG_BASE}?schema=${schema}`;
  // Experiments only: server settings for taskmill's connections, e.g. '-c synchronous_commit=off'.
  if (process.env.BENCH_PG_OPTIONS) database += `&options=${encodeURIComponent(process.env.BENCH_PG_OPTIONS)}`;
  await pgAdmin(`CREATE SCHEMA ${schema}`);
  await pgAdmin('CHECKPOINT'); // as the peers' reset() does
} else throw new Error(`unknown --engine ${opt.engine}`);
const config = { database, tasksDir, varDir: path.join(dir, 'var'), ...(isolated ? { worker: { isolation: opt.isolation } } : {}) };

async function pgAdmin(sql) {
  const c = new pg.Client({ connectionString: PG_BASE });
  await c.connect();
  try { return await c.query(sql); } finally { await c.end(); }
}
const open = () => Taskmill.open({ config, cwd: dir, env: {} });

async function enqueueBatch(mill, n, name = 'noop') {
  for (let done = 0; done < n; done += CHUNK) {
    await mill.addMany(Array.from({ length: Math.min(CHUNK, n - done) }, () => ({ name, payload: {} })));
  }
}

// Fork bench/worker.mjs and wait for its 'ready' (same protocol as the peers' worker.mjs).
async function startWorkerProcess(expected) {
  const execArgv = opt.prof ? ['--cpu-prof', '--cpu-prof-dir', opt.prof] : [];
  const child = fork(new URL('./worker.mjs', import.meta.url), [JSON.stringify({ config, cwd: dir }), String(concurrency), String(expected)], { execArgv });
  const msgs = [];
  let wake = () => {};
  child.on('message', (m) => { msgs.push(m); wake(); });
  const waitFor = async (type, timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const m = msgs.find((x) => x.type === type);
      if (m) return m;
      await Promise.race([new Promise((r) => { wake = r; }), sleep(Math.max(1, deadline - Date.now()))]);
    }
    return null;
  };
  const ready = await waitFor('ready', 30000);
  if (!ready) throw new Error('worker never became ready');
  return {
    ready, waitFor,
    has: (type) => msgs.some((x) => x.type === type),
    start: () => child.send('start'),
    async stop() {
      child.send('stop');
      const stats = await waitFor('stats', 30000);
      if (!stats) child.kill('SIGKILL');
      await Promise.race([once(child, 'exit'), sleep(5000)]);
      return stats;
    },
  };
}

const pct = (xs) => {
  const l = [...xs].sort((a, b) => a - b);
  const p = (q) => l[Math.min(l.length - 1, Math.ceil(q * l.length) - 1)];
  return { p50: p(0.5), p95: p(0.95), p99: p(0.99), max: l.at(-1) };
};

const workloads = {
  async 'enqueue-single'() {
    const mill = await open();
    const t0 = performance.now();
    const addMs = []; // each add() back to back, as pgbench's one client runs its transactions
    for (let i = 0; i < SINGLE_N; i++) {
      const a0 = performance.now();
      await mill.add('noop', {});
      addMs.push(performance.now() - a0);
    }
    const s = (performance.now() - t0) / 1000;
    await mill.close();
    return { jobs: SINGLE_N, seconds: s, jobsPerSec: SINGLE_N / s, addP50Ms: pct(addMs).p50 };
  },

  async 'enqueue-batch'() {
    const mill = await open();
    const t0 = performance.now();
    await enqueueBatch(mill, BATCH_N);
    const s = (performance.now() - t0) / 1000;
    await mill.close();
    return { jobs: BATCH_N, seconds: s, jobsPerSec: BATCH_N / s };
  },

  // Clock: from telling the connected, idle worker process to start, until the store counts all
  // DRAIN_N COMPLETED (or the cap: then partial). Polled every 250 ms until the worker says every
  // handler ran (the message ends the wait at once), then every 5 ms.
  drain: () => drain('noop'),
  // The same with handlers that each await a 5 ms timer: bound by concurrency / 5 ms, not CPU.
  'drain-io': () => drain('io'),

  // The store alone, no worker: STORE_N tasks queued (untimed); then half of them claimed in batches
  // of 10 and the other half in batches of 50 (claims/s, each size timed on its own), then
  // completed the same way (completions/s). One caller, awaited calls, `now` passed in as the worker does.
  async store() {
    const mill = await open();
    await enqueueBatch(mill, STORE_N);
    const lock = { host: 'bench', pid: process.pid, workerId: `bench:${process.pid}` };
    const per = STORE_N / STORE_BATCHES.length;
    const claimed = {}, result = {};
    for (const size of STORE_BATCHES) {
      claimed[size] = [];
      const t0 = performance.now();
      while (claimed[size].length < per) {
        const got = await mill.store.claim({ lock, queues: null, limit: Math.min(size, per - claimed[size].length), now: new Date(), leaseMs: 600_000 });
        if (got.length === 0) throw new Error(`claim returned nothing after ${claimed[size].length} of ${per}`);
        claimed[size].push(...got);
      }
      result[`claimPerSecB${size}`] = per / ((performance.now() - t0) / 1000);
    }
    // result for the store interface before the worker serialised it once, resultJson after.
    for (const size of STORE_BATCHES) {
      const tasks = claimed[size];
      const t0 = performance.now();
      for (let i = 0; i < tasks.length; i += size) {
        await mill.store.complete(tasks.slice(i, i + size).map((t) => ({ id: t.id, workerId: lock.workerId, attempt: t.attempts, result: null, resultJson: 'null', output: [] })), new Date());
      }
      result[`completePerSecB${size}`] = tasks.length / ((performance.now() - t0) / 1000);
    }
    const completed = (await mill.store.counts()).COMPLETED;
    await mill.close();
    if (completed !== STORE_N) throw new Error(`${completed} of ${STORE_N} COMPLETED after the completions`);
    return { jobs: STORE_N, batches: STORE_BATCHES, ...result };
  },

  // Idle worker (running, idle 1 s); 300 adds on a fixed 20 ms schedule, payload {t: Date.now()}
  // taken just before the add; the handler records Date.now() - t when it starts.
  async latency() {
    const w = await startWorkerProcess(LAT_N);
    w.start();
    await w.waitFor('started', 30000);
    await sleep(1000);
    const mill = await open();
    // Isolated: one untimed task first, so the figures are pickups, not the start of a process
    // (about 0.2 s alone, seconds on a loaded machine; the drain pays it).
    if (isolated) await mill.wait((await mill.add('noop', {})).id, { timeout: '60s' });
    const t0 = Date.now();
    const addMs = []; // how long each add() itself took: part of every pickup latency
    for (let i = 0; i < LAT_N; i++) {
      const wait = t0 + i * LAT_GAP_MS - Date.now();
      if (wait > 0) await sleep(wait);
      const a0 = performance.now();
      await mill.add('latency', { t: Date.now() });
      addMs.push(performance.now() - a0);
    }
    const addSeconds = (Date.now() - t0) / 1000;
    if (isolated) await completedAll(mill, LAT_N, 30000);
    else await w.waitFor('handled-all', 30000);
    const stats = await w.stop();
    const figures = isolated ? (await mill.list({ name: 'latency', status: 'COMPLETED', limit: LAT_N })).map((t) => t.result) : stats?.figures ?? [];
    await mill.close();
    return { jobs: figures.length, of: LAT_N, ...pct(figures), addSeconds, addP50Ms: pct(addMs).p50, concurrency, isolation: opt.isolation };
  },

  // Idle worker (running, idle 1 s); 200 awaited adds, task i with runAt = now + 300..800 ms
  // (spread evenly over i), payload {t: runAt}; the handler records start - runAt.
  async lateness() {
    const w = await startWorkerProcess(LATE_N);
    w.start();
    await w.waitFor('started', 30000);
    await sleep(1000);
    const mill = await open();
    for (let i = 0; i < LATE_N; i++) {
      const runAt = Date.now() + LATE_MIN_MS + Math.round((i * LATE_SPREAD_MS) / (LATE_N - 1));
      await mill.add('latency', { t: runAt }, { runAt: new Date(runAt) });
    }
    await w.waitFor('handled-all', 30000);
    const stats = await w.stop();
    await mill.close();
    return { jobs: stats?.figures.length ?? 0, of: LATE_N, ...pct(stats?.figures ?? []), concurrency };
  },

  // Idle worker process; a scheduler in this process with a cron rule firing every second
  // ('* * * * * *'); each task records start - its due time (scheduledFor). CRON_N ticks.
  async cron() {
    const w = await startWorkerProcess(CRON_N);
    w.start();
    await w.waitFor('started', 30000);
    const mill = await open();
    await mill.schedule('bench-cron', { task: 'cron', cron: '* * * * * *', timezone: 'UTC', overlap: 'allow' });
    const scheduler = mill.scheduler();
    scheduler.start();
    await w.waitFor('handled-all', (CRON_N + 10) * 1000);
    await scheduler.stop();
    const stats = await w.stop();
    await mill.close();
    return { jobs: stats?.figures.length ?? 0, of: CRON_N, ...pct(stats?.figures ?? []), concurrency };
  },
};

/** Isolated handlers cannot call hit(): waits until the store counts n COMPLETED (or the cap). */
async function completedAll(mill, n, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && (await mill.store.counts()).COMPLETED < n) await sleep(50);
}

async function drain(name) {
  const mill = await open();
  await enqueueBatch(mill, DRAIN_N, name);
  const w = await startWorkerProcess(DRAIN_N);
  const timeoutMs = Number(opt['drain-timeout-s']) * 1000;
  const t0 = performance.now();
  w.start();
  let completed = 0;
  while (performance.now() - t0 < timeoutMs) {
    // Until the worker says every handler ran, a slow poll that the message cuts short (the peers'
    // harness sleeps the whole 250 ms, which can add up to a quarter of a second to a one-second drain).
    if (w.has('handled-all')) await sleep(5);
    else await w.waitFor('handled-all', isolated ? 50 : 250);
    completed = (await mill.store.counts()).COMPLETED;
    if (completed >= DRAIN_N) break;
  }
  const s = (performance.now() - t0) / 1000;
  if (completed < DRAIN_N) completed = (await mill.store.counts()).COMPLETED;
  const stats = await w.stop();
  await mill.close();
  // The worker child's own CPU (user + system) from 'start' to 'stop', per task completed.
  const cpuUsPerTask = stats && completed ? ((stats.cpuMs.user + stats.cpuMs.system) * 1000) / completed : undefined;
  return { jobs: completed, of: DRAIN_N, seconds: s, jobsPerSec: completed / s, complete: completed >= DRAIN_N,
    concurrency, workerPeakRssMB: stats?.peakRssMB, workerReadyRssMB: w.ready.rssMB, workerCpuMs: stats?.cpuMs, cpuUsPerTask, isolation: opt.isolation };
}

// ------------------------------------------------------------------ retention: prune while draining
const PRUNE_N = 100_000, PRUNE_BACKLOG_N = 50_000, PRUNE_BEFORE_MS = 1000, PICKUP_GAP_MS = 20;

/** PRUNE_N COMPLETED tasks that finished 30 days ago, written straight in SQL (the API would take minutes). */
async function insertOldTasks(n) {
  const old = Date.now() - 30 * 86_400_000;
  const cols = `name, payload, queue, priority, status, run_at, attempts, max_attempts, backoff_base_ms, backoff_max_ms,
    timeout_ms, created_at, started_at, finished_at, result, output`;
  if (opt.engine === 'sqlite') {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(database.slice('sqlite:'.length));
    db.prepare(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < @n)
      INSERT INTO tasks (${cols}) SELECT 'noop', '{}', 'default', 0, 'COMPLETED', @old, 1, 3, 5000, 3600000, 60000, @old, @old, @old, 'null', '[]' FROM n`)
      .run({ n, old });
    db.close();
  } else {
    await pgAdmin(`INSERT INTO ${schema}.tasks (${cols})
      SELECT 'noop', '{}', 'default', 0, 'COMPLETED', to_timestamp(${old / 1000}), 1, 3, 5000, 3600000, 60000,
             to_timestamp(${old / 1000}), to_timestamp(${old / 1000}), to_timestamp(${old / 1000}), 'null', '[]'
        FROM generate_series(1, ${n})`);
  }
}

// A worker drains a backlog of PRUNE_BACKLOG_N noop tasks; pickup tasks (priority 100, so they jump
// the backlog) are added every 20 ms for 1 s, then throughout mill.prune() of the PRUNE_N old ones.
// Their pickup latency in the two phases shows how long claims wait behind the pruning batches.
workloads.prune = async function prune() {
  const mill = await open();
  await insertOldTasks(PRUNE_N);
  await enqueueBatch(mill, PRUNE_BACKLOG_N);
  // Statistics as autovacuum would have them by now (on PostgreSQL; SQLite's planner is steered by INDEXED BY).
  if (schema) await pgAdmin(`ANALYZE ${schema}.tasks`);
  const w = await startWorkerProcess(Number.MAX_SAFE_INTEGER);
  w.start();
  await w.waitFor('started', 30000);
  const waiting = async () => (await mill.store.counts()).WAITING;
  let adds = 0;
  const addPickups = async (phase, until) => {
    for (let next = Date.now(); !until(); next += PICKUP_GAP_MS) {
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
      await mill.add('pickup', { t: Date.now(), phase }, { priority: 100 });
      adds++;
    }
  };
  const b0 = Date.now();
  await addPickups('before', () => Date.now() - b0 >= PRUNE_BEFORE_MS);
  const waiting0 = await waiting();
  const adds0 = adds;
  let pruning = true;
  const t0 = performance.now();
  const pruned = mill.prune().finally(() => { pruning = false; });
  await addPickups('during', () => !pruning);
  const report = await pruned;
  const pruneSeconds = (performance.now() - t0) / 1000;
  const drainedDuring = waiting0 + (adds - adds0) - (await waiting());
  // Every pickup task handled (they jump the backlog), then the worker stops.
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline && (await mill.list({ name: 'pickup', status: ['WAITING', 'STARTED'], limit: 1 })).length > 0) await sleep(20);
  const stats = await w.stop();
  await mill.close();
  const figures = stats?.figures ?? [];
  const phase = (p) => figures.filter((f) => f.phase === p).map((f) => f.ms);
  const removed = report.removed.COMPLETED + report.removed.CANCELLED + report.removed.FAILED;
  if (removed !== PRUNE_N) throw new Error(`pruned ${removed} of ${PRUNE_N}`);
  const before = pct(phase('before')), during = pct(phase('during'));
  return { jobs: removed, pruneSeconds, prunedPerSec: removed / pruneSeconds, drainedPerSecDuring: drainedDuring / pruneSeconds,
    pickupsBefore: phase('before').length, pickupsDuring: phase('during').length,
    beforeP50: before.p50, beforeP99: before.p99, beforeMax: before.max,
    p50: during.p50, p95: during.p95, p99: during.p99, max: during.max, concurrency };
};

const fn = Object.hasOwn(workloads, opt.workload) ? workloads[opt.workload] : undefined;
let result;
try {
  if (!fn) throw new Error(`unknown --workload ${opt.workload}`);
  result = await fn();
} finally {
  if (schema) await pgAdmin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify({ peer: `taskmill-${opt.engine}`, workload: opt.workload, ...result }));
process.exit(0);
