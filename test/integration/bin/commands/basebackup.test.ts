// `pgops basebackup` and `pgops basebackups list` through the real CLI, on clusters whose
// archive_command is the bundled CLI's `wal push`: to local storage and to S3 (s3rver). Exit codes,
// the JSON document, the help, and failures with nothing left and no password printed.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PhysicalManifest } from '../../../../functions/core/catalog/physical.ts';
import { isSegmentArchived } from '../../../../functions/core/physical/wal-wait.ts';
import { FileStorage } from '../../../../functions/core/storage/file.ts';
import { archivingConf, bundledCli, sharedStorageDir } from '../../../helpers/archiving.ts';
import { runCli, waitFor } from '../../../helpers/cli.ts';
import { captured } from '../../../helpers/output-scan.ts';
import { useTestCluster, type TestCluster } from '../../../helpers/postgres.ts';
import { TEST_S3_CREDENTIALS, useS3rver } from '../../../helpers/s3rver.ts';

const DB_ID = 'orders';
const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The server's first push creates the database's folder as postgres, before the CLI (root here) writes below it. */
async function archiveOneSegment(cluster: TestCluster, storage: FileStorage): Promise<void> {
  const name = (await cluster.query<{ name: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS name')).rows[0]!.name;
  await waitFor(`${name} to be archived`, () => isSegmentArchived(storage, DB_ID, name), 60_000);
}

describe('pgops basebackup to local storage', () => {
  const store = sharedStorageDir();
  const storage = new FileStorage(pathToFileURL(store).href);
  const cluster = useTestCluster({ conf: archivingConf(store, DB_ID) });
  const out = captured(() => [cluster.pg.password]);
  const env = (): Record<string, string> => ({ DATABASE_URL: cluster.url(), PGOPS_STORAGE: pathToFileURL(store).href, PGOPS_DATABASE_ID: DB_ID });

  beforeAll(async () => {
    await cluster.query('CREATE TABLE items AS SELECT g AS id FROM generate_series(1, 10000) g');
    await archiveOneSegment(cluster, storage);
  });

  it('--json prints the manifest of a stored base backup; basebackups list shows it; backups list is unchanged', async () => {
    const r = out.cli(await runCli(['basebackup', '--json'], env(), { timeoutMs: 170_000 }));
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout) as PhysicalManifest;
    expect(m).toMatchObject({ kind: 'physical', database: DB_ID, compression: 'gzip', walMethod: 'none', format: 'tar', formatVersion: 1 });
    const stored = readFileSync(join(store, ...m.key.split('/')));
    expect(m.bytes).toBe(stored.length);
    expect(m.sha256).toBe(createHash('sha256').update(stored).digest('hex'));
    expect(m.sourceHost).toBe(`postgres://postgres:***@127.0.0.1:${cluster.pg.port}/postgres`);

    const list = out.cli(await runCli(['basebackups', 'list', '--json'], env()));
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([m]);
    const logical = out.cli(await runCli(['backups', 'list', '--json'], env()));
    expect(logical.code).toBe(0);
    expect(JSON.parse(logical.stdout)).toEqual([]);
  });

  it('prints what it stored, as text, compressed as the config file says', async () => {
    const config = join(store, 'pgops.json');
    writeFileSync(config, JSON.stringify({ physical: { compression: 'none', archiveWaitSeconds: 60 } }));
    const r = out.cli(await runCli(['basebackup', '--config', config], env(), { timeoutMs: 170_000 }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^base backup \d{8}T\d{6}Z-[0-9a-f]{4}: [\d.]+ MiB \(tar [\d.]+ MiB, none\) in [\d.]+ s, sha256 [0-9a-f]{64}\n {2}WAL \d+\/[0-9A-F]+ \.\. \d+\/[0-9A-F]+ on timeline 1 \([0-9A-F]{24} \.\. [0-9A-F]{24}\): archived\n/);
    expect(r.stdout).toMatch(/\n {2}orders\/physical\/\d{8}T\d{6}Z-[0-9a-f]{4}\/base\.tar\n$/);
    const list = out.cli(await runCli(['basebackups', 'list'], env()));
    expect(list.stdout.split('\n').filter((l) => /^\d{8}T/.test(l))).toHaveLength(2);
  });

  it('fails on a wrong password: exit 1, a clear message, no password anywhere', async () => {
    const wrong = cluster.url().replace(cluster.pg.password, 'wrong-password-123');
    out.secret('wrong-password-123');
    const r = out.cli(await runCli(['basebackup', '--json'], { ...env(), DATABASE_URL: wrong }));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/password authentication failed for user "postgres"/);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { exitCode: 1 } });
  });

  it('--help teaches what it needs, the layout and the failure rules', async () => {
    const r = out.cli(await runCli(['basebackup', '--help'], {}));
    expect(r.code).toBe(0);
    for (const needle of ['REPLICATION', 'pg_hba.conf', 'replication', 'wal push %p', 'wal receive', '-X none', 'physical/<backupId>/base.tar', 'archiveWaitSeconds', 'Examples:']) {
      expect(r.stdout).toContain(needle);
    }
  });

  it('refuses an unknown compression as bad usage (exit 2)', async () => {
    const r = out.cli(await runCli(['basebackup', '--compression', 'brotli'], env()));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/brotli/);
  });
});

describe('pgops basebackup without a running archive', () => {
  const store = sharedStorageDir();
  const cluster = useTestCluster();
  const out = captured(() => [cluster.pg.password]);

  it('exits 1 after the archive wait, naming the WAL it needs, and leaves nothing behind', async () => {
    const r = out.cli(await runCli(['basebackup', '--archive-wait', '2', '--json'], { DATABASE_URL: cluster.url(), PGOPS_STORAGE: pathToFileURL(store).href, PGOPS_DATABASE_ID: DB_ID }));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the WAL this backup needs \([0-9A-F]{24}\.\.[0-9A-F]{24}\) did not reach the archive within 2 s: is archive_command or wal receive running\?/);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { type: 'BaseBackupWalError', exitCode: 1 } });
    expect(await new FileStorage(pathToFileURL(store).href).list(`${DB_ID}/`)).toEqual([]);
  });
});

describe('pgops basebackup to S3 (s3rver)', () => {
  const s3 = useS3rver('pgops-physical');
  const conf: Record<string, string> = {};
  const s3Env = (): Record<string, string> => ({
    PGOPS_S3_ENDPOINT: s3.endpoint, AWS_ACCESS_KEY_ID: TEST_S3_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_S3_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1', NODE_OPTIONS: '--openssl-legacy-provider', PGOPS_STORAGE: `s3://${s3.bucket}/pitr`, PGOPS_DATABASE_ID: DB_ID,
  });
  // The server archives to the same bucket: filled in once s3rver has its port, before the cluster starts.
  beforeAll(() => {
    const vars = Object.entries(s3Env()).map(([k, v]) => `${k}=${shellQuote(v)}`).join(' ');
    Object.assign(conf, archivingConf('/nonexistent', DB_ID), { archive_command: `${vars} ${shellQuote(process.execPath)} ${shellQuote(bundledCli())} --quiet wal push %p` });
  });
  const cluster = useTestCluster({ conf });
  const out = captured(() => [cluster.pg.password]);

  it('streams the base backup to S3: the stored object matches the manifest, and its WAL is archived there', async () => {
    const r = out.cli(await runCli(['basebackup', '--json'], { ...s3Env(), DATABASE_URL: cluster.url() }, { timeoutMs: 170_000 }));
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout) as PhysicalManifest;
    const object = await s3.client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: `pitr/${m.key}` }));
    const body = Buffer.from(await object.Body!.transformToByteArray());
    expect(body.length).toBe(m.bytes);
    expect(createHash('sha256').update(body).digest('hex')).toBe(m.sha256);
    const wal = await s3.client().send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `pitr/${DB_ID}/wal/00000001/${m.stopSegment}` }));
    expect((wal.Contents ?? []).map((o) => o.Key)).toEqual(expect.arrayContaining([`pitr/${DB_ID}/wal/00000001/${m.stopSegment}.gz`, `pitr/${DB_ID}/wal/00000001/${m.stopSegment}.gz.sha256`]));
    expect(s3.uploadsInProgress()).toEqual([]);
  });
});
