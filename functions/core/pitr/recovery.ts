// Running recovery on the scratch cluster: start the server (as its unprivileged user), follow its
// log until it has promoted (postmaster.pid says "ready"), and turn every way recovery can go wrong
// into a failure naming the log line: a FATAL or PANIC (among them "recovery ended before configured
// recovery target was reached" and a restore_command that aborted), a server that exited, a timeout.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { childEnvironment } from '../config.ts';
import { errorMessage } from '../errors.ts';
import { redactString } from '../redact.ts';
import { throwIfInterrupted } from '../run-job.ts';
import { RecoveryFailedError } from './errors.ts';
import type { ScratchCluster } from './scratch.ts';

const run = promisify(execFile);

/** What the log says so far. */
export interface LogScan {
  /** WAL files restored from the archive, in order. */
  restored: string[];
  /** The first FATAL or PANIC line (connection refusals aside). */
  failure?: string;
  /** pgops' own error lines (wal fetch saying why it failed). */
  fetchErrors: string[];
  /** "recovery stopping before commit of transaction 745, time ..." */
  stop?: string;
  /** The timeline the server switched to at promotion. */
  newTimeline?: number;
  /** "last completed transaction was at log time ...", as logged. */
  lastTransactionAt?: string;
}

// Refusals of a connection attempt while the server starts: said to the client, not a recovery failure.
const CONNECTION_REFUSALS = /the database system is (starting up|not yet accepting connections|shutting down|in recovery mode)|no pg_hba\.conf entry|role ".*" does not exist|database ".*" does not exist/;

/** Read server log lines (oldest first) into `scan`. */
export function scanLogLines(lines: readonly string[], scan: LogScan = { restored: [], fetchErrors: [] }): LogScan {
  for (const line of lines) {
    const restored = /restored log file "([0-9A-F]{24}|[0-9A-F]{8}\.history)" from archive/.exec(line);
    if (restored) scan.restored.push(restored[1]!);
    const fatal = /\b(FATAL|PANIC):\s+(.*)$/.exec(line);
    if (fatal && !scan.failure && !CONNECTION_REFUSALS.test(fatal[2]!)) scan.failure = `${fatal[1]}: ${fatal[2]!.trim()}`;
    if (/^pgops: (error|warning|warn):/.test(line.trim())) scan.fetchErrors.push(line.trim());
    const stop = /LOG:\s+(recovery stopping .*)$/.exec(line);
    if (stop) scan.stop = stop[1];
    const tli = /selected new timeline ID: (\d+)/.exec(line);
    if (tli) scan.newTimeline = Number(tli[1]);
    const last = /last completed transaction was at log time (.+)$/.exec(line);
    if (last) scan.lastTransactionAt = last[1]!.trim();
  }
  return scan;
}

/**
 * The server's environment: ours without libpq's and pgops' settings (childEnvironment), with its
 * temporary files in the scratch directory (an inherited TMPDIR may be one the server's user
 * cannot write, and restore_command's node would fail there).
 */
function serverEnvironment(s: ScratchCluster): NodeJS.ProcessEnv {
  return { ...childEnvironment(), TMPDIR: s.root };
}

/** Run a program as the scratch cluster's user (runuser when we are root). */
async function runAsServer(s: ScratchCluster, binary: string, args: string[], cwd?: string): Promise<{ stdout: string; stderr: string }> {
  const [command, argv] = s.user ? ['runuser', ['-u', s.user.name, '--', binary, ...args]] : [binary, args];
  return run(command, argv, { env: serverEnvironment(s), timeout: 120_000, cwd });
}

/** PostgreSQL's expansion of a restore_command: %f the file name, %p the destination, %% a percent sign. */
export function expandRestoreCommand(command: string, file: string, path: string): string {
  return command.replace(/%([fp%])/g, (_m, c: string) => (c === 'f' ? file : c === 'p' ? path : '%'));
}

/**
 * Run restore_command once, as the server would (its user, its environment, from the data
 * directory), for a file that must be in the archive. A command that cannot even start (a CLI the
 * server's user cannot run, storage it cannot read) may exit 1, which recovery reads as "not in the
 * archive": found here, it stops the job before recovery starts.
 */
export async function checkRestoreCommand(s: ScratchCluster, command: string, file: string): Promise<void> {
  const dest = join(s.root, 'restore-command-check');
  try {
    await runAsServer(s, '/bin/sh', ['-c', expandRestoreCommand(command, file, dest)], s.dataDir);
  } catch (err) {
    const e = err as { code?: number | string; stderr?: string };
    const said = redactString((e.stderr ?? errorMessage(err)).trim().split('\n').slice(-3).join(' | ').slice(0, 600));
    throw new RecoveryFailedError(`restore_command (pgops wal fetch) does not work for the server${s.user ? ` (as user ${s.user.name})` : ''}: fetching ${file} exited ${e.code ?? 'abnormally'}: ${said}; nothing was recovered`, [], { cause: err });
  } finally {
    await rm(dest, { force: true });
  }
}

/** Start the server without waiting: recovery can take longer than pg_ctl's wait, and we read the log instead. */
export async function startServer(s: ScratchCluster, binDir: string): Promise<void> {
  try {
    await runAsServer(s, join(binDir, 'pg_ctl'), ['start', '-D', s.dataDir, '-l', s.logFile, '-W']);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? errorMessage(err);
    throw new RecoveryFailedError(`could not start the scratch PostgreSQL: ${redactString(stderr.trim().slice(0, 500))}`, [], { cause: err });
  }
}

/** postmaster.pid: the postmaster's pid and status line ("starting", "ready", "stopping"), when it exists. */
export async function readPostmasterPid(dataDir: string): Promise<{ pid: number; listen: string; status: string } | undefined> {
  const text = await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  return Number.isInteger(pid) && pid > 0 ? { pid, listen: lines[5]?.trim() ?? '', status: lines[7]?.trim() ?? '' } : undefined;
}

/** Whether `pid` runs; a zombie (exited, not yet reaped: the postmaster's parent is gone) counts as gone. */
export function processAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Follows the server log from where it was last read. */
export class LogFollower {
  private offset = 0;
  private partial = '';
  readonly scan: LogScan = { restored: [], fetchErrors: [] };
  readonly tail: string[] = [];
  constructor(private readonly path: string) {}

  async read(): Promise<LogScan> {
    const handle = await open(this.path, 'r').catch(() => undefined);
    if (!handle) return this.scan;
    try {
      const { size } = await handle.stat();
      if (size <= this.offset) return this.scan;
      const buf = Buffer.alloc(size - this.offset);
      await handle.read(buf, 0, buf.length, this.offset);
      this.offset = size;
      const lines = (this.partial + buf.toString('utf8')).split('\n');
      this.partial = lines.pop() ?? '';
      this.tail.push(...lines);
      this.tail.splice(0, Math.max(0, this.tail.length - 40));
      return scanLogLines(lines, this.scan);
    } finally {
      await handle.close();
    }
  }
}

export interface WaitOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  pollMs?: number;
  /** How long the server may take to create postmaster.pid before it counts as failed to start. */
  startGraceMs?: number;
  onRestored?: (restored: number) => void;
}

/** Wait until the server has promoted; RecoveryFailedError naming the log line otherwise. */
export async function waitForPromotion(s: ScratchCluster, log: LogFollower, o: WaitOptions): Promise<LogScan> {
  const t0 = performance.now();
  let seen = false;
  for (;;) {
    throwIfInterrupted('pitr', o.signal);
    const scan = await log.read();
    o.onRestored?.(scan.restored.length);
    if (scan.failure) throw failureFrom(scan, log, scan.failure);
    const pid = await readPostmasterPid(s.dataDir);
    if (pid?.status === 'ready') return scan;
    const elapsed = performance.now() - t0;
    if (pid && processAlive(pid.pid)) seen = true;
    else if (seen || elapsed > (o.startGraceMs ?? 60_000)) throw failureFrom(await log.read(), log, seen ? 'the server exited during recovery' : 'the server did not start');
    if (elapsed > o.timeoutMs) throw failureFrom(scan, log, `recovery did not finish within ${Math.round(o.timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, o.pollMs ?? 200));
  }
}

function failureFrom(scan: LogScan, log: LogFollower, what: string): RecoveryFailedError {
  const why = scan.failure && what !== scan.failure ? `${what}: ${scan.failure}` : what;
  // restore_command exited 126 or more (PostgreSQL calls that "command not executable"): pgops wal fetch aborted it.
  const aborted = /could not restore file/.test(scan.failure ?? '') ? ': pgops wal fetch could not deliver it and aborted recovery rather than let it end early' : '';
  const fetch = scan.fetchErrors.length > 0 ? ` (${scan.fetchErrors.at(-1)})` : '';
  const lines = log.tail.filter((l) => /FATAL|PANIC|ERROR|pgops:/.test(l)).slice(-10);
  return new RecoveryFailedError(redactString(`recovery failed: ${why}${aborted}${fetch}`), lines.map((l) => redactString(l)));
}

/** A session on the scratch cluster over its unix socket. */
export async function scratchClient(s: ScratchCluster, user: string, database = 'template1'): Promise<pg.Client> {
  const client = new pg.Client({ host: s.socketDir, port: s.port, user, database, application_name: 'pgops-pitr' });
  client.on('error', () => {});
  await client.connect();
  return client;
}

export interface RecoveredTo {
  lsn: string;
  time?: string;
  /** The timeline the recovered cluster runs on (a new one: it promoted). */
  timeline?: number;
  /** The server's own words on where it stopped. */
  stop?: string;
}

/** Where replay ended: the last replayed LSN and transaction time (kept after promotion), and the new timeline. */
export async function readRecoveredTo(s: ScratchCluster, user: string, scan: LogScan): Promise<RecoveredTo> {
  const client = await scratchClient(s, user);
  try {
    const r = await client.query<{ lsn: string | null; t: string | null; recovering: boolean }>(
      `SELECT pg_last_wal_replay_lsn()::text AS lsn, pg_is_in_recovery() AS recovering,
              to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t`);
    const row = r.rows[0]!;
    if (row.recovering) throw new RecoveryFailedError('the scratch cluster accepted connections but is still in recovery (it did not promote)', []);
    const time = row.t ?? scan.lastTransactionAt;
    return { lsn: row.lsn ?? 'unknown', ...(time ? { time } : {}), ...(scan.newTimeline ? { timeline: scan.newTimeline } : {}), ...(scan.stop ? { stop: scan.stop } : {}) };
  } finally {
    await client.end().catch(() => {});
  }
}

/** Stop the server: fast, then immediate, then the postmaster killed; never leaves it running. */
export async function stopServer(s: ScratchCluster, binDir: string, mode: 'fast' | 'immediate' = 'fast'): Promise<boolean> {
  const pid = await readPostmasterPid(s.dataDir);
  if (!pid || !processAlive(pid.pid)) return true;
  const pgCtl = join(binDir, 'pg_ctl');
  try {
    await runAsServer(s, pgCtl, ['stop', '-D', s.dataDir, '-m', mode, '-w', '-t', '60']);
    return true;
  } catch {
    await runAsServer(s, pgCtl, ['stop', '-D', s.dataDir, '-m', 'immediate', '-w', '-t', '30']).catch(() => undefined);
    if (processAlive(pid.pid)) process.kill(pid.pid, 'SIGKILL');
    return false;
  }
}
