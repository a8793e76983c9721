// S3Storage under the IAM that pgops deploys: s3:ListBucket narrowed by s3:prefix to the database's
// folder. S3 then answers a GetObject of a missing key with 403 AccessDenied instead of 404 (the
// caller may not learn what exists); s3rver, which has no IAM, is made to answer exactly that way
// here. "Absent" must still read as absent (first run's state files, a WAL segment not archived
// yet), and a real denial must stay an error.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readAlertState } from '../../../../../functions/core/health/alert-dedupe.ts';
import { readHealthState, writeHealthState } from '../../../../../functions/core/health/state.ts';
import { StorageError, StorageNotFoundError } from '../../../../../functions/core/storage/errors.ts';
import { createS3Client, S3Storage } from '../../../../../functions/core/storage/s3.ts';
import { storeWalFile } from '../../../../../functions/core/wal/archive.ts';
import { TEST_S3_CREDENTIALS } from '../../../../helpers/s3rver.ts';

const BUCKET = 'pgops-narrowed';
/** What the role may list (lib/permissions.ts: StringLike s3:prefix "<storagePrefix>/<db>/*"). */
const LIST_PREFIX = 'pgops/auth/';
/** Keys the role may not read at all (a GetObject right it lacks), to tell a real denial apart. */
const UNREADABLE_PREFIX = 'pgops/auth/unreadable/';

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

interface Answer { method: string; key?: string; list?: string; status: number }
const answers: Answer[] = [];

function deny(ctx: KoaContext): void {
  ctx.status = 403;
  ctx.type = 'application/xml';
  ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>';
}

/** S3's answers to a role with GetObject under pgops/auth/ (but unreadable/) and ListBucket narrowed to pgops/auth/. */
const narrowedRole: KoaMiddleware = async (ctx, next) => {
  const inBucket = ctx.path.startsWith(`/${BUCKET}/`) ? decodeURIComponent(ctx.path.slice(BUCKET.length + 2)) : '';
  if (ctx.method === 'GET' && ctx.query['list-type'] === '2') {
    const prefix = typeof ctx.query.prefix === 'string' ? ctx.query.prefix : '';
    if (prefix.startsWith(LIST_PREFIX)) await next();
    else deny(ctx);
    answers.push({ method: 'ListObjectsV2', list: prefix, status: ctx.status });
    return;
  }
  if (ctx.method === 'GET' && inBucket !== '' && Object.keys(ctx.query).every((k) => k === 'x-id')) {
    if (inBucket.startsWith(UNREADABLE_PREFIX)) {
      deny(ctx);
    } else {
      try {
        await next();
      } catch (err) {
        if ((err as { status?: number }).status !== 404) throw err;
        ctx.status = 404;
      }
      // Without list rights on the request, S3 never says 404.
      if (ctx.status === 404) deny(ctx);
    }
    answers.push({ method: 'GetObject', key: inBucket, status: ctx.status });
    return;
  }
  await next();
};

let server: S3rver | undefined;
let dir = '';
let endpoint = '';
const clients: S3Client[] = [];
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgops-s3-narrowed-'));
  server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: BUCKET, configs: [] }] });
  // s3rver is a Koa app: its middleware list is composed when run() starts listening.
  (server as unknown as { middleware: KoaMiddleware[] }).middleware.unshift(narrowedRole);
  endpoint = `http://127.0.0.1:${(await server.run()).port}`;
});
afterAll(async () => {
  for (const client of clients) client.destroy();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  answers.length = 0;
});

/** The storage the health check and the WAL archive use: s3://bucket/pgops, keys <db>/... */
function storage(): S3Storage {
  const client = createS3Client({ endpoint, credentials: TEST_S3_CREDENTIALS, maxAttempts: 1 });
  clients.push(client);
  return new S3Storage(client, `s3://${BUCKET}/pgops`);
}

describe('S3Storage with ListBucket narrowed to the database prefix', () => {
  it('reads a missing key as absent although S3 answers 403, by listing exactly that key', async () => {
    const s = storage();
    await expect(s.getBytes('auth/state/never-written.json')).resolves.toBeUndefined();
    await expect(s.getStream('auth/state/never-written.json')).rejects.toBeInstanceOf(StorageNotFoundError);
    // S3 really refused: the answer was 403, then a one-key listing under the allowed prefix.
    expect(answers.filter((a) => a.method === 'GetObject').map((a) => a.status)).toEqual([403, 403]);
    expect(answers.filter((a) => a.method === 'ListObjectsV2')).toEqual([
      { method: 'ListObjectsV2', list: 'pgops/auth/state/never-written.json', status: 200 },
      { method: 'ListObjectsV2', list: 'pgops/auth/state/never-written.json', status: 200 },
    ]);
  });

  it('reads an existing key with a single GetObject', async () => {
    const s = storage();
    await s.putBytes('auth/state/present.json', '{"ok":true}');
    answers.length = 0;
    expect((await s.getBytes('auth/state/present.json'))?.toString()).toBe('{"ok":true}');
    expect(answers).toEqual([{ method: 'GetObject', key: 'pgops/auth/state/present.json', status: 200 }]);
  });

  it('is not fooled by a longer key that starts with the missing one', async () => {
    const s = storage();
    await s.putBytes('auth/state/health.json.old', '{}');
    await expect(s.getBytes('auth/state/health.json')).resolves.toBeUndefined();
  });

  it('keeps a real denial (no GetObject right on an existing key) an error, never "absent"', async () => {
    const s = storage();
    await s.putBytes('auth/unreadable/object.json', '{}');
    const got = s.getBytes('auth/unreadable/object.json');
    await expect(got).rejects.toBeInstanceOf(StorageError);
    await expect(got).rejects.not.toBeInstanceOf(StorageNotFoundError);
    await expect(got).rejects.toThrow(/GetObject .*AccessDenied/);
    await expect(s.getStream('auth/unreadable/object.json')).rejects.not.toBeInstanceOf(StorageNotFoundError);
  });

  it('keeps the denial an error when the confirming listing is refused too (another database\'s key)', async () => {
    const s = storage();
    const got = s.getBytes('billing/state/alerts.json');
    await expect(got).rejects.toBeInstanceOf(StorageError);
    await expect(got).rejects.not.toBeInstanceOf(StorageNotFoundError);
    expect(answers.filter((a) => a.method === 'ListObjectsV2').map((a) => a.status)).toEqual([403]);
  });
});

describe('the jobs that read keys which may not exist yet', () => {
  it('health: a first run finds no alert state and no health state, and later reads what it wrote', async () => {
    const s = storage();
    expect(await readAlertState(s, 'auth')).toEqual({ version: 1, checks: {} });
    expect(await readHealthState(s, 'auth')).toEqual({ version: 1, sizes: [] });
    expect(answers.filter((a) => a.method === 'GetObject').map((a) => a.status)).toEqual([403, 403]);
    const state = { version: 1 as const, sizes: [{ at: '2026-11-22T02:00:00.000Z', bytes: 1234 }] };
    await writeHealthState(s, 'auth', state);
    expect(await readHealthState(s, 'auth')).toEqual(state);
  });

  it('wal push: the first push of a segment archives it (its checksum object is absent, not denied)', async () => {
    const s = storage();
    const segment = Buffer.alloc(64 * 1024, 7);
    const first = await storeWalFile(s, 'auth', '000000010000000000000001', segment);
    expect(first.alreadyArchived).toBe(false);
    const again = await storeWalFile(s, 'auth', '000000010000000000000001', segment);
    expect(again.alreadyArchived).toBe(true);
  });
});
