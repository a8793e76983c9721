// The backup job: pg_dump streamed into storage with its SHA-256 and size computed on the way,
// the manifest written last. A dump that failed in any way (pg_dump's exit code or signal, the
// storage, the connection) is never stored as a success: the body stream errors before it ends,
// the partial object is deleted, no manifest is written and an alert names the cause.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream';
import type pg from 'pg';
import { acquireAdvisoryLock, advisoryLockKey, describeHolder } from '../advisory-lock.ts';
import { connect, DEFAULT_SESSION, quoteIdent, type DbSessionOptions } from '../db.ts';
import { findPgBinDir } from '../pgtools/binaries.ts';
import { errorMessage } from '../errors.ts';
import { redactString } from '../redact.ts';
import { interruptionOr, runJob, throwIfInterrupted } from '../run-job.ts';
import type { Storage } from '../storage/types.ts';
import { tarDirectory } from './archive.ts';
import { BackupError, BackupLockedError } from './errors.ts';
import { backupKeys, newBackupId } from '../catalog/layout.ts';
import { jobReporting, normalizeBackupOptions, progressReporter, type BackupJobDeps, type BackupOptions } from './deps.ts';
import type { BackupManifest, NormalizedBackupOptions, TableCount } from '../catalog/manifest.ts';
import { contentOfOptions } from '../catalog/manifest.ts';
import { buildPgDumpCommand, checkPgDumpVersion, describeExit, exitOk, HashMeter, majorOf, startTool, toolVersion, type PgCommand } from '../pgtools/tools.ts';
import { countRows, estimateRows, listUserTables, tableSelected } from './tables.ts';
import { compressionOf, pgDumpCompressArg } from '../pgtools/compression.ts';

/** One backup at a time per database: a session advisory lock on this key. */
export function backupLockKey(databaseId: string): bigint {
  return advisoryLockKey(`pgops:backup:${databaseId}`);
}

async function acquireLock(client: pg.Client, databaseId: string): Promise<void> {
  await acquireAdvisoryLock(client, backupLockKey(databaseId), {
    waitSeconds: 0,
    // Name the holder so the operator can find it.
    timeoutError: (h) => new BackupLockedError(`another backup of database "${databaseId}" is already running${h ? ` (held by ${describeHolder(h)})` : ''}: try again when it has finished`),
  });
}

async function lastMigration(client: pg.Client, table: { schema: string; table: string }): Promise<string | null> {
  const qualified = `${quoteIdent(table.schema)}.${quoteIdent(table.table)}`;
  const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [qualified]);
  if (exists.rows[0]?.t == null) return null;
  const r = await client.query<{ name: string }>(`SELECT name FROM ${qualified} ORDER BY run_on DESC, id DESC LIMIT 1`);
  return r.rows[0]?.name ?? null;
}

interface Streamed {
  bytes: number;
  sha256: string;
}

/** Custom format: pg_dump's stdout -> HashMeter -> storage, never touching local disk. */
async function streamCustomDump(cmd: PgCommand, storage: Storage, key: string, progress: ReturnType<typeof progressReporter>, sizeHint: number, signal?: AbortSignal): Promise<Streamed> {
  // An abort stops pg_dump: the body then errors and the storage discards it, as for any failed dump.
  const dump = startTool(cmd, { stdout: 'pipe', streamBuffers: true, signal });
  // The body ends only once pg_dump has exited cleanly; otherwise it errors, and the storage
  // (S3 multipart or a temporary file) discards what it received.
  let dumpFailure: BackupError | undefined;
  const meter = new HashMeter((b) => progress.update(b), async () => {
    const exit = await dump.done;
    if (!exitOk(exit)) throw (dumpFailure = new BackupError(describeExit('pg_dump', exit)));
  });
  // Errors surface through putStream; if the storage destroys the body, pg_dump gets EPIPE.
  pipeline(dump.child.stdout!, meter, () => {});
  let storageError: unknown;
  let put: { bytes: number } | undefined;
  try {
    put = await storage.putStream(key, meter, { contentType: 'application/octet-stream', sizeHint });
  } catch (err) {
    storageError = err;
    dump.kill();
    meter.destroy();
  }
  const exit = await dump.done;
  // Whoever failed first is the cause: pg_dump (its failure errored the body) or the storage
  // (pg_dump then only died of EPIPE or our SIGTERM).
  if (dumpFailure) throw dumpFailure;
  if (storageError !== undefined) throw new BackupError(`upload to ${storage.url} failed: ${redactString(errorMessage(storageError))}`, { cause: storageError });
  if (!exitOk(exit)) throw new BackupError(describeExit('pg_dump', exit));
  // Defence in depth against a storage that resolves before reading its body to the end.
  if (!put || put.bytes !== meter.bytes || !meter.writableFinished) {
    throw new BackupError(`storage reported ${put?.bytes ?? 'no'} bytes stored, but pg_dump produced ${meter.bytes}`);
  }
  progress.done(meter.bytes);
  return { bytes: meter.bytes, sha256: meter.digest() };
}

/** Directory format (parallel dump): pg_dump -Fd -j N into a temp dir, then a tar of it through the same meter. */
async function streamDirectoryDump(cmd: PgCommand, outDir: string, storage: Storage, key: string, progress: ReturnType<typeof progressReporter>, signal?: AbortSignal): Promise<Streamed> {
  const exit = await startTool(cmd, { signal }).done;
  if (!exitOk(exit)) throw new BackupError(describeExit('pg_dump', exit));
  throwIfInterrupted('backup', signal);
  // Exact enough for S3's part size: the files plus a header block each and the end marker.
  let sizeHint = 1024;
  for (const name of await readdir(outDir)) sizeHint += (await stat(join(outDir, name))).size + 1024;
  const source = tarDirectory(outDir);
  const meter = new HashMeter((b) => progress.update(b));
  pipeline(source, meter, () => {});
  const stopUpload = () => meter.destroy(new Error('interrupted'));
  signal?.addEventListener('abort', stopUpload, { once: true });
  let put: { bytes: number };
  try {
    put = await storage.putStream(key, meter, { contentType: 'application/x-tar', sizeHint });
  } catch (err) {
    source.destroy();
    throw new BackupError(`upload to ${storage.url} failed: ${redactString(errorMessage(err))}`, { cause: err });
  } finally {
    signal?.removeEventListener('abort', stopUpload);
  }
  if (put.bytes !== meter.bytes || !meter.writableFinished) {
    throw new BackupError(`storage reported ${put.bytes} bytes stored, but the archive has ${meter.bytes}`);
  }
  progress.done(meter.bytes);
  return { bytes: meter.bytes, sha256: meter.digest() };
}

interface BackupRun {
  id: string;
  keys: ReturnType<typeof backupKeys>;
  started: Date;
  t0: number;
}

interface ServerFacts {
  num: number;
  text: string;
  /** pg_database_size: bounds the compressed dump, so S3 picks parts large enough from it. */
  bytes: number;
}

/** What the dump must match: the exported snapshot, the tables it holds and the last migration. */
interface SnapshotFacts {
  snapshot: string;
  tables: Array<{ schema: string; name: string }>;
  migration: string | null;
}

/**
 * Back up the database to `<databaseId>/logical/<backupId>/dump` and write its manifest last.
 * Throws (after alerting) when anything fails; then no manifest and no dump object remain.
 */
export async function runBackup(deps: BackupJobDeps, options: BackupOptions = {}): Promise<BackupManifest> {
  const started = (deps.clock ?? (() => new Date()))();
  const id = newBackupId(started);
  const run: BackupRun = { id, keys: backupKeys(deps.databaseId, id), started, t0: performance.now() };
  return runJob(jobReporting(deps), {
    job: 'backup',
    wrap: (m, cause) => new BackupError(`backup failed: ${redactString(m)}`, { cause }),
    summary: (e) => (/^backup (failed|interrupted)/.test(e.message) ? e.message : `backup failed: ${e.message}`),
    details: (e) => ({ backupId: id, storage: deps.storage.url, server: deps.target.display, error: e.message }),
  }, async () => backupOnce(deps, normalizeBackupOptions(options, deps.backupDefaults), run));
}

async function backupOnce(deps: BackupJobDeps, opts: NormalizedBackupOptions, run: BackupRun): Promise<BackupManifest> {
  const session = deps.session ?? DEFAULT_SESSION;
  const written = { dump: false, manifest: false };
  let control: pg.Client | undefined;
  let tmp: string | undefined;
  // An interruption while counting rows ends the control session, which cancels the count.
  const endControl = () => { void control?.end().catch(() => {}); };
  deps.signal?.addEventListener('abort', endControl, { once: true });
  try {
    const binDir = deps.binDir ?? findPgBinDir();
    throwIfInterrupted('backup', deps.signal);
    // A separate session holds the lock and the exported snapshot for the whole dump.
    control = await connect(deps.target, session, 'pgops-backup-control');
    await acquireLock(control, deps.databaseId);
    const server = await readServerFacts(control);
    const pgDump = await toolVersion(join(binDir, 'pg_dump'));
    checkPgDumpVersion(pgDump, server.num);
    const compress = pgDumpCompressArg(compressionOf(opts.compression ?? 'gzip:6'), pgDump);
    const facts = await takeSnapshot(control, deps, opts);
    throwIfInterrupted('backup', deps.signal);
    deps.logger.info(`backing up ${deps.target.display} to ${deps.storage.url}`, { backupId: run.id, key: run.keys.dump });
    // The counts run in the same snapshot while pg_dump dumps it, not before: the dump waits for nothing.
    const counting = countTables(control, opts, facts.tables);
    counting.catch(() => {}); // awaited below; a failed dump ends the session and so the counting
    written.dump = true;
    if (opts.jobs > 1) tmp = await mkdtemp(join(deps.tmpDir ?? tmpdir(), 'pgops-backup-'));
    const dumped = await dumpToStorage(deps, opts, { binDir, snapshot: facts.snapshot, tmp, key: run.keys.dump, sizeHint: server.bytes, session, compress });
    const tables = await counting;
    const manifest = buildManifest(deps, opts, run, { server, pgDump: pgDump.text, migration: facts.migration, tables, ...dumped });
    // The last moment to stop: once the manifest is written, the backup exists.
    throwIfInterrupted('backup', deps.signal);
    written.manifest = true;
    await deps.storage.putBytes(run.keys.manifest, `${JSON.stringify(manifest, null, 2)}\n`, { contentType: 'application/json' });
    deps.logger.info(`backup ${run.id} complete`, { bytes: manifest.bytes, durationMs: manifest.durationMs, sha256: manifest.sha256 });
    return manifest;
  } catch (err) {
    await removePartialBackup(deps, run.keys, written);
    throw interruptionOr('backup', deps.signal, err);
  } finally {
    deps.signal?.removeEventListener('abort', endControl);
    // Ending the session ends the snapshot transaction and releases the lock.
    await control?.end().catch(() => {});
    if (tmp) await rm(tmp, { recursive: true, force: true }).catch(() => {});
  }
}

async function readServerFacts(control: pg.Client): Promise<ServerFacts> {
  const sv = await control.query<{ num: string; text: string; size: string }>(
    "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS text, pg_database_size(current_database()) AS size");
  const num = Number(sv.rows[0]?.num);
  return { num, text: sv.rows[0]?.text ?? majorOf(num), bytes: Number(sv.rows[0]?.size ?? 0) };
}

/**
 * A REPEATABLE READ transaction whose snapshot pg_dump imports (--snapshot) and the row counts are
 * taken in: while it stays open, the counts match the dump exactly.
 */
async function takeSnapshot(control: pg.Client, deps: BackupJobDeps, opts: NormalizedBackupOptions): Promise<SnapshotFacts> {
  // No timeouts here: counting a large table takes as long as it takes, as pg_dump does.
  await control.query('SET idle_in_transaction_session_timeout = 0; SET statement_timeout = 0; SET lock_timeout = 0');
  await control.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  const snap = await control.query<{ s: string }>('SELECT pg_export_snapshot() AS s');
  const tables = (await listUserTables(control)).filter((t) => tableSelected(t, opts.tables, opts.excludeTables));
  const migration = await lastMigration(control, deps.migrationsTable ?? { schema: 'public', table: 'pgmigrations' });
  return { snapshot: snap.rows[0]!.s, tables, migration };
}

/** Exact counts cost a second full read of every table; they are what the restore test compares against. */
async function countTables(control: pg.Client, opts: NormalizedBackupOptions, tables: SnapshotFacts['tables']): Promise<TableCount[]> {
  if (opts.schemaOnly) return tables.map((t) => ({ schema: t.schema, name: t.name, rows: null }));
  return opts.rowCounts === 'estimate' ? estimateRows(control, tables) : countRows(control, tables);
}

interface DumpContext {
  binDir: string;
  snapshot: string;
  /** A local scratch directory: only for the directory format (--jobs). */
  tmp?: string;
  key: string;
  sizeHint: number;
  session: DbSessionOptions;
  /** pg_dump's --compress argument. */
  compress: string;
}

async function dumpToStorage(deps: BackupJobDeps, opts: NormalizedBackupOptions, ctx: DumpContext): Promise<Streamed & { format: BackupManifest['format'] }> {
  const progress = progressReporter(deps.onProgress);
  const connectTimeoutSeconds = ctx.session.connectTimeoutMs / 1000;
  if (ctx.tmp) {
    const outDir = join(ctx.tmp, 'dump');
    const cmd = buildPgDumpCommand(deps.target, opts, { binDir: ctx.binDir, format: 'directory', outDir, jobs: opts.jobs, snapshot: ctx.snapshot, connectTimeoutSeconds, compress: ctx.compress });
    return { format: 'directory-tar', ...(await streamDirectoryDump(cmd, outDir, deps.storage, ctx.key, progress, deps.signal)) };
  }
  const cmd = buildPgDumpCommand(deps.target, opts, { binDir: ctx.binDir, format: 'custom', snapshot: ctx.snapshot, connectTimeoutSeconds, compress: ctx.compress });
  return { format: 'custom', ...(await streamCustomDump(cmd, deps.storage, ctx.key, progress, ctx.sizeHint, deps.signal)) };
}

function buildManifest(deps: BackupJobDeps, opts: NormalizedBackupOptions, run: BackupRun, d: { server: ServerFacts; pgDump: string; migration: string | null; tables: TableCount[]; format: BackupManifest['format'] } & Streamed): BackupManifest {
  const completed = (deps.clock ?? (() => new Date()))();
  return {
    id: run.id,
    database: deps.databaseId,
    sourceDatabase: deps.target.database,
    kind: contentOfOptions(opts),
    format: d.format,
    startedAt: run.started.toISOString(),
    completedAt: completed.toISOString(),
    durationMs: Math.round(performance.now() - run.t0),
    bytes: d.bytes,
    sha256: d.sha256,
    serverVersion: d.server.text,
    pgDumpVersion: d.pgDump,
    options: opts,
    migration: d.migration,
    key: run.keys.dump,
    tables: d.tables,
  };
}

/** Nothing half-written may remain: a dump without a manifest is not a backup. */
async function removePartialBackup(deps: BackupJobDeps, keys: BackupRun['keys'], written: { dump: boolean; manifest: boolean }): Promise<void> {
  const log = deps.logger;
  if (written.manifest) await deps.storage.delete(keys.manifest).catch((e) => log.warn('could not remove the manifest', { key: keys.manifest, error: errorMessage(e) }));
  if (written.dump) await deps.storage.delete(keys.dump).catch((e) => log.warn('could not remove the partial dump', { key: keys.dump, error: errorMessage(e) }));
}
