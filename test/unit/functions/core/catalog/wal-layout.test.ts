// WAL archive keys: which names PostgreSQL archives, and where each one goes.
import { describe, expect, it } from 'vitest';
import { parseWalName, walChecksumKey, walFileKey, walHistoryKey, walSegmentKey } from '../../../../../functions/core/catalog/layout.ts';
import { ConfigError } from '../../../../../functions/core/errors.ts';

describe('WAL names', () => {
  it('accepts segments, .partial, .backup and .history files with their timeline', () => {
    expect(parseWalName('000000010000000000000002')).toEqual({ name: '000000010000000000000002', kind: 'segment', timeline: '00000001' });
    expect(parseWalName('0000000A00000003000000FF.partial')).toMatchObject({ kind: 'partial', timeline: '0000000A' });
    expect(parseWalName('000000010000000000000002.00000028.backup')).toMatchObject({ kind: 'backup', timeline: '00000001' });
    expect(parseWalName('00000002.history')).toMatchObject({ kind: 'history', timeline: '00000002' });
  });

  it.each([
    '', '00000001000000000000002', '0000000100000000000000020', '00000001000000000000000a', '000000000000000000000002',
    '00000000.history', '0000002.history', '000000010000000000000002.gz', '000000010000000000000002.backup',
    '../00000001000000000000002', '000000010000000000000002/x', '000000010000000000000002.partial.sha256', 'pg_wal/000000010000000000000002',
  ])('refuses %j', (name) => {
    expect(parseWalName(name)).toBeUndefined();
    expect(() => walFileKey('db', name, 'gz')).toThrow(ConfigError);
  });
});

describe('WAL keys', () => {
  it('puts segments under their timeline, compressed, with a .sha256 beside them', () => {
    expect(walSegmentKey('orders', '00000001', '000000010000000000000002', 'gz')).toBe('orders/wal/00000001/000000010000000000000002.gz');
    expect(walSegmentKey('orders', '00000001', '000000010000000000000002', 'none')).toBe('orders/wal/00000001/000000010000000000000002');
    expect(walFileKey('orders', '000000010000000000000002.partial', 'gz')).toBe('orders/wal/00000001/000000010000000000000002.partial.gz');
    expect(walChecksumKey(walFileKey('orders', '000000010000000000000002', 'gz'))).toBe('orders/wal/00000001/000000010000000000000002.gz.sha256');
  });

  it('puts history files beside the timelines, uncompressed', () => {
    expect(walHistoryKey('orders', '00000002.history')).toBe('orders/wal/00000002.history');
    expect(walFileKey('orders', '00000002.history', 'gz')).toBe('orders/wal/00000002.history');
  });

  it('refuses a segment on another timeline, a history file as a segment and the reverse, and a bad database id', () => {
    expect(() => walSegmentKey('orders', '00000002', '000000010000000000000002', 'gz')).toThrow(/timeline 00000001/);
    expect(() => walSegmentKey('orders', '00000002', '00000002.history', 'gz')).toThrow(ConfigError);
    expect(() => walHistoryKey('orders', '000000010000000000000002')).toThrow(ConfigError);
    expect(() => walFileKey('../x', '000000010000000000000002', 'gz')).toThrow(ConfigError);
  });
});
