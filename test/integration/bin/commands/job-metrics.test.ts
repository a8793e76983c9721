// The task's job metrics through the real CLI (PGOPS_METRICS=cloudwatch, as the task definition sets
// it): a backup and a restore test call PutMetricData with their success metrics, namespace pgops,
// dimension database. CloudWatch has no local server: a local HTTP endpoint stands in for it and
// records what the SDK sends. A metric that cannot be published never fails the job.
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshStorage } from '../../../helpers/backup-fixtures.ts';
import { cliEnv, fillTable, startCli } from '../../../helpers/faults.ts';
import { captured } from '../../../helpers/output-scan.ts';
import { useTestCluster } from '../../../helpers/postgres.ts';

const cluster = useTestCluster();
const out = captured(() => [cluster.pg.password]);
const { storage, dir } = freshStorage();
let db = '';
let server: Server;
let endpoint = '';
const bodies: string[] = [];
let status = 200;

beforeAll(async () => {
  db = await cluster.createDatabase('metrics');
  await fillTable(cluster, db, 'items', 1000);
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      // The protocol (query or CBOR) carries the names as plain bytes: enough to see what was sent.
      bodies.push(Buffer.concat(chunks).toString('latin1'));
      res.writeHead(status, { 'content-type': 'text/xml' });
      res.end(status === 200 ? '<PutMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></PutMetricDataResponse>' : 'denied');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

const env = (extra: Record<string, string> = {}) => cliEnv(cluster, db, storage.url, {
  PGOPS_DATABASE_ID: 'billing',
  PGOPS_METRICS: 'cloudwatch',
  AWS_ENDPOINT_URL_CLOUDWATCH: endpoint,
  AWS_REGION: 'eu-west-1',
  AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'example-secret-key',
  ...extra,
});

describe('job metrics from the CLI in the task', () => {
  it('a backup publishes BackupSucceeded, its duration and size, for its database, in namespace pgops', async () => {
    bodies.length = 0;
    const r = out.cli(await startCli(['backup'], env()).done);
    expect(r.code, r.stderr).toBe(0);
    expect(bodies).toHaveLength(1);
    for (const s of ['pgops', 'BackupSucceeded', 'BackupDurationSeconds', 'BackupBytes', 'database', 'billing']) expect(bodies[0], s).toContain(s);
  });

  it('a restore test publishes RestoreTestSucceeded and its duration; a plain verify publishes nothing', async () => {
    bodies.length = 0;
    const r = out.cli(await startCli(['backups', 'verify', 'latest', '--restore-test'], env()).done);
    expect(r.code, r.stderr).toBe(0);
    expect(bodies).toHaveLength(1);
    expect(bodies[0]).toContain('RestoreTestSucceeded');
    expect(bodies[0]).toContain('RestoreTestDurationSeconds');
    bodies.length = 0;
    const plain = out.cli(await startCli(['backups', 'verify', 'latest'], env()).done);
    expect(plain.code, plain.stderr).toBe(0);
    expect(bodies).toEqual([]);
  });

  it('publishes nothing without PGOPS_METRICS', async () => {
    bodies.length = 0;
    const r = out.cli(await startCli(['backup'], env({ PGOPS_METRICS: 'off' })).done);
    expect(r.code, r.stderr).toBe(0);
    expect(bodies).toEqual([]);
  });

  it('a failed restore test publishes RestoreTestFailed, not its success', async () => {
    const backup = out.cli(await startCli(['backup', '--json'], env()).done);
    expect(backup.code, backup.stderr).toBe(0);
    const { key } = JSON.parse(backup.stdout) as { key: string };
    // The dump no longer matches its manifest: the restore test fails before restoring anything.
    const dump = join(dir, ...key.split('/').slice(-4));
    writeFileSync(dump, 'not a dump');
    bodies.length = 0;
    const r = out.cli(await startCli(['backups', 'verify', 'latest', '--restore-test'], env()).done);
    expect(r.code).toBe(1);
    expect(bodies).toHaveLength(1);
    expect(bodies[0]).toContain('RestoreTestFailed');
    expect(bodies[0]).not.toContain('RestoreTestSucceeded');
  });

  it('a metric CloudWatch refuses never fails the job: the backup exits 0 and the error is logged', async () => {
    status = 403;
    try {
      const r = out.cli(await startCli(['backup'], env()).done);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('could not publish the job\'s metrics');
    } finally {
      status = 200;
    }
  });
});
