// The receiver's spool and uploader, without a server: files pg_receivewal would leave, archived in
// order, each local copy kept until it is stored and the slot was moved; retries, conflicts, partials.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createTextLogger } from '../../../../../functions/core/logger.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import type { PutResult, Storage } from '../../../../../functions/core/storage/types.ts';
import { readWalFile, storeWalFile } from '../../../../../functions/core/wal/archive.ts';
import { WalConflictError, WalReceiveError } from '../../../../../functions/core/wal/errors.ts';
import { listSpool, seedSpool } from '../../../../../functions/core/wal/receive-spool.ts';
import { SpoolUploader, type UploaderDeps } from '../../../../../functions/core/wal/receive-upload.ts';

const SIZE = 1 << 20;
const root = mkdtempSync(join(tmpdir(), 'pgops-wal-spool-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dir = (prefix: string) => mkdtempSync(join(root, prefix));

/** WAL-like content: a non-zero page magic first (as pg_receivewal writes), then `fill`. */
function wal(bytes = SIZE, fill: Buffer = randomBytes(1024)): Buffer {
  const b = Buffer.alloc(bytes);
  b.writeUInt16LE(0xd110, 0);
  fill.copy(b, 2);
  return b;
}

/** FileStorage whose next `failures` putBytes calls fail. */
class Flaky extends FileStorage {
  failures = 0;
  override putBytes(key: string, data: Buffer | string): Promise<PutResult> {
    if (this.failures > 0) {
      this.failures--;
      return Promise.reject(new Error('storage unavailable (injected)'));
    }
    return super.putBytes(key, data);
  }
}

function setup(storage: Storage = new Flaky(pathToFileURL(dir('store-')).href)) {
  const spool = dir('spool-');
  const lines: string[] = [];
  const sleeps: number[] = [];
  const archived: string[] = [];
  const deps: UploaderDeps = {
    storage, databaseId: 'orders', segmentSize: SIZE, sleep: async (ms) => { sleeps.push(ms); },
    logger: createTextLogger({ level: 'debug', write: (l) => { lines.push(l); } }),
  };
  const uploader = new SpoolUploader(deps, spool, async (segment) => {
    // The local copy must still be there when the slot is moved past it.
    expect(existsSync(join(spool, segment))).toBe(true);
    archived.push(segment);
  });
  return { spool, storage, uploader, lines, sleeps, archived };
}

describe('listSpool and seedSpool', () => {
  it('lists histories first, then segments by position and timeline, partials apart, and ignores anything else', async () => {
    const spool = dir('list-');
    for (const f of ['000000020000000000000003', '00000002.history', '00000001000000000000000A', '000000010000000000000003',
      '000000020000000000000004.partial', '000000010000000000000004.partial', '00000002.history.tmp', 'junk']) writeFileSync(join(spool, f), '');
    expect(await listSpool(spool, 16 << 20)).toEqual({
      finished: ['00000002.history', '000000010000000000000003', '000000020000000000000003', '00000001000000000000000A'],
      partials: ['000000010000000000000004.partial', '000000020000000000000004.partial'],
    });
  });

  it('seeds an empty partial, or the archived one, and never over an existing file', async () => {
    const spool = dir('seed-');
    expect(await seedSpool(spool, '000000010000000000000005')).toBe('000000010000000000000005.partial');
    expect(readFileSync(join(spool, '000000010000000000000005.partial'))).toHaveLength(0);
    const content = wal();
    await seedSpool(spool, '000000010000000000000006', content);
    expect(readFileSync(join(spool, '000000010000000000000006.partial')).equals(content)).toBe(true);
    await expect(seedSpool(spool, '000000010000000000000006')).rejects.toMatchObject({ code: 'EEXIST' });
  });
});

describe('SpoolUploader', () => {
  it('archives finished segments in order, moves the slot before deleting each local copy, and logs each at info level', async () => {
    const { spool, storage, uploader, lines, archived } = setup();
    const a = wal();
    const b = wal();
    writeFileSync(join(spool, '000000010000000000000004'), b);
    writeFileSync(join(spool, '000000010000000000000003'), a);
    await uploader.uploadFinished();
    expect(archived).toEqual(['000000010000000000000003', '000000010000000000000004']);
    expect(readdirSync(spool)).toEqual([]);
    expect((await readWalFile(storage, 'orders', '000000010000000000000003'))?.content.equals(a)).toBe(true);
    expect(uploader).toMatchObject({ segmentsUploaded: 2, lastSegment: '000000010000000000000004' });
    expect(lines.filter((l) => /^pgops: wal receive: 0000000100000000000000\d\d archived at/.test(l))).toHaveLength(2);
  });

  it('an identical segment already archived (archive_command, a restart) is a success', async () => {
    const { spool, storage, uploader, lines } = setup();
    const content = wal();
    await storeWalFile(storage, 'orders', '000000010000000000000003', content);
    writeFileSync(join(spool, '000000010000000000000003'), content);
    await uploader.uploadFinished();
    expect(uploader.segmentsUploaded).toBe(1);
    expect(lines.join('')).toMatch(/already archived \(identical\)/);
  });

  it('a different segment under the name fails at once, is not overwritten, and the local copy stays', async () => {
    const { spool, storage, uploader, sleeps, archived } = setup();
    const stored = wal();
    await storeWalFile(storage, 'orders', '000000010000000000000003', stored);
    writeFileSync(join(spool, '000000010000000000000003'), wal());
    await expect(uploader.uploadFinished()).rejects.toBeInstanceOf(WalConflictError);
    expect(sleeps).toEqual([]);
    expect(archived).toEqual([]);
    expect(existsSync(join(spool, '000000010000000000000003'))).toBe(true);
    expect((await readWalFile(storage, 'orders', '000000010000000000000003'))?.content.equals(stored)).toBe(true);
  });

  it('retries a failing upload with backoff, and succeeds', async () => {
    const { spool, storage, uploader, sleeps, lines } = setup();
    (storage as Flaky).failures = 2;
    writeFileSync(join(spool, '000000010000000000000003'), wal());
    await uploader.uploadFinished();
    expect(sleeps).toEqual([1000, 2000]);
    expect(uploader.segmentsUploaded).toBe(1);
    expect(lines.filter((l) => /warn: wal receive: archiving 000000010000000000000003 failed \(attempt \d of 5\)/.test(l))).toHaveLength(2);
  });

  it('gives up after its attempts: an error, the slot not moved, the local copy kept', async () => {
    const { spool, storage, uploader, sleeps, archived } = setup();
    (storage as Flaky).failures = 100;
    writeFileSync(join(spool, '000000010000000000000003'), wal());
    const err = await uploader.uploadFinished().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalReceiveError);
    expect((err as Error).message).toMatch(/archiving 000000010000000000000003 failed after 5 attempts.*injected/);
    expect(sleeps).toEqual([1000, 2000, 4000, 8000]);
    expect(archived).toEqual([]);
    expect(existsSync(join(spool, '000000010000000000000003'))).toBe(true);
  });

  it('a failure to move the slot keeps the local copy', async () => {
    const spool = dir('spool-');
    const storage = new FileStorage(pathToFileURL(dir('store-')).href);
    const uploader = new SpoolUploader({ storage, databaseId: 'orders', segmentSize: SIZE, logger: createTextLogger({ level: 'silent' }) }, spool, () => Promise.reject(new Error('connection lost')));
    writeFileSync(join(spool, '000000010000000000000003'), wal());
    await expect(uploader.uploadFinished()).rejects.toThrow(/connection lost/);
    expect(readdirSync(spool)).toEqual(['000000010000000000000003']);
  });

  it('archives the partial when it changed, skips one with nothing written, and drops it from the archive once its segment is finished', async () => {
    const { spool, storage, uploader } = setup();
    const partial = join(spool, '000000010000000000000005.partial');
    writeFileSync(partial, Buffer.alloc(SIZE));
    await uploader.uploadPartials();
    expect(uploader.partialUploads).toBe(0);
    const first = wal(SIZE, Buffer.from('first'));
    writeFileSync(partial, first);
    await uploader.uploadPartials();
    await uploader.uploadPartials();
    expect(uploader.partialUploads).toBe(1);
    const grown = wal(SIZE, Buffer.from('first, and then more'));
    writeFileSync(partial, grown);
    await uploader.uploadPartials();
    expect(uploader.partialUploads).toBe(2);
    expect((await readWalFile(storage, 'orders', '000000010000000000000005.partial'))?.content.equals(grown)).toBe(true);
    rmSync(partial);
    writeFileSync(join(spool, '000000010000000000000005'), grown);
    await uploader.uploadFinished();
    expect(await readWalFile(storage, 'orders', '000000010000000000000005.partial')).toBeUndefined();
    expect((await storage.list('orders/')).map((o) => o.key)).toEqual(['orders/wal/00000001/000000010000000000000005.gz', 'orders/wal/00000001/000000010000000000000005.gz.sha256']);
  });

  it('does not upload again a partial the archive already holds (the seed)', async () => {
    const { spool, uploader } = setup();
    const content = wal();
    writeFileSync(join(spool, '000000010000000000000005.partial'), content);
    uploader.knownPartial('000000010000000000000005.partial', content);
    await uploader.uploadPartials();
    expect(uploader.partialUploads).toBe(0);
  });
});
