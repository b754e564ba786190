// API enqueue throughput over HTTP: `taskmill web` (the built CLI) in its own process, and this
// process as the client with a bearer token. Per engine: tasks added one request each (one client
// at a time, and 10 at once), and in batches of 100 per request. Prints one table.
//   npm run build && node bench/web.mjs [--only sqlite|postgres] [--single 2000] [--batched 20000]
import { spawn } from 'node:child_process';
import { Buffer } from 'node:buffer';
import http from 'node:http';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Taskmill } from '../dist/index.js';

const { values: opt } = parseArgs({ options: {
  only: { type: 'string' },
  single: { type: 'string', default: '2000' },
  batched: { type: 'string', default: '20000' },
} });
const SINGLE_N = Number(opt.single), BATCHED_N = Number(opt.batched), BATCH = 100, CLIENTS = 10;
const PG_BASE = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const CLI = new URL('../dist/cli/main.js', import.meta.url).pathname;

async function pgAdmin(sql) {
  const c = new pg.Client({ connectionString: PG_BASE });
  await c.connect();
  try { return await c.query(sql); } finally { await c.end(); }
}

async function run(engine) {
  const dir = mkdtempSync(path.join(tmpdir(), 'taskmill-bench-web-'));
  mkdirSync(path.join(dir, 'tasks'));
  writeFileSync(path.join(dir, 'tasks', 'noop.mjs'), 'export default function noop() {}\n');
  let schema = null;
  let database = `sqlite:${path.join(dir, 'var', 'taskmill.db')}`;
  if (engine === 'postgres') {
    schema = `bench_web_${process.pid}`;
    await pgAdmin(`CREATE SCHEMA ${schema}`);
    database = `${PG_BASE}?schema=${schema}`;
  }
  writeFileSync(path.join(dir, 'taskmill.config.json'), JSON.stringify({ database, tasksDir: 'tasks', varDir: 'var', web: { port: 0 } }));
  const mill = await Taskmill.open({ file: path.join(dir, 'taskmill.config.json'), env: {} });
  const { token } = await mill.auth.createToken('admin', 'bench');
  await mill.close();

  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TASKMILL_')));
  const server = spawn(process.execPath, [CLI, 'web', '--port', '0'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const url = await new Promise((resolve, reject) => {
    server.stdout.on('data', (d) => {
      out += d;
      const m = /serving on (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    server.once('exit', (code) => reject(new Error(`taskmill web exited ${code}: ${out}`)));
  });
  // node:http with keep-alive: a lighter client than fetch, so the figures are mostly the server's.
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const post = (p, body) =>
    new Promise((resolve, reject) => {
      const text = JSON.stringify(body);
      const req = http.request(url + p.slice(1), {
        method: 'POST', agent,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      }, (res) => {
        let answer = '';
        res.on('data', (d) => (answer += d));
        res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`${p}: ${res.statusCode} ${answer}`))));
      });
      req.on('error', reject);
      req.end(text);
    });
  const rows = [];
  const measure = async (label, n, work) => {
    const t0 = performance.now();
    await work();
    const s = (performance.now() - t0) / 1000;
    rows.push({ engine, workload: label, tasks: n, seconds: s.toFixed(2), perSecond: Math.round(n / s) });
  };
  try {
    for (let i = 0; i < 50; i++) await post('/api/tasks', { name: 'noop' }); // warm-up
    await measure('one per request, 1 client', SINGLE_N, async () => {
      for (let i = 0; i < SINGLE_N; i++) await post('/api/tasks', { name: 'noop', payload: { i } });
    });
    await measure(`one per request, ${CLIENTS} clients`, SINGLE_N, async () => {
      let next = 0;
      await Promise.all(Array.from({ length: CLIENTS }, async () => {
        while (next < SINGLE_N) { const i = next++; await post('/api/tasks', { name: 'noop', payload: { i } }); }
      }));
    });
    await measure(`batches of ${BATCH}, 1 client`, BATCHED_N, async () => {
      for (let done = 0; done < BATCHED_N; done += BATCH) {
        await post('/api/tasks/batch', { tasks: Array.from({ length: BATCH }, (_, i) => ({ name: 'noop', payload: { i: done + i } })) });
      }
    });
  } finally {
    agent.destroy();
    server.kill('SIGTERM');
    await new Promise((r) => (server.exitCode !== null ? r() : server.once('exit', r)));
    if (schema) await pgAdmin(`DROP SCHEMA ${schema} CASCADE`);
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

const engines = opt.only ? [opt.only] : ['sqlite', 'postgres'];
const all = [];
for (const e of engines) all.push(...(await run(e)));
console.log('API enqueue over HTTP (taskmill web in its own process; tasks per second)');
console.table(all);
