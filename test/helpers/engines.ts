// Temporary databases for tests: a fresh SQLite file, or a fresh PostgreSQL schema, per call.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';

export const PG_BASE_URL = process.env.TASKMILL_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TempDatabase {
  /** A database URL for the config or openStore. */
  url: string;
  /** A scratch directory owned by this database (tasks folder, var dir, …). */
  dir: string;
  drop(): Promise<void>;
}

let pgAvailable: Promise<boolean> | undefined;

/** Whether PostgreSQL answers. In CI it must: a missing server fails the run instead of skipping. */
export function postgresAvailable(): Promise<boolean> {
  pgAvailable ??= (async () => {
    const client = new pg.Client({ connectionString: PG_BASE_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch (err) {
      if (process.env.CI) throw new Error(`PostgreSQL must be reachable in CI at ${PG_BASE_URL}: ${(err as Error).message}`);
      console.log(`# SKIPPED PostgreSQL tests: no server answers at ${PG_BASE_URL}`);
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return pgAvailable;
}

export async function tempSqlite(): Promise<TempDatabase> {
  const dir = mkdtempSync(path.join(tmpdir(), 'taskmill-test-'));
  return {
    url: `sqlite:${path.join(dir, 'var', 'taskmill.db')}`,
    dir,
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

export async function tempPostgres(): Promise<TempDatabase> {
  const dir = mkdtempSync(path.join(tmpdir(), 'taskmill-test-'));
  const schema = `tm_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  return {
    url: `${PG_BASE_URL}?schema=${schema}`,
    dir,
    drop: async () => {
      const client = new pg.Client({ connectionString: PG_BASE_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Engine {
  name: 'sqlite' | 'postgres';
  create(): Promise<TempDatabase>;
  /** False when PostgreSQL is absent outside CI: the caller skips (and it was printed). */
  available(): Promise<boolean>;
}

export const ENGINES: Engine[] = [
  { name: 'sqlite', create: tempSqlite, available: async () => true },
  { name: 'postgres', create: tempPostgres, available: postgresAvailable },
];
