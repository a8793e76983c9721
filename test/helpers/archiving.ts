// Clusters that archive their WAL through the real CLI: the server runs `pgops wal push %p` as the
// postgres user, which cannot read a checkout under a 0700 temp dir (a fresh clone in CI), so the
// CLI is copied (dist/, which `npm test` builds first) or else bundled, once per process, into a
// world-readable directory.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { copyFreshDist, worldReadableTempDir } from '../../bin/server-cli.ts';
import { bundleCliFlags } from '../../lib/bundling.ts';

let bundled: string | undefined;

/** `/tmp/pgops-cli-XXXX/pgops.mjs`, readable by every user: the fresh dist/ copied, else bin/pgops.ts bundled with the container's flags. */
export function bundledCli(): string {
  if (bundled && existsSync(bundled)) return bundled;
  bundled = copyFreshDist(process.cwd(), '/tmp/pgops-cli-') ?? bundleCli();
  return bundled;
}

/** bin/pgops.ts bundled as the container bundles it (2-3 CPU-s: only when dist/ is stale). */
function bundleCli(): string {
  const dir = worldReadableTempDir('/tmp/pgops-cli-');
  const esbuild = join(process.cwd(), 'node_modules', '.bin', 'esbuild');
  const built = spawnSync(esbuild, ['pgops=bin/pgops.ts', ...bundleCliFlags(), '--out-extension:.js=.mjs', `--outdir=${dir}`, '--log-level=warning'], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`bundling the CLI failed: ${built.stderr}`);
  chmodSync(join(dir, 'pgops.mjs'), 0o644);
  return join(dir, 'pgops.mjs');
}

/** A directory the postgres user can write (file storage for a server-run archive_command), removed on exit. */
export function sharedStorageDir(prefix = 'pgops-store-'): string {
  const dir = mkdtempSync(join('/tmp', prefix));
  chmodSync(dir, 0o777);
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status === 0 && gid.status === 0) chownSync(dir, Number(uid.stdout.trim()), Number(gid.stdout.trim()));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(dir, { recursive: true });
  return dir;
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The shell command line running the bundled CLI with this storage and database id (for archive_command/restore_command). */
export function cliCommandLine(storageDir: string, databaseId: string, args: string): string {
  const env = `PGOPS_STORAGE=${shellQuote(pathToFileURL(storageDir).href)} PGOPS_DATABASE_ID=${shellQuote(databaseId)}`;
  return `${env} ${shellQuote(process.execPath)} ${shellQuote(bundledCli())} ${args}`;
}

/** postgresql.conf settings for a cluster that archives every segment to `storageDir` under `databaseId`. */
export function archivingConf(storageDir: string, databaseId: string): Record<string, string> {
  return {
    wal_level: 'replica',
    archive_mode: 'on',
    archive_command: cliCommandLine(storageDir, databaseId, '--quiet wal push %p'),
    max_wal_senders: '5',
    max_replication_slots: '5',
  };
}
