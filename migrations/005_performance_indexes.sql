-- pgops:no-transaction
-- CREATE INDEX CONCURRENTLY keeps the tables writable while the indexes build on a live
-- database, and PostgreSQL refuses it inside a transaction block, hence the marker above.
-- No IF NOT EXISTS: a failed concurrent build leaves an INVALID index behind, and a retry
-- must stop on it (drop it, then retry) rather than skip it and report success.

-- Up Migration

-- Revoke-all on password change and "sign out everywhere" touch only live tokens. User deletion
-- cascades through a sequential scan instead, a deliberate trade: deletions are rare and the
-- daily cleanup keeps the table small.
CREATE INDEX CONCURRENTLY refresh_tokens_user_id_active_idx
  ON refresh_tokens (user_id) WHERE revoked_at IS NULL;

-- Range deletes by the expiry cleanup (pgops cleanup rules and cleanup_expired_data()).
CREATE INDEX CONCURRENTLY refresh_tokens_expires_at_idx
  ON refresh_tokens (expires_at);

-- Issuing a new reset link invalidates the user's outstanding ones.
CREATE INDEX CONCURRENTLY password_reset_tokens_user_id_pending_idx
  ON password_reset_tokens (user_id) WHERE used_at IS NULL;

CREATE INDEX CONCURRENTLY password_reset_tokens_expires_at_idx
  ON password_reset_tokens (expires_at);

-- A user's history, newest first; also what ON DELETE SET NULL needs to find their rows.
CREATE INDEX CONCURRENTLY audit_logs_user_id_created_at_idx
  ON audit_logs (user_id, created_at);

-- "All password resets this week" style investigations.
CREATE INDEX CONCURRENTLY audit_logs_action_created_at_idx
  ON audit_logs (action, created_at);

-- Retention deletes by age, and the global recent-activity view.
CREATE INDEX CONCURRENTLY audit_logs_created_at_idx
  ON audit_logs (created_at);

-- Down Migration

DROP INDEX CONCURRENTLY IF EXISTS audit_logs_created_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS audit_logs_action_created_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS audit_logs_user_id_created_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS password_reset_tokens_expires_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS password_reset_tokens_user_id_pending_idx;
DROP INDEX CONCURRENTLY IF EXISTS refresh_tokens_expires_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS refresh_tokens_user_id_active_idx;
