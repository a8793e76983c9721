// A real S3-protocol server (s3rver) on 127.0.0.1 and a random port, with a fresh bucket.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { afterAll, beforeAll } from 'vitest';

export interface TestS3 {
  endpoint: string;
  bucket: string;
  client(): S3Client;
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

export function useS3rver(bucket = 'pgops-test'): TestS3 {
  let server: S3rver | undefined;
  let dir = '';
  let endpoint = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pgops-s3-'));
    server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: bucket, configs: [] }] });
    const addr = await server.run();
    endpoint = `http://127.0.0.1:${addr.port}`;
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get endpoint() { return endpoint; },
    bucket,
    client: () => s3ClientFor(endpoint),
  };
}
