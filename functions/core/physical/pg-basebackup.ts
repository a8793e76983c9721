// Running pg_basebackup for `pgops basebackup`: its argv and environment (the password only ever in
// PGPASSWORD), the version it must have, and its failures turned into what an operator should do.
import { join } from 'node:path';
import type { DbTarget } from '../db.ts';
import { describeExit, majorOf, pgEnv, type PgCommand, type ToolExit, type ToolVersion } from '../pgtools/tools.ts';
import { BaseBackupError } from './errors.ts';

export interface BaseBackupCommandContext {
  binDir: string;
  /** Names pg_basebackup's walsender in pg_stat_activity (the job watches its phase). */
  applicationName: string;
  /** backup_label's LABEL (and the archived .backup file's). */
  label: string;
  connectTimeoutSeconds?: number;
  baseEnv?: NodeJS.ProcessEnv;
}

/**
 * The whole cluster as one tar on stdout, with no WAL (`-X none`): the WAL comes from the archive,
 * so the server keeps no WAL for the backup and there is a single stream to store.
 */
export function buildPgBasebackupCommand(target: DbTarget, ctx: BaseBackupCommandContext): PgCommand {
  return {
    command: join(ctx.binDir, 'pg_basebackup'),
    // Never prompt (-w): no terminal in a task, and a prompt would hang the job.
    args: ['--format=tar', '--pgdata=-', '--wal-method=none', '--checkpoint=fast', '--no-password', '--verbose', `--label=${ctx.label}`],
    env: pgEnv(target, { applicationName: ctx.applicationName, connectTimeoutSeconds: ctx.connectTimeoutSeconds, baseEnv: ctx.baseEnv }),
  };
}

/** The oldest server whose base backups carry a manifest with the WAL range (tar-scan.ts reads it). */
export const MIN_SERVER_VERSION_NUM = 130000;

/** pg_basebackup must be at least the server's major version, and the server recent enough for a manifest. */
export function checkBaseBackupVersions(tool: ToolVersion, serverVersionNum: number): void {
  if (serverVersionNum < MIN_SERVER_VERSION_NUM) {
    throw new BaseBackupError(`PostgreSQL ${majorOf(serverVersionNum)} is too old for pgops basebackup: it needs PostgreSQL 13 or later (whose base backups carry a manifest naming their WAL range)`);
  }
  if (Math.floor(tool.num / 10000) < Math.floor(serverVersionNum / 10000)) {
    throw new BaseBackupError(`pg_basebackup ${majorOf(tool.num)} is older than the server (PostgreSQL ${majorOf(serverVersionNum)}): install the PostgreSQL ${majorOf(serverVersionNum)} client tools (or newer) or point PGOPS_PG_BINDIR at them`);
  }
}

const HINTS: Array<[RegExp, (user: string) => string]> = [
  [/must be superuser or replication role/i, (u) => `role "${u}" may not stream a base backup: grant it REPLICATION (ALTER ROLE "${u}" REPLICATION)`],
  [/no pg_hba\.conf entry for replication connection/i, (u) => `pg_hba.conf has no "replication" line for role "${u}" from this host: add one, e.g. "host replication ${u} <this host's address>/32 scram-sha-256", then SELECT pg_reload_conf()`],
  [/(number of requested standby connections exceeds|exceeds max_wal_senders)/i, () => 'every WAL sender slot is taken: raise max_wal_senders on the server (needs a restart)'],
  [/can only write single tablespace to stdout/i, () => 'the cluster has tablespaces besides the default ones, which a streamed base backup (one tar on stdout) cannot hold'],
];

/** pg_basebackup's failure, with what to do about it when the cause is a known one. */
export function describeBaseBackupExit(exit: ToolExit, user: string): string {
  const described = describeExit('pg_basebackup', exit);
  const hint = HINTS.find(([pattern]) => pattern.test(exit.stderr));
  return hint ? `${described} (${hint[1](user)})` : described;
}
