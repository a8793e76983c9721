// `pgops demo` (= npm start): the whole life cycle on a throwaway PostgreSQL, no AWS account.
// Each step says what it did; the cluster is removed at the end, also on failure.
import { parseDatabaseUrl, withClient } from './db.ts';
import { defaultFileConfig } from './config.ts';
import { startEmbeddedPostgres } from './embedded-postgres.ts';
import type { Logger } from './logger.ts';
import { historyTables } from './migrate/files.ts';
import { migrationStatus, runMigrations, validateMigrations, type MigrateDeps } from './migrate/job.ts';

export interface DemoStep { step: string; ok: boolean; detail: string; durationMs: number }
export interface DemoReport { steps: DemoStep[]; ok: boolean; durationMs: number }

export async function runDemo(options: { migrationsDir: string; logger: Logger; say: (line: string) => void }): Promise<DemoReport> {
  const { say, logger } = options;
  const started = Date.now();
  const steps: DemoStep[] = [];
  const step = async <T>(name: string, fn: () => Promise<T>, describe: (r: T) => string): Promise<T> => {
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

  const pg = await step('start a throwaway PostgreSQL', () => startEmbeddedPostgres(), (p) => `PostgreSQL from ${p.binDir} on 127.0.0.1:${p.port}, data in ${p.dataDir}`);
  try {
    const target = parseDatabaseUrl(pg.url('postgres'));
    await withClient(target, defaultFileConfig().database, (c) => c.query('CREATE DATABASE pgops_demo'));
    const config = defaultFileConfig();
    const deps: MigrateDeps = {
      target: parseDatabaseUrl(pg.url('pgops_demo')),
      session: config.database,
      dir: options.migrationsDir,
      tables: historyTables(config.migrate.migrationsSchema, config.migrate.migrationsTable),
      lockWaitSeconds: config.migrate.lockWaitSeconds,
      logger,
    };
    say(`    created database pgops_demo; connection ${deps.target.display}`);

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
  } finally {
    await pg.stop();
    say('\n==> stopped PostgreSQL and removed its data directory');
  }
  const report = { steps, ok: steps.every((s) => s.ok), durationMs: Date.now() - started };
  say(`\ndone in ${(report.durationMs / 1000).toFixed(1)} s: ${steps.length} steps, all ok`);
  return report;
}
