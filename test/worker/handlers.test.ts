// Handler lookup by name: case-insensitive names, and unknown names that cost a directory scan at
// most, never a re-import, so an application adding by bad names in a loop stays flat in memory.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { HandlerRegistry, discoverHandlers } from '../../src/worker/handlers.js';
import { ENGINES, tempSqlite } from '../helpers/engines.js';
import { makeProject } from '../helpers/project.js';

const sqlite = ENGINES.find((e) => e.name === 'sqlite')!;
const ROOT = path.resolve(import.meta.dirname, '..', '..');

describe('handler names', () => {
  it('a file with upper-case letters is found lower case; of two differing by case, the first in sorted order wins', async () => {
    const db = await tempSqlite();
    try {
      const dir = path.join(db.dir, 'tasks');
      mkdirSync(path.join(dir, 'Billing'), { recursive: true });
      writeFileSync(path.join(dir, 'SendMail.ts'), 'export default () => "SendMail.ts";');
      writeFileSync(path.join(dir, 'sendmail.ts'), 'export default () => "sendmail.ts";');
      writeFileSync(path.join(dir, 'Billing', 'Charge.js'), 'export default () => "Charge.js";');
      writeFileSync(path.join(dir, 'report.js'), 'export default () => "report.js";');
      writeFileSync(path.join(dir, 'report.ts'), 'export default () => "report.ts";');
      const found = discoverHandlers(dir);
      assert.deepEqual([...found.keys()].sort(), ['billing/charge', 'report', 'sendmail']);
      assert.equal(found.get('sendmail'), path.join(dir, 'SendMail.ts'));
      assert.equal(found.get('report'), path.join(dir, 'report.ts'), '.ts wins over its compiled twin');
      const registry = new HandlerRegistry(dir);
      assert.ok(registry.has('SENDMAIL') && registry.has('Billing/Charge'));
      assert.equal((await registry.load('SendMail'))?.run({}, {} as never), 'SendMail.ts');
    } finally {
      await db.drop();
    }
  });

  it('GENERATE_CACHE runs the handler generate_cache, stored lower case, from add, addMany and ctx.add', async () => {
    const p = await makeProject(sqlite, {
      generate_cache: 'export default async (p) => ({ cached: p.n });',
      chain: 'export default async (_p, ctx) => ({ next: await ctx.add("GENERATE_CACHE", { n: 2 }) });',
    });
    const worker = p.mill.worker();
    try {
      const a = await p.mill.add('GENERATE_CACHE', { n: 1 });
      assert.equal(a.name, 'generate_cache');
      const [b] = await p.mill.addMany([{ name: 'Generate_Cache', payload: { n: 3 } }]);
      assert.equal(b?.name, 'generate_cache');
      const c = await p.mill.add('CHAIN');
      worker.start();
      assert.deepEqual((await p.mill.wait(a.id, { timeout: '20s' })).result, { cached: 1 });
      const chained = await p.mill.wait(c.id, { timeout: '20s' });
      assert.equal(chained.status, 'COMPLETED', chained.error ?? '');
      const next = await p.mill.wait((chained.result as { next: number }).next, { timeout: '20s' });
      assert.equal(next.name, 'generate_cache');
      assert.deepEqual(next.result, { cached: 2 });
      assert.equal((await p.mill.list({ name: 'GENERATE_CACHE' })).length, 3);
      // Schedules' task field likewise.
      const s = await p.mill.schedule('caching', { task: 'GENERATE_CACHE', every: '1 hour' });
      assert.equal(s.task, 'generate_cache');
      const report = await p.mill.reconcileSchedules([{ name: 'from-file', task: 'Generate_Cache', every: '1 hour' }]);
      assert.deepEqual(report.errors, []);
      assert.equal((await p.mill.schedules()).find((x) => x.name === 'from-file')?.task, 'generate_cache');
    } finally {
      await worker.stop({ timeoutMs: 5000 });
      await p.close();
    }
  });
});

describe('unknown names cost nothing', () => {
  it('an unknown name re-reads the folder (once per burst) and imports nothing again', async () => {
    const db = await tempSqlite();
    try {
      const dir = path.join(db.dir, 'tasks');
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'known.ts'), 'export default () => 1;');
      let now = 1_000_000;
      const registry = new HandlerRegistry(dir, () => now);
      const first = await registry.load('known');
      for (let i = 0; i < 1000; i++) assert.equal(registry.has(`nope-${i}`), false);
      now += 5_000;
      // Same file, same mtime and size: the very same handler, not a fresh import.
      assert.equal(await registry.load('known'), first);
      // A file added during a burst is seen at once (its folder's mtime changed).
      writeFileSync(path.join(dir, 'later.ts'), 'export default () => 2;');
      assert.equal(registry.has('later'), true);
      // A changed file is imported again, once.
      writeFileSync(path.join(dir, 'known.ts'), 'export default () => 3;');
      utimesSync(path.join(dir, 'known.ts'), new Date(), new Date(Date.now() + 10_000));
      now += 5_000;
      const changed = await registry.load('known');
      assert.notEqual(changed, first);
      assert.equal(changed?.run(null, {} as never), 3);
    } finally {
      await db.drop();
    }
  });

  it('memory stays flat over 100,000 adds mixing known and unknown names (SQLite, a child process)', { timeout: 120_000 }, async () => {
    const db = await tempSqlite();
    try {
      const tasksDir = path.join(db.dir, 'tasks');
      mkdirSync(tasksDir, { recursive: true });
      writeFileSync(path.join(tasksDir, 'known.ts'), 'export const options = { queue: "q" };\nexport default async () => null;');
      const script = path.join(db.dir, 'loop.mts');
      writeFileSync(
        script,
        `import { Taskmill } from ${JSON.stringify(path.join(ROOT, 'src/client/taskmill.ts'))};
const mill = await Taskmill.open({ config: { database: ${JSON.stringify(db.url)}, tasksDir: ${JSON.stringify(tasksDir)} }, env: {} });
const gc = globalThis.gc as () => void;
// Every fourth add is known (a real insert), the others each a different unknown name, refused.
async function adds(from: number, to: number) {
  let refused = 0;
  for (let i = from; i < to; i++) {
    try {
      await mill.add(i % 4 === 0 ? 'known' : 'unknown-' + i, { i });
    } catch (err) {
      if ((err as { code?: string }).code !== 'UNKNOWN_TASK') throw err;
      refused++;
    }
  }
  return refused;
}
await adds(0, 5_000);
gc();
const before = process.memoryUsage();
const started = Date.now();
const refused = await adds(5_000, 105_000);
gc();
const after = process.memoryUsage();
const waiting = (await mill.store.counts()).WAITING;
console.log(JSON.stringify({ refused, waiting, ms: Date.now() - started, heap: after.heapUsed - before.heapUsed, rss: after.rss - before.rss }));
await mill.close();
`,
      );
      const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const killer = setTimeout(() => child.kill('SIGKILL'), 100_000);
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      clearTimeout(killer);
      assert.equal(code, 0, `the loop failed or timed out: ${err}`);
      const m = JSON.parse(out.trim()) as { refused: number; waiting: number; ms: number; heap: number; rss: number };
      console.log(`# 100,000 adds: ${m.ms} ms, heap ${(m.heap / 1_048_576).toFixed(1)} MB, RSS ${(m.rss / 1_048_576).toFixed(1)} MB`);
      assert.equal(m.refused, 75_000);
      // Before, every unknown name made the next known add import its handler again: a module and
      // a loader each time, tens of MB within a few thousand adds.
      assert.ok(m.heap < 8 * 1_048_576, `heap grew ${(m.heap / 1_048_576).toFixed(1)} MB over 100,000 adds`);
      assert.ok(m.rss < 48 * 1_048_576, `RSS grew ${(m.rss / 1_048_576).toFixed(1)} MB over 100,000 adds`);
      assert.equal(m.waiting, 26_250, 'every known add was stored');
    } finally {
      await db.drop();
    }
  });
});
