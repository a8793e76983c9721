// One storage interface, two backends (S3 and the local filesystem). Keys are relative to the
// configured prefix and always use "/".
import type { Readable } from 'node:stream';

export interface StoredObject {
  key: string;
  size: number;
  lastModified: Date;
}

export interface PutResult {
  key: string;
  bytes: number;
}

/**
 * Something a write left behind that is not an object: a FileStorage temporary file or an S3
 * multipart upload never completed nor aborted (a crashed or killed writer).
 */
export interface IncompleteUpload {
  /** The key being written (for a temporary file: the temporary file's own key). */
  key: string;
  /** When it started (multipart) or was last written to (temporary file). */
  startedAt: Date;
  kind: 'temp-file' | 'multipart';
  uploadId?: string;
}

export interface Storage {
  /** The configured location, safe to print (s3://bucket/prefix or file:///path). */
  readonly url: string;
  /**
   * Stream `body` to `key`. Resolves only when the object is complete and durable. When `body`
   * errors, `signal` aborts, or the backend fails, rejects with the ORIGINAL cause and leaves no
   * object (and no partial/temporary file or multipart upload) behind.
   * The source's own error (or the signal's reason) is rethrown as is; a backend failure is a
   * StorageError naming the location, with the backend's error as `cause`. On any failure `body`
   * is destroyed, so whatever produces it stops (as stream.pipeline does).
   * `sizeHint` (optional, bytes, may be rough): lets S3 pick parts large enough for objects above
   * 10,000 x the default part size (156 GiB); ignored by local storage.
   */
  putStream(key: string, body: Readable, options?: { contentType?: string; signal?: AbortSignal; sizeHint?: number }): Promise<PutResult>;
  /** Small objects (manifests, state): written atomically. */
  putBytes(key: string, data: Buffer | string, options?: { contentType?: string }): Promise<PutResult>;
  /** Throws StorageNotFoundError when absent. */
  getStream(key: string): Promise<Readable>;
  /** undefined when absent. */
  getBytes(key: string): Promise<Buffer | undefined>;
  /** Every object whose key starts with `prefix`, recursively, in key order. */
  list(prefix: string): Promise<StoredObject[]>;
  /** Deleting an absent key is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Unfinished writes below `prefix`, oldest first. Throws StorageUnsupportedError when the store
   * cannot list them (then nothing is known, not "nothing is there"). Optional: a store without
   * it has nothing to say.
   */
  listIncomplete?(prefix: string): Promise<IncompleteUpload[]>;
  /** Remove one unfinished write as listIncomplete returned it; one already gone is not an error. */
  removeIncomplete?(item: IncompleteUpload): Promise<void>;
}
