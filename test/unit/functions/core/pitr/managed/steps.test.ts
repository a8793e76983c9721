// Each step alone, on a mocked RDS: the restore call carries the source's network and parameter
// groups, a small class, no public access and the pgops tags; a retried start adopts its own copy
// and refuses another's; Aurora's instance is created once its cluster is available; deletion
// skips the final snapshot and touches only this run's copy; the wait is bounded on a fake clock.
import { describe, expect, it } from 'vitest';
import { defaultFileConfig, managedConfigOf } from '../../../../../../functions/core/config.ts';
import { createTextLogger } from '../../../../../../functions/core/logger.ts';
import { PitrRefusedError } from '../../../../../../functions/core/pitr/errors.ts';
import { planManagedPitr } from '../../../../../../functions/core/pitr/managed/plan.ts';
import { readSource } from '../../../../../../functions/core/pitr/managed/source.ts';
import type { ManagedPitrState } from '../../../../../../functions/core/pitr/managed/state.ts';
import { parseManagedPitrState } from '../../../../../../functions/core/pitr/managed/state.ts';
import { advanceRestore, deleteRestored, RestoreFailedError, startRestore } from '../../../../../../functions/core/pitr/managed/steps.ts';
import { RestoreTimeoutError, waitForRestore } from '../../../../../../functions/core/pitr/managed/wait.ts';
import { UsageError } from '../../../../../../functions/core/errors.ts';
import { FakeRds, fakeTime, T } from './fake-rds.ts';

const lines: string[] = [];
const logger = createTextLogger({ level: 'debug', write: (l) => { lines.push(l); } });
const now = T('2026-12-01T15:00:00Z');

async function planned(world: FakeRds, kind: 'instance' | 'cluster', id: string, extra: { latest?: boolean; config?: unknown } = {}): Promise<ManagedPitrState> {
  const source = await readSource(world.rds, { kind, id });
  return planManagedPitr({
    source, target: extra.latest ? { kind: 'latest' } : { kind: 'time', at: T('2026-12-01T14:01:00Z'), iso: '2026-12-01T14:01:00.000Z' },
    output: { kind: 'export' }, config: managedConfigOf(defaultFileConfig(extra.config ?? {})), now, runId: 'run00000001', keep: false, environment: 'prod',
  });
}

const deps = (world: FakeRds, time = fakeTime(now)) => ({ rds: world.rds, logger, clock: time.clock, sleep: time.sleep });

describe('the plan', () => {
  it('takes the source\'s subnet group, security groups and parameter group, a small class, and tags with a 24 h expiry', async () => {
    const world = new FakeRds();
    world.addSourceInstance('auth-prod');
    const s = await planned(world, 'instance', 'auth-prod');
    expect(s.restored).toEqual({
      instance: 'pgops-pitr-auth-prod-202612011401', instanceClass: 'db.t4g.medium', engine: 'postgres', subnetGroup: 'db-private', securityGroups: ['sg-0db'],
      parameterGroup: 'pg16-tuned', masterUsername: 'postgres', expires: '2026-12-02T15:00:00Z',
      tags: { 'pgops:purpose': 'pitr', 'pgops:expires': '2026-12-02T15:00:00Z', 'pgops:source': 'auth-prod', 'pgops:run': 'run00000001', 'pgops:target': '2026-12-01T14:01:00.000Z', 'pgops:environment': 'prod' },
    });
    expect(s.window).toEqual({ earliest: '2026-11-24T02:00:00.000Z', latest: '2026-12-01T14:05:00.000Z' });
    // The state is the small JSON document a state machine passes from step to step.
    expect(parseManagedPitrState(JSON.parse(JSON.stringify(s)))).toEqual({ state: s, issues: [] });
  });

  it('lets config override the class, network and parameter groups, and the expiry', async () => {
    const world = new FakeRds();
    world.addSourceCluster('orders');
    const s = await planned(world, 'cluster', 'orders', { latest: true, config: { managed: { pitr: { instanceClass: 'db.serverless', dbSubnetGroup: 'restore-net', vpcSecurityGroupIds: ['sg-0restore'], dbClusterParameterGroup: 'cp', ttlHours: 2 } } } });
    expect(s.restored).toMatchObject({
      cluster: 'pgops-pitr-orders-202612011405', instance: 'pgops-pitr-orders-202612011405-1', instanceClass: 'db.serverless', subnetGroup: 'restore-net',
      securityGroups: ['sg-0restore'], parameterGroup: 'aurora-pg16-instance', clusterParameterGroup: 'cp', serverlessV2: { minCapacity: 0.5, maxCapacity: 4 }, expires: '2026-12-01T17:00:00Z',
    });
  });

  it('refuses a source that is not PostgreSQL, an Aurora member named as an instance, and a missing one (exit 2)', async () => {
    const world = new FakeRds();
    world.addSourceInstance('mysql-db', { Engine: 'mysql' });
    world.addSourceCluster('orders');
    await expect(readSource(world.rds, { kind: 'instance', id: 'mysql-db' })).rejects.toThrow(/runs mysql, not PostgreSQL/);
    await expect(readSource(world.rds, { kind: 'instance', id: 'orders-writer' })).rejects.toThrow(/is an instance of Aurora cluster orders: use --aurora-cluster orders/);
    const missing = await readSource(world.rds, { kind: 'cluster', id: 'nope' }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(UsageError);
    expect((missing as Error).message).toMatch(/--aurora-cluster nope: no such DB cluster in region eu-west-1/);
  });
});

describe('startRestore', () => {
  it('restores an instance with explicit network, parameter group, class, no public access and the tags', async () => {
    const world = new FakeRds();
    world.addSourceInstance('auth-prod');
    const s = await startRestore(deps(world), await planned(world, 'instance', 'auth-prod'));
    expect(s.phase).toBe('restoring');
    const [call] = world.calls('RestoreDBInstanceToPointInTimeCommand');
    expect(call).toEqual({
      SourceDBInstanceIdentifier: 'auth-prod', TargetDBInstanceIdentifier: 'pgops-pitr-auth-prod-202612011401', RestoreTime: T('2026-12-01T14:01:00Z'),
      DBInstanceClass: 'db.t4g.medium', DBSubnetGroupName: 'db-private', VpcSecurityGroupIds: ['sg-0db'], DBParameterGroupName: 'pg16-tuned',
      PubliclyAccessible: false, MultiAZ: false, DeletionProtection: false, AutoMinorVersionUpgrade: false, CopyTagsToSnapshot: false, BackupRetentionPeriod: 0,
      Tags: expect.arrayContaining([{ Key: 'pgops:purpose', Value: 'pitr' }, { Key: 'pgops:expires', Value: '2026-12-02T15:00:00Z' }, { Key: 'pgops:source', Value: 'auth-prod' }]),
    });
  });

  it('restores an Aurora cluster to the latest restorable time with its cluster parameter group', async () => {
    const world = new FakeRds();
    world.addSourceCluster('orders');
    await startRestore(deps(world), await planned(world, 'cluster', 'orders', { latest: true }));
    expect(world.calls('RestoreDBClusterToPointInTimeCommand')).toEqual([expect.objectContaining({
      SourceDBClusterIdentifier: 'orders', DBClusterIdentifier: 'pgops-pitr-orders-202612011405', UseLatestRestorableTime: true, RestoreType: 'full-copy',
      DBSubnetGroupName: 'db-private', VpcSecurityGroupIds: ['sg-0db'], DBClusterParameterGroupName: 'aurora-pg16-cluster', DeletionProtection: false,
    })]);
    expect(world.calls('RestoreDBClusterToPointInTimeCommand')[0]).not.toHaveProperty('RestoreToTime');
  });

  it('adopts its own copy when a start is retried, and is a no-op once started', async () => {
    const world = new FakeRds();
    world.addSourceInstance('auth-prod');
    const s = await planned(world, 'instance', 'auth-prod');
    await startRestore(deps(world), s);
    const again = await startRestore(deps(world), s);
    expect(again.phase).toBe('restoring');
    expect(world.calls('RestoreDBInstanceToPointInTimeCommand')).toHaveLength(2);
    await startRestore(deps(world), again);
    expect(world.calls('RestoreDBInstanceToPointInTimeCommand')).toHaveLength(2);
  });

  it('refuses a namesake made by another run (a kept copy) and leaves it alone', async () => {
    const world = new FakeRds();
    world.addSourceInstance('auth-prod');
    world.addInstance({ DBInstanceIdentifier: 'pgops-pitr-auth-prod-202612011401', DBInstanceStatus: 'available', TagList: [{ Key: 'pgops:purpose', Value: 'pitr' }, { Key: 'pgops:run', Value: 'otherrun01' }, { Key: 'pgops:expires', Value: '2026-12-02T00:00:00Z' }] });
    const e = await startRestore(deps(world), await planned(world, 'instance', 'auth-prod')).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(PitrRefusedError);
    expect((e as Error).message).toMatch(/instance pgops-pitr-auth-prod-202612011401 already exists and was not created by this run/);
    expect(world.calls('DeleteDBInstanceCommand')).toHaveLength(0);
  });
});

describe('advanceRestore (Aurora)', () => {
  it('creates the cluster\'s one instance once the cluster is available, then waits for it', async () => {
    const world = new FakeRds({ restoreStatuses: ['creating'], endpoint: { host: 'copy.internal', port: 5432 } });
    world.addSourceCluster('orders');
    let s = await startRestore(deps(world), await planned(world, 'cluster', 'orders'));
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await advanceRestore(deps(world), s);
      s = r.state;
      seen.push(`${r.status.resource}: ${r.status.status}`);
      if (r.status.ready) break;
    }
    expect(seen).toEqual([
      'cluster pgops-pitr-orders-202612011401: creating',
      'instance pgops-pitr-orders-202612011401-1: creating instance',
      'instance pgops-pitr-orders-202612011401-1: creating',
      'instance pgops-pitr-orders-202612011401-1: available',
    ]);
    expect(world.calls('CreateDBInstanceCommand')).toEqual([{
      DBInstanceIdentifier: 'pgops-pitr-orders-202612011401-1', DBClusterIdentifier: 'pgops-pitr-orders-202612011401', Engine: 'aurora-postgresql',
      DBInstanceClass: 'db.t4g.medium', DBParameterGroupName: 'aurora-pg16-instance', PubliclyAccessible: false, AutoMinorVersionUpgrade: false,
      Tags: expect.arrayContaining([{ Key: 'pgops:purpose', Value: 'pitr' }, { Key: 'pgops:run', Value: 'run00000001' }]),
    }]);
    expect(s.phase).toBe('available');
    expect(s.endpoint).toEqual({ host: 'copy.internal', port: 5432 });
  });

  it('fails on a status a copy does not come back from', async () => {
    const world = new FakeRds({ restoreStatuses: ['creating', 'incompatible-parameters'] });
    world.addSourceInstance('auth-prod');
    const s = await startRestore(deps(world), await planned(world, 'instance', 'auth-prod'));
    await advanceRestore(deps(world), s);
    await expect(advanceRestore(deps(world), s)).rejects.toThrow(RestoreFailedError);
  });
});

describe('waitForRestore', () => {
  it('polls at the configured interval and reports progress until available', async () => {
    const world = new FakeRds({ restoreStatuses: ['creating', 'creating', 'backing-up'] });
    world.addSourceInstance('auth-prod');
    const time = fakeTime(now);
    const progress: string[] = [];
    const s = await startRestore(deps(world, time), await planned(world, 'instance', 'auth-prod'));
    const done = await waitForRestore({ ...deps(world, time), onProgress: (p) => progress.push(`${p.status}@${p.elapsedMs / 1000}`) }, s, { timeoutMs: 3_600_000, pollMs: 30_000 });
    expect(done.phase).toBe('available');
    expect(progress).toEqual(['creating@0', 'creating@30', 'backing-up@60', 'available@90']);
    expect(time.slept).toEqual([30_000, 30_000, 30_000]);
  });

  it('gives up after the configured time, saying how long and in which status', async () => {
    const world = new FakeRds({ restoreStatuses: Array.from({ length: 50 }, () => 'creating') });
    world.addSourceInstance('auth-prod');
    const time = fakeTime(now);
    const s = await startRestore(deps(world, time), await planned(world, 'instance', 'auth-prod'));
    const e = await waitForRestore(deps(world, time), s, { timeoutMs: 10 * 60_000, pollMs: 4 * 60_000 }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(RestoreTimeoutError);
    expect((e as Error).message).toBe('the restored instance pgops-pitr-auth-prod-202612011401 was not available after 10 min (instance pgops-pitr-auth-prod-202612011401: creating); managed.pitr.restoreTimeoutMinutes is 10');
    // The last sleep is cut to the deadline: never past it.
    expect(time.slept).toEqual([240_000, 240_000, 120_000]);
  });

  it('stops at once when the job is interrupted (SIGTERM)', async () => {
    const world = new FakeRds({ restoreStatuses: Array.from({ length: 50 }, () => 'creating') });
    world.addSourceInstance('auth-prod');
    const time = fakeTime(now);
    const abort = new AbortController();
    const s = await startRestore(deps(world, time), await planned(world, 'instance', 'auth-prod'));
    const sleep = async (ms: number) => { await time.sleep(ms); abort.abort('SIGTERM'); };
    await expect(waitForRestore({ ...deps(world, time), sleep, signal: abort.signal }, s, { timeoutMs: 3_600_000, pollMs: 30_000 })).rejects.toThrow('pitr interrupted by SIGTERM');
  });
});

describe('deleteRestored', () => {
  it('deletes an instance copy without a final snapshot and with its automated backups; again is done', async () => {
    const world = new FakeRds();
    world.addSourceInstance('auth-prod');
    const s = await startRestore(deps(world), await planned(world, 'instance', 'auth-prod'));
    expect(await deleteRestored(deps(world), s)).toMatchObject({ done: true, deleted: ['instance pgops-pitr-auth-prod-202612011401'] });
    expect(world.calls('DeleteDBInstanceCommand')).toEqual([{ DBInstanceIdentifier: 'pgops-pitr-auth-prod-202612011401', SkipFinalSnapshot: true, DeleteAutomatedBackups: true }]);
    expect(await deleteRestored(deps(world), s)).toMatchObject({ done: true, deleted: [] });
    expect(world.calls('DeleteDBInstanceCommand')).toHaveLength(1);
  });

  it('deletes an Aurora copy\'s instance, then its cluster', async () => {
    const world = new FakeRds({ restoreStatuses: [] });
    world.addSourceCluster('orders');
    let s = await startRestore(deps(world), await planned(world, 'cluster', 'orders'));
    for (let i = 0; i < 4 && s.phase !== 'available'; i++) s = (await advanceRestore(deps(world), s)).state;
    expect(await deleteRestored(deps(world), s)).toMatchObject({ done: true, deleted: ['instance pgops-pitr-orders-202612011401-1', 'cluster pgops-pitr-orders-202612011401'] });
    expect(world.calls('DeleteDBInstanceCommand')).toEqual([{ DBInstanceIdentifier: 'pgops-pitr-orders-202612011401-1' }]);
    expect(world.calls('DeleteDBClusterCommand')).toEqual([{ DBClusterIdentifier: 'pgops-pitr-orders-202612011401', SkipFinalSnapshot: true, DeleteAutomatedBackups: true }]);
  });

  it('never deletes a resource that does not carry this run\'s tags', async () => {
    const world = new FakeRds();
    world.addSourceInstance('auth-prod');
    const s = await planned(world, 'instance', 'auth-prod');
    world.addInstance({ DBInstanceIdentifier: s.restored.instance, DBInstanceStatus: 'available', TagList: [{ Key: 'team', Value: 'billing' }] });
    await expect(deleteRestored(deps(world), { ...s, phase: 'restoring' })).rejects.toThrow(/does not carry this run's tags .*not deleting it/);
    expect(world.calls('DeleteDBInstanceCommand')).toHaveLength(0);
  });
});
