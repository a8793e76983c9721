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
import { connect, DEFAULT_SESSION, quoteIdent } from '../db.ts';
import { findPgBinDir } from '../pgtools/binaries.ts';
import { ConfigError, PgopsError, errorMessage } from '../errors.ts';
import { redactString } from '../redact.ts';
import type { Storage } from '../storage/types.ts';
import { tarDirectory } from './archive.ts';
import { BackupError, BackupLockedError } from './errors.ts';
import { backupKeys, newBackupId } from '../catalog/layout.ts';
import { normalizeBackupOptions, progressReporter, sendAlert, type BackupJobDeps, type BackupOptions } from './deps.ts';
import type { BackupManifest, TableCount } from '../catalog/manifest.ts';
import { buildPgDumpCommand, checkPgDumpVersion, describeExit, exitOk, HashMeter, majorOf, startTool, toolVersion, type PgCommand } from '../pgtools/tools.ts';
import { countRows, listUserTables, tableSelected } from './tables.ts';

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
async function streamCustomDump(cmd: PgCommand, storage: Storage, key: string, progress: ReturnType<typeof progressReporter>, sizeHint: number): Promise<Streamed> {
  const dump = startTool(cmd, { stdout: 'pipe' });
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
async function streamDirectoryDump(cmd: PgCommand, outDir: string, storage: Storage, key: string, progress: ReturnType<typeof progressReporter>): Promise<Streamed> {
  const exit = await startTool(cmd).done;
  if (!exitOk(exit)) throw new BackupError(describeExit('pg_dump', exit));
  // Exact enough for S3's part size: the files plus a header block each and the end marker.
  let sizeHint = 1024;
  for (const name of await readdir(outDir)) sizeHint += (await stat(join(outDir, name))).size + 1024;
  const source = tarDirectory(outDir);
  const meter = new HashMeter((b) => progress.update(b));
  pipeline(source, meter, () => {});
  let put: { bytes: number };
  try {
    put = await storage.putStream(key, meter, { contentType: 'application/x-tar', sizeHint });
  } catch (err) {
    source.destroy();
    throw new BackupError(`upload to ${storage.url} failed: ${redactString(errorMessage(err))}`, { cause: err });
  }
  if (put.bytes !== meter.bytes || !meter.writableFinished) {
    throw new BackupError(`storage reported ${put.bytes} bytes stored, but the archive has ${meter.bytes}`);
  }
  progress.done(meter.bytes);
  return { bytes: meter.bytes, sha256: meter.digest() };
}

/**
 * Back up the database to `<databaseId>/logical/<backupId>/dump` and write its manifest last.
 * Throws (after alerting) when anything fails; then no manifest and no dump object remain.
 */
export async function runBackup(deps: BackupJobDeps, options: BackupOptions = {}): Promise<BackupManifest> {
  const opts = normalizeBackupOptions(options);
  const clock = deps.clock ?? (() => new Date());
  const session = deps.session ?? DEFAULT_SESSION;
  const started = clock();
  const t0 = performance.now();
  const id = newBackupId(started);
  const keys = backupKeys(deps.databaseId, id);
  const log = deps.logger;
  let control: pg.Client | undefined;
  let tmp: string | undefined;
  let uploadStarted = false;
  let manifestStarted = false;
  try {
    const binDir = deps.binDir ?? findPgBinDir();
    // A separate session holds the lock and the exported snapshot for the whole dump.
    control = await connect(deps.target, session, 'pgops-backup-control');
    await acquireLock(control, deps.databaseId);
    const sv = await control.query<{ num: string; text: string; size: string }>(
      "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS text, pg_database_size(current_database()) AS size");
    const serverNum = Number(sv.rows[0]?.num);
    const pgDump = await toolVersion(join(binDir, 'pg_dump'));
    checkPgDumpVersion(pgDump, serverNum);

    // Row counts are taken at backup start, in this REPEATABLE READ transaction; pg_dump imports
    // its snapshot (--snapshot) while it stays open, so the counts match the dump exactly.
    // No timeouts here: counting a large table takes as long as it takes, as pg_dump does.
    await control.query('SET idle_in_transaction_session_timeout = 0; SET statement_timeout = 0; SET lock_timeout = 0');
    await control.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snap = await control.query<{ s: string }>('SELECT pg_export_snapshot() AS s');
    const snapshot = snap.rows[0]!.s;
    const selected = (await listUserTables(control)).filter((t) => tableSelected(t, opts.tables, opts.excludeTables));
    // Exact counts cost a scan of each table; they are what the restore test compares against.
    const tables: TableCount[] = opts.schemaOnly
      ? selected.map((t) => ({ schema: t.schema, name: t.name, rows: null }))
      : await countRows(control, selected);
    const migration = await lastMigration(control, deps.migrationsTable ?? { schema: 'public', table: 'pgmigrations' });

    const progress = progressReporter(deps.onProgress);
    const connectTimeoutSeconds = session.connectTimeoutMs / 1000;
    let streamed: Streamed;
    let format: BackupManifest['format'];
    log.info(`backing up ${deps.target.display} to ${deps.storage.url}`, { backupId: id, key: keys.dump });
    uploadStarted = true;
    if (opts.jobs > 1) {
      format = 'directory-tar';
      tmp = await mkdtemp(join(deps.tmpDir ?? tmpdir(), 'pgops-backup-'));
      const outDir = join(tmp, 'dump');
      const cmd = buildPgDumpCommand(deps.target, opts, { binDir, format: 'directory', outDir, jobs: opts.jobs, snapshot, connectTimeoutSeconds });
      streamed = await streamDirectoryDump(cmd, outDir, deps.storage, keys.dump, progress);
    } else {
      format = 'custom';
      const cmd = buildPgDumpCommand(deps.target, opts, { binDir, format: 'custom', snapshot, connectTimeoutSeconds });
      // The database size bounds the compressed dump: S3 picks parts large enough from it.
      streamed = await streamCustomDump(cmd, deps.storage, keys.dump, progress, Number(sv.rows[0]?.size ?? 0));
    }

    const completed = clock();
    const manifest: BackupManifest = {
      id,
      database: deps.databaseId,
      sourceDatabase: deps.target.database,
      kind: 'logical',
      format,
      startedAt: started.toISOString(),
      completedAt: completed.toISOString(),
      durationMs: Math.round(performance.now() - t0),
      bytes: streamed.bytes,
      sha256: streamed.sha256,
      serverVersion: sv.rows[0]?.text ?? majorOf(serverNum),
      pgDumpVersion: pgDump.text,
      options: opts,
      migration,
      key: keys.dump,
      tables,
    };
    manifestStarted = true;
    await deps.storage.putBytes(keys.manifest, `${JSON.stringify(manifest, null, 2)}\n`, { contentType: 'application/json' });
    log.info(`backup ${id} complete`, { bytes: manifest.bytes, durationMs: manifest.durationMs, sha256: manifest.sha256 });
    return manifest;
  } catch (err) {
    // Nothing half-written may remain: a dump without a manifest is not a backup.
    if (manifestStarted) await deps.storage.delete(keys.manifest).catch((e) => log.warn('could not remove the manifest', { key: keys.manifest, error: errorMessage(e) }));
    if (uploadStarted) await deps.storage.delete(keys.dump).catch((e) => log.warn('could not remove the partial dump', { key: keys.dump, error: errorMessage(e) }));
    const error = err instanceof PgopsError ? err : new BackupError(`backup failed: ${redactString(errorMessage(err))}`, { cause: err });
    if (!(error instanceof ConfigError)) {
      log.error(`backup ${id} failed: ${error.message}`);
      await sendAlert(deps, {
        severity: error instanceof BackupLockedError ? 'warning' : 'critical',
        job: 'backup',
        summary: (/^backup failed/.test(error.message) ? error.message : `backup failed: ${error.message}`).slice(0, 300),
        details: { backupId: id, storage: deps.storage.url, server: deps.target.display, error: error.message },
      });
      error.alertSent = true;
    }
    throw error;
  } finally {
    // Ending the session ends the snapshot transaction and releases the lock.
    await control?.end().catch(() => {});
    if (tmp) await rm(tmp, { recursive: true, force: true }).catch(() => {});
  }
}
