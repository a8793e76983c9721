// The three things a recovery can produce, exactly one per run: the recovered database restored
// into a database on the connection's server (--target-db, with restore's rules: the dump goes
// through a logical backup in a private local storage and `runRestore`, SHA-256 check, lock, lock
// timeout, --create/--clean/--table and all), a logical backup in storage (--export, through
// `runBackup`, its manifest marked "source": "pitr"), or the data directory itself (--data-dir).
import { existsSync } from 'node:fs';
import { chmod, chown, cp, mkdir, readdir, rename, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Alerter } from '../alerts/alerter.ts';
import { runBackup } from '../backup/backup.ts';
import { checkDatabaseName, databaseExists, maintenanceTarget, RESTORE_CLIENT, restoreMarkOf, userObjectsIn } from '../backup/databases.ts';
import type { BackupJobDeps } from '../backup/deps.ts';
import { runRestore } from '../backup/restore.ts';
import { describeUserObjects } from '../backup/tables.ts';
import { backupKeys } from '../catalog/layout.ts';
import type { BackupManifest } from '../catalog/manifest.ts';
import { withClient, type DbSessionOptions, type DbTarget } from '../db.ts';
import { asPgopsError, ConfigError, errorMessage, UsageError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { InterruptedError, interruptionOr } from '../run-job.ts';
import { FileStorage } from '../storage/file.ts';
import type { Storage } from '../storage/types.ts';
import { timelineHex } from '../wal/lsn.ts';
import { PitrError, PitrRefusedError } from './errors.ts';
import { stopServer } from './recovery.ts';
import { restoreOwnSettings, syncPath, syncTree, type ScratchCluster, type ServerUser } from './scratch.ts';

export type OutputSpec =
  | { kind: 'target-db'; database: string; create: boolean; clean: boolean; tables: string[]; sourceDb?: string }
  | { kind: 'export'; sourceDb?: string }
  | { kind: 'data-dir'; dir: string };

export type OutputResult =
  | { type: 'target-db'; database: string; sourceDb: string; created: boolean; tables: number }
  | { type: 'export'; backupId: string; key: string; sourceDb: string }
  | { type: 'data-dir'; path: string; timeline?: number };

export interface OutputFlags {
  targetDb?: string;
  create?: boolean;
  clean?: boolean;
  tables?: string[];
  sourceDb?: string;
  export?: boolean;
  dataDir?: string;
}

/** Exactly one output, and the flags that go with it; every problem named at once (exit 2). */
export function parseOutputFlags(f: OutputFlags): OutputSpec {
  const chosen = [f.targetDb !== undefined, !!f.export, f.dataDir !== undefined].filter(Boolean).length;
  const issues: string[] = [];
  if (chosen !== 1) issues.push(`${chosen === 0 ? 'no output' : 'more than one output'}: give exactly one of --target-db NAME, --export or --data-dir DIR`);
  if (f.targetDb === undefined && (f.create || f.clean || (f.tables ?? []).length > 0)) issues.push('--create, --clean and --table go with --target-db');
  if (f.dataDir !== undefined && f.sourceDb !== undefined) issues.push('--source-db goes with --target-db or --export (--data-dir hands over the whole cluster)');
  if (f.create && f.clean) issues.push('--create makes a new database; --clean replaces the contents of an existing one: choose one');
  if (f.dataDir !== undefined && f.dataDir.trim() === '') issues.push('--data-dir must name a directory');
  try {
    if (f.targetDb !== undefined) checkDatabaseName(f.targetDb);
    if (f.sourceDb !== undefined) checkDatabaseName(f.sourceDb, '--source-db');
  } catch (err) {
    issues.push(errorMessage(err));
  }
  if (issues.length > 0) throw new UsageError('invalid pitr output', issues);
  if (f.targetDb !== undefined) return { kind: 'target-db', database: f.targetDb, create: !!f.create, clean: !!f.clean, tables: f.tables ?? [], sourceDb: f.sourceDb };
  if (f.export) return { kind: 'export', sourceDb: f.sourceDb };
  return { kind: 'data-dir', dir: resolve(f.dataDir!) };
}

export interface OutputDeps {
  storage: Storage;
  logger: Logger;
  databaseId: string;
  environment: string;
  /** The connection: --target-db restores on its server; its database is the default --source-db. */
  target?: () => Promise<DbTarget>;
  session: DbSessionOptions;
  binDir?: string;
  tmpDir?: string;
  signal?: AbortSignal;
  migrationsTable?: { schema: string; table: string };
}

/** Refuse, before anything starts, an output that cannot be produced: a --data-dir that is not empty, a --target-db that restore would refuse. */
export async function checkOutput(deps: OutputDeps, out: OutputSpec): Promise<void> {
  if (out.kind === 'data-dir') return checkDataDir(out.dir);
  if (out.kind === 'target-db') return checkTargetDb(deps, out);
}

async function checkDataDir(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  if (!(await stat(dir)).isDirectory()) throw new PitrRefusedError(`--data-dir ${dir} exists and is not a directory`);
  const entries = await readdir(dir);
  if (entries.length > 0) throw new PitrRefusedError(`--data-dir ${dir} is not empty (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}): the recovered cluster goes into an empty or new directory`);
}

async function connectionOf(deps: OutputDeps): Promise<DbTarget> {
  if (!deps.target) throw new ConfigError('invalid configuration', ['--target-db restores into a database on the connection\'s server: set --database-url / DATABASE_URL (or PGOPS_DATABASE_SECRET_ID)']);
  return deps.target();
}

/** restore's rules, checked up front: --create only for a new database, an existing one empty unless --clean. */
async function checkTargetDb(deps: OutputDeps, out: Extract<OutputSpec, { kind: 'target-db' }>): Promise<void> {
  const target = await connectionOf(deps);
  const db = out.database;
  await withClient(maintenanceTarget(target, db), deps.session, async (c) => {
    const exists = await databaseExists(c, db);
    // One a killed restore left (still marked) is reclaimed by the restore itself.
    if (out.create && exists && !(await restoreMarkOf(c, db))) throw new PitrRefusedError(`database "${db}" already exists: recover without --create (with --clean to replace its contents), or pick another --target-db`);
    if (!out.create && !exists) throw new PitrRefusedError(`database "${db}" does not exist: add --create to create it`);
  }, RESTORE_CLIENT);
  if (out.create || out.clean) return;
  const objects = await userObjectsIn(target, deps.session, db);
  if (Object.keys(objects).length > 0) throw new PitrRefusedError(`database "${db}" is not empty: add --clean to replace the recovered objects, or use --target-db NAME --create (it holds ${describeUserObjects(objects)})`);
}

export interface RecoveredCluster {
  scratch: ScratchCluster;
  serverBinDir: string;
  /** The role the job connects to the scratch cluster as. */
  user: string;
  /** The timeline the recovered cluster runs on. */
  timeline?: number;
  /** Recorded in an exported backup's manifest. */
  provenance: Record<string, unknown>;
}

export async function produceOutput(deps: OutputDeps, out: OutputSpec, rc: RecoveredCluster): Promise<OutputResult> {
  if (out.kind === 'data-dir') return handOverDataDir(deps, out.dir, rc);
  return produceLogicalOutput(deps, out, { target: (database) => scratchTarget(rc, database), workDir: join(rc.scratch.root, 'dump'), provenance: rc.provenance });
}

/** Where the logical outputs read the recovered databases: the scratch cluster, or a restored RDS instance (pitr/managed). */
export interface RecoveredSource {
  /** How pg_dump and our sessions reach the recovered database `database`. */
  target(database: string): DbTarget;
  /** A private directory the --target-db dump goes through (its owner removes it). */
  workDir: string;
  /** Recorded in an exported backup's manifest. */
  provenance: Record<string, unknown>;
}

export type LogicalOutputSpec = Exclude<OutputSpec, { kind: 'data-dir' }>;

/** --target-db or --export, from whatever holds the recovered databases. */
export async function produceLogicalOutput(deps: OutputDeps, out: LogicalOutputSpec, src: RecoveredSource): Promise<OutputResult> {
  const sourceDb = out.sourceDb ?? (await connectionOf(deps).catch(() => undefined))?.database;
  if (!sourceDb) throw new ConfigError('invalid configuration', ['--source-db: which recovered database to export (it defaults to the connection\'s database, and there is no connection)']);
  if (out.kind === 'export') return exportBackup(deps, sourceDb, src);
  return restoreIntoTarget(deps, out, sourceDb, src);
}

/** The recovered database as pg_dump and our sessions reach it: the unix socket, no password. */
function scratchTarget(rc: RecoveredCluster, database: string): DbTarget {
  return { host: rc.scratch.socketDir, port: rc.scratch.port, user: rc.user, database, sslMode: 'disable', display: `the recovered cluster's database ${database} (unix socket)` };
}

// The nested backup and restore report to the pitr job: their failure becomes this job's one alert.
const quietAlerter: Alerter = { send: () => Promise.resolve() };

function jobDeps(deps: OutputDeps, target: DbTarget, storage: Storage): BackupJobDeps {
  return {
    target, storage, logger: deps.logger, alerter: quietAlerter, databaseId: deps.databaseId, environment: deps.environment,
    binDir: deps.binDir, session: deps.session, tmpDir: deps.tmpDir, signal: deps.signal, migrationsTable: deps.migrationsTable,
  };
}

/** A nested job's failure as the pitr job's own: same kind (refusal, usage, interruption), named. */
async function nested<T>(deps: OutputDeps, what: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    const e = asPgopsError(err);
    if (deps.signal?.aborted || e instanceof InterruptedError) throw e instanceof InterruptedError ? new InterruptedError('pitr', e.signalName, { cause: e, exitCode: e.exitCode }) : interruptionOr('pitr', deps.signal, e);
    if (e instanceof ConfigError) throw new UsageError(`${what}: ${e.message}`, [], { cause: e });
    throw e.alert === null ? new PitrRefusedError(`${what}: ${e.message}`, { cause: e }) : new PitrError(`${what}: ${e.message}`, { cause: e });
  }
}

async function restoreIntoTarget(deps: OutputDeps, out: Extract<OutputSpec, { kind: 'target-db' }>, sourceDb: string, src: RecoveredSource): Promise<OutputResult> {
  const connection = await connectionOf(deps);
  // A private local storage in the source's work directory: removed with it.
  const local = new FileStorage(pathToFileURL(src.workDir).href);
  const dumped = await nested(deps, `dumping the recovered database ${sourceDb}`, () => runBackup(jobDeps(deps, src.target(sourceDb), local)));
  const restored = await nested(deps, `restoring the recovered database ${sourceDb} into ${out.database}`, () => runRestore(jobDeps(deps, connection, local), dumped.id, {
    targetDb: out.database, create: out.create, clean: out.clean, tables: out.tables,
  }));
  return { type: 'target-db', database: out.database, sourceDb, created: restored.created, tables: restored.tables };
}

async function exportBackup(deps: OutputDeps, sourceDb: string, src: RecoveredSource): Promise<OutputResult> {
  const manifest = await nested(deps, `exporting the recovered database ${sourceDb}`, () => runBackup(jobDeps(deps, src.target(sourceDb), deps.storage)));
  await markPitrBackup(deps, manifest, src.provenance);
  return { type: 'export', backupId: manifest.id, key: manifest.key, sourceDb };
}

/** Say in the manifest where the backup came from (fields may be added; the catalog keeps unknown ones). */
async function markPitrBackup(deps: OutputDeps, manifest: BackupManifest, provenance: Record<string, unknown>): Promise<void> {
  const keys = backupKeys(deps.databaseId, manifest.id);
  try {
    await deps.storage.putBytes(keys.manifest, `${JSON.stringify({ ...manifest, source: 'pitr', ...provenance }, null, 2)}\n`, { contentType: 'application/json' });
  } catch (err) {
    // A backup that does not say where it came from would pass for a backup of the live database.
    await deps.storage.delete(keys.manifest).catch(() => undefined);
    await deps.storage.delete(keys.dump).catch(() => undefined);
    throw new PitrError(`the exported backup ${manifest.id} could not be marked as a recovery's (removed): ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * The recovered data directory, stopped cleanly, synced to disk, with its own settings back (ours
 * removed) and its new timeline's history file marked for archiving: a server started on it archives the history
 * that recovery along the new timeline needs, as it would had it promoted with archiving on.
 */
async function handOverDataDir(deps: OutputDeps, dir: string, rc: RecoveredCluster): Promise<OutputResult> {
  const { scratch } = rc;
  if (!(await stopServer(scratch, rc.serverBinDir, 'fast'))) throw new PitrError('the recovered cluster did not stop cleanly: its data directory is not handed over');
  await restoreOwnSettings(scratch);
  if (rc.timeline !== undefined) await markHistoryReady(scratch.dataDir, rc.timeline, scratch.user);
  await checkDataDir(dir);
  await moveDataDir(scratch.dataDir, dir, scratch.user);
  await syncTree(dir);
  await syncPath(dirname(dir));
  deps.logger.info(`the recovered data directory is at ${dir}: start it with pg_ctl -D ${dir} start`);
  return { type: 'data-dir', path: dir, ...(rc.timeline !== undefined ? { timeline: rc.timeline } : {}) };
}

async function markHistoryReady(dataDir: string, timeline: number, user: ServerUser | undefined): Promise<void> {
  const name = `${timelineHex(timeline)}.history`;
  if (!existsSync(join(dataDir, 'pg_wal', name))) return;
  const ready = join(dataDir, 'pg_wal', 'archive_status', `${name}.ready`);
  await writeFile(ready, '', { mode: 0o600 });
  if (user) await chown(ready, user.uid, user.gid);
}

async function moveDataDir(from: string, to: string, user: ServerUser | undefined): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  if (existsSync(to)) await rmdir(to);
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await cp(from, to, { recursive: true, preserveTimestamps: true });
    if (user) await chownTree(to, user);
  }
  await chmod(to, 0o700);
}

async function chownTree(path: string, user: ServerUser): Promise<void> {
  await chown(path, user.uid, user.gid);
  if (!(await stat(path)).isDirectory()) return;
  for (const name of await readdir(path)) await chownTree(join(path, name), user);
}
