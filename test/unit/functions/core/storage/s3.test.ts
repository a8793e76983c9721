// S3Storage's listing and aborting of unfinished multipart uploads, against a mocked S3 client
// (s3rver has no ListMultipartUploads; its NotImplemented answer is tested in the integration suite).
import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { StorageDeniedError, StorageError, StorageUnsupportedError } from '../../../../../functions/core/storage/errors.ts';
import { S3Storage } from '../../../../../functions/core/storage/s3.ts';

const s3 = mockClient(S3Client);
afterEach(() => s3.reset());

const storage = (options: { pageSize?: number } = {}) => new S3Storage(new S3Client({ region: 'us-east-1' }), 's3://backups/pgops', options);

function serviceError(name: string, status: number): S3ServiceException {
  return new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: `${name} answer` });
}

describe('S3Storage.listIncomplete', () => {
  it('lists every page under the configured prefix, strips it from the keys, oldest first', async () => {
    s3.on(ListMultipartUploadsCommand, { KeyMarker: undefined }).resolves({
      IsTruncated: true, NextKeyMarker: 'pgops/auth/logical/b/dump', NextUploadIdMarker: 'u2',
      Uploads: [
        { Key: 'pgops/auth/logical/a/dump', UploadId: 'u1', Initiated: new Date('2026-11-03T00:00:00Z') },
        { Key: 'pgops/auth/logical/b/dump', UploadId: 'u2', Initiated: new Date('2026-11-01T00:00:00Z') },
      ],
    });
    s3.on(ListMultipartUploadsCommand, { KeyMarker: 'pgops/auth/logical/b/dump', UploadIdMarker: 'u2' }).resolves({
      IsTruncated: false,
      Uploads: [{ Key: 'pgops/auth/wal/1/000000010000000000000001', UploadId: 'u3', Initiated: new Date('2026-11-02T00:00:00Z') }],
    });
    const found = await storage({ pageSize: 2 }).listIncomplete('auth/');
    expect(found).toEqual([
      { key: 'auth/logical/b/dump', startedAt: new Date('2026-11-01T00:00:00Z'), kind: 'multipart', uploadId: 'u2' },
      { key: 'auth/wal/1/000000010000000000000001', startedAt: new Date('2026-11-02T00:00:00Z'), kind: 'multipart', uploadId: 'u3' },
      { key: 'auth/logical/a/dump', startedAt: new Date('2026-11-03T00:00:00Z'), kind: 'multipart', uploadId: 'u1' },
    ]);
    const calls = s3.commandCalls(ListMultipartUploadsCommand);
    expect(calls.map((c) => c.args[0].input)).toEqual([
      { Bucket: 'backups', Prefix: 'pgops/auth/', MaxUploads: 2 },
      { Bucket: 'backups', Prefix: 'pgops/auth/', MaxUploads: 2, KeyMarker: 'pgops/auth/logical/b/dump', UploadIdMarker: 'u2' },
    ]);
  });

  it('a store without the operation (NotImplemented, 405) is StorageUnsupportedError; any other failure a StorageError', async () => {
    s3.on(ListMultipartUploadsCommand).rejects(serviceError('NotImplemented', 501));
    await expect(storage().listIncomplete('auth/')).rejects.toBeInstanceOf(StorageUnsupportedError);
    s3.on(ListMultipartUploadsCommand).rejects(serviceError('MethodNotAllowed', 405));
    await expect(storage().listIncomplete('auth/')).rejects.toBeInstanceOf(StorageUnsupportedError);
    s3.on(ListMultipartUploadsCommand).rejects(serviceError('AccessDenied', 403));
    const err = await storage().listIncomplete('auth/').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).not.toBeInstanceOf(StorageUnsupportedError);
    expect(err).toBeInstanceOf(StorageDeniedError); // a role without s3:ListBucketMultipartUploads
    s3.on(ListMultipartUploadsCommand).rejects(serviceError('InternalError', 500));
    const outage = await storage().listIncomplete('auth/').catch((e: unknown) => e);
    expect(outage).toBeInstanceOf(StorageError);
    expect([outage instanceof StorageDeniedError, outage instanceof StorageUnsupportedError]).toEqual([false, false]);
    expect((err as Error).message).toBe('S3 ListMultipartUploads of s3://backups/pgops/auth/* failed: AccessDenied: AccessDenied answer (HTTP 403)');
  });
});

describe('S3Storage.removeIncomplete', () => {
  it('aborts the upload under the configured prefix; an upload already gone is fine', async () => {
    s3.on(AbortMultipartUploadCommand).resolvesOnce({}).rejectsOnce(serviceError('NoSuchUpload', 404));
    const item = { key: 'auth/logical/b/dump', startedAt: new Date(0), kind: 'multipart' as const, uploadId: 'u2' };
    await storage().removeIncomplete(item);
    await storage().removeIncomplete(item);
    expect(s3.commandCalls(AbortMultipartUploadCommand).map((c) => c.args[0].input)).toEqual([
      { Bucket: 'backups', Key: 'pgops/auth/logical/b/dump', UploadId: 'u2' },
      { Bucket: 'backups', Key: 'pgops/auth/logical/b/dump', UploadId: 'u2' },
    ]);
  });

  it('a failed abort names the upload; a temporary file is not an S3 thing and sends nothing', async () => {
    s3.on(AbortMultipartUploadCommand).rejects(serviceError('AccessDenied', 403));
    const err = await storage().removeIncomplete({ key: 'auth/x/dump', startedAt: new Date(0), kind: 'multipart', uploadId: 'u9' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageDeniedError);
    expect((err as Error).message).toMatch(/^S3 AbortMultipartUpload u9 of s3:\/\/backups\/pgops\/auth\/x\/dump failed: AccessDenied/);
    s3.reset();
    await storage().removeIncomplete({ key: 'auth/.dump.pgops-tmp-00', startedAt: new Date(0), kind: 'temp-file' });
    expect(s3.calls()).toHaveLength(0);
  });
});
