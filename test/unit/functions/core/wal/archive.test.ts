// The archive's object format as `wal receive` uses it: storeWalFile (wal push's storage part),
// the one replaceable object (a growing .partial) and its commit order, removal, verified reads.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import type { PutResult, Storage } from '../../../../../functions/core/storage/types.ts';
import { readWalFile, removeWalFile, replaceWalPartial, storeWalFile } from '../../../../../functions/core/wal/archive.ts';
import { WalConflictError, WalPushError } from '../../../../../functions/core/wal/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'pgops-wal-archive-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshStorage = () => new FileStorage(pathToFileURL(mkdtempSync(join(root, `s${++n}-`))).href);

const SEGMENT = '000000010000000000000007';
const PARTIAL = `${SEGMENT}.partial`;
const DATA_KEY = `orders/wal/00000001/${PARTIAL}.gz`;

/** A storage that records every write and delete, and can run a check after each (or fail one). */
class Recording implements Storage {
  readonly ops: string[] = [];
  afterEach?: () => Promise<void>;
  failOn?: (op: string) => boolean;
  constructor(private readonly inner: Storage) {}
  get url() { return this.inner.url; }
  private async step<T>(op: string, run: () => Promise<T>): Promise<T> {
    if (this.failOn?.(op)) throw new Error(`injected failure on ${op}`);
    const r = await run();
    this.ops.push(op);
    await this.afterEach?.();
    return r;
  }
  putBytes(key: string, data: Buffer | string): Promise<PutResult> { return this.step(`put ${key}`, () => this.inner.putBytes(key, data)); }
  delete(key: string): Promise<void> { return this.step(`delete ${key}`, () => this.inner.delete(key)); }
  putStream: Storage['putStream'] = (...a) => this.inner.putStream(...a);
  getStream: Storage['getStream'] = (...a) => this.inner.getStream(...a);
  getBytes: Storage['getBytes'] = (...a) => this.inner.getBytes(...a);
  list: Storage['list'] = (...a) => this.inner.list(...a);
}

describe('storeWalFile', () => {
  it('stores a segment, is a success for the same content again, and refuses a different one without touching the stored one', async () => {
    const storage = freshStorage();
    const content = randomBytes(64 * 1024);
    expect(await storeWalFile(storage, 'orders', SEGMENT, content)).toMatchObject({ key: `orders/wal/00000001/${SEGMENT}.gz`, alreadyArchived: false });
    expect(await storeWalFile(storage, 'orders', SEGMENT, content)).toMatchObject({ alreadyArchived: true });
    await expect(storeWalFile(storage, 'orders', SEGMENT, randomBytes(1024))).rejects.toBeInstanceOf(WalConflictError);
    expect((await readWalFile(storage, 'orders', SEGMENT))?.content.equals(content)).toBe(true);
  });

  it('refuses to replace an archived partial (only replaceWalPartial does)', async () => {
    const storage = freshStorage();
    await storeWalFile(storage, 'orders', PARTIAL, Buffer.from('first'));
    await expect(storeWalFile(storage, 'orders', PARTIAL, Buffer.from('first and more'))).rejects.toBeInstanceOf(WalConflictError);
  });
});

describe('replaceWalPartial', () => {
  it('replaces a grown partial, and writes nothing for the same content', async () => {
    const storage = new Recording(freshStorage());
    await replaceWalPartial(storage, 'orders', PARTIAL, Buffer.from('first'));
    const grown = Buffer.from('first and more');
    expect(await replaceWalPartial(storage, 'orders', PARTIAL, grown)).toMatchObject({ alreadyArchived: false, key: DATA_KEY });
    expect((await readWalFile(storage, 'orders', PARTIAL))?.content.equals(grown)).toBe(true);
    const writes = storage.ops.length;
    expect(await replaceWalPartial(storage, 'orders', PARTIAL, grown)).toMatchObject({ alreadyArchived: true });
    expect(storage.ops).toHaveLength(writes);
  });

  it('removes the checksum first, then writes data and checksum: after every step the partial reads as old, new or not archived, never as corrupt', async () => {
    const storage = new Recording(freshStorage());
    const old = Buffer.from('old partial');
    const grown = Buffer.from('old partial, grown');
    await replaceWalPartial(storage, 'orders', PARTIAL, old);
    storage.ops.length = 0;
    const seen: string[] = [];
    storage.afterEach = async () => {
      const r = await readWalFile(storage, 'orders', PARTIAL);
      seen.push(r === undefined ? 'absent' : r.content.equals(old) ? 'old' : r.content.equals(grown) ? 'new' : 'other');
    };
    await replaceWalPartial(storage, 'orders', PARTIAL, grown);
    expect(storage.ops).toEqual([`delete ${DATA_KEY}.sha256`, `put ${DATA_KEY}`, `put ${DATA_KEY}.sha256`]);
    expect(seen).toEqual(['absent', 'absent', 'new']);
  });

  it('a writer that dies between data and checksum leaves the partial not archived, not corrupt', async () => {
    const storage = new Recording(freshStorage());
    await replaceWalPartial(storage, 'orders', PARTIAL, Buffer.from('old'));
    storage.failOn = (op) => op === `put ${DATA_KEY}.sha256`;
    await expect(replaceWalPartial(storage, 'orders', PARTIAL, Buffer.from('old and new'))).rejects.toThrow(/injected/);
    expect(await readWalFile(storage, 'orders', PARTIAL)).toBeUndefined();
    storage.failOn = undefined;
    expect(await replaceWalPartial(storage, 'orders', PARTIAL, Buffer.from('old and new'))).toMatchObject({ alreadyArchived: false });
  });

  it('refuses anything but a partial', async () => {
    const storage = new Recording(freshStorage());
    await expect(replaceWalPartial(storage, 'orders', SEGMENT, Buffer.from('x'))).rejects.toBeInstanceOf(WalPushError);
    expect(storage.ops).toEqual([]);
  });
});

describe('removeWalFile and readWalFile', () => {
  it('removes the checksum before the data, and a removed file reads as not archived', async () => {
    const storage = new Recording(freshStorage());
    await replaceWalPartial(storage, 'orders', PARTIAL, Buffer.from('partial'));
    storage.ops.length = 0;
    await removeWalFile(storage, 'orders', PARTIAL);
    expect(storage.ops.slice(0, 2)).toEqual([`delete ${DATA_KEY}.sha256`, `delete ${DATA_KEY}`]);
    expect(await readWalFile(storage, 'orders', PARTIAL)).toBeUndefined();
    expect(await storage.list('orders/')).toEqual([]);
  });

  it('a data object that does not match its checksum is reported, not returned', async () => {
    const storage = freshStorage();
    await storeWalFile(storage, 'orders', SEGMENT, Buffer.from('segment'));
    await storage.putBytes(`orders/wal/00000001/${SEGMENT}.gz`, Buffer.from('not gzip'));
    await expect(readWalFile(storage, 'orders', SEGMENT)).rejects.toThrow(/cannot be decompressed/);
  });
});
