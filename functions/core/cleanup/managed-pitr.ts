// Cleanup of the copies managed PITR leaves (--keep, or a run killed before it could delete): every
// DB instance and Aurora cluster tagged pgops:purpose=pitr whose pgops:expires has passed is deleted
// without a final snapshot. Nothing without both tags is ever touched; an Aurora copy's instances
// go first, then its cluster (a refusal while they start deleting is left to the next run).
import type { ClientFactory } from '../aws/clients.ts';
import { deleteCluster, deleteInstance, listClusters, listInstances, rdsErrorCode, tagsOf, type DBCluster, type DBInstance, type Rds } from '../aws/rds.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { PITR_TAG, pitrExpiry, tagValue } from '../pitr/managed/naming.ts';
import { redactString } from '../redact.ts';

export interface ExpiredCopy {
  kind: 'instance' | 'cluster';
  id: string;
  /** pgops:source: the database it is a copy of. */
  source?: string;
  expires: string;
}

export interface ManagedPitrCleanupResult {
  /** Deleted (in a dry run: that would be), oldest expiry first. */
  deleted: ExpiredCopy[];
  /** Expired Aurora clusters whose deletion waits for their instances: the next run deletes them. */
  pending: ExpiredCopy[];
  /** pgops PITR copies that have not expired yet. */
  kept: ExpiredCopy[];
  /** Why this part did not run (no RDS source configured, deadline, failure). */
  skipped?: string;
}

export interface ManagedPitrCleanupDeps {
  /** Present only when the database is configured as RDS/Aurora (managed.*). */
  rds?: ClientFactory<Rds>;
  /** Only the copies of this source (their pgops:source tag): a database's cleanup never touches another's. */
  source?: string;
  logger: Logger;
  now: Date;
  /** ms timestamp on the Date.now() scale: past it, this part does not start. */
  deadline?: number;
}

interface Tagged {
  copy: ExpiredCopy;
  expired: boolean;
  status?: string;
}

function tagged(kind: ExpiredCopy['kind'], id: string | undefined, resource: DBInstance | DBCluster, now: Date): Tagged | undefined {
  const tags = tagsOf(resource);
  const expiry = pitrExpiry(tags);
  if (!expiry || !id) return undefined;
  const status = 'DBInstanceStatus' in resource ? resource.DBInstanceStatus : (resource as DBCluster).Status;
  const copy: ExpiredCopy = { kind, id, ...(tags[PITR_TAG.source] ? { source: tags[PITR_TAG.source] } : {}), expires: expiry.toISOString() };
  return { copy, expired: expiry.getTime() <= now.getTime(), status };
}

const byExpiry = (a: ExpiredCopy, b: ExpiredCopy) => a.expires.localeCompare(b.expires) || a.id.localeCompare(b.id);

/** Delete what has expired; each resource's failure is named in `failures` and the others still go. */
async function deleteExpired(rds: Rds, instances: DBInstance[], clusters: DBCluster[], deps: ManagedPitrCleanupDeps, dryRun: boolean, failures: string[]): Promise<ManagedPitrCleanupResult> {
  const result: ManagedPitrCleanupResult = { deleted: [], pending: [], kept: [] };
  const fail = (what: string, err: unknown) => {
    const message = redactString(errorMessage(err));
    failures.push(`managed PITR copies: ${what}: ${message}`);
    deps.logger.error(`could not delete the expired PITR copy ${what}: ${message}`);
  };
  const attempt = async (what: string, fn: () => Promise<void>): Promise<boolean> => {
    try {
      if (!dryRun) await fn();
      return true;
    } catch (err) {
      fail(what, err);
      return false;
    }
  };
  const taggedClusters = clusters.map((c) => tagged('cluster', c.DBClusterIdentifier, c, deps.now)).filter((t): t is Tagged => !!t);
  for (const t of taggedClusters) {
    if (!t.expired) { result.kept.push(t.copy); continue; }
    if (t.status === 'deleting') continue;
    const members = instances.filter((i) => i.DBClusterIdentifier === t.copy.id);
    const foreign = members.filter((i) => !pitrExpiry(tagsOf(i)));
    if (foreign.length > 0) {
      failures.push(`managed PITR copies: cluster ${t.copy.id} has instance(s) without pgops tags (${foreign.map((i) => i.DBInstanceIdentifier).join(', ')}): not deleted`);
      continue;
    }
    let ok = true;
    for (const m of members) {
      if (m.DBInstanceStatus === 'deleting') continue;
      ok = (await attempt(`instance ${m.DBInstanceIdentifier} of cluster ${t.copy.id}`, () => deleteInstance(rds, m.DBInstanceIdentifier!, { clusterMember: true }))) && ok;
    }
    if (!ok) continue;
    try {
      if (!dryRun) await deleteCluster(rds, t.copy.id);
      result.deleted.push(t.copy);
    } catch (err) {
      if (rdsErrorCode(err) === 'InvalidDBClusterStateFault' && members.length > 0) result.pending.push(t.copy);
      else fail(`cluster ${t.copy.id}`, err);
    }
  }
  // Standalone instances only: an Aurora member goes with its cluster, never on its own.
  for (const i of instances) {
    if (i.DBClusterIdentifier) continue;
    const t = tagged('instance', i.DBInstanceIdentifier, i, deps.now);
    if (!t) continue;
    if (!t.expired) { result.kept.push(t.copy); continue; }
    if (t.status === 'deleting') continue;
    if (await attempt(`instance ${t.copy.id}`, () => deleteInstance(rds, t.copy.id, { clusterMember: false }))) result.deleted.push(t.copy);
  }
  result.deleted.sort(byExpiry);
  result.kept.sort(byExpiry);
  return result;
}

/** The cleanup job's part: skipped without an RDS source configured or past the deadline; a failure is named in `failures`, never thrown. */
export async function runManagedPitrCleanup(deps: ManagedPitrCleanupDeps, dryRun: boolean, failures: string[]): Promise<ManagedPitrCleanupResult> {
  const skip = (why: string): ManagedPitrCleanupResult => ({ deleted: [], pending: [], kept: [], skipped: why });
  if (!deps.rds) return skip('no RDS source configured (managed.rdsInstance / managed.auroraCluster)');
  if (deps.deadline !== undefined && Date.now() >= deps.deadline) return skip('deadline');
  try {
    const rds = await deps.rds();
    const ours = (r: DBInstance | DBCluster) => deps.source === undefined || tagsOf(r)[PITR_TAG.source] === tagValue(deps.source);
    const [instances, clusters] = await Promise.all([listInstances(rds), listClusters(rds)]);
    const result = await deleteExpired(rds, instances.filter(ours), clusters.filter(ours), deps, dryRun, failures);
    const names = result.deleted.map((c) => `${c.kind} ${c.id}`);
    if (names.length > 0) deps.logger.info(`expired PITR copies ${dryRun ? 'that would be ' : ''}deleted: ${names.join(', ')}`);
    else deps.logger.debug('no expired PITR copy to delete', { kept: result.kept.length });
    return result;
  } catch (err) {
    const message = redactString(errorMessage(err));
    failures.push(`managed PITR copies: ${message}`);
    deps.logger.error(`cleanup of managed PITR copies failed: ${message}`);
    return skip(`failed: ${message}`);
  }
}
