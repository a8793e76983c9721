// `wal receive` as a job on a real cluster: segments and the partial arrive byte-identical to the
// server's own WAL files, the slot moves only past what is archived, a restart resumes at the slot,
// and every failure (a conflicting segment, storage that keeps failing, pg_receivewal dying) fails
// the job with one alert, the slot where it was and the unarchived files kept.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import type { PutResult, Storage } from '../../../../../functions/core/storage/types.ts';
import { storeWalFile } from '../../../../../functions/core/wal/archive.ts';
import { WalConflictError, WalReceiveError } from '../../../../../functions/core/wal/errors.ts';
import { parseLsn, parseSegmentFileName, segmentFileNameOf, segmentNumberOf } from '../../../../../functions/core/wal/lsn.ts';
import { receiveWal, type WalReceiveDeps, type WalReceiveResult } from '../../../../../functions/core/wal/receive.ts';
import { waitFor } from '../../../../helpers/cli.ts';
import { captured } from '../../../../helpers/output-scan.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';

// No checkpoint during the file: the server's own segment files stay there to compare with.
const cluster = useTestCluster({ settings: { checkpoint_timeout: '1h' } });
const scan = captured(() => [cluster.pg.password]);
const work = mkdtempSync(join(tmpdir(), 'pgops-wal-receive-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let n = 0;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const serverFile = (name: string) => readFileSync(join(cluster.pg.dataDir, 'pg_wal', name));

interface Run {
  deps: WalReceiveDeps;
  storage: Storage;
  stop: AbortController;
  alerts: ReturnType<typeof scan.alerter>;
  logs: string[];
  spoolParent: string;
}

function setup(o: { storage?: Storage; databaseId?: string; extra?: Partial<WalReceiveDeps> } = {}): Run {
  const storage = o.storage ?? new FileStorage(pathToFileURL(mkdtempSync(join(work, 'store-'))).href);
  const databaseId = o.databaseId ?? `db${++n}`;
  const { logger, lines } = scan.logger('debug');
  const alerts = scan.alerter();
  const stop = new AbortController();
  const spoolParent = mkdtempSync(join(work, 'spool-'));
  const deps: WalReceiveDeps = {
    target: cluster.target(), storage, databaseId, binDir: cluster.pg.binDir, signal: stop.signal, tmpDir: spoolParent,
    reporting: { alerter: alerts, logger, databaseId, environment: 'test' }, pollMs: 200, partialIntervalMs: 1000, ...o.extra,
  };
  return { deps, storage, stop, alerts, logs: lines, spoolParent };
}

async function sql<R extends Record<string, unknown>>(text: string, params: unknown[] = []): Promise<R[]> {
  return (await cluster.query<R>(text, params)).rows;
}

/** Write some WAL and switch to a new segment; the name of the segment that was closed. */
async function fillAndSwitch(rows = 2000): Promise<string> {
  await sql(`CREATE TABLE IF NOT EXISTS filler (id bigserial, payload text)`);
  await sql(`INSERT INTO filler (payload) SELECT md5(g::text) FROM generate_series(1, ${rows}) g`);
  const [row] = await sql<{ name: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS name');
  await sql('SELECT pg_switch_wal()');
  return row!.name;
}

async function archivedNames(storage: Storage, databaseId: string): Promise<string[]> {
  const keys = new Set((await storage.list(`${databaseId}/wal/`)).map((o) => o.key));
  return [...keys].filter((k) => k.endsWith('.gz') && keys.has(`${k}.sha256`)).map((k) => k.split('/').pop()!.replace(/\.gz$/, '')).sort();
}

async function archivedContent(storage: Storage, databaseId: string, name: string): Promise<Buffer> {
  return gunzipSync((await storage.getBytes(`${databaseId}/wal/${name.slice(0, 8)}/${name}.gz`))!);
}

async function slotRestart(slot: string): Promise<bigint> {
  const [row] = await sql<{ lsn: string }>('SELECT restart_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return parseLsn(row!.lsn);
}

async function receiverStreaming(): Promise<boolean> {
  return (await sql(`SELECT 1 FROM pg_stat_replication WHERE application_name = 'pgops-wal-receive' AND state = 'streaming'`)).length > 0;
}

const segno = (name: string) => parseSegmentFileName(name.slice(0, 24))!.segno;

describe('wal receive', () => {
  let first: { databaseId: string; storage: Storage; partial: string } | undefined;

  it('archives every finished segment and the partial, byte-identical to the server\'s files, and stops cleanly on the signal', async () => {
    const r = setup();
    const running = receiveWal(r.deps, { slot: 'receive_main', createSlot: true });
    await waitFor('the receiver to stream', receiverStreaming, 60_000);
    const closed = [await fillAndSwitch(), await fillAndSwitch(), await fillAndSwitch()];
    await waitFor('the switched segments in the archive', async () => {
      const archived = await archivedNames(r.storage, r.deps.databaseId);
      return closed.every((s) => archived.includes(s));
    }, 90_000);
    await sql(`INSERT INTO filler (payload) SELECT md5(g::text) FROM generate_series(1, 500) g`);
    // The insert position: with synchronous_commit off (test clusters) the flush may still stand at the
    // switch's segment boundary, which pg_walfile_name names as the previous segment.
    const [{ lsn, name }] = await sql<{ lsn: string; name: string }>('SELECT pg_current_wal_lsn()::text AS lsn, pg_walfile_name(pg_current_wal_lsn()) AS name') as [{ lsn: string; name: string }];
    await waitFor('the receiver to flush the last insert', async () => (await sql(`SELECT 1 FROM pg_stat_replication WHERE application_name = 'pgops-wal-receive' AND flush_lsn >= $1::pg_lsn`, [lsn])).length > 0, 60_000);
    r.stop.abort('SIGTERM');
    const result: WalReceiveResult = await running;

    expect(result).toMatchObject({ slot: 'receive_main', stoppedBy: 'signal', lastSegment: closed.at(-1) });
    expect(result.segmentsUploaded).toBeGreaterThanOrEqual(3);
    expect(result.partialUploads).toBeGreaterThanOrEqual(1);
    const archived = await archivedNames(r.storage, r.deps.databaseId);
    const segments = archived.filter((a) => !a.endsWith('.partial'));
    expect(segments).toEqual(expect.arrayContaining(closed));
    for (const s of segments) expect(sha256(await archivedContent(r.storage, r.deps.databaseId, s)), s).toBe(sha256(serverFile(s)));
    // The partial: everything up to the last flushed insert, as the server wrote it.
    expect(archived).toContain(`${name}.partial`);
    const upTo = Number(parseLsn(lsn) % BigInt(16 << 20));
    const partial = await archivedContent(r.storage, r.deps.databaseId, `${name}.partial`);
    expect(partial.subarray(0, upTo).equals(serverFile(name).subarray(0, upTo))).toBe(true);
    // The slot moved exactly past the archived segments; the spool is gone; pg_receivewal too.
    expect(segmentNumberOf(await slotRestart('receive_main'))).toBe(segno(name));
    expect(readdirSync(r.spoolParent)).toEqual([]);
    expect(await receiverStreaming()).toBe(false);
    expect(r.logs.filter((l) => /wal receive: 0{7}1[0-9A-F]{16} archived at /.test(l)).length).toBe(result.segmentsUploaded);
    expect(r.alerts.sent).toEqual([]);
    first = { databaseId: r.deps.databaseId, storage: r.storage, partial: name };
  });

  it('a restart resumes at the slot, from the archived partial, and leaves no gap', async () => {
    expect(first).toBeDefined();
    const r = setup({ storage: first!.storage, databaseId: first!.databaseId });
    const running = receiveWal(r.deps, { slot: 'receive_main' });
    await waitFor('the receiver to stream', receiverStreaming, 60_000);
    const closed = await fillAndSwitch();
    await waitFor('the next segment in the archive', async () => (await archivedNames(r.storage, r.deps.databaseId)).includes(closed), 90_000);
    r.stop.abort('SIGTERM');
    const result = await running;
    expect(result.resumedFrom).toBe(first!.partial);
    expect(r.logs.join('')).toMatch(new RegExp(`starting log streaming at [0-9A-F]+/[0-9A-F]*000000 `));
    const segments = (await archivedNames(r.storage, r.deps.databaseId)).filter((a) => !a.endsWith('.partial'));
    const numbers = segments.map(segno);
    for (let i = 1; i < numbers.length; i++) expect(numbers[i], `${segments[i]} follows ${segments[i - 1]}`).toBe(numbers[i - 1]! + 1n);
    for (const s of segments) expect(sha256(await archivedContent(r.storage, r.deps.databaseId, s)), s).toBe(sha256(serverFile(s)));
    // The first run's partial was superseded by its finished segment, and removed.
    expect(segments).toContain(first!.partial);
    expect(await archivedNames(r.storage, r.deps.databaseId)).not.toContain(`${first!.partial}.partial`);
  });

  it('a different segment already archived under a name fails the job loudly: not overwritten, slot not moved, local copy kept', async () => {
    const r = setup();
    await sql(`SELECT pg_create_physical_replication_slot('receive_conflict', true)`);
    const [{ name }] = await sql<{ name: string }>(`SELECT pg_walfile_name(restart_lsn) AS name FROM pg_replication_slots WHERE slot_name = 'receive_conflict'`) as [{ name: string }];
    const other = Buffer.from('another cluster\'s segment');
    await storeWalFile(r.storage, r.deps.databaseId, name, other);
    const restart = await slotRestart('receive_conflict');
    // A physical slot reserves from the last checkpoint's redo point: a segment the server has finished.
    const err = await receiveWal(r.deps, { slot: 'receive_conflict' }).catch((e: unknown) => scan.error(e));
    expect(err).toBeInstanceOf(WalConflictError);
    expect((err as Error).message).toMatch(new RegExp(`a different ${name} is already archived`));
    expect(r.alerts.sent).toHaveLength(1);
    expect(r.alerts.sent[0]).toMatchObject({ severity: 'critical', job: 'wal receive' });
    expect((await archivedContent(r.storage, r.deps.databaseId, name)).equals(other)).toBe(true);
    expect(await slotRestart('receive_conflict')).toBe(restart);
    const [spool] = readdirSync(r.spoolParent);
    expect(existsSync(join(r.spoolParent, spool!, name))).toBe(true);
    await waitFor('pg_receivewal to be gone', async () => !(await receiverStreaming()), 30_000);
    await sql(`SELECT pg_drop_replication_slot('receive_conflict')`);
  });

  it('storage that keeps failing fails the job after its retries: the slot stays, the received segments stay in the spool', async () => {
    const broken = new (class extends FileStorage {
      override putBytes(): Promise<PutResult> { return Promise.reject(new Error('storage unavailable (injected)')); }
    })(pathToFileURL(mkdtempSync(join(work, 'store-'))).href);
    const r = setup({ storage: broken, extra: { attempts: 3, backoffMs: 50 } });
    await sql(`SELECT pg_create_physical_replication_slot('receive_broken', true)`);
    const restart = await slotRestart('receive_broken');
    // The segment the slot resumes at is finished: the receiver has something to archive at once.
    await fillAndSwitch();
    const err = await receiveWal(r.deps, { slot: 'receive_broken' }).catch((e: unknown) => scan.error(e));
    expect(err).toBeInstanceOf(WalReceiveError);
    expect((err as Error).message).toMatch(/failed after 3 attempts.*storage unavailable/);
    expect(r.alerts.sent).toHaveLength(1);
    expect(await slotRestart('receive_broken')).toBe(restart);
    const [spool] = readdirSync(r.spoolParent);
    expect(readdirSync(join(r.spoolParent, spool!))).toContain(segmentFileNameOf(1, restart));
    expect(r.logs.join('')).toMatch(/kept .*pgops-wal-receive-/);
    await sql(`SELECT pg_drop_replication_slot('receive_broken')`);
  });

  it('pg_receivewal dying is a failure: what it received is archived, one alert, the error names it', async () => {
    const r = setup();
    const running = receiveWal(r.deps, { slot: 'receive_dies', createSlot: true }).catch((e: unknown) => scan.error(e));
    await waitFor('the receiver to stream', receiverStreaming, 60_000);
    const closed = await fillAndSwitch();
    await waitFor('the segment in the archive', async () => (await archivedNames(r.storage, r.deps.databaseId)).includes(closed), 90_000);
    await sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'pgops-wal-receive'`);
    const err = await running;
    expect(err).toBeInstanceOf(WalReceiveError);
    expect((err as Error).message).toMatch(/pg_receivewal stopped streaming: pg_receivewal exited with code 1/);
    expect(r.alerts.sent).toHaveLength(1);
    expect(await archivedNames(r.storage, r.deps.databaseId)).toContain(closed);
    await sql(`SELECT pg_drop_replication_slot('receive_dies')`);
  });

  it('pg_receivewal that cannot be run fails the job at once, naming it', async () => {
    const r = setup({ extra: { binDir: join(work, 'no-such-bin') } });
    const err = await receiveWal(r.deps, { slot: 'receive_nobin', createSlot: true }).catch((e: unknown) => scan.error(e));
    expect(err).toBeInstanceOf(WalReceiveError);
    expect((err as Error).message).toMatch(/could not run pg_receivewal/);
    expect(r.alerts.sent).toHaveLength(1);
    await sql(`SELECT pg_drop_replication_slot('receive_nobin')`);
  });
});
