// Fault: pg_restore's server session is terminated while it loads a table. pgops promises: the
// restore fails (one critical alert naming pg_restore), the target is never half-restored (a
// database it created is dropped again), its temporary files are gone, and the backup it read
// stays listed and verifies.
import { readdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../functions/core/backup/backup.ts';
import { runRestore } from '../../../functions/core/backup/restore.ts';
import { verifyBackup } from '../../../functions/core/backup/verify.ts';
import { exitCodeOf, PgopsError } from '../../../functions/core/errors.ts';
import { freshStorage } from '../../helpers/backup-fixtures.ts';
import { backupJobDeps, databaseExists, fillTable, leftovers, listedIds, slowToolsDir, terminate, useTempDirs, waitForNoSession, waitForSession } from '../../helpers/faults.ts';
import { captured } from '../../helpers/output-scan.ts';
import { useTestCluster } from '../../helpers/postgres.ts';

const cluster = useTestCluster();
const out = captured(() => [cluster.pg.password]);
const tempDir = useTempDirs();
const { storage, dir } = freshStorage();
let db = '';
let goodId = '';

beforeAll(async () => {
  db = await cluster.createDatabase('killed_restore');
  await fillTable(cluster, db, 'big', 100_000);
  const { deps } = backupJobDeps(cluster, storage, db, out);
  goodId = (await runBackup(deps)).id;
});

describe('connection killed mid-restore', () => {
  it('fails with one alert naming pg_restore; the created target is dropped again; no temp files; the backup stays good', async () => {
    // pg_restore's input slowed to 1 MB/s: it is still loading when we kill its session.
    const binDir = slowToolsDir(tempDir(), cluster.pg.binDir, 1_000_000);
    const jobTmp = tempDir('pgops-fault-restore-tmp-');
    const { deps, alerter } = backupJobDeps(cluster, storage, db, out, { binDir, tmpDir: jobTmp });
    const target = 'killed_restore_copy';
    const job = runRestore(deps, goodId, { targetDb: target, create: true }).then(() => undefined, (e: unknown) => out.error(e));
    const pid = await waitForSession(cluster, `datname = '${target}' AND query ILIKE 'COPY%big%'`);
    await terminate(cluster, pid);

    const err = await job;
    expect(err).toBeInstanceOf(PgopsError);
    expect(exitCodeOf(err)).toBe(1);
    expect((err as Error).message).toMatch(/pg_restore/);
    expect(alerter.sent).toHaveLength(1);
    expect(alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'restore', database: db });
    expect(alerter.sent[0]!.summary).toMatch(/pg_restore/);

    await waitForNoSession(cluster, `datname = '${target}'`);
    expect(await databaseExists(cluster, target)).toBe(false);
    expect(readdirSync(jobTmp)).toEqual([]);
    expect(await listedIds(storage, db)).toEqual([goodId]);
    expect(leftovers(dir)).toEqual([]);
    const verify = backupJobDeps(cluster, storage, db, out);
    expect(await verifyBackup(verify.deps, goodId)).toMatchObject({ ok: true });
  });

  it('into an existing empty database: the single transaction rolls back, the target stays empty', async () => {
    const binDir = slowToolsDir(tempDir(), cluster.pg.binDir, 1_000_000);
    const jobTmp = tempDir('pgops-fault-restore-tmp-');
    const target = await cluster.createDatabase('killed_restore_existing');
    const { deps, alerter } = backupJobDeps(cluster, storage, db, out, { binDir, tmpDir: jobTmp });
    const job = runRestore(deps, goodId, { targetDb: target }).then(() => undefined, (e: unknown) => out.error(e));
    const pid = await waitForSession(cluster, `datname = '${target}' AND query ILIKE 'COPY%big%'`);
    await terminate(cluster, pid);

    const err = await job;
    expect(err).toBeInstanceOf(PgopsError);
    expect(alerter.sent).toHaveLength(1);
    const tables = await cluster.query(`SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'`, [], target);
    expect(tables.rowCount).toBe(0);
    expect(readdirSync(jobTmp)).toEqual([]);
  });
});
