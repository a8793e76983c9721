import { Command, Option } from 'commander';
import type { InvalidBackup } from '../../functions/core/catalog/catalog.ts';
import type { BackupManifest } from '../../functions/core/catalog/manifest.ts';
import type { RestoreResult } from '../../functions/core/backup/restore.ts';
import type { VerifyResult } from '../../functions/core/backup/verify.ts';
import { parseCount, runCommand, type Io } from './run-command.ts';
import { PgopsError } from '../../functions/core/errors.ts';
import { formatBytes } from '../../functions/core/format.ts';
import type { MetricDatum } from '../../functions/core/metrics.ts';
import { createProgress, progressEnabled } from '../render/progress.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

interface BackupFlags { schemaOnly?: boolean; dataOnly?: boolean; table?: string[]; excludeTable?: string[]; jobs?: number; compression?: string; rowCounts?: 'exact' | 'estimate' }

export function backupCommand(io: Io): Command {
  return new Command('backup')
    .description('logical backup (pg_dump custom format) streamed to storage, verified by SHA-256')
    .option('--schema-only', 'dump only the schema')
    .option('--data-only', 'dump only the data')
    .option('--table <pattern>', 'dump only matching tables (repeatable; pg_dump -t)', collect)
    .option('--exclude-table <pattern>', 'skip matching tables (repeatable; pg_dump -T)', collect)
    .option('--jobs <n>', 'parallel dump (directory format, staged on local disk, then tarred)', parseCount)
    .option('--compression <spec>', 'gzip:N (0-9), lz4 or zstd:N (pg_dump >= 16), none (default: backup.compression, gzip:1)')
    .addOption(new Option('--row-counts <how>', 'row counts in the manifest: exact (count(*) of every table, a second full read) or estimate (statistics) (default: backup.rowCounts; auto estimates here, the scheduled backup counts exactly)').choices(['exact', 'estimate']))
    .addHelpText('after', `
The dump streams from pg_dump to storage without touching local disk (except with --jobs); its
SHA-256 and size are computed on the way. The manifest is written last: a backup exists only when
its manifest does. If pg_dump fails, is killed or storage fails, the partial dump is removed, no
manifest is written, an alert names the cause and the exit code is 1.

The restore test compares the restored tables' row counts with the manifest's. Exact counts cost
a second full read of every table at backup time; estimates cost nothing, and the restore test
then checks only that every table is there.

Layout: <storage>/<database>/logical/<backupId>/{dump,manifest.json}

Examples:
  $ pgops backup --storage s3://my-backups/pgops --database-url postgres://app@db:5432/auth
  $ pgops backup --storage file:///var/backups/pgops --exclude-table audit_logs
  $ pgops backup --jobs 4 --json
  $ pgops backup --compression none --row-counts estimate   # fastest, largest`)
    .action((_o, cmd: Command) => runCommand<BackupFlags, BackupManifest>(cmd, io, async (ctx) => {
      const progress = createProgress('backup', { enabled: progressEnabled(ctx.opts.json), write: io.err });
      try {
        const { runBackup } = await import('../../functions/core/backup/backup.ts');
        return await runBackup(await ctx.rt.backupDeps({ onProgress: (p) => progress.update(p) }), {
          schemaOnly: ctx.opts.schemaOnly,
          dataOnly: ctx.opts.dataOnly,
          tables: ctx.opts.table,
          excludeTables: ctx.opts.excludeTable,
          jobs: ctx.opts.jobs,
          compression: ctx.opts.compression,
          rowCounts: ctx.opts.rowCounts,
        });
      } finally {
        progress.done();
      }
    }, printBackup, { job: 'backup', metrics: async (o) => ('result' in o ? (await import('../../functions/core/metrics.ts')).backupMetrics(o.result) : []) }));
}

async function printBackup(m: BackupManifest, { io: o }: { io: Io }): Promise<void> {
  const content = (await import('../../functions/core/catalog/catalog.ts')).backupContent(m);
  o.out(`backup ${m.id} (${content}): ${formatBytes(m.bytes)} in ${(m.durationMs / 1000).toFixed(1)} s, sha256 ${m.sha256}\n  ${m.key}\n`);
  if (content !== 'full') o.out(`  a ${content} backup: "latest" and retention's full backups ignore it; restore it by its id\n`);
}

async function printBackupList(list: BackupManifest[], invalid: InvalidBackup[], o: Io): Promise<void> {
  const { backupContent } = await import('../../functions/core/catalog/catalog.ts');
  if (list.length === 0) o.out('no backups\n');
  else o.out(`${'id'.padEnd(26)} ${'kind'.padEnd(11)} ${'completed'.padEnd(24)} ${'size'.padStart(10)}  migration\n`);
  for (const m of list) o.out(`${m.id.padEnd(26)} ${backupContent(m).padEnd(11)} ${m.completedAt.padEnd(24)} ${formatBytes(m.bytes).padStart(10)}  ${m.migration ?? '-'}\n`);
  for (const bad of invalid) o.out(`INVALID ${bad.id}: ${bad.problem} (${bad.manifestKey})\n`);
}

export function backupsCommand(io: Io): Command {
  const backups = new Command('backups').description('list and verify stored backups');
  backups.command('list')
    .description('backups of this database, newest first (from their manifests), with what each holds')
    .addHelpText('after', `
A backup's kind says what it holds: full, schema-only, data-only or partial (table filters).
"latest" means the newest full backup; a partial one is restored or verified only by its id.
A manifest the catalog rejects is reported (stderr, and a line in the text output), never listed.

Example:
  $ pgops backups list --storage s3://my-backups/pgops --json`)
    .action((_o, cmd: Command) => {
      let invalid: InvalidBackup[] = [];
      return runCommand(cmd, io, async (ctx) => {
        const { scanBackups } = await import('../../functions/core/catalog/catalog.ts');
        const scan = await scanBackups(ctx.rt.storage(), ctx.rt.databaseId(await ctx.rt.target()));
        invalid = scan.invalid;
        for (const bad of invalid) io.err(`pgops: warning: invalid manifest ${bad.manifestKey}: ${bad.problem} (not listed; left for a human to look at)\n`);
        return scan.backups.map((b) => b.manifest);
      }, (list, { io: o }) => printBackupList(list, invalid, o));
    });
  backups.command('verify')
    .description('re-hash a stored backup against its manifest and read the archive to its end')
    .argument('<id>', 'a backup id, or "latest"')
    .option('--restore-test', 'also restore into a scratch database and compare row counts with the manifest')
    .addHelpText('after', `
Exit 1 when the object does not match its manifest (size or SHA-256), the archive cannot be read to
its end, or the restore test finds different row counts. The restore test's result is recorded
beside the backup (restore-test.json), where the health check reads it.

Examples:
  $ pgops backups verify latest
  $ pgops backups verify 20261122T020000Z-3fa2 --restore-test`)
    .action((id: string, _o, cmd: Command) => runCommand<{ restoreTest?: boolean }, VerifyResult>(cmd, io,
      async (ctx) => (await import('../../functions/core/backup/verify.ts')).verifyBackup(await ctx.rt.backupDeps(), id, { restoreTest: ctx.opts.restoreTest }),
      (r, { io: o }) => o.out(`backup ${r.backupId}: ok (sha256 and size match, archive readable${r.restoreTest ? ', restore test passed' : ''})\n`),
      { job: 'verify', metrics: verifyMetrics }));
  return backups;
}

/** Only a restore test reports metrics: its success and RTO, or its failure (not a refusal that pages nobody: bad usage). */
async function verifyMetrics(o: { result: VerifyResult } | { error: unknown }, opts: { restoreTest?: boolean }): Promise<MetricDatum[]> {
  if (!opts.restoreTest) return [];
  const { restoreTestFailedMetrics, restoreTestMetrics } = await import('../../functions/core/metrics.ts');
  if ('result' in o) return restoreTestMetrics(o.result.restoreTest);
  return o.error instanceof PgopsError && o.error.alert === null ? [] : restoreTestFailedMetrics();
}

interface RestoreFlags { targetDb?: string; create?: boolean; clean?: boolean; table?: string[]; owner?: boolean; jobs?: number; dryRun?: boolean }

export function restoreCommand(io: Io): Command {
  return new Command('restore')
    .description('restore a backup with pg_restore, after checking its SHA-256')
    .argument('<id>', 'a backup id, or "latest"')
    .option('--target-db <name>', 'the database to restore into (default: the connection\'s database)')
    .option('--create', 'create the target database first (refused if it exists)')
    .option('--clean', 'drop objects before recreating them (needed for a non-empty target)')
    .option('--table <name>', 'restore only this table, with its indexes, constraints and triggers (repeatable; schema.table, quoted for case)', collect)
    .option('--no-owner', 'do not restore object ownership')
    .option('--jobs <n>', 'parallel pg_restore workers', parseCount)
    .option('--dry-run', 'check the backup and show what would be restored; touch nothing')
    .addHelpText('after', `
The dump is fetched to a temporary file while its SHA-256 is re-computed; a mismatch is refused
before the target is touched. Restoring into a non-empty database without --clean is refused. A
database created by --create is dropped again if the restore fails.

--table restores the table with its data, sequences, defaults, indexes, constraints, triggers,
comments and grants; into a new database also the schema and functions it needs, leaving out (and
naming) foreign keys to tables not restored. A name not in the backup exits 2 before anything.
A lock held by another session is waited on for database.lockTimeoutMs at most (default 5 s);
then the restore fails naming that session. SIGTERM/SIGINT stop the restore and clean up (exit 143/130).

Examples:
  $ pgops restore latest --target-db auth_restored --create
  $ pgops restore 20261122T020000Z-3fa2 --target-db auth --clean --jobs 4
  $ pgops restore latest --target-db scratch --create --table users --no-owner`)
    .action((id: string, _o, cmd: Command) => runCommand<RestoreFlags, RestoreResult>(cmd, io, async (ctx) => {
      const progress = createProgress('restore', { enabled: progressEnabled(ctx.opts.json), write: io.err });
      try {
        const { runRestore } = await import('../../functions/core/backup/restore.ts');
        return await runRestore(await ctx.rt.backupDeps({ onProgress: (p) => progress.update(p) }), id, {
          targetDb: ctx.opts.targetDb,
          create: ctx.opts.create,
          clean: ctx.opts.clean,
          tables: ctx.opts.table,
          noOwner: ctx.opts.owner === false,
          jobs: ctx.opts.jobs,
          dryRun: ctx.opts.dryRun,
        });
      } finally {
        progress.done();
      }
    }, (r, { io: o }) => o.out(`${describeRestore(r)}\n`), { job: 'restore' }));
}

function describeRestore(r: RestoreResult): string {
  // A dry run shows its plan: with --table, every entry that would be restored or skipped.
  return r.dryRun
    ? `dry run: backup ${r.backupId} checks out; would restore ${r.tables} table(s) into ${r.targetDb}; nothing was changed${(r.plan?.steps ?? []).map((step) => `\n  ${step}`).join('')}`
    : `restored backup ${r.backupId} into ${r.targetDb}: ${r.tables} table(s) in ${(r.durationMs / 1000).toFixed(1)} s`;
}
