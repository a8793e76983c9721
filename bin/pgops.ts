// The operator CLI. Thin: commander parses, the core runs the job, this prints.
import { Command, CommanderError, Option } from 'commander';
import { backupCommand, backupsCommand, restoreCommand } from './commands/backup.ts';
import { physicalCommands } from './commands/basebackup.ts';
import { cleanupCommand } from './commands/cleanup.ts';
import { demoCommand } from './commands/demo.ts';
import { healthCommand } from './commands/health.ts';
import { migrateCommand } from './commands/migrate.ts';
import { pitrCommand } from './commands/pitr.ts';
import { walCommand } from './commands/wal.ts';
import { processIo, type Io } from './commands/run-command.ts';
import { redactString } from '../functions/core/redact.ts';
import { WAL_FETCH_ABORT_EXIT } from '../functions/core/wal/errors.ts';

export function buildProgram(io: Io = processIo): Command {
  const program = new Command('pgops')
    .description('PostgreSQL operations: migrations, backups, restores, health checks and cleanup')
    .version('0.1.0')
    .addOption(new Option('--database-url <url>', 'postgres://user:password@host:5432/db (or DATABASE_URL, or PGOPS_DATABASE_SECRET_ID)'))
    .addOption(new Option('--storage <url>', 's3://bucket/prefix or file:///absolute/path (or PGOPS_STORAGE)'))
    .addOption(new Option('--dir <path>', 'migrations directory (or PGOPS_MIGRATIONS_DIR; default ./migrations)'))
    .addOption(new Option('--config <file>', 'JSON config file: thresholds, retention, cleanup rules (or PGOPS_CONFIG)'))
    .addOption(new Option('--database-id <id>', "the database's folder in storage (or PGOPS_DATABASE_ID; default: the connection's database name)"))
    .option('--json', 'print the result as one JSON document on stdout (logs stay on stderr)')
    .option('-q, --quiet', 'log warnings and errors only')
    .option('-v, --verbose', 'log debug detail, including the SQL node-pg-migrate runs')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', `
Exit codes: 0 success, 1 the operation failed, 2 bad usage or configuration.
pgops health follows the monitoring-plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
pgops wal fetch (restore_command): 0 restored, 1 not in the archive, 126 any other failure (recovery aborts).
Passwords never appear in output: connections print as postgres://user:***@host:5432/db.

Try it without a database: npm start (= pgops demo).`);
  program.configureOutput({ writeOut: io.out, writeErr: io.err });
  program.exitOverride();
  program.addCommand(migrateCommand(io));
  program.addCommand(backupCommand(io));
  program.addCommand(backupsCommand(io));
  program.addCommand(restoreCommand(io));
  program.addCommand(healthCommand(io));
  program.addCommand(cleanupCommand(io));
  physicalCommands(io).forEach((c) => program.addCommand(c));
  program.addCommand(walCommand(io));
  program.addCommand(pitrCommand(io));
  program.addCommand(demoCommand(io));
  // Every command shares the override, so usage errors exit 2 rather than commander's 1; under
  // `health` they exit 3 (UNKNOWN): monitoring must not read a bad flag as CRITICAL.
  const applyOverride = (c: Command, usageExit: number) => {
    c.exitOverride((err) => { throw err.exitCode === 0 ? err : new CommanderError(usageExit, err.code, err.message); });
    c.configureOutput({ writeOut: io.out, writeErr: io.err });
    c.commands.forEach((sub) => applyOverride(sub, usageExit));
  };
  applyOverride(program, USAGE_EXIT);
  program.commands.forEach((c) => applyOverride(c, c.name() === 'health' ? HEALTH_UNKNOWN_EXIT : USAGE_EXIT));
  // A restore_command that exits 2 would read as "no such file" and end recovery early: abort instead.
  const walFetch = program.commands.find((c) => c.name() === 'wal')?.commands.find((c) => c.name() === 'fetch');
  if (walFetch) applyOverride(walFetch, WAL_FETCH_ABORT_EXIT);
  return program;
}

const USAGE_EXIT = 2;
const HEALTH_UNKNOWN_EXIT = 3;

/** `--json` among the options (before a `--`), so a usage error still answers with a JSON document. */
function wantsJson(argv: string[]): boolean {
  const args = argv.slice(2);
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).includes('--json');
}

/** The error document run-command prints for a failed job, for a usage error commander raised. */
function usageErrorDocument(err: CommanderError): string {
  const message = err.code === 'commander.help' ? 'no command given (run with --help for usage)' : redactString(err.message.replace(/^error: /, ''));
  return `${JSON.stringify({ error: { type: 'UsageError', message, exitCode: err.exitCode } }, null, 2)}\n`;
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return 0; // help or version
      // commander has already printed the message on stderr
      if (wantsJson(argv)) io.out(usageErrorDocument(err));
      return err.exitCode;
    }
    throw err;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}

// bin/pgops.ts or .js by hand, and the bundled pgops.mjs the Fargate container runs.
const invokedDirectly = process.argv[1] !== undefined && /pgops(\.ts|\.m?js)?$/.test(process.argv[1]);
if (invokedDirectly) {
  const code = await main(process.argv);
  process.exitCode = code;
}
