// Shared shapes of the backup jobs: their dependencies, backup ids, storage keys and the manifest.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Alert, Alerter } from '../alerts.ts';
import type { DbSessionOptions, DbTarget } from '../db.ts';
import { ConfigError, UsageError, errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Storage } from '../storage/types.ts';

export interface Progress {
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
  /** Where pg_dump / pg_restore live; default findPgBinDir(). */
  binDir?: string;
  onProgress?: (p: Progress) => void;
  session?: DbSessionOptions;
  /** Parent of temporary files and directories (a Fargate task's ephemeral volume); default os.tmpdir(). */
  tmpDir?: string;
  /** node-pg-migrate's history table, for the manifest's `migration`; default public.pgmigrations. */
  migrationsTable?: { schema: string; table: string };
}

export type BackupFormat = 'custom' | 'directory-tar';

export interface BackupOptions {
  schemaOnly?: boolean;
  dataOnly?: boolean;
  /** pg_dump -t patterns. */
  tables?: string[];
  /** pg_dump -T patterns. */
  excludeTables?: string[];
  /** >1: pg_dump directory format with N workers, tarred into the stream. */
  jobs?: number;
}

export interface TableCount {
  schema: string;
  name: string;
  /** Exact count(*) in the dump's snapshot; null for a schema-only backup. */
  rows: number | null;
}

export interface BackupManifest {
  id: string;
  database: string;
  /** The PostgreSQL database that was dumped (databaseId may differ). */
  sourceDatabase: string;
  kind: 'logical';
  format: BackupFormat;
  startedAt: string;
  completedAt: string;
  durationMs: number;
  bytes: number;
  sha256: string;
  serverVersion: string;
  pgDumpVersion: string;
  options: Required<Pick<BackupOptions, 'schemaOnly' | 'dataOnly' | 'tables' | 'excludeTables' | 'jobs'>>;
  /** Last applied migration, null when the database has no migration history. */
  migration: string | null;
  /** Storage key of the dump, relative to the storage root. */
  key: string;
  tables: TableCount[];
}

export const manifestSchema = z.looseObject({
  id: z.string(),
  database: z.string(),
  kind: z.literal('logical'),
  format: z.enum(['custom', 'directory-tar']),
  startedAt: z.string(),
  completedAt: z.string(),
  durationMs: z.number(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  serverVersion: z.string(),
  pgDumpVersion: z.string(),
  options: z.looseObject({}),
  migration: z.string().nullable(),
  key: z.string(),
  tables: z.array(z.object({ schema: z.string(), name: z.string(), rows: z.number().nullable() })).default([]),
});

const BACKUP_ID = /^\d{8}T\d{6}Z-[0-9a-f]{4}$/;
const DATABASE_ID = /^[A-Za-z0-9_.-]{1,128}$/;

/** `20261122T020000Z-3fa2`: UTC to the second, then 4 random hex digits; sorts by time. */
export function newBackupId(at: Date, random: () => string = () => randomBytes(2).toString('hex')): string {
  const stamp = at.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
  return `${stamp}-${random()}`;
}

export function isBackupId(id: string): boolean {
  return BACKUP_ID.test(id);
}

/** The database id becomes a key segment: refuse anything that could escape it. */
export function checkDatabaseId(databaseId: string): string {
  if (!DATABASE_ID.test(databaseId) || databaseId === '.' || databaseId === '..') {
    throw new ConfigError('invalid configuration', [`database id "${databaseId}": letters, digits, dot, dash and underscore only`]);
  }
  return databaseId;
}

export function logicalPrefix(databaseId: string): string {
  return `${checkDatabaseId(databaseId)}/logical/`;
}

export function backupKeys(databaseId: string, id: string): { dir: string; dump: string; manifest: string; restoreTest: string } {
  const dir = `${logicalPrefix(databaseId)}${id}/`;
  return { dir, dump: `${dir}dump`, manifest: `${dir}manifest.json`, restoreTest: `${dir}restore-test.json` };
}

/** Validate and fill in defaults; bad combinations are usage errors (exit 2). */
export function normalizeBackupOptions(o: BackupOptions): BackupManifest['options'] {
  const issues: string[] = [];
  if (o.schemaOnly && o.dataOnly) issues.push('--schema-only and --data-only exclude each other');
  const jobs = o.jobs ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) issues.push(`--jobs must be a whole number from 1 to 64 (got ${String(o.jobs)})`);
  for (const t of [...(o.tables ?? []), ...(o.excludeTables ?? [])]) {
    if (t.trim() === '' || t.includes('\0')) issues.push(`table pattern ${JSON.stringify(t)} is empty or contains NUL`);
  }
  if (issues.length > 0) throw new UsageError('invalid backup options', issues);
  return { schemaOnly: !!o.schemaOnly, dataOnly: !!o.dataOnly, tables: [...(o.tables ?? [])], excludeTables: [...(o.excludeTables ?? [])], jobs };
}

/** Sending an alert never fails a job: a broken destination is only logged. */
export async function sendAlert(deps: Pick<BackupJobDeps, 'alerter' | 'logger' | 'databaseId' | 'environment'>, alert: Omit<Alert, 'database' | 'environment'>): Promise<void> {
  try {
    await deps.alerter.send({ ...alert, database: deps.databaseId, environment: deps.environment });
  } catch (err) {
    deps.logger.error('could not send alert', { error: errorMessage(err) });
  }
}

/** Calls `onProgress` at most every `intervalMs`, plus once at the end. */
export function progressReporter(onProgress: ((p: Progress) => void) | undefined, intervalMs = 500): { update(bytes: number): void; done(bytes: number): void } {
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
