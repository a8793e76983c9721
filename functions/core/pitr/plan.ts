// The recovery plan, decided before anything is created: the timeline, the base backup (the newest
// one that ends before the target, or the one asked for), and the WAL from its start to the target,
// every segment of which must be in the archive. Pure: storage is read by the job, not here.
import { checkContinuity, newestTimeline, recoveryPath, type ArchivedWal, type Continuity, type WalInventory } from '../wal/inventory.ts';
import { formatLsn, segmentNumberOf, segmentStartLsn, timelineHex } from '../wal/lsn.ts';
import type { TimelineSpan } from '../wal/timeline.ts';
import type { PhysicalCompression } from '../catalog/layout.ts';
import { PitrArchiveError, PitrRefusedError } from './errors.ts';
import { describeTarget, targetDocument, type TargetSpec } from './targets.ts';

/** What recovery needs of a physical base backup (from its manifest, through the catalog). */
export interface BaseBackup {
  id: string;
  timeline: number;
  startLsn: bigint;
  stopLsn: bigint;
  stoppedAt: Date;
  walSegmentSize: number;
  key: string;
  sha256: string;
  bytes: number;
  compression: PhysicalCompression;
}

export interface PlanDocument {
  backup: { id: string; timeline: number; startLsn: string; stopLsn: string; stoppedAt: string };
  timeline: number;
  target: ReturnType<typeof targetDocument>;
  wal: { firstSegment: string; lastSegment: string; segments: number; through: 'target' | 'end of archive' };
  continuity: 'complete';
}

export interface RecoveryPlan {
  backup: BaseBackup;
  timeline: number;
  spec: TargetSpec;
  /** The archived segments recovery reads, in order. */
  segments: ArchivedWal[];
  document: PlanDocument;
}

export interface PlanInput {
  spec: TargetSpec;
  /** Every valid base backup of the database. */
  backups: readonly BaseBackup[];
  inventory: WalInventory;
  /** --backup: this one, or refused. */
  backupId?: string;
  databaseId: string;
}

const describeBackup = (b: BaseBackup): string => `base backup ${b.id} (stopped at ${b.stoppedAt.toISOString()}, LSN ${formatLsn(b.stopLsn)}, timeline ${b.timeline})`;

/** Choose the base backup and check the archive from its start to the target; refuses with the reason. */
export function planRecovery(input: PlanInput): RecoveryPlan {
  const { spec, inventory } = input;
  const timeline = chooseTimeline(spec, inventory);
  const path = pathOf(inventory, timeline);
  const backup = chooseBackup(input, timeline, path);
  const range = requiredWal(input, backup, timeline);
  const segments = range.continuity.segments;
  return {
    backup, timeline, spec, segments,
    document: {
      backup: { id: backup.id, timeline: backup.timeline, startLsn: formatLsn(backup.startLsn), stopLsn: formatLsn(backup.stopLsn), stoppedAt: backup.stoppedAt.toISOString() },
      timeline,
      target: targetDocument(spec, timeline),
      wal: { firstSegment: range.continuity.fromSegment, lastSegment: range.continuity.toSegment ?? range.continuity.fromSegment, segments: segments.length, through: range.through },
      continuity: 'complete',
    },
  };
}

function chooseTimeline(spec: TargetSpec, inventory: WalInventory): number {
  if (spec.timeline === 'latest') return newestTimeline(inventory);
  if (spec.timeline !== 1 && !inventory.timelines.includes(spec.timeline)) {
    const archived = inventory.timelines.length > 0 ? inventory.timelines.join(', ') : 'none';
    throw new PitrRefusedError(`timeline ${spec.timeline} is not in the archive (archived timelines: ${archived})`);
  }
  return spec.timeline;
}

function pathOf(inventory: WalInventory, timeline: number): TimelineSpan[] {
  try {
    return recoveryPath(inventory, timeline);
  } catch (err) {
    throw new PitrArchiveError(err instanceof Error ? err.message : String(err), [`${timelineHex(timeline)}.history`], { cause: err });
  }
}

/** A base backup recovery can start from on this path: taken on a timeline of it, before that timeline forked off. */
function onPath(b: BaseBackup, path: readonly TimelineSpan[]): boolean {
  const span = path.find((s) => s.timeline === b.timeline);
  return span !== undefined && b.startLsn >= span.beginLsn && (span.endLsn === undefined || b.stopLsn <= span.endLsn);
}

/** The target is at or after the backup's end: recovery must reach its consistent point first. */
function endsBefore(b: BaseBackup, spec: TargetSpec): boolean {
  const t = spec.target;
  if (t.kind === 'lsn') return b.stopLsn <= t.lsn;
  if (t.kind === 'time') return BigInt(b.stoppedAt.getTime()) * 1000n <= t.micros;
  return true;
}

const newestFirst = (a: BaseBackup, b: BaseBackup): number => (a.stopLsn === b.stopLsn ? (a.id < b.id ? 1 : -1) : a.stopLsn < b.stopLsn ? 1 : -1);

function chooseBackup(input: PlanInput, timeline: number, path: readonly TimelineSpan[]): BaseBackup {
  const { spec, backups } = input;
  const target = describeTarget(spec);
  if (input.backupId !== undefined) {
    const b = backups.find((x) => x.id === input.backupId);
    if (!b) throw new PitrRefusedError(`base backup ${input.backupId} of database "${input.databaseId}" not found (or its manifest is invalid)`);
    if (!onPath(b, path)) throw new PitrRefusedError(`${describeBackup(b)} is not on timeline ${timeline}'s history: choose a backup taken on it, or another --timeline`);
    if (!endsBefore(b, spec)) throw new PitrRefusedError(`target ${target} is before the end of ${describeBackup(b)}: choose an older --backup`);
    return b;
  }
  if (backups.length === 0) throw new PitrRefusedError(`no base backup of database "${input.databaseId}": take one with pgops basebackup`);
  const usable = backups.filter((b) => onPath(b, path)).sort(newestFirst);
  if (usable.length === 0) throw new PitrRefusedError(`no base backup of database "${input.databaseId}" is on timeline ${timeline}'s history: recover another --timeline, or take a base backup`);
  const chosen = usable.find((b) => endsBefore(b, spec));
  if (!chosen) throw new PitrRefusedError(`target ${target} is before the end of every base backup: the oldest is ${describeBackup(usable.at(-1)!)}`);
  return chosen;
}

interface Range {
  continuity: Continuity;
  through: 'target' | 'end of archive';
}

/** The segments from the backup's start to the target (or the archive's end), all archived, or refused naming the first missing. */
function requiredWal(input: PlanInput, backup: BaseBackup, timeline: number): Range {
  const { inventory, spec } = input;
  const fromLsn = backup.startLsn;
  const toEnd = checkContinuity(inventory, { timeline, fromLsn });
  const newest = toEnd.segments.at(-1);
  const atLeastStop = (lsn: bigint) => (lsn > backup.stopLsn ? lsn : backup.stopLsn);
  const t = spec.target;
  let range: Range;
  if (t.kind === 'lsn') {
    if (newest?.segno === undefined || segmentNumberOf(t.lsn, inventory.segmentSize) > newest.segno) throw afterArchive(input, timeline, newest);
    range = { continuity: checkContinuity(inventory, { timeline, fromLsn, toLsn: atLeastStop(t.lsn) }), through: 'target' };
  } else if (t.kind === 'time') {
    const end = toEnd.segments.find((s) => BigInt(s.archivedAt.getTime()) * 1000n >= t.micros);
    if (end?.segno === undefined) throw afterArchive(input, timeline, newest);
    range = { continuity: checkContinuity(inventory, { timeline, fromLsn, toLsn: atLeastStop(segmentStartLsn(end.segno, inventory.segmentSize)) }), through: 'target' };
  } else if (t.kind === 'immediate') {
    range = { continuity: checkContinuity(inventory, { timeline, fromLsn, toLsn: backup.stopLsn }), through: 'target' };
  } else {
    const reachesStop = newest?.segno !== undefined && newest.segno >= segmentNumberOf(backup.stopLsn, inventory.segmentSize);
    range = { continuity: reachesStop ? toEnd : checkContinuity(inventory, { timeline, fromLsn, toLsn: backup.stopLsn }), through: 'end of archive' };
  }
  if (range.continuity.missing.length > 0) throw gapError(input, backup, range);
  return range;
}

function afterArchive(input: PlanInput, timeline: number, newest: ArchivedWal | undefined): PitrRefusedError {
  const end = newest ? `the newest segment on timeline ${timeline}'s path is ${newest.name}, archived at ${newest.archivedAt.toISOString()}` : `nothing is archived on timeline ${timeline}'s path`;
  return new PitrRefusedError(`target ${describeTarget(input.spec)} is after the end of the archive: ${end} (is archiving running? see pgops wal status)`);
}

function gapError(input: PlanInput, backup: BaseBackup, range: Range): PitrArchiveError {
  const { missing, last } = range.continuity;
  const more = missing.length > 1 ? ` (${missing.length} segments missing: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''})` : '';
  const base = `WAL segment ${missing[0]} is missing from the archive: recovery from base backup ${backup.id} to ${describeTarget(input.spec)} needs it${more}`;
  if (range.through === 'target') return new PitrArchiveError(`${base}; nothing was started`, missing);
  const before = last ? `; the last segment before the gap is ${last.name}, archived at ${last.archivedAt.toISOString()}` : '';
  return new PitrArchiveError(`${base}, because a restore point or transaction is looked for to the end of the archive: take a new base backup (pgops basebackup), or recover to a --target-time or --target-lsn before the gap${before}`, missing);
}
