// Who may use the admin page and the HTTP API, as stored: only hashes, never a password or token.

export type UserRole = 'admin' | 'viewer';
export const USER_ROLES: readonly UserRole[] = ['admin', 'viewer'];

export interface UserRecord {
  name: string;
  role: UserRole;
  /** "scrypt$N$r$p$salt$hash"; see src/client/secrets.ts. */
  passwordHash: string;
  createdAt: Date;
}

export interface TokenRecord {
  id: number;
  label: string | null;
  role: UserRole;
  /** SHA-256 of the token, hex. */
  tokenHash: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export interface SessionRecord {
  /** SHA-256 of the session id, hex. */
  idHash: string;
  name: string;
  role: UserRole;
  createdAt: Date;
  expiresAt: Date;
}
