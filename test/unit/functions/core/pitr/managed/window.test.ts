// The target against the source's restore window: before the earliest or after the latest
// restorable time is refused (exit 1, no alert) with the window named; --latest needs a window.
import { describe, expect, it } from 'vitest';
import { exitCodeOf } from '../../../../../../functions/core/errors.ts';
import { PitrRefusedError } from '../../../../../../functions/core/pitr/errors.ts';
import { checkTargetInWindow } from '../../../../../../functions/core/pitr/managed/window.ts';

const window = { earliest: new Date('2026-11-24T02:00:00Z'), latest: new Date('2026-12-01T14:05:00Z') };
const time = (iso: string) => ({ kind: 'time' as const, at: new Date(iso), iso });

function refusal(fn: () => void): PitrRefusedError {
  try { fn(); } catch (err) { expect(err).toBeInstanceOf(PitrRefusedError); return err as PitrRefusedError; }
  throw new Error('expected a refusal');
}

describe('checkTargetInWindow', () => {
  it('accepts a time inside the window, its two ends included', () => {
    expect(() => checkTargetInWindow(window, time('2026-12-01T14:01:00.000Z'), '--rds-instance auth')).not.toThrow();
    expect(() => checkTargetInWindow(window, time('2026-11-24T02:00:00.000Z'), '--rds-instance auth')).not.toThrow();
    expect(() => checkTargetInWindow(window, time('2026-12-01T14:05:00.000Z'), '--rds-instance auth')).not.toThrow();
  });

  it('refuses a time before the earliest restorable time, naming the window (exit 1, no alert)', () => {
    const e = refusal(() => checkTargetInWindow(window, time('2026-11-20T00:00:00.000Z'), '--rds-instance auth'));
    expect(e.message).toBe('--target-time 2026-11-20T00:00:00.000Z is before the earliest restorable time: the restore window of --rds-instance auth is from 2026-11-24T02:00:00.000Z to 2026-12-01T14:05:00.000Z (backup retention bounds how far back it reaches)');
    expect(exitCodeOf(e)).toBe(1);
    expect(e.alert).toBeNull();
  });

  it('refuses a time after the latest restorable time, suggesting to wait or use --latest', () => {
    const e = refusal(() => checkTargetInWindow(window, time('2026-12-01T14:05:00.001Z'), '--aurora-cluster orders'));
    expect(e.message).toMatch(/^--target-time 2026-12-01T14:05:00.001Z is after the latest restorable time: the restore window of --aurora-cluster orders is from 2026-11-24T02:00:00.000Z to 2026-12-01T14:05:00.000Z .*wait, or use --latest/);
  });

  it('takes --latest whenever there is a window, and refuses it (and any time) without one', () => {
    expect(() => checkTargetInWindow(window, { kind: 'latest' }, '--rds-instance auth')).not.toThrow();
    const e = refusal(() => checkTargetInWindow({}, { kind: 'latest' }, '--rds-instance auth'));
    expect(e.message).toMatch(/--rds-instance auth has no restore window .*enable automated backups/);
    refusal(() => checkTargetInWindow({ latest: window.latest }, time('2026-12-01T14:01:00.000Z'), '--rds-instance auth'));
  });
});
