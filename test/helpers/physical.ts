// Base backups for the PITR tests, taken by the real base backup job (`pgops basebackup`:
// pg_basebackup -Ft -D - -X none, its WAL waited for in the archive, the manifest written last).
import { chownSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryAlerter } from '../../functions/core/alerts/alerter.ts';
import type { PhysicalManifest } from '../../functions/core/catalog/physical.ts';
import { walChecksumKey, walFileKey } from '../../functions/core/catalog/layout.ts';
import { silentLogger, type Logger } from '../../functions/core/logger.ts';
import { runBaseBackup } from '../../functions/core/physical/basebackup.ts';
import type { Storage } from '../../functions/core/storage/types.ts';
import { waitFor } from './cli.ts';
import type { TestCluster } from './postgres.ts';

/**
 * Create `<storeDir>/<databaseId>/wal` owned like `storeDir` (the postgres user, sharedStorageDir):
 * a folder root creates first (a base backup's) would otherwise keep archive_command out of it.
 */
export function prepareArchiveFolder(storeDir: string, databaseId: string): void {
  const owner = statSync(storeDir);
  const db = join(storeDir, databaseId);
  for (const dir of [db, join(db, 'wal')]) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chownSync(dir, owner.uid, owner.gid);
  }
}

/** Wait until `name` is archived (its checksum object, the push's commit point, exists). */
export async function waitArchived(storage: Storage, databaseId: string, name: string, timeoutMs = 60_000): Promise<void> {
  const key = walChecksumKey(walFileKey(databaseId, name, name.endsWith('.history') ? 'none' : 'gz'));
  await waitFor(`${name} to be archived`, async () => (await storage.getBytes(key)) !== undefined, timeoutMs);
}

/** Take a base backup of `cluster` into `storage` under `databaseId`; returns its manifest once its WAL is archived. */
export async function takeBaseBackup(cluster: TestCluster, storage: Storage, databaseId: string, logger: Logger = silentLogger): Promise<PhysicalManifest> {
  return runBaseBackup({
    target: cluster.target('postgres'), storage, logger, alerter: new MemoryAlerter(), databaseId, environment: 'test',
    binDir: cluster.pg.binDir, archivePollMs: 200,
  });
}
