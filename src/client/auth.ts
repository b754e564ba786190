// Who may use the admin page and the HTTP API: users (name + password), bearer tokens, browser
// sessions and the one-time login link. Secrets are hashed here, before the store sees them, and
// each is returned in clear exactly once, to the caller that created it.
import { InvalidInputError } from '../model/errors.js';
import type { Clock } from '../model/clock.js';
import { USER_ROLES, type TokenRecord, type UserRole } from '../model/user.js';
import type { Store } from '../store/store.js';
import { hashPassword, randomSecret, sha256, verifyPassword } from './secrets.js';

export interface UserInfo {
  name: string;
  role: UserRole;
  createdAt: Date;
}

export interface TokenInfo {
  id: number;
  label: string | null;
  role: UserRole;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export interface SessionInfo {
  name: string;
  role: UserRole;
  expiresAt: Date;
}

/** Bearer tokens start with this, so one found in a log or a repository is recognisable. */
export const TOKEN_PREFIX = 'tm_';
/** How long a one-time login link stays valid when unused. */
export const LOGIN_LINK_TTL_MS = 24 * 3_600_000;
/** The name a session opened by a one-time login link carries (no user stands behind it). */
export const LINK_SESSION_NAME = 'setup-link';
/** A token's last use is written at most this often, so a busy API client does not write per request. */
const TOUCH_EVERY_MS = 60_000;
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
export const MIN_PASSWORD_LENGTH = 8;

export function checkRole(role: string): UserRole {
  if (!(USER_ROLES as readonly string[]).includes(role)) {
    throw new InvalidInputError(`invalid role "${role}": use admin (reads and writes) or viewer (reads only).`);
  }
  return role as UserRole;
}

export function checkUserName(name: string): string {
  if (!USER_NAME.test(name) || name === LINK_SESSION_NAME) {
    throw new InvalidInputError(
      `invalid user name ${JSON.stringify(name)}: use up to 64 letters, digits, "_", ".", "@" or "-", starting with a letter or digit.`,
    );
  }
  return name;
}

function tokenInfo(t: TokenRecord): TokenInfo {
  return { id: t.id, label: t.label, role: t.role, createdAt: t.createdAt, lastUsedAt: t.lastUsedAt };
}

export class WebAuth {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async addUser(name: string, password: string, role: UserRole): Promise<UserInfo> {
    checkUserName(name);
    checkRole(role);
    if (password.length < MIN_PASSWORD_LENGTH) {
      throw new InvalidInputError(`the password is too short: use at least ${MIN_PASSWORD_LENGTH} characters.`);
    }
    const createdAt = this.clock.now();
    const added = await this.store.addUser({ name, role, passwordHash: await hashPassword(password), createdAt });
    if (!added) throw new InvalidInputError(`a user named "${name}" exists; remove it first with "taskmill user rm ${name}".`);
    return { name, role, createdAt };
  }

  /** Removes the user and ends their sessions; false if there was none. */
  async removeUser(name: string): Promise<boolean> {
    return this.store.removeUser(name);
  }

  async users(): Promise<UserInfo[]> {
    return (await this.store.listUsers()).map((u) => ({ name: u.name, role: u.role, createdAt: u.createdAt }));
  }

  /** The user when name and password match; null otherwise (an unknown name takes as long). */
  async checkPassword(name: string, password: string): Promise<UserInfo | null> {
    const user = USER_NAME.test(name) ? await this.store.getUser(name) : null;
    const ok = await verifyPassword(password, user?.passwordHash ?? null);
    return ok && user ? { name: user.name, role: user.role, createdAt: user.createdAt } : null;
  }

  /** A new bearer token: returned in clear here only; stored as its SHA-256. */
  async createToken(role: UserRole, label: string | null = null): Promise<{ token: string; info: TokenInfo }> {
    checkRole(role);
    if (label !== null && (label.length === 0 || label.length > 100)) {
      throw new InvalidInputError('invalid token label: use 1 to 100 characters.');
    }
    const token = TOKEN_PREFIX + randomSecret();
    const record = await this.store.addToken({ label, role, tokenHash: sha256(token), createdAt: this.clock.now() });
    return { token, info: tokenInfo(record) };
  }

  async tokens(): Promise<TokenInfo[]> {
    return (await this.store.listTokens()).map(tokenInfo);
  }

  async revokeToken(id: number): Promise<boolean> {
    if (!Number.isSafeInteger(id) || id < 1) throw new InvalidInputError(`invalid token id ${id}: use the id "taskmill tokens" shows.`);
    return this.store.removeToken(id);
  }

  /** The token's record when it exists (revoked ones do not). */
  async checkToken(token: string): Promise<TokenInfo | null> {
    if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) return null;
    const record = await this.store.findToken(sha256(token));
    if (!record) return null;
    const now = this.clock.now();
    if (!record.lastUsedAt || now.getTime() - record.lastUsedAt.getTime() > TOUCH_EVERY_MS) {
      await this.store.touchToken(record.id, now);
    }
    return tokenInfo(record);
  }

  /** Opens a session; returns its id (for the cookie), stored only as a hash. */
  async createSession(name: string, role: UserRole, ttlMs: number): Promise<string> {
    const id = randomSecret();
    const createdAt = this.clock.now();
    await this.store.addSession({ idHash: sha256(id), name, role, createdAt, expiresAt: new Date(createdAt.getTime() + ttlMs) });
    return id;
  }

  async session(id: string): Promise<SessionInfo | null> {
    if (id.length === 0 || id.length > 100) return null;
    const s = await this.store.findSession(sha256(id), this.clock.now());
    return s ? { name: s.name, role: s.role, expiresAt: s.expiresAt } : null;
  }

  async endSession(id: string): Promise<void> {
    await this.store.removeSession(sha256(id));
  }

  /** True while nobody can log in: no user and no token exist. */
  async needsSetup(): Promise<boolean> {
    const { users, tokens } = await this.store.countPrincipals();
    return users === 0 && tokens === 0;
  }

  /** A one-time login secret, valid until used or for `ttlMs`; stored only as a hash. */
  async createLoginLink(ttlMs = LOGIN_LINK_TTL_MS): Promise<string> {
    const secret = randomSecret();
    const now = this.clock.now();
    await this.store.addLoginLink(sha256(secret), now, new Date(now.getTime() + ttlMs));
    return secret;
  }

  /** Consumes a login secret: true the first time, for an unexpired one. */
  async useLoginLink(secret: string): Promise<boolean> {
    if (secret.length === 0 || secret.length > 100) return false;
    return this.store.useLoginLink(sha256(secret), this.clock.now());
  }
}
