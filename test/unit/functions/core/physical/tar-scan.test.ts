// The tar reader between pg_basebackup and storage: it passes every byte on untouched, however the
// stream is cut, and reads the start from backup_label and the WAL range from backup_manifest.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { BaseTarError } from '../../../../../functions/core/physical/errors.ts';
import { BaseTarScanner, parseBackupLabel, parseWalRanges } from '../../../../../functions/core/physical/tar-scan.ts';

const LABEL = `START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
CHECKPOINT LOCATION: 0/2000060
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-12-01 10:59:24 UTC
LABEL: pgops 20261201T105924Z-0a01
START TIMELINE: 1
`;

const manifestText = (ranges = '{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }'): string =>
  `{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n${Array.from({ length: 2000 }, (_, i) => `{ "Path": "base/1/${i}", "Size": 8192, "Checksum": "00" }`).join(',\n')}\n],\n`
  + `"WAL-Ranges": [\n${ranges}\n],\n"Manifest-Checksum": "${'a'.repeat(64)}"}\n`;

/** A tar as pg_basebackup writes it: backup_label first, data files, the manifest last. */
async function baseTar(members: Array<[string, string | Buffer]>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, content] of members) pack.entry({ name, mode: 0o600 }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

const standard = (): Promise<Buffer> => baseTar([
  ['backup_label', LABEL],
  ['PG_VERSION', '15\n'],
  ['base/1/1259', Buffer.alloc(100_000, 7)],
  ['global/pg_control', Buffer.alloc(8192, 1)],
  ['backup_manifest', manifestText()],
]);

/** Feed `data` through a scanner in the given chunk sizes; returns the scanner and what came out. */
async function scan(data: Buffer, sizes: number[] = [65536]): Promise<{ scanner: BaseTarScanner; out: Buffer }> {
  const chunks: Buffer[] = [];
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]!);
    chunks.push(data.subarray(off, off + n));
    off += n;
  }
  const scanner = new BaseTarScanner();
  const got: Buffer[] = [];
  await pipeline(Readable.from(chunks), scanner, new Writable({ write(c: Buffer, _e, cb) { got.push(c); cb(); } }));
  return { scanner, out: Buffer.concat(got) };
}

describe('BaseTarScanner', () => {
  it('reads the start, the checkpoint and the WAL range, and passes the tar through byte for byte', async () => {
    const data = await standard();
    const { scanner, out } = await scan(data);
    expect(out.equals(data)).toBe(true);
    expect(scanner.facts()).toEqual({
      startLsn: '0/2000028', startTimeline: 1, checkpointLsn: '0/2000060',
      walRanges: [{ timeline: 1, startLsn: '0/2000028', endLsn: '0/2000100' }], tarBytes: data.length,
    });
  });

  it('reads the same however the stream is cut', async () => {
    const data = await standard();
    await fc.assert(fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 20 }), async (sizes) => {
      const { scanner, out } = await scan(data, sizes);
      expect(out.equals(data)).toBe(true);
      expect(scanner.facts().walRanges).toEqual([{ timeline: 1, startLsn: '0/2000028', endLsn: '0/2000100' }]);
    }), { numRuns: 40 });
  });

  it('refuses a tar that stops before its end-of-archive marker (pg_basebackup died)', async () => {
    const data = await standard();
    const { scanner } = await scan(data.subarray(0, data.length - 2048));
    expect(() => scanner.facts()).toThrow(BaseTarError);
    expect(() => scanner.facts()).toThrow(/ended after \d+ bytes without its end-of-archive marker/);
  });

  it('refuses a tar without backup_label or without backup_manifest', async () => {
    const noLabel = await scan(await baseTar([['PG_VERSION', '15\n'], ['backup_manifest', manifestText()]]));
    expect(() => noLabel.scanner.facts()).toThrow(/holds no backup_label/);
    const noManifest = await scan(await baseTar([['backup_label', LABEL], ['PG_VERSION', '15\n']]));
    expect(() => noManifest.scanner.facts()).toThrow(/holds no backup_manifest \(pgops needs PostgreSQL 13 or later/);
  });

  it('errors on bytes that are not a tar header', async () => {
    const data = await standard();
    data[10] = data[10]! ^ 0xff; // inside the first header's name: its checksum no longer matches
    await expect(scan(data)).rejects.toThrow(/not a valid tar \(bad header at byte 0\)/);
  });

  it('reports every WAL range of a backup that spans timelines', async () => {
    const { scanner } = await scan(await baseTar([
      ['backup_label', LABEL],
      ['backup_manifest', manifestText('{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/3000000" },\n{ "Timeline": 2, "Start-LSN": "0/3000000", "End-LSN": "0/3000100" }')],
    ]));
    expect(scanner.facts().walRanges.map((r) => r.timeline)).toEqual([1, 2]);
  });
});

describe('parseBackupLabel and parseWalRanges', () => {
  it('normalise LSNs as PostgreSQL prints them', () => {
    expect(parseBackupLabel('START WAL LOCATION: 00/0200002a (file x)\nSTART TIMELINE: 3\n'.toUpperCase())).toEqual({ startLsn: '0/200002A', startTimeline: 3 });
    expect(parseWalRanges('"WAL-Ranges": [ { "Timeline": 2, "Start-LSN": "1/a0", "End-LSN": "1/b0" } ]')).toEqual([{ timeline: 2, startLsn: '1/A0', endLsn: '1/B0' }]);
  });

  it('name what is missing', () => {
    expect(() => parseBackupLabel('LABEL: x\n')).toThrow(/backup_label does not name its start/);
    expect(() => parseWalRanges('{"Files": []}')).toThrow(/backup_manifest has no WAL-Ranges/);
    expect(() => parseWalRanges('"WAL-Ranges": [ ]')).toThrow(/lists no WAL range/);
    expect(() => parseWalRanges('"WAL-Ranges": [ { "Timeline": 1 } ]')).toThrow(/a WAL range it does not spell out/);
  });
});
