// The SQLite side of web authentication: users, bearer tokens, sessions and one-time login links.
// Only hashes reach these tables; the client hashes before it calls the store.
import type Database from 'better-sqlite3';
import type { SessionRecord, TokenRecord, UserRecord, UserRole } from '../../model/user.js';

interface UserRow { name: string; role: UserRole; password_hash: string; created_at: number }
interface TokenRow { id: number; label: string | null; role: UserRole; token_hash: string; created_at: number; last_used_at: number | null }
interface SessionRow { id_hash: string; name: string; role: UserRole; created_at: number; expires_at: number }

const toUser = (r: UserRow): UserRecord => ({
  name: r.name, role: r.role, passwordHash: r.password_hash, createdAt: new Date(r.created_at),
});
const toToken = (r: TokenRow): TokenRecord => ({
  id: r.id, label: r.label, role: r.role, tokenHash: r.token_hash, createdAt: new Date(r.created_at),
  lastUsedAt: r.last_used_at === null ? null : new Date(r.last_used_at),
});
const toSession = (r: SessionRow): SessionRecord => ({
  idHash: r.id_hash, name: r.name, role: r.role, createdAt: new Date(r.created_at), expiresAt: new Date(r.expires_at),
});

/** False when the name is taken. */
export function addUser(db: Database.Database, u: UserRecord): boolean {
  return (
    db
      .prepare('INSERT INTO web_users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING')
      .run(u.name, u.role, u.passwordHash, u.createdAt.getTime()).changes === 1
  );
}

export function getUser(db: Database.Database, name: string): UserRecord | null {
  const r = db.prepare('SELECT * FROM web_users WHERE name = ?').get(name) as UserRow | undefined;
  return r ? toUser(r) : null;
}

export function listUsers(db: Database.Database): UserRecord[] {
  return (db.prepare('SELECT * FROM web_users ORDER BY name').all() as UserRow[]).map(toUser);
}

/** Removes the user and ends their sessions. */
export function removeUser(db: Database.Database, name: string): boolean {
  db.prepare('DELETE FROM web_sessions WHERE name = ?').run(name);
  return db.prepare('DELETE FROM web_users WHERE name = ?').run(name).changes === 1;
}

export function addToken(db: Database.Database, t: Omit<TokenRecord, 'id' | 'lastUsedAt'>): TokenRecord {
  const r = db
    .prepare('INSERT INTO web_tokens (label, role, token_hash, created_at) VALUES (?, ?, ?, ?) RETURNING *')
    .get(t.label, t.role, t.tokenHash, t.createdAt.getTime()) as TokenRow;
  return toToken(r);
}

export function findToken(db: Database.Database, tokenHash: string): TokenRecord | null {
  const r = db.prepare('SELECT * FROM web_tokens WHERE token_hash = ?').get(tokenHash) as TokenRow | undefined;
  return r ? toToken(r) : null;
}

export function touchToken(db: Database.Database, id: number, at: Date): void {
  db.prepare('UPDATE web_tokens SET last_used_at = ? WHERE id = ?').run(at.getTime(), id);
}

export function listTokens(db: Database.Database): TokenRecord[] {
  return (db.prepare('SELECT * FROM web_tokens ORDER BY id').all() as TokenRow[]).map(toToken);
}

export function removeToken(db: Database.Database, id: number): boolean {
  return db.prepare('DELETE FROM web_tokens WHERE id = ?').run(id).changes === 1;
}

/** Stores a session; expired ones go at the same time, so the table stays small without a sweeper. */
export function addSession(db: Database.Database, s: SessionRecord): void {
  db.prepare('DELETE FROM web_sessions WHERE expires_at <= ?').run(s.createdAt.getTime());
  db.prepare('INSERT INTO web_sessions (id_hash, name, role, created_at, expires_at) VALUES (?, ?, ?, ?, ?)').run(
    s.idHash, s.name, s.role, s.createdAt.getTime(), s.expiresAt.getTime(),
  );
}

export function findSession(db: Database.Database, idHash: string, now: Date): SessionRecord | null {
  const r = db.prepare('SELECT * FROM web_sessions WHERE id_hash = ? AND expires_at > ?').get(idHash, now.getTime()) as
    | SessionRow
    | undefined;
  return r ? toSession(r) : null;
}

export function removeSession(db: Database.Database, idHash: string): void {
  db.prepare('DELETE FROM web_sessions WHERE id_hash = ?').run(idHash);
}

export function addLoginLink(db: Database.Database, secretHash: string, createdAt: Date, expiresAt: Date): void {
  db.prepare('DELETE FROM web_login_links WHERE expires_at <= ?').run(createdAt.getTime());
  db.prepare('INSERT INTO web_login_links (secret_hash, created_at, expires_at) VALUES (?, ?, ?)').run(
    secretHash, createdAt.getTime(), expiresAt.getTime(),
  );
}

/** Consumes the link: true once, for an unexpired one; false ever after. */
export function useLoginLink(db: Database.Database, secretHash: string, now: Date): boolean {
  const r = db.prepare('DELETE FROM web_login_links WHERE secret_hash = ? RETURNING expires_at').get(secretHash) as
    | { expires_at: number }
    | undefined;
  return r !== undefined && r.expires_at > now.getTime();
}

export function countPrincipals(db: Database.Database): { users: number; tokens: number } {
  return db
    .prepare('SELECT (SELECT count(*) FROM web_users) AS users, (SELECT count(*) FROM web_tokens) AS tokens')
    .get() as { users: number; tokens: number };
}
