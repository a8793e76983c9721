// Reading stored dumps: one pass that hashes the object and hands its bytes to pg_restore, a
// temporary file, or a tar extractor (directory-format dumps). tar-stream streams are streamx
// streams, so they are bridged to Node streams by hand, with backpressure.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Storage } from '../storage/types.ts';
import { HashMeter } from '../pgtools/tools.ts';

export interface ReadResult {
  bytes: number;
  sha256: string;
}

/** Stream a stored object into `sink`, hashing and counting it on the way. */
export async function readStoredObject(storage: Storage, key: string, sink: Writable, onBytes?: (bytes: number) => void, signal?: AbortSignal): Promise<ReadResult> {
  const source = await storage.getStream(key);
  const meter = new HashMeter(onBytes);
  // An abort destroys the three streams: the job stops reading and removes what it wrote.
  await pipeline(source, meter, sink, ...(signal ? [{ signal }] : []));
  return { bytes: meter.bytes, sha256: meter.digest() };
}

/** What differs between what was read and what the manifest says, one phrase each. */
export function readProblems(read: ReadResult, expected: ReadResult): string[] {
  const problems: string[] = [];
  if (read.bytes !== expected.bytes) problems.push(`size: the stored object has ${read.bytes} bytes, the manifest says ${expected.bytes}`);
  if (read.sha256 !== expected.sha256) problems.push(`sha256: the stored object hashes to ${read.sha256}, the manifest says ${expected.sha256}`);
  return problems;
}

/**
 * Passes a stored dump through while hashing it, but holds its last `holdBytes` back until the
 * whole object has matched its manifest; on a mismatch it errors instead. pg_restore reading a
 * custom archive from a pipe restores the data blocks in file order and commits only after the
 * last one: without the tail it cannot commit, so a corrupted archive is never committed.
 */
export class VerifiedTail extends Transform {
  private readonly hash = createHash('sha256');
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  bytes = 0;
  /** The tail went out: the object matched its manifest. */
  released = false;
  constructor(private readonly expected: ReadResult, private readonly mismatch: (problems: string[], read: ReadResult) => Error, private readonly holdBytes = 1024 * 1024, private readonly onBytes?: (bytes: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    while (this.held.length > 0 && this.heldBytes - this.held[0]!.length >= this.holdBytes) {
      const out = this.held.shift()!;
      this.heldBytes -= out.length;
      this.push(out);
    }
    cb();
  }
  override _flush(cb: TransformCallback): void {
    const read = { bytes: this.bytes, sha256: this.hash.digest('hex') };
    const problems = readProblems(read, this.expected);
    if (problems.length > 0) return cb(this.mismatch(problems, read));
    this.released = true;
    for (const out of this.held.splice(0)) this.push(out);
    cb();
  }
}

interface StreamxLike {
  write(chunk: Buffer): boolean;
  once(event: string, fn: (...args: unknown[]) => void): unknown;
  removeListener(event: string, fn: (...args: unknown[]) => void): unknown;
  destroyed?: boolean;
}

/** Write one chunk, waiting for 'drain' when the stream asks; rejects if it closes instead. */
function writeWithBackpressure(w: StreamxLike, chunk: Buffer): Promise<void> {
  if (w.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onDrain = () => { w.removeListener('close', onClose); resolve(); };
    const onClose = () => { w.removeListener('drain', onDrain); reject(new Error('stream closed while writing')); };
    w.once('drain', onDrain);
    w.once('close', onClose);
  });
}

const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/**
 * A Node Writable that extracts a flat tar (pg_dump's directory format: toc.dat and data files)
 * into `dir`. Anything else (subdirectories, links, "..") is refused.
 */
export async function tarExtractSink(dir: string): Promise<Writable> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ex = tar.extract();
  const consumer = (async () => {
    for await (const entry of ex) {
      const { name, type } = entry.header;
      if ((type !== 'file' && type != null) || !SAFE_NAME.test(name)) {
        throw new Error(`unexpected entry ${JSON.stringify(name)} (${type ?? 'file'}) in the dump archive`);
      }
      await pipeline(entry as AsyncIterable<Buffer>, createWriteStream(join(dir, name), { mode: 0o600 }));
    }
  })();
  let failure: unknown;
  const consumed = consumer.catch((err: unknown) => {
    failure = err;
    ex.destroy(err as Error);
  });
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (failure !== undefined) return cb(failure as Error);
      writeWithBackpressure(ex as unknown as StreamxLike, chunk).then(() => cb(), () => cb((failure as Error | undefined) ?? new Error('tar extraction stopped')));
    },
    final(cb) {
      ex.end(null);
      consumed.then(() => cb(failure as Error | undefined ?? null), cb);
    },
    destroy(err, cb) {
      if (!ex.destroyed) ex.destroy(err ?? undefined);
      cb(err);
    },
  });
}

/** A Node Readable of a tar of the regular files in `dir` (flat), for the upload. */
export function tarDirectory(dir: string): Readable {
  const pack = tar.pack();
  void (async () => {
    try {
      for (const name of (await readdir(dir)).sort()) {
        const path = join(dir, name);
        const st = await stat(path);
        if (!st.isFile()) continue;
        await new Promise<void>((resolve, reject) => {
          const entry = pack.entry({ name, size: st.size, mode: 0o600, mtime: st.mtime }, (err) => (err ? reject(err) : resolve()));
          (async () => {
            for await (const chunk of createReadStream(path)) await writeWithBackpressure(entry, chunk as Buffer);
            entry.end(null);
          })().catch((err: unknown) => {
            const error = err instanceof Error ? err : new Error(String(err));
            entry.destroy(error);
            reject(error);
          });
        });
      }
      pack.finalize();
    } catch (err) {
      pack.destroy(err as Error);
    }
  })();
  return Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
}
