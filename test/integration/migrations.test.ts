// The example auth-service schema in migrations/, run through the real migrate job on a real
// PostgreSQL: every migration applies, every down part restores exactly the schema before it,
// the CONCURRENTLY indexes come out valid, and cleanup_expired_data() deletes what it should.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { defaultFileConfig } from '../../functions/core/config.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import { historyTables } from '../../functions/core/migrate/files.ts';
import { MemoryAlerter } from '../../functions/core/alerts/alerter.ts';
import { migrationStatus, runMigrations, type MigrateJobDeps } from '../../functions/core/migrate/job.ts';
import { useTestCluster } from '../helpers/postgres.ts';

const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'migrations');
const FILES = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort();
const NAMES = FILES.map((f) => f.replace(/\.sql$/, ''));
const CONCURRENT_FILE = '005_performance_indexes.sql';
const CONCURRENT_INDEXES = [...readFileSync(join(MIGRATIONS_DIR, CONCURRENT_FILE), 'utf8').matchAll(/^CREATE INDEX CONCURRENTLY (\w+)/gm)].map((m) => m[1]!);

const AUTH_TABLES = ['audit_logs', 'password_reset_tokens', 'refresh_tokens', 'security_events', 'user_sessions', 'users'];
const HISTORY_TABLES = ['pgmigrations', 'pgmigrations_checksums'];

const cluster = useTestCluster();

function depsFor(db: string): MigrateJobDeps {
  const config = defaultFileConfig();
  return {
    target: cluster.target(db),
    session: config.database,
    dir: MIGRATIONS_DIR,
    tables: historyTables('public', 'pgmigrations'),
    lockWaitSeconds: config.migrate.lockWaitSeconds,
    logger: silentLogger,
    alerter: new MemoryAlerter(),
    databaseId: db,
    environment: 'test',
  };
}

async function column<T>(db: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const r = await cluster.query<{ v: T }>(sql, params, db);
  return r.rows.map((row) => row.v);
}

async function tables(db: string): Promise<string[]> {
  return column<string>(db, `SELECT table_name AS v FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`);
}

/**
 * Everything the migrations can create in the public schema, one line per object, sorted;
 * pgops' own history tables (and their indexes, sequence and row types) left out.
 */
async function schemaSnapshot(db: string): Promise<string[]> {
  const lines = await column<string>(db, `
    SELECT format('relation %s kind=%s', c.relname, c.relkind) AS v
      FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL
    SELECT format('column %s.%s %s%s default=%s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                  CASE WHEN a.attnotnull THEN ' not null' ELSE '' END, pg_get_expr(d.adbin, d.adrelid))
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('constraint %s.%s %s', c.relname, k.conname, pg_get_constraintdef(k.oid))
      FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL
    SELECT format('index %s valid=%s', pg_get_indexdef(i.indexrelid), i.indisvalid)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL
    SELECT format('function %s(%s) returns %s', p.proname, pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid))
      FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
    UNION ALL
    SELECT format('trigger %s on %s', t.tgname, c.relname)
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
    UNION ALL
    SELECT format('type %s', t.typname) FROM pg_type t WHERE t.typnamespace = 'public'::regnamespace
  `);
  return lines.filter((l) => !l.includes('pgmigrations')).sort();
}

describe('the example migrations', () => {
  let db: string;
  let appliedSnapshot: string[];
  beforeAll(async () => {
    db = await cluster.createDatabase();
  });

  it('apply in file order, the CONCURRENTLY migration included, and are recorded as applied', async () => {
    expect(NAMES).toHaveLength(8);
    const r = await runMigrations(depsFor(db), { command: 'up' });
    expect(r.ran.map((m) => m.name)).toEqual(NAMES);
    const status = await migrationStatus(depsFor(db));
    expect(status.applied.map((a) => a.name)).toEqual(NAMES);
    expect(status.applied.every((a) => /^[0-9a-f]{64}$/.test(a.checksum ?? ''))).toBe(true);
    expect(status.pending).toEqual([]);
    expect(status.modified).toEqual([]);
    expect(status.missing).toEqual([]);
    appliedSnapshot = await schemaSnapshot(db);
  });

  it('create the auth tables, their indexes and the cleanup function', async () => {
    expect(await tables(db)).toEqual([...AUTH_TABLES, ...HISTORY_TABLES].sort());
    const indexes = await column<string>(db, `SELECT indexname AS v FROM pg_indexes WHERE schemaname = 'public'`);
    expect(indexes).toEqual(expect.arrayContaining([
      'users_email_live_key',
      'refresh_tokens_user_id_active_idx',
      'refresh_tokens_expires_at_idx',
      'password_reset_tokens_expires_at_idx',
      'audit_logs_user_id_created_at_idx',
      'audit_logs_action_created_at_idx',
      'audit_logs_created_at_idx',
      'user_sessions_expires_at_idx',
      'security_events_user_id_created_at_idx',
    ]));
    const partial = await column<string>(db, `SELECT c.relname AS v FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE c.relnamespace = 'public'::regnamespace AND i.indpred IS NOT NULL ORDER BY 1`);
    expect(partial).toEqual(expect.arrayContaining(['refresh_tokens_user_id_active_idx', 'users_email_live_key']));
    const fn = await column<string>(db, `SELECT pg_get_function_result(p.oid) AS v FROM pg_proc p
      WHERE p.proname = 'cleanup_expired_data' AND p.pronamespace = 'public'::regnamespace`);
    expect(fn).toEqual(['integer']);
  });

  it('build every index of the CONCURRENTLY migration valid and ready', async () => {
    expect(CONCURRENT_INDEXES.length).toBeGreaterThanOrEqual(6);
    const r = await cluster.query<{ relname: string; indisvalid: boolean; indisready: boolean }>(
      `SELECT c.relname, i.indisvalid, i.indisready FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relname = ANY($1::text[]) ORDER BY 1`, [CONCURRENT_INDEXES], db);
    expect(r.rows.map((row) => row.relname)).toEqual([...CONCURRENT_INDEXES].sort());
    for (const row of r.rows) expect(row, row.relname).toMatchObject({ indisvalid: true, indisready: true });
    expect(await column<string>(db, `SELECT indexrelid::regclass::text AS v FROM pg_index WHERE NOT indisvalid`)).toEqual([]);
  });

  it('revert all the way, leaving only the pgops history tables', async () => {
    const r = await runMigrations(depsFor(db), { command: 'down', count: NAMES.length });
    expect(r.ran.map((m) => m.name)).toEqual([...NAMES].reverse());
    expect(await tables(db)).toEqual(HISTORY_TABLES);
    expect(await schemaSnapshot(db)).toEqual([]);
    expect(await column<number>(db, `SELECT count(*)::int AS v FROM pgmigrations`)).toEqual([0]);
    expect(await column<number>(db, `SELECT count(*)::int AS v FROM pgmigrations_checksums`)).toEqual([0]);
    const status = await migrationStatus(depsFor(db));
    expect(status.applied).toEqual([]);
    expect(status.pending.map((p) => p.name)).toEqual(NAMES);
  });

  it('apply again after a full revert, to the same schema as the first time', async () => {
    const r = await runMigrations(depsFor(db), { command: 'up' });
    expect(r.ran.map((m) => m.name)).toEqual(NAMES);
    expect(await schemaSnapshot(db)).toEqual(appliedSnapshot);
    expect((await migrationStatus(depsFor(db))).pending).toEqual([]);
  });
});

describe('each example migration', () => {
  it('has a down part that restores exactly the schema its up part started from', async () => {
    const db = await cluster.createDatabase();
    const deps = depsFor(db);
    let before = await schemaSnapshot(db);
    for (const name of NAMES) {
      const up = await runMigrations(deps, { command: 'up', count: 1 });
      expect(up.ran.map((m) => m.name)).toEqual([name]);
      const after = await schemaSnapshot(db);
      expect(after, `${name} changes the schema`).not.toEqual(before);

      await runMigrations(deps, { command: 'down', count: 1 });
      expect(await schemaSnapshot(db), `${name} down`).toEqual(before);

      await runMigrations(deps, { command: 'up', count: 1 });
      expect(await schemaSnapshot(db), `${name} re-applied`).toEqual(after);
      before = after;
    }
  });
});

describe('the example schema at work', () => {
  let db: string;
  const q = (sql: string, params: unknown[] = []) => cluster.query(sql, params, db);

  async function insertUser(email: string): Promise<string> {
    const r = await q(`INSERT INTO users (email, password_hash, display_name, created_at, updated_at, last_login_ip)
      VALUES ($1, '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA', 'Ada Lovelace', now() - interval '90 days', now() - interval '90 days', '203.0.113.7')
      RETURNING id`, [email]);
    return r.rows[0]!.id as string;
  }

  /** Inserts one row and returns its id; `label` makes the token hash unique. */
  async function insert(sql: string, params: unknown[]): Promise<string> {
    const r = await q(sql, params);
    return r.rows[0]!.id as string;
  }

  const refreshToken = (userId: string, label: string, created: string, expires: string, revoked: string | null = null) =>
    insert(`INSERT INTO refresh_tokens (user_id, token_hash, user_agent, ip_address, created_at, expires_at, revoked_at, revoked_reason)
      VALUES ($1, sha256(convert_to($2, 'UTF8')), 'Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0', '198.51.100.23',
              now() + $3::interval, now() + $4::interval, now() + $5::interval, CASE WHEN $5::interval IS NULL THEN NULL ELSE 'logout' END)
      RETURNING id`, [userId, label, created, expires, revoked]);

  const resetToken = (userId: string, label: string, created: string, expires: string, used: string | null = null) =>
    insert(`INSERT INTO password_reset_tokens (user_id, token_hash, requested_ip, created_at, expires_at, used_at)
      VALUES ($1, sha256(convert_to($2, 'UTF8')), '2001:db8::1', now() + $3::interval, now() + $4::interval, now() + $5::interval)
      RETURNING id`, [userId, label, created, expires, used]);

  const session = (userId: string, label: string, created: string, expires: string, revoked: string | null = null) =>
    insert(`INSERT INTO user_sessions (user_id, session_token_hash, ip_address, user_agent, created_at, last_seen_at, expires_at, revoked_at)
      VALUES ($1, sha256(convert_to($2, 'UTF8')), '192.0.2.44', 'Mozilla/5.0 (Macintosh) Safari/605.1.15',
              now() + $3::interval, now() + $3::interval, now() + $4::interval, now() + $5::interval)
      RETURNING id`, [userId, label, created, expires, revoked]);

  async function ids(table: string): Promise<string[]> {
    return column<string>(db, `SELECT id::text AS v FROM ${table} ORDER BY 1`);
  }

  beforeAll(async () => {
    db = await cluster.createDatabase();
    await runMigrations(depsFor(db), { command: 'up' });
  });

  it('cleanup_expired_data() deletes exactly the expired tokens and sessions and the used reset tokens', async () => {
    const user = await insertUser('ada@example.com');
    const expiredRefresh = await refreshToken(user, 'rt-expired', '-31 days', '-1 day');
    const justExpiredRefresh = await refreshToken(user, 'rt-just-expired', '-30 days', '-1 minute');
    const liveRefresh = await refreshToken(user, 'rt-live', '-1 hour', '30 days');
    // Revoked but unexpired: kept so a replay is still recognised as token reuse.
    const revokedRefresh = await refreshToken(user, 'rt-revoked', '-2 days', '28 days', '-1 hour');

    const expiredReset = await resetToken(user, 'prt-expired', '-2 hours', '-1 hour');
    const usedReset = await resetToken(user, 'prt-used', '-10 minutes', '50 minutes', '-5 minutes');
    const pendingReset = await resetToken(user, 'prt-pending', '-1 minute', '59 minutes');

    const expiredSession = await session(user, 's-expired', '-8 days', '-1 day');
    const liveSession = await session(user, 's-live', '-1 hour', '7 days');
    const revokedSession = await session(user, 's-revoked', '-1 day', '6 days', '-1 hour');

    // Audit retention belongs to the config-driven cleanup rules, not to this function.
    await q(`INSERT INTO audit_logs (user_id, action, resource_type, resource_id, ip_address, details, created_at)
      VALUES ($1::uuid, 'user.login', 'user', $1::text, '203.0.113.7', '{"mfa": true}', now() - interval '2 years')`, [user]);

    const deleted = await column<number>(db, 'SELECT cleanup_expired_data() AS v');
    expect(deleted).toEqual([5]);
    expect(await ids('refresh_tokens')).toEqual([liveRefresh, revokedRefresh].sort());
    expect(await ids('password_reset_tokens')).toEqual([pendingReset]);
    expect(await ids('user_sessions')).toEqual([liveSession, revokedSession].sort());
    expect(await column<number>(db, 'SELECT count(*)::int AS v FROM audit_logs')).toEqual([1]);
    expect(await ids('users')).toEqual([user]);
    const remaining = [...await ids('refresh_tokens'), ...await ids('password_reset_tokens'), ...await ids('user_sessions')];
    for (const gone of [expiredRefresh, justExpiredRefresh, expiredReset, usedReset, expiredSession]) expect(remaining).not.toContain(gone);

    // Nothing left to do: a second run deletes nothing.
    expect(await column<number>(db, 'SELECT cleanup_expired_data() AS v')).toEqual([0]);
  });

  it('deleting a user removes their tokens and sessions but keeps their audit and security history', async () => {
    const user = await insertUser('grace@example.com');
    await refreshToken(user, 'grace-rt', '-1 hour', '30 days');
    await resetToken(user, 'grace-prt', '-1 minute', '59 minutes');
    await session(user, 'grace-s', '-1 hour', '7 days');
    await q(`INSERT INTO audit_logs (user_id, action, details) VALUES ($1, 'user.password_changed', '{}')`, [user]);
    await q(`INSERT INTO security_events (user_id, email, event_type, severity, ip_address)
      VALUES ($1, 'grace@example.com', 'login_failed', 'warning', '198.51.100.99')`, [user]);

    await q('DELETE FROM users WHERE id = $1', [user]);

    for (const table of ['refresh_tokens', 'password_reset_tokens', 'user_sessions']) {
      expect(await column<number>(db, `SELECT count(*)::int AS v FROM ${table} WHERE user_id = $1`, [user]), table).toEqual([0]);
    }
    expect(await column<string | null>(db, `SELECT user_id AS v FROM audit_logs WHERE action = 'user.password_changed'`)).toEqual([null]);
    expect(await column<string | null>(db, `SELECT user_id AS v FROM security_events WHERE email = 'grace@example.com'`)).toEqual([null]);
  });

  it('allows one live account per e-mail address, case-insensitively, and frees it on soft delete', async () => {
    const first = await insertUser('Linus@Example.com');
    await expect(insertUser('linus@example.COM')).rejects.toMatchObject({ code: '23505' });
    await q(`UPDATE users SET status = 'deleted', deleted_at = now() WHERE id = $1`, [first]);
    await expect(insertUser('linus@example.com')).resolves.toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refuses rows that break the schema rules', async () => {
    const user = await insertUser('barbara@example.com');
    await expect(insertUser('not-an-address')).rejects.toMatchObject({ code: '23514' });
    // Expiry before creation.
    await expect(refreshToken(user, 'bad-rt', '-1 hour', '-2 hours')).rejects.toMatchObject({ code: '23514' });
    // Reset links longer than a day.
    await expect(resetToken(user, 'bad-prt', '-1 minute', '7 days')).rejects.toMatchObject({ code: '23514' });
    await expect(q(`INSERT INTO audit_logs (action) VALUES ('User Login')`)).rejects.toMatchObject({ code: '23514' });
    await expect(q(`INSERT INTO audit_logs (action, details) VALUES ('user.login', '[1, 2]')`)).rejects.toMatchObject({ code: '23514' });
    // A token row for a user that does not exist.
    await expect(refreshToken('00000000-0000-4000-8000-000000000000', 'orphan', '-1 hour', '1 day')).rejects.toMatchObject({ code: '23503' });
  });

  it('keeps users.updated_at current when a row changes', async () => {
    const user = await insertUser('edsger@example.com');
    await q(`UPDATE users SET display_name = 'E. W. Dijkstra' WHERE id = $1`, [user]);
    const r = await q(`SELECT updated_at > now() - interval '1 minute' AS fresh, updated_at > created_at AS later FROM users WHERE id = $1`, [user]);
    expect(r.rows[0]).toEqual({ fresh: true, later: true });
  });
});
