// Storage errors. Messages name the location in its display form (never credentials) and keep
// the backend's error as `cause`.
import { PgopsError } from '../errors.ts';

/** The backend failed (S3 answered an error after retries, a filesystem call failed). */
export class StorageError extends PgopsError {
  /**
   * Set when cleaning up after the failure (aborting a multipart upload, removing a temporary
   * file) failed too. Kept apart so it never replaces the original error.
   */
  cleanupError?: unknown;
}

/** No object at that key. */
export class StorageNotFoundError extends StorageError {
  readonly key: string;
  constructor(key: string, location: string, options?: { cause?: unknown }) {
    super(`no object at ${location}`, options);
    this.key = key;
  }
}

/** A key that could escape the prefix or that the backends would store differently: a bug in the caller. */
export class StorageKeyError extends StorageError {
  readonly key: string;
  constructor(key: string, reason: string) {
    super(`invalid storage key ${JSON.stringify(key)}: ${reason}`);
    this.key = key;
  }
}

/** The store does not implement an operation (an S3-compatible server answering NotImplemented or 405). */
export class StorageUnsupportedError extends StorageError {}

/** The store refused the operation (S3 AccessDenied): a permission the role lacks, not an outage. */
export class StorageDeniedError extends StorageError {}
