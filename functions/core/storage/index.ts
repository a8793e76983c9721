// Opens the configured storage: s3://bucket/prefix or file:///absolute/path.
import type { S3Client } from '@aws-sdk/client-s3';
import { ConfigError, errorMessage } from '../errors.ts';
import { redactString } from '../redact.ts';
import { FileStorage } from './file.ts';
import { createS3Client, parseS3Url, S3Storage, type S3StorageOptions } from './s3.ts';
import type { Storage } from './types.ts';

export type { IncompleteUpload, PutResult, Storage, StoredObject } from './types.ts';
export { StorageDeniedError, StorageError, StorageKeyError, StorageNotFoundError, StorageUnsupportedError } from './errors.ts';
export { FileStorage } from './file.ts';
export { createS3Client, S3Storage, type S3ClientOptions, type S3StorageOptions } from './s3.ts';

export interface OpenStorageOptions {
  /** PGOPS_S3_ENDPOINT: any S3-compatible endpoint (path-style addressing). */
  s3Endpoint?: string;
  /** A ready client (tests, or callers with their own credentials); wins over s3Endpoint/region. */
  s3Client?: S3Client;
  region?: string;
  /** Part size, queue size, listing page size. */
  s3?: S3StorageOptions;
}

const EXPECTED = 'storage must be s3://bucket/prefix or file:///absolute/path';

export function openStorage(url: string, options: OpenStorageOptions = {}): Storage {
  const trimmed = typeof url === 'string' ? url.trim() : '';
  if (trimmed.startsWith('s3://')) {
    try {
      parseS3Url(trimmed);
    } catch (err) {
      throw new ConfigError(`${EXPECTED} (got ${storageDisplay(trimmed)}: ${errorMessage(err)})`, [], { cause: err });
    }
    const client = options.s3Client ?? createS3Client({ ...(options.s3Endpoint ? { endpoint: options.s3Endpoint } : {}), ...(options.region ? { region: options.region } : {}) });
    return new S3Storage(client, trimmed, options.s3);
  }
  if (trimmed.startsWith('file:')) {
    try {
      return new FileStorage(trimmed);
    } catch (err) {
      throw new ConfigError(`${EXPECTED} (got ${storageDisplay(trimmed)}: ${errorMessage(err instanceof ConfigError && err.cause !== undefined ? err.cause : err)})`, [], { cause: err });
    }
  }
  const hint = trimmed.startsWith('/') ? ` (for a local directory write file://${storageDisplay(trimmed)})` : '';
  throw new ConfigError(`${EXPECTED}; got ${trimmed === '' ? 'nothing' : storageDisplay(trimmed)}${hint}`);
}

/**
 * A storage URL as it may be printed: credentials, query and fragment removed. Anything that
 * does not parse is still redacted rather than echoed.
 */
export function storageDisplay(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    parsed.search = '';
    parsed.hash = '';
    return parsed.href;
  } catch {
    // Not a URL at all: still mask anything shaped like user:password@.
    return redactString(url.replace(/[?#].*$/, '')).replace(/[^\s/@]*:[^\s/@]*@/g, '***@');
  }
}
