// Archiving what pg_receivewal wrote: every finished file in order, each stored and verified
// (storeWalFile, the same format and code path as `wal push`) before the slot may move past it and
// before the local copy is deleted; the growing `.partial` replaced when it changed. A failing
// upload is retried with backoff; a conflicting segment is never retried, never overwritten.
import { createHash } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Storage } from '../storage/types.ts';
import { removeWalFile, replaceWalPartial, storeWalFile } from './archive.ts';
import { WalConflictError, WalReceiveError } from './errors.ts';
import { listSpool } from './receive-spool.ts';

export interface UploaderDeps {
  storage: Storage;
  databaseId: string;
  logger: Logger;
  segmentSize: number;
  /** Attempts per upload before the receiver gives up (default 5), the first pause (default 1 s, doubling, at most 30 s). */
  attempts?: number;
  backoffMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** Called once a finished segment is archived and verified, before its local copy is deleted. */
export type OnArchived = (segment: string) => Promise<void>;

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** The first page's magic number is still zero: pg_receivewal has padded the file but written nothing. */
const nothingWritten = (content: Buffer): boolean => content.length < 2 || content.readUInt16LE(0) === 0;

/** The file's content, or undefined when it is gone (a partial finished and renamed meanwhile: uploadFinished takes it). */
async function readIfPresent(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
}

export class SpoolUploader {
  segmentsUploaded = 0;
  partialUploads = 0;
  lastSegment: string | null = null;
  /** The SHA-256 of each partial as archived (by this run or found at the seed). */
  private readonly archivedPartials = new Map<string, string>();

  constructor(private readonly deps: UploaderDeps, private readonly dir: string, private readonly onArchived: OnArchived) {}

  /** A partial already in the archive with this content (the seed). */
  knownPartial(name: string, content: Buffer): void {
    this.archivedPartials.set(name, sha256(content));
  }

  /** Archive every finished file in order; each local copy is deleted only once it is stored and verified. */
  async uploadFinished(): Promise<void> {
    for (const name of (await listSpool(this.dir, this.deps.segmentSize)).finished) {
      const path = join(this.dir, name);
      const stored = await this.withRetries(name, async () => storeWalFile(this.deps.storage, this.deps.databaseId, name, await readFile(path)));
      if (!name.endsWith('.history')) {
        await this.onArchived(name);
        await this.dropPartial(`${name}.partial`);
        this.segmentsUploaded++;
        this.lastSegment = name;
      }
      this.deps.logger.info(`wal receive: ${name} ${stored.alreadyArchived ? 'already archived (identical)' : 'archived'} at ${stored.key}`);
      await unlink(path);
    }
  }

  /** Replace each archived partial whose local copy has grown since it was last archived. */
  async uploadPartials(): Promise<void> {
    for (const name of (await listSpool(this.dir, this.deps.segmentSize)).partials) {
      const content = await readIfPresent(join(this.dir, name));
      if (!content || nothingWritten(content)) continue;
      const hash = sha256(content);
      if (this.archivedPartials.get(name) === hash) continue;
      await this.withRetries(name, () => replaceWalPartial(this.deps.storage, this.deps.databaseId, name, content));
      this.archivedPartials.set(name, hash);
      this.partialUploads++;
      this.deps.logger.debug(`wal receive: ${name} archived (${content.length} bytes, partial)`);
    }
  }

  /** A finished segment supersedes the partial this receiver archived of it. */
  private async dropPartial(name: string): Promise<void> {
    if (!this.archivedPartials.has(name)) return;
    await this.withRetries(name, () => removeWalFile(this.deps.storage, this.deps.databaseId, name));
    this.archivedPartials.delete(name);
  }

  private async withRetries<T>(name: string, attempt: () => Promise<T>): Promise<T> {
    const attempts = this.deps.attempts ?? 5;
    const sleep = this.deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    for (let i = 1; ; i++) {
      try {
        return await attempt();
      } catch (err) {
        // A different segment under the name, or bad configuration: retrying cannot help.
        if (err instanceof WalConflictError || err instanceof ConfigError) throw err;
        if (i >= attempts) throw new WalReceiveError(`archiving ${name} failed after ${attempts} attempts (the slot keeps its WAL on the server): ${errorMessage(err)}`, { cause: err });
        this.deps.logger.warn(`wal receive: archiving ${name} failed (attempt ${i} of ${attempts}), retrying: ${errorMessage(err)}`);
        await sleep(Math.min(30_000, (this.deps.backoffMs ?? 1000) * 2 ** (i - 1)));
      }
    }
  }
}
