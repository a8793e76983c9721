// The cleanup job: expired rows (config cleanup.rules), optional functions and VACUUM, and backup
// retention. Bad rules fail the whole run before anything is deleted; after that, each part runs
// even if another failed (a locked table must not stop retention), and the run fails at the end
// naming every failed part, after one alert.
import type { Alerter } from '../alerts/alerter.ts';
import type { FileConfig } from '../config.ts';
import { withClient, type DbSessionOptions, type DbTarget } from '../db.ts';
import { ConfigError, PgopsError, errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { redactString } from '../redact.ts';
import type { Storage } from '../storage/types.ts';
import { applyRetention, type RetentionReport } from './retention.ts';
import { callFunctions, deleteExpiredRows, resolveFunctions, resolveRules, vacuumAnalyze, type FunctionResult, type RowRuleResult, type VacuumResult } from './rows.ts';

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
  const started = performance.now();
  const log = deps.logger;
  const { cleanup, retention } = deps.config;
  const opts = { dryRun, deadline: deps.deadline, logger: log };
  const result: CleanupResult = { dryRun, complete: false, rows: [], functions: [], vacuum: [], backups: { kept: [], deleted: [] }, durationMs: 0 };
  const failures: string[] = [];
  try {
    await withClient(deps.target, deps.session, async (client) => {
      // Every name is checked before any DELETE (and before retention touches storage).
      const rules = await resolveRules(client, cleanup.rules, { dryRun });
      const fns = await resolveFunctions(client, cleanup.callFunctions);

      // Retention first: it is quick, and a long row backlog must not starve it run after run.
      result.backups = await runRetention(deps, dryRun, failures);

      result.rows = await deleteExpiredRows(client, rules, opts);
      for (const r of result.rows) if (r.error) failures.push(`rule "${r.rule}": ${r.error}`);
      result.functions = await callFunctions(client, fns, opts);
      for (const f of result.functions) if (f.error) failures.push(`function ${f.error}`);
      if (cleanup.vacuumAnalyze) {
        result.vacuum = await vacuumAnalyze(client, rules, opts);
        for (const v of result.vacuum) if (v.error) failures.push(`vacuum ${v.error}`);
      }
    });
  } catch (err) {
    result.durationMs = Math.round(performance.now() - started);
    throw await failed(deps, dryRun, err instanceof PgopsError ? err : new CleanupError(`cleanup failed: ${redactString(errorMessage(err))}`, result, { cause: err }));
  }

  const cut = pastDeadline(deps.deadline);
  result.complete = failures.length === 0
    && result.rows.every((r) => r.complete)
    && (dryRun || result.functions.every((f) => f.called))
    && (dryRun || result.vacuum.every((v) => v.done))
    && result.backups.skipped !== 'deadline';
  result.durationMs = Math.round(performance.now() - started);
  if (failures.length > 0) {
    throw await failed(deps, dryRun, new CleanupError(`cleanup failed: ${failures.join('; ')}`, result));
  }
  const deleted = result.rows.reduce((s, r) => s + r.deleted, 0);
  log.info(`cleanup ${dryRun ? 'dry run ' : ''}done`, { rows: deleted, backupsDeleted: result.backups.deleted.length, complete: result.complete, durationMs: result.durationMs });
  if (!result.complete && cut) log.warn('cleanup stopped at its deadline; the next run continues');
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

/** One alert per failed run (not for a dry run, nor for bad config, which the caller reports). */
async function failed(deps: CleanupDeps, dryRun: boolean, error: PgopsError): Promise<PgopsError> {
  if (dryRun || error instanceof ConfigError || error.alertSent) return error;
  try {
    await deps.alerter.send({
      severity: 'critical',
      job: 'cleanup',
      database: deps.databaseId,
      environment: deps.environment,
      summary: error.message.slice(0, 300),
      details: error instanceof CleanupError ? { rows: error.result.rows, backups: { deleted: error.result.backups.deleted, skipped: error.result.backups.skipped } } : { error: error.message },
    });
    error.alertSent = true;
  } catch (err) {
    deps.logger.error('could not send the cleanup alert', { error: errorMessage(err) });
  }
  return error;
}
