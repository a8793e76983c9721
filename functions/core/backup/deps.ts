// What the backup, verify and restore jobs need and take: their dependencies (nothing is read
// from the environment), the backup options with their defaults, and progress reporting.
import type { Alerter } from '../alerts/alerter.ts';
import type { NormalizedBackupOptions, RowCounts } from '../catalog/manifest.ts';
import { DEFAULT_DUMP_COMPRESSION, formatCompression, parseCompression } from '../pgtools/compression.ts';
import type { DbSessionOptions, DbTarget } from '../db.ts';
import { UsageError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { JobReporting } from '../run-job.ts';
import type { Storage } from '../storage/types.ts';

/** Bytes moved so far by a backup, verify or restore (the CLI draws it; bin/render/progress.ts). */
export interface TransferProgress {
  bytes: number;
  elapsedMs: number;
}

/** Everything a backup, verify or restore job needs; nothing is read from the environment. */
export interface BackupJobDeps {
  target: DbTarget;
  storage: Storage;
  logger: Logger;
  alerter: Alerter;
  /** The id used in the storage layout and alerts (the CLI defaults it to the database name). */
  databaseId: string;
  environment: string;
  clock?: () => Date;
  /** Where pg_dump / pg_restore live (the runtime resolves it once from the settings); default: looked for. */
  binDir?: string;
  onProgress?: (p: TransferProgress) => void;
  session?: DbSessionOptions;
  /** Parent of temporary files and directories (a Fargate task's ephemeral volume); default os.tmpdir(). */
  tmpDir?: string;
  /** Aborted (with the signal's name as reason) when the job must stop: it stops its tools and cleans up. */
  signal?: AbortSignal;
  /** node-pg-migrate's history table, for the manifest's `migration`; default public.pgmigrations. */
  migrationsTable?: { schema: string; table: string };
  /** What a backup uses when its options do not say (the `backup` config section). */
  backupDefaults?: BackupDefaults;
}

/** The configured compression and row counting (config `backup.compression`, `backup.rowCounts`). */
export interface BackupDefaults {
  compression: string;
  rowCounts: RowCounts;
}

export const BUILTIN_BACKUP_DEFAULTS: BackupDefaults = { compression: DEFAULT_DUMP_COMPRESSION, rowCounts: 'exact' };

/**
 * The row counts a backup takes under the `backup.rowCounts` setting. `auto` pays for exact counts
 * (a second full read of every table) only in the scheduled backup, whose counts the scheduled
 * restore test (`backups verify latest --restore-test`) compares; on-demand backups estimate.
 */
export function rowCountsFor(setting: RowCounts | 'auto', backup: 'scheduled' | 'on-demand'): RowCounts {
  if (setting !== 'auto') return setting;
  return backup === 'scheduled' ? 'exact' : 'estimate';
}

export interface BackupOptions {
  schemaOnly?: boolean;
  dataOnly?: boolean;
  /** pg_dump -t patterns. */
  tables?: string[];
  /** pg_dump -T patterns. */
  excludeTables?: string[];
  /** >1: pg_dump directory format with N workers, tarred into the stream. */
  jobs?: number;
  /** gzip:N, lz4, zstd:N or none (pgtools/compression.ts); default: the configured one. */
  compression?: string;
  /** exact: count(*) of every table in the dump's snapshot (a second full read); estimate: the planner's statistics. */
  rowCounts?: RowCounts;
}

/** Validate and fill in defaults; bad combinations are usage errors (exit 2). */
export function normalizeBackupOptions(o: BackupOptions, defaults: BackupDefaults = BUILTIN_BACKUP_DEFAULTS): NormalizedBackupOptions {
  const issues: string[] = [];
  const compression = parseCompression(o.compression ?? defaults.compression);
  if (typeof compression === 'string') issues.push(`--compression ${compression}`);
  const rowCounts = o.rowCounts ?? defaults.rowCounts;
  if (rowCounts !== 'exact' && rowCounts !== 'estimate') issues.push(`--row-counts must be exact or estimate (got ${String(rowCounts)})`);
  if (o.schemaOnly && o.dataOnly) issues.push('--schema-only and --data-only exclude each other');
  const jobs = o.jobs ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) issues.push(`--jobs must be a whole number from 1 to 64 (got ${String(o.jobs)})`);
  for (const t of [...(o.tables ?? []), ...(o.excludeTables ?? [])]) {
    if (t.trim() === '' || t.includes('\0')) issues.push(`table pattern ${JSON.stringify(t)} is empty or contains NUL`);
  }
  if (issues.length > 0 || typeof compression === 'string') throw new UsageError('invalid backup options', issues);
  return {
    schemaOnly: !!o.schemaOnly, dataOnly: !!o.dataOnly, tables: [...(o.tables ?? [])], excludeTables: [...(o.excludeTables ?? [])], jobs,
    compression: formatCompression(compression), rowCounts,
  };
}

/** Calls `onProgress` at most every `intervalMs`, plus once at the end. */
export function progressReporter(onProgress: ((p: TransferProgress) => void) | undefined, intervalMs = 500): { update(bytes: number): void; done(bytes: number): void } {
  const start = performance.now();
  let last = start;
  const report = (bytes: number) => {
    try { onProgress?.({ bytes, elapsedMs: Math.round(performance.now() - start) }); } catch { /* a display problem never fails a job */ }
  };
  return {
    update(bytes) {
      if (!onProgress) return;
      const now = performance.now();
      if (now - last < intervalMs) return;
      last = now;
      report(bytes);
    },
    done(bytes) {
      if (onProgress) report(bytes);
    },
  };
}

/** Where a backup, verify or restore job reports its failure (run-job.ts). */
export function jobReporting(deps: Pick<BackupJobDeps, 'alerter' | 'logger' | 'databaseId' | 'environment'>): JobReporting {
  return { alerter: deps.alerter, logger: deps.logger, databaseId: deps.databaseId, environment: deps.environment };
}
