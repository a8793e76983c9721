// The restore job. A whole custom-format dump streams from storage into pg_restore in one
// transaction while its SHA-256 is computed; its tail is held back until the hash matches the
// manifest, so a corrupted dump is never committed (archive.ts VerifiedTail). --table, --jobs, a
// directory-format dump and a dry run fetch it to a temporary file first and refuse a mismatch
// before touching the target. A database this job created and failed to fill is dropped again;
// temporary files always go.
import { createWriteStream } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { acquireAdvisoryLock, advisoryLockKey, describeHolder } from '../advisory-lock.ts';
import { connect, DEFAULT_SESSION, withClient, withDatabase, type DbSessionOptions } from '../db.ts';
import { findPgBinDir } from '../pgtools/binaries.ts';
import { UsageError, errorMessage } from '../errors.ts';
import { redactString } from '../redact.ts';
import { interruptionOr, runJob, throwIfInterrupted } from '../run-job.ts';
import { checkDatabaseName, clearRestoreMark, createDatabase, databaseExists, dropDatabase, maintenanceTarget, markRestoreInProgress, RESTORE_CLIENT, restoreMarkOf, userObjectsIn } from './databases.ts';
import { readProblems, readStoredObject, tarExtractSink, VerifiedTail, type ReadResult } from './archive.ts';
import { resolveBackup } from '../catalog/catalog.ts';
import { RestoreBlockedError, RestoreError, RestoreRefusedError, VerifyError } from './errors.ts';
import { jobReporting, progressReporter, type BackupJobDeps } from './deps.ts';
import type { BackupManifest } from '../catalog/manifest.ts';
import { buildPgRestoreCommand, ChildStdinSink, describeExit, exitOk, runTool, startTool, type PgCommand, type ToolExit } from '../pgtools/tools.ts';
import { pipeline } from 'node:stream/promises';
import { StorageNotFoundError } from '../storage/errors.ts';
import { describeHolders, isLockTimeout, lockHolders, watchLockWaits, type LockWait } from './blockers.ts';
import { makeScratchDir, sweepStaleScratch } from './scratch.ts';
import { describeUserObjects } from './tables.ts';
import { describeEntry, listFile, matchTables, parseToc, selectTableEntries, tocTables, type TocEntry } from './toc.ts';

export interface RestoreOptions {
  targetDb?: string;
  create?: boolean;
  clean?: boolean;
  tables?: string[];
  noOwner?: boolean;
  jobs?: number;
  dryRun?: boolean;
}

export interface RestorePlan {
  /** TOC entries restored, by type (from `pg_restore --list`, with the table selection applied). */
  entries: Record<string, number>;
  /** schema.name of every table restored. */
  tables: string[];
  steps: string[];
  /** With --table: every TOC entry restored ("INDEX public users_email_idx"), in order. */
  restored?: string[];
  /** With --table: entries of the chosen tables left out, and why (a foreign key to a table not restored). */
  skipped?: string[];
}

export interface RestoreResult {
  backupId: string;
  targetDb: string;
  durationMs: number;
  /** Number of tables restored (or that would be, in a dry run). */
  tables: number;
  dryRun: boolean;
  created: boolean;
  plan?: RestorePlan;
}

/** Summarize `pg_restore --list`: entries by type, and the tables (schema.name). */
export function parseRestoreList(listing: string): Omit<RestorePlan, 'steps'> {
  return summarize(parseToc(listing));
}

function summarize(toc: TocEntry[]): Omit<RestorePlan, 'steps'> {
  const entries: Record<string, number> = {};
  for (const e of toc) entries[e.type] = (entries[e.type] ?? 0) + 1;
  return { entries, tables: tocTables(toc).map((t) => `${t.schema}.${t.name}`) };
}

function checkOptions(o: RestoreOptions): void {
  const issues: string[] = [];
  const jobs = o.jobs ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) issues.push(`--jobs must be a whole number from 1 to 64 (got ${String(o.jobs)})`);
  for (const t of o.tables ?? []) if (t.trim() === '' || t.includes('\0')) issues.push(`--table ${JSON.stringify(t)} is empty or contains NUL`);
  if (issues.length > 0) throw new UsageError('invalid restore options', issues);
}

export async function runRestore(deps: BackupJobDeps, ref: string, options: RestoreOptions = {}): Promise<RestoreResult> {
  const t0 = performance.now();
  let backupId = ref;
  const targetDb = options.targetDb ?? deps.target.database;
  return runJob(jobReporting(deps), {
    job: 'restore',
    silent: options.dryRun,
    wrap: (m, cause) => new RestoreError(`restore of backup ${backupId} failed: ${redactString(m)}`, { cause }),
    details: () => ({ backupId, targetDb, storage: deps.storage.url, server: deps.target.display }),
  }, async () => {
    checkOptions(options);
    if (options.targetDb !== undefined) checkDatabaseName(options.targetDb);
    const manifest = await resolveBackup(deps.storage, deps.databaseId, ref, deps.logger);
    backupId = manifest.id;
    return restoreManifest(deps, manifest, { ...options, targetDb }, t0);
  });
}

interface Fetched {
  format: 'custom' | 'directory';
  /** The dump file or directory on local disk; undefined: streamed from storage into pg_restore. */
  input?: string;
  read: ReadResult;
}

/** A whole custom-format dump restores straight from storage: pg_restore needs a file only to seek (--table, --jobs). */
function streams(manifest: BackupManifest, options: Target): boolean {
  return manifest.format === 'custom' && !options.tables?.length && (options.jobs ?? 1) === 1 && !options.dryRun;
}

/** What this restore restores: everything, or (--table) a TOC list file's entries. */
interface Selection {
  summary: Omit<RestorePlan, 'steps'>;
  /** The -L list file's contents; undefined: the whole dump. */
  list?: string;
}

type Target = RestoreOptions & { targetDb: string };

async function restoreManifest(deps: BackupJobDeps, manifest: BackupManifest, options: Target, t0: number): Promise<RestoreResult> {
  const session = deps.session ?? DEFAULT_SESSION;
  const { targetDb } = options;
  await sweepStaleScratch(deps.tmpDir, deps.logger);
  const tmp = await makeScratchDir(deps.tmpDir, 'restore');
  let lock: pg.Client | undefined;
  try {
    const binDir = deps.binDir ?? findPgBinDir();
    if (streams(manifest, options)) {
      lock = await lockRestoreTarget(deps, session, targetDb);
      await checkTarget(deps, session, options);
      throwIfInterrupted('restore', deps.signal);
      const tables = manifest.tables.map((t) => `${t.schema}.${t.name}`);
      const created = await restoreInto(deps, session, manifest, { format: 'custom', binDir, tables }, options);
      return finished(deps, manifest, { targetDb, tables: tables.length, created, t0 });
    }
    // 1. Fetch and check, and choose the entries, before anything touches the target.
    const fetched = await fetchAndCheck(deps, manifest, tmp);
    const selection = await selectEntries(deps, manifest, { ...fetched, binDir }, options);
    // 2. The target, one restore at a time: --create only for a new database; an existing one must be empty unless --clean.
    lock = options.dryRun ? undefined : await lockRestoreTarget(deps, session, targetDb);
    await checkTarget(deps, session, options);
    const steps = planSteps(manifest, fetched.read, selection.summary, options);
    const { tables } = selection.summary;
    if (options.dryRun) {
      deps.logger.info(`dry run: nothing changed; the plan:\n  ${steps.join('\n  ')}`, { entries: selection.summary.entries });
      return { backupId: manifest.id, targetDb, durationMs: Math.round(performance.now() - t0), tables: tables.length, dryRun: true, created: false, plan: { ...selection.summary, steps } };
    }
    // 3. Restore.
    const useList = selection.list === undefined ? undefined : join(tmp, 'restore.list');
    if (useList) await writeFile(useList, selection.list!, { mode: 0o600 });
    throwIfInterrupted('restore', deps.signal);
    const created = await restoreInto(deps, session, manifest, { ...fetched, binDir, tables, useList }, options);
    return finished(deps, manifest, { targetDb, tables: tables.length, created, t0 });
  } catch (err) {
    throw interruptionOr('restore', deps.signal, err);
  } finally {
    await lock?.end().catch(() => {});
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
  }
}

function finished(deps: BackupJobDeps, manifest: BackupManifest, r: { targetDb: string; tables: number; created: boolean; t0: number }): RestoreResult {
  const durationMs = Math.round(performance.now() - r.t0);
  deps.logger.info(`restored backup ${manifest.id} into ${r.targetDb}`, { tables: r.tables, durationMs });
  return { backupId: manifest.id, targetDb: r.targetDb, durationMs, tables: r.tables, dryRun: false, created: r.created };
}

/** The refusal of a dump that does not match its manifest. */
function mismatchError(manifest: BackupManifest, problems: string[], committed: 'before' | 'streamed'): VerifyError {
  const then = committed === 'streamed' ? ': pg_restore was stopped before the end of the archive, nothing was committed' : '';
  return new VerifyError(`refusing to restore backup ${manifest.id}: it does not match its manifest (${problems.join('; ')})${then}`, problems);
}

/** A session holding the target's restore lock for the whole restore: a second restore into it is refused. */
async function lockRestoreTarget(deps: BackupJobDeps, session: DbSessionOptions, targetDb: string): Promise<pg.Client> {
  // Advisory locks belong to a database: every restore of `targetDb` takes it in the same maintenance database.
  const client = await connect(maintenanceTarget(deps.target, targetDb), session, RESTORE_CLIENT.applicationName);
  try {
    await acquireAdvisoryLock(client, advisoryLockKey(`pgops:restore:${targetDb}`), {
      waitSeconds: 0,
      timeoutError: (h) => new RestoreRefusedError(`another restore into database "${targetDb}" is running (${describeHolder(h)}): try again when it has finished`),
    });
    return client;
  } catch (err) {
    await client.end().catch(() => {});
    throw err;
  }
}

/** Fetch the dump to local disk while re-computing its SHA-256; refuse it if it does not match its manifest. */
async function fetchAndCheck(deps: BackupJobDeps, manifest: BackupManifest, tmp: string): Promise<Fetched> {
  const progress = progressReporter(deps.onProgress);
  const input = join(tmp, 'dump');
  const format = manifest.format === 'custom' ? 'custom' : 'directory';
  deps.logger.info(`fetching backup ${manifest.id}`, { key: manifest.key, bytes: manifest.bytes });
  const sink = format === 'custom' ? createWriteStream(input, { mode: 0o600 }) : await tarExtractSink(input);
  const read = await readStoredObject(deps.storage, manifest.key, sink, (b) => progress.update(b), deps.signal).catch((err: unknown) => {
    throw new RestoreError(`could not fetch backup ${manifest.id} from ${deps.storage.url}: ${redactString(errorMessage(err))}`, { cause: err });
  });
  progress.done(read.bytes);
  const problems = readProblems(read, manifest);
  if (problems.length > 0) throw mismatchError(manifest, problems, 'before');
  return { format, input, read };
}

/**
 * The dump's table of contents, and with --table the entries restoring those tables with what hangs
 * on them (toc.ts). A name not in the backup is refused here, before the target is touched. Without
 * --clean the target is new or empty: the schemas, functions and types the tables need come along.
 */
async function selectEntries(deps: BackupJobDeps, manifest: BackupManifest, dump: Omit<Fetched, 'read'> & { binDir: string }, options: Target): Promise<Selection> {
  if (dump.input === undefined) throw new RestoreError('selecting entries needs the dump on local disk');
  const listing = await runTool(buildPgRestoreCommand(deps.target, { binDir: dump.binDir, format: dump.format, input: dump.input, list: true, verbose: true }), deps.signal);
  if (!exitOk(listing)) throw new RestoreError(`backup ${manifest.id} cannot be read: ${describeExit('pg_restore', listing)}`);
  const toc = parseToc(listing.stdout);
  if (!options.tables?.length) return { summary: summarize(toc) };
  const tables = matchTables(options.tables, tocTables(toc), manifest.id);
  const chosen = selectTableEntries(toc, tables, { target: options.clean ? 'existing' : 'new' });
  const skipped = chosen.skipped.map((s) => `${describeEntry(s.entry)}: ${s.reason}`);
  for (const line of skipped) deps.logger.warn(`not restored: ${line}`);
  return {
    summary: { ...summarize(chosen.entries), tables: tables.map((t) => `${t.schema}.${t.name}`).sort(), restored: chosen.entries.map(describeEntry), skipped },
    list: listFile(chosen.entries),
  };
}

async function checkTarget(deps: BackupJobDeps, session: DbSessionOptions, options: Target): Promise<void> {
  const { targetDb } = options;
  await withClient(maintenanceTarget(deps.target, targetDb), session, async (c) => {
    const exists = await databaseExists(c, targetDb) && !(options.create && await reclaimInterrupted(deps, session, c, options));
    if (options.create && exists) throw new RestoreRefusedError(`database "${targetDb}" already exists: restore without --create (with --clean to replace its contents), or pick another --target-db`);
    if (!options.create && !exists) throw new RestoreRefusedError(`database "${targetDb}" does not exist: add --create to create it`);
  }, RESTORE_CLIENT);
  if (options.create || options.clean) return;
  const objects = await userObjectsIn(deps.target, session, targetDb);
  if (Object.keys(objects).length > 0) {
    throw new RestoreRefusedError(`database "${targetDb}" is not empty: add --clean to drop and recreate the backup's objects, or restore into a new database with --target-db NAME --create (it holds ${describeUserObjects(objects)})`);
  }
}

function planSteps(manifest: BackupManifest, read: ReadResult, summary: Omit<RestorePlan, 'steps'>, options: Target): string[] {
  return [
    `checked backup ${manifest.id} (${read.bytes} bytes, sha256 ${read.sha256})`,
    ...(options.create ? [`create database ${options.targetDb}`] : []),
    `pg_restore into ${options.targetDb}: ${summary.tables.length} table(s)${options.clean ? ', dropping existing objects first' : ''}${(options.jobs ?? 1) > 1 ? `, ${options.jobs} jobs` : ', in one transaction'}`,
    ...(summary.restored ?? []).map((e) => `  restore ${e}`),
    ...(summary.skipped ?? []).map((e) => `  skip ${e}`),
  ];
}

interface RestoreInput extends Omit<Fetched, 'read'> {
  binDir: string;
  /** schema.name of the tables restored: where to look for a lock's holder. */
  tables: string[];
  useList?: string;
}

/** pg_restore into the target (created first with --create, and dropped again if the restore fails). Returns whether it was created. */
/**
 * A database that a killed `restore --create` left (it still carries the in-progress mark): dropped
 * when it is empty, so the restore can create it again; true when it is gone (or, in a dry run,
 * would be). One that holds objects is refused, naming the mark: a person decides.
 */
async function reclaimInterrupted(deps: BackupJobDeps, session: DbSessionOptions, c: pg.Client, options: Target): Promise<boolean> {
  const { targetDb } = options;
  const mark = await restoreMarkOf(c, targetDb);
  if (!mark) return false;
  const objects = await userObjectsIn(deps.target, session, targetDb);
  if (Object.keys(objects).length > 0) {
    throw new RestoreRefusedError(`database "${targetDb}" was left by an interrupted restore (${mark}) and holds ${describeUserObjects(objects)}: drop it, or restore into it with --clean instead of --create`);
  }
  if (options.dryRun) {
    deps.logger.info(`dry run: database ${targetDb} was left empty by an interrupted restore (${mark}); a real run drops it and creates it again`);
    return true;
  }
  await dropDatabase(c, targetDb);
  deps.logger.warn(`dropped database ${targetDb}, left empty by an interrupted restore (${mark}); creating it again`);
  return true;
}

async function restoreInto(deps: BackupJobDeps, session: DbSessionOptions, manifest: BackupManifest, dump: RestoreInput, options: Target): Promise<boolean> {
  const { targetDb } = options;
  const maintenance = maintenanceTarget(deps.target, targetDb);
  if (options.create) {
    await withClient(maintenance, session, async (c) => {
      await createDatabase(c, targetDb);
      await markRestoreInProgress(c, targetDb, manifest.id, new Date());
    }, RESTORE_CLIENT);
  }
  try {
    deps.logger.info(`restoring backup ${manifest.id} into ${targetDb}`, { tables: dump.tables.length, jobs: options.jobs ?? 1 });
    const { exit, wait } = await runPgRestore(deps, session, manifest, dump, options);
    throwIfInterrupted('restore', deps.signal);
    if (!exitOk(exit)) throw await restoreFailure(deps, session, { manifest, tables: dump.tables, targetDb, oneTransaction: (options.jobs ?? 1) === 1, wait }, exit);
    if (options.create) await withClient(maintenance, session, (c) => clearRestoreMark(c, targetDb), RESTORE_CLIENT);
    return !!options.create;
  } catch (err) {
    if (deps.signal?.aborted) await endOrphanedSessions(deps, session, targetDb);
    if (options.create) {
      await withClient(maintenance, session, (c) => dropDatabase(c, targetDb), RESTORE_CLIENT)
        .then(() => deps.logger.info(`dropped database ${targetDb} again (it was created for this restore)`))
        .catch((e) => deps.logger.warn(`could not drop database ${targetDb} created for this restore`, { error: errorMessage(e) }));
    }
    throw err;
  }
}

/** pg_restore into the target, its lock waits bounded by the watchdog (blockers.ts). */
async function runPgRestore(deps: BackupJobDeps, session: DbSessionOptions, manifest: BackupManifest, dump: RestoreInput, options: Target): Promise<{ exit: ToolExit; wait?: LockWait }> {
  const watchdog = session.lockTimeoutMs > 0
    ? await connect(withDatabase(deps.target, options.targetDb), session, RESTORE_CLIENT.applicationName).then((c) => ({ c, w: watchLockWaits(c, { applicationName: RESTORE_CLIENT.applicationName, timeoutMs: session.lockTimeoutMs }) }))
    : undefined;
  try {
    const cmd = buildPgRestoreCommand(deps.target, {
      binDir: dump.binDir, format: dump.format, input: dump.input, database: options.targetDb,
      clean: options.clean, noOwner: options.noOwner, useList: dump.useList, jobs: options.jobs,
      // One transaction: a failure leaves the target as it was (not possible with parallel jobs).
      singleTransaction: true,
      connectTimeoutSeconds: session.connectTimeoutMs / 1000,
      // Never queue the application behind the restore (the archive's preamble resets it: the watchdog enforces it).
      lockTimeoutMs: session.lockTimeoutMs,
    });
    const exit = dump.input === undefined ? await streamIntoPgRestore(deps, manifest, cmd) : await runTool(cmd, deps.signal);
    return { exit, wait: await watchdog?.w.stop() };
  } finally {
    await watchdog?.w.stop();
    await watchdog?.c.end().catch(() => {});
  }
}

/**
 * The stored dump into pg_restore's stdin through VerifiedTail: a mismatch stops pg_restore before
 * it has the archive's end (its transaction rolls back) and is refused; if pg_restore fails first,
 * the rest is still read and hashed, so a corrupted dump is named as such.
 */
async function streamIntoPgRestore(deps: BackupJobDeps, manifest: BackupManifest, cmd: PgCommand): Promise<ToolExit> {
  const progress = progressReporter(deps.onProgress);
  deps.logger.info(`streaming backup ${manifest.id} into pg_restore`, { key: manifest.key, bytes: manifest.bytes });
  const tool = startTool(cmd, { stdin: 'pipe', streamBuffers: true, signal: deps.signal });
  const gate = new VerifiedTail(manifest, (problems) => mismatchError(manifest, problems, 'streamed'), undefined, (b) => progress.update(b));
  // pg_restore must not finish before it was given the end: that would be a commit we did not allow.
  const exitedEarly = tool.done.then((e) => exitOk(e) && !gate.released);
  try {
    await pipeline(await deps.storage.getStream(manifest.key), gate, new ChildStdinSink(tool), ...(deps.signal ? [{ signal: deps.signal }] : []));
  } catch (err) {
    tool.kill();
    await tool.done;
    if (err instanceof VerifyError || deps.signal?.aborted) throw err;
    const missing = err instanceof StorageNotFoundError ? ` (its dump ${manifest.key} is missing)` : '';
    throw new RestoreError(`could not fetch backup ${manifest.id} from ${deps.storage.url}${missing}: ${redactString(errorMessage(err))}; pg_restore was stopped, nothing was committed`, { cause: err });
  }
  progress.done(gate.bytes);
  if (await exitedEarly) throw new RestoreError(`pg_restore finished before reading the end of backup ${manifest.id}: the archive is not what pgops wrote`);
  return tool.done;
}

/** pg_restore's failure; on a lock timeout, named with the sessions holding locks on the restored tables. */
async function restoreFailure(deps: BackupJobDeps, session: DbSessionOptions, r: { manifest: BackupManifest; tables: string[]; targetDb: string; oneTransaction: boolean; wait?: LockWait }, exit: ToolExit): Promise<RestoreError> {
  const { manifest, tables, targetDb, wait } = r;
  const then = `${r.oneTransaction ? 'the target is unchanged; ' : ''}retry when that session has finished, or end it`;
  if (wait) {
    const on = wait.relation ? ` on ${wait.relation}` : '';
    const who = wait.holders.length > 0 ? `blocked by ${describeHolders(wait.holders)}` : 'the session holding it has gone since';
    return new RestoreBlockedError(`restoring backup ${manifest.id} into ${targetDb} failed: lock timeout: pg_restore waited longer than lock_timeout ${session.lockTimeoutMs} ms for a lock${on}, ${who}: ${then}`, wait.holders);
  }
  const base = `restoring backup ${manifest.id} into ${targetDb} failed: ${describeExit('pg_restore', exit)}`;
  if (!isLockTimeout(exit.stderr)) return new RestoreError(base);
  const holders = await withClient(withDatabase(deps.target, targetDb), session, (c) => lockHolders(c, tables, RESTORE_CLIENT.applicationName), RESTORE_CLIENT)
    .catch((e: unknown) => { deps.logger.warn('could not read who holds the lock', { error: errorMessage(e) }); return []; });
  const who = holders.length > 0 ? `blocked by ${describeHolders(holders)}` : 'the session holding the lock has gone since';
  return new RestoreBlockedError(`${base} (lock_timeout ${session.lockTimeoutMs} ms; ${who}): ${then}`, holders);
}

/**
 * A killed pg_restore's server session lives on while it waits for a lock (it notices the lost
 * client only when it next reads), and the application's queries queue behind it: end it now.
 */
async function endOrphanedSessions(deps: BackupJobDeps, session: DbSessionOptions, targetDb: string): Promise<void> {
  await withClient(maintenanceTarget(deps.target, targetDb), session, (c) => c.query(
    'SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND application_name = $2 AND pid <> pg_catalog.pg_backend_pid()',
    [targetDb, RESTORE_CLIENT.applicationName]), RESTORE_CLIENT)
    .catch((e) => deps.logger.warn(`could not end the interrupted restore's sessions on ${targetDb}`, { error: errorMessage(e) }));
}
