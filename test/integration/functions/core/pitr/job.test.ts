// Point-in-time recovery on real clusters, to the row: one source cluster archives every segment
// through the real `pgops wal push`; rows are committed around a restore point, a time, an LSN and
// an xid; each recovery must yield exactly the rows committed before its target. Then the ways it
// must fail (before anything starts where it can), and a timeline fork. One source cluster for the
// whole file: the tests run in order and the fork comes last.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MemoryAlerter } from '../../../../../functions/core/alerts/alerter.ts';
import { runRestore } from '../../../../../functions/core/backup/restore.ts';
import { listBackups } from '../../../../../functions/core/catalog/catalog.ts';
import type { PhysicalManifest } from '../../../../../functions/core/catalog/physical.ts';
import { exitCodeOf } from '../../../../../functions/core/errors.ts';
import { createTextLogger } from '../../../../../functions/core/logger.ts';
import { PitrArchiveError, PitrRefusedError, RecoveryFailedError } from '../../../../../functions/core/pitr/errors.ts';
import { runPitr, type PitrDeps, type PitrOptions, type PitrResult } from '../../../../../functions/core/pitr/job.ts';
import { readPostmasterPid } from '../../../../../functions/core/pitr/recovery.ts';
import type { ScratchCluster } from '../../../../../functions/core/pitr/scratch.ts';
import { FileStorage } from '../../../../../functions/core/storage/index.ts';
import { segmentFileNameOf, parseLsn } from '../../../../../functions/core/wal/lsn.ts';
import { archivingConf, bundledCli, sharedStorageDir } from '../../../../helpers/archiving.ts';
import { freePort } from '../../../../../bin/demo/embedded-postgres.ts';
import { captured } from '../../../../helpers/output-scan.ts';
import { prepareArchiveFolder, takeBaseBackup, waitArchived } from '../../../../helpers/physical.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';

const DB = 'shop';
const store = sharedStorageDir();
prepareArchiveFolder(store, DB);
const storage = new FileStorage(pathToFileURL(store).href);
// synchronous_commit on (the clusters' default here is off): pg_current_wal_lsn() is then past each commit, as in production.
const source = useTestCluster({ conf: archivingConf(store, DB), settings: { synchronous_commit: 'on' } });
const target = useTestCluster();
const cap = captured(() => [source.pg.password, target.pg.password]);
// The scratch clusters go here (the server's user must reach it): empty again after every run.
const scratchParent = mkdtempSync(join(tmpdir(), 'pgops-pitr-test-'));
chmodSync(scratchParent, 0o755);
const aside = mkdtempSync(join(tmpdir(), 'pgops-pitr-aside-'));
afterAll(() => { for (const d of [scratchParent, aside]) rmSync(d, { recursive: true, force: true }); });

let base: PhysicalManifest;
/** What the source committed around each target. */
const marks = { time: '', lsn: '', xid: '', rowSegment: '' };

function deps(extra: Partial<Omit<PitrDeps, 'alerter'>> = {}): PitrDeps & { alerter: MemoryAlerter } {
  const { logger } = process.env.PITR_DEBUG
    ? { logger: createTextLogger({ level: 'debug', write: (l) => { cap.add('log', l); process.stderr.write(`${new Date().toISOString()} ${l}`); } }) }
    : cap.logger();
  return {
    storage, logger, alerter: cap.alerter(), environment: 'test', databaseId: DB,
    target: async () => target.target('postgres'),
    walFetch: { argv: [process.execPath, bundledCli()] },
    tmpDir: scratchParent,
    recoveryTimeoutMs: 120_000,
    ...extra,
  };
}

const intoNew = (name: string): PitrOptions['output'] => ({ targetDb: name, create: true, sourceDb: DB });

async function recover(targetFlags: PitrOptions['target'], database: string, extra: Partial<Omit<PitrDeps, 'alerter'>> = {}): Promise<PitrResult> {
  const r = await runPitr(deps(extra), { target: targetFlags, output: intoNew(database) });
  cap.add('result', r);
  return r as PitrResult;
}

async function rowsIn(database: string, cluster = target): Promise<number[]> {
  const r = await cluster.query<{ id: number }>('SELECT id FROM items ORDER BY id', [], database);
  return r.rows.map((x) => x.id);
}

async function databaseExists(name: string): Promise<boolean> {
  return (await target.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
}

const insert = (id: number, note: string) => source.query('INSERT INTO items VALUES ($1, $2)', [id, note], DB);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run `body` in one transaction on the source; returns txid_current() of it. */
async function committedXid(body: (c: pg.Client) => Promise<void>): Promise<string> {
  const c = new pg.Client({ connectionString: source.url(DB) });
  await c.connect();
  try {
    await c.query('BEGIN');
    await body(c);
    const xid = (await c.query<{ x: string }>('SELECT txid_current()::text AS x')).rows[0]!.x;
    await c.query('COMMIT');
    return xid;
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  await source.createDatabase(DB);
  await source.query('CREATE TABLE items (id int PRIMARY KEY, note text)', [], DB);
  await insert(1, 'before the base backup');
  base = await takeBaseBackup(source, storage, DB);
  await insert(2, 'after the base backup');
  await source.query("SELECT pg_create_restore_point('before-3')");
  await insert(3, 'after the restore point');
  await sleep(1100);
  marks.time = (await source.query<{ t: string }>(`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t`)).rows[0]!.t;
  await sleep(1100);
  await insert(4, 'after the time');
  marks.lsn = (await source.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l;
  await insert(5, 'after the LSN');
  marks.xid = await committedXid(async (c) => { await c.query("INSERT INTO items VALUES (6, 'the xid')"); });
  await insert(7, 'after the xid');
  marks.rowSegment = segmentFileNameOf(1, parseLsn(marks.lsn));
  await source.query('SELECT pg_switch_wal()');
  // One more segment after the rows' one: a gap there is a gap, not the archive's end.
  await insert(8, 'in the next segment');
  const last = (await source.query<{ w: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS w')).rows[0]!.w;
  await waitArchived(storage, DB, last);
});

afterAll(() => {
  // A test that failed half-way must not leave a scratch cluster behind; every run removes its own.
  expect(readdirSync(scratchParent)).toEqual([]);
});

const forkDir = join(tmpdir(), `pgops-pitr-fork-${process.pid}`);

describe('pgops pitr, to the row', () => {
  it('recovers each target to exactly the rows committed before it, through each output (recoveries side by side)', async () => {
    const seen: Array<{ listen: string; tcpListeners: string[]; socket: boolean }> = [];
    const onRecovered = async (s: ScratchCluster) => {
      const pid = await readPostmasterPid(s.dataDir);
      seen.push({ listen: pid!.listen, tcpListeners: tcpListenersOn(s.port), socket: existsSync(join(s.socketDir, `.s.PGSQL.${s.port}`)) });
      // The server log and the restore_command: scanned for passwords with everything else.
      cap.add('scratch server log', readFileSync(s.logFile, 'utf8'));
      cap.add('scratch settings', readFileSync(join(s.dataDir, 'postgresql.auto.conf'), 'utf8'));
    };
    const run = async (t: PitrOptions['target'], output: PitrOptions['output']) => {
      const r = await runPitr(deps({ onRecovered }), { target: t, output }) as PitrResult;
      cap.add('result', r);
      return r;
    };
    const [name, time, xid, xidExclusive, lsnExport, dataDir] = await Promise.all([
      run({ targetName: 'before-3' }, intoNew('at_name')),
      run({ targetTime: marks.time }, intoNew('at_time')),
      run({ targetXid: marks.xid }, intoNew('at_xid')),
      run({ targetXid: marks.xid, exclusive: true }, intoNew('at_xid_excl')),
      run({ targetLsn: marks.lsn }, { export: true, sourceDb: DB }),
      run({ targetName: 'before-3' }, { dataDir: forkDir }),
    ]);

    expect(name).toMatchObject({ backupId: base.id, target: { type: 'name', value: 'before-3', inclusive: true, timeline: 1 }, output: { type: 'target-db', database: 'at_name', created: true } });
    expect(await rowsIn('at_name'), 'restore point').toEqual([1, 2]);
    expect(await rowsIn('at_time'), 'time').toEqual([1, 2, 3]);
    expect(Date.parse(time.recoveredTo.time!)).toBeLessThanOrEqual(Date.parse(marks.time));
    expect(xid.target).toMatchObject({ type: 'xid', inclusive: true });
    expect(await rowsIn('at_xid'), 'xid, inclusive').toEqual([1, 2, 3, 4, 5, 6]);
    expect(xidExclusive.target).toMatchObject({ type: 'xid', inclusive: false });
    expect(await rowsIn('at_xid_excl'), 'xid, exclusive').toEqual([1, 2, 3, 4, 5]);

    // --export, to the LSN: a logical backup marked "source": "pitr", listed, restorable to the same rows.
    expect(parseLsn(lsnExport.recoveredTo.lsn)).toBeGreaterThanOrEqual(parseLsn(marks.lsn));
    expect(lsnExport.walSegments).toBeGreaterThanOrEqual(2);
    expect(lsnExport.output).toMatchObject({ type: 'export', sourceDb: DB });
    const id = (lsnExport.output as { backupId: string }).backupId;
    const listed = (await listBackups(storage, DB)).find((m) => m.id === id);
    expect(listed).toMatchObject({ kind: 'full', source: 'pitr', sourceDatabase: DB, target: { type: 'lsn', value: marks.lsn }, baseBackup: base.id });
    await runRestore({ target: target.target('postgres'), storage, logger: cap.logger().logger, alerter: cap.alerter(), databaseId: DB, environment: 'test', binDir: target.pg.binDir }, id, { targetDb: 'from_export', create: true });
    expect(await rowsIn('from_export'), 'LSN, exported').toEqual([1, 2, 3, 4]);

    // --data-dir: stopped, our settings gone; started in the next describe.
    expect(dataDir.output).toEqual({ type: 'data-dir', path: forkDir, timeline: 2 });
    expect(existsSync(join(forkDir, 'postmaster.pid'))).toBe(false);
    expect(readFileSync(join(forkDir, 'postgresql.auto.conf'), 'utf8')).not.toMatch(/pgops pitr|restore_command|recovery_target/);

    // No scratch cluster listened on TCP: only its unix socket, in its private directory.
    expect(seen).toHaveLength(6);
    for (const s of seen) expect(s).toEqual({ listen: '', tcpListeners: [], socket: true });
  });
});

/** TCP sockets in LISTEN state on `port` (any address, IPv4 and IPv6), from /proc. */
function tcpListenersOn(port: number): string[] {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((f) => readFileSync(f, 'utf8').split('\n').slice(1))
    .filter((l) => { const cols = l.trim().split(/\s+/); return cols[3] === '0A' && cols[1]?.endsWith(`:${hex}`); });
}

/** Move a segment's objects (data and checksum) aside; returns a function that puts them back. */
function stash(segment: string): () => void {
  const dir = join(store, DB, 'wal', segment.slice(0, 8));
  const files = readdirSync(dir).filter((f) => f.startsWith(segment) && !f.includes('.backup'));
  expect(files.length).toBe(2);
  for (const f of files) renameSync(join(dir, f), join(aside, f));
  return () => { for (const f of files) renameSync(join(aside, f), join(dir, f)); };
}

async function failure(run: Promise<unknown>): Promise<Error> {
  const err = await run.then(() => { throw new Error('expected the recovery to fail'); }, (e: unknown) => e as Error);
  cap.error(err);
  return err;
}

describe('pgops pitr failures: non-zero, named, nothing created', () => {
  it('refuses a target time after the end of the archive, before anything starts', async () => {
    const d = deps();
    const later = new Date(Date.now() + 3600_000).toISOString();
    const err = await failure(runPitr(d, { target: { targetTime: later }, output: intoNew('never_late') }));
    expect(err).toBeInstanceOf(PitrRefusedError);
    expect(exitCodeOf(err)).toBe(1);
    expect(err.message).toMatch(/is after the end of the archive: the newest segment on timeline 1's path is [0-9A-F]{24}, archived at/);
    expect(await databaseExists('never_late')).toBe(false);
  });

  it('refuses a target before the base backup\'s end, naming it, with the way out', async () => {
    const err = await failure(runPitr(deps(), { target: { targetLsn: '0/1000000' }, backup: base.id, output: intoNew('never_early') }));
    expect(err.message).toMatch(new RegExp(`target LSN 0/1000000 is before the end of base backup ${base.id} \\(stopped at .*\\): choose an older --backup`));
    expect(exitCodeOf(err)).toBe(1);
    expect(await databaseExists('never_early')).toBe(false);
  });

  it('names a missing segment before recovery starts, and leaves no scratch directory', async () => {
    const putBack = stash(marks.rowSegment);
    try {
      const d = deps();
      const err = await failure(runPitr(d, { target: { targetLsn: marks.lsn }, output: intoNew('never_gap') }));
      expect(err).toBeInstanceOf(PitrArchiveError);
      expect(err.message).toMatch(new RegExp(`WAL segment ${marks.rowSegment} is missing from the archive.*nothing was started`));
      expect(d.alerter.sent).toHaveLength(1);
      expect(d.alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'pitr', database: DB });
      expect(readdirSync(scratchParent)).toEqual([]);
    } finally {
      putBack();
    }
    expect(await databaseExists('never_gap')).toBe(false);
  });

  it('fails when a segment does not match its checksum: wal fetch aborts recovery (126) and the job says so', async () => {
    const file = join(store, DB, 'wal', '00000001', `${marks.rowSegment}.gz`);
    const original = readFileSync(file);
    const flipped = Buffer.from(original);
    flipped[flipped.length >> 1] = flipped[flipped.length >> 1]! ^ 0xff;
    writeFileSync(file, flipped);
    try {
      const d = deps();
      const err = await failure(runPitr(d, { target: { targetLsn: marks.lsn }, output: intoNew('never_corrupt') }));
      expect(err).toBeInstanceOf(RecoveryFailedError);
      expect(err.message).toMatch(new RegExp(`recovery failed: FATAL: could not restore file "${marks.rowSegment}" from archive`));
      expect(err.message).toMatch(/does not match its checksum|cannot be decompressed/);
      expect(d.alerter.sent).toHaveLength(1);
    } finally {
      writeFileSync(file, original);
    }
    expect(await databaseExists('never_corrupt')).toBe(false);
  });

  it('fails when storage fails during wal fetch: recovery aborts, it does not end early and call it done', async () => {
    const file = join(store, DB, 'wal', '00000001', `${marks.rowSegment}.gz`);
    chmodSync(file, 0o000);
    try {
      const err = await failure(runPitr(deps(), { target: { targetXid: marks.xid }, output: intoNew('never_unreadable') }));
      expect(err).toBeInstanceOf(RecoveryFailedError);
      expect(err.message).toMatch(/recovery failed: FATAL: could not restore file .* from archive/);
      expect(err.message).toMatch(/EACCES|permission denied/);
    } finally {
      chmodSync(file, 0o600);
    }
    expect(await databaseExists('never_unreadable')).toBe(false);
  });

  it('fails when recovery ends before the target (a restore point that was never created): never a success', async () => {
    const d = deps();
    const err = await failure(runPitr(d, { target: { targetName: 'no-such-point' }, output: intoNew('never_reached') }));
    expect(err).toBeInstanceOf(RecoveryFailedError);
    expect(err.message).toMatch(/recovery failed: FATAL: recovery ended before configured recovery target was reached/);
    expect(d.alerter.sent).toHaveLength(1);
    expect(await databaseExists('never_reached')).toBe(false);
    expect(readdirSync(scratchParent)).toEqual([]);
  });

  it('refuses an output that restore would refuse, before recovering: --create over an existing database', async () => {
    await target.createDatabase('already_here');
    const err = await failure(runPitr(deps(), { target: { immediate: true }, output: intoNew('already_here') }));
    expect(err).toBeInstanceOf(PitrRefusedError);
    expect(err.message).toMatch(/database "already_here" already exists/);
    expect(readdirSync(scratchParent)).toEqual([]);
  });
});

describe('--data-dir and a timeline fork', () => {
  let forkPort = 0;
  const forkUrl = (db: string) => `postgres://postgres:${source.pg.password}@127.0.0.1:${forkPort}/${db}`;
  const pgCtl = (...args: string[]) => spawnSync('runuser', ['-u', 'postgres', '--', join(source.pg.binDir, 'pg_ctl'), ...args], { encoding: 'utf8' });
  afterAll(() => {
    pgCtl('stop', '-D', forkDir, '-m', 'immediate', '-w');
    rmSync(forkDir, { recursive: true, force: true });
  });

  async function onFork(sql: string, db = DB): Promise<pg.QueryResult> {
    const c = new pg.Client({ connectionString: forkUrl(db) });
    await c.connect();
    try { return await c.query(sql); } finally { await c.end(); }
  }

  it('the handed-over data directory starts as a primary with the rows', async () => {
    forkPort = await freePort();
    const started = pgCtl('start', '-D', forkDir, '-w', '-t', '60', '-l', join(forkDir, 'fork.log'), '-o', `-p ${forkPort} -c listen_addresses=127.0.0.1 -k ${forkDir}`);
    expect(started.status, started.stderr).toBe(0);
    expect((await onFork('SELECT pg_is_in_recovery() AS r')).rows[0]).toEqual({ r: false });
    const rows = await onFork('SELECT id FROM items ORDER BY id');
    cap.add('rows', rows.rows);
    expect(rows.rows.map((x) => x.id)).toEqual([1, 2]);
  });

  it('recovers along timeline 2 from its archived history, and along timeline 1 past the fork', async () => {
    // The new primary archives to the same storage: different rows on timeline 2.
    await onFork("INSERT INTO items VALUES (100, 'timeline 2')");
    await onFork("SELECT pg_create_restore_point('on-tl2')", 'postgres');
    await onFork("INSERT INTO items VALUES (101, 'timeline 2, later')");
    const last = (await onFork('SELECT pg_walfile_name(pg_switch_wal()) AS w', 'postgres')).rows[0].w as string;
    await waitArchived(storage, DB, '00000002.history');
    await waitArchived(storage, DB, last);

    const [onTwo] = await Promise.all([
      recover({ targetName: 'on-tl2', timeline: '2' }, 'on_tl2'),
      recover({ targetXid: marks.xid, timeline: '1' }, 'on_tl1'),
    ]);
    expect(onTwo.target.timeline).toBe(2);
    expect(await rowsIn('on_tl2'), 'timeline 2').toEqual([1, 2, 100]);
    expect(await rowsIn('on_tl1'), 'timeline 1, past the fork').toEqual([1, 2, 3, 4, 5, 6]);
    // The latest timeline in the archive is the default.
    const plan = await runPitr(deps(), { target: { targetName: 'on-tl2' }, output: intoNew('never_dry'), dryRun: true });
    cap.add('plan', plan);
    expect(plan).toMatchObject({ dryRun: true, plan: { timeline: 2, backup: { id: base.id }, wal: { firstSegment: base.startSegment, through: 'end of archive' } } });
  });
});
