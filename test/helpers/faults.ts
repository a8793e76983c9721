// Shared by the fault suite (test/integration/faults): wait for a server session, kill it, restart
// the server, slow or replace the PostgreSQL tools, run the CLI as a child we can signal, slow S3
// down, and find what a failed job left behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { defaultFileConfig } from '../../functions/core/config.ts';
import type { MemoryAlerter } from '../../functions/core/alerts/alerter.ts';
import type { BackupJobDeps } from '../../functions/core/backup/deps.ts';
import { listBackups } from '../../functions/core/catalog/catalog.ts';
import type { CleanupDeps } from '../../functions/core/cleanup/job.ts';
import type { Storage } from '../../functions/core/storage/types.ts';
import type { CliResult } from './cli.ts';
import { REPO_ROOT } from './cli.ts';
import type { TestCluster } from './postgres.ts';
import { allFiles } from './backup-fixtures.ts';
import type { Captured } from './output-scan.ts';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Temp dirs removed after the file's tests, whatever happened. */
export function useTempDirs(): (prefix?: string) => string {
  const dirs: string[] = [];
  afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
  return (prefix = 'pgops-fault-') => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
}

/** Poll until `probe` gives a value (not undefined/false), or fail naming `what`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** pids of server sessions matching a pg_stat_activity condition (e.g. `query ILIKE 'COPY%'`). */
export async function sessions(cluster: TestCluster, where: string): Promise<number[]> {
  const r = await cluster.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (${where})`);
  return r.rows.map((x) => x.pid);
}

/** Wait for a session matching `where`; its pid. */
export async function waitForSession(cluster: TestCluster, where: string, timeoutMs = 60_000): Promise<number> {
  return waitFor(`a session where ${where}`, async () => (await sessions(cluster, where))[0], timeoutMs);
}

/** Wait until no session matches `where` (a killed job's backends end a moment after it). */
export async function waitForNoSession(cluster: TestCluster, where: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(`no session where ${where}`, async () => (await sessions(cluster, where)).length === 0, timeoutMs, 100);
}

export async function terminate(cluster: TestCluster, pid: number): Promise<void> {
  await cluster.query('SELECT pg_terminate_backend($1)', [pid]);
}

/**
 * Run pg_ctl on the test cluster (as the postgres user when we are root, as initdb ran). Async, so
 * the job under test keeps running; a (re)started server logs to the cluster's log file, never to
 * our pipe (which would keep pg_ctl's output open for as long as the server runs).
 */
export function pgCtl(cluster: TestCluster, args: string[]): Promise<{ status: number | null; output: string }> {
  const pgCtlPath = join(cluster.pg.binDir, 'pg_ctl');
  const starts = args[0] === 'start' || args[0] === 'restart';
  const argv = [...args, '-D', cluster.pg.dataDir, ...(starts ? ['-l', join(cluster.pg.root, 'postgres.log')] : [])];
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const child = asRoot ? spawn('runuser', ['-u', 'postgres', '--', pgCtlPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(pgCtlPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
  return new Promise((resolve) => {
    child.once('error', (e) => resolve({ status: null, output: `${output}${e.message}` }));
    child.once('close', (status) => resolve({ status, output }));
  });
}

/** A table of poorly compressible rows (about 100 bytes each), so a dump takes a while. */
export async function fillTable(cluster: TestCluster, db: string, table: string, rows: number): Promise<void> {
  await cluster.query(`CREATE TABLE ${table} AS SELECT g AS id, md5(random()::text) || md5(random()::text) || md5(random()::text) AS payload
                        FROM generate_series(1, ${rows}) g`, [], db);
}

export async function rowCount(cluster: TestCluster, db: string, table: string): Promise<number> {
  return (await cluster.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`, [], db)).rows[0]!.n;
}

export async function databaseExists(cluster: TestCluster, db: string): Promise<boolean> {
  return ((await cluster.query('SELECT 1 FROM pg_database WHERE datname = $1', [db])).rowCount ?? 0) > 0;
}

/** User tables of a database (schema.name). */
export async function userTables(cluster: TestCluster, db: string): Promise<string[]> {
  const r = await cluster.query<{ t: string }>(`SELECT n.nspname || '.' || c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' ORDER BY 1`, [], db);
  return r.rows.map((x) => x.t);
}

const THROTTLE_JS = `import { setTimeout as sleep } from 'node:timers/promises';
const bps = Number(process.argv[2]);
process.stdout.on('error', () => process.exit(0));
let sent = 0;
const t0 = Date.now();
for await (const chunk of process.stdin) {
  for (let o = 0; o < chunk.length; o += 16384) {
    const part = chunk.subarray(o, o + 16384);
    if (!process.stdout.write(part)) await new Promise((r) => process.stdout.once('drain', r));
    sent += part.length;
    const ahead = (sent / bps) * 1000 - (Date.now() - t0);
    if (ahead > 0) await sleep(ahead);
  }
}
`;

/**
 * A bin dir whose pg_dump and pg_restore are the real ones (exec'd: the pid pgops holds is the
 * tool's), with pg_dump's output and a restoring pg_restore's input slowed to `bytesPerSecond`
 * by a throttle that dies with its pipe. A job on it is mid-dump or mid-restore for long enough
 * to be killed there, on any machine.
 */
export function slowToolsDir(parent: string, realBinDir: string, bytesPerSecond: number): string {
  const dir = mkdtempSync(join(parent, 'slow-bin-'));
  const throttle = join(dir, 'throttle.mjs');
  writeFileSync(throttle, THROTTLE_JS);
  const slow = `"${process.execPath}" "${throttle}" ${bytesPerSecond}`;
  writeFileSync(join(dir, 'pg_dump'), `#!/bin/bash
case " $* " in *" --version "*|*" -V "*) exec "${realBinDir}/pg_dump" "$@";; esac
case " $* " in *" --format=custom "*|*" -Fc "*) exec "${realBinDir}/pg_dump" "$@" > >(exec ${slow}) ;; esac
exec "${realBinDir}/pg_dump" "$@"
`);
  writeFileSync(join(dir, 'pg_restore'), `#!/bin/bash
last="\${@: -1}"
case " $* " in *" --dbname="*) if [ -f "$last" ]; then set -- "\${@:1:$(($#-1))}"; exec "${realBinDir}/pg_restore" "$@" < <(exec ${slow} < "$last"); else exec "${realBinDir}/pg_restore" "$@" < <(exec ${slow}); fi ;; esac
exec "${realBinDir}/pg_restore" "$@"
`);
  chmodSync(join(dir, 'pg_dump'), 0o755);
  chmodSync(join(dir, 'pg_restore'), 0o755);
  for (const tool of readdirSync(realBinDir)) if (!existsSync(join(dir, tool))) symlinkSync(join(realBinDir, tool), join(dir, tool));
  return dir;
}

/** A bin dir whose pg_dump is a script answering `--version` with `version` and otherwise running `script`. */
export function fakePgDumpDir(parent: string, realBinDir: string, version: string, script = 'echo "fake pg_dump must not run" >&2; exit 1'): string {
  const dir = mkdtempSync(join(parent, 'fake-bin-'));
  writeFileSync(join(dir, 'pg_dump'), `#!/bin/sh\ncase "$1" in --version|-V) echo "pg_dump (PostgreSQL) ${version}"; exit 0;; esac\n${script}\n`);
  chmodSync(join(dir, 'pg_dump'), 0o755);
  symlinkSync(join(realBinDir, 'pg_restore'), join(dir, 'pg_restore'));
  return dir;
}

/** pids of live processes whose argv[0] ends with `/name` (or is `name`), optionally with `needle` in their argv or environment (e.g. `PGPORT=5433`). */
export function processesNamed(name: string, needle?: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (/\) Z /.test(stat)) continue; // a zombie has exited
      if (!argv[0] || !(argv[0] === name || argv[0].endsWith(`/${name}`))) continue;
      if (!needle || argv.join(' ').includes(needle) || readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(needle)) out.push(Number(p));
    } catch { /* exited meanwhile */ }
  }
  return out;
}

/** `pgops: ALERT ...` lines: the CLI's alerts when no destination is configured. */
export function alertLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('pgops: ALERT '));
}

/** The CLI's environment for a database and a storage, nothing inherited from the developer. */
export function cliEnv(cluster: TestCluster, db: string, storageUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return { DATABASE_URL: cluster.url(db), PGOPS_STORAGE: storageUrl, PGOPS_ENVIRONMENT: 'faults', PGOPS_PG_BINDIR: cluster.pg.binDir, ...extra };
}

export interface RunningCli {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  done: Promise<CliResult & { signal: NodeJS.Signals | null }>;
}

/** The real CLI as a child we can signal (runCli waits; this does not). */
export function startCli(args: string[], env: Record<string, string>, timeoutMs = 150_000): RunningCli {
  const clean: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(clean)) if (k.startsWith('PGOPS_') || k === 'DATABASE_URL') delete clean[k];
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'pgops.js'), ...args], { cwd: REPO_ROOT, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<CliResult & { signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128, signal, stdout, stderr });
    });
  });
  return { child, stdout: () => stdout, stderr: () => stderr, done };
}

/** Files a failed job may leave in a storage dir: temporary files, and dumps whose folder has no manifest. */
export function leftovers(storageDir: string): string[] {
  const files = existsSync(storageDir) ? allFiles(storageDir) : [];
  const manifests = new Set(files.filter((f) => f.endsWith('/manifest.json')).map((f) => f.slice(0, -'manifest.json'.length)));
  return files.filter((f) => /\.pgops-tmp-/.test(f) || (/\/dump$/.test(f) && !manifests.has(f.slice(0, -'dump'.length))));
}

/** A clock a day and a minute ahead: every orphan is then old enough for cleanup to remove it. */
export const aDayLater = (): Date => new Date(Date.now() + 86_400_000 + 60_000);

/**
 * An HTTP proxy in front of an S3 endpoint that holds each matching request `delayMs` before
 * forwarding it (S3 slow past the client's timeout). Loopback only.
 */
export class SlowProxy {
  delayMs = 0;
  match: (req: IncomingMessage) => boolean = () => true;
  private readonly sockets = new Set<Socket>();
  private readonly agent = new Agent({ keepAlive: true });
  private constructor(private readonly server: Server, private readonly target: URL, readonly endpoint: string) {}

  static async start(target: string): Promise<SlowProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new SlowProxy(server, new URL(target), `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('connection', (s) => { proxy.sockets.add(s); s.once('close', () => proxy.sockets.delete(s)); });
    server.on('request', (req, res) => { proxy.handle(req, res); });
    return proxy;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const delay = this.match(req) ? this.delayMs : 0;
    req.pause();
    setTimeout(() => {
      if (res.destroyed) return;
      const up = httpRequest({ host: this.target.hostname, port: this.target.port, method: req.method, path: req.url, headers: req.headers, agent: this.agent }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.once('error', () => { if (!res.headersSent) res.writeHead(502).end(); else res.destroy(); });
      req.pipe(up);
      req.resume();
    }, delay);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.agent.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Dependencies of the backup, verify and restore jobs, their logs and alerts captured for the scan. */
export function backupJobDeps(cluster: TestCluster, storage: Storage, db: string, out: Captured, extra: Partial<BackupJobDeps> = {}): { deps: BackupJobDeps; alerter: MemoryAlerter; lines: string[] } {
  const { logger, lines } = out.logger();
  const alerter = out.alerter();
  const deps: BackupJobDeps = { target: cluster.target(db), storage, logger, alerter, databaseId: db, environment: 'faults', binDir: cluster.pg.binDir, ...extra };
  return { deps, alerter, lines };
}

/** Dependencies of the cleanup job (default config, retention on `storage`), captured for the scan. */
export function cleanupJobDeps(cluster: TestCluster, storage: Storage | undefined, db: string, out: Captured, extra: Partial<CleanupDeps> = {}): { deps: CleanupDeps; alerter: MemoryAlerter; lines: string[] } {
  const { logger, lines } = out.logger();
  const alerter = out.alerter();
  const config = defaultFileConfig();
  const deps: CleanupDeps = { target: cluster.target(db), session: config.database, storage, logger, alerter, databaseId: db, environment: 'faults', config, ...extra };
  return { deps, alerter, lines };
}

/** The ids the catalog lists for `db`, newest first. */
export async function listedIds(storage: Storage, db: string): Promise<string[]> {
  return (await listBackups(storage, db)).map((m) => m.id);
}
