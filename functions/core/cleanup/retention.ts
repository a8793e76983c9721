// Backup retention, GFS style (as pgBackRest and restic): a backup is kept if any policy keeps it,
// and the newest backup is always kept. Full and partial backups are planned apart, so a partial
// backup never counts toward or displaces a full one. The planner is pure; applyRetention plans from
// the catalog's scan (the catalog decides what a backup is), removes what crashed writers left
// behind, and deletes through the Storage interface.
import type { Logger } from '../logger.ts';
import { StorageDeniedError, StorageUnsupportedError } from '../storage/errors.ts';
import type { IncompleteUpload, Storage } from '../storage/types.ts';
import { backupContent, isFullBackup, scanBackups, type BackupContent, type CatalogScan, type OrphanFolder, type ValidBackup } from '../catalog/catalog.ts';
import { backupKeys, databasePrefix } from '../catalog/layout.ts';

export interface RetentionPolicy {
  keepLast: number;
  keepDaily: number;
  keepWeekly: number;
  keepMonthly: number;
  /** The bucket's S3 Object Lock default retention (config retention.objectLock). */
  objectLock?: ObjectLockPolicy;
}

/** S3 Object Lock default retention: every object version is locked until its creation plus `days`. */
export interface ObjectLockPolicy {
  mode: 'governance' | 'compliance';
  days: number;
}

/** Something retention would delete but leaves alone: S3 refuses to delete it before `until`. */
export interface LockedReport {
  id: string;
  /** ISO time the last of its objects is unlocked. */
  until: string;
  what: 'backup' | 'orphan';
}

const DAY_MS = 86_400_000;

/**
 * When the newest of these objects stops being locked by the bucket's default retention, or
 * undefined when none is locked at `now` (or there is no lock). A version's lock runs from its
 * creation (lastModified) for `days`: the newest object is the last one unlocked.
 */
export function lockedUntil(written: readonly Date[], lock: ObjectLockPolicy | undefined, now: Date): Date | undefined {
  if (!lock || written.length === 0) return undefined;
  const until = new Date(Math.max(...written.map((d) => d.getTime())) + lock.days * DAY_MS);
  return until.getTime() > now.getTime() ? until : undefined;
}

/** How the kept-because-locked line reads in logs and reports. */
export function lockedNote(until: Date | string, lock: ObjectLockPolicy): string {
  return `locked until ${typeof until === 'string' ? until : until.toISOString()} (Object Lock, ${lock.mode} mode)`;
}

export interface BackupRef {
  id: string;
  completedAt: Date;
}

/** `locked`: the keep rules would delete it, but S3 Object Lock still protects it. */
export type KeepReason = 'newest' | 'last' | 'daily' | 'weekly' | 'monthly' | 'locked';

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

export interface InvalidManifestReport {
  id: string;
  /** Why the catalog rejects the manifest. */
  problem: string;
}

/** An unfinished write (a temporary file, a multipart upload) left by a crashed or killed writer. */
export interface IncompleteReport {
  key: string;
  kind: IncompleteUpload['kind'];
  /** ISO time it started (multipart) or was last written to (temporary file). */
  startedAt: string;
  uploadId?: string;
}

export interface RetentionReport {
  /** Backups kept (newest first) and why. Full and partial backups are planned apart. */
  kept: string[];
  reasons: Record<string, KeepReason[]>;
  /** Backups deleted (or, in a dry run, that would be). */
  deleted: string[];
  /** What each kept or deleted backup holds (`full`, `schema-only`, `data-only`, `partial`). */
  content: Record<string, BackupContent>;
  /** Files of a backup id without a manifest, older than the orphan age: removed (or would be). */
  orphans: OrphanReport[];
  /** Files without a manifest, younger than the orphan age (an upload may be in progress): left alone. */
  pending: OrphanReport[];
  /**
   * Manifests the catalog rejects (not JSON, or not a manifest), newest first: left alone so a human
   * can look at them, and never counted as a backup (they protect nothing).
   */
  invalid: InvalidManifestReport[];
  /** The ids of `invalid`, newest first (kept for readers of the earlier report). */
  unreadable: string[];
  /** Unfinished writes older than the orphan age: removed (or, in a dry run, would be). */
  incomplete: IncompleteReport[];
  /** Unfinished writes younger than the orphan age (a write may be in progress): left alone. */
  incompleteRecent: IncompleteReport[];
  /** Set when the store cannot list (or abort) unfinished uploads: why, and what removes them instead. */
  incompleteNote?: string;
  /**
   * Backups (kept, reason `locked`) and orphans the keep rules would remove but Object Lock still
   * protects: never deleted before `until` (an attempt would only hide them behind a delete marker).
   */
  locked: LockedReport[];
}

export interface RetentionOptions {
  dryRun: boolean;
  now: Date;
  logger?: Logger;
  /** Files without a manifest and unfinished writes are removed once this old; default one day. */
  orphanMinAgeMs?: number;
}

export const ORPHAN_MIN_AGE_MS = 86_400_000;

function orphanReport(o: OrphanFolder): OrphanReport {
  return { id: o.id, keys: o.objects.map((x) => x.key), bytes: o.bytes, lastModified: o.lastModified.toISOString() };
}

/** Orphans old enough to be a crash, not an upload in progress. */
function splitOrphans(scan: CatalogScan, now: Date, minAgeMs: number): { orphans: OrphanReport[]; pending: OrphanReport[] } {
  const old = (o: OrphanFolder) => now.getTime() - o.lastModified.getTime() >= minAgeMs;
  return { orphans: scan.orphans.filter(old).map(orphanReport), pending: scan.orphans.filter((o) => !old(o)).map(orphanReport) };
}

/** Full backups by the keep rules, partial ones apart by the same rules: neither counts toward or pushes out the other. */
export function planByContent(backups: readonly ValidBackup[], policy: RetentionPolicy): RetentionPlan {
  const refs = backups.map((b): BackupRef & { full: boolean } => ({ id: b.id, completedAt: new Date(b.manifest.completedAt), full: isFullBackup(b.manifest) }));
  const full = planRetention(refs.filter((b) => b.full), policy);
  const partial = planRetention(refs.filter((b) => !b.full), policy);
  // Merged newest first, like each plan, whatever order the backups came in.
  const merged = [...refs].sort(newestFirst);
  const kept = new Set([...full.keep, ...partial.keep]);
  const deleted = new Set([...full.delete, ...partial.delete]);
  return {
    keep: merged.filter((b) => kept.has(b.id)).map((b) => b.id),
    delete: merged.filter((b) => deleted.has(b.id)).map((b) => b.id),
    reasons: { ...partial.reasons, ...full.reasons },
  };
}

/**
 * Moves the planned deletions Object Lock still protects to the kept ones (reason `locked`): a
 * backup is deletable once its newest object is unlocked. Pure.
 */
export function holdLocked(plan: RetentionPlan, backups: readonly LockableBackup[], lock: ObjectLockPolicy | undefined, now: Date): { plan: RetentionPlan; locked: LockedReport[] } {
  if (!lock) return { plan, locked: [] };
  const objectsOf = new Map(backups.map((b) => [b.id, b.objects]));
  const refOf = new Map(backups.map((b) => [b.id, { id: b.id, completedAt: new Date(b.manifest.completedAt) }]));
  const locked: LockedReport[] = [];
  for (const id of plan.delete) {
    const until = lockedUntil((objectsOf.get(id) ?? []).map((o) => o.lastModified), lock, now);
    if (until) locked.push({ id, until: until.toISOString(), what: 'backup' });
  }
  if (locked.length === 0) return { plan, locked };
  const held = new Set(locked.map((l) => l.id));
  const reasons = { ...plan.reasons };
  for (const id of held) reasons[id] = ['locked'];
  // Newest first, like the plan.
  const kept = [...plan.keep, ...held].map((id) => refOf.get(id) ?? { id, completedAt: new Date(0) }).sort(newestFirst).map((b) => b.id);
  return { plan: { keep: kept, delete: plan.delete.filter((id) => !held.has(id)), reasons }, locked };
}

/** What holdLocked needs of a catalog backup (logical or physical). */
export interface LockableBackup {
  id: string;
  manifest: { completedAt: string };
  objects: ReadonlyArray<{ lastModified: Date }>;
}

/** Delete the planned backups (manifest first) and the old orphans. */
async function deletePlanned(storage: Storage, databaseId: string, scan: CatalogScan, plan: RetentionPlan, orphans: OrphanReport[], log?: Logger): Promise<void> {
  const objectsOf = new Map(scan.backups.map((b) => [b.id, b.objects]));
  for (const id of plan.delete) {
    const objects = objectsOf.get(id) ?? [];
    const manifestKey = backupKeys(databaseId, id).manifest;
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

const LIFECYCLE = 'the bucket\'s lifecycle rule aborts them after a day';
const CANNOT_LIST_INCOMPLETE = `cannot list incomplete uploads on this store (${LIFECYCLE})`;
const CANNOT_ABORT_INCOMPLETE = `cannot abort incomplete uploads on this store (${LIFECYCLE})`;

/** A store that lacks the operation, or a role that lacks the permission: a note, never a failed retention. */
function incompleteNote(err: unknown, what: 'list' | 'abort'): string | undefined {
  if (err instanceof StorageUnsupportedError) return what === 'list' ? CANNOT_LIST_INCOMPLETE : CANNOT_ABORT_INCOMPLETE;
  if (err instanceof StorageDeniedError) return `not allowed to ${what} incomplete uploads (${err.message}; ${LIFECYCLE})`;
  return undefined;
}

interface IncompleteFound { old: IncompleteUpload[]; recent: IncompleteUpload[]; note?: string }

/** The database's unfinished writes, split by age; a store that cannot list them says so instead. */
async function findIncomplete(storage: Storage, databaseId: string, now: Date, minAgeMs: number): Promise<IncompleteFound> {
  if (!storage.listIncomplete) return { old: [], recent: [], note: CANNOT_LIST_INCOMPLETE };
  let items: IncompleteUpload[];
  try {
    items = await storage.listIncomplete(databasePrefix(databaseId));
  } catch (err) {
    const note = incompleteNote(err, 'list');
    if (note === undefined) throw err;
    return { old: [], recent: [], note };
  }
  const old = (i: IncompleteUpload) => now.getTime() - i.startedAt.getTime() >= minAgeMs;
  return { old: items.filter(old), recent: items.filter((i) => !old(i)) };
}

/** Remove the old unfinished writes; a store that lists but cannot abort them gets a note, not a failure. */
async function removeIncomplete(storage: Storage, found: IncompleteFound, log?: Logger): Promise<{ removed: IncompleteUpload[]; note?: string }> {
  const removed: IncompleteUpload[] = [];
  for (const item of found.old) {
    try {
      await storage.removeIncomplete?.(item);
    } catch (err) {
      const note = incompleteNote(err, 'abort');
      if (note === undefined) throw err;
      return { removed, note: `${note}: ${found.old.length - removed.length} left` };
    }
    removed.push(item);
    log?.info(`removed an unfinished ${item.kind === 'multipart' ? 'multipart upload' : 'temporary file'} of a crashed write`, { key: item.key, startedAt: item.startedAt.toISOString() });
  }
  return { removed, ...(found.note !== undefined ? { note: found.note } : {}) };
}

function incompleteReport(i: IncompleteUpload): IncompleteReport {
  return { key: i.key, kind: i.kind, startedAt: i.startedAt.toISOString(), ...(i.uploadId !== undefined ? { uploadId: i.uploadId } : {}) };
}

/**
 * Apply the policy to the backups of `databaseId`. A deleted backup loses its manifest first, so
 * an interrupted deletion leaves an orphan (removed by a later run), never a listed backup with
 * missing data. A manifest the catalog rejects is reported and left alone, and counts for nothing.
 * Folders without a manifest and unfinished writes older than a day are removed.
 */
export async function applyRetention(storage: Storage, databaseId: string, policy: RetentionPolicy, options: RetentionOptions): Promise<RetentionReport> {
  const log = options.logger;
  const minAgeMs = options.orphanMinAgeMs ?? ORPHAN_MIN_AGE_MS;
  const scan = await scanBackups(storage, databaseId, log);
  const { plan, locked } = holdLocked(planByContent(scan.backups, policy), scan.backups, policy.objectLock, options.now);
  const split = splitOrphans(scan, options.now, minAgeMs);
  const { pending } = split;
  const orphans = split.orphans.filter((o) => {
    const until = lockedUntil([new Date(o.lastModified)], policy.objectLock, options.now);
    if (until) locked.push({ id: o.id, until: until.toISOString(), what: 'orphan' });
    return until === undefined;
  });
  for (const l of locked) log?.info(`kept ${l.what === 'backup' ? 'backup' : 'the files without a manifest of'} ${l.id} that retention would delete: ${lockedNote(l.until, policy.objectLock!)}`);
  const incomplete = await findIncomplete(storage, databaseId, options.now, minAgeMs);
  let outcome: { removed: IncompleteUpload[]; note?: string } = { removed: incomplete.old, ...(incomplete.note !== undefined ? { note: incomplete.note } : {}) };
  if (!options.dryRun) {
    await deletePlanned(storage, databaseId, scan, plan, orphans, log);
    outcome = await removeIncomplete(storage, incomplete, log);
  }
  const incompleteNote = outcome.note;
  // A missing permission is worth a look; a store without the operation is just how it is.
  if (incompleteNote?.startsWith('not allowed')) log?.warn(incompleteNote);
  else if (incompleteNote !== undefined) log?.info(incompleteNote);
  for (const p of pending) log?.info(`left recent files of ${p.id} without a manifest alone (an upload may be in progress)`, { lastModified: p.lastModified });
  const invalid = scan.invalid.map((b) => ({ id: b.id, problem: b.problem }));
  if (invalid.length > 0) log?.warn(`${invalid.length} invalid manifest(s) left alone for a human to look at; they protect no backup`, { ids: invalid.map((b) => b.id) });
  return {
    kept: plan.keep, reasons: plan.reasons, deleted: plan.delete,
    content: Object.fromEntries(scan.backups.map((b) => [b.id, backupContent(b.manifest)])),
    orphans, pending, invalid, unreadable: invalid.map((b) => b.id),
    incomplete: outcome.removed.map(incompleteReport), incompleteRecent: incomplete.recent.map(incompleteReport),
    ...(incompleteNote !== undefined ? { incompleteNote } : {}),
    locked,
  };
}
