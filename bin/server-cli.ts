// How the PostgreSQL server reaches this CLI: archive_command and restore_command run `pgops wal
// push|fetch` as the server's user, who must be able to read and start it. A bundle (the
// container's /var/task/pgops.mjs) is used as it is; a source checkout's fresh dist/ is copied, or
// else the checkout bundled, once into a world-readable temp dir (it may sit in a 0700 dir, and tsx
// starts slowly).
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
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

/**
 * dist/pgops.mjs, the entry of `npm run build`, when it is newer than package-lock.json and every
 * .ts file under bin/ and functions/ (the rule bin/pgops.js runs it by); undefined when stale or absent.
 */
export function freshDistEntry(repoRoot: string): string | undefined {
  const entry = join(repoRoot, 'dist', 'pgops.mjs');
  const built = statSync(entry, { throwIfNoEntry: false })?.mtimeMs;
  const lock = statSync(join(repoRoot, 'package-lock.json'), { throwIfNoEntry: false })?.mtimeMs ?? Infinity;
  return built !== undefined && built > Math.max(lock, newestTs(join(repoRoot, 'bin')), newestTs(join(repoRoot, 'functions'))) ? entry : undefined;
}

function newestTs(dir: string): number {
  return Math.max(0, ...walk(dir).filter((p) => p.endsWith('.ts')).map((p) => statSync(p).mtimeMs));
}

/** Every file and directory under `dir` (recursive readdir's entries lack parentPath before Node.js 20.12). */
function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory() ? [path, ...walk(path)] : [path];
  });
}

/**
 * A copy of the fresh dist/ (entry, chunks, the parser's WASM) in a new world-readable temp dir,
 * removed when this process exits; undefined when dist/ is stale, or rebuilt while being copied.
 */
export function copyFreshDist(repoRoot: string, prefix = join(tmpdir(), 'pgops-cli-')): string | undefined {
  const entry = freshDistEntry(repoRoot);
  if (!entry) return undefined;
  const built = statSync(entry).mtimeMs;
  const dir = worldReadableTempDir(prefix);
  // Source maps stay behind: the server starts the CLI without --enable-source-maps.
  cpSync(dirname(entry), dir, { recursive: true, filter: (src) => !src.endsWith('.map') });
  if (statSync(entry, { throwIfNoEntry: false })?.mtimeMs !== built) {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  for (const path of walk(dir)) chmodSync(path, statSync(path).isDirectory() ? 0o755 : 0o644);
  return join(dir, 'pgops.mjs');
}

/** A new temp dir every user can read, removed when this process exits. */
export function worldReadableTempDir(prefix: string): string {
  const dir = mkdtempSync(prefix);
  chmodSync(dir, 0o755);
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let bundled: string | undefined;

/** The CLI in a world-readable temp dir: the fresh dist/ copied, else bin/pgops.ts bundled (dev checkouts: esbuild is a dev dependency). */
function bundleForOtherUsers(repoRoot: string): string {
  if (bundled && existsSync(bundled)) return bundled;
  const copied = copyFreshDist(repoRoot);
  if (copied) return (bundled = copied);
  const esbuild = join(repoRoot, 'node_modules', '.bin', 'esbuild');
  const dir = worldReadableTempDir(join(tmpdir(), 'pgops-cli-'));
  const out = spawnSync(esbuild, [join(repoRoot, 'bin', 'pgops.ts'), '--bundle', '--platform=node', '--format=esm', '--target=node20',
    `--banner:js=${ESM_BANNER}`, '--main-fields=module,main', `--outfile=${join(dir, 'pgops.mjs')}`, '--log-level=error'], { encoding: 'utf8' });
  if (out.status !== 0) throw new PgopsError(`bundling pgops for the server's user failed: ${out.stderr.trim().slice(0, 300)}`);
  chmodSync(join(dir, 'pgops.mjs'), 0o644);
  return (bundled = join(dir, 'pgops.mjs'));
}

/**
 * argv that runs this CLI as `serverUser` (the PostgreSQL server's user). A bundle is used as it
 * is. From a source checkout (bin/pgops.js) its fresh dist/ is copied, or else it is bundled, once
 * when esbuild is there: the server starts pgops once per WAL file, and a bundle starts about 3x
 * faster than tsx (measured: 1.0 s vs 3.2 s per `wal fetch` on a loaded 2-core machine); without
 * esbuild the checkout itself is used if the server's user can read it.
 */
export function serverCliArgv(serverUser = 'postgres', entry = process.argv[1] ?? ''): string[] {
  const script = realpathSync(entry);
  if (script.endsWith('.mjs')) return [process.execPath, script];
  const repoRoot = dirname(dirname(script));
  if (existsSync(join(repoRoot, 'node_modules', '.bin', 'esbuild'))) return [process.execPath, bundleForOtherUsers(repoRoot)];
  if (!isRoot || readableBy(serverUser, [script, join(repoRoot, 'bin', 'pgops.ts'), join(repoRoot, 'node_modules', 'tsx', 'package.json')])) return [process.execPath, script];
  throw new PgopsError(`the PostgreSQL server's user (${serverUser}) cannot read this pgops checkout (${repoRoot}): install pgops where that user can read it`);
}
