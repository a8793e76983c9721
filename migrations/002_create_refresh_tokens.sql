-- Up Migration

CREATE TABLE refresh_tokens (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- SHA-256 of the token: a leaked table must not hand out live sessions.
  token_hash     bytea NOT NULL,
  -- One family per login; rotating keeps the family, so reuse of a rotated token revokes it all.
  family_id      uuid NOT NULL DEFAULT gen_random_uuid(),
  replaced_by    uuid REFERENCES refresh_tokens (id) ON DELETE SET NULL,
  user_agent     text,
  ip_address     inet,
  created_at     timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL,
  -- Revoked tokens stay until they expire, so a replayed one is recognised as reuse.
  revoked_at     timestamptz,
  revoked_reason text,
  CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash),
  CONSTRAINT refresh_tokens_token_hash_check CHECK (octet_length(token_hash) = 32),
  CONSTRAINT refresh_tokens_expires_at_check CHECK (expires_at > created_at),
  CONSTRAINT refresh_tokens_revoked_check CHECK (revoked_at IS NOT NULL OR revoked_reason IS NULL)
);

-- Down Migration

DROP TABLE refresh_tokens;
