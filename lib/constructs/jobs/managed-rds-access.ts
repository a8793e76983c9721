// What the health and cleanup functions of an RDS instance or Aurora cluster (config `managed`) may
// do in RDS. Health reads the source's restore window (the restore-window check). Cleanup lists the
// account's instances and clusters (the API has no tag filter) and deletes only this source's
// expired PITR copies: named pgops-pitr-<source>-* and tagged pgops:purpose=pitr.
import { Arn, ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { acknowledge } from '../../nag.ts';
import type { PgopsFunction } from '../pgops-function.ts';
import { copyNamePrefix, type ManagedSourceRef } from './managed-pitr.ts';

const rdsArn = (scope: Construct, type: 'db' | 'cluster' | 'auto-backup', name: string) =>
  Arn.format({ service: 'rds', resource: type, resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME }, Stack.of(scope));
const nagId = (type: string, name: string) => `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:${type}:${name}]`;

/** The restore-window check: describe the source and (an instance) its automated backups. */
export function allowRestoreWindowRead(fn: PgopsFunction, source: ManagedSourceRef): void {
  if (source.kind === 'cluster') {
    fn.allow(new iam.PolicyStatement({ sid: 'DescribeSourceCluster', actions: ['rds:DescribeDBClusters'], resources: [rdsArn(fn, 'cluster', source.id)] }));
    return;
  }
  fn.allow(new iam.PolicyStatement({ sid: 'DescribeSourceInstance', actions: ['rds:DescribeDBInstances'], resources: [rdsArn(fn, 'db', source.id)] }));
  fn.allow(new iam.PolicyStatement({ sid: 'DescribeSourceBackups', actions: ['rds:DescribeDBInstanceAutomatedBackups'], resources: [rdsArn(fn, 'auto-backup', '*')] }));
  acknowledge(fn.role, {
    id: nagId('auto-backup', '*'),
    reason: 'Automated backups are named by an id RDS assigns (ab-...); the call is read-only and the check asks only for the source instance\'s (by its resource id).',
  });
}

/** Cleanup of expired PITR copies: list everything (read-only), delete only this source's tagged copies. */
export function allowExpiredCopyCleanup(fn: PgopsFunction, source: ManagedSourceRef): void {
  const tagged = { StringEquals: { 'aws:ResourceTag/pgops:purpose': 'pitr' } };
  const instances = rdsArn(fn, 'db', `${copyNamePrefix(source.id, source.kind === 'cluster' ? 2 : 0)}*`);
  fn.allow(new iam.PolicyStatement({ sid: 'ListRdsResources', actions: ['rds:DescribeDBInstances', 'rds:DescribeDBClusters'], resources: [rdsArn(fn, 'db', '*'), rdsArn(fn, 'cluster', '*')] }));
  fn.allow(new iam.PolicyStatement({ sid: 'DeleteExpiredCopyInstances', actions: ['rds:DeleteDBInstance'], resources: [instances], conditions: tagged }));
  const ids = [nagId('db', '*'), nagId('cluster', '*'), nagId('db', `${copyNamePrefix(source.id, source.kind === 'cluster' ? 2 : 0)}*`)];
  if (source.kind === 'cluster') {
    const clusters = rdsArn(fn, 'cluster', `${copyNamePrefix(source.id, 2)}*`);
    fn.allow(new iam.PolicyStatement({ sid: 'DeleteExpiredCopyClusters', actions: ['rds:DeleteDBCluster'], resources: [clusters], conditions: tagged }));
    ids.push(nagId('cluster', `${copyNamePrefix(source.id, 2)}*`));
  }
  const reasons: Record<string, string> = {
    [nagId('db', '*')]: 'Cleanup lists the instances to find expired PITR copies by their tags: DescribeDBInstances has no tag filter. Read-only; it deletes nothing outside the statement below.',
    [nagId('cluster', '*')]: 'Cleanup lists the clusters to find expired PITR copies by their tags: DescribeDBClusters has no tag filter. Read-only.',
  };
  for (const id of ids) {
    acknowledge(fn.role, { id, reason: reasons[id] ?? 'Each PITR copy is named pgops-pitr-<source>-<minute> (not known in advance); the wildcard stops at this database\'s source, and the delete also requires the tag pgops:purpose=pitr.' });
  }
}
