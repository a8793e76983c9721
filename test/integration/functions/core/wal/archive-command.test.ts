// The real archive_command: the server runs the bundled `pgops wal push %p` as the postgres user
// under pgbench load. No failed archive, every segment stored exactly once (one data object, one
// checksum), each identical to the server's own file. Then storage that refuses writes, and storage
// that takes the data but fails the checksum: the archiver counts failures, nothing reads as
// archived that was not acknowledged, and a later retry stores the segment whole.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSegmentFileName } from '../../../../../functions/core/wal/lsn.ts';
import { archivingConf, bundledCli, cliCommandLine, sharedStorageDir } from '../../../../helpers/archiving.ts';
import { runCli, waitFor } from '../../../../helpers/cli.ts';
import { s3Op, useFaultProxy } from '../../../../helpers/fault-proxy.ts';
import { captured } from '../../../../helpers/output-scan.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';
import { useS3rver } from '../../../../helpers/s3rver.ts';

const run = promisify(execFile);
const store = sharedStorageDir();
const ID = 'loaded';
// No checkpoint while the test runs: every archived segment is still in pg_wal to compare with.
const cluster = useTestCluster({ conf: archivingConf(store, ID), settings: { checkpoint_timeout: '1h', max_wal_size: '4GB' } });
const s3 = useS3rver('pgops-archive-command');
const fault = useFaultProxy(() => s3.endpoint);
const scan = captured(() => [cluster.pg.password]);
const work = mkdtempSync(join(tmpdir(), 'pgops-archive-command-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const serverFile = (name: string) => readFileSync(join(cluster.pg.dataDir, 'pg_wal', name));
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface Archiver { last_archived_wal: string | null; failed_count: string; last_failed_wal: string | null }
const archiver = async () => (await cluster.query<Archiver>('SELECT last_archived_wal, failed_count::text, last_failed_wal FROM pg_stat_archiver')).rows[0]!;

async function pgbench(args: string[]): Promise<void> {
  const env = { ...process.env, PGPASSWORD: cluster.pg.password };
  const r = await run(cluster.pg.bin('pgbench'), ['-h', '127.0.0.1', '-p', String(cluster.pg.port), '-U', 'postgres', ...args, 'postgres'], { env, maxBuffer: 16 << 20 });
  scan.add('pgbench', `${r.stdout}${r.stderr}`);
}

/** Some WAL, then a switch; the name of the segment that was closed. */
async function switchSegment(): Promise<string> {
  await cluster.query('CREATE TABLE IF NOT EXISTS switches (at timestamptz DEFAULT now(), payload text)');
  await cluster.query(`INSERT INTO switches (payload) SELECT md5(g::text) FROM generate_series(1, 200) g`);
  const name = (await cluster.query<{ name: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS name')).rows[0]!.name;
  await cluster.query('SELECT pg_switch_wal()');
  return name;
}

async function setArchiveCommand(command: string | null): Promise<void> {
  await cluster.query(command === null ? 'ALTER SYSTEM RESET archive_command' : `ALTER SYSTEM SET archive_command = '${command.replace(/'/g, "''")}'`);
  await cluster.query('SELECT pg_reload_conf()');
  // The archiver adopts it on its next loop; give the postmaster the moment it takes to pass SIGHUP on.
  await new Promise((r) => setTimeout(r, 2000));
}

describe('archive_command = pgops wal push, run by the server', () => {
  it('under pgbench load: no failure, every segment stored exactly once, each identical to the server\'s file', { timeout: 420_000 }, async () => {
    await pgbench(['-i', '-s', '4', '-q']);
    await pgbench(['-T', '5', '-c', '4', '-j', '2']);
    let last = '';
    for (let i = 0; i < 3; i++) last = await switchSegment();
    await waitFor(`the archiver to reach ${last}`, async () => ((await archiver()).last_archived_wal ?? '') >= last, 300_000);

    expect((await archiver()).failed_count).toBe('0');
    const files = readdirSync(join(store, ID, 'wal', '00000001')).sort();
    const segments = files.filter((f) => f.endsWith('.gz')).map((f) => f.slice(0, -3));
    // Exactly one data object and one checksum per segment, nothing else (no temporary file, no second copy).
    expect(files).toEqual(segments.flatMap((s) => [`${s}.gz`, `${s}.gz.sha256`]));
    expect(segments[0]).toBe('000000010000000000000001');
    expect(segments).toContain(last);
    const numbers = segments.map((s) => parseSegmentFileName(s)!.segno);
    numbers.forEach((n, i) => expect(n, segments[i]).toBe(BigInt(i + 1)));
    for (const s of segments) {
      const content = gunzipSync(readFileSync(join(store, ID, 'wal', '00000001', `${s}.gz`)));
      const sum = readFileSync(join(store, ID, 'wal', '00000001', `${s}.gz.sha256`), 'utf8');
      expect(sha256(content), s).toBe(sha256(serverFile(s)));
      expect(sum).toBe(`${sha256(content)}  ${s}\n`);
    }
  });

  it('storage the server cannot write: the archiver counts failures, nothing is stored, fetch says not found', async () => {
    const unwritable = mkdtempSync(join(work, 'readonly-'));
    chmodSync(unwritable, 0o755);
    const before = Number((await archiver()).failed_count);
    await setArchiveCommand(cliCommandLine(unwritable, ID, '--quiet wal push %p'));
    const segment = await switchSegment();
    await waitFor('a failed archive', async () => Number((await archiver()).failed_count) > before, 120_000);
    expect((await archiver()).last_failed_wal).toBe(segment);
    expect(readdirSync(unwritable)).toEqual([]);
    const fetched = scan.cli(await runCli(['wal', 'fetch', segment, join(work, 'restored')], { PGOPS_STORAGE: `file://${unwritable}`, PGOPS_DATABASE_ID: ID }));
    expect(fetched.code).toBe(1);
  });

  it('storage that takes the data but fails the checksum: not archived, fetch says not found; once it recovers, the retry stores it whole', { timeout: 300_000 }, async () => {
    const s3env = `PGOPS_S3_ENDPOINT=${shellQuote(fault.endpoint)} AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1`;
    const storage = `s3://${s3.bucket}/archive`;
    const command = `${s3env} PGOPS_STORAGE=${shellQuote(storage)} PGOPS_DATABASE_ID=${ID} ${shellQuote(process.execPath)} ${shellQuote(bundledCli())} --quiet wal push %p`;
    const checksumPut = (r: Parameters<typeof s3Op.putObject>[0]) => s3Op.putObject(r) && r.path.endsWith('.sha256');
    fault.proxy.failAll(checksumPut);
    const { failed_count: before, last_failed_wal: segment } = await archiver();
    // The archiver retries the segment the previous test left unarchived, now with this command.
    await setArchiveCommand(command);
    await waitFor('a failed checksum write', async () => (await archiver()).failed_count !== before && fault.proxy.requests(checksumPut).length > 0, 120_000);
    expect(segment).not.toBeNull();
    const keys = async () => ((await s3.client().send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'archive/' }))).Contents ?? []).map((o) => o.Key);
    expect(await keys()).toEqual([`archive/${ID}/wal/00000001/${segment}.gz`]);
    const env = { PGOPS_STORAGE: storage, PGOPS_DATABASE_ID: ID, PGOPS_S3_ENDPOINT: s3.endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };
    const dest = join(work, 'fetched');
    expect(scan.cli(await runCli(['wal', 'fetch', segment!, dest], env)).code).toBe(1);

    fault.proxy.clear();
    // A reload wakes the archiver, which retries at once.
    await cluster.query('SELECT pg_reload_conf()');
    await waitFor(`the archiver to store ${segment}`, async () => ((await archiver()).last_archived_wal ?? '') >= segment!, 180_000);
    expect((await keys()).filter((k) => k!.includes(segment!))).toEqual([`archive/${ID}/wal/00000001/${segment}.gz`, `archive/${ID}/wal/00000001/${segment}.gz.sha256`]);
    expect(scan.cli(await runCli(['wal', 'fetch', segment!, dest], env)).code).toBe(0);
    expect(sha256(readFileSync(dest))).toBe(sha256(serverFile(segment!)));
    await setArchiveCommand(null);
  });
});
