// Where the PostgreSQL tools a job runs are installed: the configured directory (PGOPS_PG_BINDIR,
// read by the config module), else `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin.
// A directory counts only if it holds every binary the caller needs, so a client-only install
// (the container image) serves pg_dump and pg_restore, and the demo asks for initdb and pg_ctl.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, PgopsError } from '../errors.ts';

/** The client tools the backup, verify and restore jobs run. */
export const CLIENT_TOOLS = ['pg_dump', 'pg_restore'] as const;

export class PgToolsNotFoundError extends PgopsError {}

const holdsAll = (dir: string, tools: readonly string[]): boolean => tools.every((t) => existsSync(join(dir, t)));

function pgConfigBinDir(): string | undefined {
  try {
    return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function debianBinDirs(base = '/usr/lib/postgresql'): string[] {
  if (!existsSync(base)) return [];
  return readdirSync(base).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a)).map((m) => join(base, m, 'bin'));
}

/**
 * The directory holding every one of `tools`. A configured directory that lacks one is an error
 * (exit 2) naming what is missing, never silently replaced by another installation.
 */
export function findPgBinDir(options: { configured?: string; tools?: readonly string[] } = {}): string {
  const tools = options.tools ?? CLIENT_TOOLS;
  if (options.configured) {
    const missing = tools.filter((t) => !existsSync(join(options.configured!, t)));
    if (missing.length > 0) throw new ConfigError('invalid configuration', [`PGOPS_PG_BINDIR ${options.configured}: no ${missing.join(', ')} there`]);
    return options.configured;
  }
  const candidates = [pgConfigBinDir(), ...debianBinDirs()].filter((d): d is string => d !== undefined);
  const found = candidates.find((d) => holdsAll(d, tools));
  if (found) return found;
  throw new PgToolsNotFoundError(`PostgreSQL tools not found (${tools.join(', ')}; looked at pg_config --bindir and /usr/lib/postgresql/*/bin): install the PostgreSQL client package, or set PGOPS_PG_BINDIR`);
}
