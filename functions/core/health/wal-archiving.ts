// The `wal-archiving` check: the archive in storage (age of the newest archived segment, gaps since
// the oldest kept base backup) and the server (pg_stat_archiver failures, replication slots that are
// lost or hold back too much WAL). An inactive slot alone is no finding: `wal receive` holds its slot
// without streaming through it, by design. Only an archive that holds something is judged: no WAL
// and no base backup means point-in-time recovery is not set up here, which is not a failure.
import type { FileConfig } from '../config.ts';
import { scanPhysicalBackups } from '../catalog/physical.ts';
import { errorMessage } from '../errors.ts';
import { formatBytes } from '../format.ts';
import { redactString } from '../redact.ts';
import type { Storage } from '../storage/types.ts';
import { planRetention } from '../cleanup/retention.ts';
import { readWalInventory, type ArchivedWal } from '../wal/inventory.ts';
import { baseBackupRef, walStatusOf, type WalStatus } from '../wal/status.ts';
import { caughtUpWith, checkWalArchiving, readServerWalPosition, type ArchiverSnapshot, type DbCheckContext, type ServerWalPosition } from './database.ts';
import { formatLsn, parseLsn } from '../wal/lsn.ts';
import { statusRank, type CheckResult, type CheckStatus, type HealthThresholds } from './types.ts';

export type WalArchiveFacts =
  | { state: 'absent'; why: string }
  | { state: 'unreadable'; error: string }
  | { state: 'present'; newest: { name: string; archivedAt: Date } | undefined; status: WalStatus; keptBackups: number; now: Date };

const MINUTE = 60_000;
const round1 = (v: number): number => Number(v.toFixed(1));

/** The newest archived segment or partial segment (wal receive uploads its partial every few seconds). */
function newestArchived(files: readonly ArchivedWal[]): ArchivedWal | undefined {
  let newest: ArchivedWal | undefined;
  for (const f of files) if ((f.kind === 'segment' || f.kind === 'partial') && (!newest || f.archivedAt > newest.archivedAt)) newest = f;
  return newest;
}

/**
 * What the archive of `databaseId` says, judged against the base backups retention keeps (a gap
 * before the oldest of them is harmless: retention deletes that WAL). Never throws.
 */
export async function readWalArchive(storage: Storage | undefined, databaseId: string, config: Pick<FileConfig, 'retention'>, now: Date): Promise<WalArchiveFacts> {
  if (!storage) return { state: 'absent', why: 'no storage configured' };
  try {
    const scan = await scanPhysicalBackups(storage, databaseId);
    const plan = planRetention(scan.backups.map((b) => ({ id: b.id, completedAt: new Date(b.manifest.completedAt) })), config.retention);
    const kept = scan.backups.filter((b) => plan.keep.includes(b.id)).map((b) => baseBackupRef(b.manifest));
    const inv = await readWalInventory(storage, databaseId, { segmentSize: kept[0]?.walSegmentSize });
    if (inv.files.length === 0 && scan.backups.length === 0) return { state: 'absent', why: `no WAL archive and no base backup in ${storage.url}` };
    const newest = newestArchived(inv.files);
    return { state: 'present', newest: newest && { name: newest.name, archivedAt: newest.archivedAt }, status: walStatusOf(inv, kept), keptBackups: kept.length, now };
  } catch (err) {
    return { state: 'unreadable', error: redactString(errorMessage(err)) };
  }
}

interface SlotRow { slot_name: string; slot_type: string; active: boolean; wal_status: string | null; retained: string | null }

export interface SlotFacts {
  name: string;
  type: string;
  active: boolean;
  walStatus: string | null;
  /** WAL the server keeps for it: current LSN - restart_lsn (null without a restart LSN). */
  retainedBytes: number | null;
}

export async function readSlots(ctx: Pick<DbCheckContext, 'client' | 'serverVersion'>): Promise<SlotFacts[]> {
  // wal_status arrived in PostgreSQL 13; a standby measures against what it has received.
  const walStatus = ctx.serverVersion >= 130000 ? 'wal_status' : 'NULL::text AS wal_status';
  const r = await ctx.client.query<SlotRow>(`
    SELECT slot_name, slot_type, active, ${walStatus},
           pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END, restart_lsn)::text AS retained
      FROM pg_replication_slots
     ORDER BY slot_name`);
  return r.rows.map((s) => ({ name: s.slot_name, type: s.slot_type, active: s.active, walStatus: s.wal_status, retainedBytes: s.retained === null ? null : Number(s.retained) }));
}

export interface Finding {
  status: CheckStatus;
  line: string;
}

/** A lost slot is critical (its consumer cannot go on without a gap); about to lose WAL or holding too much is a warning. */
export function slotFindings(slots: readonly SlotFacts[], maxRetainedBytes: number): Finding[] {
  const out: Finding[] = [];
  for (const s of slots) {
    const held = s.retainedBytes === null ? '' : ` (holding ${formatBytes(s.retainedBytes)} of WAL)`;
    if (s.walStatus === 'lost') {
      out.push({ status: 'critical', line: `replication slot ${s.name} has lost WAL it needed (wal_status lost): its consumer cannot continue without a gap; drop and recreate the slot, then take a new base backup` });
      continue;
    }
    if (s.walStatus === 'unreserved') out.push({ status: 'warning', line: `replication slot ${s.name} is about to lose WAL (wal_status unreserved: past max_slot_wal_keep_size)${held}` });
    else if (s.retainedBytes !== null && s.retainedBytes > maxRetainedBytes) {
      out.push({ status: 'warning', line: `replication slot ${s.name} holds back ${formatBytes(s.retainedBytes)} of WAL (max ${formatBytes(maxRetainedBytes)}): its consumer is behind or gone, and the server's disk fills` });
    }
  }
  return out;
}

const worst = (statuses: CheckStatus[]): CheckStatus => statuses.reduce<CheckStatus>((w, s) => (statusRank(s) > statusRank(w) ? s : w), 'ok');

/** The server's side: pg_stat_archiver (failures since the last run, from the health state) and the replication slots. */
export async function checkServerWal(ctx: DbCheckContext, previous: ArchiverSnapshot | undefined, now: Date): Promise<{ result: CheckResult; snapshot?: ArchiverSnapshot }> {
  const checked = await checkWalArchiving(ctx, previous, now);
  // Where the server writes now: the archive's age is judged against it (an idle server archives nothing).
  const position = await readServerWalPosition(ctx.client);
  const archiver = position
    ? { ...checked, result: { ...checked.result, details: { ...checked.result.details, serverWal: { lsn: formatLsn(position.lsn), segmentSize: position.segmentSize } } } }
    : checked;
  const slots = await readSlots(ctx);
  if (slots.length === 0) return archiver;
  const findings = slotFindings(slots, ctx.thresholds.maxSlotRetainedBytes);
  const status = worst([archiver.result.status, ...findings.map((f) => f.status)]);
  const slotSummary = findings.length > 0 ? findings.map((f) => f.line).join('; ') : `${slots.length} replication slot(s), none losing or holding back too much WAL`;
  const summary = statusRank(archiver.result.status) >= statusRank(status) ? `${archiver.result.summary}; ${slotSummary}` : `${slotSummary}; ${archiver.result.summary}`;
  return { ...archiver, result: { ...archiver.result, status, summary, details: { ...archiver.result.details, slots } } };
}

/** The archive's findings: how old its newest segment is, and what keeps the restore window from being whole. */
export function archiveFindings(facts: Extract<WalArchiveFacts, { state: 'present' }>, maxAgeMinutes: number, server?: ServerWalPosition): { findings: Finding[]; ageMinutes?: number } {
  const findings: Finding[] = [];
  let ageMinutes: number | undefined;
  const caughtUp = caughtUpWith(server, facts.newest?.name);
  if (!facts.newest) {
    findings.push({ status: 'critical', line: 'base backups exist but no WAL segment is archived: nothing can be recovered (is archive_command or wal receive running?)' });
  } else if (caughtUp) {
    // The server has not finished a segment since: however old, the archive is not behind.
    ageMinutes = 0;
    const pending = caughtUp.pendingBytes > 0 ? `; ${formatBytes(caughtUp.pendingBytes)} written since, archived when the segment switches (archive_timeout)` : '';
    findings.push({ status: 'ok', line: `the archive is caught up with the server: newest archived WAL ${facts.newest.name}, the server writes at ${formatLsn(server!.lsn)}${pending}` });
  } else {
    ageMinutes = Math.max(0, (facts.now.getTime() - facts.newest.archivedAt.getTime()) / MINUTE);
    const age = `newest archived WAL ${facts.newest.name} is ${round1(ageMinutes)} min old`;
    findings.push(ageMinutes > maxAgeMinutes
      ? { status: 'critical', line: `${age} (max ${maxAgeMinutes} min): archiving has stopped or fallen behind, recovery cannot reach the last ${Math.round(ageMinutes)} min (an idle server needs archive_timeout to archive at least that often)` }
      : { status: 'ok', line: age });
  }
  for (const p of facts.status.problems) findings.push({ status: 'critical', line: p });
  const { from } = facts.status.window;
  if (from) findings.push({ status: 'ok', line: `restore window from ${from.time ?? from.lsn} (base backup ${from.backupId})` });
  return { findings, ...(ageMinutes !== undefined ? { ageMinutes: round1(ageMinutes) } : {}) };
}

/** The server's WAL position checkServerWal recorded in the details, if it could. */
function serverPosition(server: CheckResult): ServerWalPosition | undefined {
  const wal = (server.details as { serverWal?: { lsn?: unknown; segmentSize?: unknown } } | undefined)?.serverWal;
  if (typeof wal?.lsn !== 'string' || typeof wal.segmentSize !== 'number') return undefined;
  return { lsn: parseLsn(wal.lsn), segmentSize: wal.segmentSize };
}

/**
 * The one `wal-archiving` result: the server's side as measured (or why it was not), joined with the
 * archive's. `value` is the newest archived segment's age in minutes (the WalArchiveAgeMinutes
 * metric), `threshold` health.maxWalArchiveAgeMinutes. Without an archive the server's side stands alone.
 */
export function walArchivingResult(archive: WalArchiveFacts, server: CheckResult, thresholds: Pick<HealthThresholds, 'maxWalArchiveAgeMinutes'>): CheckResult {
  // The server side's value is in seconds or failures: the check's value is the archive's age alone.
  const { value: _value, threshold: _threshold, ...serverPart } = server;
  if (archive.state === 'absent') return serverPart;
  const max = thresholds.maxWalArchiveAgeMinutes;
  if (archive.state === 'unreadable') {
    return { ...serverPart, status: worst([server.status, 'unknown']), summary: `could not read the WAL archive: ${archive.error}; ${server.summary}`, threshold: max };
  }
  const { findings, ageMinutes } = archiveFindings(archive, max, serverPosition(server));
  const status = worst([server.status, ...findings.map((f) => f.status)]);
  const ordered = [...findings].sort((a, b) => statusRank(b.status) - statusRank(a.status));
  const { window, gaps, problems, newestTimeline } = archive.status;
  return {
    name: 'wal-archiving',
    status,
    summary: [...ordered.map((f) => f.line), server.summary].join('; '),
    ...(ageMinutes !== undefined ? { value: ageMinutes } : {}),
    threshold: max,
    details: {
      ...server.details,
      archive: { newest: archive.newest?.name ?? null, archivedAt: archive.newest?.archivedAt.toISOString() ?? null, ageMinutes: ageMinutes ?? null, newestTimeline, window, gaps, problems, keptBaseBackups: archive.keptBackups },
    },
  };
}
