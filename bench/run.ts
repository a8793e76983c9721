// npm run bench: pgops backup/restore against the raw PostgreSQL tools, in one run, on one
// generated database of at least 1 GB (pgbench scale 70 plus poorly compressible random bytes,
// because pgbench data alone compresses ~50:1 and would barely exercise the upload path).
// Then the physical side: base backup vs raw pg_basebackup | gzip, wal push as archive_command vs
// a raw gzip archive_command, and recovery of 1 GB of WAL through wal fetch vs a raw gunzip.
// Prints markdown tables and writes bench/results.json. Ratios, not absolute times, are the
// figures that matter: the same machine, server and data for both sides of each ratio.
// Then the migration linter on the example schema. PGOPS_BENCH_PARTS=logical, physical or lint (comma-separated) runs those parts.
import { spawn, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../bin/demo/embedded-postgres.ts';
import { archivingConf, sharedStorageDir } from '../test/helpers/archiving.ts';
import { baseBackupTable, benchBaseBackup, loadBenchData } from './basebackup.ts';
import { benchPitr, pitrTable } from './pitr.ts';
import { benchWalPush } from './wal-push.ts';
import { benchLint, lintTable } from './lint.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SCALE = Number(process.env.PGOPS_BENCH_SCALE ?? 70);
const RANDOM_MB = Number(process.env.PGOPS_BENCH_RANDOM_MB ?? 400);
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

interface Measured { wallMs: number; maxRssKb?: number; code: number; stderr: string; stdout: string }

async function readStdoutJson(m: Measured): Promise<string> {
  return m.stdout.trim() || '{}';
}

function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

/** Run a command; with /usr/bin/time -v when available, for the peak RSS of the process tree's leader. */
function measure(cmd: string, args: string[], options: SpawnOptions & { rss?: boolean; stdoutToNull?: boolean } = {}): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const useTime = options.rss && TIME;
    const argv = useTime ? ['-v', cmd, ...args] : args;
    const t0 = process.hrtime.bigint();
    const child = spawn(useTime ? TIME : cmd, argv, { ...options, stdio: ['ignore', options.stdoutToNull ? 'ignore' : 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      resolve({ wallMs, maxRssKb: rss ? Number(rss[1]) : undefined, code: code ?? 1, stderr, stdout });
    });
  });
}

async function must(p: Promise<Measured>, what: string): Promise<Measured> {
  const m = await p;
  if (m.code !== 0) throw new Error(`${what} failed (exit ${m.code}): ${m.stderr.slice(-2000)}`);
  return m;
}

async function psql(pg: EmbeddedPostgres, db: string, sql: string): Promise<string> {
  const r = await new Promise<{ code: number; out: string; err: string }>((resolve, reject) => {
    const child = spawn(pg.bin('psql'), ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', db, '-c', sql], {
      env: { ...process.env, PGPASSWORD: pg.password }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, out, err }));
  });
  if (r.code !== 0) throw new Error(`psql failed: ${r.err}`);
  return r.out.trim();
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number | undefined): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

async function startS3rver(dir: string): Promise<{ endpoint: string; pid?: number; stop: () => void }> {
  // A separate process, so its CPU does not count against the pgops process being measured.
  const script = `import S3rver from 's3rver';
const s = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: ${JSON.stringify(dir)}, configureBuckets: [{ name: 'bench', configs: [] }] });
const a = await s.run(); console.log(a.port);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (c) => reject(new Error(`s3rver exited ${c}`)));
  });
  return { endpoint: `http://127.0.0.1:${port}`, pid: child.pid, stop: () => child.kill() };
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);
const secs = (ms: number) => (ms / 1000).toFixed(1);

async function logical(): Promise<Record<string, unknown>> {
  const work = mkdtempSync(join(tmpdir(), 'pgops-bench-'));
  log(`starting PostgreSQL (work dir ${work})`);
  const pg = await startEmbeddedPostgres({ settings: { shared_buffers: '512MB', max_wal_size: '8GB', checkpoint_timeout: '30min', maintenance_work_mem: '512MB', max_connections: 40 } });
  let s3: { endpoint: string; pid?: number; stop: () => void } | undefined;
  try {
    await psql(pg, 'postgres', 'CREATE DATABASE bench');
    const pgEnv = { ...process.env, PGPASSWORD: pg.password, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: pg.user };
    log(`pgbench -i -s ${SCALE} (about ${(SCALE * 15).toFixed(0)} MB)`);
    await must(measure(pg.bin('pgbench'), ['-i', '-q', '-s', String(SCALE), 'bench'], { env: pgEnv }), 'pgbench -i');
    log(`adding ${RANDOM_MB} MB of random bytea`);
    await psql(pg, 'bench', `CREATE EXTENSION IF NOT EXISTS pgcrypto; CREATE TABLE random_blobs AS SELECT g AS id, gen_random_bytes(1024) AS payload FROM generate_series(1, ${RANDOM_MB * 1024}) g; ALTER TABLE random_blobs ADD PRIMARY KEY (id);`);
    await psql(pg, 'bench', 'VACUUM ANALYZE');
    const dbBytes = Number(await psql(pg, 'bench', 'SELECT pg_database_size(current_database())'));
    log(`database size ${mib(dbBytes)} MiB`);

    const url = pg.url('bench');
    const pgops = [join(ROOT, 'bin', 'pgops.js')];
    const fileStore = join(work, 'store');
    const s3Dir = join(work, 's3');
    s3 = await startS3rver(s3Dir);
    const cliEnv = { ...process.env, DATABASE_URL: url, PGOPS_LOG_LEVEL: 'warn', NODE_OPTIONS: '--openssl-legacy-provider' };
    const s3Env = { ...cliEnv, PGOPS_S3_ENDPOINT: s3.endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };

    // Warm the cache once so the first measured run is not penalised.
    await must(measure(pg.bin('pg_dump'), ['-Fc', '-d', 'bench'], { env: pgEnv, stdoutToNull: true }), 'warm-up pg_dump');

    log('raw: pg_dump -Fc > /dev/null');
    const rawDump = await must(measure(pg.bin('pg_dump'), ['-Fc', '-d', 'bench'], { env: pgEnv, stdoutToNull: true, rss: true }), 'pg_dump');
    log('pgops backup --storage file://');
    const fileBackup = await must(measure(process.execPath, [...pgops, 'backup', '--json', '--storage', `file://${fileStore}`], { env: cliEnv, rss: true }), 'pgops backup (file)');
    log('pgops backup --storage s3:// (s3rver)');
    // s3rver runs on the same two cores: its CPU is a cost real S3 does not put on this machine.
    const s3rverCpuBefore = cpuSeconds(s3.pid);
    const s3Backup = await must(measure(process.execPath, [...pgops, 'backup', '--json', '--storage', 's3://bench/pgops'], { env: s3Env, rss: true }), 'pgops backup (s3)');

    const s3rverCpu = s3rverCpuBefore !== undefined ? (cpuSeconds(s3.pid) ?? 0) - s3rverCpuBefore : undefined;
    log('raw: pg_restore from a local file');
    const dumpFile = join(work, 'bench.dump');
    await must(measure('sh', ['-c', `"${pg.bin('pg_dump')}" -Fc -d bench -f "${dumpFile}" --no-sync`], { env: pgEnv }), 'pg_dump to file');
    await psql(pg, 'postgres', 'CREATE DATABASE raw_restore');
    const rawRestore = await must(measure(pg.bin('pg_restore'), ['-d', 'raw_restore', '--exit-on-error', dumpFile], { env: pgEnv, rss: true }), 'pg_restore');
    log('pgops restore latest --create (from file storage)');
    const ourRestore = await must(measure(process.execPath, [...pgops, 'restore', 'latest', '--json', '--storage', `file://${fileStore}`, '--target-db', 'pgops_restore', '--create'], { env: cliEnv, rss: true }), 'pgops restore');

    const rows = [
      { op: 'backup to file storage', raw: 'pg_dump -Fc > /dev/null', rawMs: rawDump.wallMs, ourMs: fileBackup.wallMs, rssKb: fileBackup.maxRssKb, target: 1.15 },
      { op: 'backup to S3 (s3rver)', raw: 'pg_dump -Fc > /dev/null', rawMs: rawDump.wallMs, ourMs: s3Backup.wallMs, rssKb: s3Backup.maxRssKb, target: 1.15 },
      { op: 'restore from file storage', raw: 'pg_restore local file', rawMs: rawRestore.wallMs, ourMs: ourRestore.wallMs, rssKb: ourRestore.maxRssKb, target: 1.15 },
    ];
    const table = [
      `Database: ${mib(dbBytes)} MiB (pgbench scale ${SCALE} + ${RANDOM_MB} MiB random bytea), PostgreSQL 15, ${process.platform} ${process.arch}, 2 cores.`,
      '',
      '| operation | raw tool | raw (s) | pgops (s) | ratio | target | pgops peak RSS (MB) |',
      '|---|---|---:|---:|---:|---:|---:|',
      ...rows.map((r) => `| ${r.op} | ${r.raw} | ${secs(r.rawMs)} | ${secs(r.ourMs)} | ${(r.ourMs / r.rawMs).toFixed(2)}x | <= ${r.target}x | ${r.rssKb ? (r.rssKb / 1024).toFixed(0) : 'n/a'} |`),
      '',
      `s3rver (a separate process on the same 2 cores) used ${s3rverCpu?.toFixed(1) ?? 'n/a'} CPU-seconds during the S3 backup.`,
    ].join('\n');
    process.stdout.write(`${table}\n`);
    const results = {
      measuredAt: new Date().toISOString(),
      databaseBytes: dbBytes,
      scale: SCALE,
      randomMiB: RANDOM_MB,
      rawDumpMs: rawDump.wallMs,
      s3rverCpuSeconds: s3rverCpu,
      rows: rows.map((r) => ({ ...r, ratio: r.ourMs / r.rawMs, peakRssMB: r.rssKb ? r.rssKb / 1024 : null })),
      backupBytes: (JSON.parse(fileBackup.code === 0 ? await readStdoutJson(fileBackup) : '{}') as { bytes?: number }).bytes,
    };
    return results;
  } finally {
    s3?.stop();
    await pg.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

async function physical(): Promise<Record<string, unknown>> {
  const storageDir = sharedStorageDir('pgops-bench-bb-');
  const pg = await startEmbeddedPostgres({ conf: archivingConf(storageDir, 'bench'), settings: { max_wal_size: '4GB', checkpoint_timeout: '30min' } });
  let basebackup;
  try {
    const scale = Number(process.env.PGOPS_BENCH_BB_SCALE ?? 20);
    const randomMiB = Number(process.env.PGOPS_BENCH_BB_RANDOM_MB ?? 150);
    log(`base backup: pgbench -i -s ${scale} + ${randomMiB} MiB random bytea`);
    await loadBenchData(pg, scale, randomMiB);
    basebackup = await benchBaseBackup({ pg, storageDir, databaseId: 'bench', rounds: Number(process.env.PGOPS_BENCH_BB_ROUNDS ?? 5), log: (m) => log(`base backup: ${m}`) });
  } finally {
    await pg.stop();
    rmSync(storageDir, { recursive: true, force: true });
  }
  log('wal push as archive_command vs gzip -1');
  const walPush = await benchWalPush({ segments: Number(process.env.PGOPS_BENCH_WAL_SEGMENTS ?? 24) });
  log('recovery of 1 GB of WAL');
  const pitr = await benchPitr({ walMb: Number(process.env.PGOPS_BENCH_PITR_WAL_MB ?? 1024), log: (m) => log(`pitr: ${m}`) });
  const walTable = [
    `${walPush.segments} segments of ${mib(walPush.segmentBytes)} MiB, one shell per segment as the archiver runs it, file storage; stored/original ${walPush.compressionRatio}.`,
    '',
    '| archive_command | seconds | segments/s | MiB/s | ratio |',
    '|---|---:|---:|---:|---:|',
    `| raw: gzip -1 < %p > <archive>/%f.gz | ${walPush.rawSeconds} | ${walPush.rawSegmentsPerSecond} | | 1.00x |`,
    `| pgops wal push %p (bundled CLI) | ${walPush.seconds} | ${walPush.segmentsPerSecond} | ${walPush.mibPerSecond} | ${walPush.ratio.toFixed(2)}x |`,
  ].join('\n');
  process.stdout.write(`\n${baseBackupTable(basebackup)}\n\n${walTable}\n\n${pitrTable(pitr)}\n`);
  return { basebackup, walPush, pitr };
}

async function main(): Promise<void> {
  const parts = (process.env.PGOPS_BENCH_PARTS ?? 'logical,physical,lint').split(',').map((p) => p.trim());
  const results: Record<string, unknown> = { measuredAt: new Date().toISOString() };
  if (parts.includes('logical')) Object.assign(results, await logical());
  if (parts.includes('physical')) results.physical = await physical();
  if (parts.includes('lint')) {
    const lint = await benchLint(ROOT);
    process.stdout.write(`\n${lintTable(lint)}\n`);
    results.lint = lint;
  }
  writeFileSync(join(ROOT, 'bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  log('wrote bench/results.json');
}

await main();
