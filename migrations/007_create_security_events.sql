-- Up Migration

CREATE TABLE security_events (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- NULL for attempts against unknown accounts, and after the account is erased.
  user_id     uuid REFERENCES users (id) ON DELETE SET NULL,
  -- The identifier that was tried, kept when it matches no account.
  email       text,
  event_type  text NOT NULL,
  severity    text NOT NULL DEFAULT 'info',
  ip_address  inet,
  user_agent  text,
  details     jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  resolved_at timestamptz,
  CONSTRAINT security_events_event_type_check CHECK (event_type IN (
    'login_failed', 'account_locked', 'refresh_token_reuse', 'password_reset_requested',
    'password_changed', 'suspicious_ip', 'mfa_failed')),
  CONSTRAINT security_events_severity_check CHECK (severity IN ('info', 'warning', 'critical')),
  CONSTRAINT security_events_details_check CHECK (jsonb_typeof(details) = 'object'),
  CONSTRAINT security_events_resolved_at_check CHECK (resolved_at IS NULL OR resolved_at >= created_at)
);

CREATE INDEX security_events_user_id_created_at_idx ON security_events (user_id, created_at);
-- Brute-force detection counts recent failures per address.
CREATE INDEX security_events_ip_address_created_at_idx ON security_events (ip_address, created_at);
-- The on-call queue: open warnings and criticals only, a tiny fraction of the table.
CREATE INDEX security_events_open_idx ON security_events (severity, created_at)
  WHERE resolved_at IS NULL AND severity <> 'info';

-- Down Migration

DROP TABLE security_events;
