// Migrations: applied once on open, and a database written by a newer version is refused untouched.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openStore } from '../../src/store/open.js';
import { ENGINES, PG_BASE_URL } from '../helpers/engines.js';
import { newTask } from '../helpers/fixtures.js';

/** Sets the stored schema version behind the store's back, as a newer taskmill would have. */
async function forgeVersion(url: string, version: number): Promise<void> {
  if (url.startsWith('sqlite:')) {
    const db = new Database(url.slice('sqlite:'.length));
    db.prepare("UPDATE taskmill_meta SET value = ? WHERE key = 'schema_version'").run(String(version));
    db.close();
    return;
  }
  const schema = new URL(url).searchParams.get('schema');
  const client = new pg.Client({ connectionString: PG_BASE_URL });
  await client.connect();
  try {
    await client.query(`UPDATE ${schema}.taskmill_meta SET value = $1 WHERE key = 'schema_version'`, [String(version)]);
  } finally {
    await client.end();
  }
}

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`migrations: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    it('creates the schema on first open and is idempotent', async () => {
      const db = await engine.create();
      try {
        const a = await openStore(db.url);
        await a.close();
        const b = await openStore(db.url);
        const m = await b.migrate();
        assert.equal(m.from, m.to);
        await b.close();
      } finally {
        await db.drop();
      }
    });

    it('refuses a database written by a newer version, and changes nothing', async () => {
      const db = await engine.create();
      try {
        const s = await openStore(db.url);
        await s.close();
        await forgeVersion(db.url, 999);
        await assert.rejects(openStore(db.url), (e: Error & { code?: string }) => {
          assert.equal(e.code, 'SCHEMA_TOO_NEW');
          assert.match(e.message, /schema version 999/);
          assert.match(e.message, /Upgrade taskmill/);
          return true;
        });
        // Still refused: the refusal wrote nothing.
        await assert.rejects(openStore(db.url), /schema version 999/);
      } finally {
        await db.drop();
      }
    });

    it('fails fast with a clear message when the database cannot be reached', { skip: engine.name !== 'postgres' }, async () => {
      const started = Date.now();
      await assert.rejects(openStore('postgres://postgres@127.0.0.1:1/none'), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'DATABASE_UNREACHABLE');
        assert.match(e.message, /Check "database"/);
        return true;
      });
      assert.ok(Date.now() - started < 10_000);
    });
  });
}

const postgres = ENGINES.find((e) => e.name === 'postgres');
describe('PostgreSQL schema names', { skip: (await postgres?.available()) ? false : 'PostgreSQL not reachable' }, () => {
  it('works in a schema whose name is a reserved word ("user")', async () => {
    const admin = new pg.Client({ connectionString: PG_BASE_URL });
    await admin.connect();
    const drop = () => admin.query('DROP SCHEMA IF EXISTS "user" CASCADE');
    await drop();
    try {
      const store = await openStore(`${PG_BASE_URL}?schema=user`);
      try {
        const [added] = await store.add([newTask('a')], new Date());
        const woke = new Promise<void>((resolve) => {
          const off = store.subscribe(() => {
            off();
            resolve();
          });
        });
        await store.cancel(added!.task.id, new Date());
        const [claimable] = await store.add([newTask('b')], new Date());
        await woke;
        const [t] = await store.claim({ lock: { host: 'h', pid: 1, workerId: 'w' }, queues: null, limit: 1, now: new Date(), leaseMs: 30_000 });
        assert.equal(t?.id, claimable!.task.id);
        await store.complete([{ id: t!.id, workerId: 'w', attempt: 1, resultJson: '1', output: [] }], new Date());
        assert.equal((await store.get(t!.id))?.status, 'COMPLETED');
        const { rows } = await admin.query('SELECT count(*)::int AS n FROM "user".tasks');
        assert.equal(rows[0].n, 2);
      } finally {
        await store.close();
      }
    } finally {
      await drop();
      await admin.end();
    }
  });
});
