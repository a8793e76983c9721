// npm run bench:cold-start: each Lambda handler bundled exactly as the stack bundles it
// (lib/bundling.ts), zipped as Lambda receives it, then imported in a fresh `node` process N
// times: the module-load share of a cold start (not the runtime's own init, nor the first call).
// Prints a markdown table (handler, zipped size, import ms: median and spread) and the packages
// that dominate each bundle (from esbuild's metafile).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { BUNDLE, esbuildOptions } from '../lib/bundling.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.PGOPS_BENCH_RUNS ?? 7);
const HANDLERS = ['migrate', 'health-check', 'cleanup', 'notify-slack', 'backup'];

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

/** Milliseconds to import `file` in a fresh node process. */
function importMs(file: string, nodeArgs: string[]): number {
  const script = `const t0 = performance.now(); await import(${JSON.stringify(pathToFileURL(file).href)}); process.stdout.write(String(performance.now() - t0));`;
  const r = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  if (r.status !== 0) throw new Error(`import of ${file} failed: ${r.stderr}`);
  return Number(r.stdout);
}

/** RUNS samples of each variant, interleaved so that a busy neighbour weighs on both alike. */
function importTimes(file: string): { plain: number[]; sourceMaps: number[] } {
  const plain: number[] = [];
  const sourceMaps: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    plain.push(importMs(file, []));
    sourceMaps.push(importMs(file, ['--enable-source-maps']));
  }
  return { plain, sourceMaps };
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

async function main(): Promise<void> {
  const out = mkdtempSync(join(tmpdir(), 'pgops-cold-start-'));
  try {
    const rows: string[] = [
      `| handler | zipped MB | on disk MB | import ms, median (min–max, N=${RUNS}) | with --enable-source-maps |`,
      '|---|---|---|---|---|',
    ];
    const notes: string[] = [];
    for (const handler of HANDLERS) {
      const b = await bundleHandler(handler, out);
      const { plain, sourceMaps: mapped } = importTimes(b.file);
      rows.push(`| ${handler} | ${mb(zippedBytes(b.dir))} | ${mb(bytesOnDisk(b.dir))} | ${median(plain).toFixed(0)} (${spread(plain)}) | ${median(mapped).toFixed(0)} (${spread(mapped)}) |`);
      notes.push(`${handler}: ${dominantPackages(b.metafile).map((p) => `${p.name} ${(p.bytes / 1024).toFixed(0)} KiB`).join(', ')}`);
    }
    process.stdout.write(`${rows.join('\n')}\n\nDominant packages (minified bytes in the bundle):\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
    process.stdout.write(`\n(backup ships in the container image; it is bundled here with the same settings for comparison. Sizes: the bundle and its map, zipped with \`zip\`'s default deflate; the stack's assets also carry migrations/ and pgops-config.json.)\n`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

if (process.argv[1] && /cold-start(\.ts)?$/.test(process.argv[1])) await main();
