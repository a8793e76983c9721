// The `replica` check: the copy of the backups (S3 replication to another bucket, region or
// account, config health.replicaStorage) is read through its own storage, like the source, and its
// newest full backup judged: missing or older than maxBackupAgeHours is critical (the copy would
// not restore a recent state), behind the source's newest for longer than maxReplicaLagHours a
// warning (replication is slow or stopped).
import { isFullBackup, scanBackups } from '../catalog/catalog.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { redactString } from '../redact.ts';
import { StorageDeniedError } from '../storage/errors.ts';
import type { Storage } from '../storage/types.ts';
import type { BackupFacts } from './backups.ts';
import type { CheckResult, HealthThresholds } from './types.ts';

const HOUR = 3_600_000;
const round = (v: number): number => Number(v.toFixed(1));

export interface ReplicaCheckInput {
  replica: Storage;
  databaseId: string;
  /** The source's newest full backup (the backup-age check's), when the source could be read. */
  source: BackupFacts;
  thresholds: HealthThresholds;
  now: Date;
  logger?: Logger;
}

export async function checkReplica(input: ReplicaCheckInput): Promise<CheckResult> {
  const { replica, databaseId, source, thresholds: t, now } = input;
  const max = t.maxBackupAgeHours;
  let ids: Set<string>;
  let newest: { id: string; completedAt: string; bytes: number } | undefined;
  try {
    const scan = await scanBackups(replica, databaseId, input.logger);
    const full = scan.backups.map((b) => b.manifest).filter(isFullBackup);
    ids = new Set(scan.backups.map((b) => b.id));
    newest = full[0];
  } catch (err) {
    const hint = err instanceof StorageDeniedError ? ' (the health role needs s3:ListBucket and s3:GetObject on the replica, and kms:Decrypt on its key; across accounts the replica bucket and key policies must allow it too)' : '';
    return { name: 'replica', status: 'unknown', summary: `could not read the replica ${replica.url}: ${redactString(errorMessage(err))}${hint}`, threshold: max };
  }
  const sourceNewest = source.newest;
  if (!newest) {
    if (!sourceNewest) return { name: 'replica', status: 'ok', summary: `no backup in the source nor in the replica ${replica.url} yet (see backup-age)`, threshold: max };
    return {
      name: 'replica', status: 'critical', threshold: max,
      summary: `the replica ${replica.url} holds no backup of "${databaseId}" (the source's newest is ${sourceNewest.id}): replication is not set up or not running (check the source bucket's replication rule and its FailedReplication metrics)`,
      details: { sourceNewest: sourceNewest.id },
    };
  }
  const done = Date.parse(newest.completedAt);
  const hours = Number.isNaN(done) ? Number.POSITIVE_INFINITY : Math.max(0, (now.getTime() - done) / HOUR);
  const details: Record<string, unknown> = { replicaNewest: newest.id, completedAt: newest.completedAt, sourceNewest: sourceNewest?.id ?? null, replica: replica.url };
  if (hours > max) {
    return { name: 'replica', status: 'critical', summary: `the replica's newest backup ${newest.id} is ${round(hours)} h old (max ${max} h): a restore from the copy would lose more than that`, value: round(hours), threshold: max, details };
  }
  // The source's newest not copied yet: normal for minutes, a problem after maxReplicaLagHours.
  if (sourceNewest && !ids.has(sourceNewest.id) && sourceNewest.ageHours > t.maxReplicaLagHours) {
    return {
      name: 'replica', status: 'warning', value: round(hours), threshold: max, details,
      summary: `the replica is behind: the source's newest backup ${sourceNewest.id} (${round(sourceNewest.ageHours)} h old) is not in ${replica.url} after more than ${t.maxReplicaLagHours} h; the replica's newest is ${newest.id} (${round(hours)} h old)`,
    };
  }
  return { name: 'replica', status: 'ok', summary: `the replica's newest backup ${newest.id} is ${round(hours)} h old${sourceNewest && newest.id !== sourceNewest.id ? ` (the source's newest ${sourceNewest.id} is still being copied)` : ''}`, value: round(hours), threshold: max, details };
}
