// The base backup job on real clusters: one that archives its WAL through the real CLI (wal push as
// archive_command), one that archives nothing, one whose archive_command fails. A base backup is
// stored only with its WAL archived; every failure leaves no manifest, no base object, one alert.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline, Transform, type Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemoryAlerter } from '../../../../../functions/core/alerts/alerter.ts';
import { scanBackups } from '../../../../../functions/core/catalog/catalog.ts';
import { physicalPrefix } from '../../../../../functions/core/catalog/layout.ts';
import { resolvePhysicalBackup, scanPhysicalBackups, type PhysicalManifest } from '../../../../../functions/core/catalog/physical.ts';
import { parseDatabaseUrl } from '../../../../../functions/core/db.ts';
import { exitCodeOf } from '../../../../../functions/core/errors.ts';
import { baseBackupLockKey, runBaseBackup, type BaseBackupDeps } from '../../../../../functions/core/physical/basebackup.ts';
import { BaseBackupError, BaseBackupLockedError, BaseBackupWalError } from '../../../../../functions/core/physical/errors.ts';
import { isSegmentArchived } from '../../../../../functions/core/physical/wal-wait.ts';
import { InterruptedError } from '../../../../../functions/core/run-job.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import type { Storage } from '../../../../../functions/core/storage/types.ts';
import { fetchWal } from '../../../../../functions/core/wal/archive.ts';
import { parseLsn } from '../../../../../functions/core/wal/lsn.ts';
import { archivingConf, sharedStorageDir } from '../../../../helpers/archiving.ts';
import { childProcesses, waitFor } from '../../../../helpers/cli.ts';
import { captured } from '../../../../helpers/output-scan.ts';
import { useTestCluster, type TestCluster } from '../../../../helpers/postgres.ts';

const DB_ID = 'orders';
const work = mkdtempSync(join(tmpdir(), 'pgops-bb-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function jobDeps(out: ReturnType<typeof captured>, cluster: TestCluster, storage: Storage, extra: Partial<BaseBackupDeps> = {}): BaseBackupDeps & { alerter: MemoryAlerter } {
  const alerter = out.alerter();
  return {
    target: cluster.target(),
    storage,
    logger: out.logger().logger,
    databaseId: DB_ID,
    environment: 'test',
    binDir: cluster.pg.binDir,
    archivePollMs: 200,
    ...extra,
    alerter,
  };
}

/** Storage whose uploads pass through `wrap` (a throttle, a fault). */
function wrapUploads(inner: Storage, wrap: () => Transform): Storage {
  return {
    url: inner.url,
    putStream: (key: string, body: Readable, o?: { contentType?: string; signal?: AbortSignal; sizeHint?: number }) => {
      const t = wrap();
      pipeline(body, t, () => {});
      return inner.putStream(key, t, o);
    },
    putBytes: (k, d, o) => inner.putBytes(k, d, o),
    getStream: (k) => inner.getStream(k),
    getBytes: (k) => inner.getBytes(k),
    list: (p) => inner.list(p),
    delete: (k) => inner.delete(k),
  };
}

const throttle = (ms: number) => () => new Transform({ transform(chunk, _e, cb) { setTimeout(() => cb(null, chunk), ms); } });

/** Keys under the database's physical folder. */
async function physicalObjects(storage: Storage): Promise<string[]> {
  return (await storage.list(physicalPrefix(DB_ID))).map((o) => o.key);
}

/** `tar` of a stored base object (decompressed with the standard tool for its compression). */
function tarOf(path: string, compression: PhysicalManifest['compression'], args: string): string {
  const decompress = { gzip: 'gzip -dc', zstd: 'zstd -dc', lz4: 'lz4 -dc', none: 'cat' }[compression];
  const r = spawnSync('sh', ['-c', `${decompress} "$1" | tar ${args}`, 'sh', path], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`tar ${args} failed: ${r.stderr}`);
  return r.stdout;
}

/** The pg_basebackup this test process started (setpriv execs it: same pid). */
/** The streaming pg_basebackup (--pgdata=-), not the `pg_basebackup --version` the job runs first. */
function pgBasebackupPid(): number | undefined {
  return childProcesses(process.pid).find((p) => p.argv[0]?.endsWith('/pg_basebackup') && p.argv.includes('--pgdata=-'))?.pid;
}

describe('on a cluster that archives its WAL through pgops wal push', () => {
  const store = sharedStorageDir();
  const storage = new FileStorage(pathToFileURL(store).href);
  const cluster = useTestCluster({ conf: archivingConf(store, DB_ID) });
  const out = captured(() => [cluster.pg.password]);

  beforeAll(async () => {
    await cluster.query(`CREATE TABLE items AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 20000) g`);
    // The server's first push creates the database's folder as the postgres user: the job (root here)
    // must not create it first, or archive_command could not write below it.
    const first = (await cluster.query<{ name: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS name')).rows[0]!.name;
    await waitFor(`${first} to be archived`, async () => isSegmentArchived(storage, DB_ID, first), 60_000);
  });

  it('stores a base backup whose manifest matches the stored object, the server and the archived backup history file', async () => {
    const deps = jobDeps(out, cluster, storage);
    const m = await runBaseBackup(deps);
    const path = join(store, ...m.key.split('/'));
    const stored = readFileSync(path);
    expect(m).toMatchObject({ kind: 'physical', formatVersion: 1, format: 'tar', compression: 'gzip', walMethod: 'none', database: DB_ID, bytes: stored.length });
    expect(m.key).toBe(`${DB_ID}/physical/${m.id}/base.tar.gz`);
    expect(m.sha256).toBe(createHash('sha256').update(stored).digest('hex'));
    expect(m.sourceHost).toBe(cluster.target().display);

    const server = (await cluster.query<{ sysid: string; tli: number; start: string; stop: string; num: string }>(
      `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS sysid, (SELECT timeline_id FROM pg_control_checkpoint()) AS tli,
              pg_walfile_name($1::pg_lsn) AS start, pg_walfile_name($2::pg_lsn) AS stop, current_setting('server_version_num') AS num`, [m.startLsn, m.stopLsn])).rows[0]!;
    expect(m.systemIdentifier).toBe(server.sysid);
    expect(m.timeline).toBe(server.tli);
    expect(m.serverVersionNum).toBe(Number(server.num));
    expect(m.startSegment).toBe(server.start);
    expect(m.stopSegment).toBe(server.stop);
    expect(parseLsn(m.stopLsn)).toBeGreaterThan(parseLsn(m.startLsn));
    expect(Date.parse(m.stoppedAt)).toBeLessThanOrEqual(Date.parse(m.completedAt) + 5000);

    // PostgreSQL's own record of the backup, archived by archive_command: same start, stop and label.
    const offset = (parseLsn(m.startLsn) % BigInt(m.walSegmentSize)).toString(16).toUpperCase().padStart(8, '0');
    const historyFile = join(work, 'backup-history');
    const fetched = await fetchWal({ storage, databaseId: DB_ID, reporting: { alerter: deps.alerter, logger: deps.logger, databaseId: DB_ID, environment: 'test' } }, `${m.startSegment}.${offset}.backup`, historyFile);
    expect(fetched.status).toBe('restored');
    const history = readFileSync(historyFile, 'utf8');
    expect(history).toMatch(new RegExp(`^START WAL LOCATION: ${m.startLsn} `, 'm'));
    expect(history).toMatch(new RegExp(`^STOP WAL LOCATION: ${m.stopLsn} `, 'm'));
    expect(history).toContain(`LABEL: pgops ${m.id}`);

    const names = tarOf(path, 'gzip', '-tf -').split('\n');
    expect(names).toEqual(expect.arrayContaining(['backup_label', 'PG_VERSION', 'global/pg_control', 'backup_manifest']));
    const label = tarOf(path, 'gzip', '-xOf - backup_label');
    expect(label).toContain(`START WAL LOCATION: ${m.startLsn} (file ${m.startSegment})`);
    expect(m.tarBytes).toBe(Number(spawnSync('sh', ['-c', 'gzip -dc "$1" | wc -c', 'sh', path], { encoding: 'utf8' }).stdout.trim()));

    const scan = await scanPhysicalBackups(storage, DB_ID);
    expect(scan.backups.map((b) => b.manifest)).toEqual([m]);
    expect(scan.invalid).toEqual([]);
    expect(await resolvePhysicalBackup(storage, DB_ID, 'latest')).toEqual(m);
    expect(await resolvePhysicalBackup(storage, DB_ID, m.id)).toEqual(m);
    // Logical backups are another catalog: a base backup is not one of them.
    expect((await scanBackups(storage, DB_ID)).backups).toEqual([]);
    expect(deps.alerter.sent).toEqual([]);
  });

  it.each(['zstd', 'lz4', 'none'] as const)('stores a %s base tar that the standard tools read', async (compression) => {
    const deps = jobDeps(out, cluster, storage);
    const m = await runBaseBackup(deps, { compression });
    const path = join(store, ...m.key.split('/'));
    expect(m.compression).toBe(compression);
    expect(m.key).toMatch({ zstd: /\/base\.tar\.zst$/, lz4: /\/base\.tar\.lz4$/, none: /\/base\.tar$/ }[compression]);
    expect(m.sha256).toBe(createHash('sha256').update(readFileSync(path)).digest('hex'));
    expect(tarOf(path, compression, '-tf -').split('\n')).toEqual(expect.arrayContaining(['backup_label', 'PG_VERSION']));
    expect(tarOf(path, compression, '-xOf - backup_label')).toContain(`LABEL: pgops ${m.id}`);
  });

  it('fails when pg_basebackup is killed mid-stream: no manifest, no base object, one alert, exit 1', async () => {
    const before = await physicalObjects(storage);
    const deps = jobDeps(out, cluster, wrapUploads(storage, throttle(150)), { physical: { compression: 'none' } });
    const job = runBaseBackup(deps).then(() => undefined, (e: unknown) => out.error(e));
    let pid: number | undefined;
    await waitFor('pg_basebackup to start', () => (pid = pgBasebackupPid()) !== undefined, 60_000);
    // While it runs: the password is nowhere in its argv.
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).not.toContain(cluster.pg.password);
    process.kill(pid!, 'SIGKILL');
    const err = await job;
    expect(err).toBeInstanceOf(BaseBackupError);
    expect(exitCodeOf(err)).toBe(1);
    expect((err as Error).message).toMatch(/^pg_basebackup was killed by SIGKILL/);
    expect(await physicalObjects(storage)).toEqual(before);
    expect(deps.alerter.sent).toHaveLength(1);
    expect(deps.alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'basebackup', database: DB_ID });
    expect(deps.alerter.sent[0]!.summary).toMatch(/^basebackup failed: pg_basebackup was killed by SIGKILL/);
  });

  it('fails when its walsender is terminated mid-stream, naming pg_basebackup\'s error', async () => {
    const before = await physicalObjects(storage);
    const deps = jobDeps(out, cluster, wrapUploads(storage, throttle(40)), { physical: { compression: 'none' } });
    const job = runBaseBackup(deps).then(() => undefined, (e: unknown) => out.error(e));
    let walsender: number | undefined;
    await waitFor('the walsender', async () => {
      const r = await cluster.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender' AND application_name LIKE 'pgops-basebackup-%'");
      walsender = r.rows[0]?.pid;
      return walsender !== undefined;
    }, 60_000);
    await cluster.query('SELECT pg_terminate_backend($1)', [walsender]);
    const err = await job;
    expect(err).toBeInstanceOf(BaseBackupError);
    expect((err as Error).message).toMatch(/^pg_basebackup exited with code 1: .*(terminating connection|server closed the connection|could not read COPY data)/);
    expect(await physicalObjects(storage)).toEqual(before);
    expect(deps.alerter.sent).toHaveLength(1);
  });

  it('fails when storage fails mid-upload, and stops pg_basebackup', async () => {
    const before = await physicalObjects(storage);
    let seen = 0;
    const deps = jobDeps(out, cluster, wrapUploads(storage, () => new Transform({
      transform(chunk: Buffer, _e, cb) {
        seen += chunk.length;
        if (seen > 1_000_000) cb(new Error('simulated storage outage: 500 InternalError'));
        else cb(null, chunk);
      },
    })), { physical: { compression: 'none' } });
    const err = out.error(await runBaseBackup(deps).catch((e: unknown) => e));
    expect(err).toBeInstanceOf(BaseBackupError);
    expect((err as Error).message).toMatch(/^upload to file:\/\/.* failed: simulated storage outage/);
    expect(await physicalObjects(storage)).toEqual(before);
    expect(pgBasebackupPid()).toBeUndefined();
    expect(deps.alerter.sent).toHaveLength(1);
  });

  it('stops cleanly on SIGTERM (the job\'s signal): nothing left, exit 143', async () => {
    const before = await physicalObjects(storage);
    const interrupt = new AbortController();
    const deps = jobDeps(out, cluster, wrapUploads(storage, throttle(150)), { signal: interrupt.signal, physical: { compression: 'none' } });
    const job = runBaseBackup(deps).then(() => undefined, (e: unknown) => out.error(e));
    await waitFor('pg_basebackup to start', () => pgBasebackupPid() !== undefined, 60_000);
    interrupt.abort('SIGTERM');
    const err = await job;
    expect(err).toBeInstanceOf(InterruptedError);
    expect(exitCodeOf(err)).toBe(143);
    expect(await physicalObjects(storage)).toEqual(before);
    await waitFor('pg_basebackup to exit', () => pgBasebackupPid() === undefined, 30_000);
  });

  it('never runs two base backups of one database at once', async () => {
    const before = await physicalObjects(storage);
    const pg = await import('pg');
    const holder = new pg.default.Client({ connectionString: cluster.url() });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [baseBackupLockKey(DB_ID).toString()]);
      const deps = jobDeps(out, cluster, storage);
      const err = out.error(await runBaseBackup(deps).catch((e: unknown) => e));
      expect(err).toBeInstanceOf(BaseBackupLockedError);
      expect((err as Error).message).toMatch(/^another base backup of database "orders" is already running \(held by backend \d+/);
      expect(deps.alerter.sent).toEqual([expect.objectContaining({ severity: 'warning', job: 'basebackup' })]);
    } finally {
      await holder.end();
    }
    expect(await physicalObjects(storage)).toEqual(before);
  });

  it('refuses a role without REPLICATION, saying so, before streaming anything', async () => {
    await cluster.query("CREATE ROLE app_norepl LOGIN PASSWORD 'norepl-secret-pw'");
    out.secret('norepl-secret-pw');
    const before = await physicalObjects(storage);
    const deps = jobDeps(out, cluster, storage, { target: parseDatabaseUrl(`postgres://app_norepl:norepl-secret-pw@127.0.0.1:${cluster.pg.port}/postgres`) });
    const err = out.error(await runBaseBackup(deps).catch((e: unknown) => e));
    expect(err).toBeInstanceOf(BaseBackupError);
    expect((err as Error).message).toMatch(/^role "app_norepl" has no REPLICATION attribute, which pg_basebackup needs: ALTER ROLE "app_norepl" REPLICATION/);
    expect(await physicalObjects(storage)).toEqual(before);
    expect(deps.alerter.sent).toHaveLength(1);
  });

  it('fails on a wrong password with a clear message that holds no password', async () => {
    const deps = jobDeps(out, cluster, storage, { target: { ...cluster.target(), password: 'definitely-wrong-pw' } });
    out.secret('definitely-wrong-pw');
    const err = out.error(await runBaseBackup(deps).catch((e: unknown) => e));
    expect((err as Error).message).toMatch(/password authentication failed for user "postgres"/);
    expect(exitCodeOf(err)).toBe(1);
    expect(JSON.stringify(deps.alerter.sent)).not.toContain(cluster.pg.password);
  });
});

describe('on a cluster that archives nothing', () => {
  const store = sharedStorageDir();
  const storage = new FileStorage(pathToFileURL(store).href);
  const cluster = useTestCluster();
  const out = captured(() => [cluster.pg.password]);

  it('fails after the configured wait, naming the WAL it needs: no manifest, no base object, one alert', async () => {
    const deps = jobDeps(out, cluster, storage, { physical: { archiveWaitSeconds: 2 } });
    const err = out.error(await runBaseBackup(deps).catch((e: unknown) => e));
    expect(err).toBeInstanceOf(BaseBackupWalError);
    expect(exitCodeOf(err)).toBe(1);
    expect((err as Error).message).toMatch(/^the WAL this backup needs \(([0-9A-F]{24})\.\.([0-9A-F]{24})\) did not reach the archive within 2 s: is archive_command or wal receive running\?/);
    expect(await physicalObjects(storage)).toEqual([]);
    expect(deps.alerter.sent).toHaveLength(1);
    expect(deps.alerter.sent[0]!.summary).toMatch(/^basebackup failed: the WAL this backup needs/);
  });

  it('names the missing pg_hba.conf replication line', async () => {
    const hba = join(cluster.pg.dataDir, 'pg_hba.conf');
    const original = readFileSync(hba, 'utf8');
    writeFileSync(hba, original.replace(/^host\s+replication\s+.*$/gm, '# $&'));
    await cluster.query('SELECT pg_reload_conf()');
    try {
      const deps = jobDeps(out, cluster, storage);
      const err = out.error(await runBaseBackup(deps).catch((e: unknown) => e));
      expect((err as Error).message).toMatch(/^pg_basebackup exited with code 1: .*no pg_hba\.conf entry for replication connection.*pg_hba\.conf has no "replication" line for role "postgres"/);
      expect(await physicalObjects(storage)).toEqual([]);
    } finally {
      writeFileSync(hba, original);
      await cluster.query('SELECT pg_reload_conf()');
    }
  });
});

describe('on a cluster whose archive_command fails', () => {
  const store = sharedStorageDir();
  const storage = new FileStorage(pathToFileURL(store).href);
  const cluster = useTestCluster({ conf: { wal_level: 'replica', archive_mode: 'on', archive_command: 'false' } });
  const out = captured(() => [cluster.pg.password]);

  it('stops waiting for PostgreSQL\'s own archive wait after the budget and ends its walsender', async () => {
    const deps = jobDeps(out, cluster, storage, { physical: { archiveWaitSeconds: 3, compression: 'none' } });
    const err = out.error(await runBaseBackup(deps).catch((e: unknown) => e));
    expect(err).toBeInstanceOf(BaseBackupWalError);
    expect((err as Error).message).toMatch(/^the WAL this backup needs \(from [0-9A-F]{24}\) did not reach the archive within 3 s: is archive_command or wal receive running\? \(PostgreSQL is still waiting for archive_command/);
    expect(await physicalObjects(storage)).toEqual([]);
    expect(deps.alerter.sent).toHaveLength(1);
    await waitFor('the walsender to end', async () => (await cluster.query("SELECT 1 FROM pg_stat_activity WHERE backend_type = 'walsender'")).rowCount === 0, 30_000);
  });
});
