import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, existsSync, mkdirSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import { StorageError, StorageKeyError, StorageNotFoundError } from '../../../../../functions/core/storage/errors.ts';
import { PgopsError } from '../../../../../functions/core/errors.ts';

let dir = '';
let storage: FileStorage;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pgops-file-storage-'));
  storage = new FileStorage(pathToFileURL(join(dir, 'root')).href);
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Every file under `root`, relative, temp files included. */
function allFiles(root: string, rel = ''): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? allFiles(join(root, e.name), `${rel}${e.name}/`) : [`${rel}${e.name}`],
  );
}

/** Yields `good` chunks, then fails with `error`. */
function failingSource(good: Buffer[], error: Error): Readable {
  return Readable.from(
    (async function* () {
      for (const chunk of good) yield chunk;
      await new Promise((r) => setTimeout(r, 5));
      throw error;
    })(),
  );
}

describe('FileStorage', () => {
  it('round-trips a stream and bytes, reports size, presence and delete', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const chunks = Array.from({ length: 8 }, (_, i) => data.subarray((i * data.length) / 8, ((i + 1) * data.length) / 8));
    const put = await storage.putStream('db/logical/20260101T000000Z-abcd/dump', Readable.from(chunks));
    expect(put).toEqual({ key: 'db/logical/20260101T000000Z-abcd/dump', bytes: data.length });

    const hash = createHash('sha256');
    for await (const chunk of await storage.getStream('db/logical/20260101T000000Z-abcd/dump')) hash.update(chunk as Buffer);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));

    await storage.putBytes('db/state.json', '{"a":1}');
    expect((await storage.getBytes('db/state.json'))?.toString()).toBe('{"a":1}');
    expect(await storage.getBytes('db/state.json')).toBeDefined();
    await storage.putBytes('db/state.json', Buffer.from('{"a":2}'));
    expect(await text(await storage.getStream('db/state.json'))).toBe('{"a":2}');

    await storage.delete('db/state.json');
    expect(await storage.getBytes('db/state.json')).toBeUndefined();
    expect(await storage.getBytes('db/state.json')).toBeUndefined();
    await storage.delete('db/state.json'); // absent: not an error
    await storage.delete('db/logical/20260101T000000Z-abcd/dump');
    // Emptied directories are pruned, the root is kept.
    expect(readdirSync(join(dir, 'root'))).toEqual([]);
    expect(storage.url).toBe(pathToFileURL(join(dir, 'root')).href);
  });

  it('getStream of a missing key throws StorageNotFoundError with the cause; getBytes gives undefined', async () => {
    const err = await storage.getStream('nope/dump').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageNotFoundError);
    expect(err).toBeInstanceOf(PgopsError);
    expect((err as StorageNotFoundError).key).toBe('nope/dump');
    expect((err as Error).message).toContain('nope/dump');
    expect((err as Error).cause).toMatchObject({ code: 'ENOENT' });
    expect(await storage.getBytes('nope/dump')).toBeUndefined();
    expect(await storage.getBytes('nope/dump')).toBeUndefined();
    // A "directory" is not an object.
    await storage.putBytes('d/x', 'x');
    await expect(storage.getStream('d')).rejects.toBeInstanceOf(StorageNotFoundError);
    expect(await storage.getBytes('d')).toBeUndefined();
  });

  it('a failing source rejects with its own error and leaves neither the object nor a temporary file', async () => {
    const boom = new Error('pg_dump exited with code 1');
    const source = failingSource([randomBytes(64 * 1024), randomBytes(64 * 1024)], boom);
    await expect(storage.putStream('db/logical/x/dump', source)).rejects.toBe(boom);
    expect(source.destroyed).toBe(true);
    expect(await storage.getBytes('db/logical/x/dump')).toBeUndefined();
    expect(allFiles(join(dir, 'root'))).toEqual([]);
  });

  it('a failed overwrite keeps the previous object intact (atomic replace)', async () => {
    await storage.putBytes('state.json', 'old');
    const boom = new Error('source broke');
    await expect(storage.putStream('state.json', failingSource([Buffer.from('new new new')], boom))).rejects.toBe(boom);
    expect((await storage.getBytes('state.json'))?.toString()).toBe('old');
    expect(allFiles(join(dir, 'root'))).toEqual(['state.json']);
  });

  it('an abort signal rejects with its reason, destroys the source and leaves nothing', async () => {
    const controller = new AbortController();
    let produced = 0;
    const source = Readable.from(
      (async function* () {
        for (;;) {
          produced += 1;
          if (produced === 3) controller.abort(new Error('job cancelled'));
          yield Buffer.alloc(16 * 1024, 1);
          await new Promise((r) => setTimeout(r, 1));
        }
      })(),
    );
    const err = await storage.putStream('big/dump', source, { signal: controller.signal }).catch((e: unknown) => e);
    expect(err).toBe(controller.signal.reason);
    expect(source.destroyed).toBe(true);
    expect(allFiles(join(dir, 'root'))).toEqual([]);

    // Already aborted: nothing is even created.
    const aborted = AbortSignal.abort();
    await expect(storage.putStream('big/dump', Readable.from([Buffer.from('x')]), { signal: aborted })).rejects.toBe(aborted.reason);
    expect(allFiles(join(dir, 'root'))).toEqual([]);
  });

  it('a filesystem failure is a StorageError naming the location, with the cause', async () => {
    // A file where a directory must go.
    await storage.putBytes('blocker', 'x');
    const err = await storage.putStream('blocker/dump', Readable.from([Buffer.from('data')])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toContain('blocker/dump');
    expect((err as Error).cause).toMatchObject({ code: expect.stringMatching(/EEXIST|ENOTDIR/) });
  });

  it('lists recursively in S3 key order (UTF-8 bytes), filters by prefix and ignores temporary files', async () => {
    const keys = ['b', 'a/b', 'a-c', 'a/a/z', '0', 'a/é', 'a/z', 'ab/c', 'a/\u{1F600}', 'a/\uFFFD'];
    for (const key of keys) await storage.putBytes(key, key);
    // A crashed writer's leftover must not show up as an object.
    writeFileSync(join(dir, 'root', 'a', '.z.pgops-tmp-0123abcd'), 'partial');
    mkdirSync(join(dir, 'root', 'empty-dir'));

    const all = await storage.list('');
    const expected = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect(all.map((o) => o.key)).toEqual(expected);
    // '-' (0x2d) sorts before '/' (0x2f): a directory walk order would be wrong here.
    expect(expected.indexOf('a-c')).toBeLessThan(expected.indexOf('a/a/z'));
    // U+FFFD (EF BF BD) before U+1F600 (F0 ...) in UTF-8, the other way round in UTF-16.
    expect(expected.indexOf('a/\uFFFD')).toBeLessThan(expected.indexOf('a/\u{1F600}'));

    const first = all.find((o) => o.key === 'a/é');
    expect(first?.size).toBe(Buffer.byteLength('a/é'));
    expect(first?.lastModified).toBeInstanceOf(Date);
    expect(first?.lastModified.getTime()).toBe(statSync(join(dir, 'root', 'a', 'é')).mtime.getTime());

    expect((await storage.list('a/')).map((o) => o.key)).toEqual(expected.filter((k) => k.startsWith('a/')));
    // A partial segment matches like an S3 prefix.
    expect((await storage.list('a')).map((o) => o.key)).toEqual(expected.filter((k) => k.startsWith('a')));
    expect((await storage.list('a/a/')).map((o) => o.key)).toEqual(['a/a/z']);
    expect(await storage.list('missing/')).toEqual([]);
    expect(await new FileStorage(pathToFileURL(join(dir, 'never-created')).href).list('')).toEqual([]);
  });

  it('refuses bad keys on every operation and writes nothing', async () => {
    const bad = ['', '/etc/passwd', '../escape', 'a/../../escape', 'a//b', 'a/', './a', 'a/.', '..', 'a\\b', 'nul\u0000byte', 'a/.b.pgops-tmp-00ff'];
    for (const key of bad) {
      await expect(storage.putBytes(key, 'x'), key).rejects.toBeInstanceOf(StorageKeyError);
      await expect(storage.putStream(key, Readable.from([Buffer.from('x')])), key).rejects.toBeInstanceOf(StorageKeyError);
      await expect(storage.getStream(key), key).rejects.toBeInstanceOf(StorageKeyError);
      await expect(storage.getBytes(key), key).rejects.toBeInstanceOf(StorageKeyError);
      await expect(storage.delete(key), key).rejects.toBeInstanceOf(StorageKeyError);
    }
    for (const prefix of ['/abs', '../', 'a/../', 'a//', '..']) {
      await expect(storage.list(prefix), prefix).rejects.toBeInstanceOf(StorageKeyError);
    }
    expect(allFiles(dir)).toEqual([]);
  });

  it('accepts only file:///absolute/path', () => {
    expect(new FileStorage('file:///tmp/x/').url).toBe('file:///tmp/x');
    expect(new FileStorage('file:///tmp/x').root).toBe('/tmp/x');
    for (const url of ['/tmp/x', 'file://remote-host/tmp/x', 'http://x/y', 'file:///tmp/x?y=1']) {
      expect(() => new FileStorage(url), url).toThrow(/file:\/\/\/absolute\/path/);
    }
  });
});

describe('FileStorage: unfinished writes (issue 10)', () => {
  /** A temporary file as a crashed writer leaves it, last written `ageMs` ago. */
  function leaveTempFile(relDir: string, name: string, ageMs: number, content = 'half a dump'): string {
    const abs = join(dir, 'root', ...relDir.split('/'));
    mkdirSync(abs, { recursive: true });
    writeFileSync(join(abs, name), content);
    const at = new Date(Date.now() - ageMs);
    utimesSync(join(abs, name), at, at);
    return `${relDir}/${name}`;
  }

  it('listIncomplete finds the temporary files list() hides, under the prefix only, oldest first', async () => {
    await storage.putBytes('auth/logical/20261101T020000Z-0a01/manifest.json', '{}');
    const old = leaveTempFile('auth/logical/20261101T020000Z-dead', '.dump.pgops-tmp-0a1b2c3d4e5f', 3 * 86_400_000);
    const recent = leaveTempFile('auth/state', '.health.json.pgops-tmp-00ff', 60_000);
    leaveTempFile('billing/logical/20261101T020000Z-0b01', '.dump.pgops-tmp-aa', 3 * 86_400_000);
    leaveTempFile('auth/logical', '.dump.pgops-tmp-nothex', 3 * 86_400_000); // not our pattern: an ordinary (hidden) file

    expect((await storage.list('auth/')).map((o) => o.key)).toEqual(['auth/logical/.dump.pgops-tmp-nothex', 'auth/logical/20261101T020000Z-0a01/manifest.json']);
    const found = await storage.listIncomplete('auth/');
    expect(found).toEqual([
      { key: old, startedAt: expect.any(Date), kind: 'temp-file' },
      { key: recent, startedAt: expect.any(Date), kind: 'temp-file' },
    ]);
    expect(Date.now() - found[0]!.startedAt.getTime()).toBeGreaterThan(2 * 86_400_000);
    expect(await storage.listIncomplete('nothing/')).toEqual([]);
  });

  it('a failed write leaves no temporary file behind, so listIncomplete sees none', async () => {
    await expect(storage.putStream('auth/logical/x/dump', failingSource([Buffer.from('abc')], new Error('pg_dump died')))).rejects.toThrow('pg_dump died');
    expect(await storage.listIncomplete('')).toEqual([]);
  });

  it('removeIncomplete deletes the temporary file and the folder it leaves empty; twice is fine', async () => {
    await storage.putBytes('auth/logical/20261101T020000Z-0a01/dump', 'kept');
    const key = leaveTempFile('auth/logical/20261101T020000Z-dead', '.dump.pgops-tmp-0a1b', 86_400_000 * 2);
    const [item] = await storage.listIncomplete('auth/');
    await storage.removeIncomplete(item!);
    expect(allFiles(join(dir, 'root'))).toEqual(['auth/logical/20261101T020000Z-0a01/dump']);
    await storage.removeIncomplete({ key, startedAt: new Date(), kind: 'temp-file' });
    // A multipart upload is not a local thing: nothing to do.
    await storage.removeIncomplete({ key: 'auth/logical/20261101T020000Z-0a01/dump', startedAt: new Date(), kind: 'multipart', uploadId: 'u1' });
    expect(allFiles(join(dir, 'root'))).toEqual(['auth/logical/20261101T020000Z-0a01/dump']);
  });

  it('removeIncomplete refuses anything but a temporary file inside the root', async () => {
    await storage.putBytes('auth/logical/20261101T020000Z-0a01/dump', 'a backup');
    writeFileSync(join(dir, '.outside.pgops-tmp-00'), 'not ours');
    for (const key of ['auth/logical/20261101T020000Z-0a01/dump', '../.outside.pgops-tmp-00', 'auth/../../.outside.pgops-tmp-00', '/etc/.x.pgops-tmp-00']) {
      await expect(storage.removeIncomplete({ key, startedAt: new Date(0), kind: 'temp-file' }), key).rejects.toBeInstanceOf(StorageKeyError);
    }
    expect(allFiles(join(dir, 'root'))).toEqual(['auth/logical/20261101T020000Z-0a01/dump']);
    expect(existsSync(join(dir, '.outside.pgops-tmp-00'))).toBe(true);
  });
});
