// The base backup's WAL must be in the archive before the backup counts: a base backup without
// its WAL restores nothing. Two waits, one budget (physical.archiveWaitSeconds): PostgreSQL itself
// waits for archive_command at the end of a `-X none` backup when archive_mode is on (unbounded:
// watched here through pg_stat_progress_basebackup), then the job polls the archive for every
// segment from the start to the stop segment (archive_command or `wal receive` stores them).
import type pg from 'pg';
import { walChecksumKey, walCompressions, walFileKey } from '../catalog/layout.ts';
import { throwIfInterrupted } from '../run-job.ts';
import type { Storage } from '../storage/types.ts';
import { parseSegmentFileName, segmentFileName } from '../wal/lsn.ts';
import { BaseBackupWalError } from './errors.ts';

/** pg_stat_progress_basebackup's phase while the server waits for archive_command (PostgreSQL 13+). */
export const SERVER_ARCHIVE_WAIT_PHASE = 'waiting for wal archiving to finish';

export interface ServerArchiveWatch {
  /** When the server was first seen waiting for the archive (ms since the epoch). */
  waitingSince(): number | undefined;
  /** Stop polling; resolves once no query of the watch is running on the session. */
  stop(): Promise<void>;
}

export interface WatchOptions {
  budgetMs: number;
  pollMs: number;
  now?: () => number;
  /** Called once when the server has waited longer than the budget, with its walsender's pid. */
  onOverdue: (walsenderPid: number) => void;
}

/** Poll the phase of pg_basebackup's walsender (found by its application_name) on `client`. */
export function watchServerArchiveWait(client: pg.ClientBase, applicationName: string, o: WatchOptions): ServerArchiveWatch {
  const now = o.now ?? Date.now;
  let since: number | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inflight: Promise<void> = Promise.resolve();
  const poll = async (): Promise<void> => {
    const r = await client.query<{ pid: number; phase: string }>(
      'SELECT p.pid, p.phase FROM pg_stat_progress_basebackup p JOIN pg_stat_activity a ON a.pid = p.pid WHERE a.application_name = $1',
      [applicationName],
    ).catch(() => undefined);
    const row = r?.rows[0];
    if (row?.phase !== SERVER_ARCHIVE_WAIT_PHASE) return;
    since ??= now();
    if (now() - since < o.budgetMs) return;
    stopped = true;
    o.onOverdue(row.pid);
  };
  const tick = (): void => {
    if (stopped) return;
    inflight = poll().finally(() => { if (!stopped) timer = setTimeout(tick, o.pollMs); });
  };
  timer = setTimeout(tick, o.pollMs);
  return {
    waitingSince: () => since,
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await inflight;
    },
  };
}

export interface ArchivedRange {
  timeline: number;
  startSegment: string;
  stopSegment: string;
  walSegmentSize: number;
}

/** Every segment name from the start to the stop segment, in order. */
export function segmentsOf(range: ArchivedRange): string[] {
  const start = parseSegmentFileName(range.startSegment, range.walSegmentSize);
  const stop = parseSegmentFileName(range.stopSegment, range.walSegmentSize);
  if (!start || !stop || stop.segno < start.segno) throw new BaseBackupWalError(`not a WAL range: ${range.startSegment}..${range.stopSegment}`);
  const names: string[] = [];
  for (let segno = start.segno; segno <= stop.segno; segno++) names.push(segmentFileName(range.timeline, segno, range.walSegmentSize));
  return names;
}

/**
 * Committed in the archive: the data object and its checksum object (wal/archive.ts writes the
 * checksum last, as the push's commit point), in any compression the archive stores segments with.
 */
export async function isSegmentArchived(storage: Storage, databaseId: string, name: string): Promise<boolean> {
  // The uncompressed key is a prefix of every stored form of the segment: one listing finds them all.
  const keys = new Set((await storage.list(walFileKey(databaseId, name, 'none'))).map((o) => o.key));
  return walCompressions(name).some((c) => {
    const key = walFileKey(databaseId, name, c);
    return keys.has(key) && keys.has(walChecksumKey(key));
  });
}

export interface ArchiveWaitOptions {
  /** Give up at this time (ms since the epoch). */
  deadline: number;
  /** The whole budget, for the message. */
  budgetSeconds: number;
  pollMs: number;
  signal?: AbortSignal;
  now?: () => number;
}

const pause = (ms: number, signal?: AbortSignal): Promise<void> => new Promise((resolve) => {
  const done = () => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve(); };
  const timer = setTimeout(done, ms);
  signal?.addEventListener('abort', done, { once: true });
});

/** Wait until every segment of `range` is committed in the archive; a BaseBackupWalError at the deadline. */
export async function waitForArchivedWal(storage: Storage, databaseId: string, range: ArchivedRange, o: ArchiveWaitOptions): Promise<{ segments: number }> {
  const now = o.now ?? Date.now;
  const names = segmentsOf(range);
  // Each segment is confirmed once; later polls start at the first one still missing.
  let confirmed = 0;
  for (;;) {
    while (confirmed < names.length && await isSegmentArchived(storage, databaseId, names[confirmed]!)) confirmed++;
    if (confirmed === names.length) return { segments: names.length };
    if (now() >= o.deadline) {
      throw new BaseBackupWalError(`the WAL this backup needs (${range.startSegment}..${range.stopSegment}) did not reach the archive within ${o.budgetSeconds} s: `
        + `is archive_command or wal receive running? (${names[confirmed]} is not in ${storage.url})`);
    }
    await pause(Math.max(10, Math.min(o.pollMs, o.deadline - now())), o.signal);
    throwIfInterrupted('basebackup', o.signal);
  }
}
