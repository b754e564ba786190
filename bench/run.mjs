// taskmill's benchmark: the peers harness's workloads (shared/bench/peers, README.md there),
// run on taskmill's SQLite and PostgreSQL engines, and optionally on the peers in the same sitting.
// Every run is a fresh `node bench/one.mjs` (or the peers' `node bench.mjs`) process,
// round-robin rep -> workload -> column, as the peers' run-all.mjs does.
//   npm run bench                         (= npm run build && node bench/run.mjs)
//   node bench/run.mjs [--peers] [--all-peers] [--reps N] [--only sqlite|postgres]
//                      [--workload W[,W…]] [--prof] [--report-only]
// Workloads (keys of WORKLOADS below): enqueue-single, enqueue-batch, drain (c10), drain-c50, prune,
// drain-io and drain-io-c50 (handlers awaiting 5 ms; taskmill only), store (claims and completions
// per second on the store, no worker; taskmill only), latency, lateness, cron, and pgbench (a baseline:
// one-client `pgbench -N` average latency on a scratch database, for the add() goal); drain-iso and
// latency-iso: drain c10 and latency with worker.isolation "process" (handlers in child processes).
// --peers (or BENCH_PEERS=1): also bullmq, graphile and sidequest-sqlite (no sidequest drain);
// --all-peers: also pg-boss and sidequest-pg, and the Sidequest drains (runs that hit the 60 s cap).
// --reps N: every cell is the median (min–max) over the N reps; the goals use the medians.
// --prof: each drain's worker child runs with --cpu-prof; profiles go to .bench/prof/<column>/.
// Writes every figure to .bench/results.json.
// Diagnostics (environment): BENCH_TRACE=1 makes the worker child print its store calls (count, items,
// wall ms) and, for latency, the p50 of each pickup stage; BENCH_PG_OPTIONS='-c synchronous_commit=off'
// (experiments only) adds server settings to taskmill's PostgreSQL connections; BENCH_PG overrides the
// base URL (default postgres://postgres@127.0.0.1:5432/test); BENCH_PEERS_SRC the harness to copy.
// Summarise a profile: node bench/prof-summary.mjs .bench/prof/taskmill-sqlite/*.cpuprofile
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({ options: {
  peers: { type: 'boolean', default: process.env.BENCH_PEERS === '1' },
  'all-peers': { type: 'boolean', default: false },
  reps: { type: 'string', default: '1' },
  only: { type: 'string' },
  workload: { type: 'string' },
  prof: { type: 'boolean', default: false },
  'report-only': { type: 'boolean', default: false },
} });
const ROOT = path.resolve(import.meta.dirname, '..');
const BENCH_DIR = path.join(ROOT, '.bench');
const RESULTS = path.join(BENCH_DIR, 'results.json');
// --report-only: print the table and goals again from .bench/results.json, with its options.
const saved = opt['report-only'] ? JSON.parse(readFileSync(RESULTS, 'utf8')) : null;
if (saved) Object.assign(opt, saved.options, { 'report-only': true });
const PEERS_SRC = process.env.BENCH_PEERS_SRC ?? path.resolve(ROOT, '../shared/bench/peers');
const PEERS_DIR = path.join(BENCH_DIR, 'peers');
// key -> the workload one.mjs (and, if `peers`, the peers' bench.mjs) runs, at which concurrency.
const WORKLOADS = {
  'enqueue-single': { run: 'enqueue-single', peers: true },
  'enqueue-batch': { run: 'enqueue-batch', peers: true },
  drain: { run: 'drain', concurrency: 10, peers: true },
  'drain-c50': { run: 'drain', concurrency: 50, peers: true },
  'drain-io': { run: 'drain-io', concurrency: 10 }, // the peers harness has no such workload
  'drain-io-c50': { run: 'drain-io', concurrency: 50 },
  store: { run: 'store' },
  latency: { run: 'latency', concurrency: 10, peers: true },
  // Isolation: the same with every handler in the worker's pool of child processes (taskmill only).
  'drain-iso': { run: 'drain', concurrency: 10, isolation: 'process' },
  'latency-iso': { run: 'latency', concurrency: 10, isolation: 'process' },
  lateness: { run: 'lateness' },
  cron: { run: 'cron' },
  pgbench: { baseline: true }, // not a column: run once per rep when PostgreSQL is measured
  // Retention: 100,000 old tasks pruned while a worker (c10) drains; pickup latency before and during.
  prune: { run: 'prune', concurrency: 10 },
};
const PG_BASE = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const PGBENCH_DB = 'taskmill_bench_pgbench'; // scratch: created, initialised once, dropped at the end
const NAMES = { 'taskmill-sqlite': 'taskmill SQLite', 'taskmill-pg': 'taskmill PG', bullmq: 'BullMQ',
  graphile: 'graphile-worker', 'sidequest-sqlite': 'Sidequest SQLite', pgboss: 'pg-boss', 'sidequest-pg': 'Sidequest PG' };

if (opt.only && !['sqlite', 'postgres'].includes(opt.only)) throw new Error('--only takes sqlite or postgres');
const workloads = opt.workload ? opt.workload.split(',') : Object.keys(WORKLOADS);
for (const w of workloads) if (!Object.hasOwn(WORKLOADS, w)) throw new Error(`--workload takes one or more (comma-separated) of ${Object.keys(WORKLOADS).join(', ')}`);
const pgStoreBuilt = saved || existsSync(path.join(ROOT, 'dist/store/postgres/store.js'));
const engines = ['sqlite', 'postgres'].filter((e) => !opt.only || opt.only === e);
if (engines.includes('postgres') && !pgStoreBuilt) {
  console.error('taskmill-pg skipped: dist/store/postgres/store.js is not built (no PostgreSQL store yet)');
  engines.splice(engines.indexOf('postgres'), 1);
}
const peers = opt.peers || opt['all-peers']
  ? ['bullmq', 'graphile', 'sidequest-sqlite', ...(opt['all-peers'] ? ['pgboss', 'sidequest-pg'] : [])] : [];
const columns = saved ? saved.columns : [...engines.map((e) => (e === 'sqlite' ? 'taskmill-sqlite' : 'taskmill-pg')), ...peers];
const skip = (col, w) => (peers.includes(col) && !WORKLOADS[w].peers)
  || (!opt['all-peers'] && WORKLOADS[w].run === 'drain' && col.startsWith('sidequest'));

const sh = (cmd, args, options = {}) =>
  execFileSync(cmd, args, { encoding: 'utf8', timeout: 600_000, stdio: ['ignore', 'pipe', 'inherit'], ...options });

// ------------------------------------------------------------------ peers: a cached, installed copy
function preparePeers() {
  if (!existsSync(PEERS_SRC)) throw new Error(`no peers harness at ${PEERS_SRC}`);
  const stamp = readFileSync(path.join(PEERS_SRC, 'package.json'), 'utf8') + readFileSync(path.join(PEERS_SRC, 'package-lock.json'), 'utf8');
  const marker = path.join(PEERS_DIR, '.installed-from');
  if (!existsSync(marker) || readFileSync(marker, 'utf8') !== stamp) {
    console.error(`copying ${PEERS_SRC} to ${PEERS_DIR} and running npm install (about 3 min: better-sqlite3 compiles)`);
    rmSync(PEERS_DIR, { recursive: true, force: true });
    mkdirSync(PEERS_DIR, { recursive: true });
    sh('npm', ['install', '--no-audit', '--no-fund'], { cwd: copyHarness(), stdio: ['ignore', 'inherit', 'inherit'], timeout: 1_200_000 });
    writeFileSync(marker, stamp);
  } else copyHarness(); // the harness's .mjs files may have changed; node_modules stays
  const has = sh('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-Atc', "SELECT 1 FROM pg_database WHERE datname = 'bench'", 'postgres']);
  if (!has.trim()) sh('createdb', ['-h', '127.0.0.1', '-U', 'postgres', 'bench']);
}
function copyHarness() {
  for (const f of readdirSync(PEERS_SRC)) if (f !== 'node_modules') cpSync(path.join(PEERS_SRC, f), path.join(PEERS_DIR, f), { recursive: true });
  sh('chmod', ['-R', 'u+w', PEERS_DIR]); // shared/ is read-only and cp keeps the modes
  return PEERS_DIR;
}

// ------------------------------------------------------------------ one run
function runOne(col, workload) {
  const isTm = col.startsWith('taskmill-');
  const { run, concurrency = 10, isolation } = WORKLOADS[workload];
  const args = isTm
    ? [path.join(ROOT, 'bench/one.mjs'), '--engine', col === 'taskmill-pg' ? 'postgres' : 'sqlite', '--workload', run, '--concurrency', String(concurrency)]
    : ['bench.mjs', '--peer', col, '--workload', run, '--concurrency', String(concurrency)];
  if (isTm && isolation) args.push('--isolation', isolation);
  if (isTm && opt.prof && run.startsWith('drain')) {
    const dir = path.join(BENCH_DIR, 'prof', col, workload);
    mkdirSync(dir, { recursive: true });
    args.push('--prof', dir);
  }
  const t0 = Date.now();
  try {
    const out = sh('node', args, { cwd: isTm ? ROOT : PEERS_DIR });
    const r = JSON.parse(out.trim().split('\n').at(-1));
    console.error(`  ${col} ${workload}: ${brief(r)} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    return { column: col, ...r, workload }; // the key (drain-c50), not one.mjs's name (drain)
  } catch (err) {
    console.error(`  ${col} ${workload}: FAILED ${err.message.split('\n')[0]}`);
    return { column: col, workload, error: err.message.split('\n')[0] };
  }
}
const brief = (r) => (r.pruneSeconds !== undefined ? `pruned ${r.jobs} in ${r.pruneSeconds.toFixed(1)} s; pickup during p50 ${r.p50} / p99 ${r.p99} / max ${r.max} ms (before: p50 ${r.beforeP50} / p99 ${r.beforeP99} / max ${r.beforeMax})`
  : r.jobsPerSec !== undefined ? `${Math.round(r.jobsPerSec)} jobs/s${r.complete === false ? ' (partial)' : ''}`
  + (r.cpuUsPerTask !== undefined ? `, ${Math.round(r.cpuUsPerTask)} µs CPU/task` : '')
  : r.claimPerSecB10 !== undefined ? `claims ${Math.round(r.claimPerSecB10)}/s (b10) ${Math.round(r.claimPerSecB50)}/s (b50), `
    + `completions ${Math.round(r.completePerSecB10)}/s (b10) ${Math.round(r.completePerSecB50)}/s (b50)`
  : `p50 ${r.p50} / p95 ${r.p95} / p99 ${r.p99} / max ${r.max} ms`);

// ------------------------------------------------------------------ pgbench baseline (one client)
const pgConn = (() => {
  const u = new URL(PG_BASE);
  return ['-h', u.hostname, '-p', u.port || '5432', '-U', decodeURIComponent(u.username || 'postgres')];
})();
let pgbenchReady = null; // null: not tried; else true, or the reason it is skipped
function pgbenchBaseline() {
  if (pgbenchReady === null) {
    try {
      sh('pgbench', ['--version']);
    } catch {
      pgbenchReady = 'pgbench is not installed (apt-get install postgresql-client)';
    }
    if (pgbenchReady === null) {
      const has = sh('psql', [...pgConn, '-Atc', `SELECT 1 FROM pg_database WHERE datname = '${PGBENCH_DB}'`, 'postgres']);
      if (!has.trim()) sh('createdb', [...pgConn, PGBENCH_DB]);
      sh('pgbench', [...pgConn, '-i', '-s', '1', '-q', PGBENCH_DB], { stdio: ['ignore', 'pipe', 'pipe'] });
      pgbenchReady = true;
    }
  }
  if (pgbenchReady !== true) {
    console.error(`  pgbench: skipped, ${pgbenchReady}`);
    return { column: 'pgbench', workload: 'pgbench', skipped: pgbenchReady };
  }
  const out = sh('pgbench', [...pgConn, '-c', '1', '-j', '1', '-T', '10', '-N', PGBENCH_DB], { stdio: ['ignore', 'pipe', 'pipe'] });
  const avgLatencyMs = Number(/latency average = ([\d.]+) ms/.exec(out)?.[1]);
  const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1]);
  console.error(`  pgbench -c 1 -j 1 -T 10 -N: average latency ${avgLatencyMs} ms, ${Math.round(tps)} tps`);
  return { column: 'pgbench', workload: 'pgbench', avgLatencyMs, tps };
}
const runPgbench = workloads.includes('pgbench') && engines.includes('postgres');

if (peers.length && !saved) preparePeers();
const runs = saved ? saved.runs : [];
const reps = Number(opt.reps);
for (let rep = 1; rep <= reps && !saved; rep++) {
  for (const w of workloads) {
    console.error(`rep ${rep}/${reps}, ${w}`);
    if (WORKLOADS[w].baseline) {
      if (runPgbench) runs.push({ rep, ...pgbenchBaseline() });
      continue;
    }
    for (const col of columns) if (!skip(col, w)) runs.push({ rep, ...runOne(col, w) });
  }
}
if (pgbenchReady === true) sh('dropdb', [...pgConn, '--if-exists', PGBENCH_DB]);

// ------------------------------------------------------------------ table
const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  return s.length ? (s[Math.floor((s.length - 1) / 2)] + s[Math.ceil((s.length - 1) / 2)]) / 2 : undefined;
};
const values = (col, w, field) => runs.filter((r) => r.column === col && r.workload === w && !r.error).map((r) => r[field]);
const get = (col, w, field) => median(values(col, w, field));
const drainRows = (label, w) => [
  [`${label}, jobs/s`, w, 'jobsPerSec'],
  ['  worker CPU (user+sys) per task, µs', w, 'cpuUsPerTask'],
  ['  worker peak RSS, MB', w, 'workerPeakRssMB'],
];
const FIGURES = [
  ['enqueue-single, jobs/s', 'enqueue-single', 'jobsPerSec'],
  ['enqueue-batch, jobs/s', 'enqueue-batch', 'jobsPerSec'],
  ...drainRows('drain c10', 'drain'),
  ...drainRows('drain c50', 'drain-c50'),
  ...drainRows('drain, 5 ms awaited, c10', 'drain-io'),
  ...drainRows('drain, 5 ms awaited, c50', 'drain-io-c50'),
  ['store claims, batches of 10, tasks/s', 'store', 'claimPerSecB10'],
  ['store claims, batches of 50, tasks/s', 'store', 'claimPerSecB50'],
  ['store completions, batches of 10, tasks/s', 'store', 'completePerSecB10'],
  ['store completions, batches of 50, tasks/s', 'store', 'completePerSecB50'],
  ['pickup latency c10 p50, ms', 'latency', 'p50'],
  ['pickup latency c10 p95, ms', 'latency', 'p95'],
  ['pickup latency c10 p99, ms', 'latency', 'p99'],
  ['pickup latency c10 max, ms', 'latency', 'max'],
  ['s to enqueue the 300 (6.0 = on schedule)', 'latency', 'addSeconds'],
  ['drain c10, isolation "process", jobs/s', 'drain-iso', 'jobsPerSec'],
  ['  worker CPU per task (its handler processes not counted), µs', 'drain-iso', 'cpuUsPerTask'],
  ['  worker peak RSS (likewise), MB', 'drain-iso', 'workerPeakRssMB'],
  ['pickup latency c10, isolation "process", p50, ms', 'latency-iso', 'p50'],
  ['pickup latency c10, isolation "process", p95, ms', 'latency-iso', 'p95'],
  ['pickup latency c10, isolation "process", p99, ms', 'latency-iso', 'p99'],
  ['pickup latency c10, isolation "process", max, ms', 'latency-iso', 'max'],
  ['one add() of those, p50 ms (in the latency)', 'latency', 'addP50Ms'],
  ['one add() back to back, p50 ms (enqueue-single)', 'enqueue-single', 'addP50Ms'],
  ['future-task lateness p50, ms', 'lateness', 'p50'],
  ['future-task lateness p99, ms', 'lateness', 'p99'],
  ['cron tick lateness p50, ms (start - due)', 'cron', 'p50'],
  ['cron tick lateness p99, ms', 'cron', 'p99'],
  // Retention
  ['prune 100,000 old tasks while draining, s', 'prune', 'pruneSeconds'],
  ['  pruned per second', 'prune', 'prunedPerSec'],
  ['  drain during the prune, jobs/s', 'prune', 'drainedPerSecDuring'],
  ['  pickup p50 just before the prune, ms', 'prune', 'beforeP50'],
  ['  pickup p99 just before the prune, ms', 'prune', 'beforeP99'],
  ['  pickup p50 during the prune, ms', 'prune', 'p50'],
  ['  pickup p99 during the prune, ms', 'prune', 'p99'],
  ['  pickup max during the prune, ms', 'prune', 'max'],
];
// Results from before cpuUsPerTask was measured (--report-only of an older results.json).
for (const r of runs) if (r.workerCpuMs && r.cpuUsPerTask === undefined && r.jobs) r.cpuUsPerTask = ((r.workerCpuMs.user + r.workerCpuMs.system) * 1000) / r.jobs;
const fmt = (x, field) => (x === undefined ? '–'
  : x.toLocaleString('en-US', field === 'avgLatencyMs' ? { minimumFractionDigits: 2, maximumFractionDigits: 2 }
    : ['addSeconds', 'addP50Ms', 'pruneSeconds'].includes(field) ? { minimumFractionDigits: 1, maximumFractionDigits: 1 } : { maximumFractionDigits: 0 }));
const cell = (col, w, field) => {
  if (skip(col, w)) return 'skipped';
  if (runs.some((r) => r.column === col && r.workload === w && r.error)) return 'error';
  const all = runs.filter((r) => r.column === col && r.workload === w);
  const partial = field === 'jobsPerSec' ? all.filter((r) => r.complete === false).length : 0;
  const xs = values(col, w, field).filter((x) => typeof x === 'number');
  const range = xs.length > 1 ? ` (${fmt(Math.min(...xs), field)}–${fmt(Math.max(...xs), field)})` : '';
  return fmt(get(col, w, field), field) + range + (partial ? ` ⚠ ${partial}/${all.length} partial` : '');
};
const table = [
  ['figure', ...columns.map((c) => NAMES[c])],
  ...FIGURES.filter(([, w]) => workloads.includes(w)).map(([label, w, f]) => [label, ...columns.map((c) => cell(c, w, f))]),
];
const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
const line = (row) => `| ${row.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join(' | ')} |`;
console.log(`\ntaskmill bench — ${(saved?.date ?? new Date().toISOString()).slice(0, 16)}Z, node ${process.version}, ${cpus().length} cores,`
  + ` ${reps} rep(s), median (min–max) shown; peers' RSS/CPU and lateness are not measured by their harness\n`);
console.log([line(table[0]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...table.slice(1).map(line)].join('\n'));
const pgbenchLatency = get('pgbench', 'pgbench', 'avgLatencyMs');
const pgbenchSkipped = runs.find((r) => r.column === 'pgbench' && r.skipped)?.skipped;
if (pgbenchLatency !== undefined || pgbenchSkipped) {
  console.log(pgbenchLatency !== undefined
    ? `\nbaseline: pgbench -c 1 -j 1 -T 10 -N (scale 1, ${new URL(PG_BASE).host}), average latency ${fmt(pgbenchLatency, 'avgLatencyMs')} ms,`
      + ` ${fmt(get('pgbench', 'pgbench', 'tps'), 'tps')} tps`
    : `\nbaseline: pgbench skipped, ${pgbenchSkipped}`);
}

// ------------------------------------------------------------------ goals
const ratio = (a, b) => (a !== undefined && b ? a / b : undefined);
// Each goal compares medians of this sitting. A target may itself be a measured figure (a peer's).
const tmPeer = (tm, peer, w, f) => ratio(get(tm, w, f), get(peer, w, f));
const goals = [
  { goal: 'SQLite drain c10 / BullMQ drain c10', value: tmPeer('taskmill-sqlite', 'bullmq', 'drain', 'jobsPerSec'), op: '>=', target: 3 },
  { goal: 'PG drain c10 / graphile drain c10', value: tmPeer('taskmill-pg', 'graphile', 'drain', 'jobsPerSec'), op: '>=', target: 5 },
  { goal: 'SQLite enqueue-batch / graphile\'s', value: tmPeer('taskmill-sqlite', 'graphile', 'enqueue-batch', 'jobsPerSec'), op: '>=', target: 1 },
  { goal: 'PG enqueue-batch / graphile\'s', value: tmPeer('taskmill-pg', 'graphile', 'enqueue-batch', 'jobsPerSec'), op: '>=', target: 1 },
  { goal: 'SQLite drain c50 / c10', value: ratio(get('taskmill-sqlite', 'drain-c50', 'jobsPerSec'), get('taskmill-sqlite', 'drain', 'jobsPerSec')), op: '>=', target: 1 },
  { goal: 'PG drain c50 / c10', value: ratio(get('taskmill-pg', 'drain-c50', 'jobsPerSec'), get('taskmill-pg', 'drain', 'jobsPerSec')), op: '>=', target: 1 },
  { goal: 'SQLite pickup p50, ms', value: get('taskmill-sqlite', 'latency', 'p50'), op: '<=', target: get('bullmq', 'latency', 'p50'), of: 'BullMQ\'s' },
  { goal: 'PG pickup p50, ms', value: get('taskmill-pg', 'latency', 'p50'), op: '<=', target: get('bullmq', 'latency', 'p50'), of: 'BullMQ\'s' },
  // Like for like: pgbench's one client runs transactions back to back, as enqueue-single adds. An add
  // of the latency workload comes after 20 ms of idleness, which costs both ends a wake-up (its p50 is
  // in the table above).
  { goal: 'PG one add() p50, ms (back to back)', value: get('taskmill-pg', 'enqueue-single', 'addP50Ms'), op: '<=',
    target: pgbenchLatency === undefined ? undefined : 1.5 * pgbenchLatency, of: '1.5 × pgbench -c 1 average' },
];
console.log('\ngoals:');
for (const g of goals) {
  g.met = g.value === undefined || g.target === undefined ? null : g.op === '>=' ? g.value >= g.target : g.value <= g.target;
  const v = g.value === undefined ? 'n/a' : g.value.toFixed(2);
  const t = g.target === undefined ? `${g.of} (n/a)` : `${g.target.toFixed(2)}${g.of ? ` (${g.of})` : ''}`;
  console.log(`  ${g.goal.padEnd(40)} ${v.padStart(6)}  goal ${g.op} ${t}  ${g.met === null ? 'not measured in this sitting' : g.met ? 'MET' : 'MISSED'}`);
}

if (saved) process.exit(0);
mkdirSync(BENCH_DIR, { recursive: true });
// Keyed by workload too: the drains share their row labels.
const summary = Object.fromEntries(columns.map((c) => [c, Object.fromEntries(FIGURES.map(([label, w, f]) => [`${w}: ${label.trim()}`, get(c, w, f) ?? null]))]));
if (pgbenchLatency !== undefined) summary.pgbench = { avgLatencyMs: pgbenchLatency, tps: get('pgbench', 'pgbench', 'tps') };
writeFileSync(RESULTS, JSON.stringify({
  date: new Date().toISOString(), node: process.version, cores: cpus().length, options: opt, columns, summary, goals, runs,
}, null, 2) + '\n');
console.log(`\nall figures: ${path.relative(process.cwd(), RESULTS)}`);
