// The fault suite: 10,000 tasks drained by three worker processes while something goes wrong, on
// both stores; then, per scenario, what was lost and what ran twice at once. Not part of `npm test`.
//   npm run chaos            (= npm run build && node bench/chaos.mjs)
//   node bench/chaos.mjs [--only sqlite|postgres] [--scenario kill,pg-restart,sqlite-lock]
//                        [--tasks 10000] [--cap-s 180] [--lease-ms 2000] [--keep]
// Scenarios: kill (both stores): every 2–4 s one worker is SIGKILLed and a new one started, so three
// run; pg-restart: the PostgreSQL server is stopped (fast and immediate in turn) and started again
// every 4–6 s; sqlite-lock: another process holds SQLite's write lock in bursts (bench/chaos-locker.mjs).
// PostgreSQL runs on a throw-away cluster (initdb + pg_ctl as the postgres user, a free port,
// loopback, fsync off), as test/daemon/outage.test.ts does; it is stopped and deleted at the end.
// Each handler appends "S run id pid attempt start" and "E run end" to a file of its own process
// (appendFileSync: survives a SIGKILL). A run with no end line was killed: it counts as open until its
// lease expired (read from the store just after the kill; kill time + lease if that read fails).
// Exits 1 on any lost task or any overlap. Every process it starts is killed by pid at the end.
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs, promisify } from 'node:util';
import { Taskmill } from '../dist/index.js';
import { analyse } from './chaos-runs.mjs';

const { values: opt } = parseArgs({ options: {
  only: { type: 'string' },
  scenario: { type: 'string', default: 'kill,pg-restart,sqlite-lock' },
  tasks: { type: 'string', default: '10000' },
  'cap-s': { type: 'string', default: '180' },
  'lease-ms': { type: 'string', default: '2000' },
  keep: { type: 'boolean', default: false }, // keep each scenario's folder (run records, worker logs)
} });
const TASKS = Number(opt.tasks), CAP_MS = Number(opt['cap-s']) * 1000, LEASE_MS = Number(opt['lease-ms']);
const WORKERS = 3, CONCURRENCY = 10, TASK_MS = [10, 90], MAX_ATTEMPTS = 10;
const SCENARIOS = { kill: ['sqlite', 'postgres'], 'pg-restart': ['postgres'], 'sqlite-lock': ['sqlite'] };
const scenarios = opt.scenario.split(',');
for (const s of scenarios) if (!Object.hasOwn(SCENARIOS, s)) throw new Error(`--scenario takes one or more of ${Object.keys(SCENARIOS).join(', ')}`);
if (opt.only && !['sqlite', 'postgres'].includes(opt.only)) throw new Error('--only takes sqlite or postgres');
const HERE = import.meta.dirname;
const run = promisify(execFile);
const between = (lo, hi) => lo + Math.random() * (hi - lo);

// ------------------------------------------------------------------ every process we start, by pid
const children = new Map(); // pid -> ChildProcess
function track(child) {
  children.set(child.pid, child);
  child.once('exit', () => children.delete(child.pid));
  return child;
}
let cluster = null;
function killEverythingSync() {
  for (const pid of children.keys()) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone already */ }
  }
  cluster?.destroySync();
}
process.once('exit', killEverythingSync);
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => { console.error(`chaos: ${sig}, stopping everything`); process.exit(130); });

// ------------------------------------------------------------------ a throw-away PostgreSQL cluster
function findPgBin() {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')) && existsSync(path.join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : null;
}
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
class Cluster {
  constructor(bin, port) {
    this.bin = bin;
    this.port = port;
    this.root = mkdtempSync(path.join(tmpdir(), 'taskmill-chaos-pg-'));
    this.data = path.join(this.root, 'data');
  }
  url(schema) { return `postgres://postgres@127.0.0.1:${this.port}/postgres?schema=${schema}`; }
  pg(tool, args) { return run('runuser', ['-u', 'postgres', '--', path.join(this.bin, tool), ...args], { cwd: this.root, timeout: 90_000 }); }
  async init() {
    const id = (flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(this.root, id('-u'), id('-g'));
    await this.pg('initdb', ['-D', this.data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-locale', '--no-sync']);
  }
  async start() {
    const opts = `-p ${this.port} -k ${this.root} -c listen_addresses=127.0.0.1 -c fsync=off`;
    await this.pg('pg_ctl', ['-D', this.data, '-l', path.join(this.root, 'server.log'), '-o', opts, '-w', '-t', '60', 'start']);
  }
  async stop(mode) { await this.pg('pg_ctl', ['-D', this.data, '-m', mode, '-w', '-t', '60', 'stop']); }
  running() { return existsSync(path.join(this.data, 'postmaster.pid')); }
  destroySync() {
    if (this.running()) {
      spawnSync('runuser', ['-u', 'postgres', '--', path.join(this.bin, 'pg_ctl'), '-D', this.data, '-m', 'immediate', '-w', 'stop'], { stdio: 'ignore', timeout: 30_000 });
    }
    if (this.running()) { // last resort: the postmaster by the pid in its own file
      try { process.kill(Number(readFileSync(path.join(this.data, 'postmaster.pid'), 'utf8').split('\n')[0]), 'SIGKILL'); } catch { /* gone */ }
    }
    rmSync(this.root, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ one scenario on one store
// The handler: records start and end of each run in its process's own file, sleeps payload.ms between.
const HANDLER = `import { appendFileSync } from 'node:fs';
import path from 'node:path';
const me = process.pid + '.' + Math.random().toString(36).slice(2, 8); // unique even if a pid is reused
let n = 0;
export default async function chaos(payload, ctx) {
  const file = path.join(process.env.CHAOS_RUNS_DIR, process.pid + '.log'); // read here: the producer imports this file too
  const run = me + '.' + ++n;
  appendFileSync(file, 'S ' + run + ' ' + ctx.task.id + ' ' + process.pid + ' ' + ctx.task.attempt + ' ' + Date.now() + '\\n');
  await new Promise((r) => setTimeout(r, payload.ms));
  appendFileSync(file, 'E ' + run + ' ' + Date.now() + '\\n');
}
`;

async function scenario(name, engine) {
  const dir = mkdtempSync(path.join(tmpdir(), `taskmill-chaos-${name}-${engine}-`));
  const tasksDir = path.join(dir, 'tasks'), runsDir = path.join(dir, 'runs'), logsDir = path.join(dir, 'logs');
  for (const d of [tasksDir, runsDir, logsDir]) mkdirSync(d);
  writeFileSync(path.join(tasksDir, 'chaos.mjs'), HANDLER);
  const dbFile = path.join(dir, 'var', 'taskmill.db');
  const database = engine === 'sqlite' ? `sqlite:${dbFile}` : cluster.url(`chaos_${name.replace('-', '_')}`);
  const config = { database, tasksDir, varDir: path.join(dir, 'var'),
    worker: { concurrency: CONCURRENCY, lease: LEASE_MS }, defaults: { maxAttempts: MAX_ATTEMPTS } };
  const mill = await Taskmill.open({ config, cwd: dir, env: {} });
  for (let i = 0; i < TASKS; i += 1000) {
    await mill.addMany(Array.from({ length: Math.min(1000, TASKS - i) }, () => ({ name: 'chaos', payload: { ms: Math.round(between(...TASK_MS)) } })));
  }

  // Workers: three kept running; each death is recorded with the leases its tasks held.
  const deaths = new Map(); // pid -> { at, leases: Map id -> ms }
  const workers = new Set();
  let stopping = false, started = 0, unexpectedExits = 0;
  const killedByUs = new Set();
  const startWorker = () => {
    const log = openSync(path.join(logsDir, `worker-${++started}.log`), 'a');
    const child = track(spawn(process.execPath, [path.join(HERE, 'chaos-worker.mjs'), JSON.stringify({ config, cwd: dir })],
      { stdio: ['ignore', 'ignore', log], env: { ...process.env, CHAOS_RUNS_DIR: runsDir } }));
    closeSync(log);
    workers.add(child);
    child.once('exit', (code, signal) => {
      workers.delete(child);
      const death = { at: Date.now(), leases: null };
      deaths.set(child.pid, death);
      // The leases it held, once any write it sent before dying has landed.
      void sleep(300).then(() => mill.store.list({ status: ['STARTED'], limit: 10_000 })).then((ts) => {
        death.leases = new Map(ts.filter((t) => t.lockedBy?.pid === child.pid).map((t) => [t.id, t.leaseExpiresAt.getTime()]));
      }, () => undefined);
      if (stopping) return;
      if (!killedByUs.has(child.pid)) {
        unexpectedExits++;
        console.error(`  worker ${child.pid} exited by itself (code ${code}, signal ${signal}); starting another in 0.5 s`);
        setTimeout(() => { if (!stopping) startWorker(); }, 500);
      } else startWorker();
    });
  };
  for (let i = 0; i < WORKERS; i++) startWorker();

  // The fault, until the drain ends.
  const faults = { count: 0, what: { kill: 'SIGKILLs', 'pg-restart': 'server restarts', 'sqlite-lock': 'lock bursts' }[name] };
  let faultDone = Promise.resolve();
  let locker = null;
  if (name === 'kill') {
    faultDone = (async () => {
      while (!stopping) {
        await sleep(between(2000, 4000));
        const live = [...workers];
        if (stopping || live.length === 0) continue;
        const victim = live[Math.floor(Math.random() * live.length)];
        killedByUs.add(victim.pid);
        victim.kill('SIGKILL');
        faults.count++;
      }
    })();
  } else if (name === 'pg-restart') {
    faultDone = (async () => {
      let immediate = false;
      while (!stopping) {
        await sleep(between(4000, 6000));
        if (stopping) break;
        immediate = !immediate;
        await cluster.stop(immediate ? 'immediate' : 'fast');
        await sleep(between(1000, 2000));
        await cluster.start();
        faults.count++;
      }
    })();
  } else if (name === 'sqlite-lock') {
    locker = track(spawn(process.execPath, [path.join(HERE, 'chaos-locker.mjs'), dbFile], { stdio: ['ignore', 'pipe', 'inherit'] }));
    locker.stdout.on('data', (b) => { faults.count += String(b).split('\n').filter((l) => l.startsWith('held')).length; });
  }

  // The drain: until nothing is WAITING or STARTED (the store answering), or the cap.
  const t0 = Date.now();
  let counts = null;
  while (Date.now() - t0 < CAP_MS) {
    await sleep(500);
    try {
      counts = await mill.store.counts();
      if (counts.WAITING + counts.STARTED === 0) break;
    } catch { /* the server is restarting */ }
  }
  const seconds = (Date.now() - t0) / 1000;
  stopping = true;
  await faultDone;
  if (locker) { locker.kill('SIGTERM'); await exited(locker, 5000); }
  await Promise.all([...workers].map(async (w) => { w.kill('SIGTERM'); await exited(w, 10_000); }));
  await sleep(400); // the last deaths' lease reads

  // What happened.
  const final = await mill.store.list({ status: ['WAITING', 'STARTED', 'FAILED', 'CANCELLED'], limit: TASKS });
  const completed = (await mill.store.counts()).COMPLETED;
  await mill.close();
  const result = analyse(runsDir, deaths, final, completed, LEASE_MS);
  if (!opt.keep && result.lost === 0 && result.overlapping === 0) rmSync(dir, { recursive: true, force: true });
  else console.error(`  kept ${dir} (run records in runs/, worker logs in logs/)`);
  return { scenario: name, engine, ...result, faults: `${faults.count} ${faults.what}`, unexpectedExits, workersStarted: started, seconds,
    capped: seconds * 1000 >= CAP_MS };
}

async function exited(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  if (await Promise.race([done.then(() => true), sleep(ms).then(() => false)])) return;
  child.kill('SIGKILL');
  await done;
}

// ------------------------------------------------------------------ the suite
const engines = ['sqlite', 'postgres'].filter((e) => !opt.only || opt.only === e);
const plan = scenarios.flatMap((s) => SCENARIOS[s].filter((e) => engines.includes(e)).map((e) => [s, e]));
const results = [];
if (plan.some(([, e]) => e === 'postgres')) {
  const bin = findPgBin();
  let why = bin ? null : 'initdb/pg_ctl are not installed under /usr/lib/postgresql/*/bin';
  if (!why && spawnSync('id', ['-u', 'postgres']).status !== 0) why = 'there is no postgres user to run the cluster as';
  if (why) {
    console.error(`chaos: PostgreSQL scenarios skipped: ${why}`);
    plan.splice(0, plan.length, ...plan.filter(([, e]) => e !== 'postgres'));
  } else {
    cluster = new Cluster(bin, await freePort());
    await cluster.init();
    await cluster.start();
    console.error(`chaos: throw-away PostgreSQL cluster on 127.0.0.1:${cluster.port} (${cluster.root})`);
  }
}
for (const [s, e] of plan) {
  console.error(`chaos: ${s} on ${e}, ${TASKS} tasks of ${TASK_MS[0]}–${TASK_MS[1]} ms, ${WORKERS} workers × concurrency ${CONCURRENCY}, lease ${LEASE_MS} ms`);
  if (e === 'postgres' && !cluster.running()) await cluster.start();
  const r = await scenario(s, e);
  results.push(r);
  console.error(`  ${r.completed} completed, ${r.lost} lost, ${r.overlapping} run twice at once, ${r.seconds.toFixed(1)} s`);
}
cluster?.destroySync();
cluster = null;

const header = ['scenario', 'store', 'tasks', 'completed', 'lost', 'run twice at once', 're-run (after)', 'faults', 'worker exits (own)', 'duration, s'];
const rows = results.map((r) => [r.scenario, r.engine, String(TASKS), String(r.completed), String(r.lost), String(r.overlapping), String(r.rerun),
  r.faults, String(r.unexpectedExits), `${r.seconds.toFixed(1)}${r.capped ? ' (cap)' : ''}`]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
const line = (row) => `| ${row.map((v, i) => (i < 2 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join(' | ')} |`;
console.log(`\ntaskmill chaos — ${new Date().toISOString().slice(0, 16)}Z, node ${process.version}; ${WORKERS} worker processes × concurrency ${CONCURRENCY},`
  + ` lease ${LEASE_MS} ms, tasks sleep ${TASK_MS[0]}–${TASK_MS[1]} ms, maxAttempts ${MAX_ATTEMPTS}, cap ${CAP_MS / 1000} s per scenario\n`);
console.log([line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n'));
console.log('\nlost: not COMPLETED when the drain ended, or COMPLETED but never run. run twice at once: ids with two runs whose'
  + '\n[start, end] overlap; a run killed before its end counts as open until its lease expired. re-run (after): ids run more'
  + '\nthan once, overlapping or not (a killed run is run again: expected). worker exits (own): workers that died without our SIGKILL.');
for (const r of results) {
  const notes = [];
  if (r.notCompleted) notes.push(`${r.notCompleted} not COMPLETED`);
  if (r.neverRun) notes.push(`${r.neverRun} COMPLETED without a recorded run`);
  if (r.guessedLeases) notes.push(`${r.guessedLeases} of ${r.unfinished} unfinished runs without a lease read from the store (kill time + lease used)`);
  for (const ex of r.examples) notes.push(`overlap: ${ex}`);
  if (notes.length) console.log(`${r.scenario} / ${r.engine}:\n  ${notes.join('\n  ')}`);
}
const failed = results.some((r) => r.lost > 0 || r.overlapping > 0);
console.log(`\n${failed ? 'FAILED: tasks lost or run twice at once' : 'OK: nothing lost, nothing run twice at once'}`);
process.exitCode = failed ? 1 : 0;
