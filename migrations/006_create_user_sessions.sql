-- Up Migration

CREATE TABLE user_sessions (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- SHA-256 of the session cookie value.
  session_token_hash bytea NOT NULL,
  ip_address         inet,
  user_agent         text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  last_seen_at       timestamptz NOT NULL DEFAULT now(),
  expires_at         timestamptz NOT NULL,
  revoked_at         timestamptz,
  CONSTRAINT user_sessions_session_token_hash_key UNIQUE (session_token_hash),
  CONSTRAINT user_sessions_session_token_hash_check CHECK (octet_length(session_token_hash) = 32),
  CONSTRAINT user_sessions_expires_at_check CHECK (expires_at > created_at),
  CONSTRAINT user_sessions_last_seen_at_check CHECK (last_seen_at >= created_at)
);

-- A new, empty table: plain CREATE INDEX is instant here and keeps the migration transactional.
-- A full index (not partial): it also serves the ON DELETE CASCADE from users.
CREATE INDEX user_sessions_user_id_idx ON user_sessions (user_id);
CREATE INDEX user_sessions_expires_at_idx ON user_sessions (expires_at);

-- Down Migration

DROP TABLE user_sessions;
