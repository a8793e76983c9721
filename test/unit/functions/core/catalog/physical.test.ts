// The physical catalog on real local storage: what a base backup manifest must say, what a valid
// base backup is (its folder, its base object at the recorded size), what is reported instead, and
// how `latest` and an id resolve.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { scanBackups } from '../../../../../functions/core/catalog/catalog.ts';
import { BackupNotFoundError } from '../../../../../functions/core/catalog/errors.ts';
import { backupIdTime, physicalKeys } from '../../../../../functions/core/catalog/layout.ts';
import { parsePhysicalManifest, resolvePhysicalBackup, scanPhysicalBackups, walSegmentsOf, type PhysicalManifest } from '../../../../../functions/core/catalog/physical.ts';
import { UsageError } from '../../../../../functions/core/errors.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import { putBackup } from '../../../../helpers/manifests.ts';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function storage(): FileStorage {
  const d = mkdtempSync(join(tmpdir(), 'pgops-physical-catalog-'));
  dirs.push(d);
  return new FileStorage(pathToFileURL(d).href);
}

const DB = 'orders';
const ID = ['20261101T020000Z-0a01', '20261102T020000Z-0a02', '20261103T020000Z-0a03'] as const;

function manifest(id: string, overrides: Partial<PhysicalManifest> = {}): PhysicalManifest {
  const completedAt = overrides.completedAt ?? (backupIdTime(id) ?? new Date(0)).toISOString();
  const compression = overrides.compression ?? 'gzip';
  return {
    id, database: DB, kind: 'physical', formatVersion: 1, format: 'tar', compression, walMethod: 'none',
    startedAt: new Date(Date.parse(completedAt) - 60_000).toISOString(), completedAt, durationMs: 60_000,
    bytes: 16, sha256: 'b'.repeat(64), key: physicalKeys(DB, id, compression).base,
    serverVersion: '15.18', serverVersionNum: 150018, pgBasebackupVersion: 'pg_basebackup (PostgreSQL) 15.18',
    systemIdentifier: '7714288514974097820', timeline: 1, startLsn: '0/2000028', stopLsn: '0/2000100',
    startSegment: '000000010000000000000002', stopSegment: '000000010000000000000002', walSegmentSize: 16 * 1024 * 1024,
    stoppedAt: new Date(Date.parse(completedAt) - 30_000).toISOString(), sourceHost: 'postgres://backup:***@db:5432/orders',
    ...overrides,
  };
}

/** Write a base backup the way the job does: base object, then the manifest last. */
async function putBaseBackup(s: FileStorage, m: PhysicalManifest, base: Buffer = Buffer.alloc(m.bytes), folder = m.id): Promise<void> {
  const keys = physicalKeys(DB, folder, m.compression);
  await s.putBytes(keys.base, base);
  await s.putBytes(keys.manifest, JSON.stringify(m));
}

describe('parsePhysicalManifest', () => {
  it('accepts the manifest the job writes, keeping fields a newer pgops may add', () => {
    const m = { ...manifest(ID[0]), tarBytes: 1234, checkpointLsn: '0/2000060', addedLater: { x: 1 } };
    expect(parsePhysicalManifest(JSON.stringify(m))).toEqual({ manifest: m });
  });

  it.each<[string, unknown, RegExp]>([
    ['not JSON', '{', /^not valid JSON/],
    ['a logical backup manifest', { ...manifest(ID[0]), kind: 'full' }, /^kind "full" is not "physical": not a base backup manifest/],
    ['a newer format', { ...manifest(ID[0]), formatVersion: 2 }, /^formatVersion 2 \(this pgops reads 1\): written by a newer pgops/],
    ['no stop LSN', { ...manifest(ID[0]), stopLsn: undefined }, /^stopLsn: /],
    ['an LSN that is not one', { ...manifest(ID[0]), startLsn: '12345' }, /^startLsn: must be an LSN/],
    ['a stop before the start', { ...manifest(ID[0]), stopLsn: '0/1000000' }, /^stopLsn 0\/1000000 is before startLsn 0\/2000028/],
    ['a start segment that does not hold the start', { ...manifest(ID[0]), startSegment: '000000010000000000000001' }, /^startSegment 000000010000000000000001 does not hold startLsn 0\/2000028 on timeline 1 \(expected 000000010000000000000002\)/],
    ['a stop segment on another timeline', { ...manifest(ID[0]), stopSegment: '000000020000000000000002' }, /^stopSegment 000000020000000000000002 does not hold stopLsn/],
    ['an unknown compression', { ...manifest(ID[0]), compression: 'brotli' }, /^compression: /],
    ['a segment size that is not a power of two', { ...manifest(ID[0]), walSegmentSize: 3 * 1024 * 1024 }, /^walSegmentSize: must be a power of two/],
    ['a system identifier as a number', { ...manifest(ID[0]), systemIdentifier: 7714288514 }, /^systemIdentifier: /],
  ])('rejects %s, saying why', (_what, value, problem) => {
    const r = parsePhysicalManifest(typeof value === 'string' ? value : JSON.stringify(value));
    expect('problem' in r ? r.problem : 'accepted').toMatch(problem);
  });
});

describe('walSegmentsOf', () => {
  it('needs the segment before a stop LSN that falls exactly on a segment boundary (PostgreSQL\'s XLByteToPrevSeg)', () => {
    const size = 16 * 1024 * 1024;
    expect(walSegmentsOf({ timeline: 3, startLsn: '0/2000028', stopLsn: '0/3000000', walSegmentSize: size }))
      .toEqual({ startSegment: '000000030000000000000002', stopSegment: '000000030000000000000002' });
    expect(walSegmentsOf({ timeline: 3, startLsn: '0/2000028', stopLsn: '0/3000001', walSegmentSize: size }).stopSegment).toBe('000000030000000000000003');
    expect(walSegmentsOf({ timeline: 1, startLsn: '1/FF000028', stopLsn: '2/00000100', walSegmentSize: size }))
      .toEqual({ startSegment: '0000000100000001000000FF', stopSegment: '000000010000000200000000' });
  });
});

describe('scanPhysicalBackups', () => {
  it('sorts folders into valid base backups (newest first), rejected manifests with the reason, and orphans', async () => {
    const s = storage();
    await putBaseBackup(s, manifest(ID[0]));
    await putBaseBackup(s, manifest(ID[2], { compression: 'zstd' }));
    // A manifest naming another folder's id, one whose base object is missing, one whose size differs.
    await putBaseBackup(s, manifest(ID[1], { id: ID[0] }), undefined, ID[1]);
    const gone = manifest('20261104T020000Z-0b04');
    await s.putBytes(physicalKeys(DB, gone.id, 'gzip').manifest, JSON.stringify(gone));
    await putBaseBackup(s, manifest('20261105T020000Z-0b05', { bytes: 99 }), Buffer.alloc(10));
    // An unfinished base backup: the object, no manifest.
    await s.putBytes(physicalKeys(DB, '20261106T020000Z-0c06', 'gzip').base, 'partial');
    // Not a backup folder, and a logical backup: neither is a base backup.
    await s.putBytes(`${DB}/physical/not-an-id/manifest.json`, '{}');
    await putBackup(s, DB, { id: '20261107T020000Z-0d07' });

    const scan = await scanPhysicalBackups(s, DB);
    expect(scan.backups.map((b) => [b.id, b.manifest.compression])).toEqual([[ID[2], 'zstd'], [ID[0], 'gzip']]);
    expect(scan.backups[0]!.objects.map((o) => o.key)).toEqual([physicalKeys(DB, ID[2], 'zstd').base, physicalKeys(DB, ID[2], 'zstd').manifest]);
    expect(scan.invalid.map((b) => [b.id, b.problem])).toEqual([
      ['20261105T020000Z-0b05', `its base object ${physicalKeys(DB, '20261105T020000Z-0b05', 'gzip').base} holds 10 bytes, the manifest says 99`],
      ['20261104T020000Z-0b04', `its base object ${physicalKeys(DB, '20261104T020000Z-0b04', 'gzip').base} is missing`],
      [ID[1], `id "${ID[0]}" does not match its folder ${ID[1]}`],
    ]);
    expect(scan.orphans.map((o) => [o.id, o.bytes])).toEqual([['20261106T020000Z-0c06', 7]]);
    // The logical catalog does not see base backups either.
    expect((await scanBackups(s, DB)).backups.map((b) => b.id)).toEqual(['20261107T020000Z-0d07']);
  });

  it('rejects a manifest whose key points anywhere but its own base object', async () => {
    const s = storage();
    await putBaseBackup(s, manifest(ID[0], { key: `${DB}/logical/${ID[0]}/dump` }));
    const scan = await scanPhysicalBackups(s, DB);
    expect(scan.backups).toEqual([]);
    expect(scan.invalid[0]?.problem).toBe(`key "${DB}/logical/${ID[0]}/dump" is not this backup's base object (${physicalKeys(DB, ID[0], 'gzip').base})`);
  });

  it('orders two base backups of the same second by when they completed', async () => {
    const s = storage();
    await putBaseBackup(s, manifest('20261101T020000Z-ffff', { completedAt: '2026-11-01T02:00:05.100Z' }));
    await putBaseBackup(s, manifest('20261101T020000Z-0001', { completedAt: '2026-11-01T02:00:09.400Z' }));
    expect((await scanPhysicalBackups(s, DB)).backups.map((b) => b.id)).toEqual(['20261101T020000Z-0001', '20261101T020000Z-ffff']);
  });
});

describe('resolvePhysicalBackup', () => {
  it('resolves latest to the newest valid base backup, and an id to its manifest', async () => {
    const s = storage();
    await putBaseBackup(s, manifest(ID[0]));
    await putBaseBackup(s, manifest(ID[1]));
    await putBaseBackup(s, manifest(ID[2], { bytes: 5 }), Buffer.alloc(4));
    expect((await resolvePhysicalBackup(s, DB, 'latest')).id).toBe(ID[1]);
    expect(await resolvePhysicalBackup(s, DB, ID[0])).toEqual(manifest(ID[0]));
  });

  it('names what exists when the id is not there', async () => {
    const s = storage();
    await putBaseBackup(s, manifest(ID[0]));
    await putBaseBackup(s, manifest(ID[1]));
    const err = await resolvePhysicalBackup(s, DB, ID[2]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupNotFoundError);
    expect((err as Error).message).toBe(`base backup ${ID[2]} of database "${DB}" in ${s.url} not found: base backups there, newest first: ${ID[1]}, ${ID[0]} (pgops basebackups list shows them)`);
  });

  it('says there is none, and what there is instead, for latest', async () => {
    const s = storage();
    await s.putBytes(physicalKeys(DB, ID[0], 'gzip').base, 'partial');
    await putBaseBackup(s, manifest(ID[1], { bytes: 3 }), Buffer.alloc(1));
    const err = await resolvePhysicalBackup(s, DB, 'latest').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupNotFoundError);
    expect((err as Error).message).toBe(`no base backup of database "${DB}" in ${s.url}: no valid base backup there; 1 invalid manifest(s); 1 unfinished folder(s) without a manifest (pgops basebackups list shows them); take one with pgops basebackup`);
  });

  it('refuses an invalid manifest by id, with its problem', async () => {
    const s = storage();
    await putBaseBackup(s, manifest(ID[0], { bytes: 3 }), Buffer.alloc(1));
    await expect(resolvePhysicalBackup(s, DB, ID[0])).rejects.toThrow(/^base backup 20261101T020000Z-0a01 of database "orders" .* has an invalid manifest \(orders\/physical\/20261101T020000Z-0a01\/manifest\.json: its base object .* holds 1 bytes, the manifest says 3\)/);
  });

  it('refuses something that is not a backup id as a usage error', async () => {
    await expect(resolvePhysicalBackup(storage(), DB, '../etc')).rejects.toBeInstanceOf(UsageError);
  });
});
