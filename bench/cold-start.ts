// npm run bench:cold-start: each Lambda handler bundled exactly as the stack bundles it
// (lib/bundling.ts), zipped as Lambda receives it, then loaded in fresh `node` processes N times:
// the import (the module-load share of a cold start, not the runtime's own init), the memory it
// leaves (RSS over an empty node's), and one first invocation that fails fast without AWS or a
// network (the SDK endpoint is a closed local port), with the peak RSS after it.
// Prints a markdown table, the packages that dominate each bundle (esbuild's metafile), and writes
// the figures to bench/cold-start.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { BUNDLE, esbuildOptions } from '../lib/bundling.ts';
import { ENV } from '../functions/core/config.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.PGOPS_BENCH_RUNS ?? 7);
const HANDLERS = ['migrate', 'health-check', 'cleanup', 'notify-slack', 'backup'];
const RESULTS_FILE = join(ROOT, 'bench', 'cold-start.json');
/** A run that takes longer is killed and reported as such: nothing here may hang the bench. */
const RUN_TIMEOUT_MS = 30_000;
/** Where every AWS SDK call goes: the discard port on loopback, closed, so each call is refused at once. */
const CLOSED_ENDPOINT = 'http://127.0.0.1:9';

export interface Bundled {
  handler: string;
  dir: string;
  file: string;
  metafile: Metafile;
}

/** One handler, with the stack's settings, into its own directory as index.mjs (+ index.mjs.map). */
export async function bundleHandler(handler: string, outRoot: string): Promise<Bundled> {
  const dir = join(outRoot, handler);
  const file = join(dir, `index${BUNDLE.outExtension}`);
  const result = await build({
    ...esbuildOptions(),
    entryPoints: [join(ROOT, 'functions', handler, 'index.ts')],
    outfile: file,
    metafile: true,
  });
  return { handler, dir, file, metafile: result.metafile };
}

function bytesOnDisk(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .reduce((sum, d) => sum + statSync(join(d.parentPath, d.name)).size, 0);
}

/** The directory zipped as CDK ships an asset (deflate, `zip`'s default level). */
export function zippedBytes(dir: string): number {
  const zipFile = `${dir}.zip`;
  const r = spawnSync('zip', ['-q', '-r', '-X', zipFile, '.'], { cwd: dir });
  if (r.status !== 0) throw new Error(`zip failed: ${r.stderr.toString()}`);
  const size = statSync(zipFile).size;
  rmSync(zipFile);
  return size;
}

/**
 * The environment of a bench run: dummy credentials and names only (no secret exists here), every
 * SDK endpoint on a closed local port with a single attempt (no retry back-off inside the timing),
 * no shared AWS config or IMDS, and no Lambda variables, so Powertools keeps X-Ray tracing off.
 */
function offlineEnvironment(home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'dummy',
    AWS_SECRET_ACCESS_KEY: 'dummy',
    AWS_ENDPOINT_URL: CLOSED_ENDPOINT,
    AWS_MAX_ATTEMPTS: '1',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: join(home, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-aws-credentials'),
  };
}

const DUMMY_ACCOUNT = 'arn:aws:secretsmanager:eu-west-1:000000000000:secret';
const TOPIC = 'arn:aws:sns:eu-west-1:000000000000:pgops-bench-alerts';

/** What the stack sets for a job of one database (lib/constructs/jobs/context.ts), with dummy names. */
function databaseEnvironment(): Record<string, string> {
  return {
    [ENV.databaseSecretId]: `${DUMMY_ACCOUNT}:pgops-bench-db`,
    [ENV.databaseId]: 'bench',
    [ENV.environment]: 'bench',
    [ENV.logLevel]: 'info',
    [ENV.snsTopicArn]: TOPIC,
    [ENV.databaseHost]: '127.0.0.1',
    [ENV.databasePort]: '9',
  };
}

interface Invocation {
  /** The function's own variables, as its construct sets them (names from lib/constructs/jobs/*.ts). */
  env: Record<string, string>;
  event: unknown;
}

/** One minimal event per function, as its trigger sends it. */
function invocationOf(handler: string): Invocation {
  const storage = { [ENV.storage]: 's3://pgops-bench-backups/pgops' };
  const migrations = { [ENV.migrationsDir]: join(ROOT, 'migrations') };
  switch (handler) {
    case 'migrate': return { env: { ...databaseEnvironment(), ...migrations }, event: { command: 'up' } };
    case 'health-check': return { env: { ...databaseEnvironment(), ...storage, ...migrations }, event: { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} } };
    case 'cleanup': return { env: { ...databaseEnvironment(), ...storage }, event: {} };
    case 'backup': return { env: { ...databaseEnvironment(), ...storage }, event: {} };
    case 'notify-slack': {
      const alert = { severity: 'critical', job: 'backup', database: 'bench', environment: 'bench', summary: 'bench alert' };
      const env = { [ENV.slackWebhookSecretId]: `${DUMMY_ACCOUNT}:pgops-bench-slack`, [ENV.environment]: 'bench', [ENV.logLevel]: 'info' };
      return { env, event: { Records: [{ Sns: { Message: JSON.stringify(alert), Subject: '[CRITICAL] pgops backup bench/bench: bench alert', TopicArn: TOPIC } }] } };
    }
    default: throw new Error(`no bench invocation for ${handler}`);
  }
}

interface RunResult {
  importMs: number;
  rss: number;
  heapUsed: number;
  invokeMs: number;
  peakRss: number;
  outcome: string;
}

/**
 * The script of one run: import, memory after it, then one call of `handler` and the peak RSS.
 * The outcome keeps the first line of the error the function throws (redacted by the handler).
 */
function runScript(file: string, event: unknown, resultFile: string): string {
  return `
const t0 = performance.now();
const mod = await import(${JSON.stringify(pathToFileURL(file).href)});
const importMs = performance.now() - t0;
const { rss, heapUsed } = process.memoryUsage();
const context = { awsRequestId: 'bench', getRemainingTimeInMillis: () => 60000 };
let outcome = 'returned';
const t1 = performance.now();
try { await mod.handler(${JSON.stringify(event)}, context); } catch (e) { outcome = String(e?.message ?? e).split('\\n')[0]; }
const invokeMs = performance.now() - t1;
const peakRss = process.resourceUsage().maxRSS * 1024;
(await import('node:fs')).writeFileSync(${JSON.stringify(resultFile)}, JSON.stringify({ importMs, rss, heapUsed, invokeMs, peakRss, outcome }));
process.exit(0);`;
}

/** A script in a fresh node, bounded by RUN_TIMEOUT_MS: what it wrote to `resultFile`, and the function's logs (Powertools writes errors to stderr). */
function runNode<T>(script: string, env: NodeJS.ProcessEnv, resultFile: string): { result: T; logs: string } {
  rmSync(resultFile, { force: true });
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8', env, timeout: RUN_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 64 * 2 ** 20, stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error) throw new Error(`bench run failed (${r.error.message}; bounded at ${RUN_TIMEOUT_MS / 1000} s)`);
  if (r.status !== 0) throw new Error(`bench run exited ${r.status}: ${r.stderr.slice(-2000)}`);
  return { result: JSON.parse(readFileSync(resultFile, 'utf8')) as T, logs: `${r.stdout}\n${r.stderr}` };
}

/** The first call's outcome, and the alerts it failed to send (core/alerts/alerter.ts logs each, JSON per line). */
function firstCall(run: { result: RunResult; logs: string }): RunResult {
  const failedSends = run.logs.split('\n').flatMap((line) => {
    try {
      const entry = JSON.parse(line) as { message?: unknown; error?: unknown };
      return typeof entry.message === 'string' && entry.message.startsWith('could not send alert') ? [`then "${entry.message}": ${String(entry.error)}`] : [];
    } catch {
      return [];
    }
  });
  return { ...run.result, outcome: [run.result.outcome, ...failedSends].join('; ') };
}

/** Milliseconds to import `file` in a fresh node process (no call). */
function importMs(file: string, nodeArgs: string[]): number {
  const script = `const t0 = performance.now(); await import(${JSON.stringify(pathToFileURL(file).href)}); process.stdout.write(String(performance.now() - t0));`;
  const r = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: RUN_TIMEOUT_MS, killSignal: 'SIGKILL' });
  if (r.status !== 0) throw new Error(`import of ${file} failed: ${r.error?.message ?? r.stderr}`);
  return Number(r.stdout);
}

interface Samples {
  runs: RunResult[];
  sourceMapsImportMs: number[];
}

/** RUNS samples of each variant, interleaved so that a busy neighbour weighs on both alike. */
function sampleHandler(b: Bundled, scratch: string): Samples {
  const { env, event } = invocationOf(b.handler);
  const resultFile = join(scratch, `${b.handler}.json`);
  const runs: RunResult[] = [];
  const sourceMapsImportMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    runs.push(firstCall(runNode<RunResult>(runScript(b.file, event, resultFile), { ...offlineEnvironment(scratch), ...env }, resultFile)));
    sourceMapsImportMs.push(importMs(b.file, ['--enable-source-maps']));
  }
  return { runs, sourceMapsImportMs };
}

/** RSS and heap of a node process that imports nothing, with the same environment. */
function emptyNode(scratch: string): { rss: number[]; heapUsed: number[] } {
  const resultFile = join(scratch, 'empty.json');
  const script = `const { rss, heapUsed } = process.memoryUsage(); (await import('node:fs')).writeFileSync(${JSON.stringify(resultFile)}, JSON.stringify({ rss, heapUsed }));`;
  const samples = Array.from({ length: RUNS }, () => runNode<{ rss: number; heapUsed: number }>(script, offlineEnvironment(scratch), resultFile).result);
  return { rss: samples.map((s) => s.rss), heapUsed: samples.map((s) => s.heapUsed) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function spread(xs: number[]): string {
  return `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
}

/** Output bytes per npm package (or "pgops" for our own code), largest first. */
export function dominantPackages(metafile: Metafile, top = 5): Array<{ name: string; bytes: number }> {
  const byPackage = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
      const name = m ? m[1]! : 'pgops';
      byPackage.set(name, (byPackage.get(name) ?? 0) + bytesInOutput);
    }
  }
  return [...byPackage].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes).slice(0, top);
}

const mb = (n: number) => (n / 1e6).toFixed(2);
const mib = (n: number) => (n / 2 ** 20).toFixed(1);
const round = (n: number, digits = 1) => Number(n.toFixed(digits));
const stats = (xs: number[]) => ({ median: round(median(xs)), min: round(Math.min(...xs)), max: round(Math.max(...xs)) });

interface Measured {
  b: Bundled;
  zipped: number;
  onDisk: number;
  samples: Samples;
}

/** One row of the table: sizes, import, memory over the empty node's, the first call. */
function row(m: Measured, emptyRss: number): string {
  const { runs, sourceMapsImportMs } = m.samples;
  const imports = runs.map((r) => r.importMs);
  const invokes = runs.map((r) => r.invokeMs);
  const rss = median(runs.map((r) => r.rss));
  return `| ${m.b.handler} | ${mb(m.zipped)} | ${mb(m.onDisk)} | ${median(imports).toFixed(0)} (${spread(imports)}) | ${median(sourceMapsImportMs).toFixed(0)} (${spread(sourceMapsImportMs)}) | ${mib(rss)} (+${mib(rss - emptyRss)}) | ${mib(median(runs.map((r) => r.heapUsed)))} | ${median(invokes).toFixed(0)} (${spread(invokes)}) | ${mib(median(runs.map((r) => r.peakRss)))} | ${outcomes(runs).join('; ')} |`;
}

/** What the first calls did, each distinct outcome once (table cells hold no pipes). */
function outcomes(runs: RunResult[]): string[] {
  return [...new Set(runs.map((r) => r.outcome.replace(/\|/g, '/')))];
}

function table(measured: Measured[], empty: { rss: number[]; heapUsed: number[] }): string {
  const emptyRss = median(empty.rss);
  return [
    `Node ${process.version}, ${cpus().length} CPUs, N=${RUNS} fresh processes per function; an empty node: RSS ${mib(emptyRss)} MiB, heap ${mib(median(empty.heapUsed))} MiB (medians).`,
    '',
    '| function | zipped MB | on disk MB | import ms, median (min–max) | import ms with --enable-source-maps | init RSS MiB (over empty node) | init heap MiB | first invoke ms, median (min–max) | peak RSS MiB | what the first invoke did |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...measured.map((m) => row(m, emptyRss)),
  ].join('\n');
}

function resultsJson(measured: Measured[], empty: { rss: number[]; heapUsed: number[] }): unknown {
  const toMiB = (xs: number[]) => xs.map((x) => x / 2 ** 20);
  return {
    measuredAt: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    runs: RUNS,
    invocationEnvironment: `AWS SDK endpoint ${CLOSED_ENDPOINT} (closed), AWS_MAX_ATTEMPTS=1, dummy credentials, X-Ray tracing off (not in Lambda); database host 127.0.0.1:9`,
    emptyNode: { rssMiB: stats(toMiB(empty.rss)), heapUsedMiB: stats(toMiB(empty.heapUsed)) },
    functions: measured.map(({ b, zipped, onDisk, samples: { runs, sourceMapsImportMs } }) => ({
      function: b.handler,
      zippedBytes: zipped,
      onDiskBytes: onDisk,
      importMs: stats(runs.map((r) => r.importMs)),
      importMsWithSourceMaps: stats(sourceMapsImportMs),
      initRssMiB: stats(toMiB(runs.map((r) => r.rss))),
      initRssOverEmptyNodeMiB: round(median(toMiB(runs.map((r) => r.rss))) - median(toMiB(empty.rss))),
      initHeapUsedMiB: stats(toMiB(runs.map((r) => r.heapUsed))),
      firstInvokeMs: stats(runs.map((r) => r.invokeMs)),
      peakRssMiB: stats(toMiB(runs.map((r) => r.peakRss))),
      firstInvokeOutcome: outcomes(runs),
      event: invocationOf(b.handler).event,
      dominantPackages: dominantPackages(b.metafile),
    })),
  };
}

async function main(): Promise<void> {
  const out = mkdtempSync(join(tmpdir(), 'pgops-cold-start-'));
  const scratch = join(out, 'scratch');
  mkdirSync(scratch);
  try {
    const empty = emptyNode(scratch);
    const measured: Measured[] = [];
    for (const handler of HANDLERS) {
      const b = await bundleHandler(handler, out);
      measured.push({ b, zipped: zippedBytes(b.dir), onDisk: bytesOnDisk(b.dir), samples: sampleHandler(b, scratch) });
    }
    const notes = measured.map(({ b }) => `${b.handler}: ${dominantPackages(b.metafile).map((p) => `${p.name} ${(p.bytes / 1024).toFixed(0)} KiB`).join(', ')}`);
    process.stdout.write(`${table(measured, empty)}\n\nDominant packages (minified bytes in the bundle):\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
    process.stdout.write(`\n(The first invoke fails fast on purpose: every AWS call goes to ${CLOSED_ENDPOINT}, closed, with one attempt, so it times the SDK clients' creation and one refused request plus the failure path (alert attempt, logs), not a real job. X-Ray tracing is off here (not in Lambda); the stack turns it on by default. backup ships in the container image; it is bundled here with the same settings for comparison. Sizes: the bundle and its map, zipped with \`zip\`'s default deflate; the stack's assets also carry migrations/ and pgops-config.json.)\n`);
    writeFileSync(RESULTS_FILE, `${JSON.stringify(resultsJson(measured, empty), null, 2)}\n`);
    process.stdout.write(`\nWritten: ${RESULTS_FILE}\n`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

if (process.argv[1] && /cold-start(\.ts)?$/.test(process.argv[1])) await main();
