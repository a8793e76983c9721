// The RDS rights of the health and cleanup functions of an RDS/Aurora database (config `managed`):
// health may describe its own source only; cleanup may list (read-only) and delete only its own
// source's copies, and only while they carry pgops:purpose=pitr. A database without `managed` gets
// no RDS right at all. cdk-nag clean with live acknowledgments. Synthesized once, without bundling.
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actionsOf, flat, roleStatements, sampleConfig, synth, type Statement, type Synth } from '../../../helpers.ts';
import { deadAcknowledgments } from '../../../nag-audit.ts';

function managedConfig() {
  const raw = sampleConfig();
  const db = (id: string, suffix: string) => ({
    id,
    secretArn: `arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgops/staging/${id}-${suffix}`,
    vpcId: 'vpc-0aaaaaaaaaaaaaaaa',
    subnetIds: ['subnet-0aaaaaaaaaaaaaaaa'],
    securityGroupIds: ['sg-0aaaaaaaaaaaaaaaa'],
  });
  raw.databases[0]!.managed = { rdsInstance: 'prod-db' };
  raw.databases.push({ ...db('orders', 'XyZ123'), managed: { auroraCluster: 'orders-aurora' } }, db('plain', 'AbC456'));
  return raw;
}

const rdsOf = (s: Synth, db: string, role: string): Statement[] =>
  roleStatements(s.dbTemplate(db), role).filter((st) => actionsOf(st).some((a) => a.startsWith('rds:')));
const resourcesOf = (st: Statement) => [st.Resource].flat().map(flat).sort();

describe('RDS rights of health and cleanup (managed databases)', () => {
  let s: Synth;
  beforeAll(() => { s = synth({ pgops: managedConfig(), bundle: false, nag: false }); });
  afterAll(() => s?.dispose());

  it('health of an RDS instance describes that instance and its automated backups, nothing else', () => {
    const st = rdsOf(s, 'auth', 'DbauthHealthRole');
    expect(st.map((x) => [actionsOf(x), resourcesOf(x)])).toEqual([
      [['rds:DescribeDBInstances'], [expect.stringMatching(/:rds:.*:db:prod-db$/)]],
      [['rds:DescribeDBInstanceAutomatedBackups'], [expect.stringMatching(/:rds:.*:auto-backup:\*$/)]],
    ]);
  });

  it('health of an Aurora cluster describes that cluster only', () => {
    const st = rdsOf(s, 'orders', 'DbordersHealthRole');
    expect(st.map((x) => [actionsOf(x), resourcesOf(x)])).toEqual([[['rds:DescribeDBClusters'], [expect.stringMatching(/:rds:.*:cluster:orders-aurora$/)]]]);
  });

  it('cleanup lists read-only and deletes only this source\'s copies, and only with the pitr tag', () => {
    const st = rdsOf(s, 'orders', 'DbordersCleanupRole');
    const deletes = st.filter((x) => actionsOf(x).some((a) => a.startsWith('rds:Delete')));
    expect(deletes.map((x) => actionsOf(x)).flat().sort()).toEqual(['rds:DeleteDBCluster', 'rds:DeleteDBInstance']);
    for (const d of deletes) {
      expect(resourcesOf(d)).toEqual([expect.stringMatching(/:(db|cluster):pgops-pitr-orders-aurora-\*$/)]);
      expect(d.Condition).toEqual({ StringEquals: { 'aws:ResourceTag/pgops:purpose': 'pitr' } });
    }
    const reads = st.filter((x) => !deletes.includes(x));
    expect(reads.flatMap((x) => actionsOf(x)).sort()).toEqual(['rds:DescribeDBClusters', 'rds:DescribeDBInstances']);
    const instance = rdsOf(s, 'auth', 'DbauthCleanupRole').filter((x) => actionsOf(x).some((a) => a.startsWith('rds:Delete')));
    expect(instance.map((x) => [actionsOf(x), resourcesOf(x)])).toEqual([[['rds:DeleteDBInstance'], [expect.stringMatching(/:db:pgops-pitr-prod-db-\*$/)]]]);
  });

  it('a database without managed gets no RDS right in health or cleanup', () => {
    expect(rdsOf(s, 'plain', 'DbplainHealthRole')).toEqual([]);
    expect(rdsOf(s, 'plain', 'DbplainCleanupRole')).toEqual([]);
  });

  it('cdk-nag: no unacknowledged finding, no dead acknowledgment', () => {
    const report = new AwsSolutionsChecks().validateScope(s.app);
    expect(report.violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath ?? r.resourceLogicalId).join(', ')}`)).toEqual([]);
    expect(deadAcknowledgments(s.app).map((a) => `${a.path}: ${a.id}`)).toEqual([]);
  });
});
