// The migrate job: node-pg-migrate's runner, wrapped with what its users ask for and it lacks:
// checksums of applied files, a bounded wait on a per-table advisory lock, session timeouts,
// `-- pgops:no-transaction`, a dry-run that touches nothing, and failures named by their file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MigrationBuilder, runner } from 'node-pg-migrate';
import type pg from 'pg';
import { acquireAdvisoryLock, advisoryLockKey, describeHolder, releaseAdvisoryLock } from '../advisory-lock.ts';
import { connect, quoteIdent, type DbSessionOptions } from '../db.ts';
import type { Alerter } from '../alerts/alerter.ts';
import { LockTimeoutError, MigrationError, PgopsError, UsageError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { redactString } from '../redact.ts';
import { runJob } from '../run-job.ts';
import { IGNORE_PATTERN, createPgopsLoader, listMigrationFiles, renderMigrationSql, type HistoryTables, type MigrationFile, type ProgressTracker } from './files.ts';
import { lintGate, MigrationLintError } from './lint/gate.ts';
import { emptyMigrationWarnings } from './rules.ts';
import { computeStatus, listFiles, readApplied, refusal, type MigrateDeps, type MigrationStatus } from './status.ts';
import type { LintFinding } from './lint/types.ts';
import { checkBackupBefore, describeSafetyPoint, planSafetyPoint, recordSafetyPoint, type SafetyPoint, type SafetyPointDeps } from './safety-point.ts';

// Read-only parts live in status.ts (health imports them without the runner).
export { migrationStatus, validateMigrations, type MigrateDeps, type MigrationStatus } from './status.ts';

export type MigrateCommand = 'up' | 'down' | 'to';

export interface MigrateRequest {
  command: MigrateCommand;
  count?: number;
  target?: string;
  dryRun?: boolean;
}

export interface MigrateResult {
  direction: 'up' | 'down';
  ran: Array<{ name: string; durationMs?: number; sql?: string }>;
  dryRun: boolean;
  /** Present only when there is something to warn about (an empty migration in the plan). */
  warnings?: string[];
  /** Present only when the linter found something in the migrations applied (migrate.lint "warn", or warnings). */
  lint?: { findings: LintFinding[] };
  /** Present when migrations were (or in a dry run would be) applied: the backup and restore point taken first. */
  safetyPoint?: SafetyPoint;
}

/** A stable advisory-lock key per migrations table, so two applications sharing a database do not block each other. */
export function lockKey(tables: HistoryTables): bigint {
  return advisoryLockKey(`pgops:migrate:${tables.schema}.${tables.table}`);
}


/** Resolve `migrate to <name|prefix>` against the files. */
export function resolveMigrationName(files: MigrationFile[], wanted: string): MigrationFile {
  const exact = files.find((f) => f.name === wanted || f.file === wanted);
  if (exact) return exact;
  const matches = files.filter((f) => f.name.startsWith(wanted));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new UsageError(`no migration matches "${wanted}"`);
  throw new UsageError(`"${wanted}" matches ${matches.length} migrations (${matches.map((m) => m.name).join(', ')}): give more of the name`);
}

interface Plan { direction: 'up' | 'down'; names: string[] }

function plan(files: MigrationFile[], status: MigrationStatus, req: MigrateRequest): Plan {
  const appliedNames = status.applied.map((a) => a.name);
  const pendingNames = status.pending.map((p) => p.name);
  if (req.command === 'up') {
    const count = req.count ?? Number.POSITIVE_INFINITY;
    return { direction: 'up', names: pendingNames.slice(0, count) };
  }
  if (req.command === 'down') {
    const count = req.count ?? 1;
    return { direction: 'down', names: appliedNames.slice(-count).reverse() };
  }
  if (!req.target) throw new UsageError('migrate to needs a migration name or prefix');
  const target = resolveMigrationName(files, req.target);
  const idx = appliedNames.indexOf(target.name);
  if (idx >= 0) return { direction: 'down', names: appliedNames.slice(idx + 1).reverse() };
  const order = files.map((f) => f.name);
  const upTo = order.indexOf(target.name);
  return { direction: 'up', names: pendingNames.filter((n) => order.indexOf(n) <= upTo) };
}

function validateCount(req: MigrateRequest): void {
  if (req.count !== undefined && (!Number.isInteger(req.count) || req.count < 1)) {
    throw new UsageError(`--count must be a whole number of at least 1 (got ${String(req.count)})`);
  }
}

async function acquireLock(client: pg.Client, deps: MigrateDeps): Promise<void> {
  const where = `${deps.tables.schema}.${deps.tables.table}`;
  await acquireAdvisoryLock(client, lockKey(deps.tables), {
    waitSeconds: deps.lockWaitSeconds,
    pollMs: deps.lockPollMs,
    onWait: (h) => deps.logger.info(`another migration runner (${describeHolder(h)}) holds the lock; waiting up to ${deps.lockWaitSeconds} s`),
    timeoutError: (h) => new LockTimeoutError(`another migration runner (${describeHolder(h)}) holds the migration lock on ${where}; gave up after ${deps.lockWaitSeconds} s (migrate.lockWaitSeconds)`),
  });
}

async function ensureChecksumTable(client: pg.Client, t: HistoryTables): Promise<void> {
  await client.query(`CREATE TABLE IF NOT EXISTS ${quoteIdent(t.schema)}.${quoteIdent(t.checksums)} (
    name varchar(255) PRIMARY KEY,
    sha256 char(64) NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
  )`);
}

/** Applied migrations from before pgops tracked checksums get their current checksum recorded. */
async function adoptUntracked(client: pg.Client, deps: MigrateDeps, files: MigrationFile[], status: MigrationStatus): Promise<void> {
  const byName = new Map(files.map((f) => [f.name, f]));
  const untracked = status.applied.filter((a) => a.checksum === null && byName.has(a.name));
  if (untracked.length === 0) return;
  deps.logger.warn(`recording checksums for ${untracked.length} migration(s) applied before pgops tracked them`, { migrations: untracked.map((u) => u.name) });
  for (const a of untracked) {
    await client.query(`INSERT INTO ${quoteIdent(deps.tables.schema)}.${quoteIdent(deps.tables.checksums)} (name, sha256) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, [a.name, byName.get(a.name)!.checksum]);
  }
}

function describeFailure(err: unknown, tracker: ProgressTracker, session: DbSessionOptions): PgopsError {
  if (err instanceof PgopsError) return err;
  const e = err as { message?: string; code?: string; detail?: string; hint?: string };
  let msg = redactString(e.message ?? String(err));
  if (e.detail) msg += ` (detail: ${redactString(e.detail)})`;
  if (e.hint) msg += ` (hint: ${redactString(e.hint)})`;
  if (e.code === '55P03') msg += ` (a lock was not granted within database.lockTimeoutMs = ${session.lockTimeoutMs} ms: another session holds a conflicting lock; retry when it is gone)`;
  if (e.code === '57014') msg += ` (database.statementTimeoutMs = ${session.statementTimeoutMs} ms)`;
  const cur = tracker.current;
  if (!cur) return new MigrationError(`migrate failed: ${msg}`, { cause: err });
  const partial = cur.noTransaction ? ' It ran outside a transaction (pgops:no-transaction), so earlier statements of it may have taken effect (for example an INVALID index): check before retrying.' : ' It was rolled back.';
  return new MigrationError(`migration ${cur.file} failed (${cur.direction}): ${msg}.${partial}`, { cause: err });
}

/** What `up`, `down` and `to` need beyond MigrateDeps: where a failure is reported, and the safety point (safety-point.ts). */
export interface MigrateJobDeps extends MigrateDeps, Pick<SafetyPointDeps, 'backupBefore' | 'takeBackup' | 'clock'> {
  alerter: Alerter;
  databaseId: string;
  environment: string;
}

/** up / down / to. Takes the lock, validates the history, runs node-pg-migrate's runner. */
export async function runMigrations(deps: MigrateJobDeps, req: MigrateRequest): Promise<MigrateResult> {
  // Set once the safety point is recorded: a failure after it carries the way back in its alert.
  const recorded: { safetyPoint?: SafetyPoint } = {};
  return runJob({ alerter: deps.alerter, logger: deps.logger, databaseId: deps.databaseId, environment: deps.environment }, {
    job: 'migrate',
    silent: req.dryRun,
    details: (error) => ({
      command: req.command, target: req.target, count: req.count,
      ...(error instanceof MigrationLintError ? { lint: error.findings.filter((f) => f.severity === 'error').map(({ file, line, rule, message }) => ({ file, line, rule, message })) } : {}),
      ...(recorded.safetyPoint ? { safetyPoint: recorded.safetyPoint } : {}),
    }),
  }, async () => {
    validateCount(req);
    // `up` always goes up: a safety point it cannot take is refused before anything is written (`to` finds out once planned).
    if (req.command === 'up') checkBackupBefore(deps);
    const files = await listFiles(deps.dir);
    if (req.dryRun) return dryRun(deps, files, req);
    return withMigrationLock(deps, (client) => migrateLocked(client, deps, files, req, recorded));
  });
}

/** A session holding the per-table migration lock for `fn`. */
async function withMigrationLock<T>(deps: MigrateDeps, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(deps.target, deps.session);
  try {
    await acquireLock(client, deps);
    try {
      return await fn(client);
    } finally {
      await releaseAdvisoryLock(client, lockKey(deps.tables)).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
}

async function migrateLocked(client: pg.Client, deps: MigrateJobDeps, files: MigrationFile[], req: MigrateRequest, recorded: { safetyPoint?: SafetyPoint }): Promise<MigrateResult> {
  const tracker: ProgressTracker = {};
  try {
    await ensureChecksumTable(client, deps.tables);
    const status = computeStatus(files, await readApplied(client, deps.tables));
    const bad = refusal(files, status);
    if (bad) throw bad;
    await adoptUntracked(client, deps, files, status);
    const p = plan(files, status, req);
    if (p.names.length === 0) {
      deps.logger.info(p.direction === 'up' ? 'database is up to date: no migrations to apply' : 'no migrations to revert');
      return { direction: p.direction, ran: [], dryRun: false };
    }
    const lint = await lintPlan(deps, files, p, client);
    const warnings = planWarnings(files, p, deps.logger);
    // Nothing is applied unless the safety point's backup (when due) succeeded.
    if (p.direction === 'up') recorded.safetyPoint = await recordSafetyPoint(client, deps, files, p.names);
    const { safetyPoint } = recorded;
    return { ...(await applyPlan(client, deps, p, tracker)), ...(warnings.length > 0 ? { warnings } : {}), ...(lint ? { lint } : {}), ...(safetyPoint ? { safetyPoint } : {}) };
  } catch (err) {
    // node-pg-migrate leaves a failed per-migration transaction open on our client.
    await client.query('ROLLBACK').catch(() => {});
    const failure = describeFailure(err, tracker, deps.session);
    const wayBack = recorded.safetyPoint ? describeSafetyPoint(recorded.safetyPoint) : '';
    if (wayBack) failure.message += `\n${wayBack}`;
    throw failure;
  }
}

/** Times each migration as node-pg-migrate's loader reports it starting. */
function timedTracker(tracker: ProgressTracker, deps: MigrateDeps, direction: Plan['direction']): { tracker: ProgressTracker; durations(): Map<string, number | undefined> } {
  const timings: Array<{ name: string; started: number; durationMs?: number }> = [];
  const close = () => {
    const prev = timings.at(-1);
    if (prev && prev.durationMs === undefined) prev.durationMs = Date.now() - prev.started;
  };
  const proxy = new Proxy(tracker, {
    set(target, prop, value) {
      if (prop === 'current' && value) {
        close();
        timings.push({ name: (value as { name: string }).name, started: Date.now() });
        deps.logger.info(`migrating ${direction} ${(value as { file: string }).file}`);
      }
      return Reflect.set(target, prop, value);
    },
  });
  return { tracker: proxy, durations: () => { close(); return new Map(timings.map((t) => [t.name, t.durationMs])); } };
}

async function applyPlan(client: pg.Client, deps: MigrateDeps, p: Plan, tracker: ProgressTracker): Promise<MigrateResult> {
  const timed = timedTracker(tracker, deps, p.direction);
  const quiet = (m: unknown) => deps.logger.debug(String(m));
  const ran = await runner({
    dbClient: client,
    noLock: true, // we hold our own, bounded, per-table lock on this very session
    dir: deps.dir,
    ignorePattern: IGNORE_PATTERN,
    migrationsTable: deps.tables.table,
    migrationsSchema: deps.tables.schema,
    direction: p.direction,
    count: p.names.length,
    checkOrder: true,
    singleTransaction: false, // each migration commits on its own, as with Flyway
    migrationLoaderStrategies: [{ extensions: ['.sql', '.js', '.mjs', '.cjs'], loader: createPgopsLoader(deps.tables, timed.tracker) }],
    logger: { debug: quiet, info: quiet, warn: quiet, error: quiet },
  });
  const durations = timed.durations();
  const result = { direction: p.direction, ran: ran.map((m) => ({ name: m.name, durationMs: durations.get(m.name) })), dryRun: false };
  deps.logger.info(`${p.direction === 'up' ? 'applied' : 'reverted'} ${result.ran.length} migration(s)`);
  return result;
}

async function dryRun(deps: MigrateJobDeps, files: MigrationFile[], req: MigrateRequest): Promise<MigrateResult> {
  // Read-only: no lock, no table creation, nothing executed, no restore point, no backup.
  const client = await connect(deps.target, deps.session);
  let p: Plan;
  let lint: MigrateResult['lint'];
  let safetyPoint: SafetyPoint | undefined;
  try {
    const status = computeStatus(files, await readApplied(client, deps.tables));
    const bad = refusal(files, status);
    if (bad) throw bad;
    p = plan(files, status, req);
    // The same findings, and the same refusal, as the `up` it predicts.
    lint = await lintPlan(deps, files, p, client);
    if (p.direction === 'up' && p.names.length > 0) safetyPoint = await planSafetyPoint(client, deps, files, p.names);
  } finally {
    await client.end().catch(() => {});
  }
  const warnings = planWarnings(files, p, deps.logger);
  const byName = new Map(files.map((f) => [f.name, f]));
  const noDb = {
    query: () => Promise.reject(new MigrationError('dry-run: this migration queries the database while building its SQL, which a dry-run cannot do')),
    select: () => Promise.reject(new MigrationError('dry-run: this migration queries the database while building its SQL, which a dry-run cannot do')),
  };
  const ran: MigrateResult['ran'] = [];
  for (const name of p.names) {
    const file = byName.get(name);
    if (!file) throw new MigrationError(`applied migration ${name} has no file to revert with`);
    // MigrationBuilder only needs its db for pgm.db calls, which a dry-run refuses.
    const sql = await renderMigrationSql(file, p.direction, () => new MigrationBuilder(noDb, undefined, false, { debug() {}, info() {}, warn() {}, error() {} }));
    ran.push({ name, sql });
  }
  deps.logger.info(`dry run: would ${p.direction === 'up' ? 'apply' : 'revert'} ${ran.length} migration(s); nothing was changed`);
  return { direction: p.direction, ran, dryRun: true, ...(warnings.length > 0 ? { warnings } : {}), ...(lint ? { lint } : {}), ...(safetyPoint ? { safetyPoint } : {}) };
}

/** The lint gate over the migrations an `up` would apply (lint/gate.ts); nothing for a `down`. */
async function lintPlan(deps: MigrateDeps, files: MigrationFile[], p: Plan, client: pg.Client): Promise<MigrateResult['lint']> {
  if (p.direction !== 'up') return undefined;
  return lintGate({ mode: deps.lint ?? 'error', files, names: p.names, client, logger: deps.logger });
}

/** Empty migrations about to be applied: logged, and returned for the result. */
function planWarnings(files: MigrationFile[], p: Plan, logger: Logger): string[] {
  const warnings = p.direction === 'up' ? emptyMigrationWarnings(files, p.names) : [];
  for (const w of warnings) logger.warn(w);
  return warnings;
}

const TEMPLATE_SQL = `-- Up Migration

-- Down Migration
`;

const TEMPLATE_JS = `/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const up = (pgm) => {
};

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const down = (pgm) => {
};
`;

/** `migrate create <name>`: the next numbered file, with up and down parts. */
export async function createMigration(dir: string, name: string, options: { sql?: boolean } = {}): Promise<{ path: string; name: string }> {
  if (!/^[a-z0-9][a-z0-9_-]*$/i.test(name)) throw new UsageError(`migration name "${name}" must be letters, digits, "_" and "-" only`);
  mkdirSync(dir, { recursive: true });
  const files = await listMigrationFiles(dir);
  let next = 1;
  let width = 3;
  for (const f of files) {
    const m = /^(\d+)_/.exec(f.file);
    if (m) {
      next = Math.max(next, Number(m[1]) + 1);
      width = Math.max(width, m[1]!.length);
    }
  }
  const base = `${String(next).padStart(width, '0')}_${name}`;
  const path = join(dir, `${base}.${options.sql ? 'sql' : 'js'}`);
  writeFileSync(path, options.sql ? TEMPLATE_SQL : TEMPLATE_JS, { flag: 'wx' });
  return { path, name: base };
}
