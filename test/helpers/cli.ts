// Runs the real CLI (bin/pgops.js) as a child process, capturing everything it prints; a started
// CLI can be sent signals mid-run (SIGTERM tests).
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The signal that ended the process, if one did (the code is then 128). */
  signal?: NodeJS.Signals | null;
}

export interface RunningCli {
  child: ChildProcess;
  pid: number;
  /** What it has printed so far. */
  output(): { stdout: string; stderr: string };
  /** Resolves once it has exited and its output is closed. */
  result: Promise<CliResult>;
}

export function startCli(args: string[], env: Record<string, string | undefined> = {}, options: { cwd?: string; timeoutMs?: number } = {}): RunningCli {
  const clean: NodeJS.ProcessEnv = { ...process.env };
  // Never let the developer's own settings leak into a test.
  for (const k of Object.keys(clean)) if (k.startsWith('PGOPS_') || k === 'DATABASE_URL') delete clean[k];
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'pgops.js'), ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const result = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, signal });
    });
  });
  return { child, pid: child.pid!, output: () => ({ stdout, stderr }), result };
}

export function runCli(args: string[], env: Record<string, string | undefined> = {}, options: { cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return startCli(args, env, options).result;
}

/** Poll `check` every 50 ms until it returns true; throws after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Processes whose parent is `ppid`, with their argv (from /proc). */
export function childProcesses(ppid: number): Array<{ pid: number; argv: string[] }> {
  const out: Array<{ pid: number; argv: string[] }> = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const parent = Number(readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]);
      if (parent === ppid) out.push({ pid: Number(p), argv: readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean) });
    } catch { /* exited meanwhile */ }
  }
  return out;
}

/** Whether process `pid` still exists (a zombie counts as gone). */
export function processAlive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
