// Talking to the RDS API: one function per call pgops makes, each failure an RdsError that names
// the call, the resource and AWS's error code (never a password: the one call that carries one, a
// master password reset, is never echoed). The SDK arrives with the client (an `Rds`), so a bundle
// that imports this module but is never handed a client (the Lambda functions) carries no RDS SDK;
// rds-client.ts loads it for the CLI.
import type {
  CreateDBInstanceCommandInput, DBCluster, DBInstance, RDSClient, RestoreDBClusterToPointInTimeCommandInput,
  RestoreDBInstanceToPointInTimeCommandInput,
} from '@aws-sdk/client-rds';
import type * as RdsModule from '@aws-sdk/client-rds';
import { PgopsError, errorMessage } from '../errors.ts';
import { redactString } from '../redact.ts';

export type { DBCluster, DBInstance, RDSClient } from '@aws-sdk/client-rds';

/** The @aws-sdk/client-rds module (its command classes). */
export type RdsSdk = typeof RdsModule;

/** A client and the SDK module its commands come from. */
export interface Rds {
  client: RDSClient;
  sdk: RdsSdk;
}

/** An RDS API call failed; `code` is AWS's error name (DBInstanceNotFoundFault, AccessDenied, ...). */
export class RdsError extends PgopsError {
  constructor(message: string, readonly code: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** AWS's error name of a failed call ('' when it is not an AWS error). */
export function rdsErrorCode(err: unknown): string {
  if (err instanceof RdsError) return err.code;
  const name = (err as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' ? name : '';
}

const NOT_FOUND = new Set(['DBInstanceNotFoundFault', 'DBInstanceNotFound', 'DBClusterNotFoundFault', 'DBClusterNotFound']);
export const isNotFound = (err: unknown): boolean => NOT_FOUND.has(rdsErrorCode(err));

/** Run one call; a failure becomes an RdsError naming `what` (e.g. "DescribeDBInstances prod-db"). */
async function call<T>(rds: Rds, what: string, fn: (m: RdsSdk, client: RDSClient) => Promise<T>): Promise<T> {
  try {
    return await fn(rds.sdk, rds.client);
  } catch (err) {
    const code = rdsErrorCode(err) || 'Error';
    const denied = /AccessDenied|UnauthorizedOperation|NotAuthorized/i.test(code) ? ' (the role lacks this RDS permission: see the README\'s managed PITR policy)' : '';
    throw new RdsError(`RDS ${what} failed: ${code}: ${redactString(errorMessage(err))}${denied}`, code, { cause: err });
  }
}

export async function describeInstance(rds: Rds, id: string): Promise<DBInstance | undefined> {
  try {
    return await call(rds, `DescribeDBInstances ${id}`, async (m, client) => (await client.send(new m.DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances?.[0]);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function describeCluster(rds: Rds, id: string): Promise<DBCluster | undefined> {
  try {
    return await call(rds, `DescribeDBClusters ${id}`, async (m, client) => (await client.send(new m.DescribeDBClustersCommand({ DBClusterIdentifier: id }))).DBClusters?.[0]);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * The earliest restorable time of an instance, from its automated backups (DescribeDBInstances has
 * only the latest). Matched on the instance's resource id: a deleted namesake's retained backups are not its own.
 */
export async function instanceEarliestRestorableTime(rds: Rds, instance: DBInstance): Promise<Date | undefined> {
  const id = instance.DBInstanceIdentifier ?? '';
  const backups = await call(rds, `DescribeDBInstanceAutomatedBackups ${id}`, async (m, client) => {
    const input = instance.DbiResourceId ? { DbiResourceId: instance.DbiResourceId } : { DBInstanceIdentifier: id };
    return (await client.send(new m.DescribeDBInstanceAutomatedBackupsCommand(input))).DBInstanceAutomatedBackups ?? [];
  });
  const own = backups.filter((b) => !instance.DbiResourceId || b.DbiResourceId === instance.DbiResourceId);
  const times = own.map((b) => b.RestoreWindow?.EarliestTime).filter((t): t is Date => t instanceof Date);
  return times.length > 0 ? new Date(Math.min(...times.map((t) => t.getTime()))) : undefined;
}

/** Every DB instance of the account and region (paginated). */
export async function listInstances(rds: Rds): Promise<DBInstance[]> {
  const out: DBInstance[] = [];
  let marker: string | undefined;
  do {
    const page = await call(rds, 'DescribeDBInstances', async (m, client) => client.send(new m.DescribeDBInstancesCommand({ Marker: marker, MaxRecords: 100 })));
    out.push(...(page.DBInstances ?? []));
    marker = page.Marker;
  } while (marker);
  return out;
}

/** Every DB cluster of the account and region (paginated). */
export async function listClusters(rds: Rds): Promise<DBCluster[]> {
  const out: DBCluster[] = [];
  let marker: string | undefined;
  do {
    const page = await call(rds, 'DescribeDBClusters', async (m, client) => client.send(new m.DescribeDBClustersCommand({ Marker: marker, MaxRecords: 100 })));
    out.push(...(page.DBClusters ?? []));
    marker = page.Marker;
  } while (marker);
  return out;
}

export async function restoreInstanceToPointInTime(rds: Rds, input: RestoreDBInstanceToPointInTimeCommandInput): Promise<DBInstance | undefined> {
  return call(rds, `RestoreDBInstanceToPointInTime ${input.SourceDBInstanceIdentifier} -> ${input.TargetDBInstanceIdentifier}`, async (m, client) => (await client.send(new m.RestoreDBInstanceToPointInTimeCommand(input))).DBInstance);
}

export async function restoreClusterToPointInTime(rds: Rds, input: RestoreDBClusterToPointInTimeCommandInput): Promise<DBCluster | undefined> {
  return call(rds, `RestoreDBClusterToPointInTime ${input.SourceDBClusterIdentifier} -> ${input.DBClusterIdentifier}`, async (m, client) => (await client.send(new m.RestoreDBClusterToPointInTimeCommand(input))).DBCluster);
}

export async function createInstance(rds: Rds, input: CreateDBInstanceCommandInput): Promise<DBInstance | undefined> {
  return call(rds, `CreateDBInstance ${input.DBInstanceIdentifier}`, async (m, client) => (await client.send(new m.CreateDBInstanceCommand(input))).DBInstance);
}

/** Delete an instance without a final snapshot; an Aurora member takes neither snapshot nor backup options. */
export async function deleteInstance(rds: Rds, id: string, options: { clusterMember: boolean }): Promise<void> {
  const input = options.clusterMember
    ? { DBInstanceIdentifier: id }
    : { DBInstanceIdentifier: id, SkipFinalSnapshot: true, DeleteAutomatedBackups: true };
  await call(rds, `DeleteDBInstance ${id}`, async (m, client) => client.send(new m.DeleteDBInstanceCommand(input)));
}

export async function deleteCluster(rds: Rds, id: string): Promise<void> {
  await call(rds, `DeleteDBCluster ${id}`, async (m, client) => client.send(new m.DeleteDBClusterCommand({ DBClusterIdentifier: id, SkipFinalSnapshot: true, DeleteAutomatedBackups: true })));
}

/** Set the master password of a restored copy (it holds the one of its restore time). The message never carries it. */
export async function resetMasterPassword(rds: Rds, target: { instance: string } | { cluster: string }, password: string): Promise<void> {
  if ('cluster' in target) {
    await call(rds, `ModifyDBCluster ${target.cluster} (master password)`, async (m, client) => client.send(new m.ModifyDBClusterCommand({ DBClusterIdentifier: target.cluster, MasterUserPassword: password, ApplyImmediately: true })));
  } else {
    await call(rds, `ModifyDBInstance ${target.instance} (master password)`, async (m, client) => client.send(new m.ModifyDBInstanceCommand({ DBInstanceIdentifier: target.instance, MasterUserPassword: password, ApplyImmediately: true })));
  }
}

/** A resource's tags as a map (DescribeDBInstances and DescribeDBClusters return them). */
export function tagsOf(resource: { TagList?: Array<{ Key?: string; Value?: string }> }): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const t of resource.TagList ?? []) if (t.Key !== undefined) tags[t.Key] = t.Value ?? '';
  return tags;
}
