// `backups verify`: re-hash the stored object against its manifest and read the archive to its
// end with pg_restore (`--list` alone exits 0 on a truncated custom dump: its table of contents
// comes first). With a restore test, that read IS a restore into a scratch database, whose row
// counts are then compared with the manifest; the result is recorded beside the backup.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { quoteIdent, DEFAULT_SESSION, withDatabase } from '../db.ts';
import { findPgBinDir } from '../pgtools/binaries.ts';
import { ConfigError, PgopsError, UsageError, errorMessage } from '../errors.ts';
import { redactString } from '../redact.ts';
import { StorageNotFoundError } from '../storage/errors.ts';
import { createDatabase, dropDatabase, maintenanceTarget, withConnection } from './databases.ts';
import { readStoredObject, tarExtractSink, type ReadResult } from './archive.ts';
import { resolveBackup } from '../catalog/catalog.ts';
import { BackupNotFoundError, VerifyError } from './errors.ts';
import { backupKeys } from '../catalog/layout.ts';
import { progressReporter, sendAlert, type BackupJobDeps } from './deps.ts';
import type { BackupManifest } from '../catalog/manifest.ts';
import { buildPgRestoreCommand, ChildStdinSink, describeExit, exitOk, runTool, startTool, type ToolExit } from '../pgtools/tools.ts';

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
  return withConnection(withDatabase(deps.target, db), deps.session ?? DEFAULT_SESSION, async (c) => {
    const mismatches: TableMismatch[] = [];
    let compared = 0;
    for (const t of manifest.tables) {
      const name = `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
      const exists = (await c.query<{ r: string | null }>('SELECT to_regclass($1) AS r', [name])).rows[0]?.r != null;
      // pg_dump's pattern rules are only approximated when counting: a filtered-out table is not a mismatch.
      if (!exists && filtered) continue;
      compared++;
      if (!exists) { mismatches.push({ schema: t.schema, name: t.name, expected: t.rows, actual: null }); continue; }
      if (t.rows === null) continue;
      const n = Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${name}`)).rows[0]?.n ?? 0);
      if (n !== t.rows) mismatches.push({ schema: t.schema, name: t.name, expected: t.rows, actual: n });
    }
    return { compared, mismatches };
  });
}

export async function verifyBackup(deps: BackupJobDeps, ref: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const log = deps.logger;
  const clock = deps.clock ?? (() => new Date());
  const session = deps.session ?? DEFAULT_SESSION;
  let backupId = ref;
  let tmp: string | undefined;
  let scratch: string | undefined;
  try {
    const manifest = await resolveBackup(deps.storage, deps.databaseId, ref, log);
    backupId = manifest.id;
    const keys = backupKeys(deps.databaseId, manifest.id);
    if (options.restoreTest && manifest.options.dataOnly) {
      throw new UsageError(`backup ${manifest.id} is data-only: a restore test needs the schema (verify it without --restore-test)`);
    }
    const binDir = deps.binDir ?? findPgBinDir();
    const progress = progressReporter(deps.onProgress);
    const t0 = performance.now();
    log.info(`verifying backup ${manifest.id}`, { key: manifest.key, restoreTest: !!options.restoreTest });

    if (options.restoreTest) {
      scratch = `pgops_verify_${randomBytes(4).toString('hex')}`;
      await withConnection(maintenanceTarget(deps.target, scratch), session, (c) => createDatabase(c, scratch!));
    }
    // Into the scratch database (owners and grants are not the point there), or to /dev/null.
    const restoreTo = { binDir, database: scratch, noOwner: !!scratch, noAcl: !!scratch, connectTimeoutSeconds: session.connectTimeoutMs / 1000 };

    let read: ReadResult | undefined;
    let exit: ToolExit | undefined;
    let readError: unknown;
    try {
      if (manifest.format === 'custom') {
        const tool = startTool(buildPgRestoreCommand(deps.target, { ...restoreTo, format: 'custom' }), { stdin: 'pipe' });
        try {
          read = await readStoredObject(deps.storage, manifest.key, new ChildStdinSink(tool), (b) => progress.update(b));
        } catch (err) {
          tool.kill();
          throw err;
        } finally {
          exit = await tool.done;
        }
      } else {
        tmp = await mkdtemp(join(deps.tmpDir ?? tmpdir(), 'pgops-verify-'));
        const dir = join(tmp, 'dump');
        try {
          read = await readStoredObject(deps.storage, manifest.key, await tarExtractSink(dir), (b) => progress.update(b));
        } catch (err) {
          if (err instanceof StorageNotFoundError) throw err;
          // The tar itself is broken: hash the object alone to tell a damaged upload from a bad dump.
          readError = err;
          read = await readStoredObject(deps.storage, manifest.key, discard());
        }
        if (!readError) exit = await runTool(buildPgRestoreCommand(deps.target, { ...restoreTo, format: 'directory', input: dir, jobs: manifest.options.jobs }));
      }
    } catch (err) {
      if (err instanceof StorageNotFoundError) {
        throw new VerifyError(`backup ${manifest.id} failed verification: its dump ${manifest.key} is missing from ${deps.storage.url}`, [`dump object ${manifest.key} missing`], { cause: err });
      }
      throw err;
    }
    progress.done(read.bytes);

    const problems: string[] = [];
    if (read.bytes !== manifest.bytes) problems.push(`size: the stored object has ${read.bytes} bytes, the manifest says ${manifest.bytes}`);
    if (read.sha256 !== manifest.sha256) problems.push(`sha256: the stored object hashes to ${read.sha256}, the manifest says ${manifest.sha256}`);
    const sha256Ok = problems.length === 0;
    const archiveReadable = !readError && exit !== undefined && exitOk(exit);
    if (!archiveReadable) {
      const why = readError ? `the tar archive is damaged (${redactString(errorMessage(readError))})` : describeExit('pg_restore', exit!);
      problems.push(scratch ? `restore test: restoring into a scratch database failed: ${why}` : `archive: pg_restore could not read it to its end: ${why}`);
    }

    let restoreTest: RestoreTestResult | undefined;
    if (scratch) {
      let compared = 0;
      let mismatches: TableMismatch[] = [];
      // `error` is what the health check shows for a failed restore test.
      let error: string | undefined;
      if (sha256Ok && archiveReadable) {
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
      restoreTest = {
        ok: error === undefined,
        backupId: manifest.id,
        checkedAt: clock().toISOString(),
        durationMs: Math.round(performance.now() - t0),
        compared,
        tables: mismatches,
        ...(error ? { error } : {}),
      };
      await deps.storage.putBytes(keys.restoreTest, `${JSON.stringify(restoreTest, null, 2)}\n`, { contentType: 'application/json' });
    }

    const result: VerifyResult = { backupId: manifest.id, ok: problems.length === 0, sha256Ok, bytes: read.bytes, sha256: read.sha256, archiveReadable, restoreTest, problems };
    if (!result.ok) throw new VerifyError(`backup ${manifest.id} failed verification: ${problems.join('; ')}`, problems, { result });
    log.info(`backup ${manifest.id} verified`, { bytes: read.bytes, restoreTest: restoreTest ? `ok, ${restoreTest.compared} tables compared` : undefined });
    return result;
  } catch (err) {
    const error = err instanceof PgopsError ? err : new VerifyError(`verifying backup ${backupId} failed: ${redactString(errorMessage(err))}`, [], { cause: err });
    if (!(error instanceof ConfigError) && !(error instanceof BackupNotFoundError)) {
      log.error(error.message);
      await sendAlert(deps, {
        severity: 'critical',
        job: 'verify',
        summary: error.message.slice(0, 300),
        details: { backupId, storage: deps.storage.url, problems: error instanceof VerifyError ? error.problems : [error.message] },
      });
      error.alertSent = true;
    }
    throw error;
  } finally {
    if (scratch) {
      const name = scratch;
      await withConnection(maintenanceTarget(deps.target, name), session, (c) => dropDatabase(c, name))
        .catch((e) => log.warn(`could not drop the scratch database ${name}`, { error: errorMessage(e) }));
    }
    if (tmp) await rm(tmp, { recursive: true, force: true }).catch(() => {});
  }
}
