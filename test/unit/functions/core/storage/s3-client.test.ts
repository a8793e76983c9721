// The signed requests createS3Client sends: object data goes with an unsigned payload over TLS only.
// The requests are built and signed by the client's real middleware and captured before the network
// (the command's own handler, not client.send, which another file's aws-sdk-client-mock may stub).
import { PutObjectCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createS3Client } from '../../../../../functions/core/storage/s3.ts';

interface Sent { protocol: string; headers: Record<string, string> }

const credentials = { accessKeyId: 'AKIDTEST', secretAccessKey: 'not-a-real-secret' };
const body = Buffer.from('a part of a dump');
const bodySha256 = createHash('sha256').update(body).digest('hex');

/** Runs `command` through `client`'s middleware and returns the request as signed, never sending it. */
async function signedRequest(client: S3Client, command: UploadPartCommand | PutObjectCommand): Promise<Sent> {
  let sent: Sent | undefined;
  // Nothing leaves this test: the capture never calls the next handler.
  client.middlewareStack.add(() => async (args) => {
    sent = args.request as Sent;
    throw new Error('captured');
  }, { step: 'deserialize', name: 'captureSignedRequest', override: true });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the command's handler is typed per command; only its rejection matters here
  const handler = (command as any).resolveMiddleware(client.middlewareStack, client.config, {}) as (a: { input: unknown }) => Promise<unknown>;
  await expect(handler({ input: command.input })).rejects.toThrow('captured');
  if (!sent) throw new Error('no request reached the capture');
  return sent;
}

const part = () => new UploadPartCommand({ Bucket: 'backups', Key: 'db/logical/1/dump', UploadId: 'u1', PartNumber: 1, Body: body, ContentLength: body.length });
const put = () => new PutObjectCommand({ Bucket: 'backups', Key: 'db/logical/1/dump', Body: body, ContentLength: body.length });

describe('createS3Client: payload signing', () => {
  it('over TLS, a part and a whole object go with an unsigned payload, still signed in their headers', async () => {
    for (const command of [part(), put()]) {
      const sent = await signedRequest(createS3Client({ endpoint: 'https://s3.example.test', credentials, maxAttempts: 1 }), command);
      expect(sent.protocol).toBe('https:');
      expect(sent.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
      expect(sent.headers.authorization).toMatch(/SignedHeaders=[^,]*x-amz-content-sha256/);
    }
  });

  it('AWS itself (no endpoint) is TLS: unsigned payload, with the CRC32 the SDK adds for S3 to check', async () => {
    const sent = await signedRequest(createS3Client({ region: 'eu-west-1', credentials, maxAttempts: 1 }), part());
    expect(sent.protocol).toBe('https:');
    expect(sent.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(sent.headers['x-amz-checksum-crc32']).toMatch(/^[A-Za-z0-9+/]+=*$/);
  });

  it('over plain HTTP the payload stays signed: its SHA-256 is in the signature', async () => {
    for (const command of [part(), put()]) {
      const sent = await signedRequest(createS3Client({ endpoint: 'http://127.0.0.1:9000', credentials, maxAttempts: 1 }), command);
      expect(sent.protocol).toBe('http:');
      expect(sent.headers['x-amz-content-sha256']).toBe(bodySha256);
    }
  });
});
