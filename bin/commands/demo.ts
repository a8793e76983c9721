import { Command } from 'commander';
import type { DemoReport } from '../demo/demo.ts';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createTextLogger } from '../../functions/core/logger.ts';
import { runCommand, type Io } from './run-command.ts';

/** The repository's example config (cleanup rules for the example schema), when run from the repo. */
function defaultDemoConfig(): string | undefined {
  const file = resolve('pgops.example.json');
  return existsSync(file) ? file : undefined;
}

export function demoCommand(io: Io): Command {
  return new Command('demo')
    .description('the whole life cycle on an embedded PostgreSQL and local storage (no AWS account needed)')
    .addHelpText('after', `
Starts a throwaway PostgreSQL from the local server binaries (Debian: the "postgresql" package),
applies the migrations in --dir, shows their status, reverts one and re-applies it, validates the
checksums, then stops the server and removes its data. This is what "npm start" runs.`)
    .action((_o, cmd: Command) => runCommand<object, DemoReport>(cmd, io,
      async (ctx) => (await import('../demo/demo.ts')).runDemo({
        migrationsDir: ctx.rt.settings.migrationsDir,
        configFile: ctx.rt.settings.configFile ?? defaultDemoConfig(),
        pgBinDir: ctx.rt.settings.pgBinDir,
        // The narration says what happens; job logs only when asked for (-v) or when something is wrong.
        logger: ctx.opts.verbose ? ctx.rt.logger : createTextLogger({ level: 'warn', write: io.err }),
        // Narration goes to stdout, unless stdout is reserved for --json.
        say: (line) => (ctx.opts.json ? io.err : io.out)(`${line}\n`),
      }),
      () => {}));
}
