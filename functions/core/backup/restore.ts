// The restore job: fetch the dump to a temporary file while re-computing its SHA-256, refuse a
// mismatch before touching the target, check the target (exists / empty), then pg_restore.
// A database this job created and failed to fill is dropped again; temporary files always go.
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SESSION, withClient, type DbSessionOptions } from '../db.ts';
import { findPgBinDir } from '../pgtools/binaries.ts';
import { UsageError, errorMessage } from '../errors.ts';
import { redactString } from '../redact.ts';
import { runJob } from '../run-job.ts';
import { checkDatabaseName, createDatabase, databaseExists, dropDatabase, isDatabaseEmpty, maintenanceTarget, RESTORE_CLIENT } from './databases.ts';
import { readStoredObject, tarExtractSink, type ReadResult } from './archive.ts';
import { resolveBackup } from '../catalog/catalog.ts';
import { RestoreError, RestoreRefusedError, VerifyError } from './errors.ts';
import { jobReporting, progressReporter, type BackupJobDeps } from './deps.ts';
import type { BackupManifest } from '../catalog/manifest.ts';
import { buildPgRestoreCommand, describeExit, exitOk, runTool } from '../pgtools/tools.ts';

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
  /** TOC entries by type, from `pg_restore --list` (with the table filters applied). */
  entries: Record<string, number>;
  /** schema.name of every table restored. */
  tables: string[];
  steps: string[];
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

// TOC entry types with spaces; anything else is one word.
const MULTIWORD = [
  'MATERIALIZED VIEW DATA', 'PUBLICATION TABLES IN SCHEMA', 'TEXT SEARCH CONFIGURATION', 'TEXT SEARCH DICTIONARY',
  'TEXT SEARCH PARSER', 'TEXT SEARCH TEMPLATE', 'FOREIGN DATA WRAPPER', 'SEQUENCE OWNED BY', 'MATERIALIZED VIEW',
  'PUBLICATION TABLE', 'CHECK CONSTRAINT', 'OPERATOR CLASS', 'OPERATOR FAMILY', 'DEFAULT ACL', 'EVENT TRIGGER',
  'FOREIGN TABLE', 'ACCESS METHOD', 'SEQUENCE SET', 'USER MAPPING', 'FK CONSTRAINT', 'LARGE OBJECT', 'ROW SECURITY',
  'TABLE DATA', 'BLOB METADATA',
];

/** Summarize `pg_restore --list`: `<id>; <catalog oid> <oid> <TYPE> <schema> <name> <owner>` per entry. */
export function parseRestoreList(listing: string): Omit<RestorePlan, 'steps'> {
  const entries: Record<string, number> = {};
  const tables = new Set<string>();
  for (const line of listing.split('\n')) {
    const m = /^\d+; \d+ \d+ (.+)$/.exec(line.trim());
    if (!m) continue;
    const rest = m[1]!;
    const type = MULTIWORD.find((t) => rest.startsWith(`${t} `)) ?? rest.split(' ')[0]!;
    entries[type] = (entries[type] ?? 0) + 1;
    if (type === 'TABLE' || type === 'TABLE DATA') {
      const words = rest.slice(type.length + 1).split(' ');
      // schema, name (may contain spaces), owner
      if (words.length >= 3) tables.add(`${words[0]}.${words.slice(1, -1).join(' ')}`);
    }
  }
  return { entries, tables: [...tables].sort() };
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
  /** The dump file or directory on local disk. */
  input: string;
  read: ReadResult;
}

async function restoreManifest(deps: BackupJobDeps, manifest: BackupManifest, options: RestoreOptions & { targetDb: string }, t0: number): Promise<RestoreResult> {
  const session = deps.session ?? DEFAULT_SESSION;
  const targetDb = options.targetDb;
  const tmp = await mkdtemp(join(deps.tmpDir ?? tmpdir(), 'pgops-restore-'));
  try {
    const binDir = deps.binDir ?? findPgBinDir();
    // 1. Fetch and check, before anything touches the target.
    const fetched = await fetchAndCheck(deps, manifest, tmp);
    const listing = await runTool(buildPgRestoreCommand(deps.target, { binDir, format: fetched.format, input: fetched.input, list: true, tables: options.tables }));
    if (!exitOk(listing)) throw new RestoreError(`backup ${manifest.id} cannot be read: ${describeExit('pg_restore', listing)}`);
    const summary = parseRestoreList(listing.stdout);
    // 2. The target: --create only for a new database; an existing one must be empty unless --clean.
    await checkTarget(deps, session, options);
    const steps = planSteps(manifest, fetched.read, summary, options);
    if (options.dryRun) {
      deps.logger.info(`dry run: nothing changed; the plan:\n  ${steps.join('\n  ')}`, { entries: summary.entries });
      return { backupId: manifest.id, targetDb, durationMs: Math.round(performance.now() - t0), tables: summary.tables.length, dryRun: true, created: false, plan: { ...summary, steps } };
    }
    // 3. Restore.
    const created = await restoreInto(deps, session, manifest, { ...fetched, binDir, tables: summary.tables.length }, options);
    const durationMs = Math.round(performance.now() - t0);
    deps.logger.info(`restored backup ${manifest.id} into ${targetDb}`, { tables: summary.tables.length, durationMs });
    return { backupId: manifest.id, targetDb, durationMs, tables: summary.tables.length, dryRun: false, created };
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
  }
}

/** Fetch the dump to local disk while re-computing its SHA-256; refuse it if it does not match its manifest. */
async function fetchAndCheck(deps: BackupJobDeps, manifest: BackupManifest, tmp: string): Promise<Fetched> {
  const progress = progressReporter(deps.onProgress);
  const input = join(tmp, 'dump');
  const format = manifest.format === 'custom' ? 'custom' : 'directory';
  deps.logger.info(`fetching backup ${manifest.id}`, { key: manifest.key, bytes: manifest.bytes });
  const sink = format === 'custom' ? createWriteStream(input, { mode: 0o600 }) : await tarExtractSink(input);
  const read = await readStoredObject(deps.storage, manifest.key, sink, (b) => progress.update(b)).catch((err: unknown) => {
    throw new RestoreError(`could not fetch backup ${manifest.id} from ${deps.storage.url}: ${redactString(errorMessage(err))}`, { cause: err });
  });
  progress.done(read.bytes);
  const problems: string[] = [];
  if (read.bytes !== manifest.bytes) problems.push(`size: the stored object has ${read.bytes} bytes, the manifest says ${manifest.bytes}`);
  if (read.sha256 !== manifest.sha256) problems.push(`sha256: the stored object hashes to ${read.sha256}, the manifest says ${manifest.sha256}`);
  if (problems.length > 0) {
    throw new VerifyError(`refusing to restore backup ${manifest.id}: it does not match its manifest (${problems.join('; ')})`, problems);
  }
  return { format, input, read };
}

async function checkTarget(deps: BackupJobDeps, session: DbSessionOptions, options: RestoreOptions & { targetDb: string }): Promise<void> {
  const { targetDb } = options;
  await withClient(maintenanceTarget(deps.target, targetDb), session, async (c) => {
    const exists = await databaseExists(c, targetDb);
    if (options.create && exists) throw new RestoreRefusedError(`database "${targetDb}" already exists: restore without --create (with --clean to replace its contents), or pick another --target-db`);
    if (!options.create && !exists) throw new RestoreRefusedError(`database "${targetDb}" does not exist: add --create to create it`);
  }, RESTORE_CLIENT);
  if (!options.create && !options.clean && !(await isDatabaseEmpty(deps.target, session, targetDb))) {
    throw new RestoreRefusedError(`database "${targetDb}" is not empty: add --clean to drop and recreate the backup's objects, or restore into a new database with --target-db NAME --create`);
  }
}

function planSteps(manifest: BackupManifest, read: ReadResult, summary: Omit<RestorePlan, 'steps'>, options: RestoreOptions & { targetDb: string }): string[] {
  return [
    `checked backup ${manifest.id} (${read.bytes} bytes, sha256 ${read.sha256})`,
    ...(options.create ? [`create database ${options.targetDb}`] : []),
    `pg_restore into ${options.targetDb}: ${summary.tables.length} table(s)${options.clean ? ', dropping existing objects first' : ''}${(options.jobs ?? 1) > 1 ? `, ${options.jobs} jobs` : ', in one transaction'}`,
  ];
}

/** pg_restore into the target (created first with --create, and dropped again if the restore fails). Returns whether it was created. */
async function restoreInto(deps: BackupJobDeps, session: DbSessionOptions, manifest: BackupManifest, dump: Omit<Fetched, 'read'> & { binDir: string; tables: number }, options: RestoreOptions & { targetDb: string }): Promise<boolean> {
  const { targetDb } = options;
  const maintenance = maintenanceTarget(deps.target, targetDb);
  if (options.create) await withClient(maintenance, session, (c) => createDatabase(c, targetDb), RESTORE_CLIENT);
  try {
    deps.logger.info(`restoring backup ${manifest.id} into ${targetDb}`, { tables: dump.tables, jobs: options.jobs ?? 1 });
    const restored = await runTool(buildPgRestoreCommand(deps.target, {
      binDir: dump.binDir, format: dump.format, input: dump.input, database: targetDb,
      clean: options.clean, noOwner: options.noOwner, tables: options.tables, jobs: options.jobs,
      // One transaction: a failure leaves the target as it was (not possible with parallel jobs).
      singleTransaction: true,
      connectTimeoutSeconds: session.connectTimeoutMs / 1000,
    }));
    if (!exitOk(restored)) throw new RestoreError(`restoring backup ${manifest.id} into ${targetDb} failed: ${describeExit('pg_restore', restored)}`);
    return !!options.create;
  } catch (err) {
    if (options.create) {
      await withClient(maintenance, session, (c) => dropDatabase(c, targetDb), RESTORE_CLIENT)
        .then(() => deps.logger.info(`dropped database ${targetDb} again (it was created for this restore)`))
        .catch((e) => deps.logger.warn(`could not drop database ${targetDb} created for this restore`, { error: errorMessage(e) }));
    }
    throw err;
  }
}
