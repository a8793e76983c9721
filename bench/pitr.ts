// Bench: point-in-time recovery time for ~1 GB of WAL. An archiving cluster (archive_command = the
// bundled CLI's `wal push`, as the container runs it), a base backup, then pgbench generates WAL
// (`pgbench -i` rounds: table loads and index builds, plus a short TPC-B run) until about
// PGOPS_BENCH_PITR_WAL_MB (default 1024) has been written after the backup. `pgops pitr` recovers
// to the last LSN into a data directory, restore_command = the bundled CLI's `wal fetch`; the
// figure is the replay: from the scratch server's start to its promotion, in seconds and MB/s of
// WAL; then the same recovery with a raw restore_command (gunzip from the archive folder) for the
// ratio. Run alone: npx tsx bench/pitr.ts
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../bin/demo/embedded-postgres.ts';
import { MemoryAlerter } from '../functions/core/alerts/alerter.ts';
import { parseDatabaseUrl } from '../functions/core/db.ts';
import { silentLogger } from '../functions/core/logger.ts';
import { runBaseBackup } from '../functions/core/physical/basebackup.ts';
import { runPitr, type PitrResult } from '../functions/core/pitr/job.ts';
import { FileStorage } from '../functions/core/storage/file.ts';
import { parseLsn } from '../functions/core/wal/lsn.ts';
import { archivingConf, bundledCli, sharedStorageDir } from '../test/helpers/archiving.ts';
import { prepareArchiveFolder, waitArchived } from '../test/helpers/physical.ts';

/** The same recovery with a raw restore_command: gunzip from the archive folder, no checks. */
export interface RawRecovery {
  recoverySeconds: number;
  mbPerSecond: number;
}

export interface PitrBenchResult {
  /** WAL from the base backup's start to the target, in bytes. */
  walBytes: number;
  /** Segments restored from the archive by `wal fetch`. */
  walSegments: number;
  /** Base backup fetched, verified and unpacked. */
  baseBackupSeconds: number;
  /** Scratch server start to promotion: the replay, restore_command included. */
  recoverySeconds: number;
  mbPerSecond: number;
  /** The whole job, output (--data-dir) included. */
  totalSeconds: number;
  baseBackupBytes: number;
  raw?: RawRecovery;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`))));
  });
}

const pgEnv = (pg: EmbeddedPostgres): NodeJS.ProcessEnv => ({ ...process.env, PGPASSWORD: pg.password, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: pg.user });
const psql = async (pg: EmbeddedPostgres, sql: string): Promise<string> => (await run(pg.bin('psql'), ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres', '-c', sql], pgEnv(pg))).trim();

/** pgbench until `walBytes` of WAL were written after `fromLsn`; returns the last LSN, archived. */
async function generateWal(pg: EmbeddedPostgres, storage: FileStorage, databaseId: string, fromLsn: bigint, walBytes: number, log: (m: string) => void): Promise<string> {
  await psql(pg, 'CREATE DATABASE bench');
  for (;;) {
    const written = parseLsn(await psql(pg, 'SELECT pg_current_wal_lsn()')) - fromLsn;
    log(`${(Number(written) / 1024 / 1024).toFixed(0)} MiB of WAL so far`);
    if (written >= BigInt(walBytes)) break;
    await run(pg.bin('pgbench'), ['-i', '-q', '-s', '10', 'bench'], pgEnv(pg));
    await run(pg.bin('pgbench'), ['-c', '4', '-j', '2', '-T', '5', 'bench'], pgEnv(pg));
  }
  const lsn = await psql(pg, 'SELECT pg_current_wal_lsn()');
  const last = await psql(pg, 'SELECT pg_walfile_name(pg_switch_wal())');
  log(`waiting for the archive to reach ${last}`);
  await waitArchived(storage, databaseId, last, 30 * 60_000);
  return lsn;
}

/** Recover `storageDir`'s archive to `lsn` from its newest base backup, timing the phases. */
export async function benchRecovery(o: { storageDir: string; databaseId: string; lsn: string; binDir: string; walFetchArgv?: string[] }): Promise<Omit<PitrBenchResult, 'walBytes' | 'baseBackupBytes'>> {
  const out = mkdtempSync(join(tmpdir(), 'pgops-bench-pitr-out-'));
  chmodSync(out, 0o755);
  const t0 = performance.now();
  let replayStart = 0;
  let promoted = 0;
  try {
    const r = await runPitr({
      storage: new FileStorage(pathToFileURL(o.storageDir).href), logger: silentLogger, alerter: new MemoryAlerter(), environment: 'bench',
      databaseId: o.databaseId, serverBinDir: o.binDir, binDir: o.binDir, walFetch: { argv: o.walFetchArgv ?? [process.execPath, bundledCli()] },
      recoveryTimeoutMs: 60 * 60_000,
      onProgress: (p) => { if (p.phase === 'recovery' && replayStart === 0) replayStart = performance.now(); },
      onRecovered: () => { promoted = performance.now(); },
    }, { target: { targetLsn: o.lsn }, output: { dataDir: join(out, 'data') } }) as PitrResult;
    const recoverySeconds = (promoted - replayStart) / 1000;
    return { walSegments: r.walSegments, baseBackupSeconds: (replayStart - t0) / 1000, recoverySeconds, mbPerSecond: 0, totalSeconds: r.durationMs / 1000 };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/**
 * A restore_command as hand-rolled setups write it: gunzip the archived file from the archive folder
 * (history files are stored plain), exit 1 when it is not there. It takes the same arguments as
 * `pgops --quiet wal fetch %f %p` and reads the folder from the same environment.
 */
function rawFetchScript(dir: string): string[] {
  const script = join(dir, 'raw-fetch.sh');
  writeFileSync(script, [
    '#!/bin/sh',
    'f="$4"; p="$5"; d="${PGOPS_STORAGE#file://}/$PGOPS_DATABASE_ID/wal"',
    'tl=$(printf %s "$f" | cut -c1-8)',
    'if [ -f "$d/$tl/$f.gz" ]; then gzip -dc "$d/$tl/$f.gz" > "$p"; exit $?; fi',
    'if [ -f "$d/$f" ]; then cp "$d/$f" "$p"; exit $?; fi',
    'exit 1',
    '',
  ].join('\n'), { mode: 0o755 });
  return ['/bin/sh', script];
}

export async function benchPitr(o: { walMb?: number; log?: (m: string) => void } = {}): Promise<PitrBenchResult> {
  const log = o.log ?? (() => {});
  const databaseId = 'bench';
  const storageDir = sharedStorageDir('pgops-bench-pitr-');
  prepareArchiveFolder(storageDir, databaseId);
  const storage = new FileStorage(pathToFileURL(storageDir).href);
  // Production-like WAL: full-page writes on, checkpoints far apart (the test clusters turn both down).
  const pg = await startEmbeddedPostgres({ conf: archivingConf(storageDir, databaseId), settings: { full_page_writes: 'on', max_wal_size: '8GB', checkpoint_timeout: '30min' } });
  try {
    log('base backup');
    const base = await runBaseBackup({ target: parseDatabaseUrl(pg.url('postgres')), storage, logger: silentLogger, alerter: new MemoryAlerter(), databaseId, environment: 'bench', binDir: pg.binDir, archivePollMs: 200 });
    const lsn = await generateWal(pg, storage, databaseId, parseLsn(base.startLsn), (o.walMb ?? 1024) * 1024 * 1024, log);
    const walBytes = Number(parseLsn(lsn) - parseLsn(base.startLsn));
    log(`recovering ${(walBytes / 1024 / 1024).toFixed(0)} MiB of WAL to ${lsn}`);
    const r = await benchRecovery({ storageDir, databaseId, lsn, binDir: pg.binDir });
    log('the same recovery with a raw restore_command (gunzip from the archive folder)');
    const scripts = mkdtempSync(join(tmpdir(), 'pgops-bench-rawfetch-'));
    chmodSync(scripts, 0o755);
    try {
      const raw = await benchRecovery({ storageDir, databaseId, lsn, binDir: pg.binDir, walFetchArgv: rawFetchScript(scripts) });
      const mbps = (seconds: number) => walBytes / 1024 / 1024 / seconds;
      return { ...r, walBytes, baseBackupBytes: base.bytes, mbPerSecond: mbps(r.recoverySeconds), raw: { recoverySeconds: raw.recoverySeconds, mbPerSecond: mbps(raw.recoverySeconds) } };
    } finally {
      rmSync(scripts, { recursive: true, force: true });
    }
  } finally {
    await pg.stop();
    rmSync(storageDir, { recursive: true, force: true });
  }
}

export function pitrTable(r: PitrBenchResult): string {
  const mib = (b: number) => (b / 1024 / 1024).toFixed(0);
  return [
    `WAL ${mib(r.walBytes)} MiB (${r.walSegments} segments restored by pgops wal fetch), base backup ${mib(r.baseBackupBytes)} MiB stored.`,
    '',
    '| operation | seconds | MB/s of WAL | ratio |',
    '|---|---:|---:|---:|',
    `| fetch, verify and unpack the base backup | ${r.baseBackupSeconds.toFixed(1)} | | |`,
    ...(r.raw ? [`| recovery, raw restore_command (gunzip from the archive folder) | ${r.raw.recoverySeconds.toFixed(1)} | ${r.raw.mbPerSecond.toFixed(1)} | 1.00x |`] : []),
    `| recovery (server start to promotion, restore_command = pgops wal fetch) | ${r.recoverySeconds.toFixed(1)} | ${r.mbPerSecond.toFixed(1)} | ${r.raw ? `${(r.recoverySeconds / r.raw.recoverySeconds).toFixed(2)}x` : ''} |`,
    `| the whole pgops pitr job (--data-dir) | ${r.totalSeconds.toFixed(1)} | | |`,
  ].join('\n');
}

async function main(): Promise<void> {
  const result = await benchPitr({ walMb: Number(process.env.PGOPS_BENCH_PITR_WAL_MB ?? 1024), log: (m) => process.stderr.write(`bench pitr: ${m}\n`) });
  process.stdout.write(`${pitrTable(result)}\n\n${JSON.stringify(result)}\n`);
}

if (process.argv[1] !== undefined && /bench\/pitr\.ts$/.test(process.argv[1])) await main();
