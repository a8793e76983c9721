// `pgops wal push|fetch`: PostgreSQL's archive_command and restore_command. No database
// connection: the database id names the archive's folder and must be given. `pgops wal receive`:
// the same archive fed by streaming replication, as a long-running service.
import { Command } from 'commander';
import { ConfigError, exitCodeOf } from '../../functions/core/errors.ts';
import type { Runtime } from '../../functions/core/runtime.ts';
import type { WalDeps, WalFetchResult, WalPushResult } from '../../functions/core/wal/archive.ts';
import { WAL_FETCH_ABORT_EXIT } from '../../functions/core/wal/errors.ts';
import type { WalReceiveResult } from '../../functions/core/wal/receive.ts';
import { runCommand, type Io } from './run-command.ts';
import { walStatusCommand } from './wal-status.ts';

/** The archive's dependencies; never resolves the database target (no connection is made). */
async function walDeps(rt: Runtime): Promise<WalDeps> {
  const databaseId = rt.settings.databaseId;
  if (!databaseId) {
    const { ENV } = await import('../../functions/core/config.ts');
    throw new ConfigError('invalid configuration', [`no database id: set --database-id / ${ENV.databaseId} (wal push and wal fetch have no connection to default it from)`]);
  }
  const { checkDatabaseId } = await import('../../functions/core/catalog/layout.ts');
  return { storage: rt.storage(), databaseId: checkDatabaseId(databaseId), reporting: rt.reporting() };
}

function pushCommand(io: Io): Command {
  return new Command('push')
    .description('archive one WAL file (archive_command): exit 0 only once it is stored and verified')
    .argument('<path>', 'the file PostgreSQL hands over (%p)')
    .addHelpText('after', `
The file is gzipped and stored with the SHA-256 of its content under <database id>/wal/<timeline>/.
Pushing an identical file again succeeds; a different file under the same name is refused (exit 1,
alert) and the archived one is left unchanged.

Exit codes: 0 stored and verified, 1 not archived (PostgreSQL retries), 2 bad usage or configuration.

Example (postgresql.conf; the server's user runs it):
  archive_mode = on
  archive_command = 'PGOPS_DATABASE_ID=orders PGOPS_STORAGE=s3://my-backups/pgops pgops wal push %p'`)
    .action((path: string, _o, cmd: Command) => runCommand<object, WalPushResult>(cmd, io, async ({ rt }) => {
      const { pushWal } = await import('../../functions/core/wal/archive.ts');
      return pushWal(await walDeps(rt), path);
    }, (r) => io.out(`${r.name}: ${r.alreadyArchived ? 'already archived (identical)' : 'archived'} at ${r.key}\n`), { job: 'wal push' }));
}

function fetchCommand(io: Io): Command {
  return new Command('fetch')
    .description('restore one WAL file from the archive (restore_command)')
    .argument('<name>', 'the file PostgreSQL asks for (%f)')
    .argument('<dest>', 'where to write it (%p)')
    .addHelpText('after', `
The file is downloaded, decompressed, checked against its SHA-256 and renamed into place.

Exit codes: 0 restored, 1 not in the archive (PostgreSQL then ends recovery normally),
${WAL_FETCH_ABORT_EXIT} any other failure after 3 attempts, bad usage and configuration included: a status
above 125 makes PostgreSQL abort recovery rather than end it early and lose what follows.

Example (postgresql.conf, or the recovery settings):
  restore_command = 'PGOPS_DATABASE_ID=orders PGOPS_STORAGE=s3://my-backups/pgops pgops wal fetch %f %p'`)
    .action((name: string, dest: string, _o, cmd: Command) => runCommand<object, WalFetchResult>(cmd, io, async ({ rt }) => {
      const { fetchWal } = await import('../../functions/core/wal/archive.ts');
      return fetchWal(await walDeps(rt), name, dest);
    }, (r) => { if (r.status === 'restored') io.out(`${r.name}: restored from ${r.key}\n`); }, {
      job: 'wal fetch',
      exitCode: (r) => (r.status === 'not-found' ? 1 : 0),
      // Whatever failed (configuration included), recovery must abort: never a status PostgreSQL reads as "not found".
      errorExitCode: (err) => Math.max(WAL_FETCH_ABORT_EXIT, exitCodeOf(err)),
    }));
}

interface ReceiveOptions {
  slot?: string;
  createSlot?: boolean;
  synchronous: boolean;
}

function receiveCommand(io: Io): Command {
  return new Command('receive')
    .description('stream WAL through a replication slot (pg_receivewal) into the archive, until SIGTERM')
    .option('--slot <name>', 'the physical replication slot (default pgops_<database id>)')
    .option('--create-slot', 'create the slot if it does not exist (reserving WAL at once)')
    .option('--no-synchronous', 'let pg_receivewal flush only at segment ends (default: flush and report every write)')
    .addHelpText('after', `
Runs pg_receivewal into a local spool and archives, in the same format as wal push, every finished
segment as soon as it is complete, and the current partial segment (<segment>.partial) every 5
seconds. SIGTERM stops pg_receivewal, archives what it received, and exits 0.

The slot is the receiver's memory: the server keeps all WAL from the slot's restart_lsn, and the
receiver moves the slot only past segments that are archived and verified. Every start resumes there
with an empty spool, so a receiver that is killed, or a container replaced, leaves no gap.

Needs, on the server (self-managed PostgreSQL; RDS and Aurora grant no REPLICATION):
  - a role with REPLICATION:   ALTER ROLE archiver REPLICATION;
  - a pg_hba.conf line for replication connections (and the usual one for the database):
      host  replication  archiver  10.0.0.0/16  scram-sha-256
  - wal_level = replica (or logical), max_wal_senders and max_replication_slots above 0
  - max_slot_wal_keep_size (e.g. '50GB'): a receiver that stays down keeps WAL on the server until
    the disk is full; with a limit the server drops that WAL instead (the slot is then "lost", the
    receiver refuses to start, and a new base backup is needed). Pick it larger than the WAL written
    during the longest outage you want to ride out.

Exit codes: 0 stopped by SIGTERM/SIGINT with everything archived, 1 streaming or archiving failed
(pg_receivewal exited, storage kept failing, a different segment is already archived: the service
should restart it), 2 bad usage or configuration (no slot without --create-slot, no REPLICATION).

Example:
  DATABASE_URL=postgres://archiver@db.internal/orders PGOPS_STORAGE=s3://my-backups/pgops \\
    pgops wal receive --create-slot`)
    .action((_o, cmd: Command) => runCommand<ReceiveOptions, WalReceiveResult>(cmd, io, async ({ rt, opts }) => {
      const { receiveWal } = await import('../../functions/core/wal/receive.ts');
      const deps = await rt.backupDeps({ signal: rt.signal() });
      const reporting = { alerter: deps.alerter, logger: deps.logger, databaseId: deps.databaseId, environment: deps.environment };
      return receiveWal({ ...deps, binDir: deps.binDir ?? rt.binDir(), reporting }, { slot: opts.slot, createSlot: opts.createSlot, synchronous: opts.synchronous });
    }, (r) => io.out(`wal receive: stopped by ${r.stoppedBy}; ${r.segmentsUploaded} segment(s) archived${r.lastSegment ? ` (last ${r.lastSegment})` : ''}, ${r.partialUploads} partial upload(s)\n`), { job: 'wal receive' }));
}

export function walCommand(io: Io): Command {
  return new Command('wal')
    .description('the WAL archive: archive_command (push), restore_command (fetch), streaming (receive), the restore window (status)')
    .addCommand(pushCommand(io))
    .addCommand(fetchCommand(io))
    .addCommand(receiveCommand(io))
    .addCommand(walStatusCommand(io));
}
