// Recovery targets: exactly one, validated, and written the way PostgreSQL's recovery_target_*
// settings read them (a time in UTC without ISO 8601's `T...Z`, never without a zone).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../../../functions/core/errors.ts';
import { describeTarget, parseTargetFlags, parseTargetTime, recoveryTargetSettings, targetDocument } from '../../../../../functions/core/pitr/targets.ts';

describe('parseTargetTime', () => {
  it('writes a Z time in UTC without the T and Z PostgreSQL refuses', () => {
    expect(parseTargetTime('2026-12-01T14:01:00Z')).toMatchObject({ value: '2026-12-01 14:01:00.000+00', iso: '2026-12-01T14:01:00.000Z' });
  });

  it('converts an offset to UTC, across a date boundary', () => {
    expect(parseTargetTime('2026-12-01T00:30:00+01:00').value).toBe('2026-11-30 23:30:00.000+00');
    expect(parseTargetTime('2026-12-01T23:30:00-0230').value).toBe('2026-12-02 02:00:00.000+00');
    expect(parseTargetTime('2026-12-01 14:01+05').value).toBe('2026-12-01 09:01:00.000+00');
  });

  it('keeps microseconds (PostgreSQL\'s precision) and drops finer digits', () => {
    const t = parseTargetTime('2026-12-01T14:01:00.123456789Z');
    expect(t.value).toBe('2026-12-01 14:01:00.123456+00');
    expect(t.micros % 1_000_000n).toBe(123456n);
    expect(t.at.toISOString()).toBe('2026-12-01T14:01:00.123Z');
  });

  it('refuses a time without a zone, naming the fix', () => {
    expect(() => parseTargetTime('2026-12-01T14:01:00')).toThrow(/no time zone: add Z \(UTC\) or an offset/);
    expect(() => parseTargetTime('2026-12-01 14:01:00.5')).toThrow(UsageError);
  });

  it('refuses what is not a time, or a date that does not exist', () => {
    for (const bad of ['yesterday', '2026-12-01', '14:01:00Z', '2026-02-30T10:00:00Z', '2026-12-01T24:00:00Z', '2026-12-01T10:00:00+16:00', '2026-12-01T10:60:00Z']) {
      expect(() => parseTargetTime(bad), bad).toThrow(UsageError);
    }
  });

  it('agrees with Date for any instant written with any whole-minute offset', () => {
    fc.assert(fc.property(
      fc.date({ min: new Date('1971-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }),
      fc.integer({ min: -14 * 60, max: 14 * 60 }),
      (instant, offset) => {
        const local = new Date(instant.getTime() + offset * 60_000).toISOString().slice(0, 23);
        const sign = offset < 0 ? '-' : '+';
        const zone = `${sign}${String(Math.floor(Math.abs(offset) / 60)).padStart(2, '0')}:${String(Math.abs(offset) % 60).padStart(2, '0')}`;
        const parsed = parseTargetTime(`${local}${zone}`);
        expect(parsed.at.getTime()).toBe(instant.getTime());
        expect(parsed.value).toBe(`${instant.toISOString().slice(0, 10)} ${instant.toISOString().slice(11, 23)}+00`);
      },
    ));
  });
});

describe('parseTargetFlags', () => {
  it('takes exactly one target', () => {
    expect(() => parseTargetFlags({})).toThrow(/no recovery target: give exactly one of --target-time/);
    expect(() => parseTargetFlags({ targetName: 'a', immediate: true })).toThrow(/more than one recovery target/);
    expect(() => parseTargetFlags({ targetLsn: 'x', targetXid: '5' })).toThrow(/more than one recovery target/);
  });

  it('parses each kind, inclusive by default, on the latest timeline', () => {
    expect(parseTargetFlags({ targetName: 'before-migration' })).toEqual({ target: { kind: 'name', value: 'before-migration' }, inclusive: true, timeline: 'latest' });
    expect(parseTargetFlags({ targetLsn: '0/3000028' }).target).toEqual({ kind: 'lsn', value: '0/3000028', lsn: 0x3000028n });
    expect(parseTargetFlags({ targetLsn: '1/a0' }).target).toMatchObject({ value: '1/A0' });
    expect(parseTargetFlags({ targetXid: '0000745', exclusive: true })).toMatchObject({ target: { kind: 'xid', value: '745' }, inclusive: false });
    expect(parseTargetFlags({ immediate: true, timeline: '2' })).toEqual({ target: { kind: 'immediate' }, inclusive: true, timeline: 2 });
  });

  it('names every bad value at once, as a usage error (exit 2)', () => {
    const err = (() => { try { parseTargetFlags({ targetXid: '2', timeline: 'newest' }); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as UsageError).issues).toEqual([
      expect.stringMatching(/--target-xid "2" is not a transaction id/),
      expect.stringMatching(/--timeline "newest" must be "latest" or a timeline number/),
    ]);
    expect(() => parseTargetFlags({ targetLsn: '0-3' })).toThrow(/not an LSN/);
    expect(() => parseTargetFlags({ targetName: 'x'.repeat(64) })).toThrow(/1 to 63 printable characters/);
    expect(() => parseTargetFlags({ targetName: 'a\nb' })).toThrow(/printable/);
    expect(() => parseTargetFlags({ immediate: true, timeline: '0' })).toThrow(/--timeline "0"/);
  });

  it('refuses --exclusive where there is nothing to stop before', () => {
    expect(() => parseTargetFlags({ targetName: 'p', exclusive: true })).toThrow(/--exclusive applies to --target-time, --target-lsn and --target-xid only/);
    expect(() => parseTargetFlags({ immediate: true, exclusive: true })).toThrow(/--exclusive/);
  });
});

describe('recoveryTargetSettings', () => {
  it('writes the one target, inclusive where it applies, and the timeline', () => {
    expect(recoveryTargetSettings(parseTargetFlags({ targetTime: '2026-12-01T14:01:00Z', exclusive: true }), 1)).toEqual({
      recovery_target_time: '2026-12-01 14:01:00.000+00', recovery_target_inclusive: 'off', recovery_target_timeline: '1',
    });
    expect(recoveryTargetSettings(parseTargetFlags({ targetName: 'p' }), 2)).toEqual({ recovery_target_name: 'p', recovery_target_timeline: '2' });
    expect(recoveryTargetSettings(parseTargetFlags({ immediate: true }), 1)).toEqual({ recovery_target: 'immediate', recovery_target_timeline: '1' });
    expect(recoveryTargetSettings(parseTargetFlags({ targetXid: '900' }), 3)).toEqual({ recovery_target_xid: '900', recovery_target_inclusive: 'on', recovery_target_timeline: '3' });
    expect(recoveryTargetSettings(parseTargetFlags({ targetLsn: '0/5000060' }), 1)).toMatchObject({ recovery_target_lsn: '0/5000060' });
  });
});

describe('describing a target', () => {
  it('names it for messages and for the result document', () => {
    const spec = parseTargetFlags({ targetTime: '2026-12-01T15:01:00.25+01:00', exclusive: true });
    expect(describeTarget(spec)).toBe('time 2026-12-01 14:01:00.250+00 (exclusive)');
    expect(targetDocument(spec, 1)).toEqual({ type: 'time', value: '2026-12-01T14:01:00.250Z', inclusive: false, timeline: 1 });
    expect(describeTarget(parseTargetFlags({ targetName: 'p' }))).toBe('restore point "p"');
    expect(targetDocument(parseTargetFlags({ immediate: true }), 2)).toEqual({ type: 'immediate', inclusive: true, timeline: 2 });
  });
});
