// Backups written into storage the way the backup and verify jobs write them: a dump, a manifest
// that passes the catalog's schema, and optionally a restore-test record. Keys come from layout.ts.
import { backupIdTime, backupKeys, newBackupId } from '../../functions/core/catalog/layout.ts';
import { contentOfOptions, type BackupManifest, type NormalizedBackupOptions } from '../../functions/core/catalog/manifest.ts';
import type { Storage } from '../../functions/core/storage/types.ts';

export const FULL_OPTIONS: NormalizedBackupOptions = { schemaOnly: false, dataOnly: false, tables: [], excludeTables: [], jobs: 1 };

/**
 * A manifest the catalog accepts, for backup `id` of `database`; completedAt defaults to the time in
 * the id, kind to what the options make it (as the backup job writes it).
 */
export function validManifest(database: string, id: string, overrides: Partial<BackupManifest> = {}): BackupManifest {
  const completedAt = overrides.completedAt ?? (backupIdTime(id) ?? new Date(0)).toISOString();
  return {
    id,
    database,
    sourceDatabase: database,
    kind: contentOfOptions(overrides.options ?? FULL_OPTIONS),
    format: 'custom',
    startedAt: new Date(Date.parse(completedAt) - 60_000).toISOString(),
    completedAt,
    durationMs: 60_000,
    bytes: 16,
    sha256: 'a'.repeat(64),
    serverVersion: '15.10',
    pgDumpVersion: '15.10',
    options: FULL_OPTIONS,
    migration: null,
    key: backupKeys(database, id).dump,
    tables: [],
    ...overrides,
  };
}

export interface FixtureBackup {
  /** Default: a new id at completedAt (or now). */
  id?: string;
  completedAt?: Date;
  bytes?: number;
  options?: Partial<NormalizedBackupOptions>;
  /** Default: what the options make it; `logical` writes a manifest of the format before kinds. */
  kind?: BackupManifest['kind'];
  /** The dump's content; default `bytes` zero bytes (at most 16). */
  dump?: string | Buffer;
  restoreTest?: { ok: boolean; checkedAt: Date; error?: string };
}

/** Write a whole backup (dump, then manifest last, then its restore test if any); returns its id. */
export async function putBackup(storage: Storage, database: string, backup: FixtureBackup = {}): Promise<string> {
  const id = backup.id ?? newBackupId(backup.completedAt ?? new Date());
  const keys = backupKeys(database, id);
  const manifest = validManifest(database, id, {
    ...(backup.completedAt ? { completedAt: backup.completedAt.toISOString() } : {}),
    ...(backup.bytes !== undefined ? { bytes: backup.bytes } : {}),
    options: { ...FULL_OPTIONS, ...backup.options },
    ...(backup.kind !== undefined ? { kind: backup.kind } : {}),
  });
  await storage.putBytes(keys.dump, backup.dump ?? Buffer.alloc(Math.min(manifest.bytes, 16)));
  await storage.putBytes(keys.manifest, JSON.stringify(manifest));
  if (backup.restoreTest) {
    const { ok, checkedAt, error } = backup.restoreTest;
    await storage.putBytes(keys.restoreTest, JSON.stringify({ ok, backupId: id, checkedAt: checkedAt.toISOString(), ...(error ? { error } : {}) }));
  }
  return id;
}
