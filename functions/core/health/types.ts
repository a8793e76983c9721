// Shapes of the health job (DESIGN.md `health --json`): fields may be added, never renamed.
import type { ClientFactory } from '../aws/clients.ts';
import type { Rds } from '../aws/rds.ts';
import type { FileConfig } from '../config.ts';
import type { DbSessionOptions, DbTarget } from '../db.ts';
import { PgopsError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Storage } from '../storage/types.ts';

/** `info` is reported (unused indexes) but counts as ok for the overall status. */
export type CheckStatus = 'ok' | 'info' | 'warning' | 'critical' | 'unknown';
export type OverallStatus = 'ok' | 'warning' | 'critical' | 'unknown';

export const CHECK_NAMES = [
  'connection',
  'migrations',
  'backup-age',
  'backup-size',
  'restore-test',
  'connections',
  'long-running-queries',
  'blocked-queries',
  'bloat',
  'database-size',
  'unused-indexes',
  'wal-archiving',
  'restore-window',
  'replication',
  'replica',
] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export interface CheckResult {
  name: CheckName;
  status: CheckStatus;
  summary: string;
  value?: number;
  threshold?: number;
  details?: Record<string, unknown>;
}

export interface HealthResult {
  status: OverallStatus;
  checks: CheckResult[];
  database: string;
  environment: string;
  checkedAt: string;
  durationMs: number;
}

export type HealthThresholds = FileConfig['health'];

/** Tuning that has no config key (yet); tests shorten these. */
export interface HealthOptions {
  /** A lock wait shorter than this is normal traffic, not a blocked query. Default 10 s. */
  blockedWaitSeconds?: number;
  /** statement_timeout for the health queries, so a stuck catalog never hangs the job. Default 30 s. */
  queryTimeoutMs?: number;
  /** Replica replay lag above this is a warning. Default 60 s. */
  replicationLagSeconds?: number;
  /** connections: use of max_connections. Defaults 0.8 and 0.95. */
  connectionsWarnRatio?: number;
  connectionsCriticalRatio?: number;
  /** Tables with fewer live rows are not judged for bloat. Default 10,000. */
  bloatMinRows?: number;
  /** Indexes smaller than this are not reported as unused. Default 1 MiB. */
  unusedIndexMinBytes?: number;
}

export interface HealthDeps {
  target: DbTarget;
  session: DbSessionOptions;
  /** Without storage the backup checks are `unknown` and database growth is not tracked. */
  storage?: Storage;
  /** The copy of the backups (config health.replicaStorage): the `replica` check runs only with it. */
  replicaStorage?: Storage;
  logger: Logger;
  /** The id used in the storage layout and alerts. */
  databaseId: string;
  environment: string;
  config: FileConfig;
  migrationsDir: string;
  clock?: () => Date;
  options?: HealthOptions;
  /** Set when the database is RDS/Aurora (config managed.*): the restore-window check runs. */
  rds?: ClientFactory<Rds>;
}

/** Ranking for "worst": not being able to check is worse than a known warning. */
const RANK: Record<CheckStatus, number> = { ok: 0, info: 0, warning: 1, unknown: 2, critical: 3 };

export function statusRank(s: CheckStatus): number {
  return RANK[s];
}

export function worstStatus(statuses: Iterable<CheckStatus>): OverallStatus {
  let worst: OverallStatus = 'ok';
  for (const s of statuses) {
    const o: OverallStatus = s === 'info' ? 'ok' : s;
    if (RANK[o] > RANK[worst]) worst = o;
  }
  return worst;
}

/** Monitoring-plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. */
export function healthExitCode(status: OverallStatus): number {
  return { ok: 0, warning: 1, critical: 2, unknown: 3 }[status];
}

/** A failure to run the health job at all: UNKNOWN (exit 3) under the monitoring-plugin convention. */
export class HealthUnknownError extends PgopsError {
  override readonly exitCode: number = 3;
}
