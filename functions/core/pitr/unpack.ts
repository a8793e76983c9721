// Fetching a base backup into a data directory: one pass from storage through the SHA-256 meter,
// the decompressor and a tar extractor that writes only regular files and directories inside the
// directory (pg_basebackup -Ft writes nothing else). The caller refuses the result, and starts
// nothing, unless the hash and size match the manifest.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir, open } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import { Duplex, PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar, { type Extract as TarExtract } from 'tar-stream';
import type { PhysicalCompression } from '../catalog/layout.ts';
import { childEnvironment } from '../config.ts';
import { PgopsError } from '../errors.ts';
import { HashMeter } from '../pgtools/tools.ts';
import type { Storage } from '../storage/types.ts';

export interface Owner { uid: number; gid: number }

export interface Unpacked {
  bytes: number;
  sha256: string;
  files: number;
}

/** The external tool for a compression Node 20 cannot undo itself. */
/** One entry of the tar as tar-stream yields it. */
type TarEntry = TarExtract extends AsyncIterable<infer E> ? E : never;

const TOOLS: Partial<Record<PhysicalCompression, string>> = { zstd: 'zstd', lz4: 'lz4' };

/** A stream that undoes `compression`: zlib for gzip, the zstd or lz4 command otherwise. */
function decompressor(compression: PhysicalCompression): Duplex {
  if (compression === 'gzip') return createGunzip();
  if (compression === 'none') return new PassThrough();
  const tool = TOOLS[compression]!;
  const path = ['/usr/bin', '/bin', '/usr/local/bin'].map((d) => join(d, tool)).find((p) => existsSync(p));
  if (!path) throw new PgopsError(`the base backup is compressed with ${compression}, but the ${tool} command is not installed`);
  const child = spawn(path, ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'], env: childEnvironment() });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const out = new PassThrough();
  child.stdout.pipe(out, { end: false });
  child.on('close', (code) => {
    if (code === 0) out.end();
    else out.destroy(new PgopsError(`${tool} could not decompress the base backup (exit ${code}): ${stderr.trim().slice(0, 300)}`));
  });
  return Duplex.from({ writable: child.stdin, readable: out });
}

/** The entry's path inside `dir`, or an error: absolute paths and `..` would escape it. */
function safePath(dir: string, name: string): string {
  const relative = normalize(name.replace(/^\.\//, '')).replace(/\/+$/, '');
  if (relative === '' || relative === '.') return dir;
  if (relative.startsWith('/') || relative === '..' || relative.startsWith(`..${sep}`)) throw new PgopsError(`the base backup holds an entry outside its directory: ${JSON.stringify(name.slice(0, 100))}`);
  return join(dir, relative);
}

/** Directories made so far: the tar lists a directory before its files, so most files need no mkdir. */
type Made = Set<string>;

async function makeDir(path: string, made: Made, owner: Owner | undefined): Promise<void> {
  if (made.has(path)) return;
  await mkdir(path, { recursive: true, mode: 0o700 });
  if (owner) await chown(path, owner.uid, owner.gid);
  made.add(path);
}

/** One regular file: written through one handle (mode and owner set on it), small files in one write. */
async function writeFileEntry(path: string, entry: TarEntry, owner: Owner | undefined): Promise<void> {
  const handle = await open(path, 'w', (entry.header.mode ?? 0o600) & 0o700);
  try {
    if (owner) await handle.chown(owner.uid, owner.gid);
    for await (const chunk of entry as AsyncIterable<Buffer>) await handle.write(chunk);
  } finally {
    await handle.close();
  }
}

async function writeEntry(dir: string, entry: TarEntry, made: Made, owner: Owner | undefined): Promise<boolean> {
  const { name, type } = entry.header;
  const path = safePath(dir, name);
  if (type === 'directory') {
    await makeDir(path, made, owner);
    entry.resume();
    return false;
  }
  if (type !== 'file' && type !== 'contiguous-file') {
    throw new PgopsError(`the base backup holds a ${type} entry (${JSON.stringify(name.slice(0, 100))}): pg_basebackup -Ft writes only files and directories`);
  }
  await makeDir(dirname(path), made, owner);
  await writeFileEntry(path, entry, owner);
  return true;
}

/** A Node Writable extracting a tar into `dir`: tar-stream's streamx extractor, bridged with backpressure. */
function extractInto(dir: string, owner: Owner | undefined, counted: { files: number }): Writable {
  const ex = tar.extract();
  const made: Made = new Set([dir]);
  let failure: Error | undefined;
  const consumed = (async () => {
    for await (const entry of ex) if (await writeEntry(dir, entry, made, owner)) counted.files++;
  })().catch((err: unknown) => {
    failure = err instanceof Error ? err : new Error(String(err));
    ex.destroy(failure);
  });
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (failure) return cb(failure);
      if (ex.write(chunk)) return cb();
      const onDrain = () => { ex.removeListener('close', onClose); cb(); };
      const onClose = () => { ex.removeListener('drain', onDrain); cb(failure ?? new Error('tar extraction stopped')); };
      ex.once('drain', onDrain);
      ex.once('close', onClose);
    },
    final(cb) {
      ex.end(null);
      consumed.then(() => cb(failure ?? null), cb);
    },
    destroy(err, cb) {
      if (!ex.destroyed) ex.destroy(err ?? undefined);
      cb(err);
    },
  });
}

/** Stream `key` into `dir`: hashed as stored, decompressed, extracted. The caller compares hash and size. */
export async function unpackBaseBackup(storage: Storage, key: string, compression: PhysicalCompression, dir: string, o: { owner?: Owner; onBytes?: (bytes: number) => void; signal?: AbortSignal } = {}): Promise<Unpacked> {
  const source = await storage.getStream(key);
  const meter = new HashMeter(o.onBytes);
  const counted = { files: 0 };
  await pipeline(source, meter, decompressor(compression), extractInto(dir, o.owner, counted), ...(o.signal ? [{ signal: o.signal }] : []));
  return { bytes: meter.bytes, sha256: meter.digest(), files: counted.files };
}
