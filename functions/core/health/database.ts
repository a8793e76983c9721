// The checks that query PostgreSQL. Each returns one CheckResult or throws; the job turns a throw
// into `unknown`, so one check that cannot run (say, permission denied) never hides the others.
// Every query leaves out pgops' own backend (pg_backend_pid()).
import type pg from 'pg';
import type { CheckResult, HealthThresholds } from './types.ts';
import { formatBytes } from '../format.ts';
import { parseLsn, parseSegmentFileName, segmentNumberOf, segmentStartLsn } from '../wal/lsn.ts';

export interface DbCheckContext {
  client: pg.Client;
  thresholds: HealthThresholds;
  serverVersion: number;
  /** The role can see every session (superuser, pg_read_all_stats or pg_monitor). */
  seesAllSessions: boolean;
  blockedWaitSeconds: number;
  replicationLagSeconds: number;
  connectionsWarnRatio: number;
  connectionsCriticalRatio: number;
  bloatMinRows: number;
  unusedIndexMinBytes: number;
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const round = (v: number, digits = 1): number => Number(v.toFixed(digits));

export function formatSeconds(s: number): string {
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} days`;
}

const HIDDEN_NOTE = 'grant pg_monitor (or pg_read_all_stats) to the health role to see other users\' sessions';

/** Facts every check needs, read once. */
export async function readServerFacts(client: pg.Client): Promise<{ serverVersion: number; seesAllSessions: boolean }> {
  const r = await client.query<{ v: string; all: boolean }>(
    "SELECT current_setting('server_version_num') AS v, pg_has_role('pg_read_all_stats', 'USAGE') AS all",
  );
  return { serverVersion: Number(r.rows[0]?.v ?? 0), seesAllSessions: r.rows[0]?.all === true };
}

export async function checkConnections(ctx: DbCheckContext): Promise<CheckResult> {
  // Without pg_read_all_stats, other users' sessions show no backend_type: count those that sit in a database.
  const r = await ctx.client.query<{ max: string; reserved: string; used: string; active: string; idle_in_tx: string }>(`
    SELECT current_setting('max_connections') AS max,
           current_setting('superuser_reserved_connections') AS reserved,
           count(*) FILTER (WHERE backend_type = 'client backend' OR (backend_type IS NULL AND datname IS NOT NULL)) + 1 AS used,
           count(*) FILTER (WHERE state = 'active' AND backend_type = 'client backend') AS active,
           count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_tx
      FROM pg_stat_activity
     WHERE pid <> pg_backend_pid()`);
  const row = r.rows[0]!;
  const max = num(row.max);
  const used = num(row.used); // +1: our own connection occupies a slot too
  const ratio = max > 0 ? used / max : 0;
  const status = ratio >= ctx.connectionsCriticalRatio ? 'critical' : ratio >= ctx.connectionsWarnRatio ? 'warning' : 'ok';
  return {
    name: 'connections',
    status,
    summary: `${used} of ${max} connections in use (${Math.round(ratio * 100)}%)`,
    value: round(ratio, 3),
    threshold: status === 'critical' ? ctx.connectionsCriticalRatio : ctx.connectionsWarnRatio,
    details: {
      used,
      max,
      superuserReserved: num(row.reserved),
      active: num(row.active),
      idleInTransaction: num(row.idle_in_tx),
      ...(ctx.seesAllSessions ? {} : { approximate: true, note: HIDDEN_NOTE }),
    },
  };
}

async function hiddenSessions(ctx: DbCheckContext): Promise<number> {
  if (ctx.seesAllSessions) return 0;
  const r = await ctx.client.query<{ n: string }>(
    "SELECT count(*) AS n FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type IS NULL AND datname IS NOT NULL",
  );
  return num(r.rows[0]?.n);
}

export async function checkLongRunning(ctx: DbCheckContext): Promise<CheckResult> {
  const limit = ctx.thresholds.longRunningQuerySeconds;
  const r = await ctx.client.query<{ pid: number; usename: string | null; datname: string | null; application_name: string | null; seconds: number; wait_event_type: string | null; query: string | null; total: string }>(`
    SELECT pid, usename, datname, application_name,
           extract(epoch FROM clock_timestamp() - query_start)::float8 AS seconds,
           wait_event_type, left(query, 200) AS query, count(*) OVER () AS total
      FROM pg_stat_activity
     WHERE pid <> pg_backend_pid()
       AND backend_type = 'client backend'
       AND state = 'active'
       AND query_start < clock_timestamp() - make_interval(secs => $1)
     ORDER BY query_start
     LIMIT 20`, [limit]);
  const total = num(r.rows[0]?.total);
  const queries = r.rows.map((q) => ({
    pid: q.pid,
    durationSeconds: Math.round(q.seconds),
    user: q.usename,
    database: q.datname,
    application: q.application_name,
    waiting: q.wait_event_type,
    query: q.query,
  }));
  const hidden = await hiddenSessions(ctx);
  if (total > 0) {
    const first = queries[0]!;
    return {
      name: 'long-running-queries',
      status: 'warning',
      summary: `${total} quer${total === 1 ? 'y' : 'ies'} active longer than ${formatSeconds(limit)}; longest: pid ${first.pid}, ${formatSeconds(first.durationSeconds)}: ${oneLine(first.query ?? '')}`,
      value: first.durationSeconds,
      threshold: limit,
      details: { count: total, queries, ...(hidden > 0 ? { hiddenSessions: hidden, note: HIDDEN_NOTE } : {}) },
    };
  }
  if (hidden > 0) {
    return {
      name: 'long-running-queries',
      status: 'unknown',
      summary: `cannot see the queries of ${hidden} other session(s): ${HIDDEN_NOTE}`,
      threshold: limit,
      details: { hiddenSessions: hidden },
    };
  }
  return { name: 'long-running-queries', status: 'ok', summary: `no query active longer than ${formatSeconds(limit)}`, value: 0, threshold: limit };
}

function oneLine(q: string): string {
  const s = q.replace(/\s+/g, ' ').trim();
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

export async function checkBlocked(ctx: DbCheckContext): Promise<CheckResult> {
  // pg_locks and pg_blocking_pids need no privilege, so this works for any role; waitstart is PG 14+.
  const waitExpr = ctx.serverVersion >= 140000 ? 'coalesce(l.waitstart, a.state_change)' : 'a.state_change';
  const r = await ctx.client.query<{ pid: number; blocked_by: number[]; seconds: number | null; locktype: string; mode: string; relation: string | null; usename: string | null; query: string | null }>(`
    SELECT l.pid, pg_blocking_pids(l.pid) AS blocked_by,
           extract(epoch FROM clock_timestamp() - ${waitExpr})::float8 AS seconds,
           l.locktype, l.mode, l.relation::regclass::text AS relation,
           a.usename, left(a.query, 200) AS query
      FROM pg_locks l
      LEFT JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE NOT l.granted AND l.pid <> pg_backend_pid()`);
  const min = ctx.blockedWaitSeconds;
  const blocked = r.rows
    .filter((b) => b.blocked_by.length > 0 && (b.seconds ?? Number.POSITIVE_INFINITY) >= min)
    .sort((a, b) => (b.seconds ?? 0) - (a.seconds ?? 0));
  if (blocked.length === 0) {
    return { name: 'blocked-queries', status: 'ok', summary: `no session waiting on a lock for ${min} s or more`, value: 0, threshold: min };
  }
  const blockerPids = [...new Set(blocked.flatMap((b) => b.blocked_by))];
  const br = await ctx.client.query<{ pid: number; usename: string | null; state: string | null; xact_seconds: number | null; query: string | null }>(`
    SELECT pid, usename, state, extract(epoch FROM clock_timestamp() - xact_start)::float8 AS xact_seconds, left(query, 200) AS query
      FROM pg_stat_activity WHERE pid = ANY($1::int[])`, [blockerPids]);
  const first = blocked[0]!;
  return {
    name: 'blocked-queries',
    status: 'warning',
    summary: `${blocked.length} session(s) waiting on a lock; pid ${first.pid} blocked by pid ${first.blocked_by.join(', ')} for ${formatSeconds(first.seconds ?? 0)}`,
    value: blocked.length,
    threshold: min,
    details: {
      blocked: blocked.slice(0, 20).map((b) => ({
        pid: b.pid,
        blockedBy: b.blocked_by,
        waitSeconds: b.seconds === null ? null : Math.round(b.seconds),
        lock: `${b.mode} on ${b.relation ?? b.locktype}`,
        user: b.usename,
        query: b.query,
      })),
      blockers: br.rows.map((x) => ({ pid: x.pid, user: x.usename, state: x.state, transactionSeconds: x.xact_seconds === null ? null : Math.round(x.xact_seconds), query: x.query })),
    },
  };
}

export async function checkBloat(ctx: DbCheckContext): Promise<CheckResult> {
  const warn = ctx.thresholds.deadTupleRatioWarn;
  const r = await ctx.client.query<{ schemaname: string; relname: string; live: string; dead: string; ratio: number; last_autovacuum: Date | null }>(`
    SELECT schemaname, relname, n_live_tup AS live, n_dead_tup AS dead,
           n_dead_tup::float8 / (n_live_tup + n_dead_tup) AS ratio, last_autovacuum
      FROM pg_stat_user_tables
     WHERE n_live_tup > $1 AND n_dead_tup::float8 / (n_live_tup + n_dead_tup) > $2
     ORDER BY n_dead_tup DESC
     LIMIT 20`, [ctx.bloatMinRows, warn]);
  if (r.rows.length === 0) {
    return { name: 'bloat', status: 'ok', summary: `no table over ${ctx.bloatMinRows.toLocaleString('en-US')} rows has a dead-tuple ratio above ${warn}`, threshold: warn };
  }
  const tables = r.rows.map((t) => ({ table: `${t.schemaname}.${t.relname}`, liveRows: num(t.live), deadRows: num(t.dead), ratio: round(t.ratio, 3), lastAutovacuum: t.last_autovacuum?.toISOString() ?? null }));
  const worst = tables.reduce((a, b) => (b.ratio > a.ratio ? b : a));
  return {
    name: 'bloat',
    status: 'warning',
    summary: `${tables.length} table(s) with a dead-tuple ratio above ${warn}; worst ${worst.table} at ${worst.ratio} (VACUUM, or check autovacuum)`,
    value: worst.ratio,
    threshold: warn,
    details: { tables },
  };
}

export async function readDatabaseSize(ctx: DbCheckContext): Promise<number> {
  const r = await ctx.client.query<{ bytes: string }>('SELECT pg_database_size(current_database()) AS bytes');
  return num(r.rows[0]?.bytes);
}

export async function checkUnusedIndexes(ctx: DbCheckContext): Promise<CheckResult> {
  // Unique and constraint-backing indexes are never "unused": they enforce something.
  const r = await ctx.client.query<{ schemaname: string; relname: string; indexrelname: string; bytes: string; stats_reset: Date | null }>(`
    SELECT s.schemaname, s.relname, s.indexrelname, pg_relation_size(s.indexrelid) AS bytes,
           (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()) AS stats_reset
      FROM pg_stat_user_indexes s
      JOIN pg_index i ON i.indexrelid = s.indexrelid
     WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
       AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid)
       AND pg_relation_size(s.indexrelid) > $1
     ORDER BY pg_relation_size(s.indexrelid) DESC
     LIMIT 20`, [ctx.unusedIndexMinBytes]);
  if (r.rows.length === 0) return { name: 'unused-indexes', status: 'ok', summary: `no unused index over ${formatBytes(ctx.unusedIndexMinBytes)}` };
  const indexes = r.rows.map((x) => ({ index: `${x.schemaname}.${x.indexrelname}`, table: `${x.schemaname}.${x.relname}`, bytes: num(x.bytes) }));
  const total = indexes.reduce((s, x) => s + x.bytes, 0);
  const since = r.rows[0]?.stats_reset;
  return {
    name: 'unused-indexes',
    status: 'info',
    summary: `${indexes.length} index(es) never scanned${since ? ` since ${since.toISOString()}` : ''}, ${formatBytes(total)} in all; largest ${indexes[0]!.index} (${formatBytes(indexes[0]!.bytes)})`,
    value: indexes.length,
    details: { indexes, statsSince: since?.toISOString() ?? null, note: 'scans on replicas are not counted here' },
  };
}

export interface ArchiverSnapshot {
  failedCount: number;
  statsReset: string | null;
}

/** Where a primary writes its WAL now: the current LSN and segment size (null on a standby). */
export interface ServerWalPosition {
  lsn: bigint;
  segmentSize: number;
}

export async function readServerWalPosition(client: pg.Client): Promise<ServerWalPosition | null> {
  // wal_segment_size is in bytes from PostgreSQL 11 on; pg_current_wal_lsn() fails during recovery.
  const r = await client.query<{ lsn: string | null; size: string }>(`
    SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS lsn,
           (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS size`);
  const row = r.rows[0];
  return row?.lsn ? { lsn: parseLsn(row.lsn), segmentSize: Number(row.size) } : null;
}

/**
 * Whether `archivedWal` (a segment or partial file name) is the segment the server writes to or the
 * one before it: an idle server switches no segment, so an old newest segment is then not a lag.
 * Returns the bytes written since the end of that segment (archived at the next switch), or
 * undefined when the archive is behind.
 */
export function caughtUpWith(position: ServerWalPosition | null | undefined, archivedWal: string | null | undefined): { pendingBytes: number } | undefined {
  if (!position || !archivedWal) return undefined;
  const archived = parseSegmentFileName(archivedWal.slice(0, 24), position.segmentSize);
  if (!archived) return undefined;
  const current = segmentNumberOf(position.lsn, position.segmentSize);
  if (archived.segno < current - 1n) return undefined;
  const pending = position.lsn - segmentStartLsn(archived.segno + 1n, position.segmentSize);
  return { pendingBytes: pending > 0n ? Number(pending) : 0 };
}

export async function checkWalArchiving(ctx: DbCheckContext, previous: ArchiverSnapshot | undefined, now: Date): Promise<{ result: CheckResult; snapshot?: ArchiverSnapshot }> {
  const s = await ctx.client.query<{ name: string; setting: string }>("SELECT name, setting FROM pg_settings WHERE name IN ('archive_mode', 'archive_timeout')");
  const setting = (n: string) => s.rows.find((x) => x.name === n)?.setting;
  const mode = setting('archive_mode') ?? 'off';
  const timeout = num(setting('archive_timeout'));
  if (mode === 'off') return { result: { name: 'wal-archiving', status: 'ok', summary: 'not configured (archive_mode = off)', details: { archiveMode: mode } } };
  const rec = await ctx.client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
  if (rec.rows[0]?.r && mode === 'on') {
    return { result: { name: 'wal-archiving', status: 'ok', summary: 'standby: the primary archives (archive_mode = on)', details: { archiveMode: mode } } };
  }
  const a = await ctx.client.query<{ archived_count: string; last_archived_wal: string | null; last_archived_time: Date | null; failed_count: string; last_failed_wal: string | null; last_failed_time: Date | null; stats_reset: Date | null }>('SELECT * FROM pg_stat_archiver');
  const row = a.rows[0]!;
  const failed = num(row.failed_count);
  const statsReset = row.stats_reset?.toISOString() ?? null;
  const snapshot: ArchiverSnapshot = { failedCount: failed, statsReset };
  // A reset counter (or a first run) counts every failure on record as new.
  const newFailures = previous && previous.statsReset === statsReset && failed >= previous.failedCount ? failed - previous.failedCount : previous ? failed : 0;
  const lastArchived = row.last_archived_time;
  const ageSeconds = lastArchived ? Math.max(0, (now.getTime() - lastArchived.getTime()) / 1000) : undefined;
  const details = {
    archiveMode: mode,
    archiveTimeoutSeconds: timeout,
    archivedCount: num(row.archived_count),
    lastArchivedWal: row.last_archived_wal,
    lastArchivedAt: lastArchived?.toISOString() ?? null,
    failedCount: failed,
    failuresSinceLastRun: newFailures,
    lastFailedWal: row.last_failed_wal,
    lastFailedAt: row.last_failed_time?.toISOString() ?? null,
  };
  const failing = row.last_failed_time && (!lastArchived || row.last_failed_time > lastArchived);
  if (failing) {
    return {
      snapshot,
      result: { name: 'wal-archiving', status: 'critical', summary: `archiving is failing: WAL ${row.last_failed_wal} failed at ${row.last_failed_time!.toISOString()}${lastArchived ? `, last success ${formatSeconds(ageSeconds!)} ago` : ', nothing archived yet'} (WAL piles up on the server)`, value: newFailures, threshold: 0, details },
    };
  }
  if (newFailures > 0) {
    return { snapshot, result: { name: 'wal-archiving', status: 'warning', summary: `${newFailures} archiving failure(s) since the last run; archiving has recovered (last segment ${row.last_archived_wal})`, value: newFailures, threshold: 0, details } };
  }
  // With archive_timeout set, a segment is expected at least that often, unless the server is idle
  // (nothing written since the last archived segment: PostgreSQL then switches no segment).
  const maxAge = timeout > 0 ? Math.max(2 * timeout, 3600) : undefined;
  const caughtUp = caughtUpWith(await readServerWalPosition(ctx.client), row.last_archived_wal);
  if (maxAge !== undefined && ageSeconds !== undefined && ageSeconds > maxAge && !caughtUp) {
    return { snapshot, result: { name: 'wal-archiving', status: 'warning', summary: `no WAL segment archived for ${formatSeconds(ageSeconds)} (archive_timeout ${timeout} s)`, value: Math.round(ageSeconds), threshold: maxAge, details } };
  }
  return {
    snapshot,
    result: {
      name: 'wal-archiving',
      status: 'ok',
      summary: lastArchived ? `last segment ${row.last_archived_wal} archived ${formatSeconds(ageSeconds!)} ago; no failures since the last run` : 'archive_mode is on; nothing archived yet, no failures',
      ...(ageSeconds !== undefined ? { value: Math.round(ageSeconds) } : {}),
      ...(maxAge !== undefined ? { threshold: maxAge } : {}),
      details,
    },
  };
}

export async function checkReplication(ctx: DbCheckContext): Promise<CheckResult> {
  const max = ctx.replicationLagSeconds;
  const rec = await ctx.client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
  if (rec.rows[0]?.r) {
    const r = await ctx.client.query<{ caught_up: boolean | null; lag: number | null }>(`
      SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() AS caught_up,
             extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8 AS lag`);
    const row = r.rows[0]!;
    const lag = row.caught_up ? 0 : Math.max(0, row.lag ?? 0);
    return {
      name: 'replication',
      status: lag > max ? 'warning' : 'ok',
      summary: `standby: replay ${lag > 0 ? `${formatSeconds(lag)} behind` : 'caught up'}`,
      value: Math.round(lag),
      threshold: max,
      details: { role: 'standby' },
    };
  }
  const r = await ctx.client.query<{ pid: number; application_name: string | null; client_addr: string | null; state: string | null; sync_state: string | null; lag: number | null }>(`
    SELECT pid, application_name, client_addr::text AS client_addr, state, sync_state,
           extract(epoch FROM replay_lag)::float8 AS lag
      FROM pg_stat_replication`);
  if (r.rows.length === 0) return { name: 'replication', status: 'ok', summary: 'no replicas connected', value: 0, threshold: max };
  if (r.rows.every((x) => x.state === null)) {
    return { name: 'replication', status: 'unknown', summary: `${r.rows.length} replica(s) connected, but their lag is hidden: ${HIDDEN_NOTE}`, threshold: max };
  }
  // replay_lag is NULL once a replica has been idle and caught up.
  const replicas = r.rows.map((x) => ({ pid: x.pid, name: x.application_name, address: x.client_addr, state: x.state, sync: x.sync_state, replayLagSeconds: x.lag === null ? 0 : round(x.lag) }));
  const lagging = replicas.filter((x) => x.replayLagSeconds > max);
  const worst = replicas.reduce((a, b) => (b.replayLagSeconds > a.replayLagSeconds ? b : a));
  return {
    name: 'replication',
    status: lagging.length > 0 ? 'warning' : 'ok',
    summary: lagging.length > 0
      ? `${lagging.length} replica(s) replaying more than ${max} s behind; worst ${worst.name || worst.address || worst.pid} at ${formatSeconds(worst.replayLagSeconds)}`
      : `${replicas.length} replica(s), replay lag at most ${formatSeconds(worst.replayLagSeconds)}`,
    value: worst.replayLagSeconds,
    threshold: max,
    details: { replicas },
  };
}
