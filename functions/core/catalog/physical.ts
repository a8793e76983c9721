// The physical half of the catalog (DESIGN.md "Physical backups, WAL archive and point-in-time
// recovery"): the base backup manifest's schema (the one definition; types derived from it), and the
// one rule for what a base backup is: a folder under `<db>/physical/` whose manifest passes the schema,
// names its own folder and base object, and whose base object is stored at the recorded size.
import * as z from 'zod';
import { UsageError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Storage, StoredObject } from '../storage/types.ts';
import { isLsn, parseLsn, segmentFileName, segmentNumberOf } from '../wal/lsn.ts';
import { inBatches, newestIdFirst, orphanOf, type BackupFolder, type InvalidBackup, type OrphanFolder } from './catalog.ts';
import { BackupNotFoundError } from './errors.ts';
import { isBackupId, parsePhysicalKey, physicalKeys, physicalPrefix, type PhysicalCompression } from './layout.ts';

export const PHYSICAL_KIND = 'physical';
export const PHYSICAL_FORMAT_VERSION = 1;
export const PHYSICAL_COMPRESSIONS = ['gzip', 'zstd', 'lz4', 'none'] as const satisfies readonly PhysicalCompression[];

const isoTime = z.iso.datetime({ offset: true });
const lsn = z.string().refine(isLsn, 'must be an LSN such as 0/3000028');
const segmentName = z.string().regex(/^[0-9A-F]{24}$/, 'must be a WAL segment name (24 uppercase hex digits)');
const isSegmentSize = (n: number): boolean => n >= 1 << 20 && n <= 1 << 30 && (n & (n - 1)) === 0;

export const physicalManifestSchema = z.looseObject({
  id: z.string(),
  database: z.string(),
  kind: z.literal(PHYSICAL_KIND),
  formatVersion: z.literal(PHYSICAL_FORMAT_VERSION),
  /** pg_basebackup -Ft: one tar of the data directory (backup_label and backup_manifest inside). */
  format: z.literal('tar'),
  /** How the tar is stored: the suffix of `key` follows from it (layout.ts physicalKeys). */
  compression: z.enum(PHYSICAL_COMPRESSIONS),
  /** The compressor's level; absent in manifests written before levels could be chosen (level 1). */
  compressionLevel: z.number().int().positive().optional(),
  /** No WAL in the tar: recovery reads startSegment..stopSegment from the archive. */
  walMethod: z.literal('none'),
  startedAt: isoTime,
  completedAt: isoTime,
  durationMs: z.number().nonnegative(),
  /** Size and SHA-256 of the stored (compressed) object. */
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Storage key of the base tar, relative to the storage root. */
  key: z.string(),
  serverVersion: z.string(),
  serverVersionNum: z.number().int().positive(),
  pgBasebackupVersion: z.string(),
  /** pg_control's system identifier: a 64-bit number, kept as text. */
  systemIdentifier: z.string().regex(/^\d{1,20}$/),
  timeline: z.number().int().positive(),
  startLsn: lsn,
  stopLsn: lsn,
  /** The first and the last WAL segment recovery needs to reach consistency. */
  startSegment: segmentName,
  stopSegment: segmentName,
  walSegmentSize: z.number().int().refine(isSegmentSize, 'must be a power of two from 1 MiB to 1 GiB'),
  /** When pg_basebackup had finished, by the server's clock: the earliest time recovery can reach. */
  stoppedAt: isoTime,
  /** Where it was taken from: postgres://user:***@host:port/db, never a password. */
  sourceHost: z.string(),
  /** Size of the uncompressed tar. */
  tarBytes: z.number().int().nonnegative().optional(),
  /** backup_label's CHECKPOINT LOCATION. */
  checkpointLsn: lsn.optional(),
});

export type PhysicalManifest = z.infer<typeof physicalManifestSchema>;

/** The last segment recovery needs: the one holding the byte before stopLsn (PostgreSQL's XLByteToPrevSeg). */
export function walSegmentsOf(m: Pick<PhysicalManifest, 'timeline' | 'startLsn' | 'stopLsn' | 'walSegmentSize'>): { startSegment: string; stopSegment: string } {
  const start = parseLsn(m.startLsn);
  const stop = parseLsn(m.stopLsn);
  return {
    startSegment: segmentFileName(m.timeline, segmentNumberOf(start, m.walSegmentSize), m.walSegmentSize),
    stopSegment: segmentFileName(m.timeline, segmentNumberOf(stop > start ? stop - 1n : stop, m.walSegmentSize), m.walSegmentSize),
  };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A manifest of another kind or a newer format: said plainly, rather than "invalid field". */
function kindProblem(json: unknown): string | undefined {
  if (!isRecord(json)) return undefined;
  const { formatVersion, kind } = json;
  if (kind !== PHYSICAL_KIND) return `kind ${JSON.stringify(typeof kind === 'string' ? kind.slice(0, 40) : kind)} is not "${PHYSICAL_KIND}": not a base backup manifest`;
  if (typeof formatVersion === 'number' && formatVersion > PHYSICAL_FORMAT_VERSION) {
    return `formatVersion ${formatVersion} (this pgops reads ${PHYSICAL_FORMAT_VERSION}): written by a newer pgops: upgrade pgops to read it`;
  }
  return undefined;
}

/** The fields that must agree with each other: a hand edit must not move a backup's WAL range. */
function consistencyProblem(m: PhysicalManifest): string | undefined {
  if (parseLsn(m.stopLsn) < parseLsn(m.startLsn)) return `stopLsn ${m.stopLsn} is before startLsn ${m.startLsn}`;
  const expected = walSegmentsOf(m);
  if (m.startSegment !== expected.startSegment) return `startSegment ${m.startSegment} does not hold startLsn ${m.startLsn} on timeline ${m.timeline} (expected ${expected.startSegment})`;
  if (m.stopSegment !== expected.stopSegment) return `stopSegment ${m.stopSegment} does not hold stopLsn ${m.stopLsn} on timeline ${m.timeline} (expected ${expected.stopSegment})`;
  return undefined;
}

/** Validate a base backup manifest's JSON text: the manifest, or why it is not one (never throws). */
export function parsePhysicalManifest(text: string): { manifest: PhysicalManifest } | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { problem: `not valid JSON (${err instanceof Error ? err.message : String(err)})` };
  }
  const other = kindProblem(json);
  if (other !== undefined) return { problem: other };
  const parsed = physicalManifestSchema.safeParse(json);
  if (!parsed.success) {
    return { problem: parsed.error.issues.slice(0, 5).map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ') };
  }
  const inconsistent = consistencyProblem(parsed.data);
  return inconsistent === undefined ? { manifest: parsed.data } : { problem: inconsistent };
}

export interface ValidPhysicalBackup extends BackupFolder {
  manifest: PhysicalManifest;
}

export interface PhysicalCatalogScan {
  /** Newest first (by completion time, then id). */
  backups: ValidPhysicalBackup[];
  /** Newest first. */
  invalid: InvalidBackup[];
  /** Folders without a manifest (an unfinished or failed base backup), newest first. */
  orphans: OrphanFolder[];
}

type ManifestRead = { manifest: PhysicalManifest } | { problem: string } | { absent: true };

const manifestKeyOf = (databaseId: string, id: string): string => physicalKeys(databaseId, id, 'none').manifest;

const newestCompletedFirst = (a: ValidPhysicalBackup, b: ValidPhysicalBackup): number =>
  Date.parse(b.manifest.completedAt) - Date.parse(a.manifest.completedAt) || newestIdFirst(a, b);

/** The manifest against its folder: its id, its base object's key, and that object as listed. */
function folderProblem(databaseId: string, folder: BackupFolder, m: PhysicalManifest): string | undefined {
  if (m.id !== folder.id) return `id "${m.id}" does not match its folder ${folder.id}`;
  const base = physicalKeys(databaseId, folder.id, m.compression).base;
  if (m.key !== base) return `key "${m.key.slice(0, 200)}" is not this backup's base object (${base})`;
  const stored = folder.objects.find((o) => o.key === base);
  if (!stored) return `its base object ${base} is missing`;
  if (stored.size !== m.bytes) return `its base object ${base} holds ${stored.size} bytes, the manifest says ${m.bytes}`;
  return undefined;
}

async function readPhysicalManifest(storage: Storage, databaseId: string, folder: BackupFolder): Promise<ManifestRead> {
  const raw = await storage.getBytes(manifestKeyOf(databaseId, folder.id));
  if (raw === undefined) return { absent: true };
  const parsed = parsePhysicalManifest(raw.toString('utf8'));
  if ('problem' in parsed) return { problem: parsed.problem.slice(0, 300) };
  const problem = folderProblem(databaseId, folder, parsed.manifest);
  return problem === undefined ? parsed : { problem };
}

/** The objects below a database's physical folder, grouped by backup id; anything else there is not ours. */
async function listPhysicalFolders(storage: Storage, databaseId: string, prefix = physicalPrefix(databaseId)): Promise<BackupFolder[]> {
  const folders = new Map<string, StoredObject[]>();
  for (const o of await storage.list(prefix)) {
    const parsed = parsePhysicalKey(databaseId, o.key);
    if (!parsed) continue;
    const objects = folders.get(parsed.id);
    if (objects) objects.push(o);
    else folders.set(parsed.id, [o]);
  }
  return [...folders].map(([id, objects]) => ({ id, objects }));
}

/**
 * One listing of a database's base backups, classified like the logical catalog's scan: valid
 * backups, rejected manifests (with the reason) and folders without a manifest.
 */
export async function scanPhysicalBackups(storage: Storage, databaseId: string, logger?: Logger): Promise<PhysicalCatalogScan> {
  const folders = await listPhysicalFolders(storage, databaseId);
  const scan: PhysicalCatalogScan = { backups: [], invalid: [], orphans: [] };
  const withManifest: BackupFolder[] = [];
  for (const folder of folders) {
    if (folder.objects.some((o) => o.key === manifestKeyOf(databaseId, folder.id))) withManifest.push(folder);
    else scan.orphans.push(orphanOf(folder));
  }
  const reads = await inBatches(withManifest, (folder) => readPhysicalManifest(storage, databaseId, folder));
  withManifest.forEach((folder, i) => {
    const read = reads[i]!;
    if ('manifest' in read) scan.backups.push({ ...folder, manifest: read.manifest });
    else if ('problem' in read) scan.invalid.push({ ...folder, manifestKey: manifestKeyOf(databaseId, folder.id), problem: read.problem });
  });
  for (const bad of scan.invalid) logger?.warn(`invalid base backup manifest ${bad.manifestKey}: not counted as a backup`, { problem: bad.problem });
  scan.backups.sort(newestCompletedFirst);
  for (const list of [scan.invalid, scan.orphans]) list.sort(newestIdFirst);
  return scan;
}

/** What a database's physical folder holds, in one phrase, for a "not found" answer. */
function describeScan(scan: PhysicalCatalogScan): string {
  const parts: string[] = [];
  if (scan.backups.length > 0) parts.push(`base backups there, newest first: ${scan.backups.slice(0, 5).map((b) => b.id).join(', ')}${scan.backups.length > 5 ? ', ...' : ''}`);
  else parts.push('no valid base backup there');
  if (scan.invalid.length > 0) parts.push(`${scan.invalid.length} invalid manifest(s)`);
  if (scan.orphans.length > 0) parts.push(`${scan.orphans.length} unfinished folder(s) without a manifest`);
  return `${parts.join('; ')} (pgops basebackups list shows them)`;
}

/**
 * `latest` (the newest valid base backup) or a backup id -> its manifest; a BackupNotFoundError
 * (exit 1, no page) that names what the storage holds instead.
 */
export async function resolvePhysicalBackup(storage: Storage, databaseId: string, ref: string, logger?: Logger): Promise<PhysicalManifest> {
  if (ref !== 'latest' && !isBackupId(ref)) throw new UsageError(`"${ref}" is not a backup id (like 20261122T020000Z-3fa2) or "latest"`);
  const where = `database "${databaseId}" in ${storage.url}`;
  if (ref === 'latest') {
    const scan = await scanPhysicalBackups(storage, databaseId, logger);
    if (scan.backups[0]) return scan.backups[0].manifest;
    throw new BackupNotFoundError(`no base backup of ${where}: ${describeScan(scan)}; take one with pgops basebackup`);
  }
  const [folder] = await listPhysicalFolders(storage, databaseId, physicalKeys(databaseId, ref, 'none').dir);
  const read: ManifestRead = folder ? await readPhysicalManifest(storage, databaseId, folder) : { absent: true };
  if ('manifest' in read) return read.manifest;
  if ('problem' in read) {
    logger?.warn(`invalid base backup manifest ${manifestKeyOf(databaseId, ref)}: not a backup`, { problem: read.problem });
    throw new BackupNotFoundError(`base backup ${ref} of ${where} has an invalid manifest (${manifestKeyOf(databaseId, ref)}: ${read.problem}): it is not a backup pgops can use`);
  }
  throw new BackupNotFoundError(`base backup ${ref} of ${where} not found: ${describeScan(await scanPhysicalBackups(storage, databaseId, logger))}`);
}
