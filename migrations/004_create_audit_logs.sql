-- Up Migration

CREATE TABLE audit_logs (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- History outlives the account it describes.
  user_id       uuid REFERENCES users (id) ON DELETE SET NULL,
  action        text NOT NULL,
  resource_type text,
  resource_id   text,
  ip_address    inet,
  user_agent    text,
  details       jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  -- Dotted lower-case names ('user.login', 'password.reset') keep (action, created_at) queries exact.
  CONSTRAINT audit_logs_action_check CHECK (action ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$'),
  CONSTRAINT audit_logs_details_check CHECK (jsonb_typeof(details) = 'object'),
  CONSTRAINT audit_logs_resource_check CHECK (resource_id IS NULL OR resource_type IS NOT NULL)
);

-- Down Migration

DROP TABLE audit_logs;
