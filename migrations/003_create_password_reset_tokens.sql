-- Up Migration

CREATE TABLE password_reset_tokens (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- SHA-256 of the e-mailed token, never the token itself.
  token_hash   bytea NOT NULL,
  requested_ip inet,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  -- Single use: set when redeemed, and the row is then only kept until cleanup.
  used_at      timestamptz,
  CONSTRAINT password_reset_tokens_token_hash_key UNIQUE (token_hash),
  CONSTRAINT password_reset_tokens_token_hash_check CHECK (octet_length(token_hash) = 32),
  CONSTRAINT password_reset_tokens_expires_at_check CHECK (expires_at > created_at),
  -- Reset links are short-lived by policy; a bug issuing week-long links should fail loudly.
  CONSTRAINT password_reset_tokens_lifetime_check CHECK (expires_at <= created_at + interval '24 hours'),
  CONSTRAINT password_reset_tokens_used_at_check CHECK (used_at IS NULL OR used_at >= created_at)
);

-- Down Migration

DROP TABLE password_reset_tokens;
