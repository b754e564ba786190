// Picks the engine from the database URL; each engine is loaded only when used.
import { InvalidInputError } from '../model/errors.js';
import type { Store } from './store.js';

/** Opens the store; applies pending migrations unless `migrate` is false (for `taskmill migrate` to report them). */
export async function openStore(database: string, { migrate = true }: { migrate?: boolean } = {}): Promise<Store> {
  if (database.startsWith('sqlite:')) {
    const { SqliteStore } = await import('./sqlite/store.js');
    return SqliteStore.open(database.slice('sqlite:'.length), { migrate });
  }
  if (database.startsWith('postgres://') || database.startsWith('postgresql://')) {
    const { PostgresStore } = await import('./postgres/store.js');
    return PostgresStore.open(database, { migrate });
  }
  throw new InvalidInputError(
    `unsupported database "${database}": use "sqlite:PATH" or "postgres://USER@HOST:PORT/DB[?schema=NAME]".`,
  );
}
