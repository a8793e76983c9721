// Realistic rows for the example schema (migrations/), so the demo's backup, restore, health and
// cleanup have something to work on: users, live and expired tokens and sessions, audit history.
export const DEMO_SEED_SQL = `
INSERT INTO users (email, password_hash, display_name, created_at, updated_at, last_login_ip)
SELECT 'user' || g || '@example.com', '$argon2id$v=19$m=65536,t=3,p=4$' || md5(g::text), 'User ' || g,
       now() - (g || ' minutes')::interval, now() - (g || ' minutes')::interval, '203.0.113.7'
FROM generate_series(1, 2000) g;

-- Half of the refresh tokens expired ten days ago: cleanup's work.
INSERT INTO refresh_tokens (user_id, token_hash, user_agent, ip_address, created_at, expires_at)
SELECT u.id, sha256(convert_to(u.id::text || ':' || g, 'UTF8')), 'Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0', '198.51.100.23',
       now() - interval '40 days', CASE WHEN g = 1 THEN now() - interval '10 days' ELSE now() + interval '20 days' END
FROM users u, generate_series(1, 2) g;

INSERT INTO password_reset_tokens (user_id, token_hash, requested_ip, created_at, expires_at)
SELECT u.id, sha256(convert_to('reset:' || u.id::text, 'UTF8')), '2001:db8::1', now() - interval '3 days', now() - interval '3 days' + interval '1 hour'
FROM users u WHERE u.email LIKE 'user1%';

INSERT INTO user_sessions (user_id, session_token_hash, ip_address, user_agent, created_at, last_seen_at, expires_at)
SELECT u.id, sha256(convert_to('session:' || u.id::text || ':' || g, 'UTF8')), '192.0.2.44', 'Mozilla/5.0 (Macintosh) Safari/605.1.15',
       now() - interval '10 days', now() - interval '10 days', CASE WHEN g = 1 THEN now() - interval '3 days' ELSE now() + interval '7 days' END
FROM users u, generate_series(1, 2) g;

-- Fourteen months of audit history: the oldest fifth is past the example retention (365 days).
INSERT INTO audit_logs (user_id, action, resource_type, resource_id, ip_address, details, created_at)
SELECT u.id, (ARRAY['user.login', 'user.logout', 'password.reset', 'token.refresh'])[1 + (g % 4)], 'user', u.id::text,
       '203.0.113.7', jsonb_build_object('mfa', g % 2 = 0, 'seq', g), now() - (g * 2000 || ' hours')::interval
FROM users u, generate_series(1, 5) g;

INSERT INTO security_events (user_id, email, event_type, severity, ip_address)
SELECT u.id, u.email, 'login_failed', 'warning', '198.51.100.99' FROM users u WHERE u.email LIKE 'user2%';

-- What autovacuum would do soon after: the planner's (and the linter's) row estimates.
ANALYZE;
`;
