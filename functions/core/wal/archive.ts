// The WAL archive's two halves (DESIGN.md "Physical backups, WAL archive and point-in-time
// recovery"): `pushWal` is archive_command, `fetchWal` is restore_command, and `wal receive` stores
// through the same `storeWalFile` (plus `replaceWalPartial` for its growing partial). Each object is the file
// gzipped (level 1: WAL compresses well and archiving must keep up), with the SHA-256 of the
// original file beside it (layout.ts walChecksumKey), written after the data: the commit point.
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip as gunzipCb, gzip as gzipCb } from 'node:zlib';
import { checkWalName, walChecksumKey, walCompressions, walFileKey, type WalCompression } from '../catalog/layout.ts';
import { errorMessage } from '../errors.ts';
import { runJob, type JobReporting } from '../run-job.ts';
import type { Storage } from '../storage/types.ts';
import { WalConflictError, WalCorruptError, WalFetchError, WalPushError } from './errors.ts';

const gzip = promisify(gzipCb);
const gunzip = promisify(gunzipCb);

export interface WalDeps {
  storage: Storage;
  /** The database's folder in storage (required: there is no connection to default it from). */
  databaseId: string;
  reporting: JobReporting;
  /** Fetch attempts before giving up (default 3) and the first pause between them (default 200 ms, doubling). */
  attempts?: number;
  backoffMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

export interface WalPushResult {
  name: string;
  key: string;
  sha256: string;
  bytes: number;
  /** An identical file was already archived (a retried archive_command): nothing was written. */
  alreadyArchived: boolean;
}

export type WalFetchResult = { status: 'restored'; name: string; key: string; sha256: string; bytes: number } | { status: 'not-found'; name: string };

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

function decompress(data: Buffer, compression: WalCompression): Promise<Buffer> {
  return compression === 'gz' ? gunzip(data) : Promise.resolve(data);
}

/** The checksum object's text: `sha256sum` format, so `sha256sum -c` can check a downloaded file. */
function checksumLine(hash: string, name: string): string {
  return `${hash}  ${name}\n`;
}

/** The SHA-256 a checksum object holds; undefined when there is none; WalCorruptError when unreadable. */
async function readChecksum(storage: Storage, key: string): Promise<string | undefined> {
  const text = await storage.getBytes(key);
  if (text === undefined) return undefined;
  const m = /^([0-9a-f]{64})\b/.exec(text.toString('utf8'));
  if (!m) throw new WalCorruptError(`the checksum object ${key} does not hold a SHA-256`);
  return m[1];
}

/** The original content of a stored object, checked against `expected`; WalCorruptError when it differs. */
async function readVerified(storage: Storage, key: string, compression: WalCompression, expected: string): Promise<Buffer> {
  const stored = await storage.getBytes(key);
  if (stored === undefined) throw new WalCorruptError(`${key} is missing although its checksum is stored`);
  let content: Buffer;
  try {
    content = await decompress(stored, compression);
  } catch (err) {
    throw new WalCorruptError(`${key} cannot be decompressed: ${errorMessage(err)}`, { cause: err });
  }
  const actual = sha256(content);
  if (actual !== expected) throw new WalCorruptError(`${key} does not match its checksum (stored ${expected}, content ${actual})`);
  return content;
}

/** True when the stored object holds exactly `expected`'s content. */
async function storedMatches(storage: Storage, key: string, compression: WalCompression, expected: string): Promise<boolean> {
  try {
    await readVerified(storage, key, compression, expected);
    return true;
  } catch (err) {
    if (err instanceof WalCorruptError) return false;
    throw err;
  }
}

/** Where a WAL file goes, with the compression it is stored with today and its checksum object. */
function walObject(databaseId: string, name: string): { name: string; key: string; sumKey: string; compression: WalCompression } {
  const checked = checkWalName(name).name;
  const compression: WalCompression = walCompressions(checked)[0]!;
  const key = walFileKey(databaseId, checked, compression);
  return { name: checked, key, sumKey: walChecksumKey(key), compression };
}

/** Data, then its checksum (the commit point), then read both back. */
async function writeWalObject(storage: Storage, o: ReturnType<typeof walObject>, content: Buffer, hash: string): Promise<void> {
  await storage.putBytes(o.key, o.compression === 'gz' ? await gzip(content, { level: 1 }) : content, { contentType: 'application/octet-stream' });
  await storage.putBytes(o.sumKey, checksumLine(hash, o.name), { contentType: 'text/plain' });
  await verifyPushed(storage, o.key, o.compression, hash);
}

/**
 * Store one WAL file (`wal push` and `wal receive` alike) and return once it is stored and
 * verified. The same content again is a success; a different one under the same name is a
 * WalConflictError and the stored one is left as it is. An object whose identical checksum is
 * stored but whose data does not verify is rewritten (same content: a repair, not an overwrite).
 */
export async function storeWalFile(storage: Storage, databaseId: string, name: string, content: Buffer): Promise<WalPushResult> {
  const o = walObject(databaseId, name);
  const hash = sha256(content);
  const stored = await readChecksum(storage, o.sumKey);
  if (stored !== undefined && stored !== hash) throw new WalConflictError(o.name, o.key, stored, hash);
  const base = { name: o.name, key: o.key, sha256: hash, bytes: content.length };
  if (stored === hash && await storedMatches(storage, o.key, o.compression, hash)) return { ...base, alreadyArchived: true };
  await writeWalObject(storage, o, content, hash);
  return { ...base, alreadyArchived: false };
}

/**
 * Replace the archived `<segment>.partial` with a newer (grown) copy: the one WAL object whose
 * content changes. The checksum goes first, so while the data is rewritten the partial reads as
 * not archived (inventory and fetch skip data without a checksum), never as a checksum naming
 * other data; a writer killed midway leaves it not archived, not corrupt.
 */
export async function replaceWalPartial(storage: Storage, databaseId: string, name: string, content: Buffer): Promise<WalPushResult> {
  const o = walObject(databaseId, name);
  if (checkWalName(o.name).kind !== 'partial') throw new WalPushError(`${o.name} is not a .partial segment: only a partial is ever replaced`);
  const hash = sha256(content);
  const base = { name: o.name, key: o.key, sha256: hash, bytes: content.length };
  if (await readChecksum(storage, o.sumKey) === hash && await storedMatches(storage, o.key, o.compression, hash)) return { ...base, alreadyArchived: true };
  await storage.delete(o.sumKey);
  await writeWalObject(storage, o, content, hash);
  return { ...base, alreadyArchived: false };
}

/** Remove an archived file, checksum first (so it is never seen half-removed as archived). */
export async function removeWalFile(storage: Storage, databaseId: string, name: string): Promise<void> {
  for (const compression of walCompressions(name)) {
    const key = walFileKey(databaseId, name, compression);
    await storage.delete(walChecksumKey(key));
    await storage.delete(key);
  }
}

/**
 * archive_command: store the file at `path` and return only once it is stored and verified
 * (storeWalFile: idempotent for the same file, a WalConflictError for a different one).
 */
export function pushWal(deps: WalDeps, path: string): Promise<WalPushResult> {
  return runJob(deps.reporting, { job: 'wal push', wrap: (m, cause) => new WalPushError(`wal push ${basename(path)} failed: ${m}`, { cause }) }, async () => {
    const name = checkWalName(basename(path)).name;
    return storeWalFile(deps.storage, deps.databaseId, name, await readFile(path));
  });
}

/** Re-read what was stored: the checksum object names this file's hash and the data matches it. */
async function verifyPushed(storage: Storage, key: string, compression: WalCompression, hash: string): Promise<void> {
  const stored = await readChecksum(storage, walChecksumKey(key));
  if (stored !== hash) throw new WalPushError(`${key}: the stored checksum (${stored ?? 'none'}) is not the one written (${hash})`);
  await readVerified(storage, key, compression, hash).catch((err: unknown) => {
    throw new WalPushError(`${key} was stored but does not read back: ${errorMessage(err)}`, { cause: err });
  });
}

/** An archived file, verified against its checksum; undefined when it is not archived (no checksum object). */
export async function readWalFile(storage: Storage, databaseId: string, name: string): Promise<{ key: string; sha256: string; content: Buffer } | undefined> {
  for (const compression of walCompressions(name)) {
    const key = walFileKey(databaseId, name, compression);
    // No checksum: never archived, or a push that never completed (PostgreSQL was not told it was).
    const hash = await readChecksum(storage, walChecksumKey(key));
    if (hash === undefined) continue;
    return { key, sha256: hash, content: await readVerified(storage, key, compression, hash) };
  }
  return undefined;
}

/** Write `content` to a temporary file beside `dest`, fsync it, and rename it over `dest`. */
async function writeAtomically(dest: string, content: Buffer): Promise<void> {
  const temp = join(dirname(dest), `.${basename(dest)}.pgops-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, dest);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

/**
 * restore_command: restore `name` from the archive to `dest`, verified, atomically. Not archived is
 * a result (`not-found`, exit 1, no alert: PostgreSQL asks for files that do not exist as a matter
 * of course). Anything else, after bounded retries, is a WalFetchError (exit 126: recovery aborts).
 */
export function fetchWal(deps: WalDeps, name: string, dest: string): Promise<WalFetchResult> {
  return runJob(deps.reporting, { job: 'wal fetch' }, async () => {
    try {
      checkWalName(name);
      const found = await withRetries(deps, () => readWalFile(deps.storage, deps.databaseId, name));
      if (!found) return { status: 'not-found', name };
      await writeAtomically(dest, found.content);
      return { status: 'restored', name, key: found.key, sha256: found.sha256, bytes: found.content.length };
    } catch (err) {
      throw err instanceof WalFetchError ? err : new WalFetchError(`wal fetch ${name} failed (recovery must stop here, not end): ${errorMessage(err)}`, { cause: err });
    }
  });
}

async function withRetries<T>(deps: WalDeps, attempt: () => Promise<T>): Promise<T> {
  const attempts = deps.attempts ?? 3;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (i >= attempts) throw err;
      deps.reporting.logger.warn(`wal fetch: attempt ${i} of ${attempts} failed, retrying: ${errorMessage(err)}`);
      await sleep((deps.backoffMs ?? 200) * 2 ** (i - 1));
    }
  }
}
