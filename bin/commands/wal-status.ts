// `pgops wal status`: the restore window per timeline, read from storage alone (no connection);
// exit 1 when a gap or a missing base backup leaves part of it unrecoverable.
import { Command } from 'commander';
import { ConfigError } from '../../functions/core/errors.ts';
import type { Runtime } from '../../functions/core/runtime.ts';
import type { BackupWalStatus, WalStatusDeps, WalStatusReport } from '../../functions/core/wal/status.ts';
import { runCommand, type Io } from './run-command.ts';

/** The archive's location; never resolves the database target (no connection is made). */
async function walStatusDeps(rt: Runtime): Promise<WalStatusDeps> {
  const databaseId = rt.settings.databaseId;
  if (!databaseId) {
    const { ENV } = await import('../../functions/core/config.ts');
    throw new ConfigError('invalid configuration', [`no database id: set --database-id / ${ENV.databaseId} (wal status has no connection to default it from)`]);
  }
  const { checkDatabaseId } = await import('../../functions/core/catalog/layout.ts');
  return { storage: rt.storage(), databaseId: checkDatabaseId(databaseId), logger: rt.logger };
}

function backupLine(b: BackupWalStatus): string {
  const state = b.note ?? (b.recoverable ? 'recoverable to the end of the archive'
    : b.consistent ? `recovers to ${b.reaches?.lsn ?? '?'} at most (${b.firstMissing} is missing)`
      : `cannot be restored (${b.firstMissing} is missing)`);
  return `  ${b.id}  timeline ${b.timeline}  ${b.startSegment} .. ${b.stopSegment}  ${state}\n`;
}

function printStatus(r: WalStatusReport, io: Io): void {
  io.out(`WAL archive of ${r.database} in ${r.storage}${r.timelines.length > 0 ? ` (newest timeline ${r.newestTimeline})` : ': empty'}\n`);
  for (const t of r.timelines) {
    const gaps = t.gaps.length === 0 ? '' : `, ${t.gaps.length} missing inside (first ${t.gaps[0]})`;
    io.out(`  timeline ${t.timeline}: ${t.firstSegment} .. ${t.lastSegment}${gaps}\n`);
  }
  io.out(r.backups.length === 0 ? 'Base backups: none\n' : 'Base backups (newest first):\n');
  for (const b of r.backups) io.out(backupLine(b));
  for (const id of r.invalidBackups) io.out(`  ${id}  invalid manifest: ignored\n`);
  const { from, to, timeline } = r.window;
  if (from && to) {
    io.out(`Restore window (timeline ${timeline}): from ${from.time ?? '?'} (LSN ${from.lsn}, end of base backup ${from.backupId})\n`);
    io.out(`                          to ${to.time ?? '?'} (LSN ${to.lsn}, end of ${to.segment}, the newest archived segment)\n`);
  } else {
    io.out(`Restore window (timeline ${timeline}): none\n`);
  }
  for (const p of r.problems) io.out(`PROBLEM: ${p}\n`);
  if (r.ok) io.out('OK: the whole window is recoverable.\n');
}

export function walStatusCommand(io: Io): Command {
  return new Command('status')
    .description('the restore window per timeline: base backups, archived WAL, gaps named (no connection)')
    .addHelpText('after', `
Reads the base backups and the WAL archive of the database id in storage. The restore window runs
from the end of the oldest base backup whose WAL is continuous to the newest archived segment of
the newest timeline, to that segment. A missing segment after a base backup cuts recovery from that
backup short: it is named, with how far recovery reaches, and the command exits 1. The remedy is a
new base backup (pgops basebackup); the time inside the gap cannot be recovered.

Exit codes: 0 the whole window is recoverable, 1 a gap, no base backup, or a failure; 2 bad usage.

Example:
  $ PGOPS_DATABASE_ID=orders pgops wal status --storage s3://my-backups/pgops
  $ pgops wal status --database-id orders --json`)
    .action((_o, cmd: Command) => runCommand<object, WalStatusReport>(cmd, io, async ({ rt }) => {
      const { readWalStatus } = await import('../../functions/core/wal/status.ts');
      return readWalStatus(await walStatusDeps(rt));
    }, (r) => printStatus(r, io), { exitCode: (r) => (r.ok ? 0 : 1) }));
}
