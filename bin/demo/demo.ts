// `pgops demo` (= npm start): the whole life cycle on a throwaway PostgreSQL and local storage,
// no AWS account. Each step says what it did; the cluster and the storage directory are removed
// at the end, also on failure.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { walPrefix } from '../../functions/core/catalog/layout.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryAlerter } from '../../functions/core/alerts/alerter.ts';
import { runBackup } from '../../functions/core/backup/backup.ts';
import { listBackups } from '../../functions/core/catalog/catalog.ts';
import type { BackupJobDeps } from '../../functions/core/backup/deps.ts';
import { runRestore } from '../../functions/core/backup/restore.ts';
import { verifyBackup } from '../../functions/core/backup/verify.ts';
import { runCleanup } from '../../functions/core/cleanup/job.ts';
import { runHealth } from '../../functions/core/health/index.ts';
import type { HealthResult } from '../../functions/core/health/types.ts';
import { defaultFileConfig, parseFileConfig, type FileConfig } from '../../functions/core/config.ts';
import { parseDatabaseUrl, withClient, withDatabase, type DbTarget } from '../../functions/core/db.ts';
import { DEMO_SEED_SQL } from './seed.ts';
import { shareWithServerUser, startEmbeddedPostgres } from './embedded-postgres.ts';
import { lintPhase } from './lint-phase.ts';
import { pitrPhase } from './pitr-phase.ts';
import { serverCliArgv } from '../server-cli.ts';
import { PgopsError } from '../../functions/core/errors.ts';
import type { Logger } from '../../functions/core/logger.ts';
import { historyTables } from '../../functions/core/migrate/history.ts';
import { migrationStatus, runMigrations, validateMigrations, type MigrateJobDeps } from '../../functions/core/migrate/job.ts';
import { FileStorage } from '../../functions/core/storage/file.ts';

export interface DemoStep { step: string; ok: boolean; detail: string; durationMs: number }
export interface DemoReport { steps: DemoStep[]; ok: boolean; durationMs: number }

export interface DemoOptions {
  migrationsDir: string;
  /** The example config (cleanup rules, retention); defaults apply without one. */
  configFile?: string;
  logger: Logger;
  say: (line: string) => void;
  /** The configured PostgreSQL installation (PGOPS_PG_BINDIR); else it is looked for. */
  pgBinDir?: string;
}

const DEMO_DB = 'pgops_demo';

const COUNTED_TABLES = ['users', 'refresh_tokens', 'password_reset_tokens', 'user_sessions', 'audit_logs', 'security_events'];

async function rowCounts(target: DbTarget, config: FileConfig): Promise<Record<string, number>> {
  return withClient(target, config.database, async (c) => {
    const out: Record<string, number> = {};
    for (const t of COUNTED_TABLES) {
      const exists = await c.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [t]);
      if (!exists.rows[0]?.t) continue;
      const r = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t}`);
      out[t] = r.rows[0]?.n ?? 0;
    }
    return out;
  });
}

function loadDemoConfig(file: string | undefined): FileConfig {
  if (!file) return defaultFileConfig();
  const r = parseFileConfig(JSON.parse(readFileSync(file, 'utf8')), file);
  if (!r.config) throw new PgopsError(`demo config ${file} is invalid: ${r.issues.join('; ')}`);
  return r.config;
}

type Step = <T>(name: string, fn: () => Promise<T>, describe: (r: T) => string) => Promise<T>;

/** Runs one named step: says what it did, records it in the report, and rethrows a failure. */
function stepRunner(say: DemoOptions['say'], steps: DemoStep[]): Step {
  return async (name, fn, describe) => {
    const t0 = Date.now();
    say(`\n==> ${name}`);
    try {
      const r = await fn();
      const detail = describe(r);
      steps.push({ step: name, ok: true, detail, durationMs: Date.now() - t0 });
      say(`    ${detail.split('\n').join('\n    ')}`);
      return r;
    } catch (err) {
      steps.push({ step: name, ok: false, detail: err instanceof Error ? err.message : String(err), durationMs: Date.now() - t0 });
      throw err;
    }
  };
}

/** What every phase of the demo works on. */
interface DemoContext {
  step: Step;
  options: DemoOptions;
  config: FileConfig;
  admin: DbTarget;
  target: DbTarget;
  storage: FileStorage;
  alerter: MemoryAlerter;
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** wal_level replica and archive_command running `pgops wal push` into the demo's storage. */
function archivingConf(cliArgv: string[], storageDir: string): Record<string, string> {
  const env = `PGOPS_STORAGE=${shellQuote(`file://${storageDir}`)} PGOPS_DATABASE_ID=${DEMO_DB}`;
  return { wal_level: 'replica', archive_mode: 'on', max_wal_senders: '4', archive_command: `${env} ${cliArgv.map(shellQuote).join(' ')} --quiet wal push %p` };
}

export async function runDemo(options: DemoOptions): Promise<DemoReport> {
  const { say } = options;
  const started = Date.now();
  const steps: DemoStep[] = [];
  const step = stepRunner(say, steps);
  const config = loadDemoConfig(options.configFile);
  const storageDir = mkdtempSync(join(tmpdir(), 'pgops-demo-storage-'));
  // The server archives its WAL into the demo's storage through this CLI (`wal push`), as its own user.
  // (its folder made now, or the jobs run as root would create the database's folder first, and only for root)
  const walDir = join(storageDir, walPrefix(DEMO_DB));
  mkdirSync(walDir, { recursive: true });
  for (const dir of [storageDir, join(storageDir, DEMO_DB), walDir]) shareWithServerUser(dir);
  const cliArgv = serverCliArgv();
  const pg = await step('start a throwaway PostgreSQL that archives its WAL (archive_command = pgops wal push %p)',
    () => startEmbeddedPostgres({ binDir: options.pgBinDir, conf: archivingConf(cliArgv, storageDir) }),
    (p) => `PostgreSQL from ${p.binDir} on 127.0.0.1:${p.port}, data in ${p.dataDir}`);
  try {
    const admin = parseDatabaseUrl(pg.url('postgres'));
    await withClient(admin, config.database, (c) => c.query('CREATE DATABASE pgops_demo'));
    const target = withDatabase(admin, 'pgops_demo');
    say(`    created database pgops_demo; connection ${target.display}; local storage file://${storageDir}`);
    const ctx: DemoContext = { step, options, config, admin, target, storage: new FileStorage(`file://${storageDir}`), alerter: new MemoryAlerter() };
    await migrationsPhase(ctx);
    await backupPhase(ctx, pg.binDir);
    // After the seed: the linter's finding names the table's size and rows.
    await lintPhase({ step, deps: migrateDeps(ctx) });
    await pitrPhase({ ...ctx, logger: options.logger, databaseId: DEMO_DB, binDir: pg.binDir, cliArgv });
    await healthAfterPhase(ctx);
    await cleanupPhase(ctx);
    if (ctx.alerter.sent.length > 0) say(`    alerts raised during the demo: ${ctx.alerter.sent.map((a) => a.summary).join('; ')}`);
  } finally {
    await pg.stop();
    rmSync(storageDir, { recursive: true, force: true });
    say('\n==> stopped PostgreSQL, removed its data directory and the demo storage');
  }
  const report = { steps, ok: steps.every((s) => s.ok), durationMs: Date.now() - started };
  say(`\ndone in ${(report.durationMs / 1000).toFixed(1)} s: ${steps.length} steps, all ok`);
  return report;
}

function migrateDeps({ options, config, target, alerter }: DemoContext): MigrateJobDeps {
  return {
    target,
    session: config.database,
    dir: options.migrationsDir,
    tables: historyTables(config.migrate.migrationsSchema, config.migrate.migrationsTable),
    lockWaitSeconds: config.migrate.lockWaitSeconds,
    lint: config.migrate.lint,
    logger: options.logger,
    alerter,
    databaseId: DEMO_DB,
    environment: config.environment,
  };
}

async function migrationsPhase(ctx: DemoContext): Promise<void> {
  const { step, options } = ctx;
  const deps = migrateDeps(ctx);
  await step(`migrate up --dry-run (from ${options.migrationsDir})`, () => runMigrations(deps, { command: 'up', dryRun: true }),
    (r) => `would apply ${r.ran.length} migration(s), ${r.ran.reduce((n, m) => n + (m.sql?.length ?? 0), 0)} characters of SQL; nothing was created`);
  await step('migrate up', () => runMigrations(deps, { command: 'up' }),
    (r) => r.ran.map((m) => `applied  ${m.name} (${m.durationMs ?? '?'} ms)`).join('\n'));
  await step('migrate status', () => migrationStatus(deps),
    (s) => `${s.applied.length} applied, ${s.pending.length} pending, ${s.modified.length} modified, ${s.missing.length} missing`);
  await step('migrate down (revert the last one)', () => runMigrations(deps, { command: 'down' }),
    (r) => r.ran.map((m) => `reverted ${m.name}`).join('\n'));
  await step('migrate up (re-apply it)', () => runMigrations(deps, { command: 'up' }),
    (r) => r.ran.map((m) => `applied  ${m.name}`).join('\n'));
  await step('migrate validate', () => validateMigrations(deps),
    (s) => `every applied migration matches its file (SHA-256), ${s.applied.length} checked`);
}

const describeHealth = (h: HealthResult) => `overall ${h.status.toUpperCase()}: ${h.checks.filter((c) => c.status !== 'ok' && c.status !== 'info').map((c) => `${c.name} ${c.status} (${c.summary})`).join('; ') || 'every check ok'}`;

async function backupPhase({ step, options, config, admin, target, storage, alerter }: DemoContext, binDir: string): Promise<void> {
  const { logger } = options;
  const source = await step('seed example data', async () => {
    await withClient(target, config.database, (c) => c.query(DEMO_SEED_SQL));
    return rowCounts(target, config);
  }, (counts) => Object.entries(counts).map(([t, n]) => `${t}: ${n} rows`).join(', '));
  const backupDeps: BackupJobDeps = { target, storage, logger, alerter, databaseId: DEMO_DB, environment: config.environment, session: config.database, binDir };
  const healthDeps = { target, session: config.database, storage, logger, databaseId: DEMO_DB, environment: config.environment, config, migrationsDir: options.migrationsDir };
  await step('health (before the first backup: expect backup-age CRITICAL)', () => runHealth(healthDeps), describeHealth);
  await step('backup (pg_dump -Fc streamed to local storage)', () => runBackup(backupDeps, {}),
    (m) => `backup ${m.id}: ${m.bytes} bytes, sha256 ${m.sha256.slice(0, 16)}..., ${m.tables.length} tables counted, last migration ${m.migration ?? '-'}\n${m.key}`);
  await step('backups list', () => listBackups(storage, DEMO_DB),
    (list) => list.map((m) => `${m.id}  ${m.completedAt}  ${m.bytes} bytes`).join('\n'));
  await step('backups verify latest --restore-test', () => verifyBackup(backupDeps, 'latest', { restoreTest: true }),
    (v) => `sha256 and size match the manifest, archive read to its end${v.restoreTest ? ', restored into a scratch database and row counts match' : ''}`);
  await step('restore latest --target-db pgops_demo_restored --create', () => runRestore(backupDeps, 'latest', { targetDb: 'pgops_demo_restored', create: true }),
    (r) => `restored ${r.backupId} into ${r.targetDb}: ${r.tables} tables in ${r.durationMs} ms`);
  await step('compare row counts (source vs restored)', async () => {
    const restored = await rowCounts(withDatabase(admin, 'pgops_demo_restored'), config);
    const diff = Object.keys(source).filter((t) => source[t] !== restored[t]);
    if (diff.length > 0) throw new PgopsError(`row counts differ after restore: ${diff.map((t) => `${t} ${source[t]} vs ${restored[t]}`).join(', ')}`);
    return restored;
  }, (r) => `all ${Object.keys(r).length} tables match (${Object.values(r).reduce((a, b) => a + b, 0)} rows)`);
}

/** After the logical backup, its restore test and the point-in-time recovery: every check is green. */
async function healthAfterPhase({ step, options, config, target, storage }: DemoContext): Promise<void> {
  const healthDeps = { target, session: config.database, storage, logger: options.logger, databaseId: DEMO_DB, environment: config.environment, config, migrationsDir: options.migrationsDir };
  await step('health (after the backup, its restore test and the base backup)', () => runHealth(healthDeps), describeHealth);
}

async function cleanupPhase({ step, options, config, target, storage, alerter }: DemoContext): Promise<void> {
  const cleanupDeps = { target, session: config.database, storage, logger: options.logger, alerter, databaseId: DEMO_DB, environment: config.environment, config };
  await step('cleanup --dry-run', () => runCleanup(cleanupDeps, { dryRun: true }),
    (r) => `${r.rows.map((x) => `${x.rule}: would delete ${x.deleted}`).join(', ') || 'no row rules configured'}; backups kept ${r.backups.kept.length}, would delete ${r.backups.deleted.length}`);
  await step('cleanup', () => runCleanup(cleanupDeps, { dryRun: false }),
    (r) => `${r.rows.map((x) => `${x.rule}: deleted ${x.deleted}`).join(', ') || 'no row rules configured'}; backups kept ${r.backups.kept.length}, deleted ${r.backups.deleted.length}`);
}
