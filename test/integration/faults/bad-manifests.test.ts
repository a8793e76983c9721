// Fault: the newest manifest in storage is invalid (fails the schema), truncated (cut JSON), or
// from a future format (an unknown kind, formatVersion 2). pgops promises: it is listed as invalid,
// never as a backup; it is never deleted; it never protects itself (with keepLast 1 the valid
// older backup is kept); `restore latest` ignores it and restores the valid one.
import { beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../functions/core/backup/backup.ts';
import { runRestore } from '../../../functions/core/backup/restore.ts';
import { scanBackups } from '../../../functions/core/catalog/catalog.ts';
import { backupKeys, newBackupId } from '../../../functions/core/catalog/layout.ts';
import { runCleanup } from '../../../functions/core/cleanup/job.ts';
import { defaultFileConfig } from '../../../functions/core/config.ts';
import { freshStorage } from '../../helpers/backup-fixtures.ts';
import { runCli } from '../../helpers/cli.ts';
import { backupJobDeps, cleanupJobDeps, cliEnv, listedIds, rowCount } from '../../helpers/faults.ts';
import { validManifest } from '../../helpers/manifests.ts';
import { captured } from '../../helpers/output-scan.ts';
import { useTestCluster } from '../../helpers/postgres.ts';

const cluster = useTestCluster();
const out = captured(() => [cluster.pg.password]);
const { storage } = freshStorage();
let db = '';

beforeAll(async () => {
  db = await cluster.createDatabase('bad_manifests');
  await cluster.query('CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 250)', [], db);
});

const VARIANTS: Array<[string, (id: string, database: string) => string]> = [
  ['invalid (schema)', (id, database) => JSON.stringify({ ...validManifest(database, id), bytes: 'lots', sha256: 'not-a-hash' })],
  ['truncated (cut JSON)', (id, database) => JSON.stringify(validManifest(database, id), null, 2).slice(0, 200)],
  ['future format: unknown kind', (id, database) => JSON.stringify({ ...validManifest(database, id), kind: 'incremental' })],
  ['future format: formatVersion 2', (id, database) => JSON.stringify({ ...validManifest(database, id), formatVersion: 2 })],
];

describe('manifest invalid, truncated, or from a future format', () => {
  it.each(VARIANTS)('%s: listed as invalid, never deleted, never protects itself; restore latest ignores it', async (variant, manifestText) => {
    const databaseId = `bad_${VARIANTS.findIndex(([v]) => v === variant)}`;
    const good = await runBackup(backupJobDeps(cluster, storage, db, out, { databaseId }).deps);
    // A newer folder: a dump and the bad manifest.
    const badId = newBackupId(new Date(Date.now() + 60_000));
    const keys = backupKeys(databaseId, badId);
    await storage.putBytes(keys.dump, Buffer.alloc(64));
    await storage.putBytes(keys.manifest, manifestText(badId, databaseId));

    const scan = await scanBackups(storage, databaseId);
    expect(scan.backups.map((b) => b.id)).toEqual([good.id]);
    expect(scan.invalid.map((b) => b.id)).toEqual([badId]);

    const list = out.cli(await runCli(['backups', 'list', '--json'], cliEnv(cluster, db, storage.url, { PGOPS_DATABASE_ID: databaseId })));
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as Array<{ id: string }>).map((m) => m.id)).toEqual([good.id]);
    expect(list.stderr, 'backups list reports the invalid manifest').toContain(badId);

    const config = defaultFileConfig({ retention: { keepLast: 1, keepDaily: 0, keepWeekly: 0, keepMonthly: 0 } });
    const cleanup = cleanupJobDeps(cluster, storage, db, out, { databaseId, config });
    const result = await runCleanup(cleanup.deps);
    expect(result.backups.kept).toEqual([good.id]);
    expect(result.backups.deleted).toEqual([]);
    expect(await listedIds(storage, databaseId)).toEqual([good.id]);
    expect(await storage.getBytes(keys.manifest)).toBeDefined();
    expect(await storage.getBytes(keys.dump)).toBeDefined();

    const target = `${databaseId}_restored`;
    const restore = backupJobDeps(cluster, storage, db, out, { databaseId });
    const restored = await runRestore(restore.deps, 'latest', { targetDb: target, create: true });
    expect(restored.backupId).toBe(good.id);
    expect(await rowCount(cluster, target, 't')).toBe(250);
    expect(restore.alerter.sent).toEqual([]);
  });
});
