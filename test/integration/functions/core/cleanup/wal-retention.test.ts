// The cleanup job's base backup and WAL retention on the archive a real cluster writes through
// `pgops wal push` (local storage): a dry run plans and deletes nothing; the run deletes the older
// base backup and exactly the WAL before the kept one's start, and recovery's WAL still fetches.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runCleanup, type CleanupDeps } from '../../../../../functions/core/cleanup/job.ts';
import type { PhysicalManifest } from '../../../../../functions/core/catalog/physical.ts';
import { defaultFileConfig } from '../../../../../functions/core/config.ts';
import { DEFAULT_SESSION } from '../../../../../functions/core/db.ts';
import { runBaseBackup } from '../../../../../functions/core/physical/basebackup.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import { fetchWal } from '../../../../../functions/core/wal/archive.ts';
import { readWalInventory } from '../../../../../functions/core/wal/inventory.ts';
import { parseSegmentFileName } from '../../../../../functions/core/wal/lsn.ts';
import { readWalStatus } from '../../../../../functions/core/wal/status.ts';
import { archivingConf, sharedStorageDir } from '../../../../helpers/archiving.ts';
import { captured } from '../../../../helpers/output-scan.ts';
import { switchAndArchive } from '../../../../helpers/physical-manifests.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';

const DB_ID = 'walret';
const work = mkdtempSync(join(tmpdir(), 'pgops-walret-it-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const store = sharedStorageDir();
const storage = new FileStorage(pathToFileURL(store).href);
const cluster = useTestCluster({ conf: archivingConf(store, DB_ID) });
const out = captured(() => [cluster.pg.password]);

function deps(): CleanupDeps {
  return {
    target: cluster.target(), session: DEFAULT_SESSION, logger: out.logger().logger, alerter: out.alerter(), databaseId: DB_ID, environment: 'test',
    config: defaultFileConfig({ retention: { keepLast: 1, keepDaily: 0, keepWeekly: 0, keepMonthly: 0 } }), storage, tmpDir: work,
  };
}

const baseBackup = (): Promise<PhysicalManifest> => runBaseBackup({
  target: cluster.target(), storage, logger: out.logger().logger, alerter: out.alerter(), databaseId: DB_ID, environment: 'test', binDir: cluster.pg.binDir, archivePollMs: 200,
});
const segno = (name: string) => parseSegmentFileName(name.slice(0, 24))!.segno;
const keys = async () => (await storage.list(`${DB_ID}/`)).map((o) => o.key);

describe('cleanup: base backups and the WAL archive', () => {
  it('keepLast 1: the dry run plans, the run deletes the older base backup and exactly the WAL before the kept one\'s start', async () => {
    // archive_command (the postgres user) creates the database's folder: a root-owned one made by the backup job would lock it out
    await switchAndArchive(cluster, storage, DB_ID);
    const older = await baseBackup();
    await switchAndArchive(cluster, storage, DB_ID);
    await switchAndArchive(cluster, storage, DB_ID);
    const kept = await baseBackup();
    await switchAndArchive(cluster, storage, DB_ID);
    const before = await readWalInventory(storage, DB_ID);
    const expectedGone = before.files.filter((f) => f.segno !== undefined && f.segno < segno(kept.startSegment));
    expect(expectedGone.length).toBeGreaterThan(0);

    const listed = await keys();
    const dry = await runCleanup(deps(), { dryRun: true });
    out.add('dry run', dry);
    expect(await keys()).toEqual(listed);
    expect(dry.physical).toMatchObject({ kept: [kept.id], deleted: [older.id] });
    expect(dry.wal).toMatchObject({ deleted: expectedGone.length, keptFrom: kept.startSegment });

    const run = await runCleanup(deps());
    out.add('run', run);
    expect({ physical: run.physical, wal: run.wal }).toEqual({ physical: dry.physical, wal: dry.wal });
    const after = await readWalInventory(storage, DB_ID);
    expect(after.files.filter((f) => f.segno !== undefined).every((f) => f.segno! >= segno(kept.startSegment))).toBe(true);
    expect(after.files.map((f) => f.name).sort()).toEqual(before.files.filter((f) => !expectedGone.includes(f)).map((f) => f.name).sort());
    expect(after.uncommitted).toEqual([]);
    expect((await keys()).some((k) => k.includes(older.id))).toBe(false);

    // What recovery from the kept backup reads is all there, and verifies.
    const status = await readWalStatus({ storage, databaseId: DB_ID });
    out.add('status', status);
    expect(status).toMatchObject({ ok: true, window: { from: { backupId: kept.id } } });
    const reporting = { alerter: out.alerter(), logger: out.logger().logger, databaseId: DB_ID, environment: 'test' };
    for (const f of after.files.filter((x) => x.kind === 'segment')) {
      expect((await fetchWal({ storage, databaseId: DB_ID, reporting }, f.name, join(work, 'fetched'))).status).toBe('restored');
    }

    const again = await runCleanup(deps());
    out.add('again', again);
    expect(again.wal).toMatchObject({ deleted: 0, keptFrom: kept.startSegment });
    expect(again.physical.deleted).toEqual([]);
  });
});
