// What `migrate status` and `validate` read, and health's migrations check: the files against the
// history table. No node-pg-migrate runner here, so health's bundle does not carry it.
import { existsSync } from 'node:fs';
import type pg from 'pg';
import { quoteIdent, withClient, type DbSessionOptions, type DbTarget } from '../db.ts';
import { ConfigError, MigrationHistoryError, type MigrationError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { emptyMigrationWarnings, findOutOfOrder, orderError, type OutOfOrderMigration } from './rules.ts';
import { listMigrationFiles, type HistoryTables, type MigrationFile } from './files.ts';
import type { LintMode } from './lint/types.ts';

export interface MigrateDeps {
  target: DbTarget;
  session: DbSessionOptions;
  dir: string;
  tables: HistoryTables;
  lockWaitSeconds: number;
  logger: Logger;
  /** Poll interval while waiting for the lock (tests shorten it). */
  lockPollMs?: number;
  /** `migrate.lint`: what an error finding in a pending migration does to `up` (default "error": refuse). */
  lint?: LintMode;
}

export interface MigrationStatus {
  applied: Array<{ name: string; runOn: string; checksum: string | null }>;
  pending: Array<{ name: string }>;
  modified: Array<{ name: string; file: string; recorded: string; current: string }>;
  missing: Array<{ name: string }>;
  /** Present only when some pending file sorts before an applied one (`validate` and `up` refuse it). */
  outOfOrder?: OutOfOrderMigration[];
  /** Present only when there is something to warn about (an empty pending migration). */
  warnings?: string[];
}


export async function tableExists(client: pg.Client, schema: string, table: string): Promise<boolean> {
  const r = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${quoteIdent(schema)}.${quoteIdent(table)}`]);
  return r.rows[0]?.t != null;
}

export interface AppliedRow { name: string; runOn: Date; checksum: string | null }

export async function readApplied(client: pg.Client, t: HistoryTables): Promise<AppliedRow[]> {
  if (!(await tableExists(client, t.schema, t.table))) return [];
  const withChecksums = await tableExists(client, t.schema, t.checksums);
  const history = `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`;
  const sql = withChecksums
    ? `SELECT m.name, m.run_on AT TIME ZONE current_setting('TimeZone') AS run_on, c.sha256 AS checksum FROM ${history} m LEFT JOIN ${quoteIdent(t.schema)}.${quoteIdent(t.checksums)} c ON c.name = m.name ORDER BY m.run_on, m.id`
    : `SELECT m.name, m.run_on AT TIME ZONE current_setting('TimeZone') AS run_on, NULL::text AS checksum FROM ${history} m ORDER BY m.run_on, m.id`;
  const r = await client.query<{ name: string; run_on: Date; checksum: string | null }>(sql);
  return r.rows.map((row) => ({ name: row.name, runOn: row.run_on, checksum: row.checksum }));
}

export function computeStatus(files: MigrationFile[], applied: AppliedRow[]): MigrationStatus {
  const byName = new Map(files.map((f) => [f.name, f]));
  const appliedNames = new Set(applied.map((a) => a.name));
  const pending = files.filter((f) => !appliedNames.has(f.name)).map((f) => f.name);
  const outOfOrder = findOutOfOrder(files, applied.map((a) => a.name));
  const warnings = emptyMigrationWarnings(files, pending);
  return {
    applied: applied.map((a) => ({ name: a.name, runOn: a.runOn.toISOString(), checksum: a.checksum })),
    pending: files.filter((f) => !appliedNames.has(f.name)).map((f) => ({ name: f.name })),
    modified: applied.flatMap((a) => {
      const f = byName.get(a.name);
      return f && a.checksum && a.checksum !== f.checksum ? [{ name: a.name, file: f.file, recorded: a.checksum, current: f.checksum }] : [];
    }),
    missing: applied.filter((a) => !byName.has(a.name)).map((a) => ({ name: a.name })),
    ...(outOfOrder.length > 0 ? { outOfOrder } : {}),
    ...(warnings.length > 0 ? { warnings } : {}),
  };
}

export function historyError(s: MigrationStatus): MigrationHistoryError | undefined {
  if (s.modified.length === 0 && s.missing.length === 0) return undefined;
  return new MigrationHistoryError(s.modified.map((m) => m.file), s.missing.map((m) => m.name));
}

/** What every command refuses, in one place: edited or deleted applied files, then files out of order. */
export function refusal(files: MigrationFile[], s: MigrationStatus): MigrationError | undefined {
  return historyError(s) ?? orderError(files, s.applied.map((a) => a.name));
}

export async function listFiles(dir: string): Promise<MigrationFile[]> {
  if (!existsSync(dir)) throw new ConfigError(`migrations directory ${dir} does not exist (set --dir or PGOPS_MIGRATIONS_DIR)`);
  return listMigrationFiles(dir);
}

/** applied / pending / modified / missing. Read-only: creates nothing. */
export async function migrationStatus(deps: MigrateDeps): Promise<MigrationStatus> {
  const files = await listFiles(deps.dir);
  const status = await withClient(deps.target, deps.session, async (client) => computeStatus(files, await readApplied(client, deps.tables)));
  // A finding here, a refusal in validate and up: the same rule, the same words.
  const order = orderError(files, status.applied.map((a) => a.name));
  if (order) deps.logger.warn(order.message);
  for (const w of status.warnings ?? []) deps.logger.warn(w);
  return status;
}

/** Like status, but throws (exit 1) when an applied file was edited or deleted, or a pending one is out of order. */
export async function validateMigrations(deps: MigrateDeps): Promise<MigrationStatus> {
  const files = await listFiles(deps.dir);
  const status = await withClient(deps.target, deps.session, async (client) => computeStatus(files, await readApplied(client, deps.tables)));
  const err = refusal(files, status);
  if (err) throw err;
  for (const w of status.warnings ?? []) deps.logger.warn(w);
  return status;
}
