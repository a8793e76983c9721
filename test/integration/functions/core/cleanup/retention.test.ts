// Backup retention against real storage: the local filesystem backend and an S3-protocol server.
import { mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { backupKeys } from '../../../../../functions/core/catalog/layout.ts';
import { applyRetention, type RetentionPolicy } from '../../../../../functions/core/cleanup/retention.ts';
import { createTextLogger } from '../../../../../functions/core/logger.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import { openStorage } from '../../../../../functions/core/storage/index.ts';
import type { Storage } from '../../../../../functions/core/storage/types.ts';
import { putBackup as putValidBackup, validManifest } from '../../../../helpers/manifests.ts';
import { useS3rver } from '../../../../helpers/s3rver.ts';

const s3 = useS3rver('pgops-cleanup');
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const NONE: RetentionPolicy = { keepLast: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0 };
const KEEP3: RetentionPolicy = { ...NONE, keepLast: 3 };
const DB = 'auth';
const IDS = ['20261101T020000Z-0a01', '20261102T020000Z-0a02', '20261103T020000Z-0a03', '20261104T020000Z-0a04', '20261105T020000Z-0a05'];
const NOW = new Date('2026-11-05T12:00:00Z');

function fileStorage(): FileStorage {
  const d = mkdtempSync(join(tmpdir(), 'pgops-cleanup-'));
  dirs.push(d);
  return new FileStorage(pathToFileURL(d).href);
}

/** A whole backup with a restore test beside it, completed at the time in its id. */
async function putBackup(storage: Storage, id: string, db = DB): Promise<void> {
  await putValidBackup(storage, db, { id, dump: `dump of ${id}` });
  await storage.putBytes(backupKeys(db, id).restoreTest, '{"ok":true}');
}

const idsIn = async (storage: Storage, db = DB) => [...new Set((await storage.list(`${db}/logical/`)).map((o) => o.key.split('/')[2]))].sort();

/** Records every delete, in order, and passes everything through. */
function recording(inner: Storage): Storage & { deletes: string[] } {
  const deletes: string[] = [];
  return {
    url: inner.url,
    deletes,
    putStream: (k, b, o) => inner.putStream(k, b, o),
    putBytes: (k, d, o) => inner.putBytes(k, d, o),
    getStream: (k) => inner.getStream(k),
    getBytes: (k) => inner.getBytes(k),
    list: (p) => inner.list(p),
    async delete(k) { deletes.push(k); await inner.delete(k); },
  };
}

describe('backup retention (local storage)', () => {
  it('keepLast 3 of five: a dry run names the 2 oldest and deletes nothing; the run keeps exactly the 3 newest', async () => {
    const storage = recording(fileStorage());
    for (const id of IDS) await putBackup(storage, id);

    const dry = await applyRetention(storage, DB, KEEP3, { dryRun: true, now: NOW });
    expect(dry.deleted.sort()).toEqual(IDS.slice(0, 2));
    expect(dry.kept).toEqual([IDS[4], IDS[3], IDS[2]]);
    expect(storage.deletes).toEqual([]);
    expect(await idsIn(storage)).toEqual(IDS);

    const run = await applyRetention(storage, DB, KEEP3, { dryRun: false, now: NOW });
    expect(run.deleted.sort()).toEqual(IDS.slice(0, 2));
    expect(await idsIn(storage)).toEqual(IDS.slice(2));
    // No file of a deleted backup is left, and the kept ones are whole.
    const keys = (await storage.list('')).map((o) => o.key);
    expect(keys.filter((k) => IDS.slice(0, 2).some((id) => k.includes(id)))).toEqual([]);
    for (const id of IDS.slice(2)) expect(keys).toEqual(expect.arrayContaining([`${DB}/logical/${id}/dump`, `${DB}/logical/${id}/manifest.json`, `${DB}/logical/${id}/restore-test.json`]));
  });

  it('deletes each backup\'s manifest before its data', async () => {
    const storage = recording(fileStorage());
    for (const id of IDS) await putBackup(storage, id);
    await applyRetention(storage, DB, KEEP3, { dryRun: false, now: NOW });
    for (const id of IDS.slice(0, 2)) {
      const mine = storage.deletes.filter((k) => k.includes(id));
      expect(mine).toHaveLength(3);
      expect(mine[0]).toBe(`${DB}/logical/${id}/manifest.json`);
    }
  });

  it('with every policy at 0 the newest backup is still there', async () => {
    const storage = fileStorage();
    for (const id of IDS) await putBackup(storage, id);
    const r = await applyRetention(storage, DB, NONE, { dryRun: false, now: NOW });
    expect(r.kept).toEqual([IDS[4]]);
    expect(r.reasons).toEqual({ [IDS[4]!]: ['newest'] });
    expect(await idsIn(storage)).toEqual([IDS[4]]);
  });

  it('removes files without a manifest older than a day, leaves fresh ones (an upload in progress) alone', async () => {
    const storage = fileStorage();
    await putBackup(storage, IDS[4]!);
    const old = '20261101T020000Z-dead';
    const fresh = '20261105T110000Z-beef';
    await storage.putBytes(`${DB}/logical/${old}/dump`, 'crashed upload');
    await storage.putBytes(`${DB}/logical/${fresh}/dump`, 'still uploading');
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
    utimesSync(join(storage.root, DB, 'logical', old, 'dump'), twoDaysAgo, twoDaysAgo);

    const dry = await applyRetention(storage, DB, NONE, { dryRun: true, now: new Date() });
    expect(dry.orphans).toEqual([{ id: old, keys: [`${DB}/logical/${old}/dump`], bytes: 14, lastModified: expect.any(String) }]);
    expect(dry.pending.map((p) => p.id)).toEqual([fresh]);
    expect(await idsIn(storage)).toEqual([old, fresh, IDS[4]].sort());

    const run = await applyRetention(storage, DB, NONE, { dryRun: false, now: new Date() });
    expect(run.orphans.map((o) => o.id)).toEqual([old]);
    expect(run.deleted).toEqual([]); // orphans are not backups: reported apart
    expect(await idsIn(storage)).toEqual([fresh, IDS[4]].sort());
  });

  it('leaves an unreadable manifest alone, and touches neither other databases nor foreign directories', async () => {
    const storage = fileStorage();
    for (const id of IDS) await putBackup(storage, id);
    for (const id of IDS) await putBackup(storage, id, 'billing');
    const broken = '20261001T020000Z-0bad';
    await storage.putBytes(`${DB}/logical/${broken}/manifest.json`, '{ not json');
    await storage.putBytes(`${DB}/logical/notes/readme.txt`, 'someone else\'s');
    const r = await applyRetention(storage, DB, NONE, { dryRun: false, now: NOW });
    expect(r.unreadable).toEqual([broken]);
    expect(await idsIn(storage)).toEqual([broken, IDS[4]!, 'notes'].sort());
    expect(await idsIn(storage, 'billing')).toEqual(IDS);
  });

  it('an invalid manifest is reported, left alone and does not count toward keepLast', async () => {
    const storage = fileStorage();
    const partial = IDS[0]!; // parses as JSON, fails the schema (the hand-made manifest of old)
    await storage.putBytes(backupKeys(DB, partial).manifest, '{}');
    await putBackup(storage, IDS[1]!);
    await putBackup(storage, IDS[2]!);
    const r = await applyRetention(storage, DB, { ...NONE, keepLast: 1 }, { dryRun: false, now: NOW });
    expect(r).toMatchObject({ kept: [IDS[2]], deleted: [IDS[1]], unreadable: [partial] });
    expect(r.invalid).toEqual([{ id: partial, problem: expect.stringContaining('id:') }]);
    expect(await idsIn(storage)).toEqual([partial, IDS[2]]);
  });

  it('with keepLast 1 and the newest manifest invalid, the valid backup is kept', async () => {
    const storage = fileStorage();
    await putBackup(storage, IDS[3]!);
    // The newest folder's manifest is a truncated upload.
    const truncated = JSON.stringify(validManifest(DB, IDS[4]!)).slice(0, 120);
    await storage.putBytes(backupKeys(DB, IDS[4]!).manifest, truncated);
    const lines: string[] = [];
    const logger = createTextLogger({ level: 'warn', write: (l) => lines.push(l) });
    const r = await applyRetention(storage, DB, { ...NONE, keepLast: 1 }, { dryRun: false, now: NOW, logger });
    expect(r).toMatchObject({ kept: [IDS[3]], deleted: [], invalid: [{ id: IDS[4], problem: expect.stringContaining('not valid JSON') }] });
    expect(await idsIn(storage)).toEqual([IDS[3], IDS[4]]);
    expect(lines.join('\n')).toContain(`invalid manifest ${backupKeys(DB, IDS[4]!).manifest}`);
  });
});

describe('backup retention (S3 protocol)', () => {
  it('keepLast 3 of five keeps exactly the 3 newest and leaves no object of the others', async () => {
    const storage = openStorage(`s3://${s3.bucket}/retention`, { s3Client: s3.client() });
    for (const id of IDS) await putBackup(storage, id);
    const dry = await applyRetention(storage, DB, KEEP3, { dryRun: true, now: NOW });
    expect(dry.deleted.sort()).toEqual(IDS.slice(0, 2));
    expect(await idsIn(storage)).toEqual(IDS);
    await applyRetention(storage, DB, KEEP3, { dryRun: false, now: NOW });
    expect(await idsIn(storage)).toEqual(IDS.slice(2));
    // An S3 object's age is its LastModified: orphans are judged by it too.
    await storage.putBytes(`${DB}/logical/20261101T000000Z-0001/dump`, 'x');
    const later = await applyRetention(storage, DB, KEEP3, { dryRun: false, now: new Date(Date.now() + 2 * 86_400_000) });
    expect(later.orphans.map((o) => o.id)).toEqual(['20261101T000000Z-0001']);
    expect(await idsIn(storage)).toEqual(IDS.slice(2));
  });
});
