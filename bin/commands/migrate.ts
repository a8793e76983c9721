import { Command, Option } from 'commander';
import type { MigrateRequest, MigrateResult, MigrationStatus } from '../../functions/core/migrate/job.ts';
import type { RuleList } from '../../functions/core/migrate/lint/format.ts';
import type { LintReport } from '../../functions/core/migrate/lint/types.ts';
import type { SafetyPoint } from '../../functions/core/migrate/safety-point.ts';
import { redact } from '../../functions/core/redact.ts';

import { parseCount, runCommand, type CommandContext, type Io } from './run-command.ts';

// Loaded on use: node-pg-migrate is only needed by these commands.
const job = () => import('../../functions/core/migrate/job.ts');
const lintJob = () => import('../../functions/core/migrate/lint/job.ts');
const lintFormat = () => import('../../functions/core/migrate/lint/format.ts');

function statusLines(s: MigrationStatus): string[] {
  const lines: string[] = [];
  for (const a of s.applied) {
    const flag = s.modified.some((m) => m.name === a.name) ? '  MODIFIED' : s.missing.some((m) => m.name === a.name) ? '  MISSING' : '';
    lines.push(`  applied  ${a.name}  (${a.runOn})${flag}`);
  }
  for (const p of s.pending) {
    const early = s.outOfOrder?.find((o) => o.name === p.name);
    lines.push(`  pending  ${p.name}${early ? `  OUT OF ORDER (sorts before the applied ${early.sortsBefore})` : ''}`);
  }
  for (const w of s.warnings ?? []) lines.push(`  warning  ${w}`);
  lines.push(`${s.applied.length} applied, ${s.pending.length} pending, ${s.modified.length} modified, ${s.missing.length} missing`);
  return lines;
}

/** What was recorded before applying (or in a dry run would be), and the way back. */
function safetyPointLines(sp: SafetyPoint): string[] {
  const lines: string[] = [];
  const would = sp.planned ? 'would record' : 'recorded';
  if (sp.backupReason) lines.push(sp.planned ? `backup      a full backup would be taken first (${sp.backupReason})` : `backup      ${sp.backupId ?? '-'}  (${sp.backupReason})`);
  if (sp.restorePoint) lines.push(`restore     ${would} ${sp.restorePoint.name}${sp.restorePoint.lsn ? ` at ${sp.restorePoint.lsn}` : ''}`);
  for (const s of sp.skipped ?? []) lines.push(`skipped     ${s}`);
  for (const c of sp.goBack ?? []) lines.push(`go back     ${c}`);
  return lines.length > 0 ? [`Safety point${sp.planned ? ' (dry run: nothing taken)' : ''}:`, ...lines.map((l) => `  ${l}`)] : [];
}

async function printResult(result: MigrateResult, { io }: CommandContext<unknown>): Promise<void> {
  // The same masking as --json: a dry run's SQL may carry a PASSWORD literal.
  const r = redact(result);
  const { findingLines } = await lintFormat();
  if (r.lint) io.out(`Lint findings (migrate.lint lets them through):\n${r.lint.findings.flatMap((f) => findingLines(f)).map((l) => `  ${l}`).join('\n')}\n`);
  const safety = r.safetyPoint ? safetyPointLines(r.safetyPoint) : [];
  if (safety.length > 0) io.out(`${safety.join('\n')}\n`);
  if (r.dryRun) {
    io.out(`Dry run: would ${r.direction === 'up' ? 'apply' : 'revert'} ${r.ran.length} migration(s). Nothing was changed.\n`);
    for (const m of r.ran) io.out(`\n-- ${m.name} (${r.direction})\n${m.sql ?? ''}\n`);
    return;
  }
  if (r.ran.length === 0) {
    io.out(r.direction === 'up' ? 'Nothing to apply: the database is up to date.\n' : 'Nothing to revert.\n');
    return;
  }
  for (const m of r.ran) io.out(`${r.direction === 'up' ? 'applied ' : 'reverted'}  ${m.name}${m.durationMs !== undefined ? `  (${m.durationMs} ms)` : ''}\n`);
}

/** up, down and to: the job reports its own failure; a usage error (`migrate to 999`) pages nobody. */
async function migrateDatabase(ctx: CommandContext<unknown>, req: MigrateRequest): Promise<MigrateResult> {
  // migrate.backupBefore backs up to the configured storage, with pg_dump (loaded only when it runs).
  const deps = await ctx.rt.migrateDeps({ runBackup: async (d) => (await import('../../functions/core/backup/backup.ts')).runBackup(d) });
  return (await job()).runMigrations(deps, req);
}

export function migrateCommand(io: Io): Command {
  const migrate = new Command('migrate')
    .description('versioned schema migrations (node-pg-migrate files, with checksums and a lock)')
    .addHelpText('after', `
Migration files live in --dir (default ./migrations): NNN_name.sql with "-- Up Migration" and
"-- Down Migration" sections, or NNN_name.js exporting up(pgm) and down(pgm). A .sql file with a
line "-- pgops:no-transaction" runs outside a transaction (CREATE INDEX CONCURRENTLY).

Examples:
  $ pgops migrate status --database-url postgres://app@db:5432/app
  $ pgops migrate up --dry-run          # show the SQL, change nothing
  $ pgops migrate up                    # apply everything pending
  $ pgops migrate down --count 2        # revert the last two
  $ pgops migrate to 003                # move to exactly 003_..., up or down
  $ pgops migrate validate              # exit 1 if an applied file was edited or deleted
  $ pgops migrate create add_tokens --sql
  $ pgops migrate lint --all            # safety rules on every file, no database needed`);

  migrate.command('up')
    .description('apply pending migrations (all by default)')
    .option('--count <n>', 'apply at most n migrations', parseCount)
    .option('--dry-run', 'print the SQL that would run; change nothing, create nothing')
    .action((_o, cmd: Command) => runCommand<{ count?: number; dryRun?: boolean }, MigrateResult>(cmd, io,
      (ctx) => migrateDatabase(ctx, { command: 'up', count: ctx.opts.count, dryRun: ctx.opts.dryRun }), printResult, { job: 'migrate' }));

  migrate.command('down')
    .description('revert the last applied migrations (1 by default)')
    .option('--count <n>', 'revert the last n migrations', parseCount)
    .option('--dry-run', 'print the SQL that would run; change nothing')
    .action((_o, cmd: Command) => runCommand<{ count?: number; dryRun?: boolean }, MigrateResult>(cmd, io,
      (ctx) => migrateDatabase(ctx, { command: 'down', count: ctx.opts.count, dryRun: ctx.opts.dryRun }), printResult, { job: 'migrate' }));

  migrate.command('to')
    .description('move up or down to exactly this migration (full name or unique prefix)')
    .argument('<migration>', 'a migration name, file name, or unique prefix such as 003')
    .option('--dry-run', 'print the SQL that would run; change nothing')
    .action((target: string, _o, cmd: Command) => runCommand<{ dryRun?: boolean }, MigrateResult>(cmd, io,
      (ctx) => migrateDatabase(ctx, { command: 'to', target, dryRun: ctx.opts.dryRun }), printResult, { job: 'migrate' }));

  migrate.addCommand(lintCommand(io));

  migrate.command('status')
    .description('list applied, pending, modified and missing migrations')
    .action((_o, cmd: Command) => runCommand(cmd, io,
      async (ctx) => (await job()).migrationStatus(await ctx.rt.migrateDeps()),
      (s, { io: o }) => o.out(`${statusLines(redact(s)).join('\n')}\n`)));

  migrate.command('validate')
    .description('exit 1 if an applied migration file was edited or deleted')
    .action((_o, cmd: Command) => runCommand(cmd, io,
      async (ctx) => (await job()).validateMigrations(await ctx.rt.migrateDeps()),
      (s, { io: o }) => o.out(`ok: ${s.applied.length} applied migration(s) match their files; ${s.pending.length} pending\n`)));

  migrate.command('create')
    .description('create the next numbered migration file with up and down parts')
    .argument('<name>', 'what the migration does, e.g. add_tokens')
    .option('--sql', 'a .sql file (default: .js)')
    .action((name: string, _o, cmd: Command) => runCommand<{ sql?: boolean }, { path: string; name: string }>(cmd, io,
      async (ctx) => (await job()).createMigration(ctx.rt.settings.migrationsDir, name, { sql: ctx.opts.sql }),
      (r, { io: o }) => o.out(`created ${r.path}\n`)));

  return migrate;
}

interface LintOptions { all?: boolean; format: 'text' | 'json' | 'github'; rules?: boolean }

const LINT_HELP = `
Lints what \`migrate up\` runs: the Up part of a .sql file, the SQL node-pg-migrate generates for a
.js file's up. The Down part is only checked for syntax. SQL inside a function body, a string or a
comment never triggers a rule.

What it lints:
  pgops migrate lint                 the pending migrations (needs a database)
  pgops migrate lint --all           every file in --dir (no database needed)
  pgops migrate lint FILE...         those files (no database needed)
With a database, each finding that locks or rewrites a table names its size and estimated rows.

Rules: \`pgops migrate lint --rules\` lists every rule with why it exists and the safe way to write
it (squawk's rule ids where squawk has the rule). A table created earlier in the same migration is
exempt from the lock rules.

Ignore comments, once you have checked a statement is safe where it runs:
  -- pgops:lint-ignore ban-drop-column, renaming-column -- the reason, for the reader
     (on the comment line(s) directly above the statement)
  -- pgops:lint-ignore-file prefer-text-field
     (anywhere in the file; in a .js migration also // pgops:lint-ignore-file ...)

Exit codes: 0 no error finding (warnings allowed), 1 an error finding, 2 bad usage.
\`migrate up\` runs the same lint first and applies nothing while an error remains
(config migrate.lint: "error" [default], "warn", "off").

Examples:
  $ pgops migrate lint --all --format github      # annotations on a pull request
  $ pgops migrate lint migrations/009_orders.sql --json
  $ pgops migrate lint --database-url postgres://app@db:5432/app   # pending, with table sizes`;

function lintCommand(io: Io): Command {
  return new Command('lint')
    .description('check migrations against the safety rules, on the real PostgreSQL parser')
    .argument('[files...]', 'migration files (default: the pending migrations, which needs a database)')
    .option('--all', 'lint every migration in --dir')
    .addOption(new Option('--format <format>', 'text, json (the same as --json) or github (workflow annotations)').choices(['text', 'json', 'github']).default('text'))
    .option('--rules', 'list the rules (id, severity, why, safe form) and exit')
    .addHelpText('after', LINT_HELP)
    .action((files: string[], _o, cmd: Command) => runCommand<LintOptions, LintReport | RuleList>(cmd, io,
      async ({ rt, opts }) => {
        if (opts.rules) return (await lintFormat()).ruleList();
        const { databaseConfigured, runLint } = await lintJob();
        const database = databaseConfigured(rt.settings) ? await rt.migrateDeps() : undefined;
        return runLint({ dir: rt.settings.migrationsDir, cwd: process.cwd(), logger: rt.logger, database }, { files, all: opts.all ?? false });
      },
      async (report, { io: o, opts }) => o.out(await printLint(report, opts.format)),
      { exitCode: async (r) => ('findings' in r && (await lintFormat()).hasErrors(r) ? 1 : 0) }));
}

async function printLint(report: LintReport | RuleList, format: LintOptions['format']): Promise<string> {
  const { formatGithub, formatRules, formatText } = await lintFormat();
  if (format === 'json') return `${JSON.stringify(redact(report), null, 2)}\n`;
  if ('rules' in report) return formatRules(report);
  // The same masking as --json: a statement may carry a PASSWORD literal.
  const r = redact(report);
  return format === 'github' ? formatGithub(r) : formatText(r);
}
