// How the PostgreSQL server reaches this CLI: archive_command and restore_command run `pgops wal
// push|fetch` as the server's user, who must be able to read and start it. A bundle (the
// container's /var/task/pgops.mjs) is used as it is; a source checkout is bundled once into a
// world-readable temp dir (it may sit in a 0700 dir, and tsx starts slowly).
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PgopsError } from '../functions/core/errors.ts';

const ESM_BANNER = "import { createRequire as __pgopsCreateRequire } from 'node:module'; const require = __pgopsCreateRequire(import.meta.url);";

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** True when `user` can read every file in `paths` (runuser, as root). */
function readableBy(user: string, paths: string[]): boolean {
  const r = spawnSync('runuser', ['-u', user, '--', 'test', ...paths.flatMap((p, i) => [...(i > 0 ? ['-a'] : []), '-r', p])], { stdio: 'ignore' });
  return r.status === 0;
}

let bundled: string | undefined;

/** bin/pgops.ts bundled into a world-readable temp dir, removed when this process exits (dev checkouts: esbuild is a dev dependency). */
function bundleForOtherUsers(repoRoot: string): string {
  if (bundled && existsSync(bundled)) return bundled;
  const esbuild = join(repoRoot, 'node_modules', '.bin', 'esbuild');
  const dir = mkdtempSync(join(tmpdir(), 'pgops-cli-'));
  chmodSync(dir, 0o755);
  const out = spawnSync(esbuild, [join(repoRoot, 'bin', 'pgops.ts'), '--bundle', '--platform=node', '--format=esm', '--target=node20',
    `--banner:js=${ESM_BANNER}`, '--main-fields=module,main', `--outfile=${join(dir, 'pgops.mjs')}`, '--log-level=error'], { encoding: 'utf8' });
  if (out.status !== 0) throw new PgopsError(`bundling pgops for the server's user failed: ${out.stderr.trim().slice(0, 300)}`);
  chmodSync(join(dir, 'pgops.mjs'), 0o644);
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return (bundled = join(dir, 'pgops.mjs'));
}

/**
 * argv that runs this CLI as `serverUser` (the PostgreSQL server's user). A bundle is used as it
 * is. From a source checkout (bin/pgops.js, tsx) it is bundled once when esbuild is there: the
 * server starts pgops once per WAL file, and a bundle starts about 3x faster than tsx (measured:
 * 1.0 s vs 3.2 s per `wal fetch` on a loaded 2-core machine); without esbuild the checkout itself
 * is used if the server's user can read it.
 */
export function serverCliArgv(serverUser = 'postgres', entry = process.argv[1] ?? ''): string[] {
  const script = realpathSync(entry);
  if (script.endsWith('.mjs')) return [process.execPath, script];
  const repoRoot = dirname(dirname(script));
  if (existsSync(join(repoRoot, 'node_modules', '.bin', 'esbuild'))) return [process.execPath, bundleForOtherUsers(repoRoot)];
  if (!isRoot || readableBy(serverUser, [script, join(repoRoot, 'bin', 'pgops.ts'), join(repoRoot, 'node_modules', 'tsx', 'package.json')])) return [process.execPath, script];
  throw new PgopsError(`the PostgreSQL server's user (${serverUser}) cannot read this pgops checkout (${repoRoot}): install pgops where that user can read it`);
}
