// The recovery plan: which base backup, which timeline, and every WAL segment from the backup's
// start to the target archived, decided before anything is created.
import { describe, expect, it } from 'vitest';
import { PitrArchiveError, PitrRefusedError } from '../../../../../functions/core/pitr/errors.ts';
import { planRecovery, type BaseBackup } from '../../../../../functions/core/pitr/plan.ts';
import { parseTargetFlags, type TargetFlags } from '../../../../../functions/core/pitr/targets.ts';
import type { ArchivedWal, WalInventory } from '../../../../../functions/core/wal/inventory.ts';
import { DEFAULT_WAL_SEGMENT_SIZE, parseLsn, segmentFileName } from '../../../../../functions/core/wal/lsn.ts';
import { parseHistory, type HistoryEntry } from '../../../../../functions/core/wal/timeline.ts';

const T0 = Date.parse('2026-12-01T14:00:00Z');
const minute = (n: number) => new Date(T0 + n * 60_000);

/** Segment `segno` of `timeline`, archived at minute `at`. */
function segment(timeline: number, segno: number, at: number): ArchivedWal {
  const name = segmentFileName(timeline, BigInt(segno));
  return { name, kind: 'segment', timeline, segno: BigInt(segno), key: `db/wal/x/${name}.gz`, checksumKey: `db/wal/x/${name}.gz.sha256`, bytes: 1, archivedAt: minute(at) };
}

function inventory(files: ArchivedWal[], histories: Record<number, string> = {}): WalInventory {
  const historyMap = new Map<number, HistoryEntry[]>(Object.entries(histories).map(([t, text]) => [Number(t), parseHistory(text)]));
  const timelines = [...new Set([...files.map((f) => f.timeline), ...historyMap.keys()])].sort((a, b) => a - b);
  return {
    segmentSize: DEFAULT_WAL_SEGMENT_SIZE,
    files,
    segmentsOf: (tli) => new Map(files.filter((f) => f.timeline === tli && f.kind === 'segment').map((f) => [f.segno!, f])),
    histories: historyMap,
    timelines,
    uncommitted: [],
    objects: [],
  };
}

function backup(id: string, start: string, stop: string, stoppedAt: number, timeline = 1): BaseBackup {
  return { id, timeline, startLsn: parseLsn(start), stopLsn: parseLsn(stop), stoppedAt: minute(stoppedAt), walSegmentSize: DEFAULT_WAL_SEGMENT_SIZE, key: `db/physical/${id}/base.tar.gz`, sha256: '0'.repeat(64), bytes: 1, compression: 'gzip' };
}

const OLD = backup('20261201T140000Z-aaaa', '0/2000028', '0/2000138', 0);
const NEW = backup('20261201T141000Z-bbbb', '0/5000028', '0/5000138', 10);
// Segments 2..8 of timeline 1, segment n archived at minute 2n.
const ARCHIVE = inventory([2, 3, 4, 5, 6, 7, 8].map((n) => segment(1, n, 2 * n)));

const plan = (flags: TargetFlags, extra: { inv?: WalInventory; backups?: BaseBackup[]; backupId?: string } = {}) =>
  planRecovery({ spec: parseTargetFlags(flags), backups: extra.backups ?? [NEW, OLD], inventory: extra.inv ?? ARCHIVE, backupId: extra.backupId, databaseId: 'db' });

const refusal = (fn: () => unknown): Error => {
  try { fn(); } catch (err) { return err as Error; }
  throw new Error('expected a refusal');
};

describe('choosing the base backup', () => {
  it('takes the newest backup that ends before an LSN or a time target', () => {
    expect(plan({ targetLsn: '0/6000000' }).backup.id).toBe(NEW.id);
    expect(plan({ targetLsn: '0/4000000' }).backup.id).toBe(OLD.id);
    expect(plan({ targetTime: '2026-12-01T14:09:00Z' }).backup.id).toBe(OLD.id);
    expect(plan({ targetTime: '2026-12-01T14:10:00Z' }).backup.id).toBe(NEW.id);
  });

  it('takes the newest for a restore point, a transaction or --immediate', () => {
    expect(plan({ targetName: 'p' }).backup.id).toBe(NEW.id);
    expect(plan({ targetXid: '1000' }).backup.id).toBe(NEW.id);
    expect(plan({ immediate: true }).backup.id).toBe(NEW.id);
  });

  it('refuses a --backup whose end is after the target, advising an older one', () => {
    const err = refusal(() => plan({ targetLsn: '0/4000000' }, { backupId: NEW.id }));
    expect(err).toBeInstanceOf(PitrRefusedError);
    expect(err.message).toBe(`target LSN 0/4000000 is before the end of base backup ${NEW.id} (stopped at 2026-12-01T14:10:00.000Z, LSN 0/5000138, timeline 1): choose an older --backup`);
    expect(refusal(() => plan({ targetTime: '2026-12-01T14:05:00Z' }, { backupId: NEW.id })).message).toMatch(/is before the end of base backup .*choose an older --backup/);
    expect(plan({ targetLsn: '0/6000000' }, { backupId: OLD.id }).backup.id).toBe(OLD.id);
  });

  it('refuses a target before every backup, an unknown --backup, and no backup at all', () => {
    expect(refusal(() => plan({ targetLsn: '0/2000000' })).message).toMatch(/before the end of every base backup: the oldest is base backup 20261201T140000Z-aaaa/);
    expect(refusal(() => plan({ immediate: true }, { backupId: '20261201T150000Z-cccc' })).message).toMatch(/base backup 20261201T150000Z-cccc of database "db" not found/);
    expect(refusal(() => plan({ immediate: true }, { backups: [] })).message).toMatch(/no base backup of database "db": take one with pgops basebackup/);
  });
});

describe('checking the archive before anything starts', () => {
  it('names the WAL range from the backup start to the target', () => {
    expect(plan({ targetLsn: '0/6000100' }).document).toEqual({
      backup: { id: NEW.id, timeline: 1, startLsn: '0/5000028', stopLsn: '0/5000138', stoppedAt: '2026-12-01T14:10:00.000Z' },
      timeline: 1,
      target: { type: 'lsn', value: '0/6000100', inclusive: true, timeline: 1 },
      wal: { firstSegment: segmentFileName(1, 5n), lastSegment: segmentFileName(1, 6n), segments: 2, through: 'target' },
      continuity: 'complete',
    });
    // A time: through the first segment archived at or after it (segment 6 at minute 12).
    expect(plan({ targetTime: '2026-12-01T14:11:30Z' }).document.wal).toMatchObject({ lastSegment: segmentFileName(1, 6n), segments: 2 });
    expect(plan({ immediate: true }).document.wal).toMatchObject({ firstSegment: segmentFileName(1, 5n), lastSegment: segmentFileName(1, 5n) });
    expect(plan({ targetName: 'p' }).document.wal).toMatchObject({ lastSegment: segmentFileName(1, 8n), segments: 4, through: 'end of archive' });
  });

  it('refuses a missing segment before the target, naming it', () => {
    const gap = inventory([2, 3, 5, 6, 7, 8].map((n) => segment(1, n, 2 * n)));
    const err = refusal(() => plan({ targetLsn: '0/5000000' }, { inv: gap }));
    expect(err).toBeInstanceOf(PitrArchiveError);
    expect((err as PitrArchiveError).missing).toEqual([segmentFileName(1, 4n)]);
    expect(err.message).toMatch(new RegExp(`WAL segment ${segmentFileName(1, 4n)} is missing from the archive: recovery from base backup ${OLD.id} to LSN 0/5000000 needs it; nothing was started`));
    // After the newest backup, past the gap: fine.
    expect(plan({ targetLsn: '0/7000000' }, { inv: gap }).backup.id).toBe(NEW.id);
  });

  it('refuses a gap anywhere after the backup for a restore point or xid, with the way out', () => {
    const gap = inventory([5, 6, 8].map((n) => segment(1, n, 2 * n)));
    const err = refusal(() => plan({ targetXid: '900' }, { inv: gap }));
    expect((err as PitrArchiveError).missing).toEqual([segmentFileName(1, 7n)]);
    expect(err.message).toMatch(/take a new base backup \(pgops basebackup\), or recover to a --target-time or --target-lsn before the gap; the last segment before the gap is 000000010000000000000006, archived at 2026-12-01T14:12:00.000Z/);
  });

  it('refuses a time or LSN after the end of the archive', () => {
    expect(refusal(() => plan({ targetTime: '2026-12-01T14:17:00Z' })).message).toMatch(/is after the end of the archive: the newest segment on timeline 1's path is 000000010000000000000008, archived at 2026-12-01T14:16:00.000Z/);
    expect(refusal(() => plan({ targetLsn: '0/9000000' }))).toBeInstanceOf(PitrRefusedError);
    expect(refusal(() => plan({ targetLsn: '0/9000000' })).message).toMatch(/after the end of the archive/);
  });
});

describe('timelines', () => {
  // Timeline 2 forked from timeline 1 at 0/6000100; timeline 1 went on.
  const forked = inventory([...[2, 3, 4, 5, 6, 7, 8].map((n) => segment(1, n, 2 * n)), ...[6, 7].map((n) => segment(2, n, 2 * n + 1))], { 2: '1\t0/6000100\tafter LSN 0/6000100\n' });
  const AFTER_FORK = backup('20261201T141500Z-dddd', '0/7000028', '0/7000138', 15);

  it('recovers the latest timeline by default, through its history', () => {
    const p = plan({ targetName: 'p' }, { inv: forked });
    expect(p.timeline).toBe(2);
    expect(p.segments.map((s) => s.name)).toEqual([segmentFileName(1, 5n), segmentFileName(2, 6n), segmentFileName(2, 7n)]);
  });

  it('keeps to timeline 1 when asked, and skips a backup taken on timeline 1 after the fork for timeline 2', () => {
    expect(plan({ targetName: 'p', timeline: '1' }, { inv: forked }).segments.at(-1)!.name).toBe(segmentFileName(1, 8n));
    expect(plan({ targetName: 'p', timeline: '1' }, { inv: forked, backups: [AFTER_FORK, NEW, OLD] }).backup.id).toBe(AFTER_FORK.id);
    expect(plan({ targetName: 'p', timeline: '2' }, { inv: forked, backups: [AFTER_FORK, NEW, OLD] }).backup.id).toBe(NEW.id);
    expect(refusal(() => plan({ immediate: true, timeline: '2' }, { inv: forked, backups: [AFTER_FORK, NEW], backupId: AFTER_FORK.id })).message).toMatch(/is not on timeline 2's history/);
  });

  it('refuses a timeline that is not archived, or one whose history file is missing', () => {
    expect(refusal(() => plan({ immediate: true, timeline: '3' }, { inv: forked })).message).toMatch(/timeline 3 is not in the archive \(archived timelines: 1, 2\)/);
    const noHistory = inventory([...[2, 3, 4, 5].map((n) => segment(1, n, n)), segment(2, 6, 7)]);
    const err = refusal(() => plan({ immediate: true }, { inv: noHistory }));
    expect(err).toBeInstanceOf(PitrArchiveError);
    expect(err.message).toMatch(/00000002\.history is not in the archive/);
  });
});
