// PostgreSQL drops connections (a restart, a failover, an administrator): the store must answer
// with rejected calls, never end the process, and work again on fresh connections.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { openStore } from '../../src/store/open.js';
import { PG_BASE_URL, postgresAvailable, tempPostgres } from '../helpers/engines.js';
import { newTask } from '../helpers/fixtures.js';

const available = await postgresAvailable();

describe('postgres: connections the server drops', { skip: available ? false : 'PostgreSQL not reachable' }, () => {
  it('survives its connections being terminated mid-work, and works again afterwards', async () => {
    const db = await tempPostgres();
    const schema = new URL(db.url).searchParams.get('schema');
    const store = await openStore(db.url);
    const killer = new pg.Client({ connectionString: PG_BASE_URL });
    await killer.connect();
    const uncaught: Error[] = [];
    const onUncaught = (err: Error) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const lock = { host: 'test-host', pid: 1, workerId: 'w1' };
      const until = Date.now() + 3_000;
      let rounds = 0;
      let failures = 0;
      let kills = 0;
      // Adds, claims and completions in transactions, as a worker does, while their connections are cut.
      const work = async () => {
        while (Date.now() < until) {
          try {
            await store.add([newTask('a'), newTask('b', { uniqueKey: `k${rounds}` })], new Date());
            const claimed = await store.claim({ lock, queues: null, limit: 5, now: new Date(), leaseMs: 30_000 });
            await store.complete(
              claimed.map((t) => ({ id: t.id, workerId: 'w1', attempt: t.attempts, resultJson: JSON.stringify(null), output: [] })),
              new Date(),
            );
            rounds++;
          } catch {
            failures++;
          }
        }
      };
      const cut = async () => {
        while (Date.now() < until) {
          const r = await killer.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
            `taskmill ${schema}`,
          ]);
          kills += r.rowCount ?? 0;
          await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 30));
        }
      };
      await Promise.all([work(), work(), work(), cut()]);
      assert.ok(kills > 10, `connections were cut (${kills})`);
      assert.ok(failures > 0, 'some calls were interrupted');
      assert.ok(rounds > 0, 'some calls went through between the cuts');
      // Give late 'error' events of dropped connections time to arrive.
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(uncaught.map((e) => e.message), [], 'no error escaped the store');

      const [r] = await store.add([newTask('after')], new Date());
      assert.ok(r?.created);
      assert.equal((await store.get(r.task.id))?.status, 'WAITING');
    } finally {
      process.off('uncaughtException', onUncaught);
      await killer.end();
      await store.close();
      await db.drop();
    }
  });
});
