// The PostgreSQL side of web authentication: users, bearer tokens, sessions and one-time login links.
// Only hashes reach these tables; the client hashes before it calls the store.
import type { SessionRecord, TokenRecord, UserRecord, UserRole } from '../../model/user.js';
import type { ExternalTransaction } from '../store.js';

type Db = ExternalTransaction;

interface UserRow { name: string; role: UserRole; password_hash: string; created_at: Date }
interface TokenRow { id: string; label: string | null; role: UserRole; token_hash: string; created_at: Date; last_used_at: Date | null }
interface SessionRow { id_hash: string; name: string; role: UserRole; created_at: Date; expires_at: Date }

const toUser = (r: UserRow): UserRecord => ({
  name: r.name, role: r.role, passwordHash: r.password_hash, createdAt: r.created_at,
});
const toToken = (r: TokenRow): TokenRecord => ({
  id: Number(r.id), label: r.label, role: r.role, tokenHash: r.token_hash, createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
});
const toSession = (r: SessionRow): SessionRecord => ({
  idHash: r.id_hash, name: r.name, role: r.role, createdAt: r.created_at, expiresAt: r.expires_at,
});

async function rows<T>(db: Db, sql: string, values: unknown[] = []): Promise<T[]> {
  return (await db.query(sql, values)).rows as T[];
}

/** False when the name is taken. */
export async function addUser(db: Db, u: UserRecord): Promise<boolean> {
  const r = await rows(
    db,
    'INSERT INTO web_users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING RETURNING name',
    [u.name, u.role, u.passwordHash, u.createdAt],
  );
  return r.length === 1;
}

export async function getUser(db: Db, name: string): Promise<UserRecord | null> {
  const [r] = await rows<UserRow>(db, 'SELECT * FROM web_users WHERE name = $1', [name]);
  return r ? toUser(r) : null;
}

export async function listUsers(db: Db): Promise<UserRecord[]> {
  return (await rows<UserRow>(db, 'SELECT * FROM web_users ORDER BY name')).map(toUser);
}

/** Removes the user and ends their sessions (inside the caller's transaction). */
export async function removeUser(db: Db, name: string): Promise<boolean> {
  await db.query('DELETE FROM web_sessions WHERE name = $1', [name]);
  return (await rows(db, 'DELETE FROM web_users WHERE name = $1 RETURNING name', [name])).length === 1;
}

export async function addToken(db: Db, t: Omit<TokenRecord, 'id' | 'lastUsedAt'>): Promise<TokenRecord> {
  const [r] = await rows<TokenRow>(
    db,
    'INSERT INTO web_tokens (label, role, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING *',
    [t.label, t.role, t.tokenHash, t.createdAt],
  );
  return toToken(r as TokenRow);
}

export async function findToken(db: Db, tokenHash: string): Promise<TokenRecord | null> {
  const [r] = await rows<TokenRow>(db, 'SELECT * FROM web_tokens WHERE token_hash = $1', [tokenHash]);
  return r ? toToken(r) : null;
}

export async function touchToken(db: Db, id: number, at: Date): Promise<void> {
  await db.query('UPDATE web_tokens SET last_used_at = $2 WHERE id = $1', [id, at]);
}

export async function listTokens(db: Db): Promise<TokenRecord[]> {
  return (await rows<TokenRow>(db, 'SELECT * FROM web_tokens ORDER BY id')).map(toToken);
}

export async function removeToken(db: Db, id: number): Promise<boolean> {
  return (await rows(db, 'DELETE FROM web_tokens WHERE id = $1 RETURNING id', [id])).length === 1;
}

/** Stores a session; expired ones go at the same time, so the table stays small without a sweeper. */
export async function addSession(db: Db, s: SessionRecord): Promise<void> {
  await db.query('DELETE FROM web_sessions WHERE expires_at <= $1', [s.createdAt]);
  await db.query('INSERT INTO web_sessions (id_hash, name, role, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)', [
    s.idHash, s.name, s.role, s.createdAt, s.expiresAt,
  ]);
}

export async function findSession(db: Db, idHash: string, now: Date): Promise<SessionRecord | null> {
  const [r] = await rows<SessionRow>(db, 'SELECT * FROM web_sessions WHERE id_hash = $1 AND expires_at > $2', [idHash, now]);
  return r ? toSession(r) : null;
}

export async function removeSession(db: Db, idHash: string): Promise<void> {
  await db.query('DELETE FROM web_sessions WHERE id_hash = $1', [idHash]);
}

export async function addLoginLink(db: Db, secretHash: string, createdAt: Date, expiresAt: Date): Promise<void> {
  await db.query('DELETE FROM web_login_links WHERE expires_at <= $1', [createdAt]);
  await db.query('INSERT INTO web_login_links (secret_hash, created_at, expires_at) VALUES ($1, $2, $3)', [
    secretHash, createdAt, expiresAt,
  ]);
}

/** Consumes the link: true once, for an unexpired one; false ever after. */
export async function useLoginLink(db: Db, secretHash: string, now: Date): Promise<boolean> {
  const [r] = await rows<{ expires_at: Date }>(
    db,
    'DELETE FROM web_login_links WHERE secret_hash = $1 RETURNING expires_at',
    [secretHash],
  );
  return r !== undefined && r.expires_at.getTime() > now.getTime();
}

export async function countPrincipals(db: Db): Promise<{ users: number; tokens: number }> {
  const [r] = await rows<{ users: string; tokens: string }>(
    db,
    'SELECT (SELECT count(*) FROM web_users) AS users, (SELECT count(*) FROM web_tokens) AS tokens',
  );
  return { users: Number(r?.users ?? 0), tokens: Number(r?.tokens ?? 0) };
}
