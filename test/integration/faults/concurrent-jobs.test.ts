// Fault: jobs of one database at once. pgops promises: of two backups one wins and the other fails
// with the lock error at warning level; cleanup running beside a backup never deletes the
// in-progress backup's files (younger than a day); of two restores into one database one refuses
// (the restore lock), and the target is never half-restored.
import { readdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../functions/core/backup/backup.ts';
import { BackupLockedError, RestoreRefusedError } from '../../../functions/core/backup/errors.ts';
import { runRestore } from '../../../functions/core/backup/restore.ts';
import { verifyBackup } from '../../../functions/core/backup/verify.ts';
import { runCleanup } from '../../../functions/core/cleanup/job.ts';
import { defaultFileConfig } from '../../../functions/core/config.ts';
import { PgopsError } from '../../../functions/core/errors.ts';
import { freshStorage } from '../../helpers/backup-fixtures.ts';
import { backupJobDeps, cleanupJobDeps, fillTable, leftovers, listedIds, rowCount, slowToolsDir, useTempDirs, waitFor, waitForSession } from '../../helpers/faults.ts';
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
  db = await cluster.createDatabase('concurrent');
  await fillTable(cluster, db, 'big', ROWS);
  goodId = (await runBackup(backupJobDeps(cluster, storage, db, out).deps)).id;
  slowBin = slowToolsDir(tempDir(), cluster.pg.binDir, 2_000_000);
});

describe('two backups of one database at once', () => {
  it('one wins; the other fails with the lock error at warning, naming the holder', async () => {
    const a = backupJobDeps(cluster, storage, db, out, { binDir: slowBin });
    const b = backupJobDeps(cluster, storage, db, out, { binDir: slowBin });
    const first = runBackup(a.deps);
    await waitForSession(cluster, `application_name = 'pgops-backup' AND query ILIKE 'COPY%big%'`);
    const second = await runBackup(b.deps).then(() => undefined, (e: unknown) => out.error(e));
    const won = await first;
    expect(second).toBeInstanceOf(BackupLockedError);
    expect((second as Error).message).toMatch(/another backup of database "concurrent" is already running/);
    expect(b.alerter.sent).toHaveLength(1);
    expect(b.alerter.sent[0]).toMatchObject({ severity: 'warning', job: 'backup' });
    expect(a.alerter.sent).toEqual([]);
    expect(await listedIds(storage, db)).toEqual([won.id, goodId]);
    expect(leftovers(dir)).toEqual([]);
  });
});

describe('backup and cleanup at once', () => {
  it('cleanup (keepLast 1) never deletes the in-progress backup\'s files; the backup completes and verifies', async () => {
    const before = await listedIds(storage, db);
    const backup = backupJobDeps(cluster, storage, db, out, { binDir: slowBin });
    const job = runBackup(backup.deps);
    await waitForSession(cluster, `application_name = 'pgops-backup' AND query ILIKE 'COPY%big%'`);
    await waitFor('the dump to reach storage', () => readdirSync(dir, { recursive: true }).some((f) => /\.pgops-tmp-|\/dump$/.test(String(f))));
    const config = defaultFileConfig({ retention: { keepLast: 1, keepDaily: 0, keepWeekly: 0, keepMonthly: 0 } });
    const cleanup = cleanupJobDeps(cluster, storage, db, out, { config });
    const result = await runCleanup(cleanup.deps);
    // Retention saw only the finished backups; the newest of them is kept.
    expect(result.backups.kept).toEqual([before[0]]);
    const manifest = await job;
    expect(backup.alerter.sent).toEqual([]);
    expect(await listedIds(storage, db)).toEqual([manifest.id, before[0]]);
    expect(await verifyBackup(backupJobDeps(cluster, storage, db, out).deps, manifest.id)).toMatchObject({ ok: true, sha256Ok: true });
    expect(cleanup.alerter.sent).toEqual([]);
  });
});

describe('two restores into one database at once', () => {
  it('one refuses or fails cleanly; the target is complete, never half-restored or doubled', async () => {
    const [id] = await listedIds(storage, db);
    const target = await cluster.createDatabase('concurrent_target');
    const a = backupJobDeps(cluster, storage, db, out, { binDir: slowBin, tmpDir: tempDir() });
    const b = backupJobDeps(cluster, storage, db, out, { binDir: slowBin, tmpDir: tempDir() });
    const results = await Promise.allSettled([runRestore(a.deps, id!, { targetDb: target }), runRestore(b.deps, id!, { targetDb: target })]);
    for (const r of results) if (r.status === 'rejected') out.error(r.reason);
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed).toHaveLength(1);
    expect((failed[0] as PromiseRejectedResult).reason).toBeInstanceOf(PgopsError);
    console.log(`concurrent-jobs: the second restore: ${((failed[0] as PromiseRejectedResult).reason as Error).message.slice(0, 200)}`);
    // The second is refused up front, an answer that pages nobody: by the restore lock while the first
    // runs, or (should the first already have finished) because the target is no longer empty.
    const reason = (failed[0] as PromiseRejectedResult).reason as Error;
    expect(reason).toBeInstanceOf(RestoreRefusedError);
    expect(reason.message).toMatch(/another restore into database "concurrent_target" is running|is not empty/);
    expect(a.alerter.sent.length + b.alerter.sent.length).toBe(0);
    expect(await rowCount(cluster, target, 'big')).toBe(ROWS);
  });
});
