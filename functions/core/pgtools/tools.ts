// Running pg_dump and pg_restore: their argv and environment (the password only ever in the
// environment), version checks, exit/stderr handling, and the hashing byte counter every
// stream passes through.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { childEnvironment } from '../config.ts';
import type { DbTarget } from '../db.ts';
import { redactString } from '../redact.ts';
import { PgDumpVersionError } from './errors.ts';
import type { BackupManifest } from '../catalog/manifest.ts';

export interface PgCommand {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * libpq's environment for `target`. Inherited PG* variables are dropped (a stray PGSERVICE or
 * PGOPTIONS must not redirect the job), and so are DATABASE_URL and PGOPS_* (secrets the tool
 * does not need). The password goes in PGPASSWORD: on Linux a process's environment is readable
 * only by its own user, unlike its argv.
 */
export function pgEnv(target: DbTarget, opts: { applicationName: string; database?: string; connectTimeoutSeconds?: number; baseEnv?: NodeJS.ProcessEnv; lockTimeoutMs?: number }): NodeJS.ProcessEnv {
  const env = childEnvironment(opts.baseEnv);
  env.PGHOST = target.host;
  env.PGPORT = String(target.port);
  env.PGUSER = target.user;
  env.PGDATABASE = opts.database ?? target.database;
  if (target.password !== undefined) env.PGPASSWORD = target.password;
  env.PGSSLMODE = target.sslMode;
  if (target.caFile) env.PGSSLROOTCERT = target.caFile;
  env.PGAPPNAME = opts.applicationName;
  env.PGCONNECT_TIMEOUT = String(Math.max(1, Math.ceil(opts.connectTimeoutSeconds ?? 10)));
  // Our own PGOPTIONS (the inherited one was dropped): a tool's session never waits on a lock without bound.
  if (opts.lockTimeoutMs !== undefined) env.PGOPTIONS = `-c lock_timeout=${Math.max(0, Math.trunc(opts.lockTimeoutMs))}`;
  return env;
}

export interface DumpCommandContext {
  binDir: string;
  format: 'custom' | 'directory';
  /** Directory format: where pg_dump writes. */
  outDir?: string;
  jobs?: number;
  /** An exported snapshot to dump (consistent with the row counts taken in it). */
  snapshot?: string;
  connectTimeoutSeconds?: number;
  baseEnv?: NodeJS.ProcessEnv;
  /** --compress=... (pgtools/compression.ts); omitted: pg_dump's default. */
  compress?: string;
}

/** pg_dump's argv and environment. Custom format goes to stdout. */
export function buildPgDumpCommand(target: DbTarget, options: BackupManifest['options'], ctx: DumpCommandContext): PgCommand {
  const args: string[] = ctx.format === 'custom' ? ['--format=custom'] : ['--format=directory', `--file=${ctx.outDir ?? ''}`, `--jobs=${ctx.jobs ?? 1}`, '--no-sync'];
  // Never prompt: no terminal in a Lambda, and a prompt would hang the job.
  args.push('--no-password');
  if (ctx.compress) args.push(ctx.compress);
  if (options.schemaOnly) args.push('--schema-only');
  if (options.dataOnly) args.push('--data-only');
  for (const t of options.tables) args.push(`--table=${t}`);
  for (const t of options.excludeTables) args.push(`--exclude-table=${t}`);
  if (ctx.snapshot) args.push(`--snapshot=${ctx.snapshot}`);
  return {
    command: join(ctx.binDir, 'pg_dump'),
    args,
    env: pgEnv(target, { applicationName: 'pgops-backup', connectTimeoutSeconds: ctx.connectTimeoutSeconds, baseEnv: ctx.baseEnv }),
  };
}

export interface RestoreCommandOptions {
  binDir: string;
  /** Archive file or directory; omitted: read stdin. */
  input?: string;
  format?: 'custom' | 'directory';
  /** Restore into this database; omitted: only read the archive (script to /dev/null). */
  database?: string;
  clean?: boolean;
  noOwner?: boolean;
  noAcl?: boolean;
  tables?: string[];
  jobs?: number;
  list?: boolean;
  /** With `list`: also print each entry's `depends on` line (pg_restore -l -v). */
  verbose?: boolean;
  /** Restore only the entries of this TOC list file (pg_restore -L), instead of `tables`. */
  useList?: string;
  singleTransaction?: boolean;
  connectTimeoutSeconds?: number;
  /** lock_timeout of pg_restore's sessions (PGOPTIONS). */
  lockTimeoutMs?: number;
  baseEnv?: NodeJS.ProcessEnv;
}

export function buildPgRestoreCommand(target: DbTarget, o: RestoreCommandOptions): PgCommand {
  const args: string[] = [];
  if (o.format) args.push(`--format=${o.format}`);
  if (o.list) args.push('--list', ...(o.verbose ? ['--verbose'] : []));
  else if (o.database) args.push(`--dbname=${o.database}`, '--exit-on-error', '--no-password');
  // A script to /dev/null makes pg_restore read and decompress every data block.
  else args.push('--file=/dev/null');
  if (o.clean) args.push('--clean', '--if-exists');
  if (o.noOwner) args.push('--no-owner');
  if (o.noAcl) args.push('--no-acl');
  if (o.useList) args.push(`--use-list=${o.useList}`);
  else for (const t of o.tables ?? []) args.push(`--table=${t}`);
  if ((o.jobs ?? 1) > 1) args.push(`--jobs=${o.jobs}`);
  else if (o.singleTransaction) args.push('--single-transaction');
  if (o.input) args.push(o.input);
  // --dbname=NAME is only a database name here: host, user and password come from the environment.
  return {
    command: join(o.binDir, 'pg_restore'),
    args,
    env: pgEnv(target, { applicationName: 'pgops-restore', database: o.database, connectTimeoutSeconds: o.connectTimeoutSeconds, baseEnv: o.baseEnv, lockTimeoutMs: o.lockTimeoutMs }),
  };
}

export interface ToolVersion {
  /** e.g. 150014 for 15.14, 90624 for 9.6.24: comparable with server_version_num. */
  num: number;
  text: string;
}

/** Parse `pg_dump (PostgreSQL) 15.14 (Debian 15.14-1.pgdg120+1)`. */
export function parseToolVersion(output: string): ToolVersion {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(output) ?? /\b(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(output);
  if (!m) throw new PgDumpVersionError(`could not read the version of pg_dump from "${output.trim().slice(0, 200)}"`);
  const major = Number(m[1]);
  const minor = Number(m[2] ?? 0);
  const num = major >= 10 ? major * 10000 + minor : major * 10000 + minor * 100 + Number(m[3] ?? 0);
  return { num, text: output.trim() };
}

/** 150014 -> "15", 90624 -> "9.6". */
export function majorOf(versionNum: number): string {
  return versionNum >= 100000 ? String(Math.floor(versionNum / 10000)) : `${Math.floor(versionNum / 10000)}.${Math.floor(versionNum / 100) % 100}`;
}

/** pg_dump cannot dump a server newer than itself (and says so only at run time): refuse first. */
export function checkPgDumpVersion(pgDump: ToolVersion, serverVersionNum: number): void {
  const tool = Math.floor(pgDump.num / 100);
  const server = Math.floor(serverVersionNum / 100);
  if (tool < server) {
    throw new PgDumpVersionError(`pg_dump ${majorOf(pgDump.num)} is older than the server (PostgreSQL ${majorOf(serverVersionNum)}): install the PostgreSQL ${majorOf(serverVersionNum)} client tools (or newer) or point PGOPS_PG_BINDIR at them`);
  }
}

export interface ToolExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  spawnError?: Error;
}

export function exitOk(e: ToolExit): boolean {
  return !e.spawnError && e.code === 0 && e.signal === null;
}

/** The lines an operator needs: pg_dump's first error and the server's message, not "Command was: COPY ...". */
export function summarizeStderr(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const i = lines.findIndex((l) => /\berror:/i.test(l) || /\bfatal:/i.test(l));
  if (i < 0) return redactString(lines.at(-1) ?? '').slice(0, 500);
  const picked = [lines[i]!];
  const detail = lines.slice(i + 1).find((l) => /detail:/.test(l) && !/Command was:/.test(l));
  if (detail) picked.push(detail.replace(/^\S+:\s*detail:\s*/, ''));
  return redactString(picked.join(' — ')).slice(0, 500);
}

export function describeExit(tool: string, e: ToolExit): string {
  if (e.spawnError) return `could not run ${tool}: ${redactString(e.spawnError.message)}`;
  const why = summarizeStderr(e.stderr);
  if (e.signal) return `${tool} was killed by ${e.signal}${why ? `: ${why}` : ''}`;
  return `${tool} exited with code ${e.code}${why ? `: ${why}` : ''}`;
}

export interface RunningTool {
  child: ChildProcess;
  /** Resolves (never rejects) when the process has exited and its stdio is closed. */
  done: Promise<ToolExit>;
  kill(): void;
}

const STDERR_KEEP = 64 * 1024;

// util-linux's setpriv sets PR_SET_PDEATHSIG and execs the tool (same pid): the tool gets SIGTERM
// when pgops dies, even by SIGKILL. Without it (another image), the tool is spawned as is.
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/** The argv that runs `cmd` so that it dies with this process, where the system allows it. */
export function dieWithParent(cmd: PgCommand, setpriv: string | null = SETPRIV ?? null): { command: string; args: string[] } {
  // A missing tool is spawned directly, so the spawn error names it.
  return setpriv && existsSync(cmd.command) ? { command: setpriv, args: ['--pdeathsig', 'TERM', '--', cmd.command, ...cmd.args] } : { command: cmd.command, args: cmd.args };
}

// coreutils' stdbuf library (what `stdbuf -o` preloads). A tool's stdio buffer is sized by the
// descriptor's st_blksize, 4 KiB for a pipe: pg_dump then writes its archive 4 KiB per syscall, and
// node wakes for each small read (measured: 19 KiB per read on average, 3x node's CPU per MB). With
// 1 MiB buffers node reads full 64 KiB chunks. Without the library the tool runs as is.
const STDBUF_LIB = ['/usr/libexec/coreutils/libstdbuf.so', '/usr/lib/coreutils/libstdbuf.so', '/usr/lib64/coreutils/libstdbuf.so'].find((p) => existsSync(p));
const STREAM_BUFFER_BYTES = String(1024 * 1024);

/** The tool's environment with 1 MiB stdio buffers on its piped stdin/stdout, where the system has the library. */
export function withStreamBuffers(env: NodeJS.ProcessEnv, pipes: { stdin?: boolean; stdout?: boolean }, lib: string | null = STDBUF_LIB ?? null): NodeJS.ProcessEnv {
  if (lib === null || (!pipes.stdin && !pipes.stdout)) return env;
  const preload = env.LD_PRELOAD ? `${lib}:${env.LD_PRELOAD}` : lib;
  return {
    ...env, LD_PRELOAD: preload,
    ...(pipes.stdin ? { _STDBUF_I: STREAM_BUFFER_BYTES } : {}),
    ...(pipes.stdout ? { _STDBUF_O: STREAM_BUFFER_BYTES } : {}),
  };
}

export interface StartOptions {
  stdin?: 'pipe' | 'ignore';
  stdout?: 'pipe' | 'ignore';
  /** The piped stdin/stdout carry a stream (an archive): give the tool 1 MiB stdio buffers (withStreamBuffers). */
  streamBuffers?: boolean;
  /** Aborting it stops the tool (SIGTERM). */
  signal?: AbortSignal;
}

export function startTool(cmd: PgCommand, stdio: StartOptions = {}): RunningTool {
  const argv = dieWithParent(cmd);
  const env = stdio.streamBuffers ? withStreamBuffers(cmd.env, { stdin: stdio.stdin === 'pipe', stdout: stdio.stdout === 'pipe' }) : cmd.env;
  const child = spawn(argv.command, argv.args, { env, stdio: [stdio.stdin ?? 'ignore', stdio.stdout ?? 'ignore', 'pipe'] });
  let stderr = '';
  let exited = false;
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    stderr += d;
    if (stderr.length > STDERR_KEEP * 2) stderr = stderr.slice(-STDERR_KEEP);
  });
  // Writes to a tool that already exited fail with EPIPE; the exit code tells the story.
  child.stdin?.on('error', () => {});
  const kill = () => {
    if (!exited && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  stdio.signal?.addEventListener('abort', kill, { once: true });
  if (stdio.signal?.aborted) kill();
  const done = new Promise<ToolExit>((resolve) => {
    const finish = (e: ToolExit) => {
      exited = true;
      stdio.signal?.removeEventListener('abort', kill);
      resolve(e);
    };
    child.once('error', (err) => finish({ code: null, signal: null, stderr, spawnError: err }));
    child.once('close', (code, signal) => finish({ code, signal, stderr }));
  });
  return { child, done, kill };
}

/** Run a tool to completion, collecting stdout. */
export async function runTool(cmd: PgCommand, signal?: AbortSignal): Promise<ToolExit & { stdout: string }> {
  const t = startTool(cmd, { stdout: 'pipe', signal });
  let stdout = '';
  t.child.stdout?.setEncoding('utf8');
  t.child.stdout?.on('data', (d: string) => { stdout += d; });
  const e = await t.done;
  return { ...e, stdout };
}

export async function toolVersion(binary: string): Promise<ToolVersion> {
  const r = await runTool({ command: binary, args: ['--version'], env: childEnvironment() });
  if (!exitOk(r)) throw new PgDumpVersionError(describeExit(binary, r));
  return parseToolVersion(r.stdout);
}

/**
 * Pass-through that computes SHA-256 and counts bytes. `beforeEnd` runs before the stream ends:
 * the backup waits there for pg_dump's exit status, so a failed dump errors the body instead
 * of ending it, and the storage never commits it.
 */
export class HashMeter extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private sum: string | undefined;
  bytes = 0;
  constructor(private readonly onBytes?: (bytes: number) => void, private readonly beforeEnd?: () => Promise<void>) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (!this.beforeEnd) return cb();
    this.beforeEnd().then(() => cb(), (err: Error) => cb(err));
  }
  digest(): string {
    return (this.sum ??= this.hash.digest('hex'));
  }
}

/**
 * Writes into a child's stdin. If the child stops reading (it exited), the rest is discarded so
 * the source can still be read, and hashed, to its end.
 */
export class ChildStdinSink extends Writable {
  private dead = false;
  constructor(private readonly tool: RunningTool) {
    super();
    tool.child.stdin?.once('error', () => { this.dead = true; });
    tool.child.stdin?.once('close', () => { this.dead = true; });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    const stdin = this.tool.child.stdin;
    if (this.dead || !stdin || stdin.destroyed) return cb();
    stdin.write(chunk, (err) => {
      if (err) this.dead = true;
      cb();
    });
  }
  override _final(cb: (error?: Error | null) => void): void {
    const stdin = this.tool.child.stdin;
    if (!this.dead && stdin && !stdin.destroyed) stdin.end(() => cb());
    else cb();
  }
}
