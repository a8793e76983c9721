// `wal status` on the archive a real cluster writes through `pgops wal push`, with base backups
// taken by the basebackup job: the window, and a missing segment named with how far recovery reaches.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { PhysicalManifest } from '../../../../../functions/core/catalog/physical.ts';
import { runBaseBackup } from '../../../../../functions/core/physical/basebackup.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import { readWalStatus } from '../../../../../functions/core/wal/status.ts';
import { archivingConf, sharedStorageDir } from '../../../../helpers/archiving.ts';
import { captured } from '../../../../helpers/output-scan.ts';
import { copyDatabase, removeWal, switchAndArchive } from '../../../../helpers/physical-manifests.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';

const DB_ID = 'walstatus';
const work = mkdtempSync(join(tmpdir(), 'pgops-walstatus-it-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const store = sharedStorageDir();
const storage = new FileStorage(pathToFileURL(store).href);
const cluster = useTestCluster({ conf: archivingConf(store, DB_ID) });
const out = captured(() => [cluster.pg.password]);

const baseBackup = (): Promise<PhysicalManifest> => runBaseBackup({
  target: cluster.target(), storage, logger: out.logger().logger, alerter: out.alerter(), databaseId: DB_ID, environment: 'test', binDir: cluster.pg.binDir, archivePollMs: 200,
});

describe('wal status on a real archive', () => {
  let first: PhysicalManifest;
  let between = '';

  it('one base backup and the WAL after it: whole, the window from the backup\'s end to the newest segment', async () => {
    // archive_command (the postgres user) creates the database's folder: a root-owned one made by the backup job would lock it out
    await switchAndArchive(cluster, storage, DB_ID);
    first = await baseBackup();
    between = await switchAndArchive(cluster, storage, DB_ID);
    const newest = await switchAndArchive(cluster, storage, DB_ID);
    const r = await readWalStatus({ storage, databaseId: DB_ID, logger: out.logger().logger });
    out.add('status', r);
    expect(r.ok).toBe(true);
    expect(r.problems).toEqual([]);
    expect(r.timelines).toEqual([{ timeline: 1, firstSegment: expect.any(String), lastSegment: newest, gaps: [] }]);
    expect(r.backups).toEqual([expect.objectContaining({ id: first.id, startSegment: first.startSegment, stopSegment: first.stopSegment, timeline: 1, recoverable: true, consistent: true })]);
    expect(r.window.from).toEqual({ backupId: first.id, lsn: first.stopLsn, segment: first.stopSegment, time: new Date(first.stoppedAt).toISOString() });
    expect(r.window.to).toMatchObject({ segment: newest, time: expect.any(String) });
  });

  it('a segment lost after the first backup, and a second backup past it: the gap named, the window from the second', async () => {
    const second = await baseBackup();
    await switchAndArchive(cluster, storage, DB_ID);
    const scratch = new FileStorage(pathToFileURL(mkdtempSync(join(work, 'gap-'))).href);
    await copyDatabase(storage, scratch, DB_ID);
    await removeWal(scratch, DB_ID, between);
    const r = await readWalStatus({ storage: scratch, databaseId: DB_ID });
    out.add('status', r);
    expect(r.ok).toBe(false);
    expect(r.gaps).toEqual([{ first: between, last: between, segments: 1, cutsOff: [first.id] }]);
    expect(r.problems).toEqual([expect.stringMatching(new RegExp(`^gap: ${between} is missing; recovery from backup ${first.id} can reach .* at most; from the end of backup ${second.id} \\(.*\\) on the archive is whole again`))]);
    expect(r.backups.map((b) => [b.id, b.recoverable])).toEqual([[second.id, true], [first.id, false]]);
    expect(r.window.from?.backupId).toBe(second.id);
    // The archive itself is whole.
    expect((await readWalStatus({ storage, databaseId: DB_ID })).ok).toBe(true);
  });
});
