// Backups to a real S3-protocol server (s3rver, behind a fault-injecting proxy) and the backup
// commands end to end through the CLI.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../../functions/core/backup/backup.ts';
import { listBackups } from '../../../../functions/core/catalog/catalog.ts';
import { MemoryAlerter } from '../../../../functions/core/alerts/alerter.ts';
import { createTextLogger } from '../../../../functions/core/logger.ts';
import { S3Storage, createS3Client } from '../../../../functions/core/storage/s3.ts';
import { runCli } from '../../../helpers/cli.ts';
import { s3Op, useFaultProxy } from '../../../helpers/fault-proxy.ts';
import { useTestCluster } from '../../../helpers/postgres.ts';
import { TEST_S3_CREDENTIALS, useS3rver } from '../../../helpers/s3rver.ts';

const cluster = useTestCluster();
const s3 = useS3rver('pgops-backups');
const fault = useFaultProxy(() => s3.endpoint);
const work = mkdtempSync(join(tmpdir(), 'pgops-bk-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let db = '';
beforeAll(async () => {
  db = await cluster.createDatabase('shop');
  await cluster.query(`
    CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL);
    CREATE TABLE invoices (id serial PRIMARY KEY, customer_id int REFERENCES customers(id), amount numeric, memo text);
    INSERT INTO customers (email) SELECT 'c' || g || '@example.com' FROM generate_series(1, 3000) g;
    INSERT INTO invoices (customer_id, amount, memo) SELECT 1 + g % 3000, g * 1.5, md5(g::text) FROM generate_series(1, 6000) g;
  `, [], db);
});

function s3Storage(prefix: string): S3Storage {
  const client = createS3Client({ endpoint: fault.endpoint, region: 'us-east-1', credentials: TEST_S3_CREDENTIALS });
  return new S3Storage(client, `s3://${s3.bucket}/${prefix}`);
}

function jobDeps(storage: S3Storage, logs: string[], alerter: MemoryAlerter) {
  return {
    target: cluster.target(db), storage, alerter, databaseId: db, environment: 'test', binDir: cluster.pg.binDir,
    logger: createTextLogger({ level: 'debug', write: (l: string) => { logs.push(l); } }),
  };
}

async function objectBytes(key: string): Promise<Buffer> {
  const res = await s3.client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

async function keysUnder(prefix: string): Promise<string[]> {
  const res = await s3.client().send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

describe('backup to S3', () => {
  it('stores a dump whose SHA-256 and size equal the manifest, readable by pg_restore --list', async () => {
    const logs: string[] = [];
    const alerter = new MemoryAlerter();
    const m = await runBackup(jobDeps(s3Storage('nightly'), logs, alerter), {});
    const body = await objectBytes(`nightly/${m.key}`);
    expect(body.length).toBe(m.bytes);
    expect(createHash('sha256').update(body).digest('hex')).toBe(m.sha256);
    expect(await keysUnder(`nightly/${db}/logical/${m.id}/`)).toEqual([`nightly/${db}/logical/${m.id}/dump`, `nightly/${db}/logical/${m.id}/manifest.json`]);
    const file = join(work, 'from-s3.dump');
    writeFileSync(file, body);
    const toc = execFileSync(cluster.pg.bin('pg_restore'), ['--list', file], { encoding: 'utf8' });
    expect(toc).toMatch(/TABLE DATA public invoices/);
    expect(m.tables).toEqual(expect.arrayContaining([{ schema: 'public', name: 'invoices', rows: 6000 }]));
    expect(alerter.sent).toEqual([]);
  });

  it('retries an S3 500 during the upload and still produces a good backup', async () => {
    const alerter = new MemoryAlerter();
    const uploads = (r: Parameters<typeof s3Op.putObject>[0]) => (s3Op.putObject(r) || s3Op.uploadPart(r)) && r.path.includes('/dump');
    fault.proxy.failNext(uploads, 2, 'internal-error');
    const m = await runBackup(jobDeps(s3Storage('retry'), [], alerter), {});
    const body = await objectBytes(`retry/${m.key}`);
    expect(createHash('sha256').update(body).digest('hex')).toBe(m.sha256);
    expect(fault.proxy.requests(uploads).length).toBeGreaterThanOrEqual(3);
    expect(alerter.sent).toEqual([]);
  });

  it('a persistent S3 failure fails the backup: no manifest, no dump, nothing listed, an alert naming S3', async () => {
    const alerter = new MemoryAlerter();
    const storage = s3Storage('broken');
    fault.proxy.failAll((r) => (s3Op.putObject(r) || s3Op.uploadPart(r)) && r.path.includes('/dump'), 'internal-error');
    try {
      await expect(runBackup(jobDeps(storage, [], alerter), {})).rejects.toThrow(/InternalError|500/);
    } finally {
      fault.proxy.clear();
    }
    expect(await keysUnder('broken/')).toEqual([]);
    expect(await listBackups(storage, db)).toEqual([]);
    expect(alerter.sent).toHaveLength(1);
    expect(alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'backup' });
    expect(alerter.sent[0]!.summary).toMatch(/500|InternalError/);
  });
});

describe('backup commands through the CLI', () => {
  const store = join(work, 'store');
  const env = () => ({ DATABASE_URL: cluster.url(db), PGOPS_STORAGE: `file://${store}` });
  const allOutput: string[] = [];
  afterAll(() => {
    // No password in anything any command printed.
    expect(allOutput.join('\n')).not.toContain(cluster.pg.password);
  });
  const cli = async (args: string[], extra: Record<string, string> = {}) => {
    const r = await runCli(args, { ...env(), ...extra });
    allOutput.push(r.stdout, r.stderr);
    return r;
  };

  it('backup --json prints the manifest, backups list shows it, verify passes', async () => {
    const b = await cli(['backup', '--json']);
    expect(b.code, b.stderr).toBe(0);
    const manifest = JSON.parse(b.stdout);
    expect(manifest).toMatchObject({ database: db, kind: 'full', format: 'custom', key: `${db}/logical/${manifest.id}/dump` });
    for (const field of ['id', 'startedAt', 'completedAt', 'durationMs', 'bytes', 'sha256', 'serverVersion', 'pgDumpVersion', 'options', 'migration']) {
      expect(manifest).toHaveProperty(field);
    }
    // Not a terminal: no progress redraws on stderr.
    expect(b.stderr).not.toContain('\r');
    const stored = readFileSync(join(store, manifest.key));
    expect(createHash('sha256').update(stored).digest('hex')).toBe(manifest.sha256);

    const list = await cli(['backups', 'list', '--json']);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).map((m: { id: string }) => m.id)).toEqual([manifest.id]);

    const v = await cli(['backups', 'verify', 'latest']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(new RegExp(`backup ${manifest.id}: ok`));
  });

  it('restore latest --target-db new --create: the documented JSON and equal row counts', async () => {
    const r = await cli(['restore', 'latest', '--target-db', 'shop_copy', '--create', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ targetDb: 'shop_copy', tables: expect.any(Number), durationMs: expect.any(Number), backupId: expect.stringMatching(/^\d{8}T\d{6}Z-[0-9a-f]{4}$/) });
    for (const t of ['customers', 'invoices']) {
      const a = await cluster.query(`SELECT count(*)::int AS n FROM ${t}`, [], db);
      const b = await cluster.query(`SELECT count(*)::int AS n FROM ${t}`, [], 'shop_copy');
      expect(b.rows[0]?.n).toBe(a.rows[0]?.n);
    }
    const again = await cli(['restore', 'latest', '--target-db', 'shop_copy', '--create']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/shop_copy/);
  });

  it('restore --table: public.invoices and bare customers come back with their keys; a missing name exits 2 and creates nothing', async () => {
    const dry = await cli(['restore', 'latest', '--target-db', 'cli_tables', '--create', '--table', 'public.invoices', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/would restore 1 table\(s\) into cli_tables/);
    expect(dry.stdout).toMatch(/restore CONSTRAINT public invoices invoices_pkey/);
    expect(dry.stdout).toMatch(/skip FK CONSTRAINT public invoices invoices_customer_id_fkey: needs .*TABLE public customers/);
    const r = await cli(['restore', 'latest', '--target-db', 'cli_tables', '--create', '--table', 'public.invoices', '--table', 'customers', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ targetDb: 'cli_tables', tables: 2 });
    const keys = await cluster.query<{ c: string }>(`SELECT conname AS c FROM pg_constraint WHERE conrelid = 'invoices'::regclass ORDER BY 1`, [], 'cli_tables');
    expect(keys.rows.map((k) => k.c)).toEqual(['invoices_customer_id_fkey', 'invoices_pkey']);
    const missing = await cli(['restore', 'latest', '--target-db', 'cli_missing', '--create', '--table', 'invoice', '--json']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--table invoice: no such table in backup \S+ \(close matches: public\.invoices\)/);
    expect(JSON.parse(missing.stdout)).toMatchObject({ error: { exitCode: 2 } });
    expect((await cluster.query("SELECT 1 FROM pg_database WHERE datname = 'cli_missing'")).rowCount).toBe(0);
  });

  it('a flipped byte: verify exits 1 naming the checksum, restore refuses and leaves no database behind', async () => {
    const list = JSON.parse((await cli(['backups', 'list', '--json'])).stdout) as Array<{ key: string }>;
    const path = join(store, list[0]!.key);
    const data = readFileSync(path);
    const at = Math.floor(data.length / 2);
    data[at] = data[at]! ^ 0xff;
    writeFileSync(path, data);
    const v = await cli(['backups', 'verify', 'latest', '--json']);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/sha256|SHA-256|checksum/i);
    const r = await cli(['restore', 'latest', '--target-db', 'never_created', '--create']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ALERT CRITICAL restore|sha256|SHA-256/i);
    const exists = await cluster.query("SELECT 1 FROM pg_database WHERE datname = 'never_created'");
    expect(exists.rowCount).toBe(0);
  });

  it('backup to S3 through the CLI with PGOPS_S3_ENDPOINT', async () => {
    const r = await cli(['backup', '--json', '--storage', `s3://${s3.bucket}/cli`], {
      PGOPS_S3_ENDPOINT: s3.endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1',
    });
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout);
    const body = await objectBytes(`cli/${m.key}`);
    expect(createHash('sha256').update(body).digest('hex')).toBe(m.sha256);
  });

  it('no storage configured is a usage error (exit 2)', async () => {
    const r = await runCli(['backup'], { DATABASE_URL: cluster.url(db) });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--storage \/ PGOPS_STORAGE/);
  });

  it('leaves no temporary files behind in the storage directory', () => {
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [e.name]));
    expect(walk(store).filter((n) => n.includes('tmp'))).toEqual([]);
  });
});
