// Bench: `pgops basebackup` to file storage against the raw tools doing the least the same job
// needs, `pg_basebackup -Ft -D - -X none | gzip -1 > /dev/null`, on one archiving cluster, rounds
// interleaved (the order alternates), medians and their ratio. pgops runs as the container runs it:
// the bundled CLI (test/helpers/archiving.ts bundles bin/pgops.ts with the container's flags), and
// the cluster archives its WAL through that CLI's `wal push`, so both sides wait for the archive the
// same way at the end of a `-X none` backup. Run alone: npx tsx bench/basebackup.ts
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../bin/demo/embedded-postgres.ts';
import { COMPRESSION_LEVEL } from '../functions/core/physical/compression.ts';
import { archivingConf, bundledCli, sharedStorageDir } from '../test/helpers/archiving.ts';

export interface BaseBackupBenchOptions {
  /** An archiving cluster (archive_command = the bundled CLI's wal push into `storageDir` under `databaseId`). */
  pg: EmbeddedPostgres;
  storageDir: string;
  databaseId: string;
  rounds?: number;
  log?: (message: string) => void;
}

export interface BaseBackupBenchResult {
  rounds: number;
  gzipLevel: number;
  rawMs: number[];
  pgopsMs: number[];
  rawMedianMs: number;
  pgopsMedianMs: number;
  /** pgops median / raw median. */
  ratio: number;
  /** The stored (compressed) size and the tar size of the last pgops base backup. */
  storedBytes: number;
  tarBytes: number;
  clusterBytes: number;
}

interface Run { ms: number; stdout: string }

function timed(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code === 0) resolve({ ms, stdout });
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

function pgEnvOf(pg: EmbeddedPostgres): NodeJS.ProcessEnv {
  return { ...process.env, PGPASSWORD: pg.password, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: pg.user };
}

/** The interleaved rounds; each pgops base backup is removed after it is measured (disk). */
export async function benchBaseBackup(o: BaseBackupBenchOptions): Promise<BaseBackupBenchResult> {
  const rounds = o.rounds ?? 5;
  const level = COMPRESSION_LEVEL.gzip!;
  const raw = () => timed('bash', ['-o', 'pipefail', '-c', `"$0" -Ft -D - -X none --checkpoint=fast --no-password | gzip -${level} > /dev/null`, join(o.pg.binDir, 'pg_basebackup')], pgEnvOf(o.pg));
  const cliEnv = { ...process.env, DATABASE_URL: o.pg.url('postgres'), PGOPS_STORAGE: pathToFileURL(o.storageDir).href, PGOPS_DATABASE_ID: o.databaseId, PGOPS_LOG_LEVEL: 'warn' };
  const cli = bundledCli();
  let last: { bytes: number; tarBytes: number } = { bytes: 0, tarBytes: 0 };
  const ours = async (): Promise<Run> => {
    const run = await timed(process.execPath, [cli, 'basebackup', '--json', '--compression', 'gzip'], cliEnv);
    const m = JSON.parse(run.stdout) as { id: string; bytes: number; tarBytes: number };
    last = m;
    rmSync(join(o.storageDir, o.databaseId, 'physical', m.id), { recursive: true, force: true });
    return run;
  };
  o.log?.('warm-up: one of each');
  await raw();
  await ours();
  const rawMs: number[] = [];
  const pgopsMs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // ABBA: neither side always runs first (a checkpoint or a cache left by the other).
    const order = i % 2 === 0 ? [raw, ours] : [ours, raw];
    for (const side of order) {
      const { ms } = await side();
      (side === raw ? rawMs : pgopsMs).push(ms);
    }
    o.log?.(`round ${i + 1}/${rounds}: raw ${(rawMs.at(-1)! / 1000).toFixed(2)} s, pgops ${(pgopsMs.at(-1)! / 1000).toFixed(2)} s`);
  }
  const clusterBytes = await clusterSize(o.pg);
  const rawMedianMs = median(rawMs);
  const pgopsMedianMs = median(pgopsMs);
  return { rounds, gzipLevel: level, rawMs, pgopsMs, rawMedianMs, pgopsMedianMs, ratio: pgopsMedianMs / rawMedianMs, storedBytes: last.bytes, tarBytes: last.tarBytes, clusterBytes };
}

async function psql(pg: EmbeddedPostgres, db: string, sql: string): Promise<string> {
  return (await timed(pg.bin('psql'), ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', sql], pgEnvOf(pg))).stdout.trim();
}

async function clusterSize(pg: EmbeddedPostgres): Promise<number> {
  return Number(await psql(pg, 'postgres', 'SELECT sum(pg_database_size(oid)) FROM pg_database'));
}

/** pgbench scale `scale` plus `randomMiB` of random bytea (pgbench data alone compresses far too well). */
export async function loadBenchData(pg: EmbeddedPostgres, scale: number, randomMiB: number): Promise<void> {
  await psql(pg, 'postgres', 'CREATE DATABASE bench');
  await timed(pg.bin('pgbench'), ['-i', '-q', '-s', String(scale), 'bench'], pgEnvOf(pg));
  await psql(pg, 'bench', `CREATE EXTENSION IF NOT EXISTS pgcrypto; CREATE TABLE random_blobs AS SELECT g AS id, gen_random_bytes(1024) AS payload FROM generate_series(1, ${randomMiB * 1024}) g`);
  await psql(pg, 'bench', 'VACUUM ANALYZE');
  await psql(pg, 'postgres', 'CHECKPOINT');
}

const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(0);

export function baseBackupTable(r: BaseBackupBenchResult): string {
  return [
    `Cluster ${mib(r.clusterBytes)} MiB; tar ${mib(r.tarBytes)} MiB, stored ${mib(r.storedBytes)} MiB (gzip -${r.gzipLevel}); ${r.rounds} interleaved rounds, medians.`,
    '',
    '| operation | raw tool | raw (s) | pgops (s) | ratio | target |',
    '|---|---|---:|---:|---:|---:|',
    `| base backup to file storage | pg_basebackup -Ft -D - -X none \\| gzip -${r.gzipLevel} > /dev/null | ${(r.rawMedianMs / 1000).toFixed(2)} | ${(r.pgopsMedianMs / 1000).toFixed(2)} | ${r.ratio.toFixed(2)}x | <= 1.15x |`,
  ].join('\n');
}

async function main(): Promise<void> {
  const log = (m: string) => process.stderr.write(`bench basebackup: ${m}\n`);
  const storageDir = sharedStorageDir('pgops-bench-bb-');
  const pg = await startEmbeddedPostgres({ conf: archivingConf(storageDir, 'bench'), settings: { max_wal_size: '4GB', checkpoint_timeout: '30min' } });
  try {
    const scale = Number(process.env.PGOPS_BENCH_BB_SCALE ?? 20);
    const randomMiB = Number(process.env.PGOPS_BENCH_BB_RANDOM_MB ?? 150);
    log(`pgbench -i -s ${scale} + ${randomMiB} MiB random bytea`);
    await loadBenchData(pg, scale, randomMiB);
    const result = await benchBaseBackup({ pg, storageDir, databaseId: 'bench', rounds: Number(process.env.PGOPS_BENCH_BB_ROUNDS ?? 5), log });
    process.stdout.write(`${baseBackupTable(result)}\n\n${JSON.stringify(result)}\n`);
  } finally {
    await pg.stop();
  }
}

if (process.argv[1] !== undefined && /bench\/basebackup\.ts$/.test(process.argv[1])) await main();
