// Backup checks, read from the storage alone: a backup exists only if its manifest does, and a
// restore test is recorded beside its backup as restore-test.json ({ ok, checkedAt, ... }).
import { listBackups } from '../catalog/catalog.ts';
import { logicalPrefix } from '../catalog/layout.ts';
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

/** A schema-only dump is not a backup of the data: it neither counts as the newest nor as a size reference. */
function isFullBackup(m: BackupManifest): boolean {
  return !(m.options as { schemaOnly?: boolean } | undefined)?.schemaOnly;
}

export async function backupChecks(storage: Storage | undefined, databaseId: string, thresholds: HealthThresholds, now: Date, logger: Logger): Promise<{ checks: CheckResult[]; facts: BackupFacts }> {
  if (!storage) return { checks: unknownAll('no storage configured: set --storage / PGOPS_STORAGE to check backups'), facts: {} };
  let backups: BackupManifest[];
  try {
    backups = (await listBackups(storage, databaseId, logger)).filter(isFullBackup);
  } catch (err) {
    return { checks: unknownAll(`could not list backups in ${storage.url}: ${redactString(errorMessage(err))}`), facts: {} };
  }
  const checks = [ageCheck(backups, storage, databaseId, thresholds, now), sizeCheck(backups, thresholds)];
  checks.push(await restoreTestCheck(storage, databaseId, thresholds, now));
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

interface RestoreTestRecord {
  backupId: string;
  ok: boolean;
  checkedAt: number;
  error?: string;
}

async function readRestoreTests(storage: Storage, databaseId: string): Promise<RestoreTestRecord[]> {
  const prefix = logicalPrefix(databaseId);
  const keys = (await storage.list(prefix))
    .map((o) => o.key)
    .filter((k) => k.endsWith('/restore-test.json') && k.slice(prefix.length).split('/').length === 2)
    .sort()
    .reverse()
    .slice(0, MAX_RESTORE_TEST_READS);
  const out: RestoreTestRecord[] = [];
  for (const key of keys) {
    const raw = await storage.getBytes(key);
    if (!raw) continue;
    let json: { ok?: unknown; checkedAt?: unknown; error?: unknown; message?: unknown; reason?: unknown };
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      continue; // an unreadable record proves nothing either way
    }
    const at = typeof json.checkedAt === 'string' ? Date.parse(json.checkedAt) : Number.NaN;
    if (typeof json.ok !== 'boolean' || Number.isNaN(at)) continue;
    const why = [json.error, json.message, json.reason].find((x) => typeof x === 'string') as string | undefined;
    out.push({ backupId: key.slice(prefix.length).split('/')[0]!, ok: json.ok, checkedAt: at, ...(why ? { error: redactString(why).slice(0, 300) } : {}) });
  }
  return out;
}

async function restoreTestCheck(storage: Storage, databaseId: string, t: HealthThresholds, now: Date): Promise<CheckResult> {
  const maxDays = t.maxRestoreTestAgeDays;
  let records: RestoreTestRecord[];
  try {
    records = await readRestoreTests(storage, databaseId);
  } catch (err) {
    return { name: 'restore-test', status: 'unknown', summary: `could not read restore tests: ${redactString(errorMessage(err))}`, threshold: maxDays };
  }
  const byTime = [...records].sort((a, b) => b.checkedAt - a.checkedAt);
  const lastSuccess = byTime.find((r) => r.ok);
  const latest = byTime[0];
  if (latest && !latest.ok) {
    return {
      name: 'restore-test',
      status: 'critical',
      summary: `the last restore test (backup ${latest.backupId}, ${new Date(latest.checkedAt).toISOString()}) failed${latest.error ? `: ${latest.error}` : ''}`,
      threshold: maxDays,
      details: { backupId: latest.backupId, checkedAt: new Date(latest.checkedAt).toISOString(), lastSuccess: lastSuccess ? new Date(lastSuccess.checkedAt).toISOString() : null },
    };
  }
  if (!lastSuccess) {
    return { name: 'restore-test', status: 'warning', summary: 'no successful restore test recorded (pgops backups verify latest --restore-test)', threshold: maxDays };
  }
  const days = Math.max(0, (now.getTime() - lastSuccess.checkedAt) / DAY);
  const details = { backupId: lastSuccess.backupId, checkedAt: new Date(lastSuccess.checkedAt).toISOString() };
  if (days > maxDays) {
    return { name: 'restore-test', status: 'warning', summary: `last successful restore test was ${round(days)} days ago (max ${maxDays}): backup ${lastSuccess.backupId}`, value: round(days), threshold: maxDays, details };
  }
  return { name: 'restore-test', status: 'ok', summary: `last restore test passed ${round(days)} days ago (backup ${lastSuccess.backupId})`, value: round(days), threshold: maxDays, details };
}
