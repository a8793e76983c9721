// S3 storage (s3://bucket/prefix), for AWS S3 and any S3-compatible server.
//
// Streams go through lib-storage's multipart Upload with a fixed part size and queue, so memory
// stays bounded (about partSize x (queueSize + 1), 24 MiB by default) for any dump below
// 9,000 parts (70 GiB); only a larger sizeHint raises the part size. Retries of 5xx,
// SlowDown and dropped connections are the SDK client's job (see createS3Client).
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable, finished } from 'node:stream';
import { instrumented } from '../aws/clients.ts';
import { ConfigError } from '../errors.ts';
import { StorageDeniedError, StorageError, StorageNotFoundError, StorageUnsupportedError } from './errors.ts';
import { compareKeys, validateKey, validatePrefix } from './keys.ts';
import type { IncompleteUpload, PutResult, Storage, StoredObject } from './types.ts';

const MiB = 1024 * 1024;
/** S3 caps a multipart upload at 10,000 parts; we keep a margin for a size hint that was low. */
const MAX_PARTS_PLANNED = 9_000;

export interface S3StorageOptions {
  /** Multipart part size in bytes (default 8 MiB, min 5 MiB). 10,000 parts cap the object size (78 GiB at 8 MiB) unless putStream gets a sizeHint. */
  partSize?: number;
  /** Parts uploaded concurrently (default 2: already faster than pg_dump -Fc produces, and memory stays low). */
  queueSize?: number;
  /** MaxKeys per ListObjectsV2 page (default 1000, the S3 maximum). */
  pageSize?: number;
}

export interface S3ClientOptions {
  /** Any S3-compatible endpoint; implies path-style addressing. */
  endpoint?: string;
  region?: string;
  credentials?: S3ClientConfig['credentials'];
  /** Attempts per request, first one included (default 5). */
  maxAttempts?: number;
  /** 'standard' (default) or 'adaptive' (adds client-side rate limiting after throttling). */
  retryMode?: 'standard' | 'adaptive';
}

/**
 * The client pgops uses: retries 5xx, SlowDown and connection errors with backoff, and never
 * waits forever on a dead connection. With an endpoint: path style, and checksums only when an
 * operation requires them (otherwise S3-compatible servers may store streamed bodies with their
 * aws-chunked framing).
 */
export function createS3Client(options: S3ClientOptions = {}): S3Client {
  const config: S3ClientConfig = {
    maxAttempts: options.maxAttempts ?? 5,
    retryMode: options.retryMode ?? 'standard',
    // Idle timeout, not a total: a multi-GB download may take long but never goes silent for minutes.
    requestHandler: { connectionTimeout: 10_000, socketTimeout: 300_000 },
  };
  if (options.region !== undefined) config.region = options.region;
  if (options.credentials !== undefined) config.credentials = options.credentials;
  if (options.endpoint !== undefined) {
    config.endpoint = options.endpoint;
    config.region ??= 'us-east-1'; // S3-compatible servers ignore it, the SDK insists on one
    config.forcePathStyle = true;
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  const client = new S3Client(config);
  unsignPayloadOverTls(client);
  return instrumented(client);
}

/** The requests that carry object data, whose payload SigV4 would otherwise hash in full. */
const DATA_COMMANDS = new Set(['UploadPartCommand', 'PutObjectCommand']);

/**
 * Over TLS, object data goes with an unsigned payload (x-amz-content-sha256: UNSIGNED-PAYLOAD), as
 * the AWS CLI sends it: otherwise SigV4 hashes every byte of every part a second time (our SHA-256
 * of the dump is the first), a full pass of CPU on the machine running pgops. TLS protects the bytes
 * in transit, S3 checks each part's CRC32 (the SDK's default checksum against AWS), and the
 * manifest's SHA-256 covers the whole object. Over plain HTTP the payload stays signed: nothing else
 * would protect it.
 */
function unsignPayloadOverTls(client: S3Client): void {
  client.middlewareStack.add((next, context) => async (args) => {
    const request = args.request as { protocol?: unknown; headers?: Record<string, string> } | undefined;
    if (DATA_COMMANDS.has(context.commandName ?? '') && request?.protocol === 'https:' && request.headers) {
      request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    }
    return next(args);
  }, { step: 'build', name: 'pgopsUnsignedPayloadOverTls' });
}

/** Parses s3://bucket/prefix; a ConfigError names what is wrong (never echoing the URL). */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/?#]*)(\/[^?#]*)?$/.exec(url);
  if (!match) throw new ConfigError('expected s3://bucket/prefix (no query or fragment)');
  const bucket = match[1] ?? '';
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new ConfigError('invalid S3 bucket name');
  const prefix = (match[2] ?? '').replace(/^\/+/, '').replace(/\/+$/, '');
  try {
    if (prefix !== '') validateKey(prefix);
  } catch (err) {
    throw new ConfigError('invalid S3 prefix (empty, "." or ".." segments)', [], { cause: err });
  }
  return { bucket, prefix };
}

/**
 * SDK errors carry the raw HTTP response, whose request holds the signed headers (access key id,
 * and with temporary credentials the session token), often as a property that cannot be deleted.
 * What we keep as a cause (and may be logged in depth) is a copy: name, message, stack, status,
 * request id, attempts.
 */
export function scrubSdkError(err: unknown): unknown {
  if (!(err instanceof Error) || !('$response' in err || '$metadata' in err)) return err;
  const copy = new Error(err.message) as Error & Record<string, unknown>;
  copy.name = err.name;
  if (err.stack !== undefined) copy.stack = err.stack;
  for (const field of ['$metadata', '$fault', 'Code', 'code']) {
    const value = (err as unknown as Record<string, unknown>)[field];
    if (value !== undefined) copy[field] = value;
  }
  if (err.cause !== undefined) copy.cause = scrubSdkError(err.cause);
  return copy;
}

function errorName(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'name' in err ? String((err).name) : undefined;
}

/** The store does not implement the operation at all (s3rver: 501 NotImplemented; some others: 405). */
function isUnsupported(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  return ['NotImplemented', 'MethodNotAllowed'].includes(errorName(err) ?? '') || status === 501 || status === 405;
}

/** The error for an optional operation: unsupported or denied are told apart from an outage. */
function optionalOperationError(message: string, err: unknown): StorageError {
  if (isUnsupported(err)) return new StorageUnsupportedError(message, { cause: scrubSdkError(err) });
  if (errorName(err) === 'AccessDenied') return new StorageDeniedError(message, { cause: scrubSdkError(err) });
  return new StorageError(message, { cause: scrubSdkError(err) });
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const name = err.name && err.name !== 'Error' ? `${err.name}: ` : '';
  return `${name}${err.message}${status ? ` (HTTP ${status})` : ''}`;
}

function byteLength(body: unknown): number {
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (body instanceof Uint8Array) return body.byteLength;
  return 0;
}

// instanceof, not constructor.name: bundlers may rename classes.
function operationOf(command: unknown): string {
  if (command instanceof UploadPartCommand) return 'UploadPart';
  if (command instanceof PutObjectCommand) return 'PutObject';
  if (command instanceof CreateMultipartUploadCommand) return 'CreateMultipartUpload';
  if (command instanceof CompleteMultipartUploadCommand) return 'CompleteMultipartUpload';
  return 'request';
}

function isPrematureClose(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ERR_STREAM_PREMATURE_CLOSE';
}

type Send = (command: unknown) => Promise<unknown>;

interface UploadFailure {
  origin: 'source' | 'abort' | 'backend';
  error: unknown;
  operation?: string;
}

/**
 * What one streamed upload has seen. The first failure wins, whatever happens while cleaning up:
 * lib-storage rethrows the AbortMultipartUpload error when that fails (s3rver answers 405), which
 * would hide it.
 */
class UploadWatch {
  first: UploadFailure | undefined;
  cleanupError: unknown;
  uploadId: string | undefined;
  /** A PutObject or CompleteMultipartUpload went out: an object may exist even if we saw it fail. */
  finalSent = false;
  bytes = 0;

  constructor(private readonly body: Readable) {}

  failed(failure: UploadFailure): void {
    this.first ??= failure;
  }

  /** Stop feeding parts: the remaining uploaders drain out instead of reading the whole dump. */
  stopSource(error: unknown): void {
    if (!this.body.destroyed) this.body.destroy(error instanceof Error ? error : new Error(String(error)));
  }

  /** lib-storage talks to S3 through this view of the client, which sees every command's outcome. */
  clientView(client: S3Client): S3Client {
    const send: Send = async (command) => {
      if (command instanceof PutObjectCommand || command instanceof CompleteMultipartUploadCommand) this.finalSent = true;
      try {
        const output = await (client.send as Send).call(client, command);
        if (command instanceof CreateMultipartUploadCommand) this.uploadId = (output as { UploadId?: string }).UploadId;
        if (command instanceof UploadPartCommand || command instanceof PutObjectCommand) this.bytes += byteLength(command.input.Body);
        return output;
      } catch (err) {
        if (command instanceof AbortMultipartUploadCommand) {
          this.cleanupError = scrubSdkError(err);
        } else {
          this.failed({ origin: 'backend', error: err, operation: operationOf(command) });
          this.stopSource(err);
        }
        throw err;
      }
    };
    return new Proxy(client, {
      get: (target, property) => (property === 'send' ? send : Reflect.get(target, property, target) as unknown),
    });
  }

  /** What the upload failed of, given the error lib-storage rejected with. */
  decisiveFailure(err: unknown): UploadFailure {
    const first = this.first;
    // No recorded failure, or only the premature close of the source that lib-storage itself
    // caused when it gave up: lib-storage refused (e.g. too many parts) and aborted already.
    if (first === undefined || (first.origin === 'source' && isPrematureClose(first.error) && !isPrematureClose(err) && err !== this.cleanupError)) {
      return { origin: 'backend', error: err, operation: 'multipart upload' };
    }
    return first;
  }
}

export class S3Storage implements Storage {
  readonly url: string;
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly pageSize: number;

  constructor(client: S3Client, url: string, options: S3StorageOptions = {}) {
    const { bucket, prefix } = parseS3Url(url);
    this.client = client;
    this.bucket = bucket;
    this.prefix = prefix;
    this.url = prefix === '' ? `s3://${bucket}` : `s3://${bucket}/${prefix}`;
    this.partSize = Math.max(options.partSize ?? 8 * MiB, 5 * MiB);
    this.queueSize = Math.max(options.queueSize ?? 2, 1);
    this.pageSize = Math.min(Math.max(options.pageSize ?? 1000, 1), 1000);
  }

  private objectKey(key: string): string {
    validateKey(key);
    return this.prefix === '' ? key : `${this.prefix}/${key}`;
  }

  private where(key: string): string {
    return `${this.url}/${key}`;
  }

  private fail(operation: string, key: string, err: unknown): StorageError {
    return new StorageError(`S3 ${operation} of ${this.where(key)} failed: ${describe(err)}`, { cause: scrubSdkError(err) });
  }

  async putStream(key: string, body: Readable, options: { contentType?: string; signal?: AbortSignal; sizeHint?: number } = {}): Promise<PutResult> {
    const Key = this.objectKey(key);
    const { signal } = options;
    if (signal?.aborted) {
      body.destroy();
      throw signal.reason;
    }
    const watch = new UploadWatch(body);
    const stopFinished = finished(body, (err) => {
      if (err) watch.failed({ origin: 'source', error: err });
    });
    const onAbort = () => {
      watch.failed({ origin: 'abort', error: signal?.reason });
      watch.stopSource(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const upload = new Upload({
      client: watch.clientView(this.client),
      params: { Bucket: this.bucket, Key, Body: body, ...(options.contentType ? { ContentType: options.contentType } : {}) },
      partSize: this.partSizeFor(options.sizeHint),
      queueSize: this.queueSize,
      // lib-storage aborts the multipart upload itself, after every in-flight part has settled.
      leavePartsOnError: false,
    });
    try {
      await upload.done();
      return { key, bytes: watch.bytes };
    } catch (err) {
      throw await this.uploadFailed(key, body, watch, err);
    } finally {
      stopFinished();
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Parts large enough that a dump of about `sizeHint` bytes stays under S3's part limit. */
  private partSizeFor(sizeHint: number | undefined): number {
    if (sizeHint === undefined || sizeHint <= 0) return this.partSize;
    return Math.max(this.partSize, Math.ceil(sizeHint / MAX_PARTS_PLANNED / MiB) * MiB);
  }

  /** The error a failed putStream rejects with, once nothing of the upload is left behind. */
  private async uploadFailed(key: string, body: Readable, watch: UploadWatch, err: unknown): Promise<unknown> {
    // Usually gone already; no error here, as nobody may be listening once we return.
    if (!body.destroyed) body.destroy();
    const failure = watch.decisiveFailure(err);
    // Anything but a backend failure is the source's own error, or the abort reason: rethrown as is.
    const error = failure.origin === 'backend' ? this.backendFailure(key, failure, watch) : failure.error;
    // The final request may have reached S3 even though we saw it fail: remove what it made.
    if (watch.finalSent) {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) })).catch((deleteErr: unknown) => {
        if (error instanceof StorageError) error.cleanupError ??= scrubSdkError(deleteErr);
      });
    }
    return error;
  }

  private backendFailure(key: string, failure: UploadFailure, watch: UploadWatch): StorageError {
    const error = this.fail(failure.operation ?? 'upload', key, failure.error);
    if (watch.cleanupError !== undefined && watch.uploadId !== undefined) {
      error.message += `; aborting multipart upload ${watch.uploadId} failed too: ${describe(watch.cleanupError)}`;
      error.cleanupError = watch.cleanupError;
    }
    return error;
  }

  async putBytes(key: string, data: Buffer | string, options: { contentType?: string } = {}): Promise<PutResult> {
    const Key = this.objectKey(key);
    const Body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    try {
      // A single PutObject is atomic on S3: the object appears whole or not at all.
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body, ContentLength: Body.length, ...(options.contentType ? { ContentType: options.contentType } : {}) }));
    } catch (err) {
      throw this.fail('PutObject', key, err);
    }
    return { key, bytes: Body.length };
  }

  async getStream(key: string): Promise<Readable> {
    const Key = this.objectKey(key);
    try {
      const output = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
      if (!(output.Body instanceof Readable)) throw new Error('GetObject returned no readable body');
      return output.Body;
    } catch (err) {
      if (errorName(err) === 'NoSuchKey' || await this.deniedButAbsent(Key, err)) throw new StorageNotFoundError(key, this.where(key), { cause: scrubSdkError(err) });
      throw this.fail('GetObject', key, err);
    }
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    const Key = this.objectKey(key);
    try {
      const output = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
      if (!output.Body) throw new Error('GetObject returned no body');
      return Buffer.from(await output.Body.transformToByteArray());
    } catch (err) {
      if (errorName(err) === 'NoSuchKey' || await this.deniedButAbsent(Key, err)) return undefined;
      throw this.fail('GetObject', key, err);
    }
  }

  /**
   * Whether a GetObject that S3 refused was in fact of a missing key. S3 answers a missing key with
   * 404 only to callers whose s3:ListBucket covers the request; a list right narrowed by s3:prefix
   * (as pgops' roles have: lib/permissions.ts) gets 403 AccessDenied. Listing exactly that key
   * (allowed under the database's prefix) tells them apart: absent only when the listing succeeds
   * without it. A listing that fails, or that shows the key, leaves the denial as the error.
   */
  private async deniedButAbsent(Key: string, err: unknown): Promise<boolean> {
    if (errorName(err) !== 'AccessDenied') return false;
    try {
      // Keys sort in byte order and a key sorts before every longer key it prefixes: if it exists, it comes first.
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: Key, MaxKeys: 1 }));
      return !(page.Contents ?? []).some((object) => object.Key === Key);
    } catch {
      return false;
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    validatePrefix(prefix);
    const base = this.prefix === '' ? '' : `${this.prefix}/`;
    const out: StoredObject[] = [];
    let ContinuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${base}${prefix}`, MaxKeys: this.pageSize, ContinuationToken }));
      } catch (err) {
        throw new StorageError(`S3 ListObjectsV2 of ${this.url}/${prefix}* failed: ${describe(err)}`, { cause: scrubSdkError(err) });
      }
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined || !object.Key.startsWith(base)) continue;
        const key = object.Key.slice(base.length);
        if (key === '') continue; // a "folder" marker for the prefix itself
        out.push({ key, size: object.Size ?? 0, lastModified: object.LastModified ?? new Date(0) });
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken !== undefined);
    // S3 already answers in UTF-8 byte order; some compatible servers might not.
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  async delete(key: string): Promise<void> {
    const Key = this.objectKey(key);
    try {
      // S3 answers 204 for an absent key too.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
    } catch (err) {
      if (errorName(err) === 'NoSuchKey' || errorName(err) === 'NotFound') return;
      throw this.fail('DeleteObject', key, err);
    }
  }

  /** Multipart uploads under `prefix` never completed nor aborted, oldest first (ListMultipartUploads). */
  async listIncomplete(prefix: string): Promise<IncompleteUpload[]> {
    validatePrefix(prefix);
    const base = this.prefix === '' ? '' : `${this.prefix}/`;
    const out: IncompleteUpload[] = [];
    let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
    for (;;) {
      let page;
      try {
        page = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: `${base}${prefix}`, MaxUploads: this.pageSize, ...markers }));
      } catch (err) {
        throw optionalOperationError(`S3 ListMultipartUploads of ${this.url}/${prefix}* failed: ${describe(err)}`, err);
      }
      for (const u of page.Uploads ?? []) {
        if (u.Key === undefined || u.UploadId === undefined || !u.Key.startsWith(base)) continue;
        out.push({ key: u.Key.slice(base.length), startedAt: u.Initiated ?? new Date(0), kind: 'multipart', uploadId: u.UploadId });
      }
      if (!page.IsTruncated || page.NextKeyMarker === undefined) break;
      markers = { KeyMarker: page.NextKeyMarker, UploadIdMarker: page.NextUploadIdMarker };
    }
    return out.sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime() || compareKeys(a.key, b.key));
  }

  async removeIncomplete(item: IncompleteUpload): Promise<void> {
    if (item.kind !== 'multipart' || item.uploadId === undefined) return; // S3 has no temporary files
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.objectKey(item.key), UploadId: item.uploadId }));
    } catch (err) {
      if (errorName(err) === 'NoSuchUpload') return; // completed or aborted meanwhile
      throw optionalOperationError(`S3 AbortMultipartUpload ${item.uploadId} of ${this.where(item.key)} failed: ${describe(err)}`, err);
    }
  }
}
