// One base backup's bytes: pg_basebackup's stdout -> tar reader -> compressor -> SHA-256 meter ->
// storage. The body ends only once pg_basebackup (and an external compressor) exited cleanly and the
// tar was complete; otherwise it errors, and the storage discards what it received. Whoever failed
// first is the cause named: pg_basebackup, the server's wait for the archive, the compressor, the
// tar, or the storage.
import { pipeline } from 'node:stream';
import type pg from 'pg';
import { progressReporter } from '../backup/deps.ts';
import type { PhysicalCompression } from '../catalog/layout.ts';
import { DEFAULT_SESSION } from '../db.ts';
import { asPgopsError, errorMessage, PgopsError } from '../errors.ts';
import { exitOk, HashMeter, startTool, type RunningTool, type ToolExit } from '../pgtools/tools.ts';
import { redactString } from '../redact.ts';
import { StorageError } from '../storage/errors.ts';
import type { PutResult } from '../storage/types.ts';
import { parseLsn, segmentFileNameOf } from '../wal/lsn.ts';
import type { BaseBackupDeps, BaseBackupRun, ServerFacts } from './basebackup.ts';
import { openCompressor, type Compressor } from './compression.ts';
import { BaseBackupError, BaseBackupWalError } from './errors.ts';
import { buildPgBasebackupCommand, describeBaseBackupExit } from './pg-basebackup.ts';
import { BaseTarScanner, type BaseTarFacts } from './tar-scan.ts';
import { watchServerArchiveWait, type ServerArchiveWatch } from './wal-wait.ts';

export interface Streamed {
  /** Size and SHA-256 of the stored (compressed) object. */
  bytes: number;
  sha256: string;
  facts: BaseTarFacts;
  /** When the wait for the WAL began: the server started waiting for archive_command, or pg_basebackup ended. */
  walWaitStartedAt: number;
}

export interface StreamContext {
  binDir: string;
  control: pg.Client;
  server: ServerFacts;
}

interface Flow {
  tool: RunningTool;
  scanner: BaseTarScanner;
  compressor?: Compressor;
  meter: HashMeter;
  watch: ServerArchiveWatch;
  progress: ReturnType<typeof progressReporter>;
  /** The first failure the job detected itself: pg_basebackup's exit, the compressor, the tar, the archive wait. */
  failure?: PgopsError;
  facts?: BaseTarFacts;
  compressorError?: unknown;
  exitedAt?: number;
}

const CONTENT_TYPES: Record<PhysicalCompression, string> = { gzip: 'application/gzip', zstd: 'application/zstd', lz4: 'application/x-lz4', none: 'application/x-tar' };

/** Stream the base backup to `run.keys.base`; resolves once it is stored, complete and described. */
export async function streamBaseBackup(deps: BaseBackupDeps, run: BaseBackupRun, ctx: StreamContext): Promise<Streamed> {
  const flow = startFlow(deps, run, ctx);
  let put: PutResult | undefined;
  let storageError: unknown;
  try {
    // The tar is at most about the databases' size (plus the WAL-less rest of the data directory).
    put = await deps.storage.putStream(run.keys.base, flow.meter, { contentType: CONTENT_TYPES[run.compression], sizeHint: ctx.server.sizeBytes + 64 * 1024 * 1024 });
  } catch (err) {
    storageError = err;
    // A compressor that failed on its own is a cause, not a consequence: read its status before stopping it.
    flow.compressorError = await compressorFailure(flow.compressor);
    flow.tool.kill();
    flow.compressor?.kill();
    flow.meter.destroy();
  }
  const exit = await flow.tool.done;
  await flow.watch.stop();
  await flow.compressor?.finished().catch(() => {});
  return settle(deps, ctx, flow, { exit, put, storageError });
}

/** The compressor's own failure, if it has already exited with one (never waits for a running one). */
async function compressorFailure(compressor: Compressor | undefined): Promise<unknown> {
  if (!compressor) return undefined;
  const settled = await Promise.race([compressor.finished().then(() => 'ok', (e: unknown) => e), new Promise((r) => setTimeout(() => r('running'), 50))]);
  return settled === 'ok' || settled === 'running' ? undefined : settled;
}

function startFlow(deps: BaseBackupDeps, run: BaseBackupRun, ctx: StreamContext): Flow {
  const applicationName = `pgops-basebackup-${run.id}`;
  const connectTimeoutSeconds = (deps.session ?? DEFAULT_SESSION).connectTimeoutMs / 1000;
  const cmd = buildPgBasebackupCommand(deps.target, { binDir: ctx.binDir, applicationName, label: `pgops ${run.id}`, connectTimeoutSeconds });
  // An abort stops pg_basebackup (and an external compressor): the body then errors, as for any failure.
  const tool = startTool(cmd, { stdout: 'pipe', streamBuffers: true, signal: deps.signal });
  const scanner = new BaseTarScanner();
  const compressor = openCompressor(run.compression, deps.signal, run.compressionLevel);
  const onProgress = deps.onProgress;
  const progress = progressReporter(onProgress && ((p) => onProgress({ ...p, ...(ctx.server.sizeBytes > 0 ? { total: ctx.server.sizeBytes } : {}) })));
  const meter = new HashMeter(() => progress.update(scanner.bytes), () => endOfStream(flow, ctx));
  const watch = watchServerArchiveWait(ctx.control, applicationName, {
    budgetMs: run.archiveWaitSeconds * 1000,
    pollMs: run.pollMs,
    onOverdue: (pid) => archiveOverdue(flow, run, ctx, pid),
  });
  const flow: Flow = { tool, scanner, compressor, meter, watch, progress };
  void tool.done.then(() => { flow.exitedAt ??= Date.now(); });
  // Errors surface through putStream (the meter errors or is destroyed); if the storage destroys the body, pg_basebackup gets EPIPE.
  pipeline([tool.child.stdout!, scanner, ...(compressor ? [compressor.stream] : []), meter], () => {});
  return flow;
}

/** Before the body ends: pg_basebackup and the compressor exited cleanly, and the tar said what it holds. */
async function endOfStream(flow: Flow, ctx: StreamContext): Promise<void> {
  try {
    const exit = await flow.tool.done;
    if (!exitOk(exit)) throw new BaseBackupError(describeBaseBackupExit(exit, ctx.server.role));
    await flow.compressor?.finished();
    flow.facts = flow.scanner.facts();
  } catch (err) {
    throw (flow.failure ??= asPgopsError(err));
  }
}

/** The server has waited for archive_command longer than the budget: fail, and end its walsender (it would wait forever). */
function archiveOverdue(flow: Flow, run: BaseBackupRun, ctx: StreamContext, walsenderPid: number): void {
  const start = flow.scanner.labelStart();
  const from = start ? segmentFileNameOf(start.startTimeline, parseLsn(start.startLsn), ctx.server.walSegmentSize) : 'its start';
  flow.failure ??= new BaseBackupWalError(`the WAL this backup needs (from ${from}) did not reach the archive within ${run.archiveWaitSeconds} s: `
    + 'is archive_command or wal receive running? (PostgreSQL is still waiting for archive_command to archive it; pg_stat_archiver shows its failures)');
  void ctx.control.query('SELECT pg_terminate_backend($1)', [walsenderPid]).catch(() => {});
  flow.tool.kill();
}

interface Outcome {
  exit: ToolExit;
  put?: PutResult;
  storageError: unknown;
}

function settle(deps: BaseBackupDeps, ctx: StreamContext, flow: Flow, o: Outcome): Streamed {
  if (flow.failure) throw flow.failure;
  const err = o.storageError;
  // Ours (the tar reader's): as it is; then a compressor that died on its own; then the storage.
  if (err instanceof PgopsError && !(err instanceof StorageError)) throw err;
  if (flow.compressorError !== undefined) throw asPgopsError(flow.compressorError);
  if (err !== undefined) throw new BaseBackupError(`upload to ${deps.storage.url} failed: ${redactString(errorMessage(err))}`, { cause: err });
  if (!exitOk(o.exit)) throw new BaseBackupError(describeBaseBackupExit(o.exit, ctx.server.role));
  // Defence in depth against a storage that resolves before reading its body to the end.
  if (!o.put || o.put.bytes !== flow.meter.bytes || !flow.meter.writableFinished || !flow.facts) {
    throw new BaseBackupError(`storage reported ${o.put?.bytes ?? 'no'} bytes stored, but the stream had ${flow.meter.bytes}`);
  }
  flow.progress.done(flow.scanner.bytes);
  return { bytes: flow.meter.bytes, sha256: flow.meter.digest(), facts: flow.facts, walWaitStartedAt: flow.watch.waitingSince() ?? flow.exitedAt ?? Date.now() };
}
