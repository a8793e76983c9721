// Bounded lock waits for pg_restore, and who holds the locks a restore gave up on: read from
// pg_locks and pg_stat_activity while they still hold them.
import type pg from 'pg';

export interface LockHolder {
  pid: number;
  applicationName: string;
  state: string | null;
  /** Seconds since its transaction (or, outside one, its session) began. */
  seconds: number;
  relations: string[];
  modes: string[];
}

/** pg_restore (or a session of ours) gave up waiting on a lock: lock_timeout, SQLSTATE 55P03. */
export function isLockTimeout(message: string): boolean {
  return /lock timeout|lock_not_available|55P03|could not obtain lock/i.test(message);
}

/** The other sessions holding a lock on `tables` (schema.name; all user relations when empty). */
export async function lockHolders(client: pg.Client, tables: string[], excludeApplication: string): Promise<LockHolder[]> {
  const r = await client.query<{ pid: number; application_name: string; state: string | null; seconds: number; relations: string[]; modes: string[] }>(`
    SELECT a.pid, a.application_name, a.state,
           floor(extract(epoch FROM now() - coalesce(a.xact_start, a.backend_start)))::int AS seconds,
           array_agg(DISTINCT n.nspname || '.' || c.relname) AS relations, array_agg(DISTINCT l.mode) AS modes
      FROM pg_catalog.pg_locks l
      JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
      JOIN pg_catalog.pg_class c ON c.oid = l.relation
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE l.locktype = 'relation' AND l.granted
       AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
       AND l.pid <> pg_backend_pid() AND a.application_name IS DISTINCT FROM $2
       AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
       AND (cardinality($1::text[]) = 0 OR n.nspname || '.' || c.relname = ANY ($1::text[]))
     GROUP BY a.pid, a.application_name, a.state, a.xact_start, a.backend_start
     ORDER BY seconds DESC`, [tables, excludeApplication]);
  return r.rows.map((row) => ({ pid: row.pid, applicationName: row.application_name, state: row.state, seconds: row.seconds, relations: row.relations, modes: row.modes }));
}

/** `pid 4242 (application "psql", idle in transaction for 12 s, AccessShareLock on public.users)`. */
export function describeHolders(holders: LockHolder[]): string {
  return holders.map((h) => {
    const held = h.relations.length > 0 ? `, ${h.modes.join('/')} on ${h.relations.join(', ')}` : '';
    return `pid ${h.pid} (application "${h.applicationName || '-'}", ${h.state ?? 'unknown state'} for ${h.seconds} s${held})`;
  }).join('; ');
}

/** What the watchdog saw when it stopped a wait: the waiting session, what it waited for, and who held it. */
export interface LockWait {
  pid: number;
  relation: string | null;
  waitedMs: number;
  holders: LockHolder[];
}

export interface LockWatchdog {
  /** Stops watching; the wait that was cut short, if one was. */
  stop(): Promise<LockWait | undefined>;
}

interface WaitRow { pid: number; key: string; relation: string | null; blockers: number[] }

/**
 * pg_restore's sessions cannot be given a lock_timeout: the archive's preamble runs
 * `SET lock_timeout = 0` after connecting, over PGOPTIONS. So this watches them from another
 * session: one that has waited on the same lock for `timeoutMs` is cancelled (pg_restore then
 * fails, and its single transaction rolls back), after its blockers were read with pg_blocking_pids.
 */
export function watchLockWaits(client: pg.Client, options: { applicationName: string; timeoutMs: number; intervalMs?: number }): LockWatchdog {
  const firstSeen = new Map<string, number>();
  let fired: LockWait | undefined;
  let stopped = false;
  const tick = async (): Promise<void> => {
    const waits = await client.query<WaitRow>(`
      SELECT l.pid, concat_ws(':', l.locktype, l.relation, l.transactionid, l.mode) AS key,
             (SELECT n.nspname || '.' || c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = l.relation) AS relation,
             pg_catalog.pg_blocking_pids(l.pid) AS blockers
        FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
       WHERE NOT l.granted AND a.datname = current_database() AND a.application_name = $1 AND l.pid <> pg_catalog.pg_backend_pid()`, [options.applicationName]);
    const now = performance.now();
    const current = new Set(waits.rows.map((w) => `${w.pid}/${w.key}`));
    for (const k of [...firstSeen.keys()]) if (!current.has(k)) firstSeen.delete(k);
    for (const w of waits.rows) {
      const k = `${w.pid}/${w.key}`;
      const since = firstSeen.get(k) ?? now;
      firstSeen.set(k, since);
      if (now - since < options.timeoutMs || fired) continue;
      const holders = await holdersByPid(client, w.blockers);
      fired = { pid: w.pid, relation: w.relation, waitedMs: Math.round(now - since), holders };
      await client.query('SELECT pg_catalog.pg_cancel_backend($1)', [w.pid]);
    }
  };
  const interval = options.intervalMs ?? Math.min(500, Math.max(50, Math.floor(options.timeoutMs / 4)));
  // stop() wakes the loop from its pause: the restore does not wait out the interval when it ends.
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (!stopped) {
      await tick().catch(() => {});
      if (stopped) break;
      await new Promise<void>((r) => {
        const timer = setTimeout(r, interval);
        wake = () => { clearTimeout(timer); r(); };
      });
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      wake?.();
      await loop;
      return fired;
    },
  };
}

async function holdersByPid(client: pg.Client, pids: number[]): Promise<LockHolder[]> {
  if (pids.length === 0) return [];
  const r = await client.query<{ pid: number; application_name: string; state: string | null; seconds: number; relations: string[] | null; modes: string[] | null }>(`
    SELECT a.pid, a.application_name, a.state,
           floor(extract(epoch FROM now() - coalesce(a.xact_start, a.backend_start)))::int AS seconds,
           array_agg(DISTINCT n.nspname || '.' || c.relname) FILTER (WHERE c.oid IS NOT NULL) AS relations,
           array_agg(DISTINCT l.mode) FILTER (WHERE c.oid IS NOT NULL) AS modes
      FROM pg_catalog.pg_stat_activity a
      LEFT JOIN pg_catalog.pg_locks l ON l.pid = a.pid AND l.granted AND l.locktype = 'relation'
      LEFT JOIN pg_catalog.pg_class c ON c.oid = l.relation AND c.relnamespace NOT IN (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname ~ '^pg_' OR nspname = 'information_schema')
      LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE a.pid = ANY ($1::int[])
     GROUP BY a.pid, a.application_name, a.state, a.xact_start, a.backend_start`, [pids]);
  return r.rows.map((row) => ({ pid: row.pid, applicationName: row.application_name, state: row.state, seconds: row.seconds, relations: row.relations ?? [], modes: row.modes ?? [] }));
}
