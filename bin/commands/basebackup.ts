// `pgops basebackup` (a physical base backup of the whole cluster, for point-in-time recovery) and
// `pgops basebackups list`. Thin: parse, call the core job or the catalog, print.
import { Command } from 'commander';
import type { InvalidBackup } from '../../functions/core/catalog/catalog.ts';
import type { PhysicalManifest } from '../../functions/core/catalog/physical.ts';
import { formatBytes } from '../../functions/core/format.ts';
import { createProgress, progressEnabled } from '../render/progress.ts';
import { parseCount, runCommand, type Io } from './run-command.ts';

interface BaseBackupFlags { compression?: string; archiveWait?: number }

export function basebackupCommand(io: Io): Command {
  return new Command('basebackup')
    .description('physical base backup of the whole cluster (pg_basebackup), streamed to storage, for point-in-time recovery')
    .option('--compression <spec>', 'how the tar is stored: gzip, zstd, lz4 or none, optionally with a level (zstd:3; a bare method is level 1) (default: config physical.compression, gzip)')
    .option('--archive-wait <seconds>', 'how long to wait for the WAL the backup needs to reach the archive (default: config physical.archiveWaitSeconds, 120)', parseCount)
    .addHelpText('after', `
pg_basebackup -Ft -D - -X none streams the whole cluster (every database) as one tar; pgops
compresses it (gzip -1 by default) and stores it while computing its SHA-256 and size, without
touching local disk. The tar holds no WAL: the backup relies on the WAL archive, so after the copy
pgops waits until every WAL segment from the backup's start to its end is in the archive, and only
then writes the manifest. A base backup is never presented as good without its WAL.

Needs:
  - a role with REPLICATION (or a superuser):   ALTER ROLE backup REPLICATION;
  - a pg_hba.conf "replication" line for it:    host  replication  backup  10.0.0.0/16  scram-sha-256
  - max_wal_senders > 0 (one slot while the backup runs), wal_level = replica (the defaults)
  - the WAL archive running, one of:
      archive_mode = on, archive_command = 'PGOPS_DATABASE_ID=<id> PGOPS_STORAGE=<storage> pgops wal push %p'
      pgops wal receive   (a replication slot; no access to the server's host needed)
RDS and Aurora grant no REPLICATION: use their own point-in-time recovery there.

If pg_basebackup fails or is killed, storage fails, or the WAL does not reach the archive within
physical.archiveWaitSeconds, the partial upload is removed, no manifest is written, an alert names
the cause and the exit code is 1. SIGTERM/SIGINT stop it and clean up (exit 143/130).

Layout: <storage>/<database>/physical/<backupId>/base.tar[.gz|.zst|.lz4]
        <storage>/<database>/physical/<backupId>/manifest.json   (startLsn, stopLsn, timeline, systemIdentifier, ...)
        <storage>/<database>/wal/<timeline>/<segment>.gz          (the archive: wal push / wal receive)

Examples:
  $ pgops basebackup --storage s3://my-backups/pgops --database-url postgres://backup@db:5432/orders
  $ pgops basebackup --compression zstd --archive-wait 300 --json
  $ pgops basebackups list`)
    .action((_o, cmd: Command) => runCommand<BaseBackupFlags, PhysicalManifest>(cmd, io, async (ctx) => {
      const progress = createProgress('basebackup', { enabled: progressEnabled(ctx.opts.json), write: io.err });
      try {
        const { runBaseBackup } = await import('../../functions/core/physical/basebackup.ts');
        return await runBaseBackup(await ctx.rt.physicalDeps({ onProgress: (p) => progress.update(p) }), {
          compression: ctx.opts.compression,
          archiveWaitSeconds: ctx.opts.archiveWait,
        });
      } finally {
        progress.done();
      }
    }, (m, { io: o }) => printBaseBackup(m, o), { job: 'basebackup', metrics: async (o) => ('result' in o ? (await import('../../functions/core/metrics.ts')).baseBackupMetrics() : []) }));
}

function printBaseBackup(m: PhysicalManifest, o: Io): void {
  const tar = m.tarBytes !== undefined ? `tar ${formatBytes(m.tarBytes)}, ` : '';
  o.out(`base backup ${m.id}: ${formatBytes(m.bytes)} (${tar}${m.compression}) in ${(m.durationMs / 1000).toFixed(1)} s, sha256 ${m.sha256}\n`
    + `  WAL ${m.startLsn} .. ${m.stopLsn} on timeline ${m.timeline} (${m.startSegment} .. ${m.stopSegment}): archived\n`
    + `  recoverable to any time from ${m.stoppedAt}\n`
    + `  ${m.key}\n`);
}

function printBaseBackupList(list: PhysicalManifest[], invalid: InvalidBackup[], o: Io): void {
  if (list.length === 0) o.out('no base backups\n');
  else o.out(`${'id'.padEnd(22)} ${'stopped (recoverable from)'.padEnd(26)} ${'size'.padStart(10)}  ${'timeline'.padStart(8)}  WAL\n`);
  for (const m of list) {
    o.out(`${m.id.padEnd(22)} ${m.stoppedAt.padEnd(26)} ${formatBytes(m.bytes).padStart(10)}  ${String(m.timeline).padStart(8)}  ${m.startSegment}..${m.stopSegment.slice(-8)}\n`);
  }
  for (const bad of invalid) o.out(`INVALID ${bad.id}: ${bad.problem} (${bad.manifestKey})\n`);
}

export function basebackupsCommand(io: Io): Command {
  const cmd = new Command('basebackups').description('list stored base backups (physical, for point-in-time recovery)');
  cmd.command('list')
    .description('base backups of this database, newest first (from their manifests)')
    .addHelpText('after', `
Logical backups (pgops backup) are listed by pgops backups list. A manifest the catalog rejects is
reported (stderr, and a line in the text output), never listed.

Example:
  $ pgops basebackups list --storage s3://my-backups/pgops --json`)
    .action((_o, sub: Command) => {
      let invalid: InvalidBackup[] = [];
      return runCommand(sub, io, async (ctx) => {
        const { scanPhysicalBackups } = await import('../../functions/core/catalog/physical.ts');
        const scan = await scanPhysicalBackups(ctx.rt.storage(), ctx.rt.databaseId(await ctx.rt.target()));
        invalid = scan.invalid;
        for (const bad of invalid) io.err(`pgops: warning: invalid base backup manifest ${bad.manifestKey}: ${bad.problem} (not listed; left for a human to look at)\n`);
        return scan.backups.map((b) => b.manifest);
      }, (list, { io: o }) => printBaseBackupList(list, invalid, o));
    });
  return cmd;
}

/** Both commands, for bin/pgops.ts. */
export function physicalCommands(io: Io): Command[] {
  return [basebackupCommand(io), basebackupsCommand(io)];
}
