// Session advisory locks: one job at a time per subject (one backup per database, one migration
// runner per history table), waited for within a bound, and the holder named when it is not granted.
import { createHash } from 'node:crypto';
import type pg from 'pg';

/** A stable 64-bit lock key for a subject such as `pgops:backup:auth`. */
export function advisoryLockKey(subject: string): bigint {
  return createHash('sha256').update(subject).digest().readBigInt64BE(0);
}

export interface LockHolder {
  pid: number;
  applicationName: string;
  backendStart: Date;
}

/** Who holds the lock now, if anyone can be seen (pg_stat_activity may hide other roles' sessions). */
export async function advisoryLockHolder(client: pg.ClientBase, key: bigint): Promise<LockHolder | undefined> {
  // pg_locks shows a bigint key as two oids: the high and the low 32 bits.
  const unsigned = BigInt.asUintN(64, key);
  const r = await client.query<{ pid: number; application_name: string; backend_start: Date }>(
    `SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::oid AND l.objid = $2::oid AND l.objsubid = 1 LIMIT 1`,
    [(unsigned >> 32n).toString(), (unsigned & 0xffffffffn).toString()],
  ).catch(() => undefined);
  const row = r?.rows[0];
  return row ? { pid: row.pid, applicationName: row.application_name, backendStart: row.backend_start } : undefined;
}

/** "backend 4242, application pgops, since 2026-11-22T02:00:00.000Z", or "another session" when it cannot be seen. */
export function describeHolder(h: LockHolder | undefined): string {
  return h ? `backend ${h.pid}, application ${h.applicationName || 'unknown'}, since ${h.backendStart.toISOString()}` : 'another session';
}

export interface AcquireOptions {
  /** How long to wait for the lock; 0 tries once. */
  waitSeconds: number;
  /** Poll interval while waiting (tests shorten it); default 500 ms. */
  pollMs?: number;
  /** Called once, when the first try finds the lock held. */
  onWait?: (holder: LockHolder | undefined) => void;
  /** The error to throw when the wait runs out. */
  timeoutError: (holder: LockHolder | undefined) => Error;
}

/** Take the session-level lock `key` on `client`, waiting at most `waitSeconds`. */
export async function acquireAdvisoryLock(client: pg.ClientBase, key: bigint, o: AcquireOptions): Promise<void> {
  const deadline = Date.now() + o.waitSeconds * 1000;
  const poll = o.pollMs ?? 500;
  let told = false;
  for (;;) {
    const r = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [key.toString()]);
    if (r.rows[0]?.ok) return;
    const holder = await advisoryLockHolder(client, key);
    if (Date.now() >= deadline) throw o.timeoutError(holder);
    if (!told) {
      o.onWait?.(holder);
      told = true;
    }
    await new Promise((res) => setTimeout(res, Math.min(poll, Math.max(10, deadline - Date.now()))));
  }
}

export async function releaseAdvisoryLock(client: pg.ClientBase, key: bigint): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1::bigint)', [key.toString()]);
}
