// The backups in a storage: read from manifests only (a dump without its manifest is an
// unfinished or failed backup, never a backup).
import { UsageError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Storage } from '../storage/types.ts';
import { BackupNotFoundError } from '../backup/errors.ts';
import { backupKeys, isBackupId, logicalPrefix } from './layout.ts';
import { parseManifest, type BackupManifest } from './manifest.ts';

async function readManifest(storage: Storage, key: string, logger?: Logger): Promise<BackupManifest | undefined> {
  const raw = await storage.getBytes(key);
  if (raw === undefined) return undefined;
  const parsed = parseManifest(raw.toString('utf8'));
  if ('manifest' in parsed) return parsed.manifest;
  logger?.warn(`ignoring invalid manifest ${key}`, { problem: parsed.problem.slice(0, 300) });
  return undefined;
}

/** Every backup of `databaseId`, newest first. */
export async function listBackups(storage: Storage, databaseId: string, logger?: Logger): Promise<BackupManifest[]> {
  const prefix = logicalPrefix(databaseId);
  const keys = (await storage.list(prefix))
    .map((o) => o.key)
    .filter((k) => {
      const rest = k.slice(prefix.length).split('/');
      return rest.length === 2 && rest[1] === 'manifest.json' && isBackupId(rest[0]!);
    });
  const out: BackupManifest[] = [];
  // A few at a time: fast on S3 without opening hundreds of requests at once.
  for (let i = 0; i < keys.length; i += 8) {
    const batch = await Promise.all(keys.slice(i, i + 8).map((k) => readManifest(storage, k, logger)));
    for (const m of batch) if (m) out.push(m);
  }
  return out.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

/** `latest` or a backup id -> its manifest; a clear exit-1 error when there is none. */
export async function resolveBackup(storage: Storage, databaseId: string, ref: string, logger?: Logger): Promise<BackupManifest> {
  if (ref === 'latest') {
    const all = await listBackups(storage, databaseId, logger);
    const latest = all[0];
    if (!latest) throw new BackupNotFoundError(`no backup of database "${databaseId}" in ${storage.url}`);
    return latest;
  }
  if (!isBackupId(ref)) throw new UsageError(`"${ref}" is not a backup id (like 20261122T020000Z-3fa2) or "latest"`);
  const m = await readManifest(storage, backupKeys(databaseId, ref).manifest, logger);
  if (!m) throw new BackupNotFoundError(`backup ${ref} of database "${databaseId}" not found in ${storage.url} (pgops backups list shows what exists)`);
  return m;
}
