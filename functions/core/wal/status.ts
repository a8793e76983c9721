// The restore window (`pgops wal status`): from which base backups the archive can recover, up to
// where, and which missing segments cut recovery short. Read from storage alone, no connection.
import type { Logger } from '../logger.ts';
import type { Storage } from '../storage/types.ts';
import { scanPhysicalBackups } from '../catalog/physical.ts';
import { PgopsError } from '../errors.ts';
import { checkContinuity, newestTimeline, readWalInventory, recoveryPath, archiveWindows, type ArchivedWal, type TimelineWindow, type WalInventory } from './inventory.ts';
import { DEFAULT_WAL_SEGMENT_SIZE, formatLsn, parseLsn, parseSegmentFileName, segmentNumberOf, segmentStartLsn } from './lsn.ts';
import type { TimelineSpan } from './timeline.ts';

/** A base backup as the WAL sees it: where its WAL starts and where it is consistent. */
export interface BaseBackupRef {
  id: string;
  timeline: number;
  startLsn: bigint;
  stopLsn: bigint;
  startSegment: string;
  stopSegment: string;
  completedAt: Date;
  /** When the backup became consistent: nothing earlier can be recovered from it. */
  stoppedAt: Date;
  walSegmentSize: number;
}

/** The physical manifest's fields this module reads (the catalog owns the schema). */
export interface PhysicalManifestFields {
  id: string;
  completedAt: string;
  startLsn: string;
  stopLsn: string;
  startSegment: string;
  stopSegment: string;
  timeline: number;
  walSegmentSize?: number;
  stoppedAt?: string;
}

export function baseBackupRef(manifest: PhysicalManifestFields): BaseBackupRef {
  const completedAt = new Date(manifest.completedAt);
  const stoppedAt = manifest.stoppedAt !== undefined ? new Date(manifest.stoppedAt) : completedAt;
  return {
    id: manifest.id, timeline: manifest.timeline,
    startLsn: parseLsn(manifest.startLsn), stopLsn: parseLsn(manifest.stopLsn),
    startSegment: manifest.startSegment, stopSegment: manifest.stopSegment,
    completedAt, stoppedAt: Number.isNaN(stoppedAt.getTime()) ? completedAt : stoppedAt,
    walSegmentSize: manifest.walSegmentSize ?? DEFAULT_WAL_SEGMENT_SIZE,
  };
}

/** A position recovery can reach: its LSN, the segment holding it, and when that was archived (or the backup stopped). */
export interface WalPoint {
  lsn: string;
  segment: string;
  time: string | null;
}

export interface BackupWalStatus {
  id: string;
  timeline: number;
  startSegment: string;
  stopSegment: string;
  /** Its WAL is continuous from its start through the newest segment of the newest timeline. */
  recoverable: boolean;
  /** Its own WAL (start to stop) is archived: it can be restored at all. */
  consistent: boolean;
  /** The furthest point recovery from it reaches along the newest timeline (null: not even its first segment). */
  reaches: WalPoint | null;
  /** The first missing segment after its start, or null. */
  firstMissing: string | null;
  /** Why it does not count for the newest timeline, when it does not. */
  note?: string;
}

/** A run of consecutive missing segments after the oldest base backup's start. */
export interface WalGap {
  first: string;
  last: string;
  segments: number;
  /** Base backups (newest first) whose recovery stops before this gap. */
  cutsOff: string[];
}

export interface WalStatus {
  newestTimeline: number;
  segmentSize: number;
  timelines: TimelineWindow[];
  /** Newest first. */
  backups: BackupWalStatus[];
  /** What can be recovered on the newest timeline: from the oldest backup that reaches the end, to the end. */
  window: { timeline: number; from: (WalPoint & { backupId: string }) | null; to: WalPoint | null };
  gaps: WalGap[];
  /** What keeps the window from being whole, each line an on-call engineer can act on; empty when all is well. */
  problems: string[];
  ok: boolean;
}

const endOfSegment = (f: ArchivedWal, size: number): string => formatLsn(segmentStartLsn(f.segno! + 1n, size));
const pointOf = (f: ArchivedWal, size: number): WalPoint => ({ lsn: endOfSegment(f, size), segment: f.name, time: f.archivedAt.toISOString() });

/** Why the backup is not on this path (undefined when it is: its WAL range lies inside its own timeline's span). */
function offPathReason(path: readonly TimelineSpan[], b: BaseBackupRef): string | undefined {
  const newest = path.at(-1)!.timeline;
  const span = path.find((s) => s.timeline === b.timeline);
  if (span === undefined) return `timeline ${b.timeline} is not an ancestor of timeline ${newest}`;
  if (b.startLsn < span.beginLsn) return `timeline ${b.timeline} began at ${formatLsn(span.beginLsn)}, after this backup started`;
  if (span.endLsn !== undefined && b.stopLsn > span.endLsn) return `timeline ${newest} branched off timeline ${b.timeline} at ${formatLsn(span.endLsn)}, before this backup ended`;
  return undefined;
}

function describe(p: WalPoint): string {
  return `${p.lsn} (end of ${p.segment}${p.time ? `, archived ${p.time}` : ''})`;
}

/** One backup on the newest timeline's path: how far its WAL reaches, whether it is whole. */
function backupOnPath(inv: WalInventory, timeline: number, b: BaseBackupRef): BackupWalStatus {
  const size = inv.segmentSize;
  const toEnd = checkContinuity(inv, { timeline, fromLsn: b.startLsn });
  const own = checkContinuity(inv, { timeline, fromLsn: b.startLsn, toLsn: b.stopLsn });
  // With a target, every segment from the start through the stop is listed, archived or missing.
  const consistent = own.missing.length === 0;
  return {
    id: b.id, timeline: b.timeline, startSegment: b.startSegment, stopSegment: b.stopSegment,
    recoverable: consistent && toEnd.missing.length === 0,
    consistent,
    reaches: consistent && toEnd.last ? pointOf(toEnd.last, size) : null,
    firstMissing: toEnd.missing[0] ?? own.missing[0] ?? null,
  };
}

function offPath(b: BaseBackupRef, timeline: number, reason: string): BackupWalStatus {
  return {
    id: b.id, timeline: b.timeline, startSegment: b.startSegment, stopSegment: b.stopSegment,
    recoverable: false, consistent: false, reaches: null, firstMissing: null,
    note: `not on timeline ${timeline}'s path (${reason}): it can recover along timeline ${b.timeline} only`,
  };
}

/** Missing segment names grouped into runs of consecutive segments. */
function runsOf(missing: readonly string[], size: number): Array<{ first: string; last: string; segments: number }> {
  const runs: Array<{ first: string; last: string; segments: number; segno: bigint }> = [];
  for (const name of missing) {
    const segno = parseSegmentFileName(name, size)!.segno;
    const prev = runs.at(-1);
    if (prev && segno === prev.segno + 1n) Object.assign(prev, { last: name, segments: prev.segments + 1, segno });
    else runs.push({ first: name, last: name, segments: 1, segno });
  }
  return runs.map(({ first, last, segments }) => ({ first, last, segments }));
}

/** Gaps after the oldest on-path backup's start, each with the backups it cuts off. */
function gapsAfter(inv: WalInventory, timeline: number, onPathBackups: readonly BaseBackupRef[]): WalGap[] {
  const oldest = onPathBackups.at(-1);
  if (!oldest) return [];
  const size = inv.segmentSize;
  const all = checkContinuity(inv, { timeline, fromLsn: oldest.startLsn });
  return runsOf(all.missing, size).map((run) => {
    const gapSegno = parseSegmentFileName(run.first, size)!.segno;
    const cutsOff = onPathBackups.filter((b) => segmentNumberOf(b.startLsn, size) <= gapSegno).map((b) => b.id);
    return { ...run, cutsOff };
  });
}

function gapLine(gap: WalGap, statuses: readonly BackupWalStatus[], after: BaseBackupRef | undefined): string {
  const what = gap.segments === 1 ? `${gap.first} is missing` : `${gap.first} .. ${gap.last} (${gap.segments} segments) are missing`;
  const newestCut = statuses.find((s) => s.id === gap.cutsOff[0]);
  const reach = !newestCut ? ''
    : newestCut.reaches ? `; recovery from backup ${newestCut.id} can reach ${describe(newestCut.reaches)} at most`
      : `; backup ${newestCut.id} cannot be restored at all (the gap is inside its own WAL)`;
  const advice = after
    ? `; from the end of backup ${after.id} (${after.stoppedAt.toISOString()}, ${formatLsn(after.stopLsn)}) on the archive is whole again: the time between cannot be recovered`
    : '; take a new base backup (pgops basebackup)';
  return `gap: ${what}${reach}${advice}`;
}

/** Everything that makes part of the window unrecoverable, as lines to act on. */
function problemsOf(timeline: number, backups: readonly BaseBackupRef[], statuses: readonly BackupWalStatus[], gaps: readonly WalGap[], hasAny: boolean): string[] {
  const onPathStatuses = statuses.filter((s) => s.note === undefined);
  if (statuses.length === 0) {
    return [hasAny ? 'no base backup: the archived WAL cannot be recovered from anything; take one (pgops basebackup)' : 'nothing archived and no base backup: point-in-time recovery is not set up'];
  }
  if (onPathStatuses.length === 0) return [`no base backup on timeline ${timeline}'s path: take a new base backup (pgops basebackup)`];
  const problems: string[] = [];
  for (const gap of gaps) {
    const cut = new Set(gap.cutsOff);
    const after = [...onPathStatuses].reverse().find((s) => !cut.has(s.id) && s.recoverable);
    problems.push(gapLine(gap, onPathStatuses, backups.find((b) => b.id === after?.id)));
  }
  for (const s of onPathStatuses) {
    if (!s.consistent && !gaps.some((g) => g.cutsOff.includes(s.id))) {
      problems.push(`backup ${s.id} cannot be restored: its WAL through ${s.stopSegment} is not in the archive (first missing: ${s.firstMissing})`);
    }
  }
  return problems;
}

function windowOf(timeline: number, backups: readonly BaseBackupRef[], statuses: readonly BackupWalStatus[]): WalStatus['window'] {
  const oldestWhole = [...statuses].reverse().find((s) => s.recoverable);
  if (!oldestWhole) return { timeline, from: null, to: null };
  const b = backups.find((x) => x.id === oldestWhole.id)!;
  return {
    timeline,
    from: { backupId: b.id, lsn: formatLsn(b.stopLsn), segment: b.stopSegment, time: b.stoppedAt.toISOString() },
    to: oldestWhole.reaches,
  };
}

/** The path of the newest timeline, or the problem that stops it being known (a missing history file). */
function newestPath(inv: WalInventory): { timeline: number; path?: TimelineSpan[]; problem?: string } {
  const timeline = newestTimeline(inv);
  try {
    return { timeline, path: recoveryPath(inv, timeline) };
  } catch (err) {
    if (err instanceof PgopsError) return { timeline, problem: err.message };
    throw err;
  }
}

/** The restore window of an archive and its base backups (newest first). Pure. */
export function walStatusOf(inv: WalInventory, backups: readonly BaseBackupRef[]): WalStatus {
  const { timeline, path, problem } = newestPath(inv);
  const timelines = archiveWindows(inv);
  const base = { newestTimeline: timeline, segmentSize: inv.segmentSize, timelines };
  if (!path) {
    const statuses = backups.map((b) => offPath(b, timeline, 'its history is not archived'));
    return { ...base, backups: statuses, window: { timeline, from: null, to: null }, gaps: [], problems: [problem!], ok: false };
  }
  const reasons = new Map(backups.map((b) => [b.id, offPathReason(path, b)]));
  const onIt = backups.filter((b) => reasons.get(b.id) === undefined);
  const statuses = backups.map((b) => { const why = reasons.get(b.id); return why === undefined ? backupOnPath(inv, timeline, b) : offPath(b, timeline, why); });
  const gaps = gapsAfter(inv, timeline, onIt);
  const problems = problemsOf(timeline, backups, statuses, gaps, inv.files.length > 0);
  return { ...base, backups: statuses, window: windowOf(timeline, backups, statuses), gaps, problems, ok: problems.length === 0 };
}

export interface WalStatusDeps {
  storage: Storage;
  databaseId: string;
  logger?: Logger;
}

/** The catalog's valid physical backups (newest first) as the WAL sees them, with what it rejected. */
export async function readBaseBackups(storage: Storage, databaseId: string, logger?: Logger): Promise<{ backups: BaseBackupRef[]; invalid: string[] }> {
  const scan = await scanPhysicalBackups(storage, databaseId, logger);
  return { backups: scan.backups.map((b) => baseBackupRef(b.manifest)), invalid: scan.invalid.map((b) => b.id) };
}

export type WalStatusReport = WalStatus & { database: string; storage: string; invalidBackups: string[] };

/** `pgops wal status`: the archive and the base backups of `databaseId`, read once. */
export async function readWalStatus(deps: WalStatusDeps): Promise<WalStatusReport> {
  // The catalog logs each manifest it rejects; they count for nothing here.
  const { backups, invalid } = await readBaseBackups(deps.storage, deps.databaseId, deps.logger);
  const inv = await readWalInventory(deps.storage, deps.databaseId, { segmentSize: backups[0]?.walSegmentSize });
  const status = walStatusOf(inv, backups);
  return { ...status, database: deps.databaseId, storage: deps.storage.url, invalidBackups: invalid };
}
