// Finds an engine's numbered migrations (001_init.sql, 002_…) beside its store.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function readMigrations(dirUrl: URL): Migration[] {
  const dir = fileURLToPath(dirUrl);
  return readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 3)), name: f.slice(4, -4), sql: readFileSync(`${dir}/${f}`, 'utf8') }));
}
