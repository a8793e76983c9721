import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import { readWalStatus } from '../../../../../functions/core/wal/status.ts';
import { putBaseBackup, putHistory, putSegments, putWal, seg } from '../../../../helpers/physical-manifests.ts';

const root = mkdtempSync(join(tmpdir(), 'pgops-walstatus-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshStorage = () => new FileStorage(pathToFileURL(mkdtempSync(join(root, `s${++n}-`))).href);
const B1 = '20260101T020000Z-aaaa';
const B2 = '20260102T020000Z-bbbb';
const status = (s: FileStorage) => readWalStatus({ storage: s, databaseId: 'db' });

describe('wal status', () => {
  it('a continuous archive: every backup recoverable, the window from the oldest backup to the newest segment', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 1, 9);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 2, stopSegno: 3 });
    await putBaseBackup(s, 'db', { id: B2, startSegno: 6 });
    const r = await status(s);
    expect(r.ok).toBe(true);
    expect(r.problems).toEqual([]);
    expect(r.timelines).toEqual([{ timeline: 1, firstSegment: seg(1, 1), lastSegment: seg(1, 9), gaps: [] }]);
    expect(r.backups.map((b) => [b.id, b.recoverable, b.consistent, b.startSegment, b.stopSegment])).toEqual([
      [B2, true, true, seg(1, 6), seg(1, 6)], [B1, true, true, seg(1, 2), seg(1, 3)],
    ]);
    expect(r.window.from).toEqual({ backupId: B1, lsn: '0/3000100', segment: seg(1, 3), time: '2026-01-01T01:59:59.000Z' });
    expect(r.window.to).toMatchObject({ lsn: '0/A000000', segment: seg(1, 9) });
    expect(r.gaps).toEqual([]);
  });

  it('a gap after an older backup: named, with how far that backup reaches; the newer backup past it still recovers', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 2, 9, [5]);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 2, stopSegno: 3 });
    await putBaseBackup(s, 'db', { id: B2, startSegno: 7 });
    const r = await status(s);
    expect(r.ok).toBe(false);
    expect(r.gaps).toEqual([{ first: seg(1, 5), last: seg(1, 5), segments: 1, cutsOff: [B1] }]);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(new RegExp(`^gap: ${seg(1, 5)} is missing; recovery from backup ${B1} can reach 0/5000000 \\(end of ${seg(1, 4)}, archived .*\\) at most; from the end of backup ${B2} .* on the archive is whole again`));
    expect(r.backups.find((b) => b.id === B1)).toMatchObject({ recoverable: false, consistent: true, firstMissing: seg(1, 5), reaches: { segment: seg(1, 4) } });
    expect(r.window.from?.backupId).toBe(B2);
  });

  it('a gap after the newest backup: nothing reaches the end, take a new base backup', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 2, 12, [7, 8, 9]);
    await putBaseBackup(s, 'db', { id: B2, startSegno: 3 });
    const r = await status(s);
    expect(r.ok).toBe(false);
    expect(r.window).toEqual({ timeline: 1, from: null, to: null });
    expect(r.problems).toEqual([expect.stringMatching(new RegExp(`^gap: ${seg(1, 7)} \\.\\. ${seg(1, 9)} \\(3 segments\\) are missing; recovery from backup ${B2} can reach 0/7000000 .* at most; take a new base backup \\(pgops basebackup\\)$`))]);
    expect(r.timelines[0]!.gaps).toEqual([seg(1, 7), seg(1, 8), seg(1, 9)]);
  });

  it('a gap before the oldest backup does not matter (listed per timeline, not a problem)', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 1, 8, [2]);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 4 });
    const r = await status(s);
    expect(r.ok).toBe(true);
    expect(r.timelines[0]!.gaps).toEqual([seg(1, 2)]);
    expect(r.gaps).toEqual([]);
  });

  it('a backup whose own WAL is missing cannot be restored at all', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 2, 9, [3]);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 2, stopSegno: 4 });
    const r = await status(s);
    expect(r.backups[0]).toMatchObject({ consistent: false, recoverable: false, reaches: null, firstMissing: seg(1, 3) });
    expect(r.problems).toEqual([expect.stringContaining(`backup ${B1} cannot be restored at all (the gap is inside its own WAL)`)]);
  });

  it('a backup whose stop segment is not archived yet is named', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 2, 3);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 2, stopSegno: 4 });
    const r = await status(s);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([`backup ${B1} cannot be restored: its WAL through ${seg(1, 4)} is not in the archive (first missing: ${seg(1, 4)})`]);
  });

  it('after a fork: a backup before the switch recovers along the new timeline; one on the abandoned branch is set apart', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 2, 8); // timeline 1 went on after the fork (an old primary)
    await putSegments(s, 'db', 2, 5, 9);
    await putHistory(s, 'db', 2, [{ parent: 1, switchSegno: 5 }]);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 2 });
    await putBaseBackup(s, 'db', { id: B2, startSegno: 6 }); // on timeline 1, after it was left
    const r = await status(s);
    expect(r.newestTimeline).toBe(2);
    expect(r.backups.find((b) => b.id === B1)).toMatchObject({ recoverable: true, reaches: { segment: seg(2, 9) } });
    expect(r.backups.find((b) => b.id === B2)).toMatchObject({ recoverable: false, note: expect.stringContaining("not on timeline 2's path") });
    expect(r.window).toMatchObject({ timeline: 2, from: { backupId: B1 }, to: { segment: seg(2, 9), lsn: '0/A000000' } });
    expect(r.ok).toBe(true);
  });

  it('the newest timeline without its history file: nothing on it can be recovered, and it says why', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 2, 4);
    await putSegments(s, 'db', 3, 4, 5);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 2 });
    const r = await status(s);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([expect.stringContaining('00000003.history is not in the archive')]);
  });

  it('no base backup, or nothing at all', async () => {
    const s = freshStorage();
    expect((await status(s)).problems).toEqual(['nothing archived and no base backup: point-in-time recovery is not set up']);
    await putWal(s, 'db', seg(1, 1));
    const r = await status(s);
    expect(r).toMatchObject({ ok: false, window: { from: null, to: null }, backups: [] });
    expect(r.problems).toEqual(['no base backup: the archived WAL cannot be recovered from anything; take one (pgops basebackup)']);
  });
});
