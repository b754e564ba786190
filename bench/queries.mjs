// The task list, counts and stats with 1,000,000 tasks in the database, on both engines: p50 / p99 per
// call of the client methods the admin page and the API use. Seeding is direct bulk SQL (a benchmark may;
// the product never does), with a spread like a busy installation's: mostly COMPLETED, some FAILED,
// a backlog WAITING, twenty task names, five queues of unequal size, one task in a hundred scheduled.
//   npm run bench:queries                       (= npm run build && node bench/queries.mjs)
//   node bench/queries.mjs [--only sqlite|postgres] [--tasks N] [--runs N] [--keep]
// --keep leaves the seeded databases (.bench/queries.db, schema taskmill_bench_queries) for the next run,
// which then skips seeding when they hold N tasks.
import { Buffer } from 'node:buffer';
import http from 'node:http';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';

const { values: opt } = parseArgs({ options: {
  only: { type: 'string' },
  tasks: { type: 'string', default: '1000000' },
  runs: { type: 'string', default: '40' },
  keep: { type: 'boolean', default: false },
} });
const ROOT = path.resolve(import.meta.dirname, '..');
const N = Number(opt.tasks);
const RUNS = Number(opt.runs);
const PG_BASE = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const SCHEMA = 'taskmill_bench_queries';
const SQLITE_FILE = path.join(ROOT, '.bench', 'queries.db');
const { Taskmill } = await import(path.join(ROOT, 'dist/index.js'));
const { serveWeb } = await import(path.join(ROOT, 'dist/web/serve.js'));
const { silentLogger } = await import(path.join(ROOT, 'dist/model/logger.js'));

// Every task i: created 100 ms after the one before (a day of tasks spans ~28 h), name task-((i / 100) % 20),
// queue by i % 100 (60 % default, 25 % mail, 10 % reports, 4 % media, 1 % rare), status by i % 100.
const T0 = Date.UTC(2026, 0, 1);
const NOW = T0 + N * 100 + 60_000;

async function seedSqlite() {
  if (existsSync(SQLITE_FILE) && opt.keep) {
    const db = new Database(SQLITE_FILE);
    const n = db.prepare('SELECT count(*) AS n FROM tasks').get().n;
    db.close();
    if (n === N) return;
  }
  mkdirSync(path.dirname(SQLITE_FILE), { recursive: true });
  for (const suffix of ['', '-wal', '-shm']) rmSync(SQLITE_FILE + suffix, { force: true });
  const mill = await Taskmill.open({ config: { database: `sqlite:${SQLITE_FILE}`, tasksDir: path.join(ROOT, '.bench', 'no-tasks') }, env: {} });
  await mill.close();
  const db = new Database(SQLITE_FILE);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const started = performance.now();
  db.exec(`
    WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ${N})
    INSERT INTO tasks (name, payload, queue, priority, status, run_at, attempts, max_attempts, backoff_base_ms, backoff_max_ms,
                       timeout_ms, note, error, created_at, started_at, finished_at, schedule_name, scheduled_for, output, result)
    SELECT 'task-' || ((i / 100) % 20),
           '{"user":"user-' || (i % 1000) || '","order":' || i || ',"items":[1,2,3]}',
           CASE WHEN i % 100 < 60 THEN 'default' WHEN i % 100 < 85 THEN 'mail' WHEN i % 100 < 95 THEN 'reports'
                WHEN i % 100 < 99 THEN 'media' ELSE 'rare' END,
           0, st, ${T0} + i * 100, CASE WHEN st = 'WAITING' THEN 0 ELSE 1 END, 3, 5000, 3600000, 1800000,
           CASE WHEN i % 7 = 0 THEN 'batch ' || (i % 50) END,
           CASE st WHEN 'FAILED' THEN 'connection refused by host-' || (i % 30) WHEN 'CANCELLED' THEN 'cancelled' END,
           ${T0} + i * 100,
           CASE WHEN st <> 'WAITING' THEN ${T0} + i * 100 + 10 END,
           CASE WHEN st IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN ${T0} + i * 100 + 20 + (i % 13) * 7 END,
           CASE WHEN i % 100 = 42 THEN 'nightly' END,
           CASE WHEN i % 100 = 42 THEN ${T0} + i * 100 END,
           '["line one","line two"]', CASE WHEN st = 'COMPLETED' THEN '{"ok":true}' END
      FROM (SELECT i, CASE WHEN i % 100 < 85 THEN 'COMPLETED' WHEN i % 100 < 90 THEN 'FAILED' WHEN i % 100 < 92 THEN 'CANCELLED'
                           WHEN i % 100 < 99 OR i > ${N} - 100 THEN 'WAITING' ELSE 'COMPLETED' END AS st FROM seq)`);
  db.exec('ANALYZE');
  db.close();
  console.log(`  sqlite: seeded ${N.toLocaleString('en-US')} tasks in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

async function seedPostgres() {
  const client = new pg.Client({ connectionString: PG_BASE });
  await client.connect();
  try {
    if (opt.keep) {
      const has = await client.query(`SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'tasks'`, [SCHEMA]);
      if (has.rows.length > 0 && Number((await client.query(`SELECT count(*) AS n FROM ${SCHEMA}.tasks`)).rows[0].n) === N) return;
    }
    await client.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    const mill = await Taskmill.open({ config: { database: `${PG_BASE}?schema=${SCHEMA}`, tasksDir: path.join(ROOT, '.bench', 'no-tasks') }, env: {} });
    await mill.close();
    const started = performance.now();
    await client.query('SET synchronous_commit = off');
    await client.query(`
      INSERT INTO ${SCHEMA}.tasks (name, payload, queue, priority, status, run_at, attempts, max_attempts, backoff_base_ms,
                       backoff_max_ms, timeout_ms, note, error, created_at, started_at, finished_at, schedule_name, scheduled_for,
                       output, result)
      SELECT 'task-' || ((i / 100) % 20),
             jsonb_build_object('user', 'user-' || (i % 1000), 'order', i, 'items', jsonb_build_array(1, 2, 3)),
             CASE WHEN i % 100 < 60 THEN 'default' WHEN i % 100 < 85 THEN 'mail' WHEN i % 100 < 95 THEN 'reports'
                  WHEN i % 100 < 99 THEN 'media' ELSE 'rare' END,
             0, st, to_timestamp((${T0} + i * 100) / 1000.0), CASE WHEN st = 'WAITING' THEN 0 ELSE 1 END, 3, 5000, 3600000, 1800000,
             CASE WHEN i % 7 = 0 THEN 'batch ' || (i % 50) END,
             CASE st WHEN 'FAILED' THEN 'connection refused by host-' || (i % 30) WHEN 'CANCELLED' THEN 'cancelled' END,
             to_timestamp((${T0} + i * 100) / 1000.0),
             CASE WHEN st <> 'WAITING' THEN to_timestamp((${T0} + i * 100 + 10) / 1000.0) END,
             CASE WHEN st IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN to_timestamp((${T0} + i * 100 + 20 + (i % 13) * 7) / 1000.0) END,
             CASE WHEN i % 100 = 42 THEN 'nightly' END,
             CASE WHEN i % 100 = 42 THEN to_timestamp((${T0} + i * 100) / 1000.0) END,
             '["line one","line two"]'::jsonb, CASE WHEN st = 'COMPLETED' THEN '{"ok":true}'::jsonb END
        FROM (SELECT i, CASE WHEN i % 100 < 85 THEN 'COMPLETED' WHEN i % 100 < 90 THEN 'FAILED' WHEN i % 100 < 92 THEN 'CANCELLED'
                             WHEN i % 100 < 99 OR i > ${N} - 100 THEN 'WAITING' ELSE 'COMPLETED' END AS st
                FROM generate_series(1, ${N}) AS i) AS s`);
    await client.query(`VACUUM ANALYZE ${SCHEMA}.tasks`);
    console.log(`  postgres: seeded ${N.toLocaleString('en-US')} tasks in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await client.end();
  }
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function measure(label, fn, runs = RUNS) {
  await fn(); // warm: statements prepared, pages cached
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn(i);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { label, p50: pct(times, 50), p99: pct(times, 99) };
}

/** The cursor of a page `pages` pages of 50 deep in id desc order (a bench may build it: it knows the format). */
const deepCursor = (pages) => Buffer.from(JSON.stringify({ s: 'id', o: 'desc', i: N - pages * 50, v: null })).toString('base64url');

async function run(engine) {
  const url = engine === 'sqlite' ? `sqlite:${SQLITE_FILE}` : `${PG_BASE}?schema=${SCHEMA}`;
  const clock = { now: () => new Date(NOW) };
  const mill = await Taskmill.open({ config: { database: url, tasksDir: path.join(ROOT, '.bench', 'no-tasks') }, env: {}, clock });
  const rows = [];
  try {
    const deep = deepCursor(10_000);
    const check = await mill.query({ limit: 50, cursor: deep });
    if (check.tasks.length !== 50) throw new Error('the deep page came back short');
    rows.push(await measure('first page (50, newest first)', () => mill.query({ limit: 50 })));
    rows.push(await measure('page 10,000 deep by cursor', () => mill.query({ limit: 50, cursor: deep })));
    rows.push(await measure('next page from a deep cursor, FAILED+CANCELLED', async () => {
      await mill.query({ limit: 50, status: ['FAILED', 'CANCELLED'], cursor: deep });
    }));
    rows.push(await measure('filtered page (status FAILED + name)', (i = 0) => mill.query({ limit: 50, status: ['FAILED'], name: `task-${i % 20}` })));
    rows.push(await measure('filtered page (queue rare)', () => mill.query({ limit: 50, queue: 'rare' })));
    rows.push(await measure('filtered page (schedule)', () => mill.query({ limit: 50, schedule: 'nightly' })));
    rows.push(await measure('sorted by runAt, first page', () => mill.query({ limit: 50, sort: 'runAt' })));
    rows.push(await measure('sorted by finishedAt, first page', () => mill.query({ limit: 50, sort: 'finishedAt' })));
    rows.push(await measure('text search page ("user-123")', () => mill.query({ limit: 50, text: 'user-123' })));
    rows.push(await measure('text search page (error "host-7")', () => mill.query({ limit: 50, text: 'host-7' })));
    rows.push(await measure('count FAILED (cap 10,000)', () => mill.count({ status: ['FAILED'] })));
    rows.push(await measure('count all (cap 10,000)', () => mill.count({})));
    rows.push(await measure('stats (counts at most 10 s old)', () => mill.stats()));
    rows.push(await measure('  one counting step behind stats (20,000 ids; SQLite uses 5,000)', (i = 0) => mill.store.countByQueue((i % 49) * 20_000, (i % 49 + 1) * 20_000)));
    rows.push(await measure('  a full recount in steps (not blocking)', async () => {
      const { max } = await mill.store.taskIdRange();
      for (let from = 0; from < max; from += 20_000) await mill.store.countByQueue(from, from + 20_000);
    }, 3));
    // The same reads as a browser and a program make them: whole pages and API calls over HTTP, from the
    // web server that the Web module runs (in this process here), with a bearer token.
    const { token } = await mill.auth.createToken('viewer', 'bench');
    const { server, url: base } = await serveWeb({ mill, logger: silentLogger, clock, host: '127.0.0.1', port: 0 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = (p) => new Promise((resolve, reject) => {
      http.get(new URL(p, base), { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`GET ${p}: ${res.statusCode}`))));
      }).on('error', reject);
    });
    try {
      rows.push(await measure('HTTP: overview page (counts, chart, daemons, failures)', () => get('/')));
      rows.push(await measure('HTTP: task list page, first', () => get('/tasks')));
      rows.push(await measure('HTTP: task list page, 10,000 pages deep', () => get(`/tasks?cursor=${deep}`)));
      rows.push(await measure('HTTP: task list page, FAILED + name', (i = 0) => get(`/tasks?status=FAILED&name=task-${i % 20}`)));
      rows.push(await measure('HTTP: GET /api/tasks?limit=50', () => get('/api/tasks?limit=50')));
      rows.push(await measure('HTTP: GET /api/stats', () => get('/api/stats')));
    } finally {
      agent.destroy();
      await server.stop();
    }
  } finally {
    await mill.close();
  }
  return rows;
}

const engines = ['sqlite', 'postgres'].filter((e) => !opt.only || opt.only === e);
const results = {};
for (const engine of engines) {
  console.log(`${engine}: seeding…`);
  if (engine === 'sqlite') await seedSqlite();
  else await seedPostgres();
  results[engine] = await run(engine);
}
console.log(`\nTask queries with ${N.toLocaleString('en-US')} tasks, ${RUNS} calls each, ms per call (p50 / p99)\n`);
const labels = results[engines[0]].map((r) => r.label);
const w = Math.max(...labels.map((l) => l.length));
console.log(`| ${'call'.padEnd(w)} | ${engines.map((e) => `${e} p50 / p99`.padStart(20)).join(' | ')} |`);
console.log(`|${'-'.repeat(w + 2)}|${engines.map(() => `${'-'.repeat(21)}:`).join('|')}|`);
for (const [i, label] of labels.entries()) {
  const cells = engines.map((e) => {
    const r = results[e][i];
    return `${r.p50.toFixed(1)} / ${r.p99.toFixed(1)}`.padStart(20);
  });
  console.log(`| ${label.padEnd(w)} | ${cells.join(' | ')} |`);
}
if (!opt.keep) {
  for (const suffix of ['', '-wal', '-shm']) rmSync(SQLITE_FILE + suffix, { force: true });
  if (engines.includes('postgres')) {
    const client = new pg.Client({ connectionString: PG_BASE });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    await client.end();
  }
}
