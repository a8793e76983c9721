// `wal push` segments per second as archive_command runs it: the server's archiver starts one
// shell per segment running the bundled CLI (as the container ships it), one segment at a time.
// Real 16 MiB segments from a real cluster (random-looking row data, so gzip has real work), file
// storage. Run alone: `npx tsx bench/wal-push.ts` (PGOPS_BENCH_WAL_SEGMENTS, default 24); or call
// `benchWalPush()` from bench/run.ts. The ratio is against the raw archive_command
// `gzip -1 < %p > <archive>/%f.gz` over the same segments (no checksum, no verification, no S3).
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { startEmbeddedPostgres } from '../bin/demo/embedded-postgres.ts';
import { bundleCliFlags } from '../lib/bundling.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);

export interface WalPushBench {
  segments: number;
  /** The raw archive_command over the same segments: `gzip -1 < %p > <archive>/%f.gz`. */
  rawSeconds: number;
  rawSegmentsPerSecond: number;
  /** pgops seconds over raw seconds. */
  ratio: number;
  segmentBytes: number;
  seconds: number;
  segmentsPerSecond: number;
  mibPerSecond: number;
  /** Stored (gzipped) bytes over original bytes. */
  compressionRatio: number;
}

/** bin/pgops.ts bundled with the container's flags. */
function bundleCli(dir: string): string {
  const esbuild = join(ROOT, 'node_modules', '.bin', 'esbuild');
  const r = spawnSync(esbuild, ['pgops=bin/pgops.ts', ...bundleCliFlags(), '--out-extension:.js=.mjs', `--outdir=${dir}`, '--log-level=warning'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bundling the CLI failed: ${r.stderr}`);
  return join(dir, 'pgops.mjs');
}

/** Write `count` segments' worth of WAL and switch after each; copy the finished segment files out. */
async function makeSegments(count: number, outDir: string): Promise<{ files: string[]; segmentBytes: number }> {
  const cluster = await startEmbeddedPostgres({ settings: { max_wal_size: '4GB', checkpoint_timeout: '1h' } });
  const client = new pg.Client({ connectionString: cluster.url() });
  await client.connect();
  try {
    const segmentBytes = Number((await client.query<{ s: string }>(`SELECT setting AS s FROM pg_settings WHERE name = 'wal_segment_size'`)).rows[0]!.s);
    await client.query('CREATE TABLE rows (id bigserial, a text, b text, c uuid)');
    const files: string[] = [];
    while (files.length < count) {
      const before = (await client.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f')).rows[0]!.f;
      // About one segment of rows: hex text (gzip halves it) and uuids (barely compressible).
      await client.query(`INSERT INTO rows (a, b, c) SELECT md5(random()::text), md5(random()::text), gen_random_uuid() FROM generate_series(1, 100000)`);
      const after = (await client.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f')).rows[0]!.f;
      await client.query('SELECT pg_switch_wal()');
      for (const name of [before, after].filter((f, i, all) => all.indexOf(f) === i)) {
        if (files.length >= count) break;
        copyFileSync(join(cluster.dataDir, 'pg_wal', name), join(outDir, name));
        files.push(join(outDir, name));
      }
    }
    return { files, segmentBytes };
  } finally {
    await client.end();
    await cluster.stop();
  }
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Push each segment the way the archiver does (`sh -c`, one at a time) and time the lot. */
export async function benchWalPush(options: { segments?: number } = {}): Promise<WalPushBench> {
  const work = mkdtempSync(join(tmpdir(), 'pgops-bench-wal-'));
  try {
    chmodSync(work, 0o755);
    const cli = bundleCli(join(work, 'cli'));
    const segDir = join(work, 'segments');
    const store = join(work, 'store');
    mkdirSync(segDir);
    mkdirSync(store);
    const { files, segmentBytes } = await makeSegments(options.segments ?? 24, segDir);
    const env = `PGOPS_STORAGE=${shellQuote(pathToFileURL(store).href)} PGOPS_DATABASE_ID=bench`;
    const started = performance.now();
    for (const file of files) await run('/bin/sh', ['-c', `${env} ${shellQuote(process.execPath)} ${shellQuote(cli)} --quiet wal push ${shellQuote(file)}`]);
    const seconds = (performance.now() - started) / 1000;
    // The raw side, after ours (the segments are as warm in the page cache for both).
    const rawStore = join(work, 'raw');
    mkdirSync(rawStore);
    const rawStarted = performance.now();
    for (const file of files) await run('/bin/sh', ['-c', `gzip -1 < ${shellQuote(file)} > ${shellQuote(join(rawStore, `${basename(file)}.gz`))}`]);
    const rawSeconds = (performance.now() - rawStarted) / 1000;
    const du = spawnSync('du', ['-sb', join(store, 'bench', 'wal')], { encoding: 'utf8' });
    const stored = Number(du.stdout.split('\t')[0] ?? 0);
    return {
      segments: files.length, segmentBytes, seconds: Math.round(seconds * 100) / 100,
      rawSeconds: Math.round(rawSeconds * 100) / 100,
      rawSegmentsPerSecond: Math.round((files.length / rawSeconds) * 100) / 100,
      ratio: Math.round((seconds / rawSeconds) * 100) / 100,
      segmentsPerSecond: Math.round((files.length / seconds) * 100) / 100,
      mibPerSecond: Math.round(((files.length * segmentBytes) / (1 << 20) / seconds) * 10) / 10,
      compressionRatio: Math.round((stored / (files.length * segmentBytes)) * 1000) / 1000,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const result = await benchWalPush({ segments: Number(process.env.PGOPS_BENCH_WAL_SEGMENTS ?? 24) });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
