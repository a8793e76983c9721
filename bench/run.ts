// npm run bench: pgops backup/restore against the raw PostgreSQL tools on one generated database of
// about 1.5 GB (pgbench scale 70 plus poorly compressible random bytes, because pgbench data alone
// compresses ~50:1 and would barely exercise the upload path), each row interleaved with its
// baseline for PGOPS_BENCH_ROUNDS rounds (logical.ts; PGOPS_BENCH_SIZE_GB=3 for the larger size).
// Then the physical side: base backup vs raw pg_basebackup | gzip, wal push as archive_command vs
// a raw gzip archive_command, and recovery of 1 GB of WAL through wal fetch vs a raw gunzip.
// Prints markdown tables and writes bench/results.json. Ratios, not absolute times, are the
// figures that matter: the same machine, server and data for both sides of each ratio.
// Then the migration linter on the example schema. PGOPS_BENCH_PARTS=logical, physical or lint (comma-separated) runs those parts.
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres } from '../bin/demo/embedded-postgres.ts';
import { archivingConf, sharedStorageDir } from '../test/helpers/archiving.ts';
import { baseBackupTable, benchBaseBackup, loadBenchData } from './basebackup.ts';
import { benchPitr, pitrTable } from './pitr.ts';
import { benchWalPush } from './wal-push.ts';
import { benchLint, lintTable } from './lint.ts';
import { benchLogical, logicalSettings, logicalTable, summarizeRow } from './logical.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);

async function logical(): Promise<Record<string, unknown>> {
  const result = await benchLogical(ROOT, logicalSettings(process.env), log);
  process.stdout.write(`${logicalTable(result)}\n`);
  return { ...result, rows: result.rows.map(summarizeRow), compressionRows: result.compressionRows.map(summarizeRow) };
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
  if (parts.includes('logical')) results.logical = await logical();
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
