import { mkdtempSync, rmSync, writeFileSync, unlinkSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultFileConfig } from '../../../../../functions/core/config.ts';
import { LockTimeoutError, MigrationError, MigrationHistoryError } from '../../../../../functions/core/errors.ts';
import { createTextLogger, silentLogger } from '../../../../../functions/core/logger.ts';
import { historyTables } from '../../../../../functions/core/migrate/files.ts';
import { MemoryAlerter } from '../../../../../functions/core/alerts/alerter.ts';
import { lockKey, migrationStatus, runMigrations, validateMigrations, type MigrateJobDeps } from '../../../../../functions/core/migrate/job.ts';
import { runCli } from '../../../../helpers/cli.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';

const cluster = useTestCluster();
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function migrationsDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgops-mig-'));
  dirs.push(dir);
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
  return dir;
}

const BASIC = {
  '001_users.sql': '-- Up Migration\nCREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);\n-- Down Migration\nDROP TABLE users;\n',
  '002_posts.sql': '-- Up Migration\nCREATE TABLE posts (id serial PRIMARY KEY, user_id int REFERENCES users(id));\n-- Down Migration\nDROP TABLE posts;\n',
  '003_tags.js': "export const up = (pgm) => { pgm.createTable('tags', { id: 'id', label: { type: 'text', notNull: true } }); };\n",
};

async function deps(db: string, dir: string, overrides: Partial<MigrateJobDeps> = {}): Promise<MigrateJobDeps> {
  const config = defaultFileConfig();
  return {
    target: cluster.target(db),
    session: config.database,
    dir,
    tables: historyTables('public', 'pgmigrations'),
    lockWaitSeconds: 5,
    logger: silentLogger,
    lockPollMs: 50,
    alerter: new MemoryAlerter(),
    databaseId: db,
    environment: 'test',
    ...overrides,
  };
}

async function userTables(db: string): Promise<string[]> {
  const r = await cluster.query<{ t: string }>(
    "SELECT table_name AS t FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog','information_schema') ORDER BY 1", [], db);
  return r.rows.map((x) => x.t);
}

describe('migrate up / down / status', () => {
  it('applies every pending migration, records a SHA-256 per file, and reports them applied', async () => {
    const db = await cluster.createDatabase();
    const dir = migrationsDir(BASIC);
    const d = await deps(db, dir);
    const result = await runMigrations(d, { command: 'up' });
    expect(result.ran.map((m) => m.name)).toEqual(['001_users', '002_posts', '003_tags']);
    expect(await userTables(db)).toEqual(['pgmigrations', 'pgmigrations_checksums', 'posts', 'tags', 'users']);
    const status = await migrationStatus(d);
    expect(status.applied.map((a) => a.name)).toEqual(['001_users', '002_posts', '003_tags']);
    for (const a of status.applied) expect(a.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(status).toMatchObject({ pending: [], modified: [], missing: [] });
    const again = await runMigrations(d, { command: 'up' });
    expect(again.ran).toEqual([]);
  });

  it('reverts the last one by default, a reversible .js migration included, and re-applies it', async () => {
    const db = await cluster.createDatabase();
    const d = await deps(db, migrationsDir(BASIC));
    await runMigrations(d, { command: 'up' });
    const down = await runMigrations(d, { command: 'down' });
    expect(down).toMatchObject({ direction: 'down', ran: [{ name: '003_tags' }], dryRun: false });
    expect(await userTables(db)).not.toContain('tags');
    expect((await migrationStatus(d)).pending).toEqual([{ name: '003_tags' }]);
    const checksums = await cluster.query('SELECT name FROM pgmigrations_checksums ORDER BY name', [], db);
    expect(checksums.rows.map((r) => r.name)).toEqual(['001_users', '002_posts']);
    await runMigrations(d, { command: 'up' });
    expect(await userTables(db)).toContain('tags');
  });

  it('applies at most --count migrations', async () => {
    const db = await cluster.createDatabase();
    const d = await deps(db, migrationsDir(BASIC));
    const r = await runMigrations(d, { command: 'up', count: 2 });
    expect(r.ran.map((m) => m.name)).toEqual(['001_users', '002_posts']);
    expect((await migrationStatus(d)).pending).toEqual([{ name: '003_tags' }]);
  });

  it('migrate to <prefix> moves down, then up, to exactly that migration', async () => {
    const db = await cluster.createDatabase();
    const d = await deps(db, migrationsDir(BASIC));
    await runMigrations(d, { command: 'up' });
    const down = await runMigrations(d, { command: 'to', target: '001' });
    expect(down.direction).toBe('down');
    expect(down.ran.map((m) => m.name)).toEqual(['003_tags', '002_posts']);
    expect((await migrationStatus(d)).applied.map((a) => a.name)).toEqual(['001_users']);
    const up = await runMigrations(d, { command: 'to', target: '002_posts' });
    expect(up.direction).toBe('up');
    expect(up.ran.map((m) => m.name)).toEqual(['002_posts']);
    expect((await migrationStatus(d)).applied.map((a) => a.name)).toEqual(['001_users', '002_posts']);
    await expect(runMigrations(d, { command: 'to', target: '00' })).rejects.toThrow(/matches 3 migrations/);
    await expect(runMigrations(d, { command: 'to', target: '999' })).rejects.toThrow(/no migration matches "999"/);
  });
});

describe('dry run', () => {
  it('migrate up --dry-run on an empty database shows the SQL and leaves the database without any table', async () => {
    const db = await cluster.createDatabase();
    const d = await deps(db, migrationsDir(BASIC));
    const r = await runMigrations(d, { command: 'up', dryRun: true });
    expect(r.dryRun).toBe(true);
    expect(r.ran.map((m) => m.name)).toEqual(['001_users', '002_posts', '003_tags']);
    expect(r.ran[0]!.sql).toContain('CREATE TABLE users');
    expect(r.ran[2]!.sql).toMatch(/CREATE TABLE "?tags"?/);
    expect(await userTables(db)).toEqual([]);
    const locks = await cluster.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'", [], db);
    expect(locks.rows[0]?.n).toBe(0);
  });

  it('migrate down --dry-run shows the down SQL and reverts nothing', async () => {
    const db = await cluster.createDatabase();
    const d = await deps(db, migrationsDir(BASIC));
    await runMigrations(d, { command: 'up' });
    const r = await runMigrations(d, { command: 'down', count: 2, dryRun: true });
    expect(r.ran.map((m) => m.name)).toEqual(['003_tags', '002_posts']);
    expect(r.ran[1]!.sql).toContain('DROP TABLE posts');
    expect(r.ran[0]!.sql).toMatch(/DROP TABLE "?tags"?/);
    expect((await migrationStatus(d)).applied).toHaveLength(3);
  });
});

describe('checksums', () => {
  it('refuses up and validate, naming the file, when an applied migration was edited; restoring it clears that', async () => {
    const db = await cluster.createDatabase();
    const dir = migrationsDir(BASIC);
    const d = await deps(db, dir);
    await runMigrations(d, { command: 'up', count: 2 });
    const file = join(dir, '001_users.sql');
    const original = readFileSync(file, 'utf8');
    writeFileSync(file, original.replace('email text NOT NULL', 'email text'));
    await expect(runMigrations(d, { command: 'up' })).rejects.toThrow(/001_users\.sql/);
    await expect(validateMigrations(d)).rejects.toBeInstanceOf(MigrationHistoryError);
    const status = await migrationStatus(d);
    expect(status.modified.map((m) => m.name)).toEqual(['001_users']);
    // Nothing further was applied while refusing.
    expect(status.pending.map((p) => p.name)).toEqual(['003_tags']);
    writeFileSync(file, original);
    await expect(validateMigrations(d)).resolves.toMatchObject({ modified: [], missing: [] });
    await expect(runMigrations(d, { command: 'up' })).resolves.toMatchObject({ ran: [{ name: '003_tags' }] });
  });

  it('reports an applied migration whose file was deleted as missing and refuses to migrate', async () => {
    const db = await cluster.createDatabase();
    const dir = migrationsDir(BASIC);
    const d = await deps(db, dir);
    await runMigrations(d, { command: 'up' });
    unlinkSync(join(dir, '003_tags.js'));
    expect((await migrationStatus(d)).missing).toEqual([{ name: '003_tags' }]);
    await expect(validateMigrations(d)).rejects.toThrow(/no longer on disk: 003_tags/);
    await expect(runMigrations(d, { command: 'down' })).rejects.toThrow(/003_tags/);
  });

  it('adopts a history written by plain node-pg-migrate by recording checksums of the files as they are', async () => {
    const db = await cluster.createDatabase();
    const dir = migrationsDir(BASIC);
    const d = await deps(db, dir);
    await runMigrations(d, { command: 'up', count: 1 });
    await cluster.query('DROP TABLE pgmigrations_checksums', [], db);
    expect((await migrationStatus(d)).applied[0]!.checksum).toBeNull();
    await runMigrations(d, { command: 'up' });
    const status = await migrationStatus(d);
    expect(status.applied.every((a) => /^[0-9a-f]{64}$/.test(a.checksum ?? ''))).toBe(true);
  });
});

describe('transactions and failures', () => {
  it('runs a -- pgops:no-transaction file statement by statement, so CREATE INDEX CONCURRENTLY applies and the index is valid', async () => {
    const db = await cluster.createDatabase();
    const d = await deps(db, migrationsDir({
      '001_users.sql': BASIC['001_users.sql'],
      '002_index.sql': [
        '-- pgops:no-transaction',
        '-- Up Migration',
        "CREATE INDEX CONCURRENTLY users_email_idx ON users (lower(email)); -- a comment; with a semicolon",
        "CREATE INDEX CONCURRENTLY users_id_idx ON users (id) WHERE email <> 'a;b';",
        '-- Down Migration',
        'DROP INDEX CONCURRENTLY IF EXISTS users_id_idx;',
        'DROP INDEX CONCURRENTLY IF EXISTS users_email_idx;',
        '',
      ].join('\n'),
    }));
    await cluster.query("INSERT INTO users (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 1000) g", [], db).catch(() => {});
    await runMigrations(d, { command: 'up' });
    const idx = await cluster.query<{ relname: string; indisvalid: boolean }>(
      "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname IN ('users_email_idx','users_id_idx') ORDER BY 1", [], db);
    expect(idx.rows).toEqual([{ relname: 'users_email_idx', indisvalid: true }, { relname: 'users_id_idx', indisvalid: true }]);
    await runMigrations(d, { command: 'down' });
    const after = await cluster.query("SELECT count(*)::int AS n FROM pg_class WHERE relname IN ('users_email_idx','users_id_idx')", [], db);
    expect(after.rows[0]?.n).toBe(0);
  });

  it('rolls a failing migration back and names its file and the PostgreSQL error', async () => {
    const db = await cluster.createDatabase();
    const d = await deps(db, migrationsDir({
      '001_users.sql': BASIC['001_users.sql'],
      '002_broken.sql': '-- Up Migration\nCREATE TABLE half_done (id int);\nINSERT INTO no_such_table VALUES (1);\n-- Down Migration\nDROP TABLE half_done;\n',
    }));
    const err = await runMigrations(d, { command: 'up' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as Error).message).toMatch(/migration 002_broken\.sql failed \(up\): relation "no_such_table" does not exist/);
    expect((err as Error).message).toMatch(/rolled back/);
    const status = await migrationStatus(d);
    expect(status.applied.map((a) => a.name)).toEqual(['001_users']);
    expect(await userTables(db)).not.toContain('half_done');
    // The session and the lock were released: a fixed file applies.
    const locks = await cluster.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'", [], db);
    expect(locks.rows[0]?.n).toBe(0);
  });

  it('gives up on a table lock after database.lockTimeoutMs and says so', async () => {
    const db = await cluster.createDatabase();
    const dir = migrationsDir({
      '001_users.sql': BASIC['001_users.sql'],
      '002_alter.sql': '-- Up Migration\nALTER TABLE users ADD COLUMN name text;\n-- Down Migration\nALTER TABLE users DROP COLUMN name;\n',
    });
    const d = await deps(db, dir, { session: { ...defaultFileConfig().database, lockTimeoutMs: 200 } });
    await runMigrations(d, { command: 'up', count: 1 });
    const holder = new pg.Client({ connectionString: cluster.url(db) });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE users IN ACCESS SHARE MODE');
      const err = await runMigrations(d, { command: 'up' }).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/002_alter\.sql failed.*lock timeout.*database\.lockTimeoutMs = 200 ms/);
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      await holder.end();
    }
    await expect(runMigrations(d, { command: 'up' })).resolves.toMatchObject({ ran: [{ name: '002_alter' }] });
  });
});

describe('concurrency', () => {
  it('waits for the advisory lock, bounded by migrate.lockWaitSeconds, and names the holder', async () => {
    const db = await cluster.createDatabase();
    const d = await deps(db, migrationsDir(BASIC), { lockWaitSeconds: 1 });
    const holder = new pg.Client({ connectionString: cluster.url(db), application_name: 'other-runner' });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [lockKey(d.tables).toString()]);
      const t0 = Date.now();
      const err = await runMigrations(d, { command: 'up' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockTimeoutError);
      expect((err as Error).message).toMatch(/application other-runner.*gave up after 1 s/);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect(await userTables(db)).not.toContain('users');
    } finally {
      await holder.end();
    }
  });

  it('derives the lock from the migrations table, so two applications in one database do not block each other', async () => {
    const db = await cluster.createDatabase();
    const a = await deps(db, migrationsDir(BASIC), { lockWaitSeconds: 0 });
    const b = await deps(db, migrationsDir({ '001_other.sql': '-- Up Migration\nCREATE TABLE other (id int);\n-- Down Migration\nDROP TABLE other;\n' }),
      { lockWaitSeconds: 0, tables: historyTables('public', 'other_migrations') });
    expect(lockKey(a.tables)).not.toBe(lockKey(b.tables));
    const holder = new pg.Client({ connectionString: cluster.url(db) });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [lockKey(a.tables).toString()]);
      await expect(runMigrations(b, { command: 'up' })).resolves.toMatchObject({ ran: [{ name: '001_other' }] });
      await expect(runMigrations(a, { command: 'up' })).rejects.toBeInstanceOf(LockTimeoutError);
    } finally {
      await holder.end();
    }
  });

  it('two concurrent `pgops migrate up` apply every migration exactly once and both exit 0', async () => {
    const db = await cluster.createDatabase();
    const dir = migrationsDir({
      ...BASIC,
      // Slow enough that the second runner certainly arrives while the first holds the lock.
      '002_posts.sql': '-- Up Migration\nSELECT pg_sleep(1.5);\nCREATE TABLE posts (id serial PRIMARY KEY);\n-- Down Migration\nDROP TABLE posts;\n',
    });
    const env = { DATABASE_URL: cluster.url(db), PGOPS_MIGRATIONS_DIR: dir };
    const [one, two] = await Promise.all([runCli(['migrate', 'up', '--json'], env), runCli(['migrate', 'up', '--json'], env)]);
    expect(one.code, one.stderr).toBe(0);
    expect(two.code, two.stderr).toBe(0);
    const ran = [...JSON.parse(one.stdout).ran, ...JSON.parse(two.stdout).ran].map((m: { name: string }) => m.name).sort();
    expect(ran).toEqual(['001_users', '002_posts', '003_tags']);
    const rows = await cluster.query<{ name: string; n: number }>('SELECT name, count(*)::int AS n FROM pgmigrations GROUP BY name ORDER BY name', [], db);
    expect(rows.rows).toEqual([{ name: '001_users', n: 1 }, { name: '002_posts', n: 1 }, { name: '003_tags', n: 1 }]);
  });
});

describe('the CLI', () => {
  it('prints status as the documented JSON and exits 0', async () => {
    const db = await cluster.createDatabase();
    const dir = migrationsDir(BASIC);
    const env = { DATABASE_URL: cluster.url(db), PGOPS_MIGRATIONS_DIR: dir };
    expect((await runCli(['migrate', 'up', '--count', '1'], env)).code).toBe(0);
    const r = await runCli(['migrate', 'status', '--json'], env);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(Object.keys(s).sort()).toEqual(['applied', 'missing', 'modified', 'pending']);
    expect(s.applied[0]).toMatchObject({ name: '001_users', checksum: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(new Date(s.applied[0].runOn).getTime()).toBeGreaterThan(Date.now() - 600_000);
    expect(s.pending).toEqual([{ name: '002_posts' }, { name: '003_tags' }]);
  });

  it('exits 1 on validate when an applied file changed, naming it', async () => {
    const db = await cluster.createDatabase();
    const dir = migrationsDir(BASIC);
    const env = { DATABASE_URL: cluster.url(db), PGOPS_MIGRATIONS_DIR: dir };
    expect((await runCli(['migrate', 'up'], env)).code).toBe(0);
    writeFileSync(join(dir, '002_posts.sql'), `${BASIC['002_posts.sql']}\n-- edited\n`);
    const r = await runCli(['migrate', 'validate'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/002_posts\.sql/);
  });

  it('exits 1 with the failing file named when a migration fails, and raises an alert', async () => {
    const db = await cluster.createDatabase();
    const dir = migrationsDir({ '001_bad.sql': '-- Up Migration\nSELECT * FROM users_missing;\n-- Down Migration\n' });
    const r = await runCli(['migrate', 'up'], { DATABASE_URL: cluster.url(db), PGOPS_MIGRATIONS_DIR: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/migration 001_bad\.sql failed \(up\): relation "users_missing" does not exist/);
    expect(r.stderr).toMatch(/ALERT CRITICAL migrate/);
  });

  it('migrate to a migration that does not exist is a usage error: exit 2, and nobody is paged', async () => {
    const db = await cluster.createDatabase();
    const dir = migrationsDir(BASIC);
    const r = await runCli(['migrate', 'to', '999'], { DATABASE_URL: cluster.url(db), PGOPS_MIGRATIONS_DIR: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no migration matches "999"/);
    expect(r.stderr).not.toMatch(/ALERT/);
  });

  it('runMigrations alerts once on failure, never for usage errors or dry runs', async () => {
    const db = await cluster.createDatabase();
    const bad = migrationsDir({ '001_bad.sql': '-- Up Migration\nSELECT * FROM users_missing;\n-- Down Migration\n' });
    const d = await deps(db, bad);
    const alerter = d.alerter as MemoryAlerter;
    await expect(runMigrations(d, { command: 'to', target: '999' })).rejects.toThrow(/no migration matches "999"/);
    await expect(runMigrations(d, { command: 'up', dryRun: true })).resolves.toMatchObject({ dryRun: true });
    expect(alerter.sent).toEqual([]);
    const err = await runMigrations(d, { command: 'up' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).alertSent).toBe(true);
    expect(alerter.sent).toHaveLength(1);
    expect(alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'migrate', database: db, environment: 'test', details: { command: 'up' } });
    expect(alerter.sent[0]!.summary).toContain('001_bad.sql');
  });

  it('wrong password: a short message naming the cause, exit 1, and the password nowhere', async () => {
    const secret = 'Sup3r-Secret-Pw';
    const url = cluster.url('postgres').replace(cluster.pg.password, secret);
    const r = await runCli(['migrate', 'status', '--json'], { DATABASE_URL: url });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/password authentication failed for user "postgres"/);
    expect(r.stderr).toMatch(/postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/);
    expect(JSON.parse(r.stdout).error.message).toMatch(/password authentication failed/);
    expect(r.stdout + r.stderr).not.toContain(secret);
    expect(r.stdout + r.stderr).not.toContain(cluster.pg.password);
  });

  it('unreachable host: names the refused connection, exit 1, no password', async () => {
    const secret = 'An0ther-Secret';
    const r = await runCli(['migrate', 'up'], { DATABASE_URL: `postgres://app:${secret}@127.0.0.1:1/app` });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/could not connect to postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/app: connection refused/);
    expect(r.stdout + r.stderr).not.toContain(secret);
  });

  it('bad configuration exits 2 naming every bad field at once', async () => {
    const dir = migrationsDir({});
    const cfg = join(dir, 'bad.json');
    writeFileSync(cfg, JSON.stringify({ database: { lockTimeoutMs: 'soon' }, migrate: { lockWaitSeconds: -1 }, retention: { keepLast: 1.5 } }));
    const r = await runCli(['migrate', 'status', '--config', cfg], { DATABASE_URL: 'mysql://nope', PGOPS_STORAGE: 'ftp://x' });
    expect(r.code).toBe(2);
    for (const field of ['--database-url / DATABASE_URL', '--storage / PGOPS_STORAGE', 'config: database.lockTimeoutMs', 'config: migrate.lockWaitSeconds', 'config: retention.keepLast']) {
      expect(r.stderr).toContain(field);
    }
  });

  it('a bad --count is a usage error (exit 2)', async () => {
    const r = await runCli(['migrate', 'up', '--count', 'zero']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--count/);
  });

  it('logs what it does to stderr and keeps --json stdout a single document', async () => {
    const db = await cluster.createDatabase();
    const lines: string[] = [];
    const d = await deps(db, migrationsDir(BASIC), { logger: createTextLogger({ write: (l) => lines.push(l) }) });
    await runMigrations(d, { command: 'up' });
    expect(lines.join('')).toMatch(/migrating up 001_users\.sql/);
    const r = await runCli(['migrate', 'up', '--json'], { DATABASE_URL: cluster.url(db), PGOPS_MIGRATIONS_DIR: d.dir });
    expect(JSON.parse(r.stdout)).toEqual({ direction: 'up', ran: [], dryRun: false });
  });
});
