import { Command } from 'commander';
import type { CleanupResult } from '../../functions/core/cleanup/job.ts';
import { formatBytes } from '../../functions/core/format.ts';
import { runCommand, type CommandContext, type Io } from './run-command.ts';

/** Retention's part: kept and deleted backups with their kind, then everything left behind by crashes. */
function printBackups(b: CleanupResult['backups'], dryRun: boolean, io: Io): void {
  if (b.skipped) {
    io.out(`backups: retention skipped (${b.skipped})\n`);
    return;
  }
  const would = dryRun ? 'would be deleted' : 'deleted';
  const removed = dryRun ? 'would be removed' : 'removed';
  const named = (id: string) => (b.content?.[id] && b.content[id] !== 'full' ? `${id} (${b.content[id]})` : id);
  io.out(`backups${b.storage ? ` (${b.storage})` : ''}: ${b.kept.length} kept, ${b.deleted.length} ${would}${b.deleted.length > 0 ? `: ${b.deleted.map(named).join(', ')}` : ''}\n`);
  const partialKept = b.kept.filter((id) => b.content?.[id] && b.content[id] !== 'full');
  if (partialKept.length > 0) io.out(`  partial backups kept apart from the full ones: ${partialKept.map(named).join(', ')}\n`);
  for (const o of b.orphans ?? []) io.out(`  orphan ${o.id} (no manifest, ${o.keys.length} file(s), last written ${o.lastModified}): ${removed}\n`);
  for (const p of b.pending ?? []) io.out(`  ${p.id}: files without a manifest, written ${p.lastModified}: left alone (less than a day old)\n`);
  for (const i of b.incomplete ?? []) io.out(`  unfinished ${i.kind === 'multipart' ? `multipart upload ${i.uploadId ?? ''}` : 'temporary file'} ${i.key} (since ${i.startedAt}): ${removed}\n`);
  for (const i of b.incompleteRecent ?? []) io.out(`  unfinished ${i.kind} ${i.key} (since ${i.startedAt}): left alone (less than a day old)\n`);
  if (b.incompleteNote) io.out(`  ${b.incompleteNote}\n`);
  for (const l of b.locked ?? []) io.out(`  ${l.what === 'orphan' ? `${l.id} (files without a manifest)` : l.id}: kept, locked until ${l.until} (Object Lock)\n`);
  const invalid = b.invalid ?? (b.unreadable ?? []).map((id) => ({ id, problem: 'unreadable' }));
  for (const u of invalid) io.out(`  ${u.id}: invalid manifest (${u.problem}): left alone for a human to look at; protects no backup\n`);
}

/** Base backups and the WAL archive: printed only where point-in-time recovery is set up (or its retention failed). */
function printPhysicalAndWal(r: CleanupResult, io: Io): void {
  const p = r.physical;
  const w = r.wal;
  const would = r.dryRun ? 'would be deleted' : 'deleted';
  if (p.skipped?.startsWith('failed') || w.skipped?.startsWith('failed')) {
    io.out(`base backups and WAL: retention FAILED (${p.skipped ?? w.skipped})\n`);
    return;
  }
  const orphans = p.orphans ?? [];
  const invalid = p.invalid ?? [];
  if (p.kept.length + p.deleted.length + orphans.length + invalid.length === 0 && w.deleted === 0) return;
  io.out(`base backups: ${p.kept.length} kept, ${p.deleted.length} ${would}${p.deleted.length > 0 ? `: ${p.deleted.join(', ')}` : ''}\n`);
  for (const o of orphans) io.out(`  ${o.id}: files without a manifest (last written ${o.lastModified}): ${r.dryRun ? 'would be removed' : 'removed'}\n`);
  for (const u of invalid) io.out(`  ${u.id}: invalid manifest (${u.problem}): left alone for a human to look at; protects no WAL\n`);
  for (const l of p.locked ?? []) io.out(`  ${l.what === 'orphan' ? `${l.id} (files without a manifest)` : l.id}: kept, locked until ${l.until} (Object Lock)\n`);
  if (w.locked) io.out(`WAL: ${w.locked} file(s) no kept base backup needs kept, locked until ${w.lockedUntil ?? '?'} (Object Lock)\n`);
  if (w.note) io.out(`WAL: ${w.note}\n`);
  else if (w.deleted === 0) io.out(`WAL: nothing older than ${w.keptFrom ?? '?'} (the oldest kept base backup's start) to delete\n`);
  else io.out(`WAL: ${w.deleted} file(s) ${would} (${formatBytes(w.bytes)}, ${w.first} .. ${w.last}); kept from ${w.keptFrom} (the oldest kept base backup's start)\n`);
}

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
  printBackups(r.backups, r.dryRun, io);
  printPhysicalAndWal(r, io);
  for (const d of r.scratch) io.out(`scratch ${d}: removed (left on this machine by a killed job)\n`);
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
keepMonthly keeps it; the newest is always kept. Full backups are counted apart from partial ones
(schema-only, data-only, table filters), which follow the same rules among themselves and never
push out a full backup. A manifest is deleted before its data. What crashed writers left behind,
once older than a day, is removed: files without a manifest, temporary files, and unfinished S3
multipart uploads (where the store can list them). An invalid manifest is reported, never deleted.

Base backups (pgops basebackup) follow the same keep rules. Then the WAL archive: every WAL file
older than the oldest kept base backup's start is deleted, on every timeline, and everything from
there on is kept, so recovery from any kept base backup still reaches the newest segment. With no
valid base backup, no WAL is deleted.

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
