// Recovery targets of `pgops pitr`: exactly one of time, restore point name, LSN, xid or immediate,
// validated and normalised to the recovery_target_* settings PostgreSQL accepts. A time must carry
// its zone (the server would read a bare one in its own zone) and is written in UTC as
// `YYYY-MM-DD HH:MM:SS.fff+00`: recovery_target_time does not take ISO 8601's `T...Z` as written.
import { UsageError } from '../errors.ts';
import { formatLsn, isLsn, parseLsn } from '../wal/lsn.ts';

export type RecoveryTarget =
  | { kind: 'time'; /** As PostgreSQL reads it: UTC, `2026-12-01 14:01:00.000+00`. */ value: string; /** ISO 8601 in UTC, to the digit given. */ iso: string; at: Date; /** Microseconds since the epoch (PostgreSQL's precision). */ micros: bigint }
  | { kind: 'name'; value: string }
  | { kind: 'lsn'; /** `X/Y` as PostgreSQL prints it. */ value: string; lsn: bigint }
  | { kind: 'xid'; value: string }
  | { kind: 'immediate' };

export interface TargetFlags {
  targetTime?: string;
  targetName?: string;
  targetLsn?: string;
  targetXid?: string;
  immediate?: boolean;
  exclusive?: boolean;
  /** `latest` (default) or a timeline number. */
  timeline?: string;
}

export interface TargetSpec {
  target: RecoveryTarget;
  /** False with --exclusive: stop just before the target. */
  inclusive: boolean;
  /** The timeline to recover along; `latest`: the newest in the archive. */
  timeline: number | 'latest';
}

// PostgreSQL's limit for a restore point name (MAXFNAMELEN - 1).
const MAX_RESTORE_POINT = 63;
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?$/;
const XID = /^\d{1,20}$/;

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** `+05:30` -> 330; `Z` -> 0; undefined when the offset is out of range. */
function offsetMinutes(zone: string): number | undefined {
  if (zone === 'Z' || zone === 'z') return 0;
  const m = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)!;
  const hours = Number(m[2]);
  const minutes = Number(m[3] ?? 0);
  if (hours > 15 || minutes > 59) return undefined;
  return (m[1] === '-' ? -1 : 1) * (hours * 60 + minutes);
}

/**
 * An ISO 8601 time with `Z` or an offset -> the target in UTC, to the microsecond. A usage error
 * names what is wrong: no zone, not a time, or a date that does not exist.
 */
export function parseTargetTime(text: string): Extract<RecoveryTarget, { kind: 'time' }> {
  const m = ISO_TIME.exec(text.trim());
  const shown = JSON.stringify(text.slice(0, 60));
  if (!m) throw new UsageError(`--target-time ${shown} is not an ISO 8601 time such as 2026-12-01T14:01:00Z or 2026-12-01T15:01:00+01:00`);
  const [, y, mo, d, h, mi, s = '0', fraction = '', zone] = m;
  if (zone === undefined) {
    throw new UsageError(`--target-time ${shown} has no time zone: add Z (UTC) or an offset such as +01:00 (without one the server would read it in its own time zone)`);
  }
  const offset = offsetMinutes(zone);
  const parts = [Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(s)] as const;
  const local = Date.UTC(parts[0], parts[1] - 1, parts[2], parts[3], parts[4], parts[5]);
  const check = new Date(local);
  const exists = check.getUTCFullYear() === parts[0] && check.getUTCMonth() === parts[1] - 1 && check.getUTCDate() === parts[2]
    && check.getUTCHours() === parts[3] && check.getUTCMinutes() === parts[4] && check.getUTCSeconds() === parts[5];
  if (!exists || offset === undefined) throw new UsageError(`--target-time ${shown} is not a valid time (no such date, hour or offset)`);
  const utcMs = local - offset * 60_000;
  const digits = fraction.slice(0, 6).padEnd(3, '0');
  const micros = BigInt(utcMs) * 1000n + BigInt(digits.padEnd(6, '0'));
  const u = new Date(utcMs);
  const date = `${pad(u.getUTCFullYear(), 4)}-${pad(u.getUTCMonth() + 1)}-${pad(u.getUTCDate())}`;
  const clock = `${pad(u.getUTCHours())}:${pad(u.getUTCMinutes())}:${pad(u.getUTCSeconds())}.${digits}`;
  return { kind: 'time', value: `${date} ${clock}+00`, iso: `${date}T${clock}Z`, at: new Date(utcMs + Number(digits.slice(0, 3))), micros };
}

function parseOne(flags: TargetFlags): { targets: RecoveryTarget[]; issues: string[] } {
  const targets: RecoveryTarget[] = [];
  const issues: string[] = [];
  const attempt = (make: () => RecoveryTarget) => {
    try {
      targets.push(make());
    } catch (err) {
      issues.push(err instanceof Error ? err.message : String(err));
    }
  };
  if (flags.targetTime !== undefined) attempt(() => parseTargetTime(flags.targetTime!));
  if (flags.targetName !== undefined) attempt(() => parseRestorePoint(flags.targetName!));
  if (flags.targetLsn !== undefined) attempt(() => parseTargetLsn(flags.targetLsn!));
  if (flags.targetXid !== undefined) attempt(() => parseTargetXid(flags.targetXid!));
  if (flags.immediate) targets.push({ kind: 'immediate' });
  return { targets, issues };
}

function parseRestorePoint(name: string): RecoveryTarget {
  if (name === '' || name.length > MAX_RESTORE_POINT || /[\p{C}]/u.test(name)) {
    throw new UsageError(`--target-name must be a restore point name of 1 to ${MAX_RESTORE_POINT} printable characters`);
  }
  return { kind: 'name', value: name };
}

function parseTargetLsn(text: string): RecoveryTarget {
  if (!isLsn(text.trim())) throw new UsageError(`--target-lsn ${JSON.stringify(text.slice(0, 40))} is not an LSN: two hex numbers separated by a slash, e.g. 0/3000028`);
  const lsn = parseLsn(text);
  return { kind: 'lsn', value: formatLsn(lsn), lsn };
}

function parseTargetXid(text: string): RecoveryTarget {
  const t = text.trim();
  // Normal transaction ids start at 3; txid_current()'s 64-bit form (with its epoch) is accepted as PostgreSQL does.
  if (!XID.test(t) || BigInt(t) < 3n || BigInt(t) > 0xffffffffffffffffn) {
    throw new UsageError(`--target-xid ${JSON.stringify(text.slice(0, 40))} is not a transaction id: a whole number of at least 3 (txid_current())`);
  }
  return { kind: 'xid', value: BigInt(t).toString() };
}

function parseTimeline(text: string | undefined): number | 'latest' | undefined {
  if (text === undefined || text === 'latest') return 'latest';
  if (!/^\d{1,10}$/.test(text) || Number(text) < 1 || Number(text) > 0xffffffff) return undefined;
  return Number(text);
}

const TARGET_FLAGS = '--target-time, --target-name, --target-lsn, --target-xid or --immediate';

/** The one target of a recovery, validated; every problem named at once (exit 2). */
export function parseTargetFlags(flags: TargetFlags): TargetSpec {
  const { targets, issues } = parseOne(flags);
  const given = targets.length + issues.length;
  if (given === 0) issues.push(`no recovery target: give exactly one of ${TARGET_FLAGS}`);
  if (given > 1) issues.push(`more than one recovery target: give exactly one of ${TARGET_FLAGS}`);
  const target = targets[0];
  if (flags.exclusive && target && (target.kind === 'name' || target.kind === 'immediate')) {
    issues.push('--exclusive applies to --target-time, --target-lsn and --target-xid only (a restore point or the consistent point has nothing to stop before)');
  }
  const timeline = parseTimeline(flags.timeline);
  if (timeline === undefined) issues.push(`--timeline ${JSON.stringify(String(flags.timeline).slice(0, 20))} must be "latest" or a timeline number (1, 2, ...)`);
  if (issues.length > 0 || !target || timeline === undefined) throw new UsageError('invalid recovery target', issues);
  return { target, inclusive: !flags.exclusive, timeline };
}

/** The recovery_target_* settings for this target, recovering along `timeline`. */
export function recoveryTargetSettings(spec: TargetSpec, timeline: number): Record<string, string> {
  const t = spec.target;
  const settings: Record<string, string> = {};
  if (t.kind === 'immediate') settings.recovery_target = 'immediate';
  else settings[`recovery_target_${t.kind}`] = t.value;
  if (t.kind === 'time' || t.kind === 'lsn' || t.kind === 'xid') settings.recovery_target_inclusive = spec.inclusive ? 'on' : 'off';
  settings.recovery_target_timeline = String(timeline);
  return settings;
}

/** One phrase for messages: `time 2026-12-01 14:01:00.000+00 (exclusive)`. */
export function describeTarget(spec: Pick<TargetSpec, 'target' | 'inclusive'>): string {
  const t = spec.target;
  const what = t.kind === 'immediate' ? 'the base backup\'s consistent point (--immediate)'
    : t.kind === 'name' ? `restore point "${t.value}"` : `${t.kind === 'time' ? 'time' : t.kind === 'lsn' ? 'LSN' : 'transaction'} ${t.value}`;
  return spec.inclusive || t.kind === 'immediate' || t.kind === 'name' ? what : `${what} (exclusive)`;
}

/** The target as the result document shows it. */
export function targetDocument(spec: TargetSpec, timeline: number): { type: RecoveryTarget['kind']; value?: string; inclusive: boolean; timeline: number } {
  const t = spec.target;
  return { type: t.kind, ...(t.kind === 'immediate' ? {} : { value: t.kind === 'time' ? t.iso : t.value }), inclusive: spec.inclusive, timeline };
}
