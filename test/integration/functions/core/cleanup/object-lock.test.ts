// Retention under S3 Object Lock (retention.objectLock), on real storage (the local filesystem and
// an S3-protocol server): every object is locked until its creation plus `days`, so what the keep
// rules would delete but is still locked is kept and reported ("locked until ... (Object Lock)"):
// logical backups, their orphans, base backups and WAL. Time passing is `now` moved past the lock.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { backupKeys, newBackupId } from '../../../../../functions/core/catalog/layout.ts';
import { applyRetention, lockedUntil, type RetentionPolicy } from '../../../../../functions/core/cleanup/retention.ts';
import { applyWalRetention } from '../../../../../functions/core/cleanup/wal-retention.ts';
import { createTextLogger } from '../../../../../functions/core/logger.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import { openStorage } from '../../../../../functions/core/storage/index.ts';
import type { Storage } from '../../../../../functions/core/storage/types.ts';
import { putBackup } from '../../../../helpers/manifests.ts';
import { putBaseBackup, putSegments, seg } from '../../../../helpers/physical-manifests.ts';
import { useS3rver } from '../../../../helpers/s3rver.ts';

const s3 = useS3rver('pgops-lock');
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const DAY = 86_400_000;
const LOCK = { mode: 'governance', days: 30 } as const;
const KEEP1: RetentionPolicy = { keepLast: 1, keepDaily: 0, keepWeekly: 0, keepMonthly: 0, objectLock: LOCK };

function fileStorage(): FileStorage {
  const d = mkdtempSync(join(tmpdir(), 'pgops-lock-'));
  dirs.push(d);
  return new FileStorage(pathToFileURL(d).href);
}

let n = 0;
const s3Storage = (): Storage => openStorage(`s3://${s3.bucket}/lock-${++n}`, { s3Client: s3.client() });

/** A log that keeps its lines, to read what retention said. */
function lines(): { logger: ReturnType<typeof createTextLogger>; text: () => string } {
  const out: string[] = [];
  return { logger: createTextLogger({ level: 'debug', write: (l: string) => out.push(l) }), text: () => out.join('\n') };
}

const idsIn = async (storage: Storage, db: string) => [...new Set((await storage.list(`${db}/logical/`)).map((o) => o.key.split('/')[2]))].sort();

describe.each([['local storage', fileStorage], ['S3 (s3rver)', s3Storage]])('logical backups under Object Lock (%s)', (_name, make) => {
  it('keeps and reports the backups the keep rules would delete while they are locked; deletes them once unlocked', async () => {
    const storage = make();
    const written = new Date();
    // Completed (by their manifests) 3, 2 and 1 days ago; every object written just now.
    const ids = [3, 2, 1].map((d) => newBackupId(new Date(written.getTime() - d * DAY)));
    for (const id of ids) await putBackup(storage, 'auth', { id });
    const stored = await storage.list('auth/logical/');

    const log = lines();
    const locked = await applyRetention(storage, 'auth', KEEP1, { dryRun: false, now: new Date(), logger: log.logger });
    expect(locked.deleted).toEqual([]);
    expect(locked.kept).toEqual([ids[2], ids[1], ids[0]]);
    expect(locked.reasons[ids[0]!]).toEqual(['locked']);
    expect(locked.locked.map((l) => [l.id, l.what])).toEqual([[ids[1], 'backup'], [ids[0], 'backup']]);
    // Locked until the newest object's creation plus 30 days, as S3 computes it.
    const newest = Math.max(...stored.filter((o) => o.key.includes(ids[0]!)).map((o) => o.lastModified.getTime()));
    expect(locked.locked.find((l) => l.id === ids[0])!.until).toBe(new Date(newest + 30 * DAY).toISOString());
    expect(log.text()).toContain(`kept backup ${ids[0]} that retention would delete: locked until `);
    expect(log.text()).toContain('(Object Lock, governance mode)');
    expect(await idsIn(storage, 'auth')).toEqual([...ids].sort());

    // 31 days on: nothing is locked any more, and the keep rules apply as without a lock.
    const later = await applyRetention(storage, 'auth', KEEP1, { dryRun: false, now: new Date(Date.now() + 31 * DAY) });
    expect(later.locked).toEqual([]);
    expect(later.deleted).toEqual([ids[1], ids[0]]);
    expect(await idsIn(storage, 'auth')).toEqual([ids[2]]);
  });

  it('leaves locked files without a manifest alone too, and reports them', async () => {
    const storage = make();
    const id = newBackupId(new Date(Date.now() - 5 * DAY));
    await storage.putBytes(backupKeys('auth', id).dump, 'half a dump');
    // Old enough to be an orphan (a day), not old enough to be unlocked.
    const now = new Date(Date.now() + 2 * DAY);
    const report = await applyRetention(storage, 'auth', KEEP1, { dryRun: false, now });
    expect(report.orphans).toEqual([]);
    expect(report.locked).toEqual([expect.objectContaining({ id, what: 'orphan' })]);
    expect(await idsIn(storage, 'auth')).toEqual([id]);
    const later = await applyRetention(storage, 'auth', KEEP1, { dryRun: false, now: new Date(Date.now() + 31 * DAY) });
    expect(later.orphans.map((o) => o.id)).toEqual([id]);
    expect(await idsIn(storage, 'auth')).toEqual([]);
  });

  it('without a lock deletes as before (the lock is what holds them)', async () => {
    const storage = make();
    const ids = [2, 1].map((d) => newBackupId(new Date(Date.now() - d * DAY)));
    for (const id of ids) await putBackup(storage, 'auth', { id });
    const report = await applyRetention(storage, 'auth', { ...KEEP1, objectLock: undefined }, { dryRun: false, now: new Date() });
    expect(report.deleted).toEqual([ids[0]]);
    expect(report.locked).toEqual([]);
  });
});

describe('base backups and WAL under Object Lock (local storage)', () => {
  it('keeps a locked base backup and the WAL it needs, reports the locked WAL, and deletes both once unlocked', async () => {
    const storage = fileStorage();
    const older = await putBaseBackup(storage, 'ledger', { completedAt: new Date(Date.now() - 2 * DAY), startSegno: 3 });
    const newer = await putBaseBackup(storage, 'ledger', { completedAt: new Date(Date.now() - DAY), startSegno: 6 });
    await putSegments(storage, 'ledger', 1, 1, 7);

    const log = lines();
    const locked = await applyWalRetention(storage, 'ledger', KEEP1, { dryRun: false, now: new Date(), logger: log.logger });
    expect(locked.physical).toMatchObject({ kept: [newer, older], deleted: [], reasons: { [older]: ['locked'] } });
    expect(locked.physical.locked).toEqual([expect.objectContaining({ id: older, what: 'backup' })]);
    // The locked base backup still counts: its WAL from segment 3 stays; segments 1 and 2 are locked too.
    expect(locked.wal).toMatchObject({ deleted: 0, keptFrom: seg(1, 3), locked: 2 });
    expect(locked.wal.lockedUntil! > new Date(Date.now() + 29 * DAY).toISOString()).toBe(true);
    expect(log.text()).toContain(`kept base backup ${older} that retention would delete: locked until`);
    expect(log.text()).toContain('kept 2 WAL file(s) no kept base backup needs: locked until');
    expect((await storage.list('ledger/wal/')).filter((o) => !o.key.endsWith('.sha256'))).toHaveLength(7);

    const later = await applyWalRetention(storage, 'ledger', KEEP1, { dryRun: false, now: new Date(Date.now() + 31 * DAY) });
    expect(later.physical).toMatchObject({ kept: [newer], deleted: [older] });
    expect(later.wal).toMatchObject({ deleted: 5, keptFrom: seg(1, 6), first: seg(1, 1), last: seg(1, 5) });
    expect(later.wal.locked).toBeUndefined();
  });

  it('computes the lock from the newest object: unlocked only when every object is', () => {
    const now = new Date('2026-12-01T00:00:00Z');
    const old = new Date('2026-10-01T00:00:00Z');
    const recent = new Date('2026-11-20T00:00:00Z');
    expect(lockedUntil([old], LOCK, now)).toBeUndefined();
    expect(lockedUntil([old, recent], LOCK, now)?.toISOString()).toBe('2026-12-20T00:00:00.000Z');
    expect(lockedUntil([recent], undefined, now)).toBeUndefined();
  });
});
