// Local filesystem storage (file:///absolute/path): the demo, tests, and operators without S3.
// Every write goes to a temporary file in the target directory, is fsynced, then renamed over
// the key, so a reader sees either the old object or the complete new one, never a part.
import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError } from '../errors.ts';
import { StorageError, StorageKeyError, StorageNotFoundError } from './errors.ts';
import { compareKeys, keySegments, TEMP_FILE, validatePrefix } from './keys.ts';
import type { IncompleteUpload, PutResult, Storage, StoredObject } from './types.ts';

const READ_CHUNK_BYTES = 1024 * 1024;

function codeOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err).code) : undefined;
}

const ABSENT = new Set(['ENOENT', 'ENOTDIR']);

function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

export class FileStorage implements Storage {
  readonly url: string;
  /** The root directory (absolute). */
  readonly root: string;

  constructor(url: string) {
    let root: string;
    try {
      const parsed = new URL(url);
      if (parsed.protocol !== 'file:') throw new Error('not a file: URL');
      if (parsed.search || parsed.hash) throw new Error('query or fragment');
      root = fileURLToPath(parsed);
    } catch (err) {
      throw new ConfigError('local storage must be a file:///absolute/path URL', [], { cause: err });
    }
    // A trailing slash would make keys and the display form ambiguous.
    this.root = root.length > 1 ? root.replace(/\/+$/, '') : root;
    this.url = pathToFileURL(this.root).href;
  }

  private pathOf(key: string): string {
    return join(this.root, ...keySegments(key));
  }

  private where(key: string): string {
    return `${this.url}/${key}`;
  }

  private fail(action: string, key: string, err: unknown): StorageError {
    const message = err instanceof Error ? err.message : String(err);
    return new StorageError(`${action} ${this.where(key)} failed: ${message}`, { cause: err });
  }

  async putStream(key: string, body: Readable, options: { contentType?: string; signal?: AbortSignal; sizeHint?: number } = {}): Promise<PutResult> {
    const target = this.pathOf(key);
    const { signal } = options;
    // Which side failed first decides what we reject with: the source's error (or the abort
    // reason) untouched, a filesystem error wrapped with the location.
    let origin: 'source' | 'abort' | 'sink' | undefined;
    const onAbort = () => {
      origin ??= 'abort';
      body.destroy(asError(signal?.reason));
    };
    if (signal?.aborted) {
      body.destroy(); // no error: nobody listens yet, the caller gets the reason from us
      throw signal.reason;
    }
    const onSourceError = () => {
      origin ??= 'source';
    };
    body.once('error', onSourceError);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      let bytes = 0;
      await this.writeAtomically(target, key, async (handle) => {
        // Our own sink: a FileHandle's createWriteStream with autoClose:false keeps a reference
        // that makes handle.close() wait forever.
        const out = new Writable({
          highWaterMark: 1024 * 1024,
          // Only writev: what arrived while a write was in flight goes out in one write, not one per 64 KiB chunk.
          writev(chunks, callback) {
            const joined = chunks.length === 1 ? chunks[0]!.chunk as Buffer : Buffer.concat(chunks.map((c) => c.chunk as Buffer));
            writeAll(handle, joined, bytes).then(() => {
              bytes += joined.length;
              callback();
            }, callback);
          },
        });
        out.once('error', () => {
          origin ??= 'sink';
        });
        // pipeline destroys `body` on failure, so the producer learns that nobody reads any more.
        await pipeline(body, out);
      }, () => origin === 'source' || origin === 'abort');
      return { key, bytes };
    } catch (err) {
      if (origin === 'abort') throw signal?.reason;
      throw err;
    } finally {
      body.removeListener('error', onSourceError);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async putBytes(key: string, data: Buffer | string, _options: { contentType?: string } = {}): Promise<PutResult> {
    const target = this.pathOf(key);
    const buffer = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    await this.writeAtomically(target, key, async (handle) => {
      await handle.writeFile(buffer);
    });
    return { key, bytes: buffer.length };
  }

  /**
   * Writes through `write` into a fresh temporary file beside `target`, fsyncs it, renames it
   * over `target` and fsyncs the directory. On failure the temporary file is removed; an error
   * from the caller's source is rethrown as is, a filesystem error wrapped with the location.
   */
  private async writeAtomically(target: string, key: string, write: (handle: FileHandle) => Promise<void>, fromSource: () => boolean = () => false): Promise<void> {
    const dir = dirname(target);
    const temp = join(dir, `.${target.slice(dir.length + 1)}.pgops-tmp-${randomBytes(6).toString('hex')}`);
    let handle: FileHandle;
    try {
      handle = await this.createExclusive(temp);
    } catch (err) {
      throw this.fail('writing', key, err);
    }
    try {
      await write(handle);
      await handle.sync();
      await handle.close();
      await rename(temp, target);
    } catch (err) {
      const failure = fromSource() ? err : this.fail('writing', key, err);
      await handle.close().catch(() => undefined);
      await unlink(temp).catch((cleanupErr: unknown) => {
        if (codeOf(cleanupErr) !== 'ENOENT' && failure instanceof StorageError) failure.cleanupError = cleanupErr;
      });
      throw failure;
    }
    try {
      await syncDirectory(dir);
    } catch (err) {
      throw this.fail('syncing the directory of', key, err);
    }
  }

  private async createExclusive(temp: string): Promise<FileHandle> {
    // A concurrent delete() may prune the freshly created directory: recreate it and retry.
    for (let attempt = 0; ; attempt++) {
      await mkdir(dirname(temp), { recursive: true });
      try {
        return await open(temp, 'wx', 0o600);
      } catch (err) {
        if (codeOf(err) !== 'ENOENT' || attempt >= 3) throw err;
      }
    }
  }

  async getStream(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if (ABSENT.has(codeOf(err) ?? '')) throw new StorageNotFoundError(key, this.where(key), { cause: err });
      throw this.fail('reading', key, err);
    }
    const info = await handle.stat().catch(async (err: unknown) => {
      await handle.close();
      throw err;
    });
    if (!info.isFile()) {
      await handle.close();
      throw new StorageNotFoundError(key, this.where(key));
    }
    // 1 MiB reads: at the default 64 KiB, reading a dump costs node three times the CPU (measured).
    return handle.createReadStream({ highWaterMark: READ_CHUNK_BYTES });
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    const path = this.pathOf(key);
    try {
      return await readFile(path);
    } catch (err) {
      const code = codeOf(err);
      if (code !== undefined && (ABSENT.has(code) || code === 'EISDIR')) return undefined;
      throw this.fail('reading', key, err);
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const out = await this.walkPrefix(prefix, (name) => !TEMP_FILE.test(name));
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  /** The temporary files of writes that never finished (a crash, kill -9): hidden from list(). */
  async listIncomplete(prefix: string): Promise<IncompleteUpload[]> {
    const temps = await this.walkPrefix(prefix, (name) => TEMP_FILE.test(name));
    return temps
      .map((t): IncompleteUpload => ({ key: t.key, startedAt: t.lastModified, kind: 'temp-file' }))
      .sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime() || compareKeys(a.key, b.key));
  }

  async removeIncomplete(item: IncompleteUpload): Promise<void> {
    if (item.kind !== 'temp-file') return; // local storage has no multipart uploads
    const slash = item.key.lastIndexOf('/');
    const name = item.key.slice(slash + 1);
    // Only a temporary file, and only inside the root: the directory part obeys the key rules.
    if (!TEMP_FILE.test(name)) throw new StorageKeyError(item.key, 'not a temporary file');
    const path = slash < 0 ? join(this.root, name) : join(this.pathOf(item.key.slice(0, slash)), name);
    try {
      await unlink(path);
    } catch (err) {
      if (ABSENT.has(codeOf(err) ?? '')) return;
      throw this.fail('removing the temporary file', item.key, err);
    }
    await this.pruneEmptyDirectories(dirname(path));
  }

  /** Files whose key starts with `prefix` and whose name `wanted` accepts, in no particular order. */
  private async walkPrefix(prefix: string, wanted: (name: string) => boolean): Promise<StoredObject[]> {
    validatePrefix(prefix);
    // Walk only the deepest directory the prefix names completely, then filter like S3 does.
    const dirPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const out: StoredObject[] = [];
    await this.walk(dirPart === '' ? this.root : join(this.root, ...dirPart.split('/')), dirPart, prefix, out, wanted);
    return out;
  }

  private async walk(dir: string, keyDir: string, prefix: string, out: StoredObject[], wanted: (name: string) => boolean): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (ABSENT.has(codeOf(err) ?? '')) return;
      throw this.fail('listing', keyDir === '' ? prefix : keyDir, err);
    }
    for (const entry of entries) {
      const key = keyDir === '' ? entry.name : `${keyDir}/${entry.name}`;
      if (entry.isDirectory()) {
        // Descend only where keys can still start with the prefix.
        if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`)) await this.walk(join(dir, entry.name), key, prefix, out, wanted);
      } else if (entry.isFile() && wanted(entry.name) && key.startsWith(prefix)) {
        try {
          const info = await stat(join(dir, entry.name));
          out.push({ key, size: info.size, lastModified: info.mtime });
        } catch (err) {
          // Deleted while we listed: it is simply not there any more.
          if (!ABSENT.has(codeOf(err) ?? '')) throw this.fail('listing', key, err);
        }
      }
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (err) {
      if (ABSENT.has(codeOf(err) ?? '')) return;
      throw this.fail('deleting', key, err);
    }
    await this.pruneEmptyDirectories(dirname(path));
  }

  /** Remove directories left empty (retention deletes whole backups), never the root itself. */
  private async pruneEmptyDirectories(start: string): Promise<void> {
    let dir = start;
    while (dir.length > this.root.length && dir.startsWith(`${this.root}/`)) {
      try {
        await rmdir(dir);
      } catch {
        break; // not empty, or gone: either way stop
      }
      dir = dirname(dir);
    }
  }
}

/** FileHandle.write may write less than asked; loop until the whole chunk is at `position`. */
async function writeAll(handle: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset, position + offset);
    offset += bytesWritten;
  }
}

/** fsync a directory so a rename in it survives a crash. Not every platform allows it. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (err) {
    if (!['EINVAL', 'EISDIR', 'EPERM', 'EACCES', 'ENOTSUP'].includes(codeOf(err) ?? '')) throw err;
  } finally {
    await handle?.close();
  }
}
