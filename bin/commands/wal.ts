// `pgops wal push|fetch`: PostgreSQL's archive_command and restore_command. No database
// connection: the database id names the archive's folder and must be given.
import { Command } from 'commander';
import { ENV } from '../../functions/core/config.ts';
import { ConfigError, exitCodeOf } from '../../functions/core/errors.ts';
import type { Runtime } from '../../functions/core/runtime.ts';
import type { WalDeps, WalFetchResult, WalPushResult } from '../../functions/core/wal/archive.ts';
import { WAL_FETCH_ABORT_EXIT } from '../../functions/core/wal/errors.ts';
import { runCommand, type Io } from './run-command.ts';

/** The archive's dependencies; never resolves the database target (no connection is made). */
async function walDeps(rt: Runtime): Promise<WalDeps> {
  const databaseId = rt.settings.databaseId;
  if (!databaseId) {
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

export function walCommand(io: Io): Command {
  return new Command('wal')
    .description('the WAL archive: archive_command (push) and restore_command (fetch)')
    .addCommand(pushCommand(io))
    .addCommand(fetchCommand(io));
}
