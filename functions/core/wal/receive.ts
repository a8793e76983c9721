// `pgops wal receive`: stream WAL with pg_receivewal and archive it as `wal push` does, for a
// server with no agent on its host (a Fargate service). The replication slot is the durable state:
// the server keeps all WAL after its restart_lsn, the receiver moves it only past segments that are
// archived and verified, and every start resumes there with an empty spool. A kill at any moment,
// the spool lost with its container, leaves no gap: what was not archived is streamed again.
import { tmpdir } from 'node:os';
import type { DbSessionOptions, DbTarget } from '../db.ts';
import { errorMessage } from '../errors.ts';
import { runJob, type JobReporting } from '../run-job.ts';
import type { Storage } from '../storage/types.ts';
import { readWalFile } from './archive.ts';
import { WalCorruptError, WalReceiveError } from './errors.ts';
import { parseSegmentFileName, segmentFileName, segmentNumberOf, segmentStartLsn } from './lsn.ts';
import { checkSlotName, defaultSlotName, openSlotSession, type SlotSession } from './receive-slot.ts';
import { createSpool, removeSpool, seedSpool } from './receive-spool.ts';
import { startPgReceivewal, stoppedCleanly, type WalStream } from './receive-stream.ts';
import { SpoolUploader } from './receive-upload.ts';
import { describeExit, type ToolExit } from '../pgtools/tools.ts';

export interface WalReceiveDeps {
  target: DbTarget;
  storage: Storage;
  databaseId: string;
  reporting: JobReporting;
  binDir: string;
  session?: DbSessionOptions;
  /** Aborted (SIGTERM) to stop: pg_receivewal stops, everything it wrote is archived, the job resolves. */
  signal?: AbortSignal;
  /** Parent of the spool directory (a Fargate task's ephemeral volume); default os.tmpdir(). */
  tmpDir?: string;
  /** How often the growing partial is archived (default 5 s) and the spool looked at (default 1 s). */
  partialIntervalMs?: number;
  pollMs?: number;
  /** Upload retries (receive-upload.ts) and the wait for another receiver of the slot (receive-slot.ts). */
  attempts?: number;
  backoffMs?: number;
  sleep?: (ms: number) => Promise<void>;
  lockWaitSeconds?: number;
}

export interface WalReceiveOptions {
  /** Default `pgops_<database id>`. */
  slot?: string;
  createSlot?: boolean;
  /** pg_receivewal --synchronous (default true): flush and report each write at once. */
  synchronous?: boolean;
}

export interface WalReceiveResult {
  slot: string;
  segmentsUploaded: number;
  partialUploads: number;
  lastSegment: string | null;
  /** The segment streaming resumed at: the one holding the slot's restart_lsn. */
  resumedFrom: string | null;
  stoppedBy: 'signal';
}

/** Stream and archive until the signal; any failure (pg_receivewal ending, an upload that keeps failing, a conflict) is an error. */
export function receiveWal(deps: WalReceiveDeps, options: WalReceiveOptions = {}): Promise<WalReceiveResult> {
  return runJob(deps.reporting, { job: 'wal receive', wrap: (m, cause) => new WalReceiveError(`wal receive failed: ${m}`, { cause }) }, async () => {
    const slot = checkSlotName(options.slot ?? defaultSlotName(deps.databaseId));
    const session = await openSlotSession({ ...deps, logger: deps.reporting.logger }, slot, options.createSlot ?? false);
    try {
      if (deps.signal?.aborted) return { slot, segmentsUploaded: 0, partialUploads: 0, lastSegment: null, resumedFrom: null, stoppedBy: 'signal' };
      return await streamFromSlot(deps, session, options.synchronous ?? true);
    } finally {
      await session.close();
    }
  });
}

async function streamFromSlot(deps: WalReceiveDeps, session: SlotSession, synchronous: boolean): Promise<WalReceiveResult> {
  const logger = deps.reporting.logger;
  const spool = await createSpool(deps.tmpDir ?? tmpdir());
  const uploader = new SpoolUploader({ ...deps, logger, segmentSize: session.segmentSize }, spool, async (segment) => {
    const segno = parseSegmentFileName(segment, session.segmentSize)!.segno;
    await session.advanceTo(segmentStartLsn(segno + 1n, session.segmentSize));
  });
  let archivedAll = false;
  try {
    const resumedFrom = await seedFromSlot(deps, session, spool, uploader);
    logger.info(`wal receive: streaming into ${spool}, resuming at ${resumedFrom} (slot ${session.slot})`);
    const stream = startPgReceivewal({ ...deps, logger }, spool, synchronous);
    const outcome = await pumpUntilStopped(deps, stream, uploader);
    if (outcome !== 'signal') {
      await archiveRest(uploader).catch((err: unknown) => logger.error(`wal receive: archiving what was received failed too: ${errorMessage(err)}`));
      throw new WalReceiveError(`pg_receivewal stopped streaming: ${describeExit('pg_receivewal', outcome)}`);
    }
    await archiveRest(uploader);
    archivedAll = true;
    const { segmentsUploaded, partialUploads, lastSegment } = uploader;
    return { slot: session.slot, segmentsUploaded, partialUploads, lastSegment, resumedFrom, stoppedBy: 'signal' };
  } finally {
    if (archivedAll) await removeSpool(spool);
    else logger.warn(`wal receive: kept ${spool} (files not archived yet; the slot keeps their WAL on the server too)`);
  }
}

/**
 * Start where the slot says: the segment holding its restart_lsn, seeded with the archived
 * partial of that segment when there is one (a verified whole segment; otherwise an empty file).
 */
async function seedFromSlot(deps: WalReceiveDeps, session: SlotSession, spool: string, uploader: SpoolUploader): Promise<string> {
  const segment = segmentFileName(session.timeline, segmentNumberOf(session.restartLsn, session.segmentSize), session.segmentSize);
  let archived: Buffer | undefined;
  try {
    archived = (await readWalFile(deps.storage, deps.databaseId, `${segment}.partial`))?.content;
  } catch (err) {
    if (!(err instanceof WalCorruptError)) throw err;
    deps.reporting.logger.warn(`wal receive: the archived ${segment}.partial does not verify; it will be replaced: ${err.message}`);
  }
  const usable = archived?.length === session.segmentSize ? archived : undefined;
  const name = await seedSpool(spool, segment, usable);
  if (usable) uploader.knownPartial(name, usable);
  return segment;
}

/** Archive on the way until the signal (resolves 'signal') or pg_receivewal's exit (resolves it). */
async function pumpUntilStopped(deps: WalReceiveDeps, stream: WalStream, uploader: SpoolUploader): Promise<'signal' | ToolExit> {
  let lastPartial = Date.now();
  // One listener for the whole run (not one per pause: the receiver runs for months).
  let wake: (() => void) | undefined;
  void stream.done.then(() => wake?.());
  try {
    for (;;) {
      await uploader.uploadFinished();
      if (Date.now() - lastPartial >= (deps.partialIntervalMs ?? 5000)) {
        await uploader.uploadPartials();
        lastPartial = Date.now();
      }
      const exit = stream.exited();
      if (exit && !(await stopSignalFollows(deps.signal))) return exit;
      if (deps.signal?.aborted) break;
      await pause(deps.pollMs ?? 1000, deps.signal, (fn) => { wake = fn; });
    }
  } catch (err) {
    await stream.stop();
    throw err;
  }
  const exit = await stream.stop();
  if (!stoppedCleanly(exit)) deps.reporting.logger.warn(`wal receive: ${describeExit('pg_receivewal', exit)} while stopping`);
  return 'signal';
}

/**
 * A terminal's Ctrl-C, or a kill of the process group, reaches pg_receivewal and us together: its
 * exit may be seen first. Our own stop signal arriving within a second makes that exit a stop.
 */
async function stopSignalFollows(signal: AbortSignal | undefined): Promise<boolean> {
  if (signal && !signal.aborted) await pause(1000, signal, () => undefined);
  return signal?.aborted ?? false;
}

/** Everything pg_receivewal left: finished files first, then the partial. */
async function archiveRest(uploader: SpoolUploader): Promise<void> {
  await uploader.uploadFinished();
  await uploader.uploadPartials();
}

/** Wait `ms`, or less if the signal aborts or the waker registered through `onWake` is called. */
function pause(ms: number, signal: AbortSignal | undefined, onWake: (wake: (() => void) | undefined) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      onWake(undefined);
      resolve();
    };
    const timer = setTimeout(finish, ms);
    signal?.addEventListener('abort', finish, { once: true });
    onWake(finish);
  });
}
