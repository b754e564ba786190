-- 005_web: who may use the admin page and the HTTP API. Only hashes are stored: a password as a salted
-- scrypt hash, a token, a session id and a one-time login secret as SHA-256 (each is 256 random bits).

CREATE TABLE web_users (
  name          text        PRIMARY KEY,
  role          text        NOT NULL CHECK (role IN ('admin', 'viewer')),
  -- "scrypt$N$r$p$salt$hash" (base64url), so the cost can be raised without breaking older hashes
  password_hash text        NOT NULL,
  created_at    timestamptz NOT NULL
);

CREATE TABLE web_tokens (
  id           bigserial   PRIMARY KEY,
  label        text,
  role         text        NOT NULL CHECK (role IN ('admin', 'viewer')),
  token_hash   text        NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL,
  last_used_at timestamptz
);

CREATE TABLE web_sessions (
  id_hash    text        PRIMARY KEY,
  -- a user's name, or the name a one-time login link gave (no user row behind it)
  name       text        NOT NULL,
  role       text        NOT NULL CHECK (role IN ('admin', 'viewer')),
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX web_sessions_name ON web_sessions (name);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

CREATE TABLE web_login_links (
  secret_hash text        PRIMARY KEY,
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL
);
