// A real S3-protocol server (s3rver) on 127.0.0.1 and a random port, with a fresh bucket.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { afterAll, beforeAll } from 'vitest';

export interface TestS3 {
  endpoint: string;
  bucket: string;
  client(): S3Client;
  /** Upload ids of multipart uploads created and neither completed nor aborted (read from s3rver's store). */
  uploadsInProgress(): string[];
  /**
   * s3rver answers AbortMultipartUpload with 405. When true, the helper answers it the way S3
   * does (204, parts removed), so a test can check that nothing is left behind. Default false.
   */
  emulateAbortMultipartUpload: boolean;
}

export const TEST_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export function s3ClientFor(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: TEST_S3_CREDENTIALS,
    // Without these, streamed PutObject bodies are stored with aws-chunked framing by s3rver.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

// The part of Koa's context the emulation needs (koa has no types installed here).
interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
  type: string;
}
type KoaMiddleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

export function useS3rver(bucket = 'pgops-test'): TestS3 {
  let server: S3rver | undefined;
  let dir = '';
  let endpoint = '';
  // Where s3rver's filesystem store keeps unfinished multipart uploads (one directory per id).
  const uploadsDir = () => join(dir, bucket, '._S3rver_uploads');
  const state: TestS3 = {
    get endpoint() { return endpoint; },
    bucket,
    client: () => s3ClientFor(endpoint),
    uploadsInProgress: () => (existsSync(uploadsDir()) ? readdirSync(uploadsDir()) : []),
    emulateAbortMultipartUpload: false,
  };
  const abortMultipartUpload: KoaMiddleware = async (ctx, next) => {
    const uploadId = ctx.query.uploadId;
    if (!state.emulateAbortMultipartUpload || ctx.method !== 'DELETE' || typeof uploadId !== 'string' || !ctx.path.startsWith(`/${bucket}/`)) {
      await next();
      return;
    }
    const path = join(uploadsDir(), uploadId);
    if (!/^[0-9a-f]+$/.test(uploadId) || !existsSync(path)) {
      ctx.status = 404;
      ctx.type = 'application/xml';
      ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>';
      return;
    }
    rmSync(path, { recursive: true, force: true });
    ctx.status = 204;
  };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pgops-s3-'));
    server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: bucket, configs: [] }] });
    // s3rver is a Koa app: its middleware list is composed when run() starts listening, so this
    // runs before s3rver's own router (which would answer 405).
    (server as unknown as { middleware: KoaMiddleware[] }).middleware.unshift(abortMultipartUpload);
    const addr = await server.run();
    endpoint = `http://127.0.0.1:${addr.port}`;
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return state;
}
