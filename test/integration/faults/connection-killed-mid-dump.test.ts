// Fault: pg_dump's server session is terminated while it streams a table. pgops promises: the
// backup fails (one critical alert naming pg_dump), nothing is listed, the earlier good backup
// stays listed and verifies, and nothing is left in storage once cleanup has run.
import { beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../functions/core/backup/backup.ts';
import { verifyBackup } from '../../../functions/core/backup/verify.ts';
import { runCleanup } from '../../../functions/core/cleanup/job.ts';
import { exitCodeOf, PgopsError } from '../../../functions/core/errors.ts';
import { freshStorage } from '../../helpers/backup-fixtures.ts';
import { aDayLater, backupJobDeps, cleanupJobDeps, fillTable, leftovers, listedIds, slowToolsDir, terminate, useTempDirs, waitForNoSession, waitForSession } from '../../helpers/faults.ts';
import { captured } from '../../helpers/output-scan.ts';
import { useTestCluster } from '../../helpers/postgres.ts';

const cluster = useTestCluster();
const out = captured(() => [cluster.pg.password]);
const tempDir = useTempDirs();
const { storage, dir } = freshStorage();
let db = '';
let goodId = '';

beforeAll(async () => {
  db = await cluster.createDatabase('killed_dump');
  await fillTable(cluster, db, 'big', 100_000);
  const { deps } = backupJobDeps(cluster, storage, db, out);
  goodId = (await runBackup(deps)).id;
});

describe('connection killed mid-dump', () => {
  it('fails with one alert naming pg_dump; lists nothing new; keeps the good backup; leaves nothing after cleanup', async () => {
    // pg_dump's output slowed to 1 MB/s: it is still copying when we kill its session.
    const binDir = slowToolsDir(tempDir(), cluster.pg.binDir, 1_000_000);
    const { deps, alerter } = backupJobDeps(cluster, storage, db, out, { binDir });
    const job = runBackup(deps).then(() => undefined, (e: unknown) => out.error(e));
    const pid = await waitForSession(cluster, `application_name = 'pgops-backup' AND query ILIKE 'COPY%big%'`);
    await terminate(cluster, pid);

    const err = await job;
    expect(err).toBeInstanceOf(PgopsError);
    expect(exitCodeOf(err)).toBe(1);
    expect((err as Error).message).toMatch(/pg_dump/);
    expect(alerter.sent).toHaveLength(1);
    expect(alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'backup', database: db });
    expect(alerter.sent[0]!.summary).toMatch(/pg_dump/);

    expect(await listedIds(storage, db)).toEqual([goodId]);
    expect(leftovers(dir)).toEqual([]);
    await waitForNoSession(cluster, `application_name LIKE 'pgops-backup%'`);

    const verify = backupJobDeps(cluster, storage, db, out);
    expect(await verifyBackup(verify.deps, goodId)).toMatchObject({ ok: true, sha256Ok: true, archiveReadable: true });
    const cleanup = cleanupJobDeps(cluster, storage, db, out, { clock: aDayLater });
    const result = await runCleanup(cleanup.deps);
    expect(result.backups.deleted).toEqual([]);
    expect(await listedIds(storage, db)).toEqual([goodId]);
    expect(leftovers(dir)).toEqual([]);
    expect(verify.alerter.sent).toEqual([]);
    expect(cleanup.alerter.sent).toEqual([]);
  });
});
