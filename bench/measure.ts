// Measuring one command for the bench: wall time, the CPU and peak RSS of the process tree
// (/usr/bin/time -v), the node process's own CPU and RSS (a preload, PROBE_SOURCE), and the
// statistics reported for interleaved rounds (median, spread).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/**
 * The preload (NODE_OPTIONS=--import): on exit, the node process's own peak RSS and CPU, children
 * excluded, as JSON in the file named by PGOPS_BENCH_PROBE. Only the first node process reports (it
 * removes the variable, so a node child cannot overwrite its figures). Written to a temp file at run
 * time rather than kept as bench/probe.mjs: a .mjs outside tsconfig fails the typed lint.
 */
const PROBE_SOURCE = `import { writeFileSync } from 'node:fs';
const file = process.env.PGOPS_BENCH_PROBE;
delete process.env.PGOPS_BENCH_PROBE;
if (file) process.on('exit', () => {
  const u = process.resourceUsage();
  writeFileSync(file, JSON.stringify({ maxRssKb: u.maxRSS, userMs: u.userCPUTime / 1000, systemMs: u.systemCPUTime / 1000 }));
});
`;

let probeScript: string | undefined;

function probePath(): string {
  if (probeScript && existsSync(probeScript)) return probeScript;
  const dir = mkdtempSync(join(tmpdir(), 'pgops-bench-probe-'));
  probeScript = join(dir, 'probe.mjs');
  writeFileSync(probeScript, PROBE_SOURCE);
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return probeScript;
}

export interface NodeUsage { maxRssKb: number; userMs: number; systemMs: number }

export interface Measured {
  wallMs: number;
  stdout: string;
  stderr: string;
  /** Peak RSS of the largest process in the tree (GNU time): the tool's own when it is the command. */
  maxRssKb?: number;
  /** User + system CPU of the command and every child it waited for (GNU time). */
  treeCpuMs?: number;
  /** With `probe`: the node process's own figures, children excluded. */
  node?: NodeUsage;
}

export interface MeasureOptions {
  env: NodeJS.ProcessEnv;
  /** A file for probe.mjs: the command is a node process whose own CPU and RSS are wanted. */
  probe?: string;
  /** Stdout to /dev/null (a dump), not collected. */
  discardStdout?: boolean;
}

/** Run `cmd` to completion; throws with the end of its stderr when it fails. */
export function measure(cmd: string, args: string[], options: MeasureOptions): Promise<Measured> {
  const env = options.probe ? withProbe(options.env, options.probe) : options.env;
  const argv = TIME ? ['-v', cmd, ...args] : args;
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(TIME ?? cmd, argv, { env, stdio: ['ignore', options.discardStdout ? 'ignore' : 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) {
        reject(new Error(`${cmd} ${args.join(' ').slice(0, 300)} failed (exit ${code}): ${stderr.slice(-2000)}`));
        return;
      }
      const node = options.probe ? readProbe(options.probe) : undefined;
      resolve({ wallMs, stdout, stderr, ...timeFigures(stderr), node });
    });
  });
}

function timeFigures(stderr: string): { maxRssKb?: number; treeCpuMs?: number } {
  const num = (re: RegExp): number | undefined => {
    const m = re.exec(stderr);
    return m ? Number(m[1]) : undefined;
  };
  const user = num(/User time \(seconds\): ([\d.]+)/);
  const system = num(/System time \(seconds\): ([\d.]+)/);
  return {
    maxRssKb: num(/Maximum resident set size \(kbytes\): (\d+)/),
    treeCpuMs: user !== undefined && system !== undefined ? (user + system) * 1000 : undefined,
  };
}

function withProbe(env: NodeJS.ProcessEnv, file: string): NodeJS.ProcessEnv {
  rmSync(file, { force: true });
  const nodeOptions = [env.NODE_OPTIONS, `--import=${pathToFileURL(probePath()).href}`].filter(Boolean).join(' ');
  return { ...env, NODE_OPTIONS: nodeOptions, PGOPS_BENCH_PROBE: file };
}

function readProbe(file: string): NodeUsage | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as NodeUsage;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The smallest and largest value. */
export function spread(xs: number[]): { min: number; max: number } {
  return { min: Math.min(...xs), max: Math.max(...xs) };
}

/** The median of the defined values; undefined when there are none. */
export function medianOf(xs: (number | undefined)[]): number | undefined {
  const defined = xs.filter((x): x is number => x !== undefined);
  return defined.length > 0 ? median(defined) : undefined;
}

/**
 * `rounds` interleaved runs of `raw` and `ours`, the order alternating (raw, pgops, pgops, raw, ...)
 * so that neither side always runs first, right after what the other left in the caches.
 */
export async function interleave<T>(rounds: number, raw: (round: number) => Promise<T>, ours: (round: number) => Promise<T>, onRound?: (round: number, raw: T, ours: T) => void): Promise<{ raw: T[]; ours: T[] }> {
  const out: { raw: T[]; ours: T[] } = { raw: [], ours: [] };
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      out.raw.push(await raw(i));
      out.ours.push(await ours(i));
    } else {
      out.ours.push(await ours(i));
      out.raw.push(await raw(i));
    }
    onRound?.(i, out.raw[i]!, out.ours[i]!);
  }
  return out;
}
