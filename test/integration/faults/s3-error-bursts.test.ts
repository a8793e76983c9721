// Fault: S3 answers bursts of 500 InternalError and 503 SlowDown. pgops promises: the SDK client
// retries them, the backup succeeds once (one manifest, listed, verifies) and nobody is paged.
import { beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../functions/core/backup/backup.ts';
import { verifyBackup } from '../../../functions/core/backup/verify.ts';
import { createS3Client, openStorage } from '../../../functions/core/storage/index.ts';
import type { Storage } from '../../../functions/core/storage/types.ts';
import { backupJobDeps, fillTable, listedIds } from '../../helpers/faults.ts';
import { useFaultProxy, type ProxiedRequest } from '../../helpers/fault-proxy.ts';
import { captured } from '../../helpers/output-scan.ts';
import { useTestCluster } from '../../helpers/postgres.ts';
import { TEST_S3_CREDENTIALS, useS3rver } from '../../helpers/s3rver.ts';

const cluster = useTestCluster();
const s3 = useS3rver();
const faults = useFaultProxy(() => s3.endpoint);
const out = captured(() => [cluster.pg.password]);
let db = '';
let storage: Storage;

beforeAll(async () => {
  db = await cluster.createDatabase('s3_bursts');
  await fillTable(cluster, db, 'big', 150_000);
  s3.emulateAbortMultipartUpload = true;
  // pgops' own S3 client (createS3Client: retries, timeouts), through the fault proxy; 5 MiB parts so the dump is multipart.
  storage = openStorage(`s3://${s3.bucket}/bursts`, { s3Client: createS3Client({ endpoint: faults.endpoint, credentials: TEST_S3_CREDENTIALS }), s3: { partSize: 5 * 1024 * 1024 } });
});

const write = (r: ProxiedRequest) => r.method === 'PUT' || r.method === 'POST';

describe('S3 500/503 bursts', () => {
  it('retries through a burst on every kind of request: one backup, listed, verified, no alert', async () => {
    const { proxy } = faults;
    proxy.clear();
    // Two in a row on the dump's first write, on a part, on the manifest, and on a listing.
    proxy.failNext((r) => write(r) && r.path.endsWith('/dump'), 2, 'internal-error');
    proxy.failNext((r) => r.method === 'PUT' && r.query.has('partNumber'), 2, 'slow-down');
    proxy.failNext((r) => r.method === 'PUT' && r.path.endsWith('/manifest.json'), 2, 'slow-down');
    const { deps, alerter } = backupJobDeps(cluster, storage, db, out);
    const manifest = await runBackup(deps);
    const injected = proxy.log.filter((e) => e.fault !== undefined);
    expect(injected.filter((e) => e.path.endsWith('/manifest.json'))).toHaveLength(2);
    expect(injected.length).toBeGreaterThanOrEqual(4);

    proxy.failNext((r) => r.method === 'GET' && r.query.get('list-type') === '2', 2, 'internal-error');
    expect(await listedIds(storage, db)).toEqual([manifest.id]);
    const verify = backupJobDeps(cluster, storage, db, out);
    expect(await verifyBackup(verify.deps, manifest.id)).toMatchObject({ ok: true, sha256Ok: true });
    expect(alerter.sent).toEqual([]);
    expect(verify.alerter.sent).toEqual([]);
    expect(s3.uploadsInProgress()).toEqual([]);
  });
});
