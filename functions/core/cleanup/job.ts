// The cleanup job: expired rows (config cleanup.rules), optional functions and VACUUM, and backup
// retention. Bad rules fail the whole run before anything is deleted; after that, each part runs
// even if another failed (a locked table must not stop retention), and the run fails at the end
// naming every failed part, after one alert.
import type { Alerter } from '../alerts/alerter.ts';
import type { FileConfig } from '../config.ts';
import { withClient, type DbSessionOptions, type DbTarget } from '../db.ts';
import { ConfigError, PgopsError, errorMessage } from '../errors.ts';
import { runJob } from '../run-job.ts';
import type { Logger } from '../logger.ts';
import { redactString } from '../redact.ts';
import type { Storage } from '../storage/types.ts';
import { applyRetention, type RetentionReport } from './retention.ts';
import { callFunctions, deleteExpiredRows, resolveFunctions, resolveRules, vacuumAnalyze, type FunctionResult, type RowRuleResult, type VacuumResult } from './rows.ts';
import { sweepStaleScratch } from '../backup/scratch.ts';
import { runWalRetention, type PhysicalRetentionResult, type WalRetentionResult } from './wal-retention.ts';
import type { ClientFactory } from '../aws/clients.ts';
import type { Rds } from '../aws/rds.ts';
import { runManagedPitrCleanup, type ManagedPitrCleanupResult } from './managed-pitr.ts';

export interface CleanupDeps {
  target: DbTarget;
  session: DbSessionOptions;
  /** Without storage, retention is skipped (and the result says so). */
  storage?: Storage;
  logger: Logger;
  alerter: Alerter;
  databaseId: string;
  environment: string;
  config: FileConfig;
  /** "Now" for backup ages (orphans); default the system clock. */
  clock?: () => Date;
  /** ms timestamp on the Date.now() scale: no new batch or step starts after it. */
  deadline?: number;
  /** Where the jobs of this machine keep scratch files (default os.tmpdir()): swept of what killed jobs left. */
  tmpDir?: string;
  /** Set when the database is RDS/Aurora (managed.*): expired managed PITR copies are deleted. */
  rds?: ClientFactory<Rds>;
  /** The RDS instance or Aurora cluster this database is (managed.*): cleanup deletes only its copies. */
  managedSource?: string;
}

export interface CleanupRequest {
  dryRun?: boolean;
}

export interface BackupsResult extends Partial<Omit<RetentionReport, 'kept' | 'deleted'>> {
  kept: string[];
  deleted: string[];
  /** Why retention did not run (no storage, deadline, failure). */
  skipped?: string;
  storage?: string;
}

export interface CleanupResult {
  dryRun: boolean;
  /** false when the deadline cut the run short or a part failed: the next run continues. */
  complete: boolean;
  rows: RowRuleResult[];
  functions: FunctionResult[];
  vacuum: VacuumResult[];
  backups: BackupsResult;
  /** Base backups kept and deleted by the same keep rules as logical full backups. */
  physical: PhysicalRetentionResult;
  /** The WAL archive: files no kept base backup needs, deleted (or that would be). */
  wal: WalRetentionResult;
  /** Scratch directories of killed backup, verify or restore runs (older than a day) removed from this machine. */
  scratch: string[];
  /** RDS instances and Aurora clusters of managed PITR past their pgops:expires tag: deleted (or that would be). */
  managedPitr: ManagedPitrCleanupResult;
  durationMs: number;
}

/** Some part of the run failed; `result` holds what was done. Exit code 1. */
export class CleanupError extends PgopsError {
  constructor(message: string, readonly result: CleanupResult, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const pastDeadline = (deadline?: number) => deadline !== undefined && Date.now() >= deadline;

export async function runCleanup(deps: CleanupDeps, request: CleanupRequest = {}): Promise<CleanupResult> {
  const dryRun = request.dryRun ?? false;
  const result: CleanupResult = { dryRun, complete: false, rows: [], functions: [], vacuum: [], backups: { kept: [], deleted: [] }, physical: { kept: [], deleted: [] }, wal: { deleted: 0, bytes: 0, keptFrom: null }, scratch: [], managedPitr: { deleted: [], pending: [], kept: [] }, durationMs: 0 };
  const started = performance.now();
  return runJob({ alerter: deps.alerter, logger: deps.logger, databaseId: deps.databaseId, environment: deps.environment }, {
    job: 'cleanup',
    silent: dryRun,
    wrap: (m, cause) => new CleanupError(`cleanup failed: ${redactString(m)}`, result, { cause }),
    details: (e) => (e instanceof CleanupError ? { rows: e.result.rows, backups: { deleted: e.result.backups.deleted, skipped: e.result.backups.skipped } } : { error: e.message }),
  }, async () => {
    try {
      return await cleanupOnce(deps, result);
    } finally {
      result.durationMs = Math.round(performance.now() - started);
    }
  });
}

/** The parts of one run, in order; fills `result` as it goes and throws naming every failed part. */
async function cleanupOnce(deps: CleanupDeps, result: CleanupResult): Promise<CleanupResult> {
  const { dryRun } = result;
  const { cleanup } = deps.config;
  const opts = { dryRun, deadline: deps.deadline, logger: deps.logger };
  const failures: string[] = [];
  await withClient(deps.target, deps.session, async (client) => {
    // Every name is checked before any DELETE (and before retention touches storage).
    const rules = await resolveRules(client, cleanup.rules, { dryRun });
    const fns = await resolveFunctions(client, cleanup.callFunctions);
    // Retention first: it is quick, and a long row backlog must not starve it run after run.
    result.backups = await runRetention(deps, dryRun, failures);
    const walPart = { storage: deps.storage, databaseId: deps.databaseId, retention: deps.config.retention, logger: deps.logger, now: (deps.clock ?? (() => new Date()))(), deadline: deps.deadline };
    Object.assign(result, await runWalRetention(walPart, dryRun, failures));
    result.managedPitr = await runManagedPitrCleanup({ rds: deps.rds, source: deps.managedSource, logger: deps.logger, now: walPart.now, deadline: deps.deadline }, dryRun, failures);
    result.rows = await deleteExpiredRows(client, rules, opts);
    for (const r of result.rows) if (r.error) failures.push(`rule "${r.rule}": ${r.error}`);
    result.functions = await callFunctions(client, fns, opts);
    for (const f of result.functions) if (f.error) failures.push(`function ${f.error}`);
    if (cleanup.vacuumAnalyze) {
      result.vacuum = await vacuumAnalyze(client, rules, opts);
      for (const v of result.vacuum) if (v.error) failures.push(`vacuum ${v.error}`);
    }
  });
  result.complete = failures.length === 0
    && result.rows.every((r) => r.complete)
    && (dryRun || result.functions.every((f) => f.called))
    && (dryRun || result.vacuum.every((v) => v.done))
    && result.backups.skipped !== 'deadline'
    && result.wal.skipped !== 'deadline'
    && result.managedPitr.skipped !== 'deadline';
  if (failures.length > 0) throw new CleanupError(`cleanup failed: ${failures.join('; ')}`, result);
  // What a killed (kill -9) job left on this machine; the next restore or verify sweeps it too.
  if (!dryRun) result.scratch = await sweepStaleScratch(deps.tmpDir, deps.logger);
  const deleted = result.rows.reduce((s, r) => s + r.deleted, 0);
  deps.logger.info(`cleanup ${dryRun ? 'dry run ' : ''}done`, { rows: deleted, backupsDeleted: result.backups.deleted.length, complete: result.complete });
  if (!result.complete && pastDeadline(deps.deadline)) deps.logger.warn('cleanup stopped at its deadline; the next run continues');
  return result;
}

async function runRetention(deps: CleanupDeps, dryRun: boolean, failures: string[]): Promise<BackupsResult> {
  if (!deps.storage) {
    deps.logger.info('no storage configured: backup retention skipped');
    return { kept: [], deleted: [], skipped: 'no storage configured' };
  }
  if (pastDeadline(deps.deadline)) return { kept: [], deleted: [], skipped: 'deadline', storage: deps.storage.url };
  try {
    const report = await applyRetention(deps.storage, deps.databaseId, deps.config.retention, { dryRun, now: (deps.clock ?? (() => new Date()))(), logger: deps.logger });
    return { ...report, storage: deps.storage.url };
  } catch (err) {
    // A bad database id is configuration; anything else (storage down, denied) fails the part.
    if (err instanceof ConfigError) throw err;
    const message = redactString(errorMessage(err));
    failures.push(`backup retention: ${message}`);
    deps.logger.error(`backup retention failed: ${message}`);
    return { kept: [], deleted: [], skipped: `failed: ${message}`, storage: deps.storage.url };
  }
}
