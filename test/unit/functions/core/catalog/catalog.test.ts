// The catalog on real local storage: what a valid backup is, what is reported instead, `latest`,
// the full-vs-partial rule and the restore tests recorded beside backups.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { BackupNotFoundError } from '../../../../../functions/core/backup/errors.ts';
import { backupContent, isFullBackup, listBackups, readRestoreTest, resolveBackup, restoreTestsOf, scanBackups } from '../../../../../functions/core/catalog/catalog.ts';
import { backupKeys } from '../../../../../functions/core/catalog/layout.ts';
import { UsageError } from '../../../../../functions/core/errors.ts';
import { createTextLogger } from '../../../../../functions/core/logger.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import { FULL_OPTIONS, putBackup, validManifest } from '../../../../helpers/manifests.ts';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function storage(): FileStorage {
  const d = mkdtempSync(join(tmpdir(), 'pgops-catalog-'));
  dirs.push(d);
  return new FileStorage(pathToFileURL(d).href);
}

const DB = 'auth';
const ID = ['20261101T020000Z-0a01', '20261102T020000Z-0a02', '20261103T020000Z-0a03', '20261104T020000Z-0a04'] as const;

describe('scanBackups', () => {
  it('orders two backups of the same second by when they completed, not by their random suffix', async () => {
    const s = storage();
    // The suffix of the later backup sorts first: only the completion time tells them apart.
    await putBackup(s, DB, { id: '20261101T020000Z-ffff', completedAt: new Date('2026-11-01T02:00:05.100Z') });
    await putBackup(s, DB, { id: '20261101T020000Z-0001', completedAt: new Date('2026-11-01T02:00:09.400Z') });
    expect((await listBackups(s, DB)).map((m) => m.id)).toEqual(['20261101T020000Z-0001', '20261101T020000Z-ffff']);
    expect((await resolveBackup(s, DB, 'latest')).id).toBe('20261101T020000Z-0001');
  });


  it('sorts folders into valid backups, invalid manifests (with the reason) and orphans, each newest first', async () => {
    const s = storage();
    await putBackup(s, DB, { id: ID[0] });
    await putBackup(s, DB, { id: ID[2] });
    await s.putBytes(backupKeys(DB, ID[3]).manifest, '{"id":"20261104T020000Z-0a04"}');
    await s.putBytes(backupKeys(DB, ID[1]).manifest, '{ truncated');
    await s.putBytes(backupKeys(DB, '20261105T020000Z-dead').dump, 'crashed upload');
    await s.putBytes(`${backupKeys(DB, '20261105T020000Z-dead').dir}part/1`, 'abc');
    await s.putBytes(`${DB}/logical/notes/readme.txt`, 'not a backup folder');
    await putBackup(s, 'billing', { id: ID[3] });

    const scan = await scanBackups(s, DB);
    expect(scan.backups.map((b) => b.id)).toEqual([ID[2], ID[0]]);
    expect(scan.backups[0]!.manifest).toEqual(validManifest(DB, ID[2]));
    expect(scan.backups[0]!.objects.map((o) => o.key)).toEqual([backupKeys(DB, ID[2]).dump, backupKeys(DB, ID[2]).manifest]);
    expect(scan.invalid.map((b) => [b.id, b.manifestKey])).toEqual([[ID[3], backupKeys(DB, ID[3]).manifest], [ID[1], backupKeys(DB, ID[1]).manifest]]);
    expect(scan.invalid[0]!.problem).toMatch(/database: .*; kind: /);
    expect(scan.invalid[1]!.problem).toMatch(/^not valid JSON/);
    expect(scan.orphans).toEqual([{
      id: '20261105T020000Z-dead',
      objects: [expect.objectContaining({ key: backupKeys(DB, '20261105T020000Z-dead').dump }), expect.objectContaining({ key: `${DB}/logical/20261105T020000Z-dead/part/1` })],
      bytes: 17,
      lastModified: expect.any(Date),
    }]);
  });

  it('rejects a manifest that sits in another backup\'s folder, and warns about every rejected manifest', async () => {
    const s = storage();
    await s.putBytes(backupKeys(DB, ID[1]).manifest, JSON.stringify(validManifest(DB, ID[0])));
    const lines: string[] = [];
    const scan = await scanBackups(s, DB, createTextLogger({ write: (l) => lines.push(l) }));
    expect(scan.backups).toEqual([]);
    expect(scan.invalid).toMatchObject([{ id: ID[1], problem: `id "${ID[0]}" does not match its folder ${ID[1]}` }]);
    expect(lines.join('')).toContain(`invalid manifest ${backupKeys(DB, ID[1]).manifest}: not counted as a backup`);
  });

  it('an empty or missing database folder has nothing in it', async () => {
    expect(await scanBackups(storage(), DB)).toEqual({ backups: [], invalid: [], orphans: [] });
  });
});

describe('listBackups and resolveBackup', () => {
  it('list the valid backups only, newest first; `latest` is the newest valid one, whatever invalid manifest is newer', async () => {
    const s = storage();
    await putBackup(s, DB, { id: ID[0] });
    await putBackup(s, DB, { id: ID[1] });
    await s.putBytes(backupKeys(DB, ID[2]).manifest, '{}');
    expect((await listBackups(s, DB)).map((m) => m.id)).toEqual([ID[1], ID[0]]);
    expect((await resolveBackup(s, DB, 'latest')).id).toBe(ID[1]);
    expect((await resolveBackup(s, DB, ID[0])).id).toBe(ID[0]);
  });

  it('an invalid or missing backup id is "not found" (exit 1); a malformed reference is a usage error', async () => {
    const s = storage();
    await s.putBytes(backupKeys(DB, ID[2]).manifest, '{}');
    await expect(resolveBackup(s, DB, ID[2])).rejects.toBeInstanceOf(BackupNotFoundError);
    await expect(resolveBackup(s, DB, ID[3])).rejects.toBeInstanceOf(BackupNotFoundError);
    await expect(resolveBackup(s, DB, 'latest')).rejects.toThrow(/no backup of database "auth"/);
    await expect(resolveBackup(s, DB, 'yesterday')).rejects.toBeInstanceOf(UsageError);
  });
});

describe('full and partial backups', () => {
  it('only a backup of the whole database is full', () => {
    const m = (options: Partial<typeof FULL_OPTIONS>) => validManifest(DB, ID[0], { options: { ...FULL_OPTIONS, ...options } });
    expect(backupContent(m({}))).toBe('full');
    expect(backupContent(m({ schemaOnly: true }))).toBe('schema-only');
    expect(backupContent(m({ dataOnly: true }))).toBe('data-only');
    expect(backupContent(m({ tables: ['public.users'] }))).toBe('partial');
    expect(backupContent(m({ excludeTables: ['public.audit_logs'] }))).toBe('partial');
    expect([m({}), m({ schemaOnly: true }), m({ dataOnly: true }), m({ tables: ['t'] })].map(isFullBackup)).toEqual([true, false, false, false]);
  });
});

describe('kinds: what a backup holds (issue 10)', () => {
  it('a new manifest says what it holds; a legacy `logical` one is read by its options', async () => {
    const s = storage();
    await putBackup(s, DB, { id: ID[0], options: { schemaOnly: true } });
    await putBackup(s, DB, { id: ID[1], kind: 'logical', options: { dataOnly: true } });
    await putBackup(s, DB, { id: ID[2], kind: 'logical' });
    const list = await listBackups(s, DB);
    expect(list.map((m) => [m.id, m.kind, backupContent(m)])).toEqual([
      [ID[2], 'logical', 'full'],
      [ID[1], 'logical', 'data-only'],
      [ID[0], 'schema-only', 'schema-only'],
    ]);
  });

  it('a kind that contradicts the options is invalid: a hand edit cannot make a partial backup full', async () => {
    const s = storage();
    const edited = { ...validManifest(DB, ID[0], { options: { ...FULL_OPTIONS, tables: ['public.users'] } }), kind: 'full' };
    await s.putBytes(backupKeys(DB, ID[0]).manifest, JSON.stringify(edited));
    const scan = await scanBackups(s, DB);
    expect(scan.backups).toEqual([]);
    expect(scan.invalid).toMatchObject([{ id: ID[0], problem: 'kind "full" contradicts its options, which make it partial' }]);
  });

  it('`latest` is the newest FULL backup, whatever partial backups are newer; a partial one resolves by its id', async () => {
    const s = storage();
    await putBackup(s, DB, { id: ID[0] });
    await putBackup(s, DB, { id: ID[1], kind: 'logical' }); // a legacy full backup
    await putBackup(s, DB, { id: ID[2], options: { schemaOnly: true } });
    await putBackup(s, DB, { id: ID[3], kind: 'logical', options: { tables: ['public.users'] } });
    expect((await resolveBackup(s, DB, 'latest')).id).toBe(ID[1]);
    expect(await resolveBackup(s, DB, ID[2])).toMatchObject({ id: ID[2], kind: 'schema-only' });
    expect((await resolveBackup(s, DB, ID[3])).id).toBe(ID[3]);
  });

  it('with only partial backups, `latest` is an exit-1 error naming the database and how many partial ones there are', async () => {
    const s = storage();
    await putBackup(s, DB, { id: ID[0], options: { schemaOnly: true } });
    await putBackup(s, DB, { id: ID[1], options: { dataOnly: true } });
    const err = await resolveBackup(s, DB, 'latest').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupNotFoundError);
    expect((err as Error).message).toMatch(/^no full backup of database "auth" in file:\/\/.* \(2 partial backups: restore one by its id\)$/);
  });

  it('naming an invalid manifest by id says why it is not a backup', async () => {
    const s = storage();
    await s.putBytes(backupKeys(DB, ID[0]).manifest, JSON.stringify({ ...validManifest(DB, ID[0]), formatVersion: 2 }));
    const lines: string[] = [];
    const err = await resolveBackup(s, DB, ID[0], createTextLogger({ write: (l) => lines.push(l) })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupNotFoundError);
    expect((err as Error).message).toContain(`backup ${ID[0]} of database "auth" has an invalid manifest (${backupKeys(DB, ID[0]).manifest}: formatVersion 2`);
    expect((err as Error).message).toContain('written by a newer pgops');
    expect(lines.join('')).toContain(`invalid manifest ${backupKeys(DB, ID[0]).manifest}`);
    // `latest` says so too, when nothing valid is left.
    await expect(resolveBackup(s, DB, 'latest')).rejects.toThrow(/no backup of database "auth" in .*\(1 invalid manifest\(s\): pgops backups list shows why\)/);
  });
});

describe('restore tests', () => {
  it('reads the record beside a backup; one that proves nothing is undefined', async () => {
    const s = storage();
    const checkedAt = new Date('2026-11-03T04:00:00Z');
    await putBackup(s, DB, { id: ID[0], restoreTest: { ok: false, checkedAt, error: 'pg_restore: error: could not read input file' } });
    await putBackup(s, DB, { id: ID[1] });
    await s.putBytes(backupKeys(DB, ID[1]).restoreTest, '{"ok":"yes"}');
    expect(await readRestoreTest(s, DB, ID[0])).toEqual({ backupId: ID[0], ok: false, checkedAt, error: 'pg_restore: error: could not read input file' });
    expect(await readRestoreTest(s, DB, ID[1])).toBeUndefined();
    expect(await readRestoreTest(s, DB, ID[2])).toBeUndefined();
  });

  it('restoreTestsOf reads only the backups that have a record, newest first, up to the limit', async () => {
    const s = storage();
    const checkedAt = new Date('2026-11-05T04:00:00Z');
    for (const id of ID) await putBackup(s, DB, { id, restoreTest: id === ID[1] ? undefined : { ok: true, checkedAt } });
    const { backups } = await scanBackups(s, DB);
    expect((await restoreTestsOf(s, DB, backups, 10)).map((r) => r.backupId)).toEqual([ID[3], ID[2], ID[0]]);
    expect((await restoreTestsOf(s, DB, backups, 2)).map((r) => r.backupId)).toEqual([ID[3], ID[2]]);
  });
});
