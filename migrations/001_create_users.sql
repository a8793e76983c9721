-- Up Migration

-- Shared by every table that carries updated_at, so the column cannot be forgotten by a caller.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;

CREATE TABLE users (
  id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email                 text NOT NULL,
  password_hash         text NOT NULL,
  display_name          text,
  status                text NOT NULL DEFAULT 'active',
  email_verified_at     timestamptz,
  failed_login_attempts integer NOT NULL DEFAULT 0,
  locked_until          timestamptz,
  last_login_at         timestamptz,
  last_login_ip         inet,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  -- Soft delete: the row stays for audit_logs and security_events, the address is freed.
  deleted_at            timestamptz,
  CONSTRAINT users_status_check CHECK (status IN ('active', 'locked', 'disabled', 'deleted')),
  CONSTRAINT users_deleted_status_check CHECK ((status = 'deleted') = (deleted_at IS NOT NULL)),
  CONSTRAINT users_email_check CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$' AND length(email) <= 254),
  CONSTRAINT users_password_hash_check CHECK (length(password_hash) > 0),
  CONSTRAINT users_failed_login_attempts_check CHECK (failed_login_attempts >= 0),
  CONSTRAINT users_updated_at_check CHECK (updated_at >= created_at)
);

-- Uniqueness is a constraint, not a tuning choice, so it ships with the table. It is also the
-- login lookup index (lower(email) of live accounts): a second index on it would only cost writes.
CREATE UNIQUE INDEX users_email_live_key ON users (lower(email)) WHERE deleted_at IS NULL;

CREATE TRIGGER users_set_updated_at
  BEFORE UPDATE ON users
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Down Migration

DROP TABLE users;
DROP FUNCTION set_updated_at();
