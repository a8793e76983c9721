// The replication slot of `wal receive`: checked or created, held by one receiver at a time, and
// advanced only past segments that are archived and verified, so the server keeps every byte of
// WAL the archive does not have yet, whatever happens to the receiver and its local spool.
import type pg from 'pg';
import { acquireAdvisoryLock, advisoryLockKey, describeHolder } from '../advisory-lock.ts';
import { connect, type DbSessionOptions, type DbTarget } from '../db.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { formatLsn, parseLsn } from './lsn.ts';
import { WalReceiveError, WalSlotError } from './errors.ts';

const SLOT_NAME = /^[a-z0-9_]{1,63}$/;

/** `pgops_<database id>`, lowercased, anything else an underscore, as slot names must be. */
export function defaultSlotName(databaseId: string): string {
  return `pgops_${databaseId.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

export function checkSlotName(slot: string): string {
  if (!SLOT_NAME.test(slot)) {
    throw new WalSlotError('invalid replication slot name', [`"${slot.slice(0, 80)}": lowercase letters, digits and underscores only, 1 to 63 characters`]);
  }
  return slot;
}

export interface SlotSessionDeps {
  target: DbTarget;
  session?: DbSessionOptions;
  logger: Logger;
  /** How long to wait for another receiver of the same slot to stop (default 300 s). */
  lockWaitSeconds?: number;
}

export interface SlotSession {
  slot: string;
  segmentSize: number;
  /** The server's current timeline: the one streaming resumes on. */
  timeline: number;
  /** The slot's restart_lsn: nothing before it is promised, everything after it is on the server. */
  restartLsn: bigint;
  /** Let the server recycle WAL before `lsn` (archived and verified); never moves backwards. */
  advanceTo(lsn: bigint): Promise<void>;
  close(): Promise<void>;
}

const SLOT_HELP = (slot: string) => `SELECT pg_create_physical_replication_slot('${slot}', true)`;

/** Connect, become the slot's only receiver, read the server and the slot (creating it when asked). */
export async function openSlotSession(deps: SlotSessionDeps, slot: string, createSlot: boolean): Promise<SlotSession> {
  const client = await connect(deps.target, deps.session, 'pgops-wal-receive');
  try {
    await checkReplicationRole(client, deps.target.user);
    await acquireAdvisoryLock(client, advisoryLockKey(`pgops:wal-receive:${slot}`), {
      waitSeconds: deps.lockWaitSeconds ?? 300,
      onWait: (holder) => deps.logger.info(`wal receive: another receiver holds slot ${slot} (${describeHolder(holder)}); waiting for it to stop`),
      timeoutError: (holder) => new WalReceiveError(`another pgops wal receive holds slot ${slot} (${describeHolder(holder)}): stop it first, or give this one another --slot`),
    });
    const server = await readServer(client);
    const restartLsn = await slotRestartLsn(client, slot, createSlot, deps.logger);
    let advanced = restartLsn;
    return {
      slot, ...server, restartLsn,
      advanceTo: async (lsn) => {
        if (lsn <= advanced) return;
        await client.query('SELECT pg_replication_slot_advance($1, $2::pg_lsn)', [slot, formatLsn(lsn)]);
        advanced = lsn;
      },
      close: () => client.end().catch(() => undefined),
    };
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
}

async function checkReplicationRole(client: pg.Client, user: string): Promise<void> {
  const r = await client.query<{ ok: boolean }>('SELECT rolreplication OR rolsuper AS ok FROM pg_roles WHERE rolname = current_user');
  if (r.rows[0]?.ok) return;
  throw new WalSlotError('the role cannot stream WAL', [`role "${user}" has no REPLICATION attribute: ALTER ROLE "${user}" REPLICATION (pg_receivewal and the replication slot need it)`]);
}

/** The segment size, and the timeline WAL is written on now; a standby is refused (its slot would not be the primary's). */
async function readServer(client: pg.Client): Promise<{ segmentSize: number; timeline: number }> {
  const r = await client.query<{ recovery: boolean; size: string; file: string | null }>(
    `SELECT pg_is_in_recovery() AS recovery, (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS size,
            CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS file`,
  );
  const row = r.rows[0]!;
  if (row.recovery || row.file === null) {
    throw new WalSlotError('wal receive streams from the primary', ['the server is in recovery (a standby): point the receiver at the primary']);
  }
  return { segmentSize: Number(row.size), timeline: Number.parseInt(row.file.slice(0, 8), 16) };
}

/** The slot's restart_lsn; the slot created (reserving WAL at once) when missing and `create` is set. */
async function slotRestartLsn(client: pg.Client, slot: string, create: boolean, logger: Logger): Promise<bigint> {
  let row = await readSlot(client, slot);
  if (!row && create) {
    await client.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]).catch((err: unknown) => {
      // Created by someone else in the meantime: the re-read below decides.
      if ((err as { code?: string }).code !== '42710') throw new WalSlotError(`could not create replication slot ${slot}: ${errorMessage(err)}`, [], { cause: err });
    });
    logger.info(`wal receive: created physical replication slot ${slot}`);
    row = await readSlot(client, slot);
  }
  if (!row) {
    throw new WalSlotError(`replication slot ${slot} does not exist`, [`run with --create-slot, or create it yourself: ${SLOT_HELP(slot)}`]);
  }
  if (row.slot_type !== 'physical') throw new WalSlotError(`replication slot ${slot} is a ${row.slot_type} slot`, ['wal receive needs a physical slot: choose another --slot']);
  if (row.wal_status === 'lost') {
    throw new WalSlotError(`replication slot ${slot} has lost WAL the archive needed (max_slot_wal_keep_size was exceeded)`, [
      `the archive has a gap: drop the slot (SELECT pg_drop_replication_slot('${slot}')), start again with --create-slot, and take a new base backup`,
    ]);
  }
  if (row.restart_lsn === null) {
    throw new WalSlotError(`replication slot ${slot} has never reserved WAL (created without immediately_reserve, e.g. by pg_receivewal --create-slot)`, [
      `drop it (SELECT pg_drop_replication_slot('${slot}')) and let --create-slot create it, or create it yourself: ${SLOT_HELP(slot)}`,
    ]);
  }
  return parseLsn(row.restart_lsn);
}

async function readSlot(client: pg.Client, slot: string): Promise<{ slot_type: string; restart_lsn: string | null; wal_status: string | null } | undefined> {
  const r = await client.query<{ slot_type: string; restart_lsn: string | null; wal_status: string | null }>(
    'SELECT slot_type, restart_lsn::text AS restart_lsn, wal_status FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  return r.rows[0];
}
