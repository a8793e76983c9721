// `backups verify`: re-hash the stored object against its manifest and read the archive to its
// end with pg_restore (`--list` alone exits 0 on a truncated custom dump: its table of contents
// comes first). With a restore test, that read IS a restore into a scratch database, whose row
// counts are then compared with the manifest; the result is recorded beside the backup.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { quoteIdent, DEFAULT_SESSION, withClient, withDatabase, type DbSessionOptions } from '../db.ts';
import { findPgBinDir } from '../pgtools/binaries.ts';
import { UsageError, errorMessage } from '../errors.ts';
import { redactString } from '../redact.ts';
import { interruptionOr, runJob, throwIfInterrupted } from '../run-job.ts';
import { makeScratchDir, sweepStaleScratch } from './scratch.ts';
import { StorageNotFoundError } from '../storage/errors.ts';
import { createDatabase, dropDatabase, maintenanceTarget, RESTORE_CLIENT } from './databases.ts';
import { readProblems, readStoredObject, tarExtractSink, type ReadResult } from './archive.ts';
import { resolveBackup } from '../catalog/catalog.ts';
import { VerifyError } from './errors.ts';
import { backupKeys } from '../catalog/layout.ts';
import { jobReporting, progressReporter, type BackupJobDeps } from './deps.ts';
import type { BackupManifest } from '../catalog/manifest.ts';
import { buildPgRestoreCommand, ChildStdinSink, describeExit, exitOk, runTool, startTool, type RestoreCommandOptions, type ToolExit } from '../pgtools/tools.ts';

export interface VerifyOptions {
  restoreTest?: boolean;
}

export interface TableMismatch {
  schema: string;
  name: string;
  expected: number | null;
  /** null: the table is missing from the restored database. */
  actual: number | null;
}

/** Recorded as `<database>/logical/<id>/restore-test.json`; the health check reads it. */
export interface RestoreTestResult {
  ok: boolean;
  backupId: string;
  checkedAt: string;
  durationMs: number;
  /** Tables compared with the manifest. */
  compared: number;
  /** Only the tables that differ. */
  tables: TableMismatch[];
  error?: string;
}

export interface VerifyResult {
  backupId: string;
  ok: boolean;
  sha256Ok: boolean;
  bytes: number;
  sha256: string;
  archiveReadable: boolean;
  restoreTest?: RestoreTestResult;
  problems: string[];
}

const discard = () => new Writable({ write(_c, _e, cb) { cb(); } });

/** Compare the restored database's row counts with the manifest's. */
async function compareCounts(deps: BackupJobDeps, db: string, manifest: BackupManifest): Promise<{ compared: number; mismatches: TableMismatch[] }> {
  const filtered = manifest.options.tables.length > 0 || manifest.options.excludeTables.length > 0;
  return withClient(withDatabase(deps.target, db), deps.session ?? DEFAULT_SESSION, async (c) => {
    const mismatches: TableMismatch[] = [];
    let compared = 0;
    for (const t of manifest.tables) {
      const name = `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
      const exists = (await c.query<{ r: string | null }>('SELECT to_regclass($1) AS r', [name])).rows[0]?.r != null;
      // pg_dump's pattern rules are only approximated when counting: a filtered-out table is not a mismatch.
      if (!exists && filtered) continue;
      compared++;
      if (!exists) { mismatches.push({ schema: t.schema, name: t.name, expected: t.rows, actual: null }); continue; }
      // Estimated counts (rowCounts: estimate) are statistics, not a promise: only presence is checked.
      if (t.rows === null || manifest.options.rowCounts === 'estimate') continue;
      const n = Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${name}`)).rows[0]?.n ?? 0);
      if (n !== t.rows) mismatches.push({ schema: t.schema, name: t.name, expected: t.rows, actual: n });
    }
    return { compared, mismatches };
  }, RESTORE_CLIENT);
}

export async function verifyBackup(deps: BackupJobDeps, ref: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  let backupId = ref;
  return runJob(jobReporting(deps), {
    job: 'verify',
    wrap: (m, cause) => new VerifyError(`verifying backup ${backupId} failed: ${redactString(m)}`, [], { cause }),
    details: (e) => ({ backupId, storage: deps.storage.url, problems: e instanceof VerifyError ? e.problems : [e.message] }),
  }, async () => {
    const manifest = await resolveBackup(deps.storage, deps.databaseId, ref, deps.logger);
    backupId = manifest.id;
    return verifyManifest(deps, manifest, options);
  });
}

/** Where the archive is read to: a scratch database (restore test) or /dev/null, and the local scratch space. */
interface VerifyScratch {
  database?: string;
  dir?: string;
}

async function verifyManifest(deps: BackupJobDeps, manifest: BackupManifest, options: VerifyOptions): Promise<VerifyResult> {
  if (options.restoreTest && manifest.options.dataOnly) {
    throw new UsageError(`backup ${manifest.id} is data-only: a restore test needs the schema (verify it without --restore-test)`);
  }
  const session = deps.session ?? DEFAULT_SESSION;
  const scratch: VerifyScratch = {};
  await sweepStaleScratch(deps.tmpDir, deps.logger);
  try {
    const binDir = deps.binDir ?? findPgBinDir();
    const t0 = performance.now();
    deps.logger.info(`verifying backup ${manifest.id}`, { key: manifest.key, restoreTest: !!options.restoreTest });
    if (options.restoreTest) await createScratchDatabase(deps, session, scratch);
    // Into the scratch database (owners and grants are not the point there), or to /dev/null.
    const restoreTo = { binDir, database: scratch.database, noOwner: !!scratch.database, noAcl: !!scratch.database, connectTimeoutSeconds: session.connectTimeoutMs / 1000, lockTimeoutMs: session.lockTimeoutMs };
    const archive = await readArchive(deps, manifest, restoreTo, scratch);
    // An interrupted read is no verdict on the backup: nothing is recorded.
    throwIfInterrupted('verify', deps.signal);
    const problems = archiveProblems(manifest, archive, !!scratch.database);
    const sha256Ok = !problems.some((p) => p.startsWith('size:') || p.startsWith('sha256:'));
    const restoreTest = scratch.database ? await recordRestoreTest(deps, manifest, scratch.database, problems, t0) : undefined;
    const result: VerifyResult = { backupId: manifest.id, ok: problems.length === 0, sha256Ok, bytes: archive.read.bytes, sha256: archive.read.sha256, archiveReadable: archive.readable, restoreTest, problems };
    if (!result.ok) throw new VerifyError(`backup ${manifest.id} failed verification: ${problems.join('; ')}`, problems, { result });
    deps.logger.info(`backup ${manifest.id} verified`, { bytes: archive.read.bytes, restoreTest: restoreTest ? `ok, ${restoreTest.compared} tables compared` : undefined });
    return result;
  } catch (err) {
    throw interruptionOr('verify', deps.signal, err);
  } finally {
    await removeScratch(deps, session, scratch);
  }
}

async function createScratchDatabase(deps: BackupJobDeps, session: DbSessionOptions, scratch: VerifyScratch): Promise<void> {
  const name = `pgops_verify_${randomBytes(4).toString('hex')}`;
  scratch.database = name;
  await withClient(maintenanceTarget(deps.target, name), session, (c) => createDatabase(c, name), RESTORE_CLIENT);
}

async function removeScratch(deps: BackupJobDeps, session: DbSessionOptions, scratch: VerifyScratch): Promise<void> {
  const name = scratch.database;
  if (name) {
    await withClient(maintenanceTarget(deps.target, name), session, (c) => dropDatabase(c, name), RESTORE_CLIENT)
      .catch((e) => deps.logger.warn(`could not drop the scratch database ${name}`, { error: errorMessage(e) }));
  }
  if (scratch.dir) await rm(scratch.dir, { recursive: true, force: true }).catch(() => {});
}

interface ArchiveRead {
  read: ReadResult;
  /** pg_restore read the archive to its end (and, in a restore test, restored it). */
  readable: boolean;
  /** Why not, in one phrase. */
  why?: string;
}

type RestoreTo = Omit<RestoreCommandOptions, 'format' | 'input' | 'jobs'>;

/** Stream the stored object through pg_restore, hashing it on the way. */
async function readArchive(deps: BackupJobDeps, manifest: BackupManifest, restoreTo: RestoreTo, scratch: VerifyScratch): Promise<ArchiveRead> {
  const progress = progressReporter(deps.onProgress);
  try {
    const archive = manifest.format === 'custom'
      ? await readCustomArchive(deps, manifest, restoreTo, progress)
      : await readDirectoryArchive(deps, manifest, restoreTo, progress, scratch);
    progress.done(archive.read.bytes);
    return archive;
  } catch (err) {
    if (err instanceof StorageNotFoundError) {
      throw new VerifyError(`backup ${manifest.id} failed verification: its dump ${manifest.key} is missing from ${deps.storage.url}`, [`dump object ${manifest.key} missing`], { cause: err });
    }
    throw err;
  }
}

type Progress = ReturnType<typeof progressReporter>;

async function readCustomArchive(deps: BackupJobDeps, manifest: BackupManifest, restoreTo: RestoreTo, progress: Progress): Promise<ArchiveRead> {
  const tool = startTool(buildPgRestoreCommand(deps.target, { ...restoreTo, format: 'custom' }), { stdin: 'pipe', streamBuffers: true, signal: deps.signal });
  let read: ReadResult;
  try {
    read = await readStoredObject(deps.storage, manifest.key, new ChildStdinSink(tool), (b) => progress.update(b), deps.signal);
  } catch (err) {
    tool.kill();
    await tool.done;
    throw err;
  }
  return exitResult(read, await tool.done);
}

async function readDirectoryArchive(deps: BackupJobDeps, manifest: BackupManifest, restoreTo: RestoreTo, progress: Progress, scratch: VerifyScratch): Promise<ArchiveRead> {
  scratch.dir = await makeScratchDir(deps.tmpDir, 'verify');
  const dir = join(scratch.dir, 'dump');
  try {
    const read = await readStoredObject(deps.storage, manifest.key, await tarExtractSink(dir), (b) => progress.update(b), deps.signal);
    return exitResult(read, await runTool(buildPgRestoreCommand(deps.target, { ...restoreTo, format: 'directory', input: dir, jobs: manifest.options.jobs }), deps.signal));
  } catch (err) {
    if (err instanceof StorageNotFoundError || deps.signal?.aborted) throw err;
    // The tar itself is broken: hash the object alone to tell a damaged upload from a bad dump.
    const read = await readStoredObject(deps.storage, manifest.key, discard());
    return { read, readable: false, why: `the tar archive is damaged (${redactString(errorMessage(err))})` };
  }
}

function exitResult(read: ReadResult, exit: ToolExit): ArchiveRead {
  return exitOk(exit) ? { read, readable: true } : { read, readable: false, why: describeExit('pg_restore', exit) };
}

/** What differs from the manifest, one short sentence each. */
function archiveProblems(manifest: BackupManifest, archive: ArchiveRead, restoreTest: boolean): string[] {
  const problems = readProblems(archive.read, manifest);
  if (!archive.readable) {
    problems.push(restoreTest ? `restore test: restoring into a scratch database failed: ${archive.why}` : `archive: pg_restore could not read it to its end: ${archive.why}`);
  }
  return problems;
}

/** Compare the scratch database with the manifest and record the result beside the backup (health reads it). */
async function recordRestoreTest(deps: BackupJobDeps, manifest: BackupManifest, scratch: string, problems: string[], t0: number): Promise<RestoreTestResult> {
  let compared = 0;
  let mismatches: TableMismatch[] = [];
  // `error` is what the health check shows for a failed restore test.
  let error: string | undefined;
  if (problems.length === 0) {
    try {
      ({ compared, mismatches } = await compareCounts(deps, scratch, manifest));
    } catch (err) {
      error = `could not compare row counts: ${redactString(errorMessage(err))}`;
      problems.push(`restore test: ${error}`);
    }
    const differ = mismatches.map((m) => `${m.schema}.${m.name} ${m.actual === null ? 'is missing' : `has ${m.actual} rows`}, the manifest says ${m.expected ?? 'it exists'}`);
    for (const d of differ) problems.push(`restore test: ${d}`);
    if (differ.length > 0) error = `${differ.length} table(s) differ: ${differ.slice(0, 3).join('; ')}${differ.length > 3 ? '; ...' : ''}`;
  } else {
    error = problems.join('; ');
  }
  const restoreTest: RestoreTestResult = {
    ok: error === undefined,
    backupId: manifest.id,
    checkedAt: (deps.clock ?? (() => new Date()))().toISOString(),
    durationMs: Math.round(performance.now() - t0),
    compared,
    tables: mismatches,
    ...(error ? { error } : {}),
  };
  await deps.storage.putBytes(backupKeys(deps.databaseId, manifest.id).restoreTest, `${JSON.stringify(restoreTest, null, 2)}\n`, { contentType: 'application/json' });
  return restoreTest;
}
