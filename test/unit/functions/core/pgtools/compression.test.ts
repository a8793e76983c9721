import { describe, expect, it } from 'vitest';
import { compressionOf, formatCompression, parseCompression, pgDumpCompressArg } from '../../../../../functions/core/pgtools/compression.ts';
import { ConfigError } from '../../../../../functions/core/errors.ts';
import { normalizeBackupOptions, rowCountsFor } from '../../../../../functions/core/backup/deps.ts';
import { fileConfigSchema } from '../../../../../functions/core/config.ts';

const pgDump15 = { num: 150014, text: 'pg_dump (PostgreSQL) 15.14' };
const pgDump16 = { num: 160004, text: 'pg_dump (PostgreSQL) 16.4' };

describe('backup compression', () => {
  it('parses every accepted form and writes it back canonically', () => {
    expect(parseCompression('gzip:1')).toEqual({ method: 'gzip', level: 1 });
    expect(parseCompression('zstd:19')).toEqual({ method: 'zstd', level: 19 });
    expect(parseCompression('lz4')).toEqual({ method: 'lz4' });
    expect(parseCompression('none')).toEqual({ method: 'none' });
    expect(formatCompression({ method: 'gzip' })).toBe('gzip:6');
    expect(formatCompression({ method: 'zstd', level: 3 })).toBe('zstd:3');
  });

  it('names what is wrong with a bad form', () => {
    expect(parseCompression('gzip:10')).toBe('"gzip:10": gzip levels run from 0 to 9');
    expect(parseCompression('zstd:0')).toBe('"zstd:0": zstd levels run from 1 to 22');
    expect(parseCompression('lz4:3')).toMatch(/lz4 takes no level/);
    expect(parseCompression('brotli')).toMatch(/expected gzip:N \(0-9\), zstd:N \(1-22\), lz4 or none/);
    expect(() => compressionOf('xz')).toThrow(ConfigError);
  });

  it('gives pg_dump 15 a plain level and refuses lz4/zstd there; pg_dump 16 gets method:level', () => {
    expect(pgDumpCompressArg({ method: 'gzip', level: 1 }, pgDump15)).toBe('--compress=1');
    expect(pgDumpCompressArg({ method: 'none' }, pgDump15)).toBe('--compress=0');
    expect(() => pgDumpCompressArg({ method: 'lz4' }, pgDump15)).toThrow(/needs pg_dump 16 or newer, and this one is 15/);
    expect(pgDumpCompressArg({ method: 'zstd', level: 3 }, pgDump16)).toBe('--compress=zstd:3');
    expect(pgDumpCompressArg({ method: 'lz4' }, pgDump16)).toBe('--compress=lz4');
  });

  it('defaults to gzip:1 and exact row counts, takes the configured defaults, and names bad options together', () => {
    expect(normalizeBackupOptions({})).toMatchObject({ compression: 'gzip:1', rowCounts: 'exact' });
    expect(normalizeBackupOptions({}, { compression: 'none', rowCounts: 'estimate' })).toMatchObject({ compression: 'none', rowCounts: 'estimate' });
    expect(normalizeBackupOptions({ compression: 'gzip' })).toMatchObject({ compression: 'gzip:6' });
    let err: unknown;
    try { normalizeBackupOptions({ compression: 'gzip:x', rowCounts: 'maybe' as 'exact', jobs: 0 }); } catch (e) { err = e; }
    expect((err as ConfigError).issues).toEqual([
      '--compression "gzip:x": expected gzip:N (0-9), zstd:N (1-22), lz4 or none',
      '--row-counts must be exact or estimate (got maybe)',
      '--jobs must be a whole number from 1 to 64 (got 0)',
    ]);
  });

  it('validates backup.compression and backup.rowCounts in the config file', () => {
    expect(fileConfigSchema.parse({}).backup).toMatchObject({ compression: 'gzip:1', rowCounts: 'auto' });
    const bad = fileConfigSchema.safeParse({ backup: { compression: 'zstd:99', rowCounts: 'roughly' } });
    expect(bad.success).toBe(false);
    const messages = bad.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(messages).toContainEqual('backup.compression: "zstd:99": zstd levels run from 1 to 22');
    expect(messages?.some((m) => m.startsWith('backup.rowCounts'))).toBe(true);
  });

  it('backup.rowCounts auto counts exactly only in the scheduled backup; exact and estimate apply everywhere', () => {
    expect(rowCountsFor('auto', 'scheduled')).toBe('exact');
    expect(rowCountsFor('auto', 'on-demand')).toBe('estimate');
    for (const backup of ['scheduled', 'on-demand'] as const) {
      expect(rowCountsFor('exact', backup)).toBe('exact');
      expect(rowCountsFor('estimate', backup)).toBe('estimate');
    }
  });
});
