// On PostgreSQL, add() joins the application's own transaction: the task exists only if its data commits.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { ENGINES, PG_BASE_URL } from '../helpers/engines.js';
import { makeProject } from '../helpers/project.js';

const postgres = ENGINES.find((e) => e.name === 'postgres')!;
const sqlite = ENGINES.find((e) => e.name === 'sqlite')!;
const available = await postgres.available();

describe('add inside the caller\'s transaction (PostgreSQL)', { skip: available ? false : 'PostgreSQL not reachable' }, () => {
  it('commits with the caller\'s data, vanishes with its rollback, and wakes a worker only on commit', async () => {
    const p = await makeProject(postgres, { echo: `export default async (x) => x;` });
    const app = new pg.Client({ connectionString: PG_BASE_URL });
    await app.connect();
    const worker = p.mill.worker();
    let woke = 0;
    const off = p.mill.store.subscribe((e) => {
      if (e.kind === 'wake') woke++;
    });
    try {
      await app.query('CREATE TEMP TABLE orders (id int)');
      // Rolled back: neither the order nor the task remains.
      await app.query('BEGIN');
      await app.query('INSERT INTO orders VALUES (1)');
      const lost = await p.mill.add('echo', { order: 1 }, { transaction: app });
      await app.query('ROLLBACK');
      assert.equal(await p.mill.get(lost.id), null);

      // Committed: invisible to others until the commit, then run.
      await app.query('BEGIN');
      await app.query('INSERT INTO orders VALUES (2)');
      const kept = await p.mill.add('echo', { order: 2 }, { transaction: app });
      assert.equal(await p.mill.get(kept.id), null, 'not visible before the commit');
      const wokeBefore = woke;
      await app.query('COMMIT');
      assert.equal((await p.mill.get(kept.id))?.status, 'WAITING');
      worker.start();
      const done = await p.mill.wait(kept.id, { timeout: '10s' });
      assert.equal(done.status, 'COMPLETED');
      assert.deepEqual(done.result, { order: 2 });
      assert.ok(woke > wokeBefore, 'the commit delivered a wake-up');
      // The caller's connection keeps its own search_path.
      const { rows } = await app.query<{ n: string }>('SELECT count(*) AS n FROM orders');
      assert.equal(rows[0]?.n, '1');
    } finally {
      off();
      await worker.stop({ timeoutMs: 100 });
      await app.end();
      await p.close();
    }
  });
});

describe('add inside a transaction (SQLite)', () => {
  it('is refused with a clear message', async () => {
    const p = await makeProject(sqlite, { echo: `export default async (x) => x;` });
    try {
      const fake = { query: async () => ({ rows: [] }) };
      await assert.rejects(p.mill.add('echo', {}, { transaction: fake }), /only supported on PostgreSQL/);
      assert.equal((await p.mill.list()).length, 0);
    } finally {
      await p.close();
    }
  });
});
