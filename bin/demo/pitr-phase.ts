// The demo's point-in-time recovery: the cluster archives every WAL segment through `pgops wal
// push`; a base backup; rows written after it; a restore point; a bad DELETE; the restore window;
// recovery to the restore point into a new database; the deleted rows are back, the later rows kept.
import type pg from 'pg';
import type { Alerter } from '../../functions/core/alerts/alerter.ts';
import type { FileConfig } from '../../functions/core/config.ts';
import { withClient, withDatabase, type DbTarget } from '../../functions/core/db.ts';
import { PgopsError } from '../../functions/core/errors.ts';
import type { Logger } from '../../functions/core/logger.ts';
import { runBaseBackup } from '../../functions/core/physical/basebackup.ts';
import { runPitr, type PitrResult } from '../../functions/core/pitr/job.ts';
import type { Storage } from '../../functions/core/storage/types.ts';
import { formatBytes } from '../../functions/core/format.ts';
import { readWalStatus } from '../../functions/core/wal/status.ts';

export interface PitrPhaseContext {
  step: <T>(name: string, fn: () => Promise<T>, describe: (r: T) => string) => Promise<T>;
  config: FileConfig;
  admin: DbTarget;
  target: DbTarget;
  storage: Storage;
  alerter: Alerter;
  logger: Logger;
  databaseId: string;
  binDir: string;
  /** How the server runs this CLI (restore_command). */
  cliArgv: string[];
}

const RESTORE_POINT = 'before-bad-delete';
const BAD_DELETE = "DELETE FROM users WHERE email LIKE 'user1%'";

async function count(c: pg.ClientBase, sql: string): Promise<number> {
  return (await c.query<{ n: number }>(`SELECT (${sql})::int AS n`)).rows[0]?.n ?? 0;
}

/** Switch to a new WAL segment and wait (bounded) until the server has archived it. */
async function archiveCurrentWal(c: pg.ClientBase, timeoutMs = 60_000): Promise<string> {
  const segment = (await c.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f')).rows[0]!.f;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const a = (await c.query<{ last: string | null; failed: string }>('SELECT last_archived_wal AS last, failed_count::text AS failed FROM pg_stat_archiver')).rows[0];
    if (a?.last && a.last.slice(0, 24) >= segment) return segment;
    if (Date.now() > deadline) throw new PgopsError(`segment ${segment} was not archived within ${timeoutMs / 1000} s (archive_command failures: ${a?.failed ?? '?'}; see the server log)`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function pitrPhase(ctx: PitrPhaseContext): Promise<void> {
  const { step, config, target } = ctx;
  const deps = { target, storage: ctx.storage, logger: ctx.logger, alerter: ctx.alerter, databaseId: ctx.databaseId, environment: config.environment, session: config.database, binDir: ctx.binDir };
  await step('basebackup (pg_basebackup -Ft streamed to storage; its WAL from the archive)', () => runBaseBackup({ ...deps, physical: config.physical }),
    (m) => `base backup ${m.id}: ${formatBytes(m.bytes)} (${m.compression}), WAL ${m.startSegment}..${m.stopSegment} archived, timeline ${m.timeline}`);
  const before = await step(`write rows, create restore point "${RESTORE_POINT}", then a bad DELETE`, () => withClient(target, config.database, async (c) => {
    await c.query("INSERT INTO users (email, password_hash, display_name) SELECT 'late' || g || '@example.com', 'x', 'Late ' || g FROM generate_series(1, 25) g");
    const users = await count(c, 'SELECT count(*) FROM users');
    const tokens = await count(c, 'SELECT count(*) FROM refresh_tokens');
    await c.query('SELECT pg_create_restore_point($1)', [RESTORE_POINT]);
    const deleted = (await c.query(BAD_DELETE)).rowCount ?? 0;
    const segment = await archiveCurrentWal(c);
    return { users, tokens, deleted, segment };
  }), (r) => `25 rows inserted after the base backup (${r.users} users, ${r.tokens} refresh tokens), restore point created;\n${BAD_DELETE}: ${r.deleted} users gone (and their tokens, ON DELETE CASCADE); WAL archived through ${r.segment}`);
  await step('wal status (the restore window)', async () => {
    const status = await readWalStatus({ storage: ctx.storage, databaseId: ctx.databaseId, logger: ctx.logger });
    if (!status.ok) throw new PgopsError(`the archive is not whole: ${status.problems.join('; ')}`);
    return status;
  }, (r) => `restore window on timeline ${r.window.timeline}: from ${r.window.from?.time ?? '?'} (end of base backup ${r.window.from?.backupId ?? '?'}) to ${r.window.to?.time ?? '?'} (end of ${r.window.to?.segment ?? '?'}); no gap`);
  const recovered = await step(`pitr --target-name ${RESTORE_POINT} --target-db pgops_demo_pitr --create`, () => runPitr(
    { ...deps, target: () => Promise.resolve(target), serverBinDir: ctx.binDir, walFetch: { argv: ctx.cliArgv } },
    { target: { targetName: RESTORE_POINT }, output: { targetDb: 'pgops_demo_pitr', create: true } },
  ) as Promise<PitrResult>, (r) => `recovered base backup ${r.backupId} + ${r.walSegments} WAL segment(s) to LSN ${r.recoveredTo.lsn} in a scratch cluster (no TCP listener), restored into pgops_demo_pitr; scratch cluster removed`);
  await step('compare: the deleted rows are back, the rows written after the base backup are kept', () => withClient(withDatabase(ctx.admin, 'pgops_demo_pitr'), config.database, async (c) => {
    const users = await count(c, 'SELECT count(*) FROM users');
    const tokens = await count(c, 'SELECT count(*) FROM refresh_tokens');
    const late = await count(c, "SELECT count(*) FROM users WHERE email LIKE 'late%'");
    if (users !== before.users || tokens !== before.tokens || late !== 25) {
      throw new PgopsError(`recovered rows differ: users ${users} (expected ${before.users}), refresh tokens ${tokens} (expected ${before.tokens}), late users ${late} (expected 25)`);
    }
    return { users, tokens, recoveredTo: recovered.recoveredTo.lsn };
  }), (r) => `pgops_demo_pitr has all ${r.users} users and ${r.tokens} refresh tokens as they were at the restore point; the source still has the DELETE`);
}
