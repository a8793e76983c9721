// Bench, logical part: pgops backup and restore against the raw PostgreSQL tools at the same pg_dump
// compression, each row interleaved with its own baseline for N rounds (medians, the spread of the
// per-round ratios), with the node process's own CPU and peak RSS (measure.ts's preload), the tree's
// CPU, and the CPU of s3rver (a separate process on the same cores, a cost real S3 does not put on
// this machine). Then pg_dump's compression levels (time and bytes), with zstd and lz4 as pipe
// proxies where this pg_dump has neither.
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../bin/demo/embedded-postgres.ts';
import { freshDistEntry } from '../bin/server-cli.ts';
import { cpuSeconds, interleave, measure, median, medianOf, spread, type Measured } from './measure.ts';

export interface LogicalSettings {
  rounds: number;
  /** The target database size (informational: scale and randomMiB make it). */
  sizeGb: number;
  scale: number;
  randomMiB: number;
  /** pgops' --compression and the raw pg_dump's --compress (gzip:N or none on pg_dump 15). */
  compression: string;
  rowCounts: string;
  /** PGOPS_BENCH_COMPRESSION_ROWS=0 skips the compression levels (e.g. a 3 GB run for memory only). */
  compressionRows: boolean;
  /** The S3 rows over TLS, as AWS S3 is reached (PGOPS_BENCH_S3_TLS=0: plain HTTP). */
  s3Tls: boolean;
}

/** From PGOPS_BENCH_*: 1.5 GB (pgbench scale 70 + 400 MiB random bytea) by default, scaled by PGOPS_BENCH_SIZE_GB. */
export function logicalSettings(env: NodeJS.ProcessEnv): LogicalSettings {
  const sizeGb = Number(env.PGOPS_BENCH_SIZE_GB ?? 1.5);
  return {
    rounds: Number(env.PGOPS_BENCH_ROUNDS ?? 3),
    sizeGb,
    scale: Number(env.PGOPS_BENCH_SCALE ?? Math.round((70 * sizeGb) / 1.5)),
    randomMiB: Number(env.PGOPS_BENCH_RANDOM_MB ?? Math.round((400 * sizeGb) / 1.5)),
    compression: env.PGOPS_BENCH_COMPRESSION ?? 'gzip:1',
    rowCounts: env.PGOPS_BENCH_ROW_COUNTS ?? 'exact',
    compressionRows: env.PGOPS_BENCH_COMPRESSION_ROWS !== '0',
    s3Tls: env.PGOPS_BENCH_S3_TLS !== '0',
  };
}

/** One run of one side. */
export interface Sample {
  ms: number;
  /** Peak RSS of the largest process of the tree: the raw tool's own on the raw side. */
  treeMaxRssKb?: number;
  treeCpuMs?: number;
  /** pgops side: the node process alone. */
  nodeMaxRssKb?: number;
  nodeCpuMs?: number;
  s3rverCpuMs?: number;
  /** Bytes written (compression rows, pgops backups). */
  bytes?: number;
}

export interface Row {
  id: string;
  operation: string;
  raw: string;
  pgops?: string;
  rawSamples: Sample[];
  pgopsSamples: Sample[];
}

export interface LogicalResult {
  settings: LogicalSettings;
  postgresVersion: string;
  cores: number;
  databaseBytes: number;
  /** The last pgops backup to file storage at `settings.compression`. */
  dumpBytes?: number;
  /** Which of pgops' backup flags this build has (older ones fall back to its defaults). */
  flags: { compression: boolean; rowCounts: boolean };
  /** Whether the S3 rows ran over TLS (a self-signed certificate; plain HTTP when openssl is missing). */
  s3Tls: boolean;
  rows: Row[];
  compressionRows: Row[];
}

interface S3rver { endpoint: string; pid?: number; stop: () => void }

interface Ctx {
  s: LogicalSettings;
  pg: EmbeddedPostgres;
  work: string;
  cli: string[];
  pgEnv: NodeJS.ProcessEnv;
  fileEnv: NodeJS.ProcessEnv;
  s3Env: NodeJS.ProcessEnv;
  s3: S3rver;
  /** bench/s3-sink.ts: the S3 protocol with every body discarded. */
  sinkEnv: NodeJS.ProcessEnv;
  sink: S3rver;
  flags: LogicalResult['flags'];
  probe: string;
  log: (m: string) => void;
}

export async function benchLogical(root: string, s: LogicalSettings, log: (m: string) => void): Promise<LogicalResult> {
  const work = mkdtempSync(join(tmpdir(), 'pgops-bench-'));
  log(`starting PostgreSQL (work dir ${work})`);
  const pg = await startEmbeddedPostgres({ settings: { shared_buffers: '512MB', max_wal_size: '8GB', checkpoint_timeout: '30min', maintenance_work_mem: '512MB', max_connections: 40 } });
  let s3: S3rver | undefined;
  let sink: S3rver | undefined;
  try {
    const pgEnv = { ...process.env, PGPASSWORD: pg.password, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: pg.user };
    const databaseBytes = await loadData(pg, pgEnv, s, log);
    const tls = s.s3Tls ? selfSignedCertificate(work, log) : undefined;
    s3 = await startS3rver(root, join(work, 's3'), tls);
    sink = await startSink(root, tls);
    const fileEnv = { ...process.env, DATABASE_URL: pg.url('bench'), PGOPS_LOG_LEVEL: 'warn', NODE_OPTIONS: '--openssl-legacy-provider' };
    const s3Env = { ...fileEnv, PGOPS_S3_ENDPOINT: s3.endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1', ...(tls ? { NODE_EXTRA_CA_CERTS: tls.cert } : {}) };
    const sinkEnv = { ...s3Env, PGOPS_S3_ENDPOINT: sink.endpoint };
    const cli = [join(root, 'bin', 'pgops.js')];
    warnIfStale(root, log);
    const ctx: Ctx = { s, pg, work, cli, pgEnv, fileEnv, s3Env, s3, sinkEnv, sink, flags: backupFlags(cli), probe: join(work, 'probe.json'), log };
    checkCompression(ctx);
    // Warm the cache once so the first measured run is not penalised.
    await rawDump(ctx, pgDumpCompress(s.compression));
    const { rows, dumpBytes } = await backupAndRestoreRows(ctx);
    const compressionRows = s.compressionRows ? await compressionLevelRows(ctx) : [];
    const postgresVersion = await psql(pg, 'postgres', 'SHOW server_version');
    return { settings: s, postgresVersion, cores: availableParallelism(), databaseBytes, dumpBytes, flags: ctx.flags, s3Tls: tls !== undefined, rows, compressionRows };
  } finally {
    s3?.stop();
    sink?.stop();
    await pg.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

interface Tls { key: string; cert: string }

/**
 * A throwaway key and self-signed certificate for 127.0.0.1 (files in `work`), so the S3 rows pay
 * what reaching AWS S3 costs (TLS, and no SigV4 hash of the payload: s3.ts); none without openssl.
 */
function selfSignedCertificate(work: string, log: (m: string) => void): Tls | undefined {
  const tls = { key: join(work, 'tls-key.pem'), cert: join(work, 'tls-cert.pem') };
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', tls.key, '-out', tls.cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  if (made.status === 0) return tls;
  log(`WARNING: no TLS certificate (openssl: ${made.error?.message ?? made.stderr.trim()}): the S3 rows run over plain HTTP, with the payload hashed for SigV4`);
  return undefined;
}

async function startS3rver(root: string, dir: string, tls?: Tls): Promise<S3rver> {
  // A separate process, so its CPU does not count against the pgops process being measured.
  const tlsOptions = tls ? `key: readFileSync(${JSON.stringify(tls.key)}), cert: readFileSync(${JSON.stringify(tls.cert)}), ` : '';
  const script = `import S3rver from 's3rver'; import { readFileSync } from 'node:fs';
const s = new S3rver({ ${tlsOptions}address: '127.0.0.1', port: 0, silent: true, directory: ${JSON.stringify(dir)}, configureBuckets: [{ name: 'bench', configs: [] }] });
const a = await s.run(); console.log(a.port);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  return listening(child, 's3rver', tls);
}

async function startSink(root: string, tls?: Tls): Promise<S3rver> {
  const env = { ...process.env, ...(tls ? { PGOPS_BENCH_SINK_KEY: tls.key, PGOPS_BENCH_SINK_CERT: tls.cert } : {}) };
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bench', 's3-sink.ts')], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
  return listening(child, 'the S3 sink', tls);
}

/** A server process once it has printed its port: its endpoint (https with `tls`), pid and stop. */
async function listening(child: ChildProcessByStdio<null, Readable, null>, what: string, tls?: Tls): Promise<S3rver> {
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (c) => reject(new Error(`${what} exited ${c}`)));
  });
  return { endpoint: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, pid: child.pid, stop: () => child.kill() };
}

async function loadData(pg: EmbeddedPostgres, pgEnv: NodeJS.ProcessEnv, s: LogicalSettings, log: (m: string) => void): Promise<number> {
  await psql(pg, 'postgres', 'CREATE DATABASE bench');
  log(`pgbench -i -s ${s.scale} (about ${(s.scale * 15).toFixed(0)} MB)`);
  await measure(pg.bin('pgbench'), ['-i', '-q', '-s', String(s.scale), 'bench'], { env: pgEnv });
  log(`adding ${s.randomMiB} MiB of random bytea`);
  await psql(pg, 'bench', `CREATE EXTENSION IF NOT EXISTS pgcrypto; CREATE TABLE random_blobs AS SELECT g AS id, gen_random_bytes(1024) AS payload FROM generate_series(1, ${s.randomMiB * 1024}) g; ALTER TABLE random_blobs ADD PRIMARY KEY (id);`);
  await psql(pg, 'bench', 'VACUUM ANALYZE');
  await psql(pg, 'postgres', 'CHECKPOINT');
  const bytes = Number(await psql(pg, 'bench', 'SELECT pg_database_size(current_database())'));
  log(`database size ${mib(bytes)} MiB`);
  return bytes;
}

/** The backup rows (file, S3, and row-count estimates when pgops has them), then the restore rows from the last backups. */
async function backupAndRestoreRows(ctx: Ctx): Promise<{ rows: Row[]; dumpBytes?: number }> {
  const rawCmd = `pg_dump -Fc ${pgDumpCompress(ctx.s.compression)} > /dev/null`;
  const fileBackup = await backupRow(ctx, { id: 'backup-file', operation: 'backup to file storage', storage: 'file', raw: rawCmd });
  const s3Backup = await backupRow(ctx, { id: 'backup-s3', operation: 'backup to S3 (s3rver)', storage: 's3', raw: rawCmd });
  const sinkBackup = await backupRow(ctx, { id: 'backup-s3-sink', operation: 'backup over the S3 protocol, bodies discarded (bench/s3-sink.ts)', storage: 'sink', raw: rawCmd });
  const rows = [fileBackup.row, s3Backup.row, sinkBackup.row];
  if (ctx.flags.rowCounts && ctx.s.rowCounts !== 'estimate') {
    const estimate = await backupRow(ctx, { id: 'backup-file-estimate', operation: 'backup to file storage, --row-counts estimate', storage: 'file', raw: rawCmd, rowCounts: 'estimate' });
    rows.push(estimate.row);
    rmSync(estimate.last.storeDir, { recursive: true, force: true });
  }
  // The same work done by the raw tools (pgops' rows above compare with pg_dump alone): what is
  // pgops' own overhead, and what the work itself costs on this machine.
  const dumpCmd = `pg_dump -Fc ${pgDumpCompress(ctx.s.compression)}`;
  const floorFile = join(ctx.work, 'floor.dump');
  const floorFileRow = await backupRow(ctx, {
    id: 'backup-file-floor', operation: 'backup to file storage, --row-counts estimate, against the raw tools doing the same work', storage: 'file', rowCounts: 'estimate',
    raw: `${dumpCmd} | tee <file> | sha256sum; sync <file>`, rawRun: () => rawPipeline(ctx, `| tee ${floorFile} | sha256sum > /dev/null && sync ${floorFile}`, floorFile),
  });
  rows.push(floorFileRow.row);
  rmSync(floorFileRow.last.storeDir, { recursive: true, force: true });
  const floorSinkRow = await backupRow(ctx, {
    id: 'backup-s3-sink-floor', operation: 'backup over the S3 protocol, bodies discarded, --row-counts estimate, against pg_dump hashed by sha256sum', storage: 'sink', rowCounts: 'estimate',
    raw: `${dumpCmd} | sha256sum`, rawRun: () => rawPipeline(ctx, '| sha256sum > /dev/null'),
  });
  rows.push(floorSinkRow.row);
  const localDump = join(fileBackup.last.storeDir, fileBackup.last.key);
  if (!existsSync(localDump)) throw new Error(`the file backup's dump is not at ${localDump}`);
  rows.push(await restoreRow(ctx, { id: 'restore-file', operation: 'restore from file storage', storage: 'file', storeUrl: fileBackup.last.url, localDump }));
  rows.push(await restoreRow(ctx, { id: 'restore-s3', operation: 'restore from S3 (s3rver)', storage: 's3', storeUrl: s3Backup.last.url, localDump }));
  return { rows, dumpBytes: fileBackup.row.pgopsSamples.at(-1)?.bytes };
}

interface StoredBackup { url: string; storeDir: string; key: string }

interface BackupRowSpec {
  id: string;
  operation: string;
  storage: 'file' | 's3' | 'sink';
  /** The raw side as printed. */
  raw: string;
  /** The raw side; default pg_dump to /dev/null at the row's compression. */
  rawRun?: () => Promise<Sample>;
  rowCounts?: string;
  compression?: string;
}

/** A backup row; every round's backup goes under its own prefix, removed after the next round (only the last is kept, for the restores). */
async function backupRow(ctx: Ctx, r: BackupRowSpec): Promise<{ row: Row; last: StoredBackup }> {
  const compression = r.compression ?? ctx.s.compression;
  const stored: StoredBackup[] = [];
  ctx.log(`${r.operation}: ${ctx.s.rounds} rounds against ${r.raw}`);
  const out = await interleave(ctx.s.rounds, r.rawRun ?? (() => rawDump(ctx, pgDumpCompress(compression))), async (i) => {
    const at = storeFor(ctx, r.storage, `${r.id}-r${i}`);
    const sample = await pgopsBackup(ctx, r.storage, at, { rowCounts: r.rowCounts ?? ctx.s.rowCounts, compression });
    stored.push(at);
    if (stored.length > 1) rmSync(stored.at(-2)!.storeDir, { recursive: true, force: true });
    return sample;
  }, (i, a, b) => ctx.log(`  round ${i + 1}: raw ${secs(a.ms)} s, pgops ${secs(b.ms)} s`));
  const args = backupArgs(ctx, r.rowCounts ?? ctx.s.rowCounts, compression).join(' ');
  return { row: { id: r.id, operation: r.operation, raw: r.raw, pgops: `pgops backup ${args}`.trim(), rawSamples: out.raw, pgopsSamples: out.ours }, last: stored.at(-1)! };
}

function storeFor(ctx: Ctx, storage: 'file' | 's3' | 'sink', prefix: string): StoredBackup {
  // s3rver keeps each object as a file under <dir>/<bucket>/<key>: removing the prefix's directory removes the backup.
  if (storage === 'sink') return { url: `s3://bench/${prefix}`, storeDir: join(ctx.work, 'sink-nothing-stored'), key: '' };
  return storage === 'file'
    ? { url: `file://${join(ctx.work, 'store', prefix)}`, storeDir: join(ctx.work, 'store', prefix), key: '' }
    : { url: `s3://bench/${prefix}`, storeDir: join(ctx.work, 's3', 'bench', prefix), key: '' };
}

function backupArgs(ctx: Ctx, rowCounts: string, compression: string): string[] {
  return [...(ctx.flags.compression ? ['--compression', compression] : []), ...(ctx.flags.rowCounts ? ['--row-counts', rowCounts] : [])];
}

async function pgopsBackup(ctx: Ctx, storage: 'file' | 's3' | 'sink', at: StoredBackup, o: { rowCounts: string; compression: string }): Promise<Sample> {
  const env = storage === 's3' ? ctx.s3Env : storage === 'sink' ? ctx.sinkEnv : ctx.fileEnv;
  const m = await withS3rverCpu(ctx, storage, () => measure(process.execPath, [...ctx.cli, 'backup', '--json', '--storage', at.url, ...backupArgs(ctx, o.rowCounts, o.compression)], { env, probe: ctx.probe }));
  const manifest = JSON.parse(m.result.stdout) as { bytes: number; key: string };
  at.key = manifest.key;
  return { ...pgopsSample(m.result), s3rverCpuMs: m.s3rverCpuMs, bytes: manifest.bytes };
}

/** pg_dump piped into `consumer` (shell text) at the row's compression, timed as a whole; `remove` is deleted after. */
async function rawPipeline(ctx: Ctx, consumer: string, remove?: string): Promise<Sample> {
  const script = `set -o pipefail; ${ctx.pg.bin('pg_dump')} --format=custom --no-password ${pgDumpCompress(ctx.s.compression)} --dbname=bench ${consumer}`;
  const m = await measure('bash', ['-c', script], { env: ctx.pgEnv });
  if (remove) rmSync(remove, { force: true });
  return rawSample(m);
}

/** pg_dump as the raw side: custom format to /dev/null, the tool's own RSS and CPU. */
async function rawDump(ctx: Ctx, compress: string): Promise<Sample> {
  const m = await measure(ctx.pg.bin('pg_dump'), ['--format=custom', '--no-password', compress, '--dbname=bench'], { env: ctx.pgEnv, discardStdout: true });
  return rawSample(m);
}

/**
 * A restore row: both sides restore into a fresh database, dropped after the round. The raw side
 * runs pg_restore with the options pgops gives it (restore.ts runPgRestore, tools.ts
 * buildPgRestoreCommand) on the same dump, from local disk, after `createdb` (timed, as pgops'
 * --create is).
 */
async function restoreRow(ctx: Ctx, r: { id: string; operation: string; storage: 'file' | 's3'; storeUrl: string; localDump: string }): Promise<Row> {
  const rawArgs = (db: string) => ['--format=custom', `--dbname=${db}`, '--exit-on-error', '--no-password', '--single-transaction', r.localDump];
  ctx.log(`${r.operation}: ${ctx.s.rounds} rounds against pg_restore of a local file`);
  const out = await interleave(ctx.s.rounds, async (i) => {
    const db = `raw_${r.id.replace(/-/g, '_')}_${i}`;
    // Timed, as pgops' --create is: an operator restoring into a new database creates it first.
    const created = await measure(ctx.pg.bin('createdb'), ['--no-password', db], { env: ctx.pgEnv });
    const m = await measure(ctx.pg.bin('pg_restore'), rawArgs(db), { env: ctx.pgEnv });
    await psql(ctx.pg, 'postgres', `DROP DATABASE ${db} WITH (FORCE)`);
    const sample = rawSample(m);
    return { ...sample, ms: sample.ms + created.wallMs, ...(sample.treeCpuMs !== undefined && created.treeCpuMs !== undefined ? { treeCpuMs: sample.treeCpuMs + created.treeCpuMs } : {}) };
  }, async (i) => {
    const db = `pgops_${r.id.replace(/-/g, '_')}_${i}`;
    const env = r.storage === 's3' ? ctx.s3Env : ctx.fileEnv;
    const m = await withS3rverCpu(ctx, r.storage, () => measure(process.execPath, [...ctx.cli, 'restore', 'latest', '--json', '--storage', r.storeUrl, '--target-db', db, '--create'], { env, probe: ctx.probe }));
    await psql(ctx.pg, 'postgres', `DROP DATABASE ${db} WITH (FORCE)`);
    return { ...pgopsSample(m.result), s3rverCpuMs: m.s3rverCpuMs };
  }, (i, a, b) => ctx.log(`  round ${i + 1}: raw ${secs(a.ms)} s, pgops ${secs(b.ms)} s`));
  const raw = `createdb <fresh db> && pg_restore ${rawArgs('<fresh db>').slice(0, -1).join(' ')} <local file>`;
  return { id: r.id, operation: r.operation, raw, pgops: 'pgops restore latest --target-db <fresh db> --create', rawSamples: out.raw, pgopsSamples: out.ours };
}

/** s3rver's CPU during `run` (S3 rows only). */
async function withS3rverCpu(ctx: Ctx, storage: 'file' | 's3' | 'sink', run: () => Promise<Measured>): Promise<{ result: Measured; s3rverCpuMs?: number }> {
  const server = storage === 's3' ? ctx.s3 : storage === 'sink' ? ctx.sink : undefined;
  const before = server ? cpuSeconds(server.pid) : undefined;
  const result = await run();
  const after = server && before !== undefined ? cpuSeconds(server.pid) : undefined;
  return { result, s3rverCpuMs: before !== undefined && after !== undefined ? (after - before) * 1000 : undefined };
}

function rawSample(m: Measured): Sample {
  return { ms: m.wallMs, treeMaxRssKb: m.maxRssKb, treeCpuMs: m.treeCpuMs };
}

function pgopsSample(m: Measured): Sample {
  return { ms: m.wallMs, treeMaxRssKb: m.maxRssKb, treeCpuMs: m.treeCpuMs, nodeMaxRssKb: m.node?.maxRssKb, nodeCpuMs: m.node ? m.node.userMs + m.node.systemMs : undefined };
}

interface Variant { compression: string; raw: string; pgops: boolean; proxy?: boolean }

/**
 * pg_dump's levels on this data, time and bytes (through `wc -c`, the same pipe for every row); pgops
 * at the same level when it has --compression. pg_dump before 16 has no zstd or lz4: proxies pipe an
 * uncompressed dump through the command-line tools, single-threaded, at their default-ish levels.
 */
function compressionVariants(ctx: Ctx): Variant[] {
  const modern = pgDumpMajor(ctx) >= 16;
  const dump = (c: string) => `pg_dump -Fc ${pgDumpCompress(c)}`;
  // The main rows already time pgops at the bench's own level: here only the raw side of it.
  const variants: Variant[] = ['gzip:1', 'gzip:6', 'none'].map((c) => ({ compression: c, raw: dump(c), pgops: ctx.flags.compression && c !== ctx.s.compression }));
  if (modern) variants.push(...['zstd:3', 'lz4'].map((c) => ({ compression: c, raw: dump(c), pgops: ctx.flags.compression })));
  variants.push({ compression: 'zstd -3 (proxy)', raw: `${dump('none')} | zstd -3 -T1`, pgops: false, proxy: true });
  variants.push({ compression: 'lz4 -1 (proxy)', raw: `${dump('none')} | lz4 -1`, pgops: false, proxy: true });
  return variants;
}

async function compressionLevelRows(ctx: Ctx): Promise<Row[]> {
  const rows: Row[] = [];
  for (const v of compressionVariants(ctx)) {
    const raw = () => rawDumpBytes(ctx, v.raw);
    if (!v.pgops) {
      ctx.log(`compression ${v.compression}: ${ctx.s.rounds} rounds of ${v.raw} | wc -c`);
      const samples: Sample[] = [];
      for (let i = 0; i < ctx.s.rounds; i++) samples.push(await raw());
      rows.push({ id: `compression-${v.compression}`, operation: v.compression, raw: v.raw, rawSamples: samples, pgopsSamples: [] });
      continue;
    }
    const row = await backupRow(ctx, { id: `compression-${v.compression.replace(':', '-')}`, operation: v.compression, storage: 'file', raw: v.raw, rawRun: raw, compression: v.compression });
    rmSync(row.last.storeDir, { recursive: true, force: true });
    rows.push(row.row);
  }
  return rows;
}

async function rawDumpBytes(ctx: Ctx, pipeline: string): Promise<Sample> {
  const cmd = pipeline.replace(/^pg_dump/, '"$0"').replace(/-Fc/, '--format=custom --no-password --dbname=bench');
  const m = await measure('bash', ['-o', 'pipefail', '-c', `${cmd} | wc -c`, ctx.pg.bin('pg_dump')], { env: ctx.pgEnv });
  return { ...rawSample(m), bytes: Number(m.stdout.trim()) };
}

/** pg_dump's --compress for a compression setting (pg_dump 15 takes only a level). */
export function pgDumpCompress(compression: string): string {
  if (compression === 'none') return '--compress=0';
  const gzip = /^gzip(?::(\d))?$/.exec(compression);
  if (gzip) return `--compress=${gzip[1] ?? 6}`;
  return `--compress=${compression}`;
}

function pgDumpMajor(ctx: Ctx): number {
  const out = spawnSync(ctx.pg.bin('pg_dump'), ['--version'], { encoding: 'utf8' }).stdout;
  return Number(/\(PostgreSQL\)\s+(\d+)/.exec(out)?.[1] ?? 0);
}

/** Which of --compression and --row-counts `pgops backup` has (both are new): the bench passes only those. */
function backupFlags(cli: string[]): LogicalResult['flags'] {
  const help = spawnSync(process.execPath, [...cli, 'backup', '--help'], { encoding: 'utf8' }).stdout;
  return { compression: help.includes('--compression'), rowCounts: help.includes('--row-counts') };
}

function checkCompression(ctx: Ctx): void {
  if (!ctx.flags.compression && ctx.s.compression !== 'gzip:6') {
    throw new Error(`PGOPS_BENCH_COMPRESSION=${ctx.s.compression}, but this pgops backup has no --compression: it dumps at pg_dump's default (gzip:6) only`);
  }
}

/** bin/pgops.js runs dist/pgops.mjs only while it is newer than every source; otherwise TypeScript through tsx (slower to start). */
function warnIfStale(root: string, log: (m: string) => void): void {
  if (!freshDistEntry(root)) log('WARNING: dist/pgops.mjs is missing or older than the sources: pgops runs through tsx (npm run build first)');
}

async function psql(pg: EmbeddedPostgres, db: string, sql: string): Promise<string> {
  const env = { ...process.env, PGPASSWORD: pg.password };
  const m = await measure(pg.bin('psql'), ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', db, '-c', sql], { env });
  return m.stdout.trim();
}

/** A command in a table cell: its pipes escaped. */
const cell = (text: string): string => `\`${text.replace(/\|/g, '\\|')}\``;
const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(0);
const secs = (ms: number): string => (ms / 1000).toFixed(2);
const mb = (kb: number | undefined): string => (kb === undefined ? 'n/a' : (kb / 1024).toFixed(0));
const cpu = (ms: number | undefined): string => (ms === undefined ? 'n/a' : (ms / 1000).toFixed(1));
const ratiosOf = (r: Row): number[] => r.pgopsSamples.map((p, i) => p.ms / r.rawSamples[i]!.ms);
const maxOf = (xs: (number | undefined)[]): number | undefined => (xs.some((x) => x !== undefined) ? Math.max(...xs.filter((x): x is number => x !== undefined)) : undefined);

/** Medians and spreads of a row, as results.json keeps them beside the samples. */
export function summarizeRow(r: Row): Record<string, unknown> {
  const rawMedianMs = median(r.rawSamples.map((x) => x.ms));
  const pgopsMedianMs = r.pgopsSamples.length > 0 ? median(r.pgopsSamples.map((x) => x.ms)) : undefined;
  return {
    ...r,
    rawMedianMs,
    pgopsMedianMs,
    ratioOfMedians: pgopsMedianMs !== undefined ? pgopsMedianMs / rawMedianMs : undefined,
    roundRatios: ratiosOf(r),
    ratioSpread: r.pgopsSamples.length > 0 ? spread(ratiosOf(r)) : undefined,
    pgopsNodeMaxRssKb: maxOf(r.pgopsSamples.map((x) => x.nodeMaxRssKb)),
    pgopsNodeCpuMedianMs: medianOf(r.pgopsSamples.map((x) => x.nodeCpuMs)),
    s3rverCpuMedianMs: medianOf(r.pgopsSamples.map((x) => x.s3rverCpuMs)),
  };
}

export function logicalTable(res: LogicalResult): string {
  const s = res.settings;
  const flags = `${res.flags.compression ? '' : ' (pgops has no --compression yet: its pg_dump default)'}${res.flags.rowCounts ? `, row counts ${s.rowCounts}` : ''}`;
  return [
    `Database ${mib(res.databaseBytes)} MiB (pgbench scale ${s.scale} + ${s.randomMiB} MiB random bytea), dump ${res.dumpBytes !== undefined ? mib(res.dumpBytes) : 'n/a'} MiB at ${s.compression}${flags}; PostgreSQL ${res.postgresVersion}, ${res.cores} cores, ${s.rounds} interleaved rounds, medians; S3 rows over ${res.s3Tls === false ? 'plain HTTP' : 'TLS (self-signed), as AWS S3 is reached'}.`,
    '',
    '| operation | raw tool | raw (s) | pgops (s) | ratio of medians | per-round ratios | pgops node CPU (s) | pgops tree CPU (s) | raw tool CPU (s) | s3rver CPU (s) | node peak RSS (MB) | raw tool peak RSS (MB) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...res.rows.map(tableRow),
    '',
    'CPU: node = the pgops process alone (what a Lambda pays for); tree = node and the pg_dump/pg_restore it ran; s3rver = the local S3 server, a separate process on the same cores. Peak RSS: the maximum over the rounds; the raw tool\'s own (GNU time). Restores: both sides create the fresh database inside the timed part (createdb before pg_restore; pgops --create).',
    '',
    compressionTable(res),
  ].join('\n');
}

function tableRow(r: Row): string {
  const rawMs = median(r.rawSamples.map((x) => x.ms));
  const oursMs = median(r.pgopsSamples.map((x) => x.ms));
  const sp = spread(ratiosOf(r));
  const p = r.pgopsSamples;
  return `| ${r.operation} | ${cell(r.raw)} | ${secs(rawMs)} | ${secs(oursMs)} | ${(oursMs / rawMs).toFixed(2)}x | ${sp.min.toFixed(2)}–${sp.max.toFixed(2)}x | ${cpu(medianOf(p.map((x) => x.nodeCpuMs)))} | ${cpu(medianOf(p.map((x) => x.treeCpuMs)))} | ${cpu(medianOf(r.rawSamples.map((x) => x.treeCpuMs)))} | ${cpu(medianOf(p.map((x) => x.s3rverCpuMs)))} | ${mb(maxOf(p.map((x) => x.nodeMaxRssKb)))} | ${mb(maxOf(r.rawSamples.map((x) => x.treeMaxRssKb)))} |`;
}

function compressionTable(res: LogicalResult): string {
  const lines = res.compressionRows.map((r) => {
    const rawMs = median(r.rawSamples.map((x) => x.ms));
    const rawBytes = medianOf(r.rawSamples.map((x) => x.bytes));
    const ours = r.pgopsSamples.length > 0 ? median(r.pgopsSamples.map((x) => x.ms)) : undefined;
    const ourBytes = medianOf(r.pgopsSamples.map((x) => x.bytes));
    const sp = ours !== undefined ? spread(ratiosOf(r)) : undefined;
    return `| ${r.operation} | ${cell(r.raw)} | ${secs(rawMs)} | ${cpu(medianOf(r.rawSamples.map((x) => x.treeCpuMs)))} | ${rawBytes !== undefined ? mib(rawBytes) : 'n/a'} | ${ours !== undefined ? secs(ours) : '–'} | ${ourBytes !== undefined ? mib(ourBytes) : '–'} | ${ours !== undefined ? `${(ours / rawMs).toFixed(2)}x` : '–'} | ${sp ? `${sp.min.toFixed(2)}–${sp.max.toFixed(2)}x` : '–'} |`;
  });
  return [
    `Compression of the same database, ${res.settings.rounds} rounds each, medians; raw bytes through \`| wc -c\`; (proxy) rows: this pg_dump has no zstd/lz4, so an uncompressed dump is piped through the command-line tool.`,
    '',
    '| compression | raw command | raw (s) | raw CPU (s) | raw MiB | pgops to file (s) | pgops MiB | ratio of medians | per-round ratios |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ...lines,
  ].join('\n');
}
