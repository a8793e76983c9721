// The operator CLI. Thin: commander parses, the core runs the job, this prints.
import { Command, CommanderError, Option } from 'commander';
import { backupCommand, backupsCommand, restoreCommand } from './commands/backup.ts';
import { cleanupCommand } from './commands/cleanup.ts';
import { demoCommand } from './commands/demo.ts';
import { healthCommand } from './commands/health.ts';
import { migrateCommand } from './commands/migrate.ts';
import { processIo, type Io } from './commands/run-command.ts';

export function buildProgram(io: Io = processIo): Command {
  const program = new Command('pgops')
    .description('PostgreSQL operations: migrations, backups, restores, health checks and cleanup')
    .version('0.1.0')
    .addOption(new Option('--database-url <url>', 'postgres://user:password@host:5432/db (or DATABASE_URL, or PGOPS_DATABASE_SECRET_ID)'))
    .addOption(new Option('--storage <url>', 's3://bucket/prefix or file:///absolute/path (or PGOPS_STORAGE)'))
    .addOption(new Option('--dir <path>', 'migrations directory (or PGOPS_MIGRATIONS_DIR; default ./migrations)'))
    .addOption(new Option('--config <file>', 'JSON config file: thresholds, retention, cleanup rules (or PGOPS_CONFIG)'))
    .option('--json', 'print the result as one JSON document on stdout (logs stay on stderr)')
    .option('-q, --quiet', 'log warnings and errors only')
    .option('-v, --verbose', 'log debug detail, including the SQL node-pg-migrate runs')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', `
Exit codes: 0 success, 1 the operation failed, 2 bad usage or configuration.
pgops health follows the monitoring-plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
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
  program.addCommand(demoCommand(io));
  // Every subcommand shares the override, so usage errors exit 2 rather than 1.
  const applyOverride = (c: Command) => {
    c.exitOverride();
    c.configureOutput({ writeOut: io.out, writeErr: io.err });
    c.commands.forEach(applyOverride);
  };
  program.commands.forEach(applyOverride);
  return program;
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      // commander has already printed the message
      return 2;
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
