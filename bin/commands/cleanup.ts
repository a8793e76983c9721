import { Command } from 'commander';
import type { CleanupResult } from '../../functions/core/cleanup/job.ts';
import { runCommand, type CommandContext, type Io } from './run-command.ts';

function printResult(r: CleanupResult, { io }: CommandContext<unknown>): void {
  const would = r.dryRun ? 'would be deleted' : 'deleted';
  if (r.dryRun) io.out('Dry run: nothing was deleted.\n');
  io.out(r.rows.length === 0 ? 'rows: no cleanup rules configured (cleanup.rules)\n' : 'rows:\n');
  for (const row of r.rows) {
    const tail = row.error ? `  FAILED: ${row.error}` : row.complete ? '' : '  (stopped at the deadline; the next run continues)';
    io.out(`  ${row.rule} (${row.table}): ${row.deleted} ${would}${tail}\n`);
  }
  for (const f of r.functions) io.out(`function ${f.name}(): ${f.called ? `called, returned ${JSON.stringify(f.result)}` : f.error ? `FAILED: ${f.error}` : r.dryRun ? 'would be called' : 'not called (deadline)'}\n`);
  for (const v of r.vacuum) io.out(`VACUUM (ANALYZE) ${v.table}: ${v.done ? 'done' : v.error ? `FAILED: ${v.error}` : r.dryRun ? 'would run' : 'not run (deadline)'}\n`);
  const b = r.backups;
  if (b.skipped) {
    io.out(`backups: retention skipped (${b.skipped})\n`);
  } else {
    io.out(`backups${b.storage ? ` (${b.storage})` : ''}: ${b.kept.length} kept, ${b.deleted.length} ${would}${b.deleted.length > 0 ? `: ${b.deleted.join(', ')}` : ''}\n`);
    for (const o of b.orphans ?? []) io.out(`  orphan ${o.id} (no manifest, ${o.keys.length} file(s), last written ${o.lastModified}): ${r.dryRun ? 'would be removed' : 'removed'}\n`);
    for (const p of b.pending ?? []) io.out(`  ${p.id}: files without a manifest, written ${p.lastModified}: left alone (less than a day old)\n`);
    for (const u of b.unreadable ?? []) io.out(`  ${u}: manifest unreadable: left alone\n`);
  }
  if (!r.complete && !r.dryRun) io.out('Not complete: run again to continue.\n');
}

export function cleanupCommand(io: Io): Command {
  return new Command('cleanup')
    .description('delete expired rows in batches (cleanup.rules) and apply backup retention (retention.*)')
    .option('--dry-run', 'report exactly what would be deleted (rows per rule, backup ids); delete nothing')
    .addHelpText('after', `
Rows: each rule in the config file's cleanup.rules deletes rows whose timestampColumn is older
than olderThanDays, in batches of batchSize (default 5000), each its own short transaction under
lock_timeout. Tables and columns are checked against the catalog before anything is deleted.
Then cleanup.callFunctions are called and, with cleanup.vacuumAnalyze, each table is vacuumed.

Backups (with --storage): a backup is kept if any of retention.keepLast, keepDaily, keepWeekly or
keepMonthly keeps it; the newest is always kept. A manifest is deleted before its data. Files
without a manifest older than a day (a crashed upload) are removed.

Example config (pgops.json):
  { "retention": { "keepLast": 7, "keepDaily": 7, "keepWeekly": 4, "keepMonthly": 12 },
    "cleanup": { "rules": [{ "name": "expired sessions", "table": "user_sessions",
                             "timestampColumn": "expires_at", "olderThanDays": 1 }] } }

Examples:
  $ pgops cleanup --config pgops.json --dry-run          # what would go; nothing is deleted
  $ pgops cleanup --config pgops.json --storage s3://my-backups/pgops
  $ pgops cleanup --config pgops.json --json`)
    .action((_o, cmd: Command) => runCommand<{ dryRun?: boolean }, CleanupResult>(cmd, io, async (ctx) => {
      const { runCleanup } = await import('../../functions/core/cleanup/job.ts');
      return runCleanup(await ctx.rt.cleanupDeps(), { dryRun: ctx.opts.dryRun ?? false });
    }, printResult, { job: 'cleanup' }));
}
