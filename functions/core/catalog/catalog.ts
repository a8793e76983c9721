// The one place that decides what a backup is (DESIGN.md "Backups and storage layout"): a folder
// with a manifest that passes the schema. List, restore, verify, health and retention all read
// storage through here; a rejected manifest is reported, never counted, and never deleted here.
import { UsageError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Storage, StoredObject } from '../storage/types.ts';
import { BackupNotFoundError } from './errors.ts';
import { backupKeys, isBackupId, logicalPrefix, parseLogicalKey } from './layout.ts';
import { contentOfOptions, LEGACY_KIND, parseManifest, type BackupContent, type BackupManifest } from './manifest.ts';
import { parseRestoreTest, type RestoreTestRecord } from './restore-test.ts';

export type { RestoreTestRecord } from './restore-test.ts';
export type { BackupContent } from './manifest.ts';

/** Manifests and restore-test records are read a few at a time: fast on S3 without hundreds of requests at once. */
const READ_BATCH = 8;

/** Every object of one backup id's folder. */
export interface BackupFolder {
  id: string;
  /** In key order; the manifest among them. */
  objects: StoredObject[];
}

export interface ValidBackup extends BackupFolder {
  manifest: BackupManifest;
}

/** A manifest the catalog rejects: reported so a human can look at it; never a backup, never deleted automatically. */
export interface InvalidBackup extends BackupFolder {
  manifestKey: string;
  problem: string;
}

/** A backup folder without a manifest: an unfinished, failed or half-deleted backup. */
export interface OrphanFolder extends BackupFolder {
  bytes: number;
  /** The newest object's time. */
  lastModified: Date;
}

export interface CatalogScan {
  /** Newest first (by completion time, then id). */
  backups: ValidBackup[];
  /** Newest first. */
  invalid: InvalidBackup[];
  /** Newest first. */
  orphans: OrphanFolder[];
}

type ManifestRead = { manifest: BackupManifest } | { problem: string } | { absent: true };

export const newestIdFirst = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

// Ids sort by the second a backup started, then by a random suffix: two backups of one second are
// ordered by when they completed (to the millisecond), as retention orders them.
const newestCompletedFirst = (a: ValidBackup, b: ValidBackup): number =>
  Date.parse(b.manifest.completedAt) - Date.parse(a.manifest.completedAt) || newestIdFirst(a, b);

/** The catalog's rule for a manifest: the schema, and the folder it sits in. */
async function readManifest(storage: Storage, databaseId: string, id: string): Promise<ManifestRead> {
  const raw = await storage.getBytes(backupKeys(databaseId, id).manifest);
  if (raw === undefined) return { absent: true };
  const parsed = parseManifest(raw.toString('utf8'));
  if ('problem' in parsed) return { problem: parsed.problem.slice(0, 300) };
  if (parsed.manifest.id !== id) return { problem: `id "${parsed.manifest.id}" does not match its folder ${id}` };
  return parsed;
}

export async function inBatches<T, R>(items: readonly T[], read: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += READ_BATCH) out.push(...await Promise.all(items.slice(i, i + READ_BATCH).map(read)));
  return out;
}

/** The objects below a database's logical folder, grouped by backup id; anything else there is not ours. */
async function listFolders(storage: Storage, databaseId: string): Promise<BackupFolder[]> {
  const folders = new Map<string, StoredObject[]>();
  for (const o of await storage.list(logicalPrefix(databaseId))) {
    const parsed = parseLogicalKey(databaseId, o.key);
    if (!parsed) continue;
    const objects = folders.get(parsed.id);
    if (objects) objects.push(o);
    else folders.set(parsed.id, [o]);
  }
  return [...folders].map(([id, objects]) => ({ id, objects }));
}

export function orphanOf(folder: BackupFolder): OrphanFolder {
  const newest = Math.max(...folder.objects.map((o) => o.lastModified.getTime()));
  return { ...folder, bytes: folder.objects.reduce((sum, o) => sum + o.size, 0), lastModified: new Date(newest) };
}

/**
 * One listing of a database's backups, classified: valid backups, rejected manifests (with the
 * reason) and folders without a manifest. A manifest deleted between the listing and its read
 * belongs to none of them.
 */
export async function scanBackups(storage: Storage, databaseId: string, logger?: Logger): Promise<CatalogScan> {
  const folders = await listFolders(storage, databaseId);
  const scan: CatalogScan = { backups: [], invalid: [], orphans: [] };
  const withManifest: BackupFolder[] = [];
  for (const folder of folders) {
    const manifestKey = backupKeys(databaseId, folder.id).manifest;
    if (folder.objects.some((o) => o.key === manifestKey)) withManifest.push(folder);
    else scan.orphans.push(orphanOf(folder));
  }
  const reads = await inBatches(withManifest, (folder) => readManifest(storage, databaseId, folder.id));
  withManifest.forEach((folder, i) => {
    const read = reads[i]!;
    if ('manifest' in read) scan.backups.push({ ...folder, manifest: read.manifest });
    else if ('problem' in read) scan.invalid.push({ ...folder, manifestKey: backupKeys(databaseId, folder.id).manifest, problem: read.problem });
  });
  for (const bad of scan.invalid) logger?.warn(`invalid manifest ${bad.manifestKey}: not counted as a backup`, { problem: bad.problem });
  scan.backups.sort(newestCompletedFirst);
  for (const list of [scan.invalid, scan.orphans]) list.sort(newestIdFirst);
  return scan;
}

/** Every valid backup of `databaseId`, newest first (full and partial alike; see backupContent). */
export async function listBackups(storage: Storage, databaseId: string, logger?: Logger): Promise<BackupManifest[]> {
  return (await scanBackups(storage, databaseId, logger)).backups.map((b) => b.manifest);
}

/**
 * `latest` (the newest FULL backup) or a backup id -> its manifest; a clear exit-1 error when
 * there is none. A partial backup is only ever resolved by its id.
 */
export async function resolveBackup(storage: Storage, databaseId: string, ref: string, logger?: Logger): Promise<BackupManifest> {
  if (ref === 'latest') return newestFullBackup(storage, databaseId, logger);
  if (!isBackupId(ref)) throw new UsageError(`"${ref}" is not a backup id (like 20261122T020000Z-3fa2) or "latest"`);
  const read = await readManifest(storage, databaseId, ref);
  if ('problem' in read) {
    const manifestKey = backupKeys(databaseId, ref).manifest;
    logger?.warn(`invalid manifest ${manifestKey}: not a backup`, { problem: read.problem });
    throw new BackupNotFoundError(`backup ${ref} of database "${databaseId}" has an invalid manifest (${manifestKey}: ${read.problem}): it is not a backup pgops can use`);
  }
  if (!('manifest' in read)) throw new BackupNotFoundError(`backup ${ref} of database "${databaseId}" not found in ${storage.url} (pgops backups list shows what exists)`);
  return read.manifest;
}

/** `latest`: partial backups never stand in for the whole database; the error says what there is instead. */
async function newestFullBackup(storage: Storage, databaseId: string, logger?: Logger): Promise<BackupManifest> {
  const scan = await scanBackups(storage, databaseId, logger);
  const full = scan.backups.find((b) => isFullBackup(b.manifest));
  if (full) return full.manifest;
  const partial = scan.backups.length;
  const invalid = scan.invalid.length > 0 ? `; ${scan.invalid.length} invalid manifest(s): pgops backups list shows why` : '';
  if (partial > 0) {
    throw new BackupNotFoundError(`no full backup of database "${databaseId}" in ${storage.url} (${partial} partial backup${partial === 1 ? '' : 's'}: restore one by its id${invalid})`);
  }
  throw new BackupNotFoundError(`no backup of database "${databaseId}" in ${storage.url}${invalid ? ` (${invalid.slice(2)})` : ''}`);
}

/** What a backup holds, for any valid manifest: its kind, or for a legacy `logical` manifest, its options. */
export function backupContent(m: BackupManifest): BackupContent {
  return m.kind === LEGACY_KIND ? contentOfOptions(m.options) : m.kind;
}

/** A full backup holds the whole database: only those count as "the newest backup" or as a size reference. */
export function isFullBackup(m: BackupManifest): boolean {
  return backupContent(m) === 'full';
}

/** The restore test recorded beside a backup, or undefined when there is none or it proves nothing. */
export async function readRestoreTest(storage: Storage, databaseId: string, backupId: string): Promise<RestoreTestRecord | undefined> {
  const raw = await storage.getBytes(backupKeys(databaseId, backupId).restoreTest);
  return raw === undefined ? undefined : parseRestoreTest(backupId, raw.toString('utf8'));
}

/** The restore tests recorded beside the given (valid) backups, newest backup first, at most `limit` read. */
export async function restoreTestsOf(storage: Storage, databaseId: string, backups: readonly BackupFolder[], limit: number): Promise<RestoreTestRecord[]> {
  const tested = [...backups]
    .sort(newestIdFirst)
    .filter((b) => b.objects.some((o) => o.key === backupKeys(databaseId, b.id).restoreTest))
    .slice(0, limit);
  const records = await inBatches(tested, (b) => readRestoreTest(storage, databaseId, b.id));
  return records.filter((r): r is RestoreTestRecord => r !== undefined);
}
