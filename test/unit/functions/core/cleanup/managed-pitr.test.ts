// Cleanup of expired managed PITR copies: only instances and Aurora clusters with both
// pgops:purpose=pitr and a passed pgops:expires are deleted (no final snapshot); an Aurora copy's
// instances go first; a dry run lists; a failure is named, never thrown; no RDS source, no part.
import { describe, expect, it } from 'vitest';
import { runManagedPitrCleanup } from '../../../../../functions/core/cleanup/managed-pitr.ts';
import { createTextLogger } from '../../../../../functions/core/logger.ts';
import { FakeRds, T } from '../pitr/managed/fake-rds.ts';

const logger = createTextLogger({ level: 'silent' });
const now = T('2026-12-03T04:00:00Z');
const pitrTags = (expires: string, source = 'auth-prod') => [
  { Key: 'pgops:purpose', Value: 'pitr' }, { Key: 'pgops:expires', Value: expires }, { Key: 'pgops:source', Value: source }, { Key: 'pgops:run', Value: 'r1' },
];

function world(): FakeRds {
  const w = new FakeRds();
  w.addSourceInstance('auth-prod');
  w.addInstance({ DBInstanceIdentifier: 'pgops-pitr-auth-prod-202612011401', DBInstanceStatus: 'available', TagList: pitrTags('2026-12-02T15:00:00Z') });
  w.addInstance({ DBInstanceIdentifier: 'pgops-pitr-auth-prod-202612030301', DBInstanceStatus: 'available', TagList: pitrTags('2026-12-04T03:00:00Z') });
  // Expired by the date, but without the purpose tag: someone else's.
  w.addInstance({ DBInstanceIdentifier: 'reporting-copy', DBInstanceStatus: 'available', TagList: [{ Key: 'pgops:expires', Value: '2026-01-01T00:00:00Z' }] });
  // Purpose without a (valid) expiry.
  w.addInstance({ DBInstanceIdentifier: 'pgops-pitr-odd', DBInstanceStatus: 'available', TagList: [{ Key: 'pgops:purpose', Value: 'pitr' }, { Key: 'pgops:expires', Value: 'soon' }] });
  w.addInstance({ DBInstanceIdentifier: 'pgops-pitr-gone', DBInstanceStatus: 'deleting', TagList: pitrTags('2026-12-01T00:00:00Z') });
  w.addCluster({ DBClusterIdentifier: 'pgops-pitr-orders-202612011401', Status: 'available', TagList: pitrTags('2026-12-02T15:00:00Z', 'orders') });
  w.addInstance({ DBInstanceIdentifier: 'pgops-pitr-orders-202612011401-1', DBClusterIdentifier: 'pgops-pitr-orders-202612011401', DBInstanceStatus: 'available', TagList: pitrTags('2026-12-02T15:00:00Z', 'orders') });
  // An expired-tagged instance inside a cluster that is not a copy: never deleted on its own.
  w.addSourceCluster('orders');
  w.addInstance({ DBInstanceIdentifier: 'orders-reader', DBClusterIdentifier: 'orders', DBInstanceStatus: 'available', TagList: pitrTags('2026-12-01T00:00:00Z') });
  return w;
}

describe('runManagedPitrCleanup', () => {
  it('deletes only expired copies with both tags: instances without a final snapshot, an Aurora copy\'s instance before its cluster', async () => {
    const w = world();
    const failures: string[] = [];
    const r = await runManagedPitrCleanup({ rds: () => w.rds, logger, now }, false, failures);
    expect(failures).toEqual([]);
    // Oldest expiry first, then by name.
    expect(r.deleted).toEqual([
      { kind: 'instance', id: 'pgops-pitr-auth-prod-202612011401', source: 'auth-prod', expires: '2026-12-02T15:00:00.000Z' },
      { kind: 'cluster', id: 'pgops-pitr-orders-202612011401', source: 'orders', expires: '2026-12-02T15:00:00.000Z' },
    ]);
    expect(r.kept).toEqual([{ kind: 'instance', id: 'pgops-pitr-auth-prod-202612030301', source: 'auth-prod', expires: '2026-12-04T03:00:00.000Z' }]);
    expect(w.calls('DeleteDBInstanceCommand')).toEqual([
      { DBInstanceIdentifier: 'pgops-pitr-orders-202612011401-1' },
      { DBInstanceIdentifier: 'pgops-pitr-auth-prod-202612011401', SkipFinalSnapshot: true, DeleteAutomatedBackups: true },
    ]);
    expect(w.calls('DeleteDBClusterCommand')).toEqual([{ DBClusterIdentifier: 'pgops-pitr-orders-202612011401', SkipFinalSnapshot: true, DeleteAutomatedBackups: true }]);
  });

  it('with a source, deletes only that source\'s copies: a database\'s cleanup leaves another\'s alone', async () => {
    const w = world();
    const failures: string[] = [];
    const r = await runManagedPitrCleanup({ rds: () => w.rds, source: 'orders', logger, now }, false, failures);
    expect(failures).toEqual([]);
    expect(r.deleted.map((c) => c.id)).toEqual(['pgops-pitr-orders-202612011401']);
    expect(r.kept).toEqual([]);
    expect(w.calls('DeleteDBInstanceCommand')).toEqual([{ DBInstanceIdentifier: 'pgops-pitr-orders-202612011401-1' }]);
  });

  it('a dry run lists what it would delete and deletes nothing', async () => {
    const w = world();
    const r = await runManagedPitrCleanup({ rds: () => w.rds, logger, now }, true, []);
    expect(r.deleted.map((c) => c.id)).toEqual(['pgops-pitr-auth-prod-202612011401', 'pgops-pitr-orders-202612011401']);
    expect([...w.calls('DeleteDBInstanceCommand'), ...w.calls('DeleteDBClusterCommand')]).toEqual([]);
  });

  it('reads every page of instances', async () => {
    const w = new FakeRds();
    for (let i = 0; i < 230; i++) w.addInstance({ DBInstanceIdentifier: `db-${i}`, DBInstanceStatus: 'available' });
    w.addInstance({ DBInstanceIdentifier: 'pgops-pitr-last', DBInstanceStatus: 'available', TagList: pitrTags('2026-12-01T00:00:00Z') });
    const r = await runManagedPitrCleanup({ rds: () => w.rds, logger, now }, true, []);
    expect(r.deleted.map((c) => c.id)).toEqual(['pgops-pitr-last']);
    expect(w.calls('DescribeDBInstancesCommand')).toHaveLength(3);
  });

  it('names a failed deletion in failures and goes on with the others', async () => {
    const w = world();
    w.faults.set('DeleteDBCluster', Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
    const failures: string[] = [];
    const r = await runManagedPitrCleanup({ rds: () => w.rds, logger, now }, false, failures);
    expect(failures).toEqual([expect.stringMatching(/^managed PITR copies: cluster pgops-pitr-orders-202612011401: RDS DeleteDBCluster pgops-pitr-orders-202612011401 failed: Throttling/)]);
    expect(r.deleted.map((c) => c.id)).toEqual(['pgops-pitr-auth-prod-202612011401']);
  });

  it('leaves an Aurora copy whose cluster waits for its instances to the next run, without a failure', async () => {
    const w = world();
    w.faults.set('DeleteDBCluster', Object.assign(new Error('Cluster cannot be deleted, it still contains DB instances in non-deleting state.'), { name: 'InvalidDBClusterStateFault' }));
    const failures: string[] = [];
    const r = await runManagedPitrCleanup({ rds: () => w.rds, logger, now }, false, failures);
    expect(failures).toEqual([]);
    expect(r.pending.map((c) => c.id)).toEqual(['pgops-pitr-orders-202612011401']);
  });

  it('never deletes a copy cluster that holds an instance without pgops tags', async () => {
    const w = world();
    w.addInstance({ DBInstanceIdentifier: 'someones-instance', DBClusterIdentifier: 'pgops-pitr-orders-202612011401', DBInstanceStatus: 'available' });
    const failures: string[] = [];
    await runManagedPitrCleanup({ rds: () => w.rds, logger, now }, false, failures);
    expect(failures).toEqual(['managed PITR copies: cluster pgops-pitr-orders-202612011401 has instance(s) without pgops tags (someones-instance): not deleted']);
    expect(w.calls('DeleteDBClusterCommand')).toEqual([]);
    expect(w.calls('DeleteDBInstanceCommand').map((c) => c.DBInstanceIdentifier)).toEqual(['pgops-pitr-auth-prod-202612011401']);
  });

  it('is skipped without an RDS source configured, and names a listing failure without throwing', async () => {
    expect(await runManagedPitrCleanup({ logger, now }, false, [])).toEqual({ deleted: [], pending: [], kept: [], skipped: 'no RDS source configured (managed.rdsInstance / managed.auroraCluster)' });
    const w = world();
    w.faults.set('DescribeDBInstances', Object.assign(new Error('not authorized'), { name: 'AccessDenied' }));
    const failures: string[] = [];
    const r = await runManagedPitrCleanup({ rds: () => w.rds, logger, now }, false, failures);
    expect(r.skipped).toMatch(/^failed: RDS DescribeDBInstances failed: AccessDenied/);
    expect(failures).toEqual([expect.stringMatching(/^managed PITR copies: RDS DescribeDBInstances failed: AccessDenied/)]);
  });
});
