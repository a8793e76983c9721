// Backup retention, GFS style (as pgBackRest and restic): a backup is kept if any policy keeps it,
// and the newest backup is always kept. The planner is pure; applyRetention reads the layout
// through the Storage interface only (a backup exists iff its manifest.json does).
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Storage, StoredObject } from '../storage/types.ts';
import { isBackupId, logicalPrefix } from '../catalog/layout.ts';

export interface RetentionPolicy {
  keepLast: number;
  keepDaily: number;
  keepWeekly: number;
  keepMonthly: number;
}

export interface BackupRef {
  id: string;
  completedAt: Date;
}

export type KeepReason = 'newest' | 'last' | 'daily' | 'weekly' | 'monthly';

export interface RetentionPlan {
  /** Newest first. */
  keep: string[];
  /** Newest first. */
  delete: string[];
  /** Why each kept backup is kept. */
  reasons: Record<string, KeepReason[]>;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

function dayKey(d: Date): string {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

function monthKey(d: Date): string {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}`;
}

/** ISO 8601 week (weeks start on Monday; week 1 holds the year's first Thursday), in UTC. */
export function isoWeekKey(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const weekday = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - weekday); // the Thursday of this week decides the year
  const year = t.getUTCFullYear();
  const week = Math.ceil(((t.getTime() - Date.UTC(year, 0, 1)) / 86_400_000 + 1) / 7);
  return `${year}-W${pad(week)}`;
}

/** Newest first; ties broken by id, so the order never depends on the input's. */
function newestFirst(a: BackupRef, b: BackupRef): number {
  const dt = b.completedAt.getTime() - a.completedAt.getTime();
  if (dt !== 0) return dt;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/**
 * Which backups to keep and which to delete. Pure: the same set of backups and policy always
 * give the same plan, whatever order they are listed in.
 */
export function planRetention(backups: readonly BackupRef[], policy: RetentionPolicy): RetentionPlan {
  for (const b of backups) {
    if (!(b.completedAt instanceof Date) || Number.isNaN(b.completedAt.getTime())) throw new RangeError(`backup ${b.id}: completedAt is not a valid date`);
  }
  // A duplicated id counts once (its newest entry), so keep and delete stay disjoint.
  const ids = new Set<string>();
  const sorted = [...backups].sort(newestFirst).filter((b) => !ids.has(b.id) && ids.add(b.id));
  const reasons = new Map<string, KeepReason[]>();
  const keepFor = (id: string, reason: KeepReason) => {
    const r = reasons.get(id);
    if (r) r.push(reason);
    else reasons.set(id, [reason]);
  };

  if (sorted[0]) keepFor(sorted[0].id, 'newest');
  sorted.slice(0, Math.max(0, policy.keepLast)).forEach((b) => keepFor(b.id, 'last'));

  // For each bucketed policy: the newest backup of each of the N most recent buckets that have one.
  const buckets: Array<[KeepReason, number, (d: Date) => string]> = [
    ['daily', policy.keepDaily, dayKey],
    ['weekly', policy.keepWeekly, isoWeekKey],
    ['monthly', policy.keepMonthly, monthKey],
  ];
  for (const [reason, n, key] of buckets) {
    const seen = new Set<string>();
    for (const b of sorted) {
      if (seen.size >= n) break;
      const k = key(b.completedAt);
      if (seen.has(k)) continue;
      seen.add(k);
      keepFor(b.id, reason);
    }
  }

  return {
    keep: sorted.filter((b) => reasons.has(b.id)).map((b) => b.id),
    delete: sorted.filter((b) => !reasons.has(b.id)).map((b) => b.id),
    reasons: Object.fromEntries(reasons),
  };
}

export interface OrphanReport {
  id: string;
  keys: string[];
  bytes: number;
  /** The newest object's time (ISO). */
  lastModified: string;
}

export interface RetentionReport {
  /** Backups kept (newest first) and why. */
  kept: string[];
  reasons: Record<string, KeepReason[]>;
  /** Backups deleted (or, in a dry run, that would be). */
  deleted: string[];
  /** Files of a backup id without a manifest, older than the orphan age: removed (or would be). */
  orphans: OrphanReport[];
  /** Files without a manifest, younger than the orphan age (an upload may be in progress): left alone. */
  pending: OrphanReport[];
  /** A manifest that exists but cannot be read: left alone, so a human can look at it. */
  unreadable: string[];
}

export interface RetentionOptions {
  dryRun: boolean;
  now: Date;
  logger?: Logger;
  /** Files without a manifest are removed once their newest object is this old; default one day. */
  orphanMinAgeMs?: number;
}

export const ORPHAN_MIN_AGE_MS = 86_400_000;

/** 20261122T020000Z-3fa2 -> 2026-11-22T02:00:00Z: the fallback when a manifest lacks completedAt. */
export function backupIdTime(id: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(id);
  if (!m) return undefined;
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

function orphanReport(id: string, objects: StoredObject[]): OrphanReport {
  const newest = Math.max(...objects.map((o) => o.lastModified.getTime()));
  return { id, keys: objects.map((o) => o.key), bytes: objects.reduce((s, o) => s + o.size, 0), lastModified: new Date(newest).toISOString() };
}

/**
 * Apply the policy to the backups of `databaseId`. A deleted backup loses its manifest first, so
 * an interrupted deletion leaves an orphan (removed by a later run), never a listed backup with
 * missing data.
 */
export async function applyRetention(storage: Storage, databaseId: string, policy: RetentionPolicy, options: RetentionOptions): Promise<RetentionReport> {
  const prefix = logicalPrefix(databaseId);
  const minAge = options.orphanMinAgeMs ?? ORPHAN_MIN_AGE_MS;
  const log = options.logger;

  const groups = new Map<string, StoredObject[]>();
  for (const o of await storage.list(prefix)) {
    const rest = o.key.slice(prefix.length).split('/');
    const id = rest[0] ?? '';
    // Only directories named like backups are ours to touch.
    if (rest.length < 2 || !isBackupId(id)) continue;
    const g = groups.get(id);
    if (g) g.push(o);
    else groups.set(id, [o]);
  }

  const backups: BackupRef[] = [];
  const unreadable: string[] = [];
  const orphans: OrphanReport[] = [];
  const pending: OrphanReport[] = [];
  for (const [id, objects] of groups) {
    const manifestKey = `${prefix}${id}/manifest.json`;
    if (!objects.some((o) => o.key === manifestKey)) {
      const report = orphanReport(id, objects);
      if (options.now.getTime() - Date.parse(report.lastModified) >= minAge) orphans.push(report);
      else pending.push(report);
      continue;
    }
    const raw = await storage.getBytes(manifestKey);
    if (raw === undefined) continue; // deleted since the listing: no longer a backup, not ours either
    let completedAt: Date | undefined;
    try {
      const m = JSON.parse(raw.toString('utf8')) as { completedAt?: unknown };
      if (typeof m.completedAt === 'string' && !Number.isNaN(Date.parse(m.completedAt))) completedAt = new Date(m.completedAt);
      completedAt ??= backupIdTime(id);
    } catch (err) {
      log?.warn(`manifest ${manifestKey} is not valid JSON: left alone`, { error: errorMessage(err).slice(0, 200) });
    }
    if (completedAt) backups.push({ id, completedAt });
    else unreadable.push(id);
  }

  const plan = planRetention(backups, policy);
  if (!options.dryRun) {
    for (const id of plan.delete) {
      const objects = groups.get(id) ?? [];
      const manifestKey = `${prefix}${id}/manifest.json`;
      // Manifest first: from here on the backup is no longer listed, whatever happens next.
      await storage.delete(manifestKey);
      for (const o of objects) if (o.key !== manifestKey) await storage.delete(o.key);
      log?.info(`deleted backup ${id}`, { files: objects.length });
    }
    for (const o of orphans) {
      for (const key of o.keys) await storage.delete(key);
      log?.info(`removed orphaned files of ${o.id} (no manifest)`, { files: o.keys.length, bytes: o.bytes, lastModified: o.lastModified });
    }
  }
  for (const p of pending) log?.info(`left recent files of ${p.id} without a manifest alone (an upload may be in progress)`, { lastModified: p.lastModified });

  const byId = (a: OrphanReport, b: OrphanReport) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
  return { kept: plan.keep, reasons: plan.reasons, deleted: plan.delete, orphans: orphans.sort(byId), pending: pending.sort(byId), unreadable: unreadable.sort().reverse() };
}
