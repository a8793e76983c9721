// The restore-window check of an RDS instance or Aurora cluster (config managed.*): automated
// backups off, or kept fewer days than health.minBackupRetentionDays, is critical (no way back to
// last week); a LatestRestorableTime further behind than health.maxRestoreLagMinutes is a warning
// (the newest minutes cannot be restored: WAL is not reaching AWS's backup storage).
import type { ClientFactory } from '../aws/clients.ts';
import type { Rds } from '../aws/rds.ts';
import type { ManagedConfig } from '../config.ts';
import { readSource, type ManagedSourceRef } from '../pitr/managed/source.ts';
import type { CheckResult, HealthThresholds } from './types.ts';

export interface RestoreWindowDeps {
  rds: ClientFactory<Rds>;
  managed: ManagedConfig;
  thresholds: Pick<HealthThresholds, 'maxRestoreLagMinutes' | 'minBackupRetentionDays'>;
  now: Date;
}

/** The configured source, or undefined for a self-managed database. */
export function managedSourceOf(managed: ManagedConfig): ManagedSourceRef | undefined {
  if (managed.rdsInstance) return { kind: 'instance', id: managed.rdsInstance };
  if (managed.auroraCluster) return { kind: 'cluster', id: managed.auroraCluster };
  return undefined;
}

const minutes = (ms: number) => `${Math.round(ms / 60_000)} min`;

export async function checkRestoreWindow(deps: RestoreWindowDeps): Promise<CheckResult> {
  const ref = managedSourceOf(deps.managed);
  if (!ref) return { name: 'restore-window', status: 'unknown', summary: 'no RDS source configured (managed.rdsInstance / managed.auroraCluster)' };
  const source = await readSource(await deps.rds(), ref);
  const what = `${ref.kind === 'instance' ? 'RDS instance' : 'Aurora cluster'} ${ref.id}`;
  const { minBackupRetentionDays: minDays, maxRestoreLagMinutes: maxLag } = deps.thresholds;
  const { earliest, latest } = source.window;
  const lagMs = latest ? Math.max(0, deps.now.getTime() - latest.getTime()) : undefined;
  const details = {
    source: ref.id, kind: ref.kind, status: source.status, backupRetentionDays: source.backupRetentionDays,
    earliest: earliest?.toISOString() ?? null, latest: latest?.toISOString() ?? null, lagSeconds: lagMs === undefined ? null : Math.round(lagMs / 1000),
  };
  if (source.backupRetentionDays === 0) {
    return { name: 'restore-window', status: 'critical', summary: `${what}: automated backups are off (backup retention 0): no point-in-time restore is possible; set a backup retention of at least ${minDays} days`, value: 0, threshold: minDays, details };
  }
  if (source.backupRetentionDays < minDays) {
    return { name: 'restore-window', status: 'critical', summary: `${what}: automated backups are kept ${source.backupRetentionDays} day(s), below health.minBackupRetentionDays (${minDays}): raise the backup retention period`, value: source.backupRetentionDays, threshold: minDays, details };
  }
  if (lagMs === undefined) {
    return { name: 'restore-window', status: 'warning', summary: `${what}: no latest restorable time yet (status ${source.status ?? 'unknown'}): a new instance has none until its first backup`, details };
  }
  const window = `restorable from ${earliest?.toISOString() ?? 'unknown'} to ${latest!.toISOString()}`;
  if (lagMs > maxLag * 60_000) {
    const stopped = source.status === 'stopped' ? ' (it is stopped)' : '';
    return { name: 'restore-window', status: 'warning', summary: `${what}: the latest restorable time is ${minutes(lagMs)} behind (max ${maxLag} min)${stopped}: the newest changes cannot be restored yet; ${window}`, value: Math.round(lagMs / 60_000), threshold: maxLag, details };
  }
  return { name: 'restore-window', status: 'ok', summary: `${what}: ${window} (${minutes(lagMs)} behind; backups kept ${source.backupRetentionDays} days)`, value: Math.round(lagMs / 60_000), threshold: maxLag, details };
}
