// Fault: PostgreSQL restarts (pg_ctl restart -m fast) while a backup streams. pgops promises: the
// backup fails (one critical alert naming the cause), nothing is listed, the earlier good backup
// stays listed and verifies once the server is back, and nothing is left after cleanup.
import { beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../functions/core/backup/backup.ts';
import { verifyBackup } from '../../../functions/core/backup/verify.ts';
import { runCleanup } from '../../../functions/core/cleanup/job.ts';
import { exitCodeOf, PgopsError } from '../../../functions/core/errors.ts';
import { freshStorage } from '../../helpers/backup-fixtures.ts';
import { aDayLater, backupJobDeps, cleanupJobDeps, fillTable, leftovers, listedIds, pgCtl, slowToolsDir, useTempDirs, waitFor, waitForSession } from '../../helpers/faults.ts';
import { captured } from '../../helpers/output-scan.ts';
import { useTestCluster } from '../../helpers/postgres.ts';

const cluster = useTestCluster();
const out = captured(() => [cluster.pg.password]);
const tempDir = useTempDirs();
const { storage, dir } = freshStorage();
let db = '';
let goodId = '';

beforeAll(async () => {
  db = await cluster.createDatabase('restarted');
  await fillTable(cluster, db, 'big', 100_000);
  goodId = (await runBackup(backupJobDeps(cluster, storage, db, out).deps)).id;
});

describe('PostgreSQL restarted mid-job', () => {
  it('a backup fails with one alert; lists nothing new; the good backup survives and verifies; cleanup leaves nothing', async () => {
    const binDir = slowToolsDir(tempDir(), cluster.pg.binDir, 1_000_000);
    const { deps, alerter } = backupJobDeps(cluster, storage, db, out, { binDir });
    const job = runBackup(deps).then(() => undefined, (e: unknown) => out.error(e));
    await waitForSession(cluster, `application_name = 'pgops-backup' AND query ILIKE 'COPY%big%'`);
    const restart = await pgCtl(cluster, ['restart', '-m', 'fast', '-w', '-t', '120']);
    expect(restart.status, restart.output).toBe(0);

    const err = await job;
    expect(err).toBeInstanceOf(PgopsError);
    expect(exitCodeOf(err)).toBe(1);
    expect(alerter.sent).toHaveLength(1);
    expect(alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'backup', database: db });
    expect(alerter.sent[0]!.summary).toMatch(/pg_dump|terminat|connection|shut ?down/i);

    // The server is back: the catalog lists only the good backup, which still verifies.
    await waitFor('the server to accept connections', async () => (await cluster.query('SELECT 1').then(() => true, () => false)));
    expect(await listedIds(storage, db)).toEqual([goodId]);
    expect(leftovers(dir)).toEqual([]);
    const verify = backupJobDeps(cluster, storage, db, out);
    expect(await verifyBackup(verify.deps, goodId, { restoreTest: true })).toMatchObject({ ok: true });
    const cleanup = cleanupJobDeps(cluster, storage, db, out, { clock: aDayLater });
    await runCleanup(cleanup.deps);
    expect(await listedIds(storage, db)).toEqual([goodId]);
    expect(leftovers(dir)).toEqual([]);
    expect(cleanup.alerter.sent).toEqual([]);
  });
});
