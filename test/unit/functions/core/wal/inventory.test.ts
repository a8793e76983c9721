import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import { walChecksumKey, walFileKey } from '../../../../../functions/core/catalog/layout.ts';
import { archiveWindows, checkContinuity, newestTimeline, readWalInventory, recoveryPath, WalHistoryMissingError } from '../../../../../functions/core/wal/inventory.ts';
import { parseLsn, segmentFileName } from '../../../../../functions/core/wal/lsn.ts';

const root = mkdtempSync(join(tmpdir(), 'pgops-inv-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshStorage = () => new FileStorage(pathToFileURL(mkdtempSync(join(root, `s${++n}-`))).href);

/** Archive a file as wal push leaves it: data, then its checksum object (the commit point). */
async function archive(storage: FileStorage, name: string, opts: { committed?: boolean; content?: string } = {}): Promise<void> {
  const key = walFileKey('db', name, name.endsWith('.history') ? 'none' : 'gz');
  await storage.putBytes(key, opts.content ?? 'x');
  if (opts.committed !== false) await storage.putBytes(walChecksumKey(key), `${'0'.repeat(64)}  ${name}\n`);
}
const seg = (tli: number, segno: number) => segmentFileName(tli, BigInt(segno));

describe('the WAL inventory', () => {
  it('counts only committed files, and names gaps per timeline', async () => {
    const s = freshStorage();
    for (const i of [1, 2, 3, 5, 6]) await archive(s, seg(1, i));
    await archive(s, seg(1, 4), { committed: false }); // a push that never completed
    await s.putBytes('db/wal/00000001/not-a-wal-file', 'x');
    const inv = await readWalInventory(s, 'db');
    expect([...inv.segmentsOf(1).keys()]).toEqual([1n, 2n, 3n, 5n, 6n]);
    expect(inv.uncommitted.map((o) => o.key).sort()).toEqual(['db/wal/00000001/000000010000000000000004.gz', 'db/wal/00000001/not-a-wal-file']);
    expect(archiveWindows(inv)).toEqual([{ timeline: 1, firstSegment: seg(1, 1), lastSegment: seg(1, 6), gaps: [seg(1, 4)] }]);
    expect(newestTimeline(inv)).toBe(1);
  });

  it('checks continuity from a start LSN to a target, naming each missing segment', async () => {
    const s = freshStorage();
    for (const i of [2, 3, 5, 6]) await archive(s, seg(1, i));
    const inv = await readWalInventory(s, 'db');
    const toTarget = checkContinuity(inv, { timeline: 1, fromLsn: parseLsn('0/2000028'), toLsn: parseLsn('0/3FFFFFF') });
    expect(toTarget.missing).toEqual([]);
    expect(toTarget.segments.map((f) => f.name)).toEqual([seg(1, 2), seg(1, 3)]);
    expect(toTarget.last?.name).toBe(seg(1, 3));
    const pastGap = checkContinuity(inv, { timeline: 1, fromLsn: parseLsn('0/2000028'), toLsn: parseLsn('0/6000000') });
    expect(pastGap.missing).toEqual([seg(1, 4)]);
    expect(pastGap.last?.name).toBe(seg(1, 3));
    const toEnd = checkContinuity(inv, { timeline: 1, fromLsn: parseLsn('0/2000028') });
    expect(toEnd.toSegment).toBe(seg(1, 6));
    expect(toEnd.missing).toEqual([seg(1, 4)]);
    const beforeArchive = checkContinuity(inv, { timeline: 1, fromLsn: parseLsn('0/1000000'), toLsn: parseLsn('0/2000000') });
    expect(beforeArchive.missing).toEqual([seg(1, 1)]);
  });

  it('follows a timeline fork through its history file: the switch segment comes from the new timeline', async () => {
    const s = freshStorage();
    for (const i of [2, 3, 4, 5]) await archive(s, seg(1, i)); // timeline 1 went on after the fork
    for (const i of [4, 5, 6]) await archive(s, seg(2, i));
    await archive(s, '00000002.history', { content: '1\t0/4000100\tno recovery target specified\n' });
    const inv = await readWalInventory(s, 'db');
    expect(inv.timelines).toEqual([1, 2]);
    const onTwo = checkContinuity(inv, { timeline: 2, fromLsn: parseLsn('0/2000028') });
    expect(onTwo.segments.map((f) => f.name)).toEqual([seg(1, 2), seg(1, 3), seg(2, 4), seg(2, 5), seg(2, 6)]);
    expect(onTwo.missing).toEqual([]);
    const onOne = checkContinuity(inv, { timeline: 1, fromLsn: parseLsn('0/2000028') });
    expect(onOne.segments.map((f) => f.name)).toEqual([seg(1, 2), seg(1, 3), seg(1, 4), seg(1, 5)]);
  });

  it('refuses a timeline whose history file is not archived', async () => {
    const s = freshStorage();
    await archive(s, seg(3, 7));
    const inv = await readWalInventory(s, 'db');
    expect(() => recoveryPath(inv, 3)).toThrow(WalHistoryMissingError);
    expect(() => recoveryPath(inv, 3)).toThrow(/00000003.history is not in the archive/);
  });

  it('reports an empty archive as missing its first required segment', async () => {
    const inv = await readWalInventory(freshStorage(), 'db');
    expect(inv.files).toEqual([]);
    expect(checkContinuity(inv, { timeline: 1, fromLsn: parseLsn('0/2000028') }).missing).toEqual([seg(1, 2)]);
  });
});
