// Fault: the disk holding the restore's temporary dump fills up (a 1 MiB tmpfs; we run as root).
// Only --table and --jobs need that file (pg_restore seeks in it); a whole restore streams.
// pgops promises: the restore fails naming the cause (one critical alert) before it touches the
// target (no database created), its partial temporary file is removed, and the backup stays
// listed and verifies; the same restore without --jobs needs no temporary space at all.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../functions/core/backup/backup.ts';
import { runRestore } from '../../../functions/core/backup/restore.ts';
import { verifyBackup } from '../../../functions/core/backup/verify.ts';
import { exitCodeOf, PgopsError } from '../../../functions/core/errors.ts';
import { freshStorage } from '../../helpers/backup-fixtures.ts';
import { backupJobDeps, databaseExists, fillTable, listedIds, useTempDirs } from '../../helpers/faults.ts';
import { captured } from '../../helpers/output-scan.ts';
import { useTestCluster } from '../../helpers/postgres.ts';

const cluster = useTestCluster();
const out = captured(() => [cluster.pg.password]);
const tempDir = useTempDirs();
const { storage } = freshStorage();
let db = '';
let goodId = '';
let small = '';
let mounted = false;

beforeAll(async () => {
  db = await cluster.createDatabase('disk_full');
  await fillTable(cluster, db, 'big', 50_000);
  const good = await runBackup(backupJobDeps(cluster, storage, db, out).deps);
  goodId = good.id;
  expect(good.bytes).toBeGreaterThan(1024 * 1024);
  small = tempDir('pgops-fault-tmpfs-');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small], { encoding: 'utf8' });
  mounted = r.status === 0;
  if (!mounted) console.log(`disk-full: could not mount a tmpfs (${r.stderr.trim()}): the test is skipped`);
});
afterAll(() => {
  if (mounted) spawnSync('umount', [small]);
});

describe('disk full for the restore temp file (--jobs)', () => {
  it('fails naming the cause with one alert, creates nothing, removes its partial temp file; the backup stays good', async (ctx) => {
    if (!mounted) ctx.skip();
    const { deps, alerter } = backupJobDeps(cluster, storage, db, out, { tmpDir: small });
    const target = 'disk_full_copy';
    const err = await runRestore(deps, goodId, { targetDb: target, create: true, jobs: 2 }).then(() => undefined, (e: unknown) => out.error(e));
    expect(err).toBeInstanceOf(PgopsError);
    expect(exitCodeOf(err)).toBe(1);
    expect((err as Error).message).toMatch(/ENOSPC|no space/i);
    expect(alerter.sent).toHaveLength(1);
    expect(alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'restore' });
    expect(alerter.sent[0]!.summary).toMatch(/ENOSPC|no space/i);
    expect(await databaseExists(cluster, target)).toBe(false);
    expect(readdirSync(small)).toEqual([]);
    expect(await listedIds(storage, db)).toEqual([goodId]);
    expect(await verifyBackup(backupJobDeps(cluster, storage, db, out).deps, goodId)).toMatchObject({ ok: true });

    // Streamed from storage into pg_restore, the whole restore fits the same full disk.
    const streamed = await runRestore(backupJobDeps(cluster, storage, db, out, { tmpDir: small }).deps, goodId, { targetDb: target, create: true });
    expect(streamed).toMatchObject({ created: true, dryRun: false });
    expect((await cluster.query('SELECT count(*)::int AS n FROM big', [], target)).rows[0]).toEqual({ n: 50_000 });
    expect(readdirSync(small)).toEqual([]);
  });
});
