// The wait for a base backup's WAL: every segment from the start to the stop segment committed in
// the archive (its data and its checksum object), within the budget, or a failure naming what is missing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { walChecksumKey, walFileKey } from '../../../../../functions/core/catalog/layout.ts';
import { BaseBackupWalError } from '../../../../../functions/core/physical/errors.ts';
import { isSegmentArchived, segmentsOf, waitForArchivedWal } from '../../../../../functions/core/physical/wal-wait.ts';
import { InterruptedError } from '../../../../../functions/core/run-job.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
function storage(): FileStorage {
  const d = mkdtempSync(join(tmpdir(), 'pgops-walwait-'));
  dirs.push(d);
  return new FileStorage(pathToFileURL(d).href);
}

const DB = 'orders';
const SIZE = 16 * 1024 * 1024;

async function archive(s: FileStorage, name: string, compression: 'gz' | 'none' = 'gz', parts: { data?: boolean; sum?: boolean } = {}): Promise<void> {
  const key = walFileKey(DB, name, compression);
  if (parts.data !== false) await s.putBytes(key, 'data');
  if (parts.sum !== false) await s.putBytes(walChecksumKey(key), `${'c'.repeat(64)}  ${name}\n`);
}

describe('segmentsOf', () => {
  it('lists every segment of the range, across a 4 GiB boundary', () => {
    expect(segmentsOf({ timeline: 2, startSegment: '0000000200000000000000FE', stopSegment: '000000020000000100000001', walSegmentSize: SIZE }))
      .toEqual(['0000000200000000000000FE', '0000000200000000000000FF', '000000020000000100000000', '000000020000000100000001']);
  });
});

describe('isSegmentArchived', () => {
  it('counts a segment only with both its data and its checksum object, in any stored compression', async () => {
    const s = storage();
    await archive(s, '000000010000000000000002');
    await archive(s, '000000010000000000000003', 'none');
    await archive(s, '000000010000000000000004', 'gz', { sum: false });
    await archive(s, '000000010000000000000005', 'gz', { data: false });
    // A partial segment or a backup history file is not the segment.
    await archive(s, '000000010000000000000006.partial');
    await archive(s, '000000010000000000000007.00000028.backup');
    const archived = await Promise.all(['2', '3', '4', '5', '6', '7'].map((n) => isSegmentArchived(s, DB, `00000001000000000000000${n}`)));
    expect(archived).toEqual([true, true, false, false, false, false]);
  });
});

describe('waitForArchivedWal', () => {
  const range = { timeline: 1, startSegment: '000000010000000000000002', stopSegment: '000000010000000000000004', walSegmentSize: SIZE };

  it('returns once every segment has arrived', async () => {
    const s = storage();
    await archive(s, '000000010000000000000002');
    setTimeout(() => { void archive(s, '000000010000000000000003').then(() => archive(s, '000000010000000000000004')); }, 150);
    await expect(waitForArchivedWal(s, DB, range, { deadline: Date.now() + 60_000, budgetSeconds: 60, pollMs: 20 })).resolves.toEqual({ segments: 3 });
  });

  it('fails at the deadline naming the range, the question to ask and the first missing segment', async () => {
    const s = storage();
    await archive(s, '000000010000000000000002');
    const err = await waitForArchivedWal(s, DB, range, { deadline: Date.now() + 100, budgetSeconds: 7, pollMs: 20 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BaseBackupWalError);
    expect((err as Error).message).toBe(`the WAL this backup needs (000000010000000000000002..000000010000000000000004) did not reach the archive within 7 s: is archive_command or wal receive running? (000000010000000000000003 is not in ${s.url})`);
  });

  it('stops waiting when the job is interrupted', async () => {
    const interrupt = new AbortController();
    setTimeout(() => interrupt.abort('SIGTERM'), 50);
    const err = await waitForArchivedWal(storage(), DB, range, { deadline: Date.now() + 60_000, budgetSeconds: 60, pollMs: 10_000, signal: interrupt.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
  });
});
