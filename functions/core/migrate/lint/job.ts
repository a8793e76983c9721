// `pgops migrate lint`: which files to lint (the pending migrations, every one with --all, or the
// files named), with or without a database, and the report.
import { existsSync, statSync } from 'node:fs';
import { extname, relative, resolve } from 'node:path';
import type pg from 'pg';
import type { Settings } from '../../config.ts';
import { connect } from '../../db.ts';
import { ConfigError, UsageError, errorMessage } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import { redactString } from '../../redact.ts';
import { listMigrationFiles, SUPPORTED_EXTENSIONS } from '../files.ts';
import { migrationStatus, type MigrateDeps } from '../job.ts';
import { lintMigrationFiles, type LintTarget } from './lint.ts';
import type { LintReport } from './types.ts';

export interface LintJobDeps {
  dir: string;
  /** Findings name files relative to it (a CI runner's checkout, for annotations). */
  cwd: string;
  logger: Logger;
  /** When a database is configured: the pending migrations, and table sizes in the findings. */
  database?: MigrateDeps;
}

export interface LintRequest {
  files: string[];
  all: boolean;
}

/** Whether the settings name a database (a URL or a secret): the pending migrations can then be read. */
export function databaseConfigured(settings: Pick<Settings, 'databaseUrl' | 'databaseSecretId' | 'databaseSecretJson'>): boolean {
  return Boolean(settings.databaseUrl ?? settings.databaseSecretId ?? settings.databaseSecretJson);
}

export async function runLint(deps: LintJobDeps, req: LintRequest): Promise<LintReport> {
  if (req.all && req.files.length > 0) throw new UsageError('give migration files or --all, not both');
  const targets = await chooseTargets(deps, req);
  if (targets.length === 0) {
    deps.logger.info('no pending migrations to lint');
    return { files: 0, findings: [] };
  }
  const client = deps.database ? await connectOrNone(deps.database, deps.logger) : undefined;
  try {
    return (await lintMigrationFiles(targets, { client, logger: deps.logger })).report;
  } finally {
    await client?.end().catch(() => {});
  }
}

async function chooseTargets(deps: LintJobDeps, req: LintRequest): Promise<LintTarget[]> {
  if (req.files.length > 0) return req.files.map((f) => namedFile(deps.cwd, f));
  if (!existsSync(deps.dir)) throw new ConfigError(`migrations directory ${deps.dir} does not exist (set --dir or PGOPS_MIGRATIONS_DIR)`);
  const files = await listMigrationFiles(deps.dir);
  const target = (f: { path: string }) => ({ path: f.path, file: relative(deps.cwd, f.path) });
  if (req.all) return files.map(target);
  if (!deps.database) {
    throw new UsageError('linting the pending migrations needs a database (--database-url or DATABASE_URL); without one, name the files or pass --all');
  }
  const pending = new Set((await migrationStatus(deps.database)).pending.map((p) => p.name));
  return files.filter((f) => pending.has(f.name)).map(target);
}

function namedFile(cwd: string, given: string): LintTarget {
  const path = resolve(cwd, given);
  if (!existsSync(path) || !statSync(path).isFile()) throw new UsageError(`no such migration file: ${given}`);
  if (!SUPPORTED_EXTENSIONS.includes(extname(path).toLowerCase())) throw new UsageError(`${given} is not a migration file (${SUPPORTED_EXTENSIONS.join(', ')})`);
  return { path, file: relative(cwd, path) };
}

/** Sizes are a bonus when files are named: an unreachable database leaves them out. */
async function connectOrNone(database: MigrateDeps, logger: Logger): Promise<pg.Client | undefined> {
  try {
    return await connect(database.target, database.session);
  } catch (err) {
    logger.warn(`lint: could not connect to the database, linting without table sizes: ${redactString(errorMessage(err))}`);
    return undefined;
  }
}
