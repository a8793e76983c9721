// `pgops wal receive` as the Fargate service runs it: SIGTERM archives what it has and exits 0;
// SIGKILL of the whole process tree while storage is failing, then a fresh container (a new, empty
// spool), leaves no gap; a missing slot and a wrong password fail clearly, with no password shown.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { parseLsn, parseSegmentFileName, segmentNumberOf } from '../../../../functions/core/wal/lsn.ts';
import { childProcesses, processAlive, runCli, startCli, waitFor, type RunningCli } from '../../../helpers/cli.ts';
import { captured } from '../../../helpers/output-scan.ts';
import { useTestCluster } from '../../../helpers/postgres.ts';

// No checkpoint during the file: the server's own segment files stay there to compare with.
const cluster = useTestCluster({ settings: { checkpoint_timeout: '1h' } });
const scan = captured(() => [cluster.pg.password]);
const work = mkdtempSync(join(tmpdir(), 'pgops-wal-receive-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const serverFile = (name: string) => readFileSync(join(cluster.pg.dataDir, 'pg_wal', name));
const segno = (name: string) => parseSegmentFileName(name.slice(0, 24))!.segno;

interface Setup { store: string; spools: string; env: Record<string, string> }

function setup(databaseId: string, url = cluster.url()): Setup {
  const store = mkdtempSync(join(work, 'store-'));
  const spools = mkdtempSync(join(work, 'spools-'));
  // TMPDIR: where the receiver makes its spool, so the test can look into it.
  return { store, spools, env: { DATABASE_URL: url, PGOPS_STORAGE: `file://${store}`, PGOPS_DATABASE_ID: databaseId, TMPDIR: spools } };
}

function receive(s: Setup, args: string[]): RunningCli {
  return startCli(['wal', 'receive', ...args], s.env, { timeoutMs: 170_000 });
}

async function sql<R extends Record<string, unknown>>(text: string, params: unknown[] = []): Promise<R[]> {
  return (await cluster.query<R>(text, params)).rows;
}

async function fillAndSwitch(): Promise<string> {
  await sql('CREATE TABLE IF NOT EXISTS filler (id bigserial, payload text)');
  await sql('INSERT INTO filler (payload) SELECT md5(g::text) FROM generate_series(1, 2000) g');
  const [row] = await sql<{ name: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS name');
  await sql('SELECT pg_switch_wal()');
  return row!.name;
}

const streaming = async () => (await sql(`SELECT 1 FROM pg_stat_replication WHERE application_name = 'pgops-wal-receive' AND state = 'streaming'`)).length > 0;

/** Committed names (data with its checksum) in the archive of `databaseId`. */
function archived(s: Setup, databaseId: string): string[] {
  const dir = join(s.store, databaseId, 'wal', '00000001');
  if (!existsSync(dir)) return [];
  const files = new Set(readdirSync(dir));
  return [...files].filter((f) => f.endsWith('.gz') && files.has(`${f}.sha256`)).map((f) => f.replace(/\.gz$/, '')).sort();
}

const content = (s: Setup, databaseId: string, name: string) => gunzipSync(readFileSync(join(s.store, databaseId, 'wal', '00000001', `${name}.gz`)));

/** Every archived segment from the first to the last, no gap, each identical to the server's own file. */
function expectContiguousAndIdentical(s: Setup, databaseId: string): string[] {
  const segments = archived(s, databaseId).filter((a) => !a.endsWith('.partial'));
  expect(segments.length).toBeGreaterThan(0);
  const numbers = segments.map(segno);
  for (let i = 1; i < numbers.length; i++) expect(numbers[i], `${segments[i]} right after ${segments[i - 1]}`).toBe(numbers[i - 1]! + 1n);
  for (const seg of segments) expect(sha256(content(s, databaseId, seg)), seg).toBe(sha256(serverFile(seg)));
  return segments;
}

describe('pgops wal receive', () => {
  it('SIGTERM stops it: the partial and every finished segment archived, byte-identical, exit 0 with the JSON result', async () => {
    const s = setup('term');
    const cli = receive(s, ['--create-slot', '--slot', 'cli_term', '--json']);
    await waitFor('the receiver to stream', streaming, 90_000);
    const closed = [await fillAndSwitch(), await fillAndSwitch()];
    await waitFor('the switched segments in the archive', () => closed.every((c) => archived(s, 'term').includes(c)), 90_000);
    await sql('INSERT INTO filler (payload) SELECT md5(g::text) FROM generate_series(1, 500) g');
    // The insert position, not the flush position: test clusters run with synchronous_commit off, so
    // the flush may still stand at the switch's segment boundary (which pg_walfile_name names as the
    // previous segment). The receiver gets the insert once the WAL writer flushes it.
    const [{ lsn, name }] = await sql<{ lsn: string; name: string }>('SELECT pg_current_wal_lsn()::text AS lsn, pg_walfile_name(pg_current_wal_lsn()) AS name') as [{ lsn: string; name: string }];
    await waitFor('the receiver to flush the insert', async () => (await sql(`SELECT 1 FROM pg_stat_replication WHERE application_name = 'pgops-wal-receive' AND flush_lsn >= $1::pg_lsn`, [lsn])).length > 0, 60_000);
    process.kill(cli.pid, 'SIGTERM');
    const r = scan.cli(await cli.result);

    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/SIGTERM: stopping the job/);
    const json = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ slot: 'cli_term', stoppedBy: 'signal', lastSegment: closed[1] });
    expect(json.partialUploads).toBeGreaterThanOrEqual(1);
    expect(json.segmentsUploaded).toBeGreaterThanOrEqual(2);
    expectContiguousAndIdentical(s, 'term');
    expect(archived(s, 'term')).toContain(`${name}.partial`);
    const upTo = Number(parseLsn(lsn) % BigInt(16 << 20));
    expect(content(s, 'term', `${name}.partial`).subarray(0, upTo).equals(serverFile(name).subarray(0, upTo))).toBe(true);
    // Each archived segment logged at info level; the spool removed.
    expect(r.stderr.match(/wal receive: 0{7}1[0-9A-F]{16} archived at /g)).toHaveLength(json.segmentsUploaded as number);
    expect(readdirSync(s.spools).filter((d) => d.startsWith('pgops-wal-receive-'))).toEqual([]);
  });

  it('SIGKILL of the whole process tree with segments received but not archived, then a fresh start: no gap', async () => {
    const s = setup('killed');
    const first = receive(s, ['--create-slot', '--slot', 'cli_kill']);
    await waitFor('the receiver to stream', streaming, 90_000);
    const before = await fillAndSwitch();
    await waitFor('a first segment in the archive', () => archived(s, 'killed').includes(before), 90_000);
    // Its files are visible before the receiver has verified them and moved the slot: wait for that
    // too, or breaking storage below can catch it mid-verification (then it rightly resumes at `before`).
    const slotSegment = async () => segmentNumberOf(parseLsn((await sql<{ lsn: string }>(`SELECT restart_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = 'cli_kill'`))[0]!.lsn));
    await waitFor('the slot to move past the archived segment', async () => (await slotSegment()) > segno(before), 60_000);

    // Storage fails (the timeline's folder becomes a file): received segments pile up in the spool.
    const timelineDir = join(s.store, 'killed', 'wal', '00000001');
    renameSync(timelineDir, `${timelineDir}.away`);
    writeFileSync(timelineDir, 'not a folder');
    const stuck = [await fillAndSwitch(), await fillAndSwitch()];
    const [spool] = readdirSync(s.spools).filter((d) => d.startsWith('pgops-wal-receive-'));
    await waitFor('the received segments in the spool', () => stuck.every((n) => existsSync(join(s.spools, spool!, n))), 60_000);
    await waitFor('the receiver to retry', () => /archiving 0{7}1[0-9A-F]{16}(\.partial)? failed \(attempt/.test(first.output().stderr), 30_000);
    // The slot has not moved past what is not archived: the server keeps it.
    const [slot] = await sql<{ lsn: string }>(`SELECT restart_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = 'cli_kill'`);
    expect(segmentNumberOf(parseLsn(slot!.lsn))).toBeLessThanOrEqual(segno(stuck[0]!));

    const children = childProcesses(first.pid);
    expect(children.some((c) => c.argv.some((a) => a.endsWith('/pg_receivewal')))).toBe(true);
    const tree = [first.pid, ...children.map((c) => c.pid)];
    for (const pid of tree) process.kill(pid, 'SIGKILL');
    const killed = scan.cli(await first.result, 'killed receiver');
    expect(killed.signal).toBe('SIGKILL');
    await waitFor('the process tree to be gone', () => tree.every((pid) => !processAlive(pid)), 30_000);

    // A fresh container: storage back, the old spool gone.
    rmSync(timelineDir);
    renameSync(`${timelineDir}.away`, timelineDir);
    rmSync(join(s.spools, spool!), { recursive: true, force: true });
    const second = receive(s, ['--slot', 'cli_kill', '--json']);
    await waitFor('the receiver to stream again', streaming, 90_000);
    const after = await fillAndSwitch();
    await waitFor('the new segment in the archive', () => archived(s, 'killed').includes(after), 90_000);
    process.kill(second.pid, 'SIGTERM');
    const r = scan.cli(await second.result, 'restarted receiver');
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { resumedFrom: string }).resumedFrom).toBe(stuck[0]);

    const segments = expectContiguousAndIdentical(s, 'killed');
    expect(segments).toEqual(expect.arrayContaining([before, ...stuck, after]));
  });

  it('a missing slot without --create-slot exits 2 and says how to create it', async () => {
    const s = setup('noslot');
    const r = scan.cli(await runCli(['wal', 'receive', '--slot', 'not_there'], s.env));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/replication slot not_there does not exist/);
    expect(r.stderr).toMatch(/--create-slot/);
    expect(archived(s, 'noslot')).toEqual([]);
  });

  it('a wrong password exits 1 with a clear message and shows no password', async () => {
    const wrong = 'wrong-pw-0815-receive';
    scan.secret(wrong);
    const s = setup('badpw', cluster.url().replace(`:${cluster.pg.password}@`, `:${wrong}@`));
    const r = scan.cli(await runCli(['wal', 'receive', '--create-slot', '--json'], s.env));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/password authentication failed for user "postgres"/);
    expect(r.stderr).toMatch(/postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/);
    expect((JSON.parse(r.stdout) as { error: { exitCode: number } }).error.exitCode).toBe(1);
  });

  it('--help teaches the REPLICATION role, the pg_hba replication line and max_slot_wal_keep_size', async () => {
    const r = scan.cli(await runCli(['wal', 'receive', '--help']));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ALTER ROLE \S+ REPLICATION/);
    expect(r.stdout).toMatch(/host\s+replication\s+\S+/);
    expect(r.stdout).toMatch(/max_slot_wal_keep_size/);
    expect(r.stdout).toMatch(/--create-slot/);
  });
});
