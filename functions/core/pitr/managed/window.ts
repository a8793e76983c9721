// The restore window of an RDS instance or Aurora cluster (earliest to latest restorable time) and
// the check of a target against it, before anything is created: a target outside is refused
// (exit 1, no alert: an answer, as the self-managed PITR's) with the window in the message.
import { PitrRefusedError } from '../errors.ts';

export interface RestoreWindow {
  earliest?: Date;
  latest?: Date;
}

export type ManagedTarget = { kind: 'time'; at: Date; iso: string } | { kind: 'latest' };

export function describeWindow(w: RestoreWindow): string {
  const at = (d: Date | undefined, what: string) => (d ? d.toISOString() : `unknown (no ${what})`);
  return `from ${at(w.earliest, 'earliest restorable time: automated backups off?')} to ${at(w.latest, 'latest restorable time')}`;
}

/** Refuse a target the window does not hold, naming the window; `source` names the database. */
export function checkTargetInWindow(w: RestoreWindow, target: ManagedTarget, source: string): void {
  if (!w.earliest || !w.latest) {
    throw new PitrRefusedError(`${source} has no restore window (${describeWindow(w)}): enable automated backups (backup retention of at least 1 day) to restore it to a point in time`);
  }
  if (target.kind === 'latest') return;
  const window = `the restore window of ${source} is ${describeWindow(w)}`;
  if (target.at.getTime() < w.earliest.getTime()) {
    throw new PitrRefusedError(`--target-time ${target.iso} is before the earliest restorable time: ${window} (backup retention bounds how far back it reaches)`);
  }
  if (target.at.getTime() > w.latest.getTime()) {
    throw new PitrRefusedError(`--target-time ${target.iso} is after the latest restorable time: ${window} (RDS uploads the WAL every few minutes: wait, or use --latest)`);
  }
}

export function windowDocument(w: RestoreWindow): { earliest: string | null; latest: string | null } {
  return { earliest: w.earliest?.toISOString() ?? null, latest: w.latest?.toISOString() ?? null };
}
