// The managed PITR job on a mocked RDS: a dry run creates nothing; a target outside the window is
// refused before anything is created; every step that fails after the restore started deletes the
// copy (RDS failure, timeout, the output step, SIGTERM), Aurora's instance and cluster alike;
// --keep keeps it; no password in any output, log, alert or error.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../../../../bin/demo/embedded-postgres.ts';
import { defaultFileConfig, managedConfigOf } from '../../../../../../functions/core/config.ts';
import type { DbTarget } from '../../../../../../functions/core/db.ts';
import { exitCodeOf, type PgopsError } from '../../../../../../functions/core/errors.ts';
import { PitrError, PitrRefusedError } from '../../../../../../functions/core/pitr/errors.ts';
import { runManagedPitr, type ManagedPitrDeps, type ManagedPitrDryRun, type ManagedPitrOptions } from '../../../../../../functions/core/pitr/managed/job.ts';
import { RestoreFailedError } from '../../../../../../functions/core/pitr/managed/steps.ts';
import { RestoreTimeoutError } from '../../../../../../functions/core/pitr/managed/wait.ts';
import { registerSecret } from '../../../../../../functions/core/redact.ts';
import { InterruptedError } from '../../../../../../functions/core/run-job.ts';
import { FileStorage } from '../../../../../../functions/core/storage/file.ts';
import { captured } from '../../../../../helpers/output-scan.ts';
import { FakeRds, fakeTime, T } from './fake-rds.ts';

const PASSWORD = 'Zq8-very-secret-master-pw';
registerSecret(PASSWORD);
const cap = captured(() => [PASSWORD]);
const store = mkdtempSync(join(tmpdir(), 'pgops-managed-pitr-unit-'));
afterAll(() => rmSync(store, { recursive: true, force: true }));
let closedPort = 0;
beforeAll(async () => { closedPort = await freePort(); });

const connection = (): DbTarget => ({ host: 'auth-prod.abc.eu-west-1.rds.amazonaws.com', port: 5432, user: 'postgres', password: PASSWORD, database: 'auth', sslMode: 'require', display: 'postgres://postgres:***@auth-prod.abc.eu-west-1.rds.amazonaws.com:5432/auth' });

function setup(world: FakeRds, extra: Partial<Omit<ManagedPitrDeps, 'alerter'>> = {}): ManagedPitrDeps & { alerter: ReturnType<typeof cap.alerter>; slept: number[] } {
  const time = fakeTime(T('2026-12-01T15:00:00Z'));
  return {
    rds: () => world.rds, config: managedConfigOf(defaultFileConfig({ managed: { pitr: { restoreTimeoutMinutes: 60, pollSeconds: 30 } } })),
    storage: new FileStorage(pathToFileURL(store).href), logger: cap.logger().logger, alerter: cap.alerter(), environment: 'prod',
    target: async () => connection(), session: { lockTimeoutMs: 5000, statementTimeoutMs: 0, connectTimeoutMs: 5000 }, tmpDir: store,
    clock: time.clock, sleep: time.sleep, slept: time.slept, runId: () => 'run00000001',
    ...extra,
  };
}

const exportAt = (time: string): ManagedPitrOptions => ({ rdsInstance: 'auth-prod', target: { targetTime: time }, output: { export: true } });

async function failure(p: Promise<unknown>): Promise<PgopsError> {
  const e = await p.then(() => { throw new Error('expected a failure'); }, (err: unknown) => err);
  cap.error(e);
  return e as PgopsError;
}

/** The copy's endpoint: a port nothing listens on, so the output step fails to connect. */
const unreachable = () => new FakeRds({ restoreStatuses: ['creating'], endpoint: { host: '127.0.0.1', port: closedPort } });

describe('runManagedPitr', () => {
  it('dry run: shows the plan and the window, creates nothing, and hands out the state', async () => {
    const world = new FakeRds();
    world.addSourceInstance('auth-prod');
    const r = await runManagedPitr(setup(world), { ...exportAt('2026-12-01T14:01:00Z'), dryRun: true }) as ManagedPitrDryRun;
    cap.add('result', r);
    expect(r.plan).toMatchObject({
      source: { kind: 'instance', id: 'auth-prod' }, target: { type: 'time', value: '2026-12-01T14:01:00.000Z' },
      window: { earliest: '2026-11-24T02:00:00.000Z', latest: '2026-12-01T14:05:00.000Z' },
      restored: { instance: 'pgops-pitr-auth-prod-202612011401', instanceClass: 'db.t4g.medium', expires: '2026-12-02T15:00:00Z' },
      output: 'a logical backup of the recovered database (the connection\'s) in storage', keep: false,
    });
    expect(r.plan.state.phase).toBe('planned');
    const created = ['RestoreDBInstanceToPointInTimeCommand', 'RestoreDBClusterToPointInTimeCommand', 'CreateDBInstanceCommand', 'DeleteDBInstanceCommand'].flatMap((c) => world.calls(c));
    expect(created).toEqual([]);
  });

  it('refuses a target before the earliest restorable time, naming the window, before anything is created (exit 1, no alert)', async () => {
    const world = new FakeRds();
    world.addSourceInstance('auth-prod');
    const deps = setup(world);
    const e = await failure(runManagedPitr(deps, exportAt('2026-11-01T00:00:00Z')));
    expect(e).toBeInstanceOf(PitrRefusedError);
    expect(e.message).toMatch(/is before the earliest restorable time: the restore window of --rds-instance auth-prod is from 2026-11-24T02:00:00.000Z to 2026-12-01T14:05:00.000Z/);
    expect(exitCodeOf(e)).toBe(1);
    expect(deps.alerter.sent).toEqual([]);
    expect(world.calls('RestoreDBInstanceToPointInTimeCommand')).toEqual([]);
  });

  it('a restore RDS refuses to start leaves nothing to delete: one alert, exit 1', async () => {
    const world = new FakeRds();
    world.addSourceInstance('auth-prod');
    world.faults.set('RestoreDBInstanceToPointInTime', Object.assign(new Error('Storage quota exceeded'), { name: 'StorageQuotaExceededFault' }));
    const deps = setup(world);
    const e = await failure(runManagedPitr(deps, exportAt('2026-12-01T14:01:00Z')));
    expect(e).toBeInstanceOf(PitrError);
    expect(e.message).toMatch(/could not start the restore of auth-prod into instance pgops-pitr-auth-prod-202612011401: RDS RestoreDBInstanceToPointInTime .* failed: StorageQuotaExceededFault/);
    expect(world.calls('DeleteDBInstanceCommand')).toEqual([]);
    expect(deps.alerter.sent).toHaveLength(1);
  });

  it('deletes the copy when it breaks on the way to available', async () => {
    const world = new FakeRds({ restoreStatuses: ['creating', 'incompatible-network'] });
    world.addSourceInstance('auth-prod');
    const e = await failure(runManagedPitr(setup(world), exportAt('2026-12-01T14:01:00Z')));
    expect(e).toBeInstanceOf(RestoreFailedError);
    expect(e.message).toMatch(/is incompatible-network.*; the restored instance pgops-pitr-auth-prod-202612011401 is being deleted$/);
    expect(world.calls('DeleteDBInstanceCommand')).toEqual([{ DBInstanceIdentifier: 'pgops-pitr-auth-prod-202612011401', SkipFinalSnapshot: true, DeleteAutomatedBackups: true }]);
  });

  it('deletes the copy when it is not available in time', async () => {
    const world = new FakeRds({ restoreStatuses: Array.from({ length: 500 }, () => 'creating') });
    world.addSourceInstance('auth-prod');
    const deps = setup(world);
    const e = await failure(runManagedPitr(deps, exportAt('2026-12-01T14:01:00Z')));
    expect(e).toBeInstanceOf(RestoreTimeoutError);
    expect(e.message).toMatch(/was not available after 60 min/);
    expect(deps.slept.reduce((a, b) => a + b, 0)).toBe(60 * 60_000);
    expect(world.calls('DeleteDBInstanceCommand')).toHaveLength(1);
    expect(deps.alerter.sent).toHaveLength(1);
  });

  it('deletes the copy when the output step fails (the copy cannot be reached)', async () => {
    const world = unreachable();
    world.addSourceInstance('auth-prod');
    const deps = setup(world);
    const e = await failure(runManagedPitr(deps, exportAt('2026-12-01T14:01:00Z')));
    expect(e).toBeInstanceOf(PitrError);
    expect(e.message).toMatch(/could not connect to the restored instance pgops-pitr-auth-prod-202612011401: .*connection refused.*; the restored instance .* is being deleted/);
    expect(world.calls('DeleteDBInstanceCommand')).toHaveLength(1);
    expect(deps.alerter.sent).toHaveLength(1);
  });

  it('deletes the copy on SIGTERM and exits 143', async () => {
    const world = new FakeRds({ restoreStatuses: Array.from({ length: 50 }, () => 'creating') });
    world.addSourceInstance('auth-prod');
    const abort = new AbortController();
    const deps = setup(world, { signal: abort.signal });
    const sleep = deps.sleep!;
    const e = await failure(runManagedPitr({ ...deps, sleep: async (ms, s) => { await sleep(ms, s); abort.abort('SIGTERM'); } }, exportAt('2026-12-01T14:01:00Z')));
    expect(e).toBeInstanceOf(InterruptedError);
    expect(exitCodeOf(e)).toBe(143);
    expect(world.calls('DeleteDBInstanceCommand')).toHaveLength(1);
  });

  it('deletes an Aurora copy\'s instance and cluster when a later step fails', async () => {
    const world = unreachable();
    world.addSourceCluster('orders');
    const e = await failure(runManagedPitr(setup(world), { auroraCluster: 'orders', target: { latest: true }, output: { export: true } }));
    expect(e.message).toMatch(/; the restored Aurora cluster pgops-pitr-orders-202612011405 \(instance pgops-pitr-orders-202612011405-1\) is being deleted/);
    expect(world.calls('CreateDBInstanceCommand')).toHaveLength(1);
    expect(world.calls('DeleteDBInstanceCommand')).toEqual([{ DBInstanceIdentifier: 'pgops-pitr-orders-202612011405-1' }]);
    expect(world.calls('DeleteDBClusterCommand')).toEqual([expect.objectContaining({ DBClusterIdentifier: 'pgops-pitr-orders-202612011405', SkipFinalSnapshot: true })]);
  });

  it('with --keep, keeps the copy even when a later step fails, and says until when', async () => {
    const world = unreachable();
    world.addSourceInstance('auth-prod');
    const e = await failure(runManagedPitr(setup(world), { ...exportAt('2026-12-01T14:01:00Z'), keep: true }));
    expect(e.message).toMatch(/the restored instance pgops-pitr-auth-prod-202612011401 is kept \(--keep\) until 2026-12-02T15:00:00Z, when cleanup deletes it/);
    expect(world.calls('DeleteDBInstanceCommand')).toEqual([]);
  });

  it('names how to delete the copy by hand when its deletion fails too', async () => {
    const world = unreachable();
    world.addSourceInstance('auth-prod');
    world.faults.set('DeleteDBInstance', Object.assign(new Error('User is not authorized to perform: rds:DeleteDBInstance'), { name: 'AccessDenied' }));
    const e = await failure(runManagedPitr(setup(world), exportAt('2026-12-01T14:01:00Z')));
    expect(e.message).toMatch(/could not be deleted \(RDS DeleteDBInstance pgops-pitr-auth-prod-202612011401 failed: AccessDenied: .*the role lacks this RDS permission.*\): it bills until cleanup deletes it after 2026-12-02T15:00:00Z, or delete it now: aws rds delete-db-instance --db-instance-identifier pgops-pitr-auth-prod-202612011401 --skip-final-snapshot --delete-automated-backups/);
  });

  it('needs the source\'s credentials and, for --export, a storage (exit 2)', async () => {
    const world = new FakeRds();
    world.addSourceInstance('auth-prod');
    const noConnection = await failure(runManagedPitr(setup(world, { target: undefined }), exportAt('2026-12-01T14:01:00Z')));
    expect(exitCodeOf(noConnection)).toBe(2);
    expect(noConnection.message).toMatch(/reads the restored copy with the source database's credentials/);
    const noStorage = await failure(runManagedPitr(setup(world, { storage: undefined }), exportAt('2026-12-01T14:01:00Z')));
    expect(exitCodeOf(noStorage)).toBe(2);
    expect(noStorage.message).toMatch(/--export writes a logical backup to storage/);
    expect(world.calls('RestoreDBInstanceToPointInTimeCommand')).toEqual([]);
  });
});
