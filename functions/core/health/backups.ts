// Backup checks, read from the storage alone through the catalog: what a backup is, which ones are
// full, and the restore tests recorded beside them.
import { isFullBackup, restoreTestsOf, scanBackups, type CatalogScan, type RestoreTestRecord } from '../catalog/catalog.ts';
import type { BackupManifest } from '../catalog/manifest.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { redactString } from '../redact.ts';
import type { Storage } from '../storage/types.ts';
import { formatBytes } from '../format.ts';
import type { CheckResult, HealthThresholds } from './types.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const round = (v: number, digits = 1): number => Number(v.toFixed(digits));

/** How many restore-test records to read at most, newest backups first. */
const MAX_RESTORE_TEST_READS = 30;

export interface BackupFacts {
  /** The newest good backup, for metrics. */
  newest?: { id: string; ageHours: number; bytes: number };
}

function unknownAll(summary: string): CheckResult[] {
  return (['backup-age', 'backup-size', 'restore-test'] as const).map((name) => ({ name, status: 'unknown' as const, summary }));
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export async function backupChecks(storage: Storage | undefined, databaseId: string, thresholds: HealthThresholds, now: Date, logger: Logger): Promise<{ checks: CheckResult[]; facts: BackupFacts }> {
  if (!storage) return { checks: unknownAll('no storage configured: set --storage / PGOPS_STORAGE to check backups'), facts: {} };
  let scan: CatalogScan;
  try {
    scan = await scanBackups(storage, databaseId, logger);
  } catch (err) {
    return { checks: unknownAll(`could not list backups in ${storage.url}: ${redactString(errorMessage(err))}`), facts: {} };
  }
  // A partial backup (schema-only, data-only, table filters) is not a backup of the database: it
  // neither counts as the newest nor as a size reference.
  const backups = scan.backups.map((b) => b.manifest).filter(isFullBackup);
  const checks = [ageCheck(backups, storage, databaseId, thresholds, now), sizeCheck(backups, thresholds)];
  checks.push(await restoreTestCheck(storage, databaseId, scan, thresholds, now));
  const newest = backups[0];
  const facts: BackupFacts = newest ? { newest: { id: newest.id, ageHours: ageHours(newest, now), bytes: newest.bytes } } : {};
  return { checks, facts };
}

function ageHours(m: BackupManifest, now: Date): number {
  const done = Date.parse(m.completedAt);
  // A clock a little ahead of ours must not read as a negative age.
  return Number.isNaN(done) ? Number.POSITIVE_INFINITY : Math.max(0, (now.getTime() - done) / HOUR);
}

function ageCheck(backups: BackupManifest[], storage: Storage, databaseId: string, t: HealthThresholds, now: Date): CheckResult {
  const newest = backups[0];
  const max = t.maxBackupAgeHours;
  if (!newest) {
    return { name: 'backup-age', status: 'critical', summary: `no backup of "${databaseId}" in ${storage.url}`, threshold: max };
  }
  const hours = ageHours(newest, now);
  const details = { backupId: newest.id, completedAt: newest.completedAt, bytes: newest.bytes, backups: backups.length };
  if (hours > max) {
    return { name: 'backup-age', status: 'critical', summary: `newest backup ${newest.id} is ${round(hours)} h old (max ${max} h): the scheduled backup is not running or failing`, value: round(hours), threshold: max, details };
  }
  return { name: 'backup-age', status: 'ok', summary: `newest backup ${newest.id} is ${round(hours)} h old (${formatBytes(newest.bytes)})`, value: round(hours), threshold: max, details };
}

function sizeCheck(backups: BackupManifest[], t: HealthThresholds): CheckResult {
  const newest = backups[0];
  const min = t.minBackupSizeRatio;
  // No backup at all is backup-age's finding; repeating it here would only add noise.
  if (!newest) return { name: 'backup-size', status: 'ok', summary: 'no backup to measure (see backup-age)', threshold: min };
  const previous = backups.slice(1, 8);
  if (previous.length === 0) {
    return { name: 'backup-size', status: 'ok', summary: `${formatBytes(newest.bytes)}; no earlier backup to compare with`, threshold: min, details: { backupId: newest.id, bytes: newest.bytes } };
  }
  const ref = median(previous.map((b) => b.bytes));
  const ratio = ref > 0 ? newest.bytes / ref : 1;
  const details = { backupId: newest.id, bytes: newest.bytes, medianOfPrevious: ref, previous: previous.length };
  if (ratio < min) {
    return {
      name: 'backup-size',
      status: 'warning',
      summary: `newest backup ${newest.id} is ${formatBytes(newest.bytes)}, ${round(ratio, 2)} of the median of the previous ${previous.length} (${formatBytes(ref)}): a truncated dump? (pgops backups verify ${newest.id})`,
      value: round(ratio, 3),
      threshold: min,
      details,
    };
  }
  return { name: 'backup-size', status: 'ok', summary: `${formatBytes(newest.bytes)}, ${round(ratio, 2)} of the median of the previous ${previous.length}`, value: round(ratio, 3), threshold: min, details };
}

async function restoreTestCheck(storage: Storage, databaseId: string, scan: CatalogScan, t: HealthThresholds, now: Date): Promise<CheckResult> {
  let records: RestoreTestRecord[];
  try {
    records = await restoreTestsOf(storage, databaseId, scan.backups, MAX_RESTORE_TEST_READS);
  } catch (err) {
    return { name: 'restore-test', status: 'unknown', summary: `could not read restore tests: ${redactString(errorMessage(err))}`, threshold: t.maxRestoreTestAgeDays };
  }
  return judgeRestoreTests(records, t.maxRestoreTestAgeDays, now);
}

/** The newest restore test decides: a failure is critical, a missing or stale success a warning. */
function judgeRestoreTests(records: RestoreTestRecord[], maxDays: number, now: Date): CheckResult {
  const byTime = [...records].sort((a, b) => b.checkedAt.getTime() - a.checkedAt.getTime());
  const lastSuccess = byTime.find((r) => r.ok);
  const latest = byTime[0];
  if (latest && !latest.ok) {
    const why = latest.error === undefined ? '' : `: ${redactString(latest.error).slice(0, 300)}`;
    return {
      name: 'restore-test',
      status: 'critical',
      summary: `the last restore test (backup ${latest.backupId}, ${latest.checkedAt.toISOString()}) failed${why}`,
      threshold: maxDays,
      details: { backupId: latest.backupId, checkedAt: latest.checkedAt.toISOString(), lastSuccess: lastSuccess ? lastSuccess.checkedAt.toISOString() : null },
    };
  }
  if (!lastSuccess) {
    return { name: 'restore-test', status: 'warning', summary: 'no successful restore test recorded (pgops backups verify latest --restore-test)', threshold: maxDays };
  }
  const days = Math.max(0, (now.getTime() - lastSuccess.checkedAt.getTime()) / DAY);
  const details = { backupId: lastSuccess.backupId, checkedAt: lastSuccess.checkedAt.toISOString() };
  if (days > maxDays) {
    return { name: 'restore-test', status: 'warning', summary: `last successful restore test was ${round(days)} days ago (max ${maxDays}): backup ${lastSuccess.backupId}`, value: round(days), threshold: maxDays, details };
  }
  return { name: 'restore-test', status: 'ok', summary: `last restore test passed ${round(days)} days ago (backup ${lastSuccess.backupId})`, value: round(days), threshold: maxDays, details };
}
