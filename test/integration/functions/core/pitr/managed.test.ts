// Managed PITR end to end, with RDS mocked and the restored copy a real PostgreSQL: DescribeDBInstances
// answers with a local cluster's host and port ("the copy", holding the database as it was at the
// target), while the connection is another cluster ("production", where the bad DELETE happened).
// --target-db and --export run for real through pg_dump and pg_restore; the copy is deleted after;
// a copy holding an old master password gets the secret's; no password appears anywhere.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRestore } from '../../../../../functions/core/backup/restore.ts';
import { runCleanup } from '../../../../../functions/core/cleanup/job.ts';
import { runHealth } from '../../../../../functions/core/health/job.ts';
import { listBackups } from '../../../../../functions/core/catalog/catalog.ts';
import { defaultFileConfig, managedConfigOf } from '../../../../../functions/core/config.ts';
import { CopyNotDeletedError, runManagedPitr, type ManagedPitrDeps, type ManagedPitrResult } from '../../../../../functions/core/pitr/managed/job.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import { captured } from '../../../../helpers/output-scan.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';
import { FakeRds, fakeTime, T } from '../../../../unit/functions/core/pitr/managed/fake-rds.ts';

const production = useTestCluster();
const copy = useTestCluster();
const cap = captured(() => [production.pg.password, copy.pg.password]);
const store = mkdtempSync(join(tmpdir(), 'pgops-managed-pitr-'));
const storage = new FileStorage(pathToFileURL(store).href);
afterAll(() => rmSync(store, { recursive: true, force: true }));
/** A superuser session on the copy, opened before its password changes (ALTER ROLE keeps it). */
let copyAdmin: pg.Client;

beforeAll(async () => {
  // Production after the accident: user 3 deleted, a table added later.
  await production.createDatabase('auth');
  await production.query('CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL)', [], 'auth');
  await production.query("INSERT INTO users VALUES (1, 'a@example.com'), (2, 'b@example.com'), (4, 'd@example.com')", [], 'auth');
  // The copy: the same database as it was at 14:01, before the DELETE.
  await copy.createDatabase('auth');
  await copy.query('CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL)', [], 'auth');
  await copy.query('CREATE TABLE sessions (id int PRIMARY KEY, user_id int)', [], 'auth');
  await copy.query("INSERT INTO users VALUES (1, 'a@example.com'), (2, 'b@example.com'), (3, 'c@example.com'), (4, 'd@example.com')", [], 'auth');
  await copy.query('INSERT INTO sessions VALUES (1, 3)', [], 'auth');
  copyAdmin = new pg.Client({ connectionString: copy.url() });
  await copyAdmin.connect();
  // The same master user and password as production: what RDS restores when the secret did not rotate since.
  await setCopyPassword(production.pg.password);
});
afterAll(async () => { await copyAdmin?.end(); });

async function setCopyPassword(password: string): Promise<void> {
  await copyAdmin.query(`ALTER ROLE postgres PASSWORD '${password.replace(/'/g, "''")}'`);
}

function world(): FakeRds {
  const w = new FakeRds({ restoreStatuses: ['creating', 'backing-up'], endpoint: { host: copy.pg.host, port: copy.pg.port }, onPasswordReset: (p) => setCopyPassword(p) });
  w.addSourceInstance('auth-prod');
  w.addSourceCluster('auth-aurora');
  return w;
}

function deps(w: FakeRds, extra: Partial<Omit<ManagedPitrDeps, 'alerter'>> = {}): ManagedPitrDeps & { alerter: ReturnType<typeof cap.alerter> } {
  const time = fakeTime(T('2026-12-01T15:00:00Z'));
  return {
    rds: () => w.rds, config: managedConfigOf(defaultFileConfig({ managed: { pitr: { pollSeconds: 5 } } })), storage,
    logger: cap.logger().logger, alerter: cap.alerter(), environment: 'test', databaseId: 'auth',
    target: async () => production.target('auth'), clock: time.clock, sleep: time.sleep, runId: () => 'integration1',
    ...extra,
  };
}

const rows = async (cluster: typeof production, db: string, table = 'users') => (await cluster.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`, [], db)).rows.map((r) => r.id);
const tables = async (db: string) => (await production.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", [], db)).rows.map((r) => r.t);

describe('managed PITR with a real copy', () => {
  it('--target-db --create --table: the table as it was, in a new database on the production server; the copy deleted', async () => {
    const w = world();
    const r = await runManagedPitr(deps(w), {
      rdsInstance: 'auth-prod', target: { targetTime: '2026-12-01T14:01:00Z' }, output: { targetDb: 'auth_1401', create: true, tables: ['users'] },
    }) as ManagedPitrResult;
    cap.add('result', r);
    expect(r.output).toEqual({ type: 'target-db', database: 'auth_1401', sourceDb: 'auth', created: true, tables: 1 });
    expect(await rows(production, 'auth_1401')).toEqual([1, 2, 3, 4]);
    expect(await tables('auth_1401')).toEqual(['users']);
    // Production itself is untouched.
    expect(await rows(production, 'auth')).toEqual([1, 2, 4]);
    expect(r.restored).toEqual({ instance: 'pgops-pitr-auth-prod-202612011401', instanceClass: 'db.t4g.medium', expires: '2026-12-02T15:00:00Z', deleted: ['instance pgops-pitr-auth-prod-202612011401'], kept: false });
    expect(w.calls('DeleteDBInstanceCommand')).toEqual([{ DBInstanceIdentifier: 'pgops-pitr-auth-prod-202612011401', SkipFinalSnapshot: true, DeleteAutomatedBackups: true }]);
    expect(w.calls('ModifyDBInstanceCommand')).toEqual([]);
  });

  it('--export from an Aurora copy: a logical backup marked as a recovery\'s, listed and restorable; cluster and instance deleted', async () => {
    const w = world();
    const d = deps(w);
    const r = await runManagedPitr(d, { auroraCluster: 'auth-aurora', target: { latest: true }, output: { export: true } }) as ManagedPitrResult;
    cap.add('result', r);
    expect(r.output).toMatchObject({ type: 'export', sourceDb: 'auth' });
    const backupId = (r.output as { backupId: string }).backupId;
    const manifest = (await listBackups(storage, 'auth')).find((m) => m.id === backupId) as unknown as Record<string, unknown>;
    expect(manifest).toMatchObject({ kind: 'full', source: 'pitr', target: { type: 'latest' }, rds: { source: { kind: 'cluster', id: 'auth-aurora' }, restored: { cluster: 'pgops-pitr-auth-aurora-202612011405', instance: 'pgops-pitr-auth-aurora-202612011405-1' } } });
    await runRestore({ target: production.target('postgres'), storage, logger: d.logger, alerter: d.alerter, databaseId: 'auth', environment: 'test' }, backupId, { targetDb: 'auth_export', create: true });
    expect(await rows(production, 'auth_export')).toEqual([1, 2, 3, 4]);
    expect(await rows(production, 'auth_export', 'sessions')).toEqual([1]);
    expect(w.calls('CreateDBInstanceCommand')).toHaveLength(1);
    expect(w.calls('DeleteDBInstanceCommand')).toEqual([{ DBInstanceIdentifier: 'pgops-pitr-auth-aurora-202612011405-1' }]);
    expect(w.calls('DeleteDBClusterCommand')).toEqual([expect.objectContaining({ DBClusterIdentifier: 'pgops-pitr-auth-aurora-202612011405' })]);
  });

  it('a copy that holds the master password of its restore time is given the secret\'s, then read', async () => {
    await setCopyPassword('old-password-before-rotation');
    cap.secret('old-password-before-rotation');
    const w = world();
    const r = await runManagedPitr(deps(w), {
      rdsInstance: 'auth-prod', target: { targetTime: '2026-12-01T14:01:00Z' }, output: { targetDb: 'auth_rotated', create: true },
    }) as ManagedPitrResult;
    cap.add('result', r);
    expect(r.restored.passwordReset).toBe(true);
    const modify = w.calls('ModifyDBInstanceCommand');
    expect(modify).toHaveLength(1);
    expect(modify[0]).toMatchObject({ DBInstanceIdentifier: 'pgops-pitr-auth-prod-202612011401', ApplyImmediately: true });
    expect(modify[0]!.MasterUserPassword === production.pg.password).toBe(true);
    expect(await rows(production, 'auth_rotated')).toEqual([1, 2, 3, 4]);
  });

  it('an output produced but a copy that cannot be deleted is a warning-level failure naming both', async () => {
    const w = world();
    w.faults.set('DeleteDBInstance', Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
    const d = deps(w);
    const e = await runManagedPitr(d, { rdsInstance: 'auth-prod', target: { latest: true }, output: { export: true } }).catch((err: unknown) => cap.error(err));
    expect(e).toBeInstanceOf(CopyNotDeletedError);
    expect((e as Error).message).toMatch(/^the output was produced \(logical backup \S+\), but the restored instance pgops-pitr-auth-prod-202612011405 could not be deleted \(RDS DeleteDBInstance .* Throttling.*\): it bills until cleanup deletes it after 2026-12-02T15:00:00Z, or delete it now: aws rds delete-db-instance/);
    expect(d.alerter.sent).toEqual([expect.objectContaining({ severity: 'warning', job: 'pitr' })]);
  });

  it('a copy kept with --keep is deleted by the cleanup job once its expiry has passed, not before', async () => {
    const w = world();
    const r = await runManagedPitr(deps(w), { rdsInstance: 'auth-prod', target: { latest: true }, output: { export: true }, keep: true }) as ManagedPitrResult;
    cap.add('result', r);
    expect(r.restored).toMatchObject({ kept: true, deleted: [], endpoint: { host: copy.pg.host, port: copy.pg.port } });
    expect(w.calls('DeleteDBInstanceCommand')).toEqual([]);
    const config = defaultFileConfig({ managed: { rdsInstance: 'auth-prod' } });
    const cleanup = (at: string) => runCleanup({
      target: production.target('auth'), session: config.database, logger: cap.logger().logger, alerter: cap.alerter(), databaseId: 'auth',
      environment: 'test', config, clock: () => T(at), rds: () => w.rds,
    });
    const early = await cleanup('2026-12-02T14:00:00Z');
    cap.add('cleanup', early);
    expect(early.managedPitr).toMatchObject({ deleted: [], kept: [{ kind: 'instance', id: 'pgops-pitr-auth-prod-202612011405', expires: '2026-12-02T15:00:00.000Z' }] });
    const late = await cleanup('2026-12-02T16:00:00Z');
    cap.add('cleanup', late);
    expect(late.managedPitr.deleted).toEqual([{ kind: 'instance', id: 'pgops-pitr-auth-prod-202612011405', source: 'auth-prod', expires: '2026-12-02T15:00:00.000Z' }]);
    expect(w.calls('DeleteDBInstanceCommand')).toEqual([{ DBInstanceIdentifier: 'pgops-pitr-auth-prod-202612011405', SkipFinalSnapshot: true, DeleteAutomatedBackups: true }]);
  });

  it('the health job has a restore-window check only for a database configured as RDS/Aurora', async () => {
    const w = world();
    const health = (managed: unknown, rds?: () => typeof w.rds) => runHealth({
      target: production.target('auth'), session: defaultFileConfig().database, logger: cap.logger().logger, databaseId: 'auth', environment: 'test',
      config: defaultFileConfig({ managed }), migrationsDir: store, clock: () => T('2026-12-01T14:30:00Z'), ...(rds ? { rds } : {}),
    });
    const rdsRun = await health({ rdsInstance: 'auth-prod' }, () => w.rds);
    cap.add('health', rdsRun);
    expect(rdsRun.checks.find((c) => c.name === 'restore-window')).toMatchObject({ status: 'warning', value: 25, threshold: 15 });
    const selfManaged = await health(undefined);
    cap.add('health', selfManaged);
    expect(selfManaged.checks.map((c) => c.name)).not.toContain('restore-window');
  });
});
