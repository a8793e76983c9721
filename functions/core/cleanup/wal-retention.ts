// Retention of physical base backups (the same keep rules as logical full backups) and of the WAL
// archive: every WAL file older than the oldest kept base backup's start is deleted, everything
// from there on is kept on every timeline, so no kept backup ever loses a segment it needs. Without
// a valid base backup no WAL is deleted at all. The planners are pure; the job deletes through Storage.
import { ConfigError, PgopsError, errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { redactString } from '../redact.ts';
import type { Storage, StoredObject } from '../storage/types.ts';
import { parseWalName, physicalKeys, walPrefix } from '../catalog/layout.ts';
import { scanPhysicalBackups } from '../catalog/physical.ts';
import { newestTimeline, readWalInventory, type WalInventory } from '../wal/inventory.ts';
import { parseSegmentFileName, segmentFileName, segmentNumberOf } from '../wal/lsn.ts';
import { baseBackupRef, type BaseBackupRef } from '../wal/status.ts';
import { holdLocked, lockedNote, lockedUntil, ORPHAN_MIN_AGE_MS, planRetention, type KeepReason, type LockedReport, type OrphanReport, type RetentionPolicy } from './retention.ts';

export interface PhysicalRetentionResult {
  /** Newest first. */
  kept: string[];
  /** Newest first (in a dry run: would be deleted). */
  deleted: string[];
  reasons?: Record<string, KeepReason[]>;
  /** Manifests the catalog rejects: left alone, protecting nothing. */
  invalid?: Array<{ id: string; problem: string }>;
  /** Folders without a manifest older than a day: removed (or would be). */
  orphans?: OrphanReport[];
  /** Folders without a manifest, younger (a base backup may be running): left alone. */
  pending?: OrphanReport[];
  /** Base backups (kept, reason `locked`) and orphans Object Lock still protects: not deleted before `until`. */
  locked?: LockedReport[];
  skipped?: string;
}

export interface WalRetentionResult {
  /** WAL files (segments, .partial, .backup and history files) deleted, or that would be. */
  deleted: number;
  /** Bytes of the deleted objects, checksum objects included. */
  bytes: number;
  /** The oldest segment kept: the oldest kept base backup's start; null when nothing was judged. */
  keptFrom: string | null;
  /** The oldest and newest file deleted. */
  first?: string;
  last?: string;
  /** Why no WAL was deleted, when that is the reason (no valid base backup). */
  note?: string;
  /** WAL files no kept backup needs but Object Lock still protects: left alone until `lockedUntil`. */
  locked?: number;
  /** When the last of the locked WAL files is unlocked (ISO). */
  lockedUntil?: string;
  skipped?: string;
}

/** One WAL file in the archive: its data object (if any) and its checksum object (if any). */
interface WalFileObjects {
  name: string;
  timeline: number;
  /** undefined for history files. */
  segno: bigint | undefined;
  data?: StoredObject;
  checksum?: StoredObject;
}

const CHECKSUM_SUFFIX = '.sha256';
const COMPRESSION_SUFFIXES = ['.gz', '.zst', '.lz4', ''];

/** The WAL file name an object below wal/ belongs to (data or checksum), as inventory.ts reads keys. */
function walNameOf(relative: string): string | undefined {
  const slash = relative.indexOf('/');
  const dir = slash >= 0 ? relative.slice(0, slash) : undefined;
  const name = slash >= 0 ? relative.slice(slash + 1) : relative;
  for (const suffix of COMPRESSION_SUFFIXES) {
    if (suffix !== '' && !name.endsWith(suffix)) continue;
    const bare = suffix === '' ? name : name.slice(0, -suffix.length);
    const parsed = parseWalName(bare);
    if (!parsed) continue;
    if (parsed.kind === 'history' ? dir === undefined && suffix === '' : dir === parsed.timeline) return bare;
  }
  return undefined;
}

/** Every object below wal/, grouped per WAL file; objects that are not ours are left out (and alone). */
function groupWalObjects(inv: WalInventory, prefix: string): WalFileObjects[] {
  const files = new Map<string, WalFileObjects>();
  for (const o of inv.objects) {
    const isChecksum = o.key.endsWith(CHECKSUM_SUFFIX);
    const dataKey = isChecksum ? o.key.slice(0, -CHECKSUM_SUFFIX.length) : o.key;
    const name = walNameOf(dataKey.slice(prefix.length));
    if (name === undefined) continue;
    const parsed = parseWalName(name)!;
    const segno = parsed.kind === 'history' ? undefined : parseSegmentFileName(name.slice(0, 24), inv.segmentSize)?.segno;
    if (parsed.kind !== 'history' && segno === undefined) continue;
    const f = files.get(dataKey) ?? { name, timeline: Number.parseInt(parsed.timeline, 16), segno };
    if (isChecksum) f.checksum = o;
    else f.data = o;
    files.set(dataKey, f);
  }
  return [...files.values()];
}

export interface WalDeletionPlan {
  /** The oldest kept segment number, or undefined when no WAL may be deleted. */
  keepFromSegno: bigint | undefined;
  keptFrom: string | null;
  /** Files to delete, oldest first; each deleted checksum object first, then its data. `written`: its newest object's time. */
  files: Array<{ name: string; keys: string[]; bytes: number; written: Date }>;
  note?: string;
}

/** Timelines whose history a kept file, a kept backup or the newest timeline still needs. */
function neededHistories(inv: WalInventory, files: readonly WalFileObjects[], kept: readonly BaseBackupRef[], keepFrom: bigint): Set<number> {
  const needed = new Set<number>([newestTimeline(inv)]);
  const withAncestors = (t: number) => [t, ...(inv.histories.get(t) ?? []).map((e) => e.timeline)];
  for (const b of kept) for (const t of withAncestors(b.timeline)) needed.add(t);
  const hasFiles = new Set<number>();
  for (const f of files) {
    if (f.segno === undefined) continue;
    hasFiles.add(f.timeline);
    if (f.segno >= keepFrom) for (const t of withAncestors(f.timeline)) needed.add(t);
  }
  // A timeline with nothing but its history (just promoted) is not judged: its WAL is still to come.
  for (const t of inv.histories.keys()) if (!hasFiles.has(t)) needed.add(t);
  // Nor one that began at or after the oldest kept start: a kept backup may recover into it, even
  // while its own first segments are still missing (older files of it, such as a .partial, may go).
  for (const [t, entries] of inv.histories) {
    const began = entries.at(-1)?.switchLsn;
    if (began !== undefined && segmentNumberOf(began, inv.segmentSize) >= keepFrom) for (const a of withAncestors(t)) needed.add(a);
  }
  return needed;
}

const byAge = (a: WalFileObjects, b: WalFileObjects): number =>
  a.segno !== b.segno ? ((a.segno ?? -1n) < (b.segno ?? -1n) ? -1 : 1) : a.timeline - b.timeline || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * The WAL no kept base backup needs: every segment, .partial and .backup file (committed or not,
 * with its checksum object) numbered below the oldest kept backup's start, on any timeline, and the
 * history files no kept file, kept backup or the newest timeline needs. Pure.
 */
export function planWalDeletion(inv: WalInventory, databaseId: string, kept: readonly BaseBackupRef[]): WalDeletionPlan {
  if (kept.length === 0) {
    return { keepFromSegno: undefined, keptFrom: null, files: [], note: 'no valid base backup: no WAL deleted (every segment may still be needed)' };
  }
  const oldest = kept.reduce((a, b) => (b.startLsn < a.startLsn ? b : a));
  const keepFrom = segmentNumberOf(oldest.startLsn, inv.segmentSize);
  const files = groupWalObjects(inv, walPrefix(databaseId));
  const needed = neededHistories(inv, files, kept, keepFrom);
  const doomed = files.filter((f) => (f.segno === undefined ? !needed.has(f.timeline) : f.segno < keepFrom)).sort(byAge);
  return {
    keepFromSegno: keepFrom,
    keptFrom: segmentFileName(oldest.timeline, keepFrom, inv.segmentSize),
    files: doomed.map((f) => {
      const objects = [f.checksum, f.data].filter((o): o is StoredObject => o !== undefined);
      const written = new Date(Math.max(...objects.map((o) => o.lastModified.getTime())));
      return { name: f.name, keys: objects.map((o) => o.key), bytes: objects.reduce((s, o) => s + o.size, 0), written };
    }),
  };
}

export interface WalRetentionOptions {
  dryRun: boolean;
  now: Date;
  logger?: Logger;
  /** Base backup folders without a manifest are removed once this old; default one day. */
  orphanMinAgeMs?: number;
}

export interface WalRetentionReport {
  physical: PhysicalRetentionResult;
  wal: WalRetentionResult;
}

type PhysicalScan = Awaited<ReturnType<typeof scanPhysicalBackups>>;

/** The kept backups as the WAL sees them; a kept manifest whose positions cannot be read stops WAL retention. */
function keptRefs(scan: PhysicalScan, keep: readonly string[]): BaseBackupRef[] {
  return scan.backups.filter((b) => keep.includes(b.id)).map((b) => {
    try {
      return baseBackupRef(b.manifest);
    } catch (err) {
      throw new PgopsError(`base backup ${b.id}: its manifest's WAL positions cannot be read (${errorMessage(err)}): no WAL deleted`, { cause: err });
    }
  });
}

function orphanReport(o: PhysicalScan['orphans'][number]): OrphanReport {
  return { id: o.id, keys: o.objects.map((x) => x.key), bytes: o.bytes, lastModified: o.lastModified.toISOString() };
}

/** Delete the planned base backups (manifest first: from then on it is no longer listed), then old orphans. */
async function deleteBackups(storage: Storage, databaseId: string, scan: PhysicalScan, deleted: readonly string[], orphans: readonly OrphanReport[], log?: Logger): Promise<void> {
  for (const id of deleted) {
    const objects = scan.backups.find((b) => b.id === id)?.objects ?? [];
    const manifestKey = physicalKeys(databaseId, id, 'none').manifest;
    await storage.delete(manifestKey);
    for (const o of objects) if (o.key !== manifestKey) await storage.delete(o.key);
    log?.info(`deleted base backup ${id}`, { files: objects.length });
  }
  for (const o of orphans) {
    for (const key of o.keys) await storage.delete(key);
    log?.info(`removed the files of base backup ${o.id} (no manifest)`, { files: o.keys.length, bytes: o.bytes, lastModified: o.lastModified });
  }
}

/** Delete the planned WAL, oldest first, each file's checksum object before its data (a data object alone reads as "not archived"). */
async function deleteWal(storage: Storage, plan: WalDeletionPlan): Promise<void> {
  for (const f of plan.files) for (const key of f.keys) await storage.delete(key);
}

/** Leaves the WAL files Object Lock still protects out of the plan; counts them and says until when. */
function holdLockedWal(plan: WalDeletionPlan, lock: RetentionPolicy['objectLock'], now: Date): { plan: WalDeletionPlan; locked: number; until?: Date } {
  if (!lock) return { plan, locked: 0 };
  let until: Date | undefined;
  let locked = 0;
  const files = plan.files.filter((f) => {
    const u = lockedUntil([f.written], lock, now);
    if (!u) return true;
    locked += 1;
    if (!until || u > until) until = u;
    return false;
  });
  return { plan: { ...plan, files }, locked, ...(until ? { until } : {}) };
}

function walResult(plan: WalDeletionPlan, held: { locked: number; until?: Date }): WalRetentionResult {
  return {
    ...(held.locked > 0 ? { locked: held.locked, lockedUntil: held.until!.toISOString() } : {}),
    deleted: plan.files.length,
    bytes: plan.files.reduce((s, f) => s + f.bytes, 0),
    keptFrom: plan.keptFrom,
    ...(plan.files.length > 0 ? { first: plan.files[0]!.name, last: plan.files.at(-1)!.name } : {}),
    ...(plan.note !== undefined ? { note: plan.note } : {}),
  };
}

/**
 * Apply the keep rules to the base backups of `databaseId`, then delete the WAL no kept one needs.
 * Base backups go first: an interruption leaves extra WAL (deleted by the next run), never a listed
 * backup without its WAL. A dry run plans the same and deletes nothing.
 */
export async function applyWalRetention(storage: Storage, databaseId: string, policy: RetentionPolicy, options: WalRetentionOptions): Promise<WalRetentionReport> {
  const log = options.logger;
  const scan = await scanPhysicalBackups(storage, databaseId);
  const lock = policy.objectLock;
  // A base backup Object Lock keeps counts as kept for the WAL too: never a listed backup without its WAL.
  const { plan, locked } = holdLocked(planRetention(scan.backups.map((b) => ({ id: b.id, completedAt: new Date(b.manifest.completedAt) })), policy), scan.backups, lock, options.now);
  const kept = keptRefs(scan, plan.keep);
  const inv = await readWalInventory(storage, databaseId, { segmentSize: kept[0]?.walSegmentSize });
  const held = holdLockedWal(planWalDeletion(inv, databaseId, kept), lock, options.now);
  const walPlan = held.plan;
  const minAge = options.orphanMinAgeMs ?? ORPHAN_MIN_AGE_MS;
  const old = (o: PhysicalScan['orphans'][number]) => options.now.getTime() - o.lastModified.getTime() >= minAge;
  const orphans = scan.orphans.filter(old).map(orphanReport).filter((o) => {
    const until = lockedUntil([new Date(o.lastModified)], lock, options.now);
    if (until) locked.push({ id: o.id, until: until.toISOString(), what: 'orphan' });
    return until === undefined;
  });
  for (const l of locked) log?.info(`kept ${l.what === 'backup' ? 'base backup' : 'the files without a manifest of base backup'} ${l.id} that retention would delete: ${lockedNote(l.until, lock!)}`);
  if (held.locked > 0) log?.info(`kept ${held.locked} WAL file(s) no kept base backup needs: ${lockedNote(held.until!, lock!)}`);
  if (!options.dryRun) {
    await deleteBackups(storage, databaseId, scan, plan.delete, orphans, log);
    await deleteWal(storage, walPlan);
  }
  const wal = walResult(walPlan, held);
  // Without any WAL or base backup, PITR is simply not set up here: nothing worth a log line.
  if (inv.objects.length === 0 && scan.backups.length === 0) log?.debug('no WAL archive and no base backup: nothing to retain');
  else if (wal.note) log?.info(wal.note);
  else log?.info(`WAL ${options.dryRun ? 'that would be ' : ''}deleted: ${wal.deleted} file(s) before ${wal.keptFrom}`, { bytes: wal.bytes });
  const invalid = scan.invalid.map((b) => ({ id: b.id, problem: b.problem }));
  if (invalid.length > 0) log?.warn(`${invalid.length} invalid base backup manifest(s) left alone for a human to look at; they protect no WAL`, { ids: invalid.map((b) => b.id) });
  return {
    physical: { kept: plan.keep, deleted: plan.delete, reasons: plan.reasons, invalid, orphans, pending: scan.orphans.filter((o) => !old(o)).map(orphanReport), ...(locked.length > 0 ? { locked } : {}) },
    wal,
  };
}

/** What the cleanup job hands this part. */
export interface WalRetentionDeps {
  storage?: Storage;
  databaseId: string;
  retention: RetentionPolicy;
  logger: Logger;
  now: Date;
  /** ms timestamp on the Date.now() scale: past it, this part does not start. */
  deadline?: number;
}

/** The cleanup job's part: skipped without storage or past the deadline; a failure is named in `failures`, never thrown. */
export async function runWalRetention(deps: WalRetentionDeps, dryRun: boolean, failures: string[]): Promise<WalRetentionReport> {
  const skip = (why: string): WalRetentionReport => ({ physical: { kept: [], deleted: [], skipped: why }, wal: { deleted: 0, bytes: 0, keptFrom: null, skipped: why } });
  if (!deps.storage) return skip('no storage configured');
  if (deps.deadline !== undefined && Date.now() >= deps.deadline) return skip('deadline');
  try {
    return await applyWalRetention(deps.storage, deps.databaseId, deps.retention, { dryRun, now: deps.now, logger: deps.logger });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const message = redactString(errorMessage(err));
    failures.push(`base backup and WAL retention: ${message}`);
    deps.logger.error(`base backup and WAL retention failed: ${message}`);
    return skip(`failed: ${message}`);
  }
}
