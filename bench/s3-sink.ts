// An S3 endpoint that answers the calls a backup makes (multipart upload, PutObject, delete) and
// discards every body: the bench's "S3 upload path" row, which times pgops' own side of an upload
// (hashing, part buffering, the SDK, HTTP) without s3rver's cost of storing and re-assembling the
// object on the same two cores, a cost real S3 does not put on the machine running pgops.
// Run as its own process: `node --import tsx bench/s3-sink.ts` prints its port. With
// PGOPS_BENCH_SINK_KEY and PGOPS_BENCH_SINK_CERT (PEM files) it answers over TLS.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { randomBytes } from 'node:crypto';

function drain(req: IncomingMessage): Promise<number> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => { bytes += c.length; });
    req.on('end', () => resolve(bytes));
    req.on('error', reject);
  });
}

function xml(res: ServerResponse, body: string): void {
  res.writeHead(200, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
}

/** Answers one request; unknown calls get 501 so a bench using more of S3 fails loudly. */
async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://sink');
  const [, bucket = '', ...rest] = url.pathname.split('/');
  const key = decodeURIComponent(rest.join('/'));
  await drain(req);
  const etag = `"${randomBytes(16).toString('hex')}"`;
  if (req.method === 'POST' && url.searchParams.has('uploads')) {
    return xml(res, `<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${key}</Key><UploadId>${randomBytes(8).toString('hex')}</UploadId></InitiateMultipartUploadResult>`);
  }
  if (req.method === 'POST' && url.searchParams.has('uploadId')) {
    return xml(res, `<CompleteMultipartUploadResult><Location>http://sink/${bucket}/${key}</Location><Bucket>${bucket}</Bucket><Key>${key}</Key><ETag>${etag}</ETag></CompleteMultipartUploadResult>`);
  }
  if (req.method === 'PUT') {
    res.writeHead(200, { etag });
    return void res.end();
  }
  if (req.method === 'DELETE') {
    res.writeHead(204);
    return void res.end();
  }
  res.writeHead(501, { 'content-type': 'application/xml' });
  res.end(`<Error><Code>NotImplemented</Code><Message>the bench's S3 sink does not answer ${req.method} ${url.pathname}${url.search}</Message></Error>`);
}

const onRequest = (req: IncomingMessage, res: ServerResponse) => {
  handle(req, res).catch(() => { res.destroy(); });
};
const { PGOPS_BENCH_SINK_KEY: key, PGOPS_BENCH_SINK_CERT: cert } = process.env;
const server = key && cert ? createTlsServer({ key: readFileSync(key), cert: readFileSync(cert) }, onRequest) : createServer(onRequest);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`);
});
