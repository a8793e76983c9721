// Backup retention against real storage: the local filesystem backend and an S3-protocol server.
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, describe, expect, it } from 'vitest';
import { listBackups, resolveBackup } from '../../../../../functions/core/catalog/catalog.ts';
import { backupKeys } from '../../../../../functions/core/catalog/layout.ts';
import { applyRetention, type RetentionPolicy } from '../../../../../functions/core/cleanup/retention.ts';
import { createTextLogger } from '../../../../../functions/core/logger.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import { openStorage } from '../../../../../functions/core/storage/index.ts';
import { S3Storage } from '../../../../../functions/core/storage/s3.ts';
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

const DEFAULTS: RetentionPolicy = { keepLast: 7, keepDaily: 7, keepWeekly: 4, keepMonthly: 12 };

describe('partial backups never displace full ones (issue 10)', () => {
  it('the repro: one full backup, eight --schema-only ones, a default cleanup: the full one stays and is `latest`', async () => {
    const storage = fileStorage();
    const full = await putValidBackup(storage, DB, { id: '20261105T010000Z-f011' });
    const schemaOnly: string[] = [];
    for (let i = 0; i < 8; i++) schemaOnly.push(await putValidBackup(storage, DB, { id: `20261105T020${i}00Z-5c0${i}`, options: { schemaOnly: true } }));

    const dry = await applyRetention(storage, DB, DEFAULTS, { dryRun: true, now: NOW });
    expect(dry.kept).toContain(full);
    expect(dry.content[full]).toBe('full');
    expect(dry.deleted).toEqual([schemaOnly[0]]);
    expect(dry.content[schemaOnly[0]!]).toBe('schema-only');

    const run = await applyRetention(storage, DB, DEFAULTS, { dryRun: false, now: NOW });
    expect(run.deleted).toEqual([schemaOnly[0]]);
    expect((await listBackups(storage, DB)).map((m) => m.id)).toEqual([...schemaOnly.slice(1).reverse(), full]);
    expect((await resolveBackup(storage, DB, 'latest')).id).toBe(full);
  });

  it('with legacy `logical` manifests too: their options say which are partial', async () => {
    const storage = fileStorage();
    const full = await putValidBackup(storage, DB, { id: '20261101T010000Z-f011', kind: 'logical' });
    for (let i = 0; i < 3; i++) await putValidBackup(storage, DB, { id: `20261102T0${i}0000Z-7a0${i}`, kind: 'logical', options: { tables: ['public.users'] } });
    const r = await applyRetention(storage, DB, { ...NONE, keepLast: 1 }, { dryRun: false, now: NOW });
    expect(r.kept).toEqual(['20261102T020000Z-7a02', full]);
    expect((await resolveBackup(storage, DB, 'latest')).id).toBe(full);
  });
});

describe('invalid manifests from a newer pgops (issue 10)', () => {
  it('a newest manifest of formatVersion 2 protects nothing and is never deleted; the problem says a newer pgops wrote it', async () => {
    const storage = fileStorage();
    await putBackup(storage, IDS[2]!);
    await putBackup(storage, IDS[3]!);
    await storage.putBytes(backupKeys(DB, IDS[4]!).dump, 'dump of a newer pgops');
    await storage.putBytes(backupKeys(DB, IDS[4]!).manifest, JSON.stringify({ ...validManifest(DB, IDS[4]!), formatVersion: 2 }));
    const r = await applyRetention(storage, DB, { ...NONE, keepLast: 1 }, { dryRun: false, now: new Date(Date.now() + 30 * 86_400_000) });
    expect(r).toMatchObject({ kept: [IDS[3]], deleted: [IDS[2]] });
    expect(r.invalid).toEqual([{ id: IDS[4], problem: expect.stringContaining('written by a newer pgops') }]);
    expect(r.orphans).toEqual([]); // a folder with a manifest, even an invalid one, is not an orphan
    expect(await idsIn(storage)).toEqual([IDS[3], IDS[4]]);
    expect(await storage.getBytes(backupKeys(DB, IDS[4]!).dump)).toBeDefined();
  });
});

describe('unfinished writes: temporary files of the local storage (issue 10)', () => {
  function leaveTempFile(storage: FileStorage, relDir: string, name: string, at: Date): string {
    const abs = join(storage.root, ...relDir.split('/'));
    mkdirSync(abs, { recursive: true });
    writeFileSync(join(abs, name), Buffer.alloc(4096));
    utimesSync(join(abs, name), at, at);
    return join(abs, name);
  }

  it('a crashed backup\'s temp dump older than a day is reported by a dry run, removed by a run; a recent one is left alone', async () => {
    const storage = fileStorage();
    await putBackup(storage, IDS[4]!);
    const now = new Date();
    const old = leaveTempFile(storage, `${DB}/logical/20261101T020000Z-dead`, '.dump.pgops-tmp-0a1b2c3d4e5f', new Date(now.getTime() - 2 * 86_400_000));
    const recent = leaveTempFile(storage, `${DB}/logical/20261105T110000Z-beef`, '.dump.pgops-tmp-99aa', new Date(now.getTime() - 3_600_000));
    const otherDb = leaveTempFile(storage, 'billing/logical/20261101T020000Z-dead', '.dump.pgops-tmp-77', new Date(now.getTime() - 5 * 86_400_000));

    const dry = await applyRetention(storage, DB, NONE, { dryRun: true, now });
    expect(dry.incomplete).toEqual([{ key: `${DB}/logical/20261101T020000Z-dead/.dump.pgops-tmp-0a1b2c3d4e5f`, kind: 'temp-file', startedAt: expect.any(String) }]);
    expect(dry.incompleteRecent.map((i) => i.key)).toEqual([`${DB}/logical/20261105T110000Z-beef/.dump.pgops-tmp-99aa`]);
    expect(dry.incompleteNote).toBeUndefined();
    expect([old, recent, otherDb].map(existsSync)).toEqual([true, true, true]);

    const run = await applyRetention(storage, DB, NONE, { dryRun: false, now });
    expect(run.incomplete.map((i) => i.key)).toEqual(dry.incomplete.map((i) => i.key));
    expect([old, recent, otherDb].map(existsSync)).toEqual([false, true, true]);
    expect(existsSync(join(storage.root, DB, 'logical', '20261101T020000Z-dead'))).toBe(false); // its empty folder went too
    expect(run.kept).toEqual([IDS[4]]);
  });
});

describe('unfinished writes: S3 multipart uploads (issue 10)', () => {
  it('s3rver cannot list them: the report says so and retention goes on', async () => {
    const storage = openStorage(`s3://${s3.bucket}/incomplete`, { s3Client: s3.client() });
    for (const id of IDS.slice(0, 3)) await putBackup(storage, id);
    const r = await applyRetention(storage, DB, { ...NONE, keepLast: 2 }, { dryRun: false, now: NOW });
    expect(r.incompleteNote).toBe('cannot list incomplete uploads on this store (the bucket\'s lifecycle rule aborts them after a day)');
    expect(r).toMatchObject({ incomplete: [], incompleteRecent: [], deleted: [IDS[0]], kept: [IDS[2], IDS[1]] });
    expect(await idsIn(storage)).toEqual(IDS.slice(1, 3));
  });

  /** An S3 store whose client is mocked: no backups, and the given unfinished uploads under the database. */
  function mockedS3(uploads: Array<{ key: string; uploadId: string; initiated: Date }>) {
    const mock = mockClient(S3Client);
    mock.on(ListObjectsV2Command).resolves({ Contents: [], IsTruncated: false });
    mock.on(ListMultipartUploadsCommand).resolves({ IsTruncated: false, Uploads: uploads.map((u) => ({ Key: `pgops/${u.key}`, UploadId: u.uploadId, Initiated: u.initiated })) });
    mock.on(AbortMultipartUploadCommand).resolves({});
    return { mock, storage: new S3Storage(new S3Client({ region: 'us-east-1' }), 's3://backups/pgops') };
  }

  it('where the store lists them: uploads older than a day are aborted (a dry run only reports), recent ones left alone', async () => {
    const now = new Date('2026-11-05T12:00:00Z');
    const { mock, storage } = mockedS3([
      { key: `${DB}/logical/20261103T020000Z-dead/dump`, uploadId: 'old-1', initiated: new Date('2026-11-03T02:00:05Z') },
      { key: `${DB}/logical/20261105T110000Z-beef/dump`, uploadId: 'live-1', initiated: new Date('2026-11-05T11:00:05Z') },
    ]);
    try {
      const dry = await applyRetention(storage, DB, DEFAULTS, { dryRun: true, now });
      expect(dry.incomplete).toEqual([{ key: `${DB}/logical/20261103T020000Z-dead/dump`, kind: 'multipart', uploadId: 'old-1', startedAt: '2026-11-03T02:00:05.000Z' }]);
      expect(dry.incompleteRecent.map((i) => i.uploadId)).toEqual(['live-1']);
      expect(mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(0);
      expect(mock.commandCalls(ListMultipartUploadsCommand)[0]!.args[0].input).toMatchObject({ Bucket: 'backups', Prefix: `pgops/${DB}/` });

      const run = await applyRetention(storage, DB, DEFAULTS, { dryRun: false, now });
      expect(run.incomplete.map((i) => i.uploadId)).toEqual(['old-1']);
      expect(mock.commandCalls(AbortMultipartUploadCommand).map((c) => c.args[0].input)).toEqual([
        { Bucket: 'backups', Key: `pgops/${DB}/logical/20261103T020000Z-dead/dump`, UploadId: 'old-1' },
      ]);
    } finally {
      mock.restore();
    }
  });

  it('a store that lists but cannot abort them: a note, nothing claimed removed, and no failure', async () => {
    const { mock, storage } = mockedS3([{ key: `${DB}/logical/20261101T020000Z-dead/dump`, uploadId: 'old-2', initiated: new Date('2026-11-01T02:00:05Z') }]);
    mock.on(AbortMultipartUploadCommand).rejects(new S3ServiceException({ name: 'NotImplemented', $fault: 'server', $metadata: { httpStatusCode: 501 }, message: 'not implemented' }));
    try {
      const r = await applyRetention(storage, DB, DEFAULTS, { dryRun: false, now: NOW });
      expect(r.incomplete).toEqual([]);
      expect(r.incompleteNote).toBe('cannot abort incomplete uploads on this store (the bucket\'s lifecycle rule aborts them after a day): 1 left');
    } finally {
      mock.restore();
    }
  });

  it('a role not allowed to list them (AccessDenied): a warning naming it, and retention still runs; an outage still fails', async () => {
    const { mock, storage } = mockedS3([]);
    mock.on(ListMultipartUploadsCommand).rejects(new S3ServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 }, message: 'Access Denied' }));
    const lines: string[] = [];
    try {
      const r = await applyRetention(storage, DB, DEFAULTS, { dryRun: false, now: NOW, logger: createTextLogger({ level: 'warn', write: (l) => lines.push(l) }) });
      expect(r.incompleteNote).toMatch(/^not allowed to list incomplete uploads \(S3 ListMultipartUploads of s3:\/\/backups\/pgops\/auth\/\* failed: AccessDenied.*; the bucket's lifecycle rule aborts them after a day\)$/);
      expect(lines.join('')).toContain('not allowed to list incomplete uploads');
      mock.on(ListMultipartUploadsCommand).rejects(new S3ServiceException({ name: 'InternalError', $fault: 'server', $metadata: { httpStatusCode: 500 }, message: 'boom' }));
      await expect(applyRetention(storage, DB, DEFAULTS, { dryRun: false, now: NOW })).rejects.toThrow(/ListMultipartUploads .* failed: InternalError/);
    } finally {
      mock.restore();
    }
  });
});
