// The database a managed PITR restores from: an RDS PostgreSQL instance or an Aurora PostgreSQL
// cluster, read through DescribeDBInstances / DescribeDBClusters (and the instance's automated
// backups for its earliest restorable time). Everything the copy takes from it is read here.
import { describeCluster, describeInstance, instanceEarliestRestorableTime, type DBInstance, type Rds } from '../../aws/rds.ts';
import { UsageError } from '../../errors.ts';
import type { RestoreWindow } from './window.ts';

export type ManagedKind = 'instance' | 'cluster';

export interface ManagedSourceRef {
  kind: ManagedKind;
  id: string;
}

export interface ManagedSource extends ManagedSourceRef {
  engine: string;
  engineVersion?: string;
  status?: string;
  port?: number;
  masterUsername?: string;
  subnetGroup?: string;
  securityGroups: string[];
  /** The DB parameter group (an Aurora cluster: its writer instance's). */
  parameterGroup?: string;
  /** Aurora only. */
  clusterParameterGroup?: string;
  /** Days of automated backups; 0: off (no point-in-time restore at all). */
  backupRetentionDays: number;
  window: RestoreWindow;
}

/** How the flags name a source: in messages. */
export const sourceFlag = (ref: ManagedSourceRef): string => `${ref.kind === 'instance' ? '--rds-instance' : '--aurora-cluster'} ${ref.id}`;

export async function readSource(rds: Rds, ref: ManagedSourceRef): Promise<ManagedSource> {
  return ref.kind === 'instance' ? readInstance(rds, ref.id) : readCluster(rds, ref.id);
}

async function regionOf(rds: Rds): Promise<string> {
  try {
    return ` in region ${await rds.client.config.region()}`;
  } catch {
    return '';
  }
}

function parameterGroupOf(instance: DBInstance | undefined): string | undefined {
  return instance?.DBParameterGroups?.[0]?.DBParameterGroupName;
}

async function readInstance(rds: Rds, id: string): Promise<ManagedSource> {
  const i = await describeInstance(rds, id);
  if (!i) throw new UsageError(`--rds-instance ${id}: no such DB instance${await regionOf(rds)} (check the identifier, AWS_REGION and the account)`);
  if (i.DBClusterIdentifier) throw new UsageError(`--rds-instance ${id} is an instance of Aurora cluster ${i.DBClusterIdentifier}: use --aurora-cluster ${i.DBClusterIdentifier}`);
  if (i.Engine !== 'postgres') throw new UsageError(`--rds-instance ${id} runs ${i.Engine ?? 'an unknown engine'}, not PostgreSQL (engine postgres)`);
  const retention = i.BackupRetentionPeriod ?? 0;
  const earliest = retention > 0 ? await instanceEarliestRestorableTime(rds, i) : undefined;
  return {
    kind: 'instance', id, engine: i.Engine, engineVersion: i.EngineVersion, status: i.DBInstanceStatus,
    port: i.Endpoint?.Port ?? i.DbInstancePort, masterUsername: i.MasterUsername,
    subnetGroup: i.DBSubnetGroup?.DBSubnetGroupName,
    securityGroups: (i.VpcSecurityGroups ?? []).map((g) => g.VpcSecurityGroupId).filter((g): g is string => !!g),
    parameterGroup: parameterGroupOf(i),
    backupRetentionDays: retention,
    window: { earliest, latest: retention > 0 ? i.LatestRestorableTime : undefined },
  };
}

async function readCluster(rds: Rds, id: string): Promise<ManagedSource> {
  const c = await describeCluster(rds, id);
  if (!c) throw new UsageError(`--aurora-cluster ${id}: no such DB cluster${await regionOf(rds)} (check the identifier, AWS_REGION and the account)`);
  if (c.Engine !== 'aurora-postgresql') throw new UsageError(`--aurora-cluster ${id} runs ${c.Engine ?? 'an unknown engine'}, not Aurora PostgreSQL (engine aurora-postgresql)`);
  const writerId = c.DBClusterMembers?.find((m) => m.IsClusterWriter)?.DBInstanceIdentifier;
  const writer = writerId ? await describeInstance(rds, writerId) : undefined;
  return {
    kind: 'cluster', id, engine: c.Engine, engineVersion: c.EngineVersion, status: c.Status,
    port: c.Port, masterUsername: c.MasterUsername,
    subnetGroup: c.DBSubnetGroup,
    securityGroups: (c.VpcSecurityGroups ?? []).map((g) => g.VpcSecurityGroupId).filter((g): g is string => !!g),
    parameterGroup: parameterGroupOf(writer),
    clusterParameterGroup: c.DBClusterParameterGroup,
    backupRetentionDays: c.BackupRetentionPeriod ?? 0,
    window: { earliest: c.EarliestRestorableTime, latest: c.LatestRestorableTime },
  };
}
