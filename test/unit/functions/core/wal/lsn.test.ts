import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatLsn, parseLsn, parseSegmentFileName, segmentFileName, segmentFileNameOf, segmentNumberOf } from '../../../../../functions/core/wal/lsn.ts';
import { parseHistory, timelineOfLsn, timelineOfSegment, timelinePath } from '../../../../../functions/core/wal/timeline.ts';

describe('LSNs and segment names', () => {
  it('parses and prints LSNs as PostgreSQL does', () => {
    expect(parseLsn('0/3000028')).toBe(0x3000028n);
    expect(parseLsn('1/0')).toBe(0x100000000n);
    expect(formatLsn(0x1000000a0n)).toBe('1/A0');
    expect(() => parseLsn('3000028')).toThrow(/not an LSN/);
    expect(() => parseLsn('0/123456789')).toThrow(/not an LSN/);
  });

  it('names segments as pg_walfile_name does (16 MiB: 256 segments per 4 GiB)', () => {
    // pg_walfile_name('0/3000028') on timeline 1 = 000000010000000000000003
    expect(segmentFileNameOf(1, parseLsn('0/3000028'))).toBe('000000010000000000000003');
    expect(segmentFileNameOf(2, parseLsn('1/FF000000'))).toBe('0000000200000001000000FF');
    expect(segmentFileNameOf(1, parseLsn('2/0'))).toBe('000000010000000200000000');
    // 64 MiB segments: 64 per 4 GiB
    expect(segmentFileNameOf(1, parseLsn('1/4000000'), 64 * 1024 * 1024)).toBe('000000010000000100000001');
  });

  it('round-trips segment numbers through names for any timeline and size', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 0xffff }), fc.bigInt({ min: 0n, max: 1n << 40n }), fc.constantFrom(1 << 20, 16 << 20, 1 << 30), (tli, anySegno, size) => {
      const segno = anySegno % ((1n << 64n) / BigInt(size)); // every LSN fits 64 bits
      const name = segmentFileName(tli, segno, size);
      expect(parseSegmentFileName(name, size)).toEqual({ timeline: tli, segno });
    }));
  });

  it('refuses names PostgreSQL never writes', () => {
    expect(parseSegmentFileName('000000000000000000000001')).toBeUndefined();
    expect(parseSegmentFileName('000000010000000000000100')).toBeUndefined(); // low part beyond 0xFF at 16 MiB
    expect(parseSegmentFileName('00000001000000000000000a')).toBeUndefined();
    expect(() => segmentNumberOf(0n, 3_000_000)).toThrow(/power of two/);
  });
});

describe('timeline histories', () => {
  const history3 = '1\t0/3000000\tno recovery target specified\n\n2\t0/50000A0\tbefore 2026-12-01 14:01:00+00\n';

  it('parses a history file and builds the recovery path', () => {
    const entries = parseHistory(history3);
    expect(entries).toEqual([
      { timeline: 1, switchLsn: 0x3000000n, reason: 'no recovery target specified' },
      { timeline: 2, switchLsn: 0x50000a0n, reason: 'before 2026-12-01 14:01:00+00' },
    ]);
    const path = timelinePath(3, entries);
    expect(path.map((s) => [s.timeline, formatLsn(s.beginLsn), s.endLsn === undefined ? null : formatLsn(s.endLsn)])).toEqual([
      [1, '0/0', '0/3000000'], [2, '0/3000000', '0/50000A0'], [3, '0/50000A0', null],
    ]);
    expect(timelineOfLsn(path, 0x2ffffffn)).toBe(1);
    expect(timelineOfLsn(path, 0x3000000n)).toBe(2);
    expect(timelineOfLsn(path, 0x9000000n)).toBe(3);
  });

  it('reads each segment from the newest timeline begun by then (the switch segment from the new one)', () => {
    const path = timelinePath(3, parseHistory(history3));
    expect(timelineOfSegment(path, 2n)).toBe(1);
    expect(timelineOfSegment(path, 3n)).toBe(2);
    expect(timelineOfSegment(path, 4n)).toBe(2);
    // 0/50000A0 lies in segment 5: timeline 3 supplies it
    expect(timelineOfSegment(path, 5n)).toBe(3);
  });

  it('refuses a malformed or out-of-order history', () => {
    expect(() => parseHistory('1 0/3000000 x\nbogus\n', 'h')).toThrow(/h line 2/);
    expect(() => parseHistory('2\t0/5000000\tx\n1\t0/6000000\ty\n')).toThrow(/must increase/);
    expect(() => timelinePath(2, parseHistory('2\t0/5000000\tx\n'))).toThrow(/ancestor/);
  });
});
