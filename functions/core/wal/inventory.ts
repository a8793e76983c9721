// What the WAL archive holds, read once from storage: every committed file (data with its
// checksum object: the push's commit point), the timeline histories, and the continuity questions
// recovery, `wal status`, health and retention ask of it. Nothing here downloads a segment.
import { errorMessage, PgopsError } from '../errors.ts';
import type { Storage, StoredObject } from '../storage/types.ts';
import { parseWalName, walPrefix, type WalFileKind } from '../catalog/layout.ts';
import { DEFAULT_WAL_SEGMENT_SIZE, parseSegmentFileName, segmentFileName, segmentNumberOf, timelineHex } from './lsn.ts';
import { parseHistory, timelineOfSegment, timelinePath, type HistoryEntry, type TimelineSpan } from './timeline.ts';

export interface ArchivedWal {
  name: string;
  kind: WalFileKind;
  timeline: number;
  /** Segments, partial and backup-label files: the segment number; undefined for history files. */
  segno: bigint | undefined;
  key: string;
  checksumKey: string;
  /** The stored (compressed) size. */
  bytes: number;
  /** When the data object was stored: a segment's commits are all at or before it. */
  archivedAt: Date;
}

export interface WalInventory {
  segmentSize: number;
  /** Every committed file, in key order. */
  files: ArchivedWal[];
  /** Committed whole segments of one timeline, by segment number. */
  segmentsOf(timeline: number): Map<bigint, ArchivedWal>;
  /** Parsed history files, by the timeline they describe. */
  histories: Map<number, HistoryEntry[]>;
  /** Timelines with any committed file, ascending. */
  timelines: number[];
  /** Data objects without a checksum object (a push that never completed), and anything else under wal/ that is not ours. */
  uncommitted: StoredObject[];
  /** Every object under the database's wal/ folder (retention deletes from these). */
  objects: StoredObject[];
}

/** The .history file of a timeline above 1 is not archived: its path back to timeline 1 is unknown. */
export class WalHistoryMissingError extends PgopsError {}

const CHECKSUM_SUFFIX = '.sha256';
const COMPRESSION_SUFFIXES = ['.gz', '.zst', '.lz4', ''];

/** `<tli>/<name><.gz>` or `<name>.history`: the WAL name below the wal/ prefix, or undefined. */
function walNameOfKey(relative: string): string | undefined {
  const name = relative.includes('/') ? relative.slice(relative.indexOf('/') + 1) : relative;
  const dir = relative.includes('/') ? relative.slice(0, relative.indexOf('/')) : undefined;
  for (const suffix of COMPRESSION_SUFFIXES) {
    if (suffix !== '' && !name.endsWith(suffix)) continue;
    const bare = suffix === '' ? name : name.slice(0, -suffix.length);
    const parsed = parseWalName(bare);
    if (!parsed) continue;
    // History files sit at the top; everything else in its own timeline's folder.
    if (parsed.kind === 'history' ? dir === undefined && suffix === '' : dir === parsed.timeline) return bare;
  }
  return undefined;
}

function toArchived(o: StoredObject, name: string, segmentSize: number): ArchivedWal {
  const parsed = parseWalName(name)!;
  const segno = parsed.kind === 'history' ? undefined : parseSegmentFileName(name.slice(0, 24), segmentSize)?.segno;
  return {
    name, kind: parsed.kind, timeline: Number.parseInt(parsed.timeline, 16), segno,
    key: o.key, checksumKey: `${o.key}${CHECKSUM_SUFFIX}`, bytes: o.size, archivedAt: o.lastModified,
  };
}

async function readHistories(storage: Storage, files: ArchivedWal[]): Promise<Map<number, HistoryEntry[]>> {
  const histories = new Map<number, HistoryEntry[]>();
  for (const f of files.filter((x) => x.kind === 'history')) {
    const text = await storage.getBytes(f.key);
    if (text === undefined) continue;
    try {
      histories.set(f.timeline, parseHistory(text.toString('utf8'), f.key));
    } catch (err) {
      throw new PgopsError(`the archived timeline history ${f.key} cannot be read: ${errorMessage(err)}`, { cause: err });
    }
  }
  return histories;
}

/** Read the archive of `databaseId`: one listing, plus the (tiny) history files. */
export async function readWalInventory(storage: Storage, databaseId: string, options: { segmentSize?: number } = {}): Promise<WalInventory> {
  const segmentSize = options.segmentSize ?? DEFAULT_WAL_SEGMENT_SIZE;
  const prefix = walPrefix(databaseId);
  const objects = await storage.list(prefix);
  const keys = new Set(objects.map((o) => o.key));
  const files: ArchivedWal[] = [];
  const uncommitted: StoredObject[] = [];
  for (const o of objects) {
    if (o.key.endsWith(CHECKSUM_SUFFIX)) continue;
    const name = walNameOfKey(o.key.slice(prefix.length));
    if (name !== undefined && keys.has(`${o.key}${CHECKSUM_SUFFIX}`)) files.push(toArchived(o, name, segmentSize));
    else uncommitted.push(o);
  }
  const bySegment = new Map<number, Map<bigint, ArchivedWal>>();
  for (const f of files) {
    if (f.kind !== 'segment' || f.segno === undefined) continue;
    const m = bySegment.get(f.timeline) ?? new Map<bigint, ArchivedWal>();
    m.set(f.segno, f);
    bySegment.set(f.timeline, m);
  }
  return {
    segmentSize, files, uncommitted, objects,
    segmentsOf: (timeline) => bySegment.get(timeline) ?? new Map(),
    histories: await readHistories(storage, files),
    timelines: [...new Set(files.map((f) => f.timeline))].sort((a, b) => a - b),
  };
}

/** The newest timeline with anything archived (1 for an empty archive). */
export function newestTimeline(inv: WalInventory): number {
  return inv.timelines.at(-1) ?? 1;
}

/** Timeline `timeline`'s path back to timeline 1, from its archived history file. */
export function recoveryPath(inv: WalInventory, timeline: number): TimelineSpan[] {
  if (timeline === 1) return timelinePath(1, []);
  const history = inv.histories.get(timeline);
  if (!history) {
    throw new WalHistoryMissingError(`timeline ${timeline}'s history file ${timelineHex(timeline)}.history is not in the archive: `
      + `its path back to the base backup is unknown (was the promoted server archiving?)`);
  }
  return timelinePath(timeline, history);
}

export interface Continuity {
  timeline: number;
  fromSegment: string;
  /** The last segment required; undefined when the path has nothing archived after the start. */
  toSegment: string | undefined;
  /** The required segments that are archived, in order. */
  segments: ArchivedWal[];
  /** Names of required segments that are not archived, in order. */
  missing: string[];
  /** The newest segment reached from the start without a gap. */
  last: ArchivedWal | undefined;
}

/** The newest archived segment number on the path (the segment each timeline supplies), or undefined. */
function newestOnPath(inv: WalInventory, path: readonly TimelineSpan[]): bigint | undefined {
  let newest: bigint | undefined;
  for (const span of path) {
    for (const segno of inv.segmentsOf(span.timeline).keys()) {
      if (timelineOfSegment(path, segno, inv.segmentSize) !== span.timeline) continue;
      if (newest === undefined || segno > newest) newest = segno;
    }
  }
  return newest;
}

/**
 * The segments recovery reads from `fromLsn` on timeline `timeline`'s path to `toLsn` (inclusive;
 * undefined: through the newest archived segment of the path), and which of them are missing.
 */
export function checkContinuity(inv: WalInventory, opts: { timeline: number; fromLsn: bigint; toLsn?: bigint }): Continuity {
  const path = recoveryPath(inv, opts.timeline);
  const size = inv.segmentSize;
  const first = segmentNumberOf(opts.fromLsn, size);
  const lastWanted = opts.toLsn !== undefined ? segmentNumberOf(opts.toLsn, size) : newestOnPath(inv, path);
  const fromSegment = segmentFileName(timelineOfSegment(path, first, size), first, size);
  const result: Continuity = { timeline: opts.timeline, fromSegment, toSegment: undefined, segments: [], missing: [], last: undefined };
  if (lastWanted === undefined || lastWanted < first) {
    if (lastWanted === undefined) result.missing.push(fromSegment);
    return result;
  }
  for (let segno = first; segno <= lastWanted; segno++) {
    const tli = timelineOfSegment(path, segno, size);
    const name = segmentFileName(tli, segno, size);
    const found = inv.segmentsOf(tli).get(segno);
    if (found) {
      result.segments.push(found);
      if (result.missing.length === 0) result.last = found;
    } else {
      result.missing.push(name);
    }
    result.toSegment = name;
  }
  return result;
}

export interface TimelineWindow {
  timeline: number;
  firstSegment: string;
  lastSegment: string;
  /** Segment names absent between the first and the last archived segment of this timeline. */
  gaps: string[];
}

/** Per timeline: the first and last archived segment and the gaps between them (gaps are listed up to `maxGaps`). */
export function archiveWindows(inv: WalInventory, maxGaps = 100): TimelineWindow[] {
  const windows: TimelineWindow[] = [];
  for (const timeline of inv.timelines) {
    const segnos = [...inv.segmentsOf(timeline).keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (segnos.length === 0) continue;
    const gaps: string[] = [];
    for (let i = 1; i < segnos.length && gaps.length < maxGaps; i++) {
      for (let s = segnos[i - 1]! + 1n; s < segnos[i]! && gaps.length < maxGaps; s++) gaps.push(segmentFileName(timeline, s, inv.segmentSize));
    }
    windows.push({
      timeline,
      firstSegment: segmentFileName(timeline, segnos[0]!, inv.segmentSize),
      lastSegment: segmentFileName(timeline, segnos.at(-1)!, inv.segmentSize),
      gaps,
    });
  }
  return windows;
}
