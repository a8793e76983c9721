// Fault: S3 accepts connections but answers writes slower than the client's timeout. pgops
// promises: the backup fails with a timeout naming S3 (one critical alert), writes no manifest,
// and leaves no upload behind. pgops' own client (createS3Client) has a fixed 300 s socket
// timeout that no setting changes, so this test gives S3Storage a client with a 2 s one.
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../functions/core/backup/backup.ts';
import { runCleanup } from '../../../functions/core/cleanup/job.ts';
import { exitCodeOf, PgopsError } from '../../../functions/core/errors.ts';
import { createS3Client, openStorage, S3Storage } from '../../../functions/core/storage/index.ts';
import type { Storage } from '../../../functions/core/storage/types.ts';
import { aDayLater, backupJobDeps, cleanupJobDeps, fillTable, listedIds, SlowProxy, waitForNoSession } from '../../helpers/faults.ts';
import { captured } from '../../helpers/output-scan.ts';
import { useTestCluster } from '../../helpers/postgres.ts';
import { TEST_S3_CREDENTIALS, useS3rver } from '../../helpers/s3rver.ts';

const cluster = useTestCluster();
const s3 = useS3rver();
const out = captured(() => [cluster.pg.password]);
let db = '';
let proxy: SlowProxy | undefined;
let slow: Storage;
let direct: Storage;
const url = () => `s3://${s3.bucket}/slow`;
const TIMEOUT_MS = 2_000;

beforeAll(async () => {
  db = await cluster.createDatabase('s3_slow');
  await fillTable(cluster, db, 'big', 20_000);
  s3.emulateAbortMultipartUpload = true;
  proxy = await SlowProxy.start(s3.endpoint);
  const client = new S3Client({
    endpoint: proxy.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_S3_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 2, requestHandler: { connectionTimeout: TIMEOUT_MS, socketTimeout: TIMEOUT_MS },
  });
  slow = new S3Storage(client, url());
  direct = openStorage(url(), { s3Client: createS3Client({ endpoint: s3.endpoint, credentials: TEST_S3_CREDENTIALS }) });
});
afterAll(async () => { await proxy?.close(); });

describe('S3 slow past the timeout', () => {
  it('a backup fails with a timeout naming S3, one alert, no manifest, no upload left', async () => {
    // Every write waits 4 timeouts before it is forwarded.
    proxy!.delayMs = TIMEOUT_MS * 4;
    proxy!.match = (req) => req.method === 'PUT' || req.method === 'POST';
    const { deps, alerter } = backupJobDeps(cluster, slow, db, out);
    const started = Date.now();
    const err = await runBackup(deps).then(() => undefined, (e: unknown) => out.error(e));
    console.log(`s3-slow: the backup failed after ${Date.now() - started} ms`);
    expect(err).toBeInstanceOf(PgopsError);
    expect(exitCodeOf(err)).toBe(1);
    expect((err as Error).message).toMatch(/s3:\/\//);
    expect((err as Error).message).toMatch(/time ?out|timed out/i);
    expect(alerter.sent).toHaveLength(1);
    expect(alerter.sent[0]!.summary).toMatch(/s3:\/\//);
    await waitForNoSession(cluster, `application_name LIKE 'pgops-backup%'`);
    // Let the delayed requests drain, then look at the store directly.
    await new Promise((r) => setTimeout(r, TIMEOUT_MS * 5));
    expect(await listedIds(direct, db)).toEqual([]);
    expect(s3.uploadsInProgress()).toEqual([]);
    // A write the client gave up on may still land late (S3 finishes what it received): a dump
    // without a manifest, which cleanup removes once it is a day old.
    const late = (await direct.list(`${db}/`)).map((o) => o.key);
    if (late.length > 0) console.log(`s3-slow: a late write landed after the client's timeout: ${late.join(', ')}`);
    const cleanup = cleanupJobDeps(cluster, direct, db, out, { clock: aDayLater });
    await runCleanup(cleanup.deps);
    expect((await direct.list(`${db}/`)).map((o) => o.key)).toEqual([]);
    expect(cleanup.alerter.sent).toEqual([]);
  });
});
