// The safety point of `migrate up`: a full backup before a destructive migration (migrate.backupBefore)
// that brings the data back when restored, a restore point where the role may (skipped with a reason
// where it may not), the way back in the result and in the failure alert, and a dry run that takes nothing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../../../functions/core/backup/backup.ts';
import { listBackups } from '../../../../../functions/core/catalog/catalog.ts';
import { defaultFileConfig, loadSettings } from '../../../../../functions/core/config.ts';
import { ConfigError, exitCodeOf } from '../../../../../functions/core/errors.ts';
import { historyTables } from '../../../../../functions/core/migrate/files.ts';
import { runMigrations, type MigrateJobDeps } from '../../../../../functions/core/migrate/job.ts';
import { SafetyPointError } from '../../../../../functions/core/migrate/safety-point.ts';
import { buildRuntime } from '../../../../../functions/core/runtime.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import { runCli } from '../../../../helpers/cli.ts';
import { captured } from '../../../../helpers/output-scan.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';

const cluster = useTestCluster();
// wal_level minimal: no restore point can be replayed to, so none is made.
const minimal = useTestCluster({ settings: { wal_level: 'minimal', max_wal_senders: 0 } });
const out = captured(() => [cluster.pg.password, minimal.pg.password, 'app-role-secret']);
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

function migrationsDir(files: Record<string, string>): string {
  const dir = tempDir('pgops-safety-');
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
  return dir;
}

const USERS = '-- Up Migration\nCREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, legacy_code text);\n-- Down Migration\nDROP TABLE users;\n';
const DROP_LEGACY = '-- Up Migration\n-- pgops:lint-ignore ban-drop-column -- unused since release 41\nALTER TABLE users DROP COLUMN legacy_code;\n-- Down Migration\nALTER TABLE users ADD COLUMN legacy_code text;\n';
const ADD_NOTE = '-- Up Migration\nALTER TABLE users ADD COLUMN note text;\n-- Down Migration\nALTER TABLE users DROP COLUMN note;\n';
const FAILING = '-- Up Migration\nALTER TABLE users ADD COLUMN note text;\nSELECT 1 / 0;\n-- Down Migration\nALTER TABLE users DROP COLUMN note;\n';

interface Setup { db: string; storage: FileStorage; deps: MigrateJobDeps }

/** A database with 001 applied and three users with legacy codes; storage in a temp folder; the backup as the runtime wires it. */
async function setup(cl: typeof cluster, files: Record<string, string>, overrides: Partial<MigrateJobDeps> = {}, storageUrl?: string): Promise<Setup> {
  const db = await cl.createDatabase();
  const storage = new FileStorage(storageUrl ?? `file://${tempDir('pgops-safety-storage-')}`);
  const config = defaultFileConfig();
  const alerter = out.alerter();
  const logger = out.logger().logger;
  const target = cl.target(db);
  const base: MigrateJobDeps = {
    target, session: config.database, dir: migrationsDir({ '001_users.sql': USERS }), tables: historyTables('public', 'pgmigrations'),
    lockWaitSeconds: 5, lockPollMs: 50, logger, alerter, databaseId: db, environment: 'test',
    takeBackup: () => runBackup({ target, storage, logger, alerter: { send: async () => {} }, databaseId: db, environment: 'test', session: config.database, binDir: cl.pg.binDir }),
  };
  await runMigrations(base, { command: 'up' });
  await cl.query("INSERT INTO users VALUES (1, 'a@example.com', 'L-1'), (2, 'b@example.com', 'L-2'), (3, 'c@example.com', NULL)", [], db);
  return { db, storage, deps: { ...base, dir: migrationsDir({ '001_users.sql': USERS, ...files }), ...overrides } };
}

async function applied(cl: typeof cluster, db: string): Promise<string[]> {
  return (await cl.query<{ name: string }>('SELECT name FROM pgmigrations ORDER BY id', [], db)).rows.map((r) => r.name);
}

async function columns(cl: typeof cluster, db: string): Promise<string[]> {
  return (await cl.query<{ c: string }>("SELECT attname AS c FROM pg_attribute WHERE attrelid = 'users'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum", [], db)).rows.map((r) => r.c);
}

/** The restore points written to WAL since `from` (pg_walinspect reads the server's own WAL, up to what is flushed). */
async function restorePointsSince(from: string): Promise<Array<{ end: string; description: string }>> {
  await cluster.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect; CHECKPOINT');
  const r = await cluster.query<{ end: string; description: string }>(
    "SELECT end_lsn::text AS end, description FROM pg_get_wal_records_info($1::pg_lsn, pg_current_wal_flush_lsn()) WHERE record_type = 'RESTORE_POINT'", [from]);
  return r.rows;
}

const currentLsn = async () => (await cluster.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;

describe('migrate.backupBefore', () => {
  it('"destructive" takes a full backup before a DROP COLUMN and names it; restoring it brings the column\'s data back', async () => {
    const { db, storage, deps } = await setup(cluster, { '002_drop_legacy.sql': DROP_LEGACY }, { backupBefore: 'destructive' });
    const result = await runMigrations(deps, { command: 'up' });
    out.add('result', result);
    expect(result.ran.map((m) => m.name)).toEqual(['002_drop_legacy']);
    const sp = result.safetyPoint!;
    const backups = await listBackups(storage, db);
    expect(backups.map((b) => b.id)).toEqual([sp.backupId]);
    expect(backups[0]).toMatchObject({ kind: 'full', migration: '001_users' });
    expect(sp.backupReason).toMatch(/^migrate\.backupBefore is "destructive" and the pending migrations hold 1 destructive change\(s\): drop-column users\.legacy_code \(002_drop_legacy\.sql:3\)$/);
    expect(sp.destructive).toEqual([{ file: '002_drop_legacy.sql', line: 3, kind: 'drop-column', target: 'users.legacy_code' }]);
    expect(sp.goBack?.[0]).toBe(`pgops restore ${sp.backupId} --target-db ${db} --clean`);
    expect(await columns(cluster, db)).toEqual(['id', 'email']);

    // The way back, exactly as the result gives it, through the CLI.
    const args = sp.goBack![0]!.split(' ').slice(1);
    const restored = out.cli(await runCli([...args, '--json'], { DATABASE_URL: cluster.url(db), PGOPS_STORAGE: storage.url }, { timeoutMs: 120_000 }));
    expect(restored.code, restored.stderr).toBe(0);
    expect(await columns(cluster, db)).toEqual(['id', 'email', 'legacy_code']);
    const rows = await cluster.query<{ id: string; legacy_code: string | null }>('SELECT id::text, legacy_code FROM users ORDER BY id', [], db);
    expect(rows.rows).toEqual([{ id: '1', legacy_code: 'L-1' }, { id: '2', legacy_code: 'L-2' }, { id: '3', legacy_code: null }]);
    // The history is the backup's too: the drop is pending again.
    expect(await applied(cluster, db)).toEqual(['001_users']);
  });

  it('"destructive" takes none when the pending migrations destroy nothing', async () => {
    const { db, storage, deps } = await setup(cluster, { '002_note.sql': ADD_NOTE }, { backupBefore: 'destructive' });
    const result = await runMigrations(deps, { command: 'up' });
    out.add('result', result);
    expect(result.ran.map((m) => m.name)).toEqual(['002_note']);
    expect(result.safetyPoint?.backupId).toBeUndefined();
    expect(result.safetyPoint?.backupReason).toBeUndefined();
    expect(await listBackups(storage, db)).toEqual([]);
  });

  it('"always" backs up with no destructive change', async () => {
    const { db, storage, deps } = await setup(cluster, { '002_note.sql': ADD_NOTE }, { backupBefore: 'always' });
    const result = await runMigrations(deps, { command: 'up' });
    out.add('result', result);
    expect(result.safetyPoint).toMatchObject({ backupReason: 'migrate.backupBefore is "always"' });
    expect((await listBackups(storage, db)).map((b) => b.id)).toEqual([result.safetyPoint!.backupId]);
    expect(result.safetyPoint!.destructive).toBeUndefined();
  });

  it('"never" (the default) does not back up, even before a DROP COLUMN', async () => {
    const { db, storage, deps } = await setup(cluster, { '002_drop_legacy.sql': DROP_LEGACY });
    const result = await runMigrations(deps, { command: 'up' });
    out.add('result', result);
    expect(result.ran.map((m) => m.name)).toEqual(['002_drop_legacy']);
    expect(result.safetyPoint?.backupId).toBeUndefined();
    expect(await listBackups(storage, db)).toEqual([]);
  });

  it('applies nothing when the backup fails, with a clear error and one alert', async () => {
    // Storage under a regular file: the dump cannot be written.
    const blocker = join(tempDir('pgops-safety-blocked-'), 'not-a-dir');
    writeFileSync(blocker, '');
    const { db, deps } = await setup(cluster, { '002_drop_legacy.sql': DROP_LEGACY }, { backupBefore: 'destructive' }, `file://${blocker}/storage`);
    const err = out.error(await runMigrations(deps, { command: 'up' }).catch((e: unknown) => e));
    expect(err).toBeInstanceOf(SafetyPointError);
    expect(exitCodeOf(err)).toBe(1);
    expect((err as Error).message).toMatch(/^the backup before migrating failed, so nothing was applied: upload to file:\/\/\S+ failed: .*ENOTDIR/);
    expect(await applied(cluster, db)).toEqual(['001_users']);
    expect(await columns(cluster, db)).toEqual(['id', 'email', 'legacy_code']);
    const alerts = (deps.alerter as ReturnType<typeof out.alerter>).sent;
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ severity: 'critical', job: 'migrate' });
    expect(alerts[0]!.summary).toMatch(/nothing was applied/);
  });

  it('is a ConfigError naming the setting when no storage is configured, and nothing is applied', async () => {
    const db = await cluster.createDatabase();
    const dir = migrationsDir({ '001_users.sql': USERS });
    const settings = loadSettings({}, { DATABASE_URL: cluster.url(db), PGOPS_MIGRATIONS_DIR: dir, PGOPS_CONFIG_JSON: JSON.stringify({ migrate: { backupBefore: 'destructive' } }) });
    const rt = buildRuntime(settings, out.logger().logger, { openStorage: (url) => new FileStorage(url) });
    const deps = { ...(await rt.migrateDeps({ runBackup: async () => { throw new Error('never called'); } })), alerter: out.alerter() };
    expect(deps.takeBackup).toBeUndefined();
    for (const dryRun of [true, false]) {
      const err = out.error(await runMigrations(deps, { command: 'up', dryRun }).catch((e: unknown) => e));
      expect(err).toBeInstanceOf(ConfigError);
      expect(exitCodeOf(err)).toBe(2);
      expect((err as ConfigError).issues).toEqual([expect.stringMatching(/^migrate\.backupBefore is "destructive", but no backup can be taken here: configure storage \(--storage \/ PGOPS_STORAGE/)]);
    }
    expect((await cluster.query("SELECT 1 FROM pg_tables WHERE schemaname = 'public'", [], db)).rowCount).toBe(0);
    expect(deps.alerter.sent).toEqual([]);
  });
});

describe('pgops migrate up (the CLI)', () => {
  it('backs up to --storage with pg_dump, prints the safety point and the way back, and names it in --json', async () => {
    const { db, storage, deps } = await setup(cluster, { '002_drop_legacy.sql': DROP_LEGACY });
    const env = { DATABASE_URL: cluster.url(db), PGOPS_STORAGE: storage.url, PGOPS_MIGRATIONS_DIR: deps.dir, PGOPS_CONFIG_JSON: JSON.stringify({ migrate: { backupBefore: 'destructive' } }) };
    const dry = out.cli(await runCli(['migrate', 'up', '--dry-run'], env, { timeoutMs: 120_000 }));
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^Safety point \(dry run: nothing taken\):\n {2}backup {6}a full backup would be taken first \(migrate\.backupBefore is "destructive" and .*drop-column users\.legacy_code \(002_drop_legacy\.sql:3\)\)\n {2}restore {5}would record pgops-migrate-\d{8}T\d{6}Z-002_drop_legacy\n/);
    expect(await listBackups(storage, db)).toEqual([]);

    const r = out.cli(await runCli(['migrate', 'up', '--json'], env, { timeoutMs: 120_000 }));
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { ran: Array<{ name: string }>; safetyPoint: { backupId: string; restorePoint: { name: string; lsn: string }; goBack: string[] } };
    expect(result.ran.map((m) => m.name)).toEqual(['002_drop_legacy']);
    expect((await listBackups(storage, db)).map((b) => b.id)).toEqual([result.safetyPoint.backupId]);
    expect(result.safetyPoint.restorePoint.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(result.safetyPoint.goBack).toEqual([`pgops restore ${result.safetyPoint.backupId} --target-db ${db} --clean`]);
  });

  it('without storage, migrate.backupBefore is exit 2 naming the setting; status still works', async () => {
    const { db, deps } = await setup(cluster, { '002_drop_legacy.sql': DROP_LEGACY });
    const env = { DATABASE_URL: cluster.url(db), PGOPS_MIGRATIONS_DIR: deps.dir, PGOPS_CONFIG_JSON: JSON.stringify({ migrate: { backupBefore: 'always' } }) };
    const r = out.cli(await runCli(['migrate', 'up'], env, { timeoutMs: 120_000 }));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/migrate\.backupBefore is "always", but no backup can be taken here: configure storage \(--storage \/ PGOPS_STORAGE/);
    expect(await applied(cluster, db)).toEqual(['001_users']);
    const status = out.cli(await runCli(['migrate', 'status'], env, { timeoutMs: 120_000 }));
    expect(status.code, status.stderr).toBe(0);
  });
});

describe('the restore point', () => {
  it('is recorded before applying: the result names it and its LSN, and it is in the WAL', async () => {
    const { deps } = await setup(cluster, { '002_note.sql': ADD_NOTE }, { clock: () => new Date('2026-12-01T14:05:09.123Z') });
    const before = await currentLsn();
    const result = await runMigrations(deps, { command: 'up' });
    out.add('result', result);
    const rp = result.safetyPoint!.restorePoint!;
    expect(rp.name).toBe('pgops-migrate-20261201T140509Z-002_note');
    expect(rp.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(await restorePointsSince(before)).toEqual([{ end: rp.lsn, description: rp.name }]);
    expect(result.safetyPoint!.skipped).toBeUndefined();
    // archive_mode is off and there is no slot here: no `pgops pitr` to offer.
    expect(result.safetyPoint!.goBack).toBeUndefined();
  });

  it('is skipped with a reason for a role that may not create one (the migrations still apply); EXECUTE granted, it is made', async () => {
    const { db, deps } = await setup(cluster, { '002_note.sql': ADD_NOTE });
    await cluster.query("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app') THEN CREATE ROLE app LOGIN PASSWORD 'app-role-secret'; END IF; END $$");
    await cluster.query(`ALTER DATABASE "${db}" OWNER TO app; GRANT CREATE ON SCHEMA public TO app`, [], db);
    await cluster.query('ALTER TABLE users OWNER TO app; ALTER TABLE pgmigrations OWNER TO app; ALTER TABLE pgmigrations_checksums OWNER TO app', [], db);
    const asApp = { ...cluster.target(db), user: 'app', password: 'app-role-secret', display: `postgres://app:***@127.0.0.1/${db}` };
    const log = out.logger('warn');
    const result = await runMigrations({ ...deps, target: asApp, logger: log.logger }, { command: 'up' });
    out.add('result', result);
    expect(result.ran.map((m) => m.name)).toEqual(['002_note']);
    expect(result.safetyPoint).toEqual({ skipped: ['no restore point: role app may not execute pg_create_restore_point (a superuser may; or GRANT EXECUTE ON FUNCTION pg_create_restore_point(text) TO app)'] });
    expect(log.lines.join('')).toMatch(/safety point: no restore point: role app may not/);

    // Function privileges are per database.
    await cluster.query('GRANT EXECUTE ON FUNCTION pg_create_restore_point(text) TO app', [], db);
    try {
      const dir = migrationsDir({ '001_users.sql': USERS, '002_note.sql': ADD_NOTE, '003_more.sql': '-- Up Migration\nALTER TABLE users ADD COLUMN more text;\n' });
      const granted = await runMigrations({ ...deps, dir, target: asApp }, { command: 'up' });
      out.add('granted', granted);
      expect(granted.safetyPoint?.restorePoint?.name).toMatch(/^pgops-migrate-\d{8}T\d{6}Z-003_more$/);
      expect(granted.safetyPoint?.skipped).toBeUndefined();
    } finally {
      await cluster.query('REVOKE EXECUTE ON FUNCTION pg_create_restore_point(text) FROM app', [], db);
    }
  });

  it('is skipped with a reason when wal_level is minimal', async () => {
    const { deps } = await setup(minimal, { '002_note.sql': ADD_NOTE });
    const result = await runMigrations(deps, { command: 'up' });
    out.add('result', result);
    expect(result.ran.map((m) => m.name)).toEqual(['002_note']);
    expect(result.safetyPoint?.restorePoint).toBeUndefined();
    expect(result.safetyPoint?.skipped).toEqual([expect.stringMatching(/^no restore point: wal_level is minimal/)]);
  });
});

describe('the safety point on failure and in a dry run', () => {
  it('the failure alert carries the safety point and the way back; so does the error', async () => {
    const { db, storage, deps } = await setup(cluster, { '002_fails.sql': FAILING }, { backupBefore: 'always' });
    const err = out.error(await runMigrations(deps, { command: 'up' }).catch((e: unknown) => e));
    expect((err as Error).message).toMatch(/^migration 002_fails\.sql failed \(up\): division by zero\. It was rolled back\.\nSafety point taken before this run: backup \S+, restore point pgops-migrate-\S+-002_fails \([0-9A-F]+\/[0-9A-F]+\)\. To go back: pgops restore \S+ --target-db \S+ --clean$/);
    const alerts = (deps.alerter as ReturnType<typeof out.alerter>).sent;
    expect(alerts).toHaveLength(1);
    const [backup] = await listBackups(storage, db);
    expect(alerts[0]!.details).toMatchObject({
      command: 'up',
      safetyPoint: {
        backupId: backup!.id,
        restorePoint: { name: expect.stringMatching(/^pgops-migrate-\d{8}T\d{6}Z-002_fails$/), lsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/) },
        goBack: [`pgops restore ${backup!.id} --target-db ${db} --clean`],
      },
    });
  });

  it('a dry run reports what the safety point would be and takes none', async () => {
    const { db, storage, deps } = await setup(cluster, { '002_drop_legacy.sql': DROP_LEGACY }, { backupBefore: 'destructive', clock: () => new Date('2026-12-01T14:05:09Z') });
    const before = await currentLsn();
    const result = await runMigrations(deps, { command: 'up', dryRun: true });
    out.add('result', result);
    expect(result.safetyPoint).toEqual({
      planned: true,
      restorePoint: { name: 'pgops-migrate-20261201T140509Z-002_drop_legacy' },
      backupReason: expect.stringMatching(/^migrate\.backupBefore is "destructive" and the pending migrations hold 1 destructive change/),
      destructive: [{ file: '002_drop_legacy.sql', line: 3, kind: 'drop-column', target: 'users.legacy_code' }],
    });
    expect(await listBackups(storage, db)).toEqual([]);
    expect(await restorePointsSince(before)).toEqual([]);
    expect(await applied(cluster, db)).toEqual(['001_users']);
  });

  it('a down, and an up with nothing to apply, record no safety point', async () => {
    const { storage, db, deps } = await setup(cluster, { '002_note.sql': ADD_NOTE }, { backupBefore: 'always' });
    await runMigrations(deps, { command: 'up' });
    const nothing = await runMigrations(deps, { command: 'up' });
    const down = await runMigrations(deps, { command: 'down' });
    out.add('results', [nothing, down]);
    expect(nothing.safetyPoint).toBeUndefined();
    expect(down.safetyPoint).toBeUndefined();
    expect(await listBackups(storage, db)).toHaveLength(1);
  });
});
