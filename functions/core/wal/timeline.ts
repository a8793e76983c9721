// Timeline history files (`0000000N.history`), as PostgreSQL writes them at promotion: one line per
// ancestor, `<parent timeline>\t<switch LSN>\t<reason>`, oldest first. Timeline N's WAL begins at
// the last switch point; each ancestor's ends at its own. Recovery reads, for every segment, the
// newest timeline of its path that had begun by then (xlogrecovery.c XLogFileReadAnyTLI).
import { PgopsError } from '../errors.ts';
import { parseLsn, segmentNumberOf, DEFAULT_WAL_SEGMENT_SIZE } from './lsn.ts';

export interface HistoryEntry {
  /** The ancestor timeline that ended here. */
  timeline: number;
  /** Where it ended: the first LSN of the next timeline on the path. */
  switchLsn: bigint;
  reason: string;
}

/** One timeline on a recovery path: its WAL from `beginLsn` (inclusive) to `endLsn` (exclusive; undefined = open). */
export interface TimelineSpan {
  timeline: number;
  beginLsn: bigint;
  endLsn: bigint | undefined;
}

export class TimelineHistoryError extends PgopsError {}

/** Parse a history file's text; comment and blank lines are skipped as PostgreSQL does. */
export function parseHistory(text: string, source = 'history file'): HistoryEntry[] {
  const entries: HistoryEntry[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\d+)\s+([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})(?:\s+(.*))?$/.exec(line);
    if (!m) throw new TimelineHistoryError(`${source} line ${i + 1} is not "<timeline> <LSN> <reason>": ${JSON.stringify(line.slice(0, 80))}`);
    const timeline = Number(m[1]);
    const prev = entries.at(-1);
    if (prev && (timeline <= prev.timeline || parseLsn(m[2]!) < prev.switchLsn)) {
      throw new TimelineHistoryError(`${source} line ${i + 1}: timelines must increase and switch points must not go back`);
    }
    entries.push({ timeline, switchLsn: parseLsn(m[2]!), reason: m[3] ?? '' });
  }
  return entries;
}

/**
 * The path of timeline `timeline`: each ancestor's span, then its own (open-ended), oldest first.
 * `history` is timeline `timeline`'s own history file (empty for timeline 1).
 */
export function timelinePath(timeline: number, history: readonly HistoryEntry[]): TimelineSpan[] {
  const spans: TimelineSpan[] = [];
  let begin = 0n;
  for (const e of history) {
    if (e.timeline >= timeline) throw new TimelineHistoryError(`the history of timeline ${timeline} names timeline ${e.timeline} as an ancestor`);
    spans.push({ timeline: e.timeline, beginLsn: begin, endLsn: e.switchLsn });
    begin = e.switchLsn;
  }
  spans.push({ timeline, beginLsn: begin, endLsn: undefined });
  return spans;
}

/** The timeline recovery reads segment `segno` from on this path: the newest one begun by then. */
export function timelineOfSegment(path: readonly TimelineSpan[], segno: bigint, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): number {
  for (let i = path.length - 1; i >= 0; i--) {
    const span = path[i]!;
    if (segmentNumberOf(span.beginLsn, segmentSize) <= segno) return span.timeline;
  }
  return path[0]!.timeline;
}

/** The timeline whose span holds `lsn` on this path (undefined when `lsn` is past a closed path). */
export function timelineOfLsn(path: readonly TimelineSpan[], lsn: bigint): number | undefined {
  return path.find((s) => lsn >= s.beginLsn && (s.endLsn === undefined || lsn < s.endLsn))?.timeline;
}
