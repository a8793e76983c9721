import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { defaultFileConfig } from '../../../../../functions/core/config.ts';
import { DEFAULT_SESSION, parseDatabaseUrl, withDatabase, type DbTarget } from '../../../../../functions/core/db.ts';
import { runHealth, type CheckName, type CheckResult, type HealthDeps, type HealthResult } from '../../../../../functions/core/health/index.ts';
import { createTextLogger } from '../../../../../functions/core/logger.ts';
import type { Storage } from '../../../../../functions/core/storage/types.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';
import { fileStorage, useTempDirs, writeBackup } from '../../../../helpers/health.ts';

const cluster = useTestCluster();
const tempDir = useTempDirs();
const logLines: string[] = [];
const logger = createTextLogger({ level: 'debug', write: (l) => logLines.push(l) });

function deps(db: string, extra: Partial<HealthDeps> & { health?: Record<string, number> } = {}): HealthDeps {
  const { health, ...rest } = extra;
  return {
    target: cluster.target(db),
    session: DEFAULT_SESSION,
    logger,
    databaseId: db,
    environment: 'test',
    config: defaultFileConfig({ health: health ?? {} }),
    migrationsDir: tempDir(),
    ...rest,
  };
}

const check = (r: HealthResult, name: CheckName): CheckResult => r.checks.find((c) => c.name === name)!;
const statuses = (r: HealthResult) => Object.fromEntries(r.checks.map((c) => [c.name, c.status]));

async function session(db: string): Promise<{ client: pg.Client; pid: number }> {
  const client = new pg.Client({ connectionString: cluster.url(db) });
  await client.connect();
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  return { client, pid };
}

async function until(what: string, fn: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('health job on a real PostgreSQL', () => {
  it('no backup: backup-age critical and overall critical; after a fresh backup the backup checks are ok', async () => {
    const db = await cluster.createDatabase();
    const storage = fileStorage(tempDir());
    const r1 = await runHealth(deps(db, { storage }));
    expect(r1.status).toBe('critical');
    expect(check(r1, 'backup-age')).toMatchObject({ status: 'critical', summary: `no backup of "${db}" in ${storage.url}`, threshold: 26 });
    expect(check(r1, 'connection')).toMatchObject({ status: 'ok', value: expect.any(Number) });
    expect(r1.checks.map((c) => c.name)).toEqual([
      'connection', 'migrations', 'backup-age', 'backup-size', 'restore-test', 'connections', 'long-running-queries',
      'blocked-queries', 'bloat', 'database-size', 'unused-indexes', 'wal-archiving', 'replication',
    ]);

    const now = new Date();
    await writeBackup(storage, db, new Date(now.getTime() - 3_600_000), 5_000_000, { ok: true, checkedAt: new Date(now.getTime() - 1_800_000) });
    const r2 = await runHealth(deps(db, { storage }));
    expect(check(r2, 'backup-age')).toMatchObject({ status: 'ok', value: 1 });
    expect(check(r2, 'backup-size').status).toBe('ok');
    expect(check(r2, 'restore-test')).toMatchObject({ status: 'ok', threshold: 8 });
    expect(r2.status).toBe('ok');
    expect(statuses(r2)).toMatchObject({ connections: 'ok', 'long-running-queries': 'ok', 'blocked-queries': 'ok', bloat: 'ok', 'wal-archiving': 'ok', replication: 'ok', migrations: 'ok' });
    expect(check(r2, 'wal-archiving').summary).toBe('not configured (archive_mode = off)');
    expect(check(r2, 'database-size').summary).toMatch(/MiB, 0\.0% a day since/);
    expect(JSON.stringify([r1, r2, logLines])).not.toContain(cluster.pg.password);
  });

  it('a stale or truncated backup and a failed restore test are reported', async () => {
    const db = await cluster.createDatabase();
    const storage = fileStorage(tempDir());
    const day = 86_400_000;
    const now = Date.now();
    for (let i = 8; i >= 2; i--) await writeBackup(storage, db, new Date(now - i * day), 10_000_000 + i);
    await writeBackup(storage, db, new Date(now - 30 * 3_600_000), 2_000_000, { ok: false, checkedAt: new Date(now - 3_600_000), error: 'pg_restore: error: could not read input file: end of file' });
    const r = await runHealth(deps(db, { storage }));
    expect(check(r, 'backup-age')).toMatchObject({ status: 'critical', value: 30 });
    expect(check(r, 'backup-size')).toMatchObject({ status: 'warning', value: 0.2, threshold: 0.5 });
    expect(check(r, 'backup-size').summary).toMatch(/0\.2 of the median of the previous 7 .*a truncated dump\?/);
    expect(check(r, 'restore-test').status).toBe('critical');
    expect(check(r, 'restore-test').summary).toContain('failed: pg_restore: error: could not read input file: end of file');
  });

  it('reports a query running past the threshold with its pid', async () => {
    const db = await cluster.createDatabase();
    const s = await session(db);
    const sleeping = s.client.query('SELECT pg_sleep(30)').catch((e: unknown) => e);
    try {
      await until('the query to run a second', async () => (await cluster.query(
        "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query_start < clock_timestamp() - interval '1.2 s'", [s.pid])).rowCount === 1);
      const r = await runHealth(deps(db, { health: { longRunningQuerySeconds: 1 } }));
      const c = check(r, 'long-running-queries');
      expect(c).toMatchObject({ status: 'warning', threshold: 1 });
      expect(c.summary).toMatch(new RegExp(`^1 query active longer than 1 s; longest: pid ${s.pid}, \\d+ s: SELECT pg_sleep\\(30\\)$`));
      expect(c.details).toMatchObject({ count: 1, queries: [{ pid: s.pid, query: 'SELECT pg_sleep(30)', database: db }] });
      // pgops' own session never reports itself, even with a threshold of 1 s
      expect(JSON.stringify(c.details)).not.toContain('pg_stat_activity');
    } finally {
      await cluster.query('SELECT pg_cancel_backend($1)', [s.pid]);
      await sleeping;
      await s.client.end();
    }
  });

  it('reports blocked queries with the blocking pid', async () => {
    const db = await cluster.createDatabase();
    await cluster.query('CREATE TABLE accounts (id int PRIMARY KEY, balance int); INSERT INTO accounts VALUES (1, 100)', [], db);
    const holder = await session(db);
    const waiter = await session(db);
    await holder.client.query('BEGIN');
    await holder.client.query('UPDATE accounts SET balance = 50 WHERE id = 1');
    const waiting = waiter.client.query('UPDATE accounts SET balance = 70 WHERE id = 1');
    try {
      await until('the second session to wait', async () => (await cluster.query('SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted', [waiter.pid])).rowCount === 1);
      const r = await runHealth(deps(db, { options: { blockedWaitSeconds: 0 } }));
      const c = check(r, 'blocked-queries');
      expect(c.status).toBe('warning');
      expect(c.summary).toMatch(new RegExp(`^1 session\\(s\\) waiting on a lock; pid ${waiter.pid} blocked by pid ${holder.pid} for \\d+ s$`));
      expect(c.details).toMatchObject({
        blocked: [{ pid: waiter.pid, blockedBy: [holder.pid], query: 'UPDATE accounts SET balance = 70 WHERE id = 1' }],
        blockers: [{ pid: holder.pid, state: 'idle in transaction', query: 'UPDATE accounts SET balance = 50 WHERE id = 1' }],
      });
      // the default 10 s leaves a fresh wait alone
      expect(check(await runHealth(deps(db)), 'blocked-queries').status).toBe('ok');
    } finally {
      await holder.client.query('ROLLBACK');
      await waiting;
      await Promise.all([holder.client.end(), waiter.client.end()]);
    }
  });

  it('an unreachable database: connection critical, database checks unknown, backup checks still run', async () => {
    const storage = fileStorage(tempDir());
    await writeBackup(storage, 'gone', new Date(Date.now() - 3_600_000), 1000, { ok: true, checkedAt: new Date() });
    const target: DbTarget = parseDatabaseUrl('postgres://app:NotThePassword99@127.0.0.1:1/gone');
    const r = await runHealth({ ...deps('gone', { storage }), target });
    expect(r.status).toBe('critical');
    expect(check(r, 'connection')).toEqual({ name: 'connection', status: 'critical', summary: 'could not connect to postgres://app:***@127.0.0.1:1/gone: connection refused (is PostgreSQL running and listening on port 1?)' });
    for (const n of ['migrations', 'connections', 'long-running-queries', 'blocked-queries', 'bloat', 'database-size', 'unused-indexes', 'wal-archiving', 'replication'] as const) {
      expect(check(r, n)).toEqual({ name: n, status: 'unknown', summary: 'not checked: the database is unreachable' });
    }
    expect(check(r, 'backup-age').status).toBe('ok');
    expect(JSON.stringify(r)).not.toContain('NotThePassword99');
  });

  it('a permission-denied check is unknown while the others still run', async () => {
    const db = await cluster.createDatabase();
    const role = `mon_${db}`;
    await cluster.query(`CREATE ROLE ${role} LOGIN PASSWORD 'MonitorPw_123'`);
    await cluster.query('REVOKE EXECUTE ON FUNCTION pg_database_size(name) FROM PUBLIC; REVOKE EXECUTE ON FUNCTION pg_database_size(oid) FROM PUBLIC', [], db);
    const storage = fileStorage(tempDir());
    await writeBackup(storage, db, new Date(Date.now() - 3_600_000), 1000, { ok: true, checkedAt: new Date() });
    const base = cluster.target(db);
    const target = { ...withDatabase(base, db), user: role, password: 'MonitorPw_123' };
    const r = await runHealth({ ...deps(db, { storage }), target });
    expect(check(r, 'database-size')).toMatchObject({ status: 'unknown', summary: 'could not run: permission denied for function pg_database_size (grant pg_monitor to the health role)', details: { sqlState: '42501' } });
    expect(r.status).toBe('unknown');
    expect(statuses(r)).toMatchObject({ connection: 'ok', migrations: 'ok', 'backup-age': 'ok', connections: 'ok', 'blocked-queries': 'ok', bloat: 'ok', 'unused-indexes': 'ok', 'wal-archiving': 'ok', replication: 'ok' });
    expect(check(r, 'connections').details).toMatchObject({ approximate: true });

    // A long query of another user that this role cannot see: unknown, not "no long queries".
    const s = await session(db);
    const sleeping = s.client.query('SELECT pg_sleep(30)').catch((e: unknown) => e);
    try {
      await until('the query to start', async () => (await cluster.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [s.pid])).rowCount === 1);
      const r2 = await runHealth({ ...deps(db, { health: { longRunningQuerySeconds: 1 } }), target });
      expect(check(r2, 'long-running-queries')).toMatchObject({ status: 'unknown' });
      expect(check(r2, 'long-running-queries').summary).toMatch(/^cannot see the queries of \d+ other session\(s\): grant pg_monitor/);
    } finally {
      await cluster.query('SELECT pg_cancel_backend($1)', [s.pid]);
      await sleeping;
      await s.client.end();
    }
  });

  it('storage that cannot be read makes the backup checks unknown, not critical', async () => {
    const db = await cluster.createDatabase();
    const broken: Storage = {
      url: 's3://locked-bucket/pgops',
      putStream: async () => { throw new Error('AccessDenied'); },
      putBytes: async () => { throw new Error('AccessDenied: not allowed to write'); },
      getStream: async () => { throw new Error('AccessDenied'); },
      getBytes: async () => { throw new Error('AccessDenied: not allowed to read'); },
      list: async () => { throw new Error('AccessDenied: not allowed to list'); },
      delete: async () => {},
    };
    const r = await runHealth(deps(db, { storage: broken }));
    for (const n of ['backup-age', 'backup-size', 'restore-test'] as const) {
      expect(check(r, n)).toEqual({ name: n, status: 'unknown', summary: 'could not list backups in s3://locked-bucket/pgops: AccessDenied: not allowed to list' });
    }
    expect(check(r, 'database-size').status).toBe('unknown');
    expect(check(r, 'connection').status).toBe('ok');
    expect(r.status).toBe('unknown');
    // and with no storage at all
    const r2 = await runHealth(deps(db));
    expect(check(r2, 'backup-age')).toMatchObject({ status: 'unknown', summary: 'no storage configured: set --storage / PGOPS_STORAGE to check backups' });
    expect(check(r2, 'database-size').status).toBe('ok');
  });

  it('tracks database growth between runs in <database>/state/health.json; pending migrations are a warning', async () => {
    const db = await cluster.createDatabase();
    const storage = fileStorage(tempDir());
    const t0 = new Date('2026-11-22T00:00:00Z');
    const r1 = await runHealth(deps(db, { storage, clock: () => t0, health: { maxDailyGrowthRatio: 0.05 } }));
    expect(check(r1, 'database-size').summary).toMatch(/first measurement/);
    expect((await storage.list(`${db}/state/`)).map((o) => o.key)).toEqual([`${db}/state/health.json`]);
    await cluster.query("CREATE TABLE filler AS SELECT g, md5(g::text) AS t FROM generate_series(1, 20000) g", [], db);
    const r2 = await runHealth(deps(db, { storage, clock: () => new Date(t0.getTime() + 3_600_000), health: { maxDailyGrowthRatio: 0.05 } }));
    const c = check(r2, 'database-size');
    expect(c).toMatchObject({ status: 'warning', threshold: 0.05, details: { since: t0.toISOString() } });
    expect(c.value).toBeGreaterThan(0.05);

    const dir = tempDir();
    writeFileSync(join(dir, '001_first.sql'), '-- Up Migration\nCREATE TABLE x (id int);\n-- Down Migration\nDROP TABLE x;\n');
    const r3 = await runHealth({ ...deps(db), migrationsDir: dir });
    expect(check(r3, 'migrations')).toMatchObject({ status: 'warning', summary: '1 pending migration(s): 001_first', value: 1 });
    const r4 = await runHealth({ ...deps(db), migrationsDir: join(dir, 'nope') });
    expect(check(r4, 'migrations')).toMatchObject({ status: 'unknown' });
    expect(check(r4, 'migrations').summary).toMatch(/^could not run: migrations directory .*nope does not exist/);
  });

  it('a pending migration that sorts before applied ones is critical: migrate up will refuse it', async () => {
    const db = await cluster.createDatabase();
    await cluster.query('CREATE TABLE pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL)', [], db);
    await cluster.query("INSERT INTO pgmigrations (name, run_on) VALUES ('001_a', now()), ('003_c', now())", [], db);
    const dir = tempDir();
    for (const n of ['001_a', '002_b', '003_c']) writeFileSync(join(dir, `${n}.sql`), `-- Up Migration\nSELECT 1;\n-- Down Migration\nSELECT 1;\n`);
    const r = await runHealth({ ...deps(db), migrationsDir: dir });
    expect(check(r, 'migrations')).toMatchObject({ status: 'critical', value: 1, summary: expect.stringMatching(/^pending migration\(s\) sort before applied ones: 002_b \(before 003_c\): migrate up will refuse/) });
  });

  it('a database id that cannot name a storage folder is a configuration error, not a failing check', async () => {
    const db = await cluster.createDatabase();
    await expect(runHealth(deps(db, { storage: fileStorage(tempDir()), databaseId: 'my db' }))).rejects.toThrow(/database id "my db" cannot name a storage folder.*PGOPS_DATABASE_ID/s);
  });
});
