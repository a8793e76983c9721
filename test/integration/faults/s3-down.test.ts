// Fault: S3 is down (connection refused). pgops promises: the backup fails cleanly after its
// retries (exit 1, one critical alert naming the storage), pg_dump is stopped, and once S3 is back
// nothing new is listed, the earlier good backup is still there and verifies, and no upload is left.
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../bin/demo/embedded-postgres.ts';
import { runBackup } from '../../../functions/core/backup/backup.ts';
import { verifyBackup } from '../../../functions/core/backup/verify.ts';
import { exitCodeOf, PgopsError } from '../../../functions/core/errors.ts';
import { createS3Client, openStorage } from '../../../functions/core/storage/index.ts';
import type { Storage } from '../../../functions/core/storage/types.ts';
import { runCli } from '../../helpers/cli.ts';
import { alertLines, backupJobDeps, cliEnv, fillTable, listedIds, processesNamed, waitForNoSession } from '../../helpers/faults.ts';
import { captured } from '../../helpers/output-scan.ts';
import { useTestCluster } from '../../helpers/postgres.ts';
import { TEST_S3_CREDENTIALS, useS3rver } from '../../helpers/s3rver.ts';

const cluster = useTestCluster();
const s3 = useS3rver();
const out = captured(() => [cluster.pg.password]);
let db = '';
let up: Storage;
let down: Storage;
let downEndpoint = '';
let goodId = '';
const url = () => `s3://${s3.bucket}/down`;

beforeAll(async () => {
  db = await cluster.createDatabase('s3_down');
  await fillTable(cluster, db, 'big', 50_000);
  s3.emulateAbortMultipartUpload = true;
  up = openStorage(url(), { s3Client: createS3Client({ endpoint: s3.endpoint, credentials: TEST_S3_CREDENTIALS }) });
  // Nothing listens there: every request is refused.
  downEndpoint = `http://127.0.0.1:${await freePort()}`;
  down = openStorage(url(), { s3Client: createS3Client({ endpoint: downEndpoint, credentials: TEST_S3_CREDENTIALS }) });
  goodId = (await runBackup(backupJobDeps(cluster, up, db, out).deps)).id;
});

describe('S3 down', () => {
  it('a backup fails cleanly with one alert naming S3; nothing new listed once it is back; the good backup verifies', async () => {
    const { deps, alerter } = backupJobDeps(cluster, down, db, out);
    const err = await runBackup(deps).then(() => undefined, (e: unknown) => out.error(e));
    expect(err).toBeInstanceOf(PgopsError);
    expect(exitCodeOf(err)).toBe(1);
    expect((err as Error).message).toMatch(/s3:\/\//);
    expect((err as Error).message).toMatch(/ECONNREFUSED|connect|refused/i);
    expect(alerter.sent).toHaveLength(1);
    expect(alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'backup', database: db });
    expect(alerter.sent[0]!.summary).toMatch(/s3:\/\//);

    await waitForNoSession(cluster, `application_name LIKE 'pgops-backup%'`);
    expect(processesNamed('pg_dump', `PGPORT=${cluster.pg.port}`)).toEqual([]);
    expect(await listedIds(up, db)).toEqual([goodId]);
    expect(s3.uploadsInProgress()).toEqual([]);
    const verify = backupJobDeps(cluster, up, db, out);
    expect(await verifyBackup(verify.deps, goodId)).toMatchObject({ ok: true });
  });

  it('the CLI exits 1 with one ALERT line naming S3', async () => {
    const r = out.cli(await runCli(['backup'], cliEnv(cluster, db, url(), { PGOPS_S3_ENDPOINT: downEndpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' }), { timeoutMs: 150_000 }));
    expect(r.code).toBe(1);
    expect(alertLines(r.stderr)).toHaveLength(1);
    expect(alertLines(r.stderr)[0]).toMatch(/^pgops: ALERT CRITICAL backup faults\/s3_down: .*s3:\/\//);
    const list = out.cli(await runCli(['backups', 'list', '--json'], cliEnv(cluster, db, url(), { PGOPS_S3_ENDPOINT: s3.endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' })));
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as Array<{ id: string }>).map((m) => m.id)).toEqual([goodId]);
  });
});
