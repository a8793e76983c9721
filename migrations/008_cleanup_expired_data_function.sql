-- Up Migration

-- Called by pgops cleanup (cleanup.callFunctions) and safe to call by hand at any time.
-- Audit log retention is deliberately not here: it is a per-environment policy, applied in
-- batches by the config-driven cleanup rules.
CREATE FUNCTION cleanup_expired_data() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  n     integer;
  total integer := 0;
BEGIN
  -- Revoked but unexpired tokens stay: replaying one must still be detected as reuse.
  DELETE FROM refresh_tokens WHERE expires_at < now();
  GET DIAGNOSTICS n = ROW_COUNT;
  total := total + n;

  -- A used reset token can never be redeemed again; keeping it serves no one.
  DELETE FROM password_reset_tokens WHERE expires_at < now() OR used_at IS NOT NULL;
  GET DIAGNOSTICS n = ROW_COUNT;
  total := total + n;

  DELETE FROM user_sessions WHERE expires_at < now();
  GET DIAGNOSTICS n = ROW_COUNT;
  total := total + n;

  RETURN total;
END;
$$;

COMMENT ON FUNCTION cleanup_expired_data() IS
  'Deletes expired refresh tokens, expired or used password reset tokens and expired sessions; returns the number of rows deleted.';

-- Down Migration

DROP FUNCTION cleanup_expired_data();
