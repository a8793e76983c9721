// The base backup job (pgops basebackup): pg_basebackup -Ft -D - -X none streamed through a tar
// reader, compression and a SHA-256 meter into `<db>/physical/<id>/base.tar[.gz|.zst|.lz4]`; then
// the wait until every WAL segment the backup needs is committed in the archive; the manifest last.
// Like the logical backup, a failure of any kind (pg_basebackup's exit or signal, the storage, the
// WAL not reaching the archive) leaves no manifest and no base object, and alerts once.
import { join } from 'node:path';
import type pg from 'pg';
import { acquireAdvisoryLock, advisoryLockKey, describeHolder } from '../advisory-lock.ts';
import { jobReporting, type BackupJobDeps, type TransferProgress } from '../backup/deps.ts';
import { newBackupId, physicalKeys, type PhysicalCompression } from '../catalog/layout.ts';
import { parsePhysicalManifest, walSegmentsOf, type PhysicalManifest } from '../catalog/physical.ts';
import type { FileConfig } from '../config.ts';
import { connect, DEFAULT_SESSION } from '../db.ts';
import { errorMessage } from '../errors.ts';
import { findPgBinDir } from '../pgtools/binaries.ts';
import { toolVersion, type ToolVersion } from '../pgtools/tools.ts';
import { redactString } from '../redact.ts';
import { interruptionOr, runJob, throwIfInterrupted } from '../run-job.ts';
import { checkCompression, physicalCompressionOf } from './compression.ts';
import { BaseBackupError, BaseBackupLockedError, BaseTarError } from './errors.ts';
import { checkBaseBackupVersions } from './pg-basebackup.ts';
import { streamBaseBackup, type Streamed } from './stream.ts';
import type { BaseTarFacts } from './tar-scan.ts';
import { waitForArchivedWal } from './wal-wait.ts';

/** Bytes of the tar read from pg_basebackup so far; `total` is the databases' size, a rough bound. */
export interface BaseBackupProgress extends TransferProgress {
  total?: number;
}

export interface BaseBackupDeps extends BackupJobDeps {
  onProgress?: (p: BaseBackupProgress) => void;
  /** The `physical` config section (compression, archiveWaitSeconds); defaults apply to what is missing. */
  physical?: Partial<FileConfig['physical']>;
  /** How often the archive and the server's phase are polled (default 1000 ms). */
  archivePollMs?: number;
}

export interface BaseBackupOptions {
  /** gzip, zstd, lz4 or none, optionally with a level (`zstd:3`). */
  compression?: string;
  archiveWaitSeconds?: number;
}

export interface BaseBackupRun {
  id: string;
  compression: PhysicalCompression;
  /** null for none. */
  compressionLevel: number | null;
  keys: ReturnType<typeof physicalKeys>;
  started: Date;
  t0: number;
  archiveWaitSeconds: number;
  pollMs: number;
}

export interface ServerFacts {
  num: number;
  text: string;
  systemIdentifier: string;
  walSegmentSize: number;
  /** The databases' total size: bounds the tar, for S3's part size and the progress line. */
  sizeBytes: number;
  role: string;
  canReplicate: boolean;
  archiveMode: string;
}

/** One base backup at a time per database: a session advisory lock on this key. */
export function baseBackupLockKey(databaseId: string): bigint {
  return advisoryLockKey(`pgops:basebackup:${databaseId}`);
}

const clockOf = (deps: BaseBackupDeps): (() => Date) => deps.clock ?? (() => new Date());

/**
 * Take a base backup of the whole cluster into `<databaseId>/physical/<backupId>/` and write its
 * manifest last, once its WAL is archived. Throws (after alerting) when anything fails; then no
 * manifest and no base object remain.
 */
export async function runBaseBackup(deps: BaseBackupDeps, options: BaseBackupOptions = {}): Promise<PhysicalManifest> {
  const started = clockOf(deps)();
  const id = newBackupId(started);
  const { method: compression, level: compressionLevel } = physicalCompressionOf(options.compression ?? deps.physical?.compression ?? 'gzip');
  const run: BaseBackupRun = {
    id, compression, compressionLevel, keys: physicalKeys(deps.databaseId, id, compression), started, t0: performance.now(),
    archiveWaitSeconds: options.archiveWaitSeconds ?? deps.physical?.archiveWaitSeconds ?? 120,
    pollMs: deps.archivePollMs ?? 1000,
  };
  return runJob(jobReporting(deps), {
    job: 'basebackup',
    wrap: (m, cause) => new BaseBackupError(`basebackup failed: ${redactString(m)}`, { cause }),
    summary: (e) => (/^basebackup (failed|interrupted)/.test(e.message) ? e.message : `basebackup failed: ${e.message}`),
    details: (e) => ({ backupId: id, storage: deps.storage.url, server: deps.target.display, error: e.message }),
  }, () => baseBackupOnce(deps, run));
}

async function baseBackupOnce(deps: BaseBackupDeps, run: BaseBackupRun): Promise<PhysicalManifest> {
  const written = { base: false, manifest: false };
  let control: pg.Client | undefined;
  try {
    checkCompression(run.compression);
    const binDir = deps.binDir ?? findPgBinDir({ tools: ['pg_basebackup'] });
    throwIfInterrupted('basebackup', deps.signal);
    // This session holds the lock, watches pg_basebackup's walsender and reads the server's facts.
    control = await connect(deps.target, deps.session ?? DEFAULT_SESSION, 'pgops-basebackup-control');
    await acquireLock(control, deps.databaseId);
    const server = await readServerFacts(control);
    checkServer(deps, server);
    const tool = await toolVersion(join(binDir, 'pg_basebackup'));
    checkBaseBackupVersions(tool, server.num);
    throwIfInterrupted('basebackup', deps.signal);
    deps.logger.info(`base backup of ${deps.target.display} to ${deps.storage.url}`, { backupId: run.id, key: run.keys.base });
    written.base = true;
    const streamed = await streamBaseBackup(deps, run, { binDir, control, server });
    const stoppedAt = await serverTime(control);
    const wal = walRangeOf(streamed.facts, server.walSegmentSize);
    deps.logger.info(`base backup streamed; waiting for its WAL (${wal.startSegment}..${wal.stopSegment}) in the archive`, { bytes: streamed.bytes });
    await waitForArchivedWal(deps.storage, deps.databaseId, { ...wal, walSegmentSize: server.walSegmentSize }, {
      deadline: streamed.walWaitStartedAt + run.archiveWaitSeconds * 1000, budgetSeconds: run.archiveWaitSeconds, pollMs: run.pollMs, signal: deps.signal,
    });
    const manifest = buildManifest(deps, run, { server, tool, streamed, wal, stoppedAt });
    // The last moment to stop: once the manifest is written, the backup exists.
    throwIfInterrupted('basebackup', deps.signal);
    written.manifest = true;
    await deps.storage.putBytes(run.keys.manifest, `${JSON.stringify(manifest, null, 2)}\n`, { contentType: 'application/json' });
    deps.logger.info(`base backup ${run.id} complete`, { bytes: manifest.bytes, durationMs: manifest.durationMs, stopLsn: manifest.stopLsn });
    return manifest;
  } catch (err) {
    await removePartialBackup(deps, run.keys, written);
    throw interruptionOr('basebackup', deps.signal, err);
  } finally {
    // Ending the session releases the lock.
    await control?.end().catch(() => {});
  }
}

async function acquireLock(client: pg.Client, databaseId: string): Promise<void> {
  await acquireAdvisoryLock(client, baseBackupLockKey(databaseId), {
    waitSeconds: 0,
    timeoutError: (h) => new BaseBackupLockedError(`another base backup of database "${databaseId}" is already running${h ? ` (held by ${describeHolder(h)})` : ''}: try again when it has finished`),
  });
}

export async function readServerFacts(control: pg.Client): Promise<ServerFacts> {
  const r = await control.query<{ num: string; text: string; sysid: string; segsize: string; role: string; can_replicate: boolean | null; archive_mode: string }>(
    `SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS text,
            (SELECT system_identifier::text FROM pg_control_system()) AS sysid,
            (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS segsize,
            current_user AS role,
            (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS can_replicate,
            current_setting('archive_mode') AS archive_mode`);
  const row = r.rows[0]!;
  // Only for S3's part size and the progress line: a role that may not size a database gets 0.
  const size = await control.query<{ size: string | null }>("SELECT sum(pg_database_size(oid)) AS size FROM pg_database WHERE has_database_privilege(oid, 'CONNECT')").catch(() => undefined);
  return {
    num: Number(row.num), text: row.text, systemIdentifier: row.sysid, walSegmentSize: Number(row.segsize),
    sizeBytes: Number(size?.rows[0]?.size ?? 0), role: row.role, canReplicate: row.can_replicate === true, archiveMode: row.archive_mode,
  };
}

function checkServer(deps: BaseBackupDeps, server: ServerFacts): void {
  if (!server.canReplicate) {
    throw new BaseBackupError(`role "${server.role}" has no REPLICATION attribute, which pg_basebackup needs: ALTER ROLE "${server.role}" REPLICATION `
      + '(and a "replication" line for it in pg_hba.conf); RDS and Aurora grant no REPLICATION: use their own point-in-time recovery');
  }
  if (server.archiveMode === 'off') {
    deps.logger.warn('archive_mode is off on the server: this base backup completes only if `pgops wal receive` is streaming the WAL to the archive');
  }
}

async function serverTime(control: pg.Client): Promise<string> {
  const r = await control.query<{ t: Date }>('SELECT clock_timestamp() AS t');
  return r.rows[0]!.t.toISOString();
}

interface WalOfBackup {
  timeline: number;
  startLsn: string;
  stopLsn: string;
  startSegment: string;
  stopSegment: string;
}

/** The manifest's WAL range, checked against backup_label: one timeline, one start. */
export function walRangeOf(facts: BaseTarFacts, walSegmentSize: number): WalOfBackup {
  if (facts.walRanges.length !== 1) {
    throw new BaseBackupError(`the backup spans timelines ${facts.walRanges.map((r) => r.timeline).join(', ')} (the server was promoted while it ran): take a new base backup`);
  }
  const range = facts.walRanges[0]!;
  if (range.timeline !== facts.startTimeline || range.startLsn !== facts.startLsn) {
    throw new BaseTarError(`backup_label (start ${facts.startLsn} on timeline ${facts.startTimeline}) and backup_manifest (${range.startLsn} on timeline ${range.timeline}) disagree`);
  }
  const wal = { timeline: range.timeline, startLsn: range.startLsn, stopLsn: range.endLsn, walSegmentSize };
  return { ...wal, ...walSegmentsOf(wal) };
}

interface ManifestParts {
  server: ServerFacts;
  tool: ToolVersion;
  streamed: Streamed;
  wal: WalOfBackup;
  stoppedAt: string;
}

function buildManifest(deps: BaseBackupDeps, run: BaseBackupRun, p: ManifestParts): PhysicalManifest {
  const manifest: PhysicalManifest = {
    id: run.id, database: deps.databaseId, kind: 'physical', formatVersion: 1, format: 'tar', compression: run.compression, ...(run.compressionLevel !== null ? { compressionLevel: run.compressionLevel } : {}), walMethod: 'none',
    startedAt: run.started.toISOString(), completedAt: clockOf(deps)().toISOString(), durationMs: Math.round(performance.now() - run.t0),
    bytes: p.streamed.bytes, sha256: p.streamed.sha256, key: run.keys.base,
    serverVersion: p.server.text, serverVersionNum: p.server.num, pgBasebackupVersion: p.tool.text,
    systemIdentifier: p.server.systemIdentifier, ...p.wal, walSegmentSize: p.server.walSegmentSize,
    stoppedAt: p.stoppedAt, sourceHost: deps.target.display, tarBytes: p.streamed.facts.tarBytes,
    ...(p.streamed.facts.checkpointLsn ? { checkpointLsn: p.streamed.facts.checkpointLsn } : {}),
  };
  // Never write a manifest the catalog would reject: the backup would exist and be unusable.
  const check = parsePhysicalManifest(JSON.stringify(manifest));
  if ('problem' in check) throw new BaseBackupError(`the manifest pgops built does not pass the catalog's rules: ${check.problem}`);
  return manifest;
}

/** Nothing half-written may remain: a base object without a manifest is not a backup. */
async function removePartialBackup(deps: BaseBackupDeps, keys: BaseBackupRun['keys'], written: { base: boolean; manifest: boolean }): Promise<void> {
  const log = deps.logger;
  if (written.manifest) await deps.storage.delete(keys.manifest).catch((e) => log.warn('could not remove the manifest', { key: keys.manifest, error: errorMessage(e) }));
  if (written.base) await deps.storage.delete(keys.base).catch((e) => log.warn('could not remove the partial base backup', { key: keys.base, error: errorMessage(e) }));
}
