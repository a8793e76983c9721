// Unpacking a base backup: files and directories with their modes, the stored object's SHA-256
// and size as stored, and nothing outside the data directory, nor anything but files and folders.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { unpackBaseBackup } from '../../../../../functions/core/pitr/unpack.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';

const root = mkdtempSync(join(tmpdir(), 'pgops-unpack-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const storage = new FileStorage(pathToFileURL(join(root, 'store')).href);
let n = 0;

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink'; content?: string; mode?: number; linkname?: string };

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => { for await (const c of pack) chunks.push(c as Buffer); })();
  for (const e of entries) {
    if (e.type === 'file' || e.type === undefined) pack.entry({ name: e.name, mode: e.mode ?? 0o600 }, e.content ?? '');
    else pack.entry({ name: e.name, type: e.type, mode: e.mode ?? 0o700, linkname: e.linkname });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

async function stored(entries: Entry[], gzip = true): Promise<{ key: string; data: Buffer; dir: string }> {
  const data = gzip ? gzipSync(await tarOf(entries)) : await tarOf(entries);
  const key = `db/physical/b${++n}/base.tar${gzip ? '.gz' : ''}`;
  await storage.putBytes(key, data);
  return { key, data, dir: mkdtempSync(join(root, 'data-')) };
}

describe('unpackBaseBackup', () => {
  it('writes files and directories as pg_basebackup lists them, and hashes the object as stored', async () => {
    const { key, data, dir } = await stored([
      { name: 'PG_VERSION', content: '15\n' },
      { name: './pg_wal/', type: 'directory' },
      { name: './pg_wal/archive_status/', type: 'directory' },
      { name: 'base/1/1259', content: 'x'.repeat(9000), mode: 0o640 },
      { name: 'backup_label', content: 'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n' },
    ]);
    const r = await unpackBaseBackup(storage, key, 'gzip', dir);
    expect(r).toEqual({ bytes: data.length, sha256: createHash('sha256').update(data).digest('hex'), files: 3 });
    expect(readFileSync(join(dir, 'PG_VERSION'), 'utf8')).toBe('15\n');
    expect(readFileSync(join(dir, 'base/1/1259'), 'utf8')).toHaveLength(9000);
    expect(statSync(join(dir, 'base/1/1259')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'pg_wal/archive_status')).isDirectory()).toBe(true);
  });

  it('reads an uncompressed tar', async () => {
    const { key, dir } = await stored([{ name: 'PG_VERSION', content: '15\n' }], false);
    expect((await unpackBaseBackup(storage, key, 'none', dir)).files).toBe(1);
  });

  it('refuses an entry that would land outside the data directory', async () => {
    const { key, dir } = await stored([{ name: '../escaped', content: 'x' }]);
    await expect(unpackBaseBackup(storage, key, 'gzip', dir)).rejects.toThrow(/an entry outside its directory: "..\/escaped"/);
    expect(existsSync(join(dir, '..', 'escaped'))).toBe(false);
  });

  it('refuses a symbolic link (pg_basebackup -Ft writes only files and directories)', async () => {
    const { key, dir } = await stored([{ name: 'pg_wal', type: 'symlink', linkname: '/etc' }]);
    await expect(unpackBaseBackup(storage, key, 'gzip', dir)).rejects.toThrow(/holds a symlink entry/);
  });

  it('fails on a corrupted object rather than unpack part of it quietly', async () => {
    const { key, data, dir } = await stored([{ name: 'PG_VERSION', content: 'y'.repeat(50_000) }]);
    await storage.putBytes(key, data.subarray(0, data.length - 20));
    await expect(unpackBaseBackup(storage, key, 'gzip', dir)).rejects.toThrow();
  });
});
