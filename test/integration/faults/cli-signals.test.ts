// Fault: the pgops CLI process gets SIGTERM or SIGKILL mid-backup and mid-restore. pgops promises:
// on SIGTERM it stops its tool, cleans up, sends one alert and exits non-zero; after SIGKILL
// (which nothing can handle) nothing false-good is listed, the target is never half-restored, and
// cleanup removes what the killed backup left in storage.
import { readdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../functions/core/backup/backup.ts';
import { runCleanup } from '../../../functions/core/cleanup/job.ts';
import { freshStorage } from '../../helpers/backup-fixtures.ts';
import {
  aDayLater, alertLines, backupJobDeps, cleanupJobDeps, cliEnv, databaseExists, fillTable, leftovers, listedIds, processesNamed,
  rowCount, slowToolsDir, startCli, useTempDirs, waitFor, waitForNoSession, waitForSession,
} from '../../helpers/faults.ts';
import { runCli } from '../../helpers/cli.ts';
import { captured } from '../../helpers/output-scan.ts';
import { useTestCluster } from '../../helpers/postgres.ts';

const cluster = useTestCluster();
const out = captured(() => [cluster.pg.password]);
const tempDir = useTempDirs();
const { storage, dir } = freshStorage();
const ROWS = 100_000;
let db = '';
let goodId = '';
let slowBin = '';

beforeAll(async () => {
  db = await cluster.createDatabase('signals');
  await fillTable(cluster, db, 'big', ROWS);
  goodId = (await runBackup(backupJobDeps(cluster, storage, db, out).deps)).id;
  // pg_dump's output and pg_restore's input at 1 MB/s: each job runs for seconds, killable mid-way.
  slowBin = slowToolsDir(tempDir(), cluster.pg.binDir, 1_000_000);
});

const tempFileWritten = () => readdirSync(dir, { recursive: true }).some((f) => String(f).includes('.pgops-tmp-'));
/** pgops' own temp entries (TMPDIR also holds tsx's compile cache). */
const pgopsTemp = (d: string) => readdirSync(d, { recursive: true }).map(String).filter((f) => f.startsWith('pgops-'));
const port = () => `PGPORT=${cluster.pg.port}`;

describe('SIGTERM and SIGKILL of the pgops CLI mid-backup', () => {
  it('SIGTERM: exits non-zero with one ALERT, stops pg_dump, leaves nothing, lists nothing new', async () => {
    const cli = startCli(['backup'], cliEnv(cluster, db, storage.url, { PGOPS_PG_BINDIR: slowBin }));
    await waitForSession(cluster, `application_name = 'pgops-backup' AND query ILIKE 'COPY%big%'`);
    await waitFor('the dump to reach storage', tempFileWritten);
    cli.child.kill('SIGTERM');
    const r = out.cli(await cli.done);
    expect(r.signal, 'pgops handles SIGTERM and exits by itself').toBeNull();
    expect(r.code).not.toBe(0);
    expect(alertLines(r.stderr)).toHaveLength(1);
    expect(alertLines(r.stderr)[0]).toMatch(/^pgops: ALERT CRITICAL backup faults\/signals: .*(SIGTERM|interrupt|terminat)/i);
    await waitForNoSession(cluster, `application_name LIKE 'pgops-backup%'`, 20_000);
    expect(processesNamed('pg_dump', port())).toEqual([]);
    expect(leftovers(dir)).toEqual([]);
    expect(await listedIds(storage, db)).toEqual([goodId]);
  });

  it('SIGKILL: pg_dump dies with its pipe, nothing new is listed, and cleanup removes what was left', async () => {
    const cli = startCli(['backup'], cliEnv(cluster, db, storage.url, { PGOPS_PG_BINDIR: slowBin }));
    await waitForSession(cluster, `application_name = 'pgops-backup' AND query ILIKE 'COPY%big%'`);
    await waitFor('the dump to reach storage', tempFileWritten);
    cli.child.kill('SIGKILL');
    out.cli(await cli.done);
    await waitForNoSession(cluster, `application_name LIKE 'pgops-backup%'`, 30_000);
    await waitFor('pg_dump to exit', () => processesNamed('pg_dump', port()).length === 0, 30_000);
    expect(await listedIds(storage, db)).toEqual([goodId]);
    const cleanup = cleanupJobDeps(cluster, storage, db, out, { clock: aDayLater });
    await runCleanup(cleanup.deps);
    expect(leftovers(dir)).toEqual([]);
    expect(await listedIds(storage, db)).toEqual([goodId]);
    expect(cleanup.alerter.sent).toEqual([]);
  });
});

describe('SIGTERM and SIGKILL of the pgops CLI mid-restore', () => {
  it('SIGTERM: exits non-zero with one ALERT, stops pg_restore, drops the database it created, removes its temp files', async () => {
    const jobTmp = tempDir('pgops-fault-cli-tmp-');
    const target = 'signals_term_copy';
    const cli = startCli(['restore', goodId, '--target-db', target, '--create'], cliEnv(cluster, db, storage.url, { PGOPS_PG_BINDIR: slowBin, TMPDIR: jobTmp }));
    await waitForSession(cluster, `datname = '${target}' AND query ILIKE 'COPY%big%'`);
    cli.child.kill('SIGTERM');
    const r = out.cli(await cli.done);
    expect(r.signal, 'pgops handles SIGTERM and exits by itself').toBeNull();
    expect(r.code).not.toBe(0);
    expect(alertLines(r.stderr)).toHaveLength(1);
    expect(alertLines(r.stderr)[0]).toMatch(/^pgops: ALERT CRITICAL restore faults\/signals: .*(SIGTERM|interrupt|terminat)/i);
    expect(processesNamed('pg_restore', port())).toEqual([]);
    await waitForNoSession(cluster, `datname = '${target}'`, 20_000);
    expect(await databaseExists(cluster, target)).toBe(false);
    expect(pgopsTemp(jobTmp)).toEqual([]);
    expect(await listedIds(storage, db)).toEqual([goodId]);
  });

  it('SIGKILL: the target is never half-restored (absent, or complete)', async () => {
    const jobTmp = tempDir('pgops-fault-cli-tmp-');
    const target = 'signals_kill_copy';
    const cli = startCli(['restore', goodId, '--target-db', target, '--create'], cliEnv(cluster, db, storage.url, { PGOPS_PG_BINDIR: slowBin, TMPDIR: jobTmp }));
    await waitForSession(cluster, `datname = '${target}' AND query ILIKE 'COPY%big%'`);
    cli.child.kill('SIGKILL');
    out.cli(await cli.done);
    // Whatever outlives pgops finishes or dies; then the target is all or nothing.
    await waitFor('pg_restore to exit', () => processesNamed('pg_restore', port()).length === 0, 60_000, 100);
    await waitForNoSession(cluster, `datname = '${target}'`, 30_000);
    const exists = await databaseExists(cluster, target);
    const rows = exists ? await rowCount(cluster, target, 'big').catch(() => 0) : 0;
    console.log(`cli-signals: after SIGKILL mid-restore the target ${exists ? `exists with ${rows} rows` : 'does not exist'}; left in the temp dir: ${JSON.stringify(pgopsTemp(jobTmp))}`);
    expect([0, ROWS]).toContain(rows);
    expect(await listedIds(storage, db)).toEqual([goodId]);
    // Nothing blocks the retry: a database the killed restore left empty is reclaimed by the next
    // `restore --create` (its in-progress mark), and the retry restores every row.
    const retry = out.cli(await runCli(['restore', goodId, '--target-db', target, '--create', '--json'], cliEnv(cluster, db, storage.url, { TMPDIR: jobTmp })));
    if (rows === 0) {
      expect(retry.code, retry.stderr).toBe(0);
      expect(await rowCount(cluster, target, 'big')).toBe(ROWS);
    } else {
      // A complete restore whose mark was cleared is an ordinary existing database.
      expect(retry.code).toBe(1);
      expect(retry.stderr).toMatch(/already exists/);
    }
  });
});
