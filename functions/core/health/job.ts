// The health job: every check of issue 4, thresholds from config `health.*`. A check that cannot
// run is `unknown` and the others still run; an unreachable database is a critical `connection`
// with the database checks `unknown`; the overall status is the worst.
import type pg from 'pg';
import { connect } from '../db.ts';
import { errorMessage } from '../errors.ts';
import { historyTables } from '../migrate/history.ts';
import { migrationStatus } from '../migrate/status.ts';
import { formatBytes } from '../format.ts';
import { redact, redactString } from '../redact.ts';
import { backupChecks, type BackupFacts } from './backups.ts';
import {
  checkBlocked, checkBloat, checkConnections, checkLongRunning, checkReplication, checkUnusedIndexes,
  readDatabaseSize, readServerFacts, type DbCheckContext,
} from './database.ts';
import { checkServerWal, readWalArchive, walArchivingResult } from './wal-archiving.ts';
import { checkRestoreWindow } from './restore-window.ts';
import { checkReplica } from './replica.ts';
import { managedConfigOf } from '../config.ts';
import { checkDatabaseId } from '../catalog/layout.ts';
import { addSizeSample, emptyHealthState, growthSince, readHealthState, writeHealthState, type HealthState } from './state.ts';
import { CHECK_NAMES, worstStatus, type CheckName, type CheckResult, type HealthDeps, type HealthResult } from './types.ts';

const DB_CHECKS: CheckName[] = ['migrations', 'connections', 'long-running-queries', 'blocked-queries', 'bloat', 'database-size', 'unused-indexes', 'wal-archiving', 'replication'];

/** Why a check could not run, in words an operator can act on. */
function cannotRun(name: CheckName, err: unknown): CheckResult {
  const code = (err as { code?: string }).code;
  const message = redactString(errorMessage(err));
  const hint = code === '42501' ? ' (grant pg_monitor to the health role)' : code === '57014' ? ' (the query hit the health statement timeout)' : '';
  return { name, status: 'unknown', summary: `could not run: ${message}${hint}`, details: code ? { sqlState: code } : undefined };
}

async function guarded(name: CheckName, fn: () => Promise<CheckResult>): Promise<CheckResult> {
  try {
    return await fn();
  } catch (err) {
    return cannotRun(name, err);
  }
}

export interface HealthRun {
  result: HealthResult;
  /** For metrics: the newest backup's age and size. */
  backup: BackupFacts;
}

export async function runHealth(deps: HealthDeps): Promise<HealthResult> {
  return (await runHealthDetailed(deps)).result;
}

/** State is best effort: without it growth and "failures since the last run" start afresh. */
async function previousState(deps: HealthDeps): Promise<{ state: HealthState; stateError?: string }> {
  if (!deps.storage) return { state: emptyHealthState() };
  // A database id that cannot name a storage folder is bad configuration, not a failing check.
  checkDatabaseId(deps.databaseId);
  try {
    return { state: await readHealthState(deps.storage, deps.databaseId) };
  } catch (err) {
    const stateError = redactString(errorMessage(err));
    deps.logger.warn('could not read the health state', { error: stateError });
    return { state: emptyHealthState(), stateError };
  }
}

export async function runHealthDetailed(deps: HealthDeps): Promise<HealthRun> {
  const clock = deps.clock ?? (() => new Date());
  const now = clock();
  const started = performance.now();
  const thresholds = deps.config.health;
  const results = new Map<CheckName, CheckResult>();

  const { state, stateError } = await previousState(deps);
  const nextState: HealthState = { ...state };

  const backupsDone = backupChecks(deps.storage, deps.databaseId, thresholds, now, deps.logger);
  const walArchiveDone = readWalArchive(deps.storage, deps.databaseId, deps.config, now);
  // RDS/Aurora only: AWS's restore window, judged whatever the database connection does.
  const rds = deps.rds;
  const restoreWindowDone = rds ? guarded('restore-window', () => checkRestoreWindow({ rds, managed: managedConfigOf(deps.config), thresholds, now })) : undefined;

  let client: pg.Client | undefined;
  const t0 = performance.now();
  try {
    client = await connect(deps.target, deps.session);
    await client.query('SELECT 1');
    const ms = Math.round(performance.now() - t0);
    results.set('connection', { name: 'connection', status: 'ok', summary: `connected to ${deps.target.display} and ran select 1 in ${ms} ms`, value: ms });
  } catch (err) {
    await client?.end().catch(() => {});
    client = undefined;
    results.set('connection', { name: 'connection', status: 'critical', summary: redactString(errorMessage(err)) });
  }

  try {
    if (!client) {
      for (const name of DB_CHECKS) results.set(name, { name, status: 'unknown', summary: 'not checked: the database is unreachable' });
    } else {
      await runDbChecks(client, deps, now, results, state, nextState, stateError);
    }
  } finally {
    await client?.end().catch(() => {});
  }

  const backups = await backupsDone;
  for (const c of backups.checks) results.set(c.name, c);
  // The archive is judged even when the database is unreachable: its age is what the WAL alarm reads.
  results.set('wal-archiving', walArchivingResult(await walArchiveDone, results.get('wal-archiving')!, thresholds));
  if (restoreWindowDone) results.set('restore-window', await restoreWindowDone);
  const replica = deps.replicaStorage;
  if (replica) {
    results.set('replica', await guarded('replica', () => checkReplica({ replica, databaseId: deps.databaseId, source: backups.facts, thresholds, now, logger: deps.logger })));
  }

  if (deps.storage && !stateError) {
    try {
      await writeHealthState(deps.storage, deps.databaseId, nextState);
    } catch (err) {
      deps.logger.warn('could not save the health state', { error: redactString(errorMessage(err)) });
    }
  }

  const checks = CHECK_NAMES.map((n) => results.get(n)!).filter(Boolean);
  // Error messages were masked where they were caught; query texts and names are a result
  // document's: credentials masked, a word-like password left in a table name.
  const result: HealthResult = redact({
    status: worstStatus(checks.map((c) => c.status)),
    checks,
    database: deps.databaseId,
    environment: deps.environment,
    checkedAt: now.toISOString(),
    durationMs: Math.round(performance.now() - started),
  });
  deps.logger.info(`health ${result.status}`, { database: deps.databaseId, durationMs: result.durationMs });
  return { result, backup: backups.facts };
}

async function runDbChecks(client: pg.Client, deps: HealthDeps, now: Date, results: Map<CheckName, CheckResult>, state: HealthState, nextState: HealthState, stateError: string | undefined): Promise<void> {
  const o = deps.options ?? {};
  // Health queries read catalogs and statistics: bounded, so a stuck server never hangs the job.
  const queryTimeout = o.queryTimeoutMs ?? 30_000;
  const sessionTimeout = deps.session.statementTimeoutMs;
  await client.query(`SET statement_timeout = ${Math.trunc(sessionTimeout > 0 ? Math.min(sessionTimeout, queryTimeout) : queryTimeout)}`);
  const facts = await readServerFacts(client).catch(() => ({ serverVersion: 0, seesAllSessions: false }));
  const ctx: DbCheckContext = {
    client,
    thresholds: deps.config.health,
    ...facts,
    blockedWaitSeconds: o.blockedWaitSeconds ?? 10,
    replicationLagSeconds: o.replicationLagSeconds ?? 60,
    connectionsWarnRatio: o.connectionsWarnRatio ?? 0.8,
    connectionsCriticalRatio: o.connectionsCriticalRatio ?? 0.95,
    bloatMinRows: o.bloatMinRows ?? 10_000,
    unusedIndexMinBytes: o.unusedIndexMinBytes ?? 1024 * 1024,
  };

  results.set('migrations', await guarded('migrations', () => checkMigrations(deps)));
  results.set('connections', await guarded('connections', () => checkConnections(ctx)));
  results.set('long-running-queries', await guarded('long-running-queries', () => checkLongRunning(ctx)));
  results.set('blocked-queries', await guarded('blocked-queries', () => checkBlocked(ctx)));
  results.set('bloat', await guarded('bloat', () => checkBloat(ctx)));
  results.set('database-size', await guarded('database-size', async () => {
    const bytes = await readDatabaseSize(ctx);
    return sizeResult(bytes, deps, now, state, nextState, stateError);
  }));
  results.set('unused-indexes', await guarded('unused-indexes', () => checkUnusedIndexes(ctx)));
  results.set('wal-archiving', await guarded('wal-archiving', async () => {
    const { result, snapshot } = await checkServerWal(ctx, state.archiver, now);
    if (snapshot) nextState.archiver = snapshot;
    return result;
  }));
  results.set('replication', await guarded('replication', () => checkReplication(ctx)));
}

function sizeResult(bytes: number, deps: HealthDeps, now: Date, state: HealthState, nextState: HealthState, stateError: string | undefined): CheckResult {
  const max = deps.config.health.maxDailyGrowthRatio;
  const size = formatBytes(bytes);
  if (!deps.storage) return { name: 'database-size', status: 'ok', summary: `${size} (growth is tracked only with a storage configured)`, details: { bytes } };
  if (stateError) return { name: 'database-size', status: 'unknown', summary: `${size}; growth unknown: could not read the previous size: ${stateError}`, details: { bytes } };
  nextState.sizes = addSizeSample(state.sizes, bytes, now);
  const g = growthSince(state.sizes, bytes, now);
  if (!g) return { name: 'database-size', status: 'ok', summary: `${size} (first measurement: growth is reported from the next run)`, threshold: max, details: { bytes } };
  const ratio = Number(g.dailyRatio.toFixed(4));
  const details = { bytes, previousBytes: g.baselineBytes, since: g.since };
  const pct = `${(g.dailyRatio * 100).toFixed(1)}%`;
  if (g.dailyRatio > max) {
    return { name: 'database-size', status: 'warning', summary: `${size}, growing ${pct} a day since ${g.since} (max ${(max * 100).toFixed(0)}%)`, value: ratio, threshold: max, details };
  }
  return { name: 'database-size', status: 'ok', summary: `${size}, ${pct} a day since ${g.since}`, value: ratio, threshold: max, details };
}

async function checkMigrations(deps: HealthDeps): Promise<CheckResult> {
  const m = deps.config.migrate;
  const s = await migrationStatus({
    target: deps.target,
    session: deps.session,
    dir: deps.migrationsDir,
    tables: historyTables(m.migrationsSchema, m.migrationsTable),
    lockWaitSeconds: 0,
    logger: deps.logger,
  });
  const details = {
    applied: s.applied.length,
    last: s.applied[s.applied.length - 1]?.name ?? null,
    pending: s.pending.map((x) => x.name),
    modified: s.modified.map((x) => x.name),
    missing: s.missing.map((x) => x.name),
  };
  // An edited or vanished applied migration blocks every later `migrate up`.
  if (s.modified.length > 0 || s.missing.length > 0) {
    const parts = [
      s.modified.length > 0 ? `changed since applied: ${details.modified.join(', ')}` : '',
      s.missing.length > 0 ? `applied but no longer shipped: ${details.missing.join(', ')}` : '',
    ].filter(Boolean);
    return { name: 'migrations', status: 'critical', summary: `migration history does not match the files (${parts.join('; ')}): migrate up will refuse to run`, value: s.modified.length + s.missing.length, threshold: 0, details };
  }
  const early = s.outOfOrder ?? [];
  if (early.length > 0) {
    const list = early.map((o) => `${o.name} (before ${o.sortsBefore})`).join(', ');
    return { name: 'migrations', status: 'critical', summary: `pending migration(s) sort before applied ones: ${list}: migrate up will refuse to run until they are renamed to sort after the last applied`, value: early.length, threshold: 0, details };
  }
  if (s.pending.length > 0) {
    return { name: 'migrations', status: 'warning', summary: `${s.pending.length} pending migration(s): ${details.pending.slice(0, 5).join(', ')}${s.pending.length > 5 ? ', ...' : ''}`, value: s.pending.length, threshold: 0, details };
  }
  return { name: 'migrations', status: 'ok', summary: s.applied.length > 0 ? `up to date (${s.applied.length} applied, last ${details.last})` : 'no migrations shipped or applied', value: 0, threshold: 0, details };
}
