// S3Storage against a real S3-protocol server (s3rver), through a fault-injecting proxy.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import { text } from 'node:stream/consumers';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createS3Client, S3Storage, type S3StorageOptions } from '../../../../../functions/core/storage/s3.ts';
import { openStorage } from '../../../../../functions/core/storage/index.ts';
import { StorageError, StorageNotFoundError, StorageUnsupportedError } from '../../../../../functions/core/storage/errors.ts';
import { s3Op, useFaultProxy, type LoggedRequest } from '../../../../helpers/fault-proxy.ts';
import { TEST_S3_CREDENTIALS, useS3rver } from '../../../../helpers/s3rver.ts';

const MiB = 1024 * 1024;
const s3 = useS3rver();
const faults = useFaultProxy(() => s3.endpoint);

const clients: S3Client[] = [];
afterAll(() => {
  for (const client of clients) client.destroy();
});

let counter = 0;
/** A storage under a fresh prefix, talking to s3rver through the fault proxy with pgops' own client config. */
function viaProxy(options: S3StorageOptions & { maxAttempts?: number; prefix?: string } = {}): S3Storage {
  const client = createS3Client({ endpoint: faults.endpoint, credentials: TEST_S3_CREDENTIALS, ...(options.maxAttempts ? { maxAttempts: options.maxAttempts } : {}) });
  clients.push(client);
  return new S3Storage(client, `s3://${s3.bucket}/${options.prefix ?? `t${++counter}`}`, options);
}

/** The same location seen directly (no proxy, no faults), to check what really is on the server. */
function direct(storage: S3Storage): S3Storage {
  const client = s3.client();
  clients.push(client);
  return new S3Storage(client, storage.url);
}

/** `total` bytes of random data in 1 MiB chunks, generated as read; `sha256()` once consumed. */
function randomSource(total: number, options: { failAfter?: number; error?: Error; onChunk?: (produced: number) => void } = {}) {
  const hash = createHash('sha256');
  let produced = 0;
  const stream = Readable.from(
    (async function* () {
      while (produced < total) {
        if (options.failAfter !== undefined && produced >= options.failAfter) throw options.error ?? new Error('source failed');
        const chunk = randomBytes(Math.min(MiB, total - produced));
        hash.update(chunk);
        produced += chunk.length;
        options.onChunk?.(produced);
        yield chunk;
      }
    })(),
  );
  return { stream, sha256: () => hash.digest('hex'), produced: () => produced };
}

async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const uploadIdsOf = (log: readonly LoggedRequest[]) => [...new Set(log.filter((r) => r.query.has('uploadId')).map((r) => r.query.get('uploadId')))];

beforeEach(() => {
  faults.proxy.clear();
  s3.emulateAbortMultipartUpload = false;
});

describe('S3Storage on s3rver', () => {
  it('streams a 40 MiB multipart upload and reads it back byte for byte', async () => {
    const storage = viaProxy();
    const source = randomSource(40 * MiB);
    const put = await storage.putStream('db/logical/20260101T000000Z-abcd/dump', source.stream, { contentType: 'application/octet-stream' });
    expect(put).toEqual({ key: 'db/logical/20260101T000000Z-abcd/dump', bytes: 40 * MiB });

    // The default 8 MiB parts: five of them.
    expect(faults.proxy.requests(s3Op.createMultipartUpload)).toHaveLength(1);
    expect(faults.proxy.requests(s3Op.uploadPart).map((r) => r.query.get('partNumber')).sort()).toEqual(['1', '2', '3', '4', '5']);
    expect(faults.proxy.requests(s3Op.completeMultipartUpload)).toHaveLength(1);

    expect(await sha256Of(await direct(storage).getStream('db/logical/20260101T000000Z-abcd/dump'))).toBe(source.sha256());
    expect(await storage.list('db/')).toEqual([{ key: 'db/logical/20260101T000000Z-abcd/dump', size: 40 * MiB, lastModified: expect.any(Date) }]);
  });

  it('a sizeHint raises the part size so that huge dumps stay under 10,000 parts', async () => {
    const storage = viaProxy({ partSize: 5 * MiB });
    const source = randomSource(12 * MiB);
    // 9,000 parts of 6 MiB planned: parts of 6 MiB instead of 5.
    await storage.putStream('hinted/dump', source.stream, { sizeHint: 9_000 * 6 * MiB });
    expect(faults.proxy.requests(s3Op.uploadPart)).toHaveLength(2);
    expect(await sha256Of(await direct(storage).getStream('hinted/dump'))).toBe(source.sha256());
  });

  it('small objects: putBytes, getBytes, delete, missing keys', async () => {
    const storage = viaProxy();
    expect(await storage.putBytes('db/manifest.json', '{"id":"x"}', { contentType: 'application/json' })).toEqual({ key: 'db/manifest.json', bytes: 10 });
    expect((await storage.getBytes('db/manifest.json'))?.toString()).toBe('{"id":"x"}');
    expect(await text(await storage.getStream('db/manifest.json'))).toBe('{"id":"x"}');
    expect(await storage.getBytes('db/manifest.json')).toBeDefined();

    // A stream smaller than one part is a single PutObject.
    faults.proxy.clear();
    expect(await storage.putStream('db/small', Readable.from([Buffer.from('hello '), Buffer.from('world')]))).toEqual({ key: 'db/small', bytes: 11 });
    expect(faults.proxy.requests(s3Op.putObject)).toHaveLength(1);
    expect(faults.proxy.requests(s3Op.createMultipartUpload)).toHaveLength(0);
    expect(await storage.putStream('db/empty', Readable.from([]))).toEqual({ key: 'db/empty', bytes: 0 });
    expect(await storage.getBytes('db/empty')).toEqual(Buffer.alloc(0));

    await storage.delete('db/manifest.json');
    expect(await storage.getBytes('db/manifest.json')).toBeUndefined();
    expect(await storage.getBytes('db/manifest.json')).toBeUndefined();
    await storage.delete('db/manifest.json'); // absent: fine
    const err = await storage.getStream('db/manifest.json').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageNotFoundError);
    expect((err as Error).message).toBe(`no object at ${storage.url}/db/manifest.json`);
    expect((err as Error).cause).toMatchObject({ name: 'NoSuchKey' });
    expect(await storage.getBytes('never/there')).toBeUndefined();
  });

  it('lists every key under a prefix across pages, in key order, never a sibling prefix', async () => {
    const storage = viaProxy({ pageSize: 5, prefix: 'lst' });
    const sibling = viaProxy({ prefix: 'lst2' });
    const keys = Array.from({ length: 23 }, (_, i) => `db/logical/2026010${i % 3}T0000${String(i).padStart(2, '0')}Z/manifest.json`);
    keys.push('db/a-b', 'db/a/b', 'other/x');
    for (const key of keys) await storage.putBytes(key, key);
    await sibling.putBytes('db/not-mine', 'x');

    faults.proxy.clear();
    const all = await storage.list('');
    expect(all.map((o) => o.key)).toEqual([...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    expect(faults.proxy.requests(s3Op.listObjectsV2)).toHaveLength(6); // 26 keys, 5 a page
    expect(all.every((o) => o.size === Buffer.byteLength(o.key) && o.lastModified instanceof Date)).toBe(true);

    expect((await storage.list('db/logical/20260101')).map((o) => o.key)).toEqual(keys.filter((k) => k.startsWith('db/logical/20260101')).sort());
    expect(await storage.list('nothing/')).toEqual([]);
    expect((await sibling.list('')).map((o) => o.key)).toEqual(['db/not-mine']);
  });

  it('retries a 500 on one UploadPart, a SlowDown and a dropped connection, and succeeds', async () => {
    const storage = viaProxy({ partSize: 5 * MiB });
    faults.proxy.failNext(s3Op.uploadPart, 1, 'internal-error');
    faults.proxy.failNext((r) => s3Op.uploadPart(r) && r.query.get('partNumber') === '3', 1, 'drop-connection');
    const source = randomSource(12 * MiB);
    expect((await storage.putStream('retried/dump', source.stream)).bytes).toBe(12 * MiB);
    expect(faults.proxy.log.filter((r) => r.fault).map((r) => r.fault).sort()).toEqual(['drop-connection', 'internal-error']);
    expect(faults.proxy.requests(s3Op.uploadPart)).toHaveLength(3 + 2); // three parts, two of them twice
    expect(await sha256Of(await direct(storage).getStream('retried/dump'))).toBe(source.sha256());

    faults.proxy.clear();
    faults.proxy.failNext(s3Op.putObject, 2, 'slow-down');
    await storage.putBytes('retried/manifest.json', '{}');
    expect(faults.proxy.requests(s3Op.putObject).map((r) => r.outcome)).toEqual([503, 503, 200]);
    expect(await direct(storage).getBytes('retried/manifest.json')).toEqual(Buffer.from('{}'));
  });

  it('a persistent 500 rejects with the original error even though s3rver refuses the abort (405)', async () => {
    const storage = viaProxy({ partSize: 5 * MiB });
    faults.proxy.failAll(s3Op.uploadPart, 'internal-error');
    const err = await storage.putStream('failing/dump', randomSource(12 * MiB).stream).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(StorageError);
    const message = (err as Error).message;
    expect(message).toContain(`S3 UploadPart of ${storage.url}/failing/dump failed: InternalError: We encountered an internal error`);
    expect((err as Error).cause).toMatchObject({ name: 'InternalError', $metadata: { httpStatusCode: 500, attempts: 5 } });
    // The abort was tried, for the right upload, and its 405 is kept apart from the cause.
    const [uploadId] = uploadIdsOf(faults.proxy.log);
    expect(faults.proxy.requests(s3Op.abortMultipartUpload).map((r) => [r.query.get('uploadId'), r.outcome])).toEqual([[uploadId, 405]]);
    expect((err as StorageError).cleanupError).toMatchObject({ name: 'MethodNotAllowed' });
    expect(message).toContain(`aborting multipart upload ${uploadId} failed too`);
    expect(message).not.toContain(TEST_S3_CREDENTIALS.secretAccessKey);
    // The SDK's raw response (signed request headers: key id, session token) is not kept.
    expect(inspect(err, { depth: 20, showHidden: true })).not.toMatch(/Credential=|authorization/i);

    expect(await direct(storage).getBytes('failing/dump')).toBeUndefined();
    expect(await direct(storage).list('')).toEqual([]);
  });

  it('after a persistent 500 no object and no multipart upload is left (S3 abort semantics emulated)', async () => {
    s3.emulateAbortMultipartUpload = true;
    const storage = viaProxy({ partSize: 5 * MiB });
    faults.proxy.failAll((r) => s3Op.uploadPart(r) && r.query.get('partNumber') === '2');
    const err = await storage.putStream('failing/dump', randomSource(12 * MiB).stream).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).cleanupError).toBeUndefined();
    const ids = uploadIdsOf(faults.proxy.log);
    expect(ids).toHaveLength(1);
    expect(faults.proxy.requests(s3Op.abortMultipartUpload).map((r) => r.outcome)).toEqual([204]);
    expect(s3.uploadsInProgress()).not.toContain(ids[0]);
    expect(await direct(storage).list('')).toEqual([]);
  });

  it('a failing CompleteMultipartUpload leaves no object and no upload', async () => {
    s3.emulateAbortMultipartUpload = true;
    const storage = viaProxy({ partSize: 5 * MiB, maxAttempts: 2 });
    faults.proxy.failAll(s3Op.completeMultipartUpload);
    const err = await storage.putStream('complete/dump', randomSource(6 * MiB).stream).catch((e: unknown) => e);
    expect((err as Error).message).toContain('S3 CompleteMultipartUpload of');
    const ids = uploadIdsOf(faults.proxy.log);
    expect(s3.uploadsInProgress()).not.toContain(ids[0]);
    expect(await direct(storage).getBytes('complete/dump')).toBeUndefined();
  });

  it('a persistent failure of a single PutObject rejects and leaves nothing', async () => {
    const storage = viaProxy({ maxAttempts: 2 });
    faults.proxy.failAll(s3Op.putObject, 'slow-down');
    const err = await storage.putStream('single/dump', Readable.from([Buffer.from('tiny')])).catch((e: unknown) => e);
    expect((err as Error).message).toContain(`S3 PutObject of ${storage.url}/single/dump failed: SlowDown`);
    expect(await direct(storage).getBytes('single/dump')).toBeUndefined();
    const bytesErr = await storage.putBytes('single/manifest.json', '{}').catch((e: unknown) => e);
    expect(bytesErr).toBeInstanceOf(StorageError);
    expect(await direct(storage).getBytes('single/manifest.json')).toBeUndefined();
  });

  it('a source that fails mid-upload rejects with its own error: no object, upload aborted', async () => {
    s3.emulateAbortMultipartUpload = true;
    const storage = viaProxy({ partSize: 5 * MiB });
    const boom = new Error('pg_dump: error: Dumping the contents of table "big" failed');
    const source = randomSource(40 * MiB, { failAfter: 12 * MiB, error: boom });
    await expect(storage.putStream('source/dump', source.stream)).rejects.toBe(boom);
    expect(source.stream.destroyed).toBe(true);
    const ids = uploadIdsOf(faults.proxy.log);
    expect(ids).toHaveLength(1); // parts 1 and 2 were on their way
    expect(faults.proxy.requests(s3Op.abortMultipartUpload)).toHaveLength(1);
    expect(s3.uploadsInProgress()).not.toContain(ids[0]);
    expect(await direct(storage).getBytes('source/dump')).toBeUndefined();

    // The same on s3rver's 405: still the source's error, not the abort's.
    s3.emulateAbortMultipartUpload = false;
    const boom2 = new Error('source died again');
    await expect(storage.putStream('source/dump', randomSource(40 * MiB, { failAfter: 12 * MiB, error: boom2 }).stream)).rejects.toBe(boom2);
    expect(await direct(storage).getBytes('source/dump')).toBeUndefined();
  });

  it('an abort signal mid-upload rejects with its reason and leaves nothing', async () => {
    s3.emulateAbortMultipartUpload = true;
    const storage = viaProxy({ partSize: 5 * MiB });
    const controller = new AbortController();
    const reason = new Error('backup cancelled');
    const source = randomSource(100 * MiB, { onChunk: (produced) => produced === 11 * MiB && controller.abort(reason) });
    await expect(storage.putStream('aborted/dump', source.stream, { signal: controller.signal })).rejects.toBe(reason);
    expect(source.produced()).toBeLessThan(40 * MiB);
    expect(s3.uploadsInProgress()).not.toContain(uploadIdsOf(faults.proxy.log)[0]);
    expect(await direct(storage).getBytes('aborted/dump')).toBeUndefined();
  });

  it('a part that keeps failing stops the source instead of uploading the rest of it', async () => {
    s3.emulateAbortMultipartUpload = true;
    const storage = viaProxy({ partSize: 5 * MiB, maxAttempts: 2 });
    faults.proxy.failAll((r) => s3Op.uploadPart(r) && r.query.get('partNumber') === '2');
    const source = randomSource(1024 * MiB);
    await expect(storage.putStream('stops/dump', source.stream)).rejects.toBeInstanceOf(StorageError);
    expect(source.produced()).toBeLessThan(200 * MiB);
    expect(source.stream.destroyed).toBe(true);
    expect(await direct(storage).getBytes('stops/dump')).toBeUndefined();
  });

  it('openStorage uses an injected client for s3:// URLs', async () => {
    const client = s3.client();
    clients.push(client);
    const storage = openStorage(`s3://${s3.bucket}/opened/`, { s3Client: client });
    expect(storage).toBeInstanceOf(S3Storage);
    expect(storage.url).toBe(`s3://${s3.bucket}/opened`);
    await storage.putBytes('k', 'v');
    expect(await storage.list('')).toMatchObject([{ key: 'k', size: 1 }]);
  });
});

describe('S3Storage: unfinished multipart uploads on a store that cannot list them', () => {
  it('s3rver answers ListMultipartUploads with NotImplemented: StorageUnsupportedError, naming the location', async () => {
    const storage = direct(viaProxy());
    const err = await storage.listIncomplete('auth/').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnsupportedError);
    expect((err as Error).message).toMatch(new RegExp(`^S3 ListMultipartUploads of ${storage.url}/auth/\\* failed: NotImplemented`));
  });
});
