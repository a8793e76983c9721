// A throwaway PostgreSQL cluster from the locally installed binaries: `pgops demo` runs on one,
// and every integration test file owns one. initdb into a temp dir, a random port, fsync off,
// password auth over TCP (so wrong-password paths are real), removed on stop and on process exit.
import { spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PgopsError } from '../../functions/core/errors.ts';
import { findPgBinDir } from '../../functions/core/pgtools/binaries.ts';
import { registerSecret } from '../../functions/core/redact.ts';

export interface EmbeddedPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  root: string;
  dataDir: string;
  binDir: string;
  url(database?: string): string;
  /** Run a PostgreSQL binary (psql, pg_dump, ...) from the same installation. */
  bin(name: string): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function postgresUser(): { uid: number; gid: number } | undefined {
  if (!isRoot) return undefined;
  const out = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (out.status !== 0) throw new PgopsError('running as root, but there is no "postgres" user to run the cluster as (initdb refuses root)');
  return { uid: Number(out.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Give the server's user (postgres, when we are root) a directory it must write: the demo's storage for archive_command. */
export function shareWithServerUser(dir: string): void {
  const owner = postgresUser();
  if (owner) chownSync(dir, owner.uid, owner.gid);
}

function run(binDir: string, name: string, args: string[], asPostgres: boolean): void {
  const cmd = asPostgres ? 'runuser' : join(binDir, name);
  const argv = asPostgres ? ['-u', 'postgres', '--', join(binDir, name), ...args] : args;
  const r = spawnSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) {
    throw new PgopsError(`${name} failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.stdout || '').trim().split('\n').slice(-5).join(' | ')}`);
  }
}

const live = new Set<{ binDir: string; dataDir: string; root: string; asPostgres: boolean }>();
let exitHookInstalled = false;

function stopNow(c: { binDir: string; dataDir: string; root: string; asPostgres: boolean }): void {
  const args = ['stop', '-D', c.dataDir, '-m', 'immediate', '-w'];
  if (c.asPostgres) spawnSync('runuser', ['-u', 'postgres', '--', join(c.binDir, 'pg_ctl'), ...args], { stdio: 'ignore' });
  else spawnSync(join(c.binDir, 'pg_ctl'), args, { stdio: 'ignore' });
  rmSync(c.root, { recursive: true, force: true });
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort: a crashed test or an interrupted demo must not leave clusters behind.
  process.on('exit', () => {
    for (const c of live) stopNow(c);
    live.clear();
  });
}

export interface StartOptions {
  /** Extra server settings (-c name=value; values without spaces). */
  settings?: Record<string, string | number>;
  /** Settings written to postgresql.conf, quoted: for values with spaces (archive_command). */
  conf?: Record<string, string | number>;
  /** Retry with a new port when the chosen one was taken in the meantime. */
  attempts?: number;
  /** The PostgreSQL installation to use (the configured PGOPS_PG_BINDIR); else it is looked for. */
  binDir?: string;
  /**
   * A data directory made by createClusterTemplate (same binDir), copied instead of running initdb:
   * a copy costs a tenth of an initdb (the integration tests start one cluster per file).
   */
  template?: string;
}

interface Cluster { binDir: string; dataDir: string; root: string; asPostgres: boolean }

export async function startEmbeddedPostgres(options: StartOptions = {}): Promise<EmbeddedPostgres> {
  // The server binaries, and the client tools the jobs then run from the same installation.
  const binDir = findPgBinDir({ configured: options.binDir, tools: ['initdb', 'pg_ctl', 'postgres', 'pg_dump', 'pg_restore'] });
  const owner = postgresUser();
  const root = mkdtempSync(join(tmpdir(), 'pgops-pg-'));
  const cluster: Cluster = { binDir, dataDir: join(root, 'data'), root, asPostgres: owner !== undefined };
  installExitHook();
  live.add(cluster);
  try {
    const password = options.template ? copyTemplate(cluster, owner, options.template) : initCluster(cluster, owner);
    if (options.conf) appendConf(cluster.dataDir, options.conf);
    const port = await startOnFreePort(cluster, options);
    // A copy carries the template's password: this cluster's own is set over the local socket (trust).
    if (options.template) await setSuperuserPassword(cluster, port, password);
    return handleFor(cluster, port, password);
  } catch (err) {
    live.delete(cluster);
    stopNow(cluster);
    throw err;
  }
}

/**
 * An initdb'd data directory in `dir` (created; removed by the caller) to copy with
 * `startEmbeddedPostgres({ template })`. Never started; its superuser password is thrown away.
 */
export function createClusterTemplate(dir: string, binDir?: string): string {
  const bin = findPgBinDir({ configured: binDir, tools: ['initdb', 'pg_ctl', 'postgres'] });
  const owner = postgresUser();
  mkdirSync(dir, { recursive: true });
  const c: Cluster = { binDir: bin, dataDir: join(dir, 'data'), root: dir, asPostgres: owner !== undefined };
  initCluster(c, owner);
  return c.dataDir;
}

/** Copy the template's data directory (ownership and modes kept); returns the new random password. */
function copyTemplate(c: Cluster, owner: { uid: number; gid: number } | undefined, template: string): string {
  if (owner) chownSync(c.root, owner.uid, owner.gid);
  const r = spawnSync('cp', ['-a', template, c.dataDir], { encoding: 'utf8' });
  if (r.status !== 0) throw new PgopsError(`copying the cluster template ${template} failed: ${(r.stderr || '').trim()}`);
  const password = randomBytes(12).toString('hex');
  registerSecret(password);
  return password;
}

async function setSuperuserPassword(c: Cluster, port: number, password: string): Promise<void> {
  const client = new pg.Client({ host: c.root, port, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    // ALTER ROLE takes no parameters: the password is hex, safe to quote.
    await client.query(`ALTER ROLE postgres PASSWORD '${password}'`);
  } finally {
    await client.end();
  }
}

/** initdb with a random superuser password (registered as a secret); returns the password. */
function initCluster(c: Cluster, owner: { uid: number; gid: number } | undefined): string {
  const password = randomBytes(12).toString('hex');
  registerSecret(password);
  const pwfile = join(c.root, 'pwfile');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (owner) {
    chownSync(c.root, owner.uid, owner.gid);
    chownSync(pwfile, owner.uid, owner.gid);
  }
  run(c.binDir, 'initdb', ['-D', c.dataDir, '-U', 'postgres', '--pwfile', pwfile, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '-N'], c.asPostgres);
  rmSync(pwfile, { force: true });
  return password;
}

/** postgresql.conf lines, each value single-quoted as the server's parser expects. */
function appendConf(dataDir: string, conf: Record<string, string | number>): void {
  const lines = Object.entries(conf).map(([k, v]) => `${k} = '${String(v).replace(/'/g, "''")}'\n`).join('');
  appendFileSync(join(dataDir, 'postgresql.conf'), `\n# pgops\n${lines}`);
}

/** Start on a free port, retrying with a new one when it was taken in the meantime. */
async function startOnFreePort(c: Cluster, options: StartOptions): Promise<number> {
  const attempts = options.attempts ?? 3;
  for (let i = 1; ; i++) {
    const port = await freePort();
    const settings: Record<string, string | number> = {
      port,
      listen_addresses: '127.0.0.1',
      unix_socket_directories: c.root,
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      max_connections: 60,
      shared_buffers: '64MB',
      ...options.settings,
    };
    const opts = Object.entries(settings).map(([k, v]) => `-c ${k}=${String(v)}`).join(' ');
    try {
      run(c.binDir, 'pg_ctl', ['start', '-D', c.dataDir, '-w', '-t', '60', '-l', join(c.root, 'postgres.log'), '-o', opts], c.asPostgres);
      return port;
    } catch (err) {
      if (i >= attempts) throw err;
    }
  }
}

function handleFor(c: Cluster, port: number, password: string): EmbeddedPostgres {
  return {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    root: c.root,
    dataDir: c.dataDir,
    binDir: c.binDir,
    url: (database = 'postgres') => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`,
    bin: (name: string) => join(c.binDir, name),
    stop: () => {
      if (live.delete(c)) {
        const args = ['stop', '-D', c.dataDir, '-m', 'fast', '-w', '-t', '30'];
        try { run(c.binDir, 'pg_ctl', args, c.asPostgres); } catch { stopNow(c); }
        rmSync(c.root, { recursive: true, force: true });
      }
      return Promise.resolve();
    },
  };
}
