// Shared by the health integration tests: local storage, backup manifests and restore-test records
// written the way the backup jobs write them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll } from 'vitest';
import { newBackupId } from '../../functions/core/catalog/layout.ts';
import { FileStorage } from '../../functions/core/storage/file.ts';

export function useTempDirs(): (prefix?: string) => string {
  const dirs: string[] = [];
  afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
  return (prefix = 'pgops-health-') => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
}

export function fileStorage(dir: string): FileStorage {
  return new FileStorage(pathToFileURL(dir).href);
}

export async function writeBackup(storage: FileStorage, database: string, completedAt: Date, bytes = 5_000_000, restoreTest?: { ok: boolean; checkedAt: Date; error?: string }): Promise<string> {
  const id = newBackupId(completedAt);
  const dir = `${database}/logical/${id}`;
  const manifest = {
    id,
    database,
    sourceDatabase: database,
    kind: 'logical',
    format: 'custom',
    startedAt: new Date(completedAt.getTime() - 60_000).toISOString(),
    completedAt: completedAt.toISOString(),
    durationMs: 60_000,
    bytes,
    sha256: 'a'.repeat(64),
    serverVersion: '15.10',
    pgDumpVersion: '15.10',
    options: { schemaOnly: false, dataOnly: false, tables: [], excludeTables: [], jobs: 1 },
    migration: null,
    key: `${dir}/dump`,
    tables: [],
  };
  await storage.putBytes(`${dir}/dump`, Buffer.alloc(16));
  await storage.putBytes(`${dir}/manifest.json`, JSON.stringify(manifest));
  if (restoreTest) {
    await storage.putBytes(`${dir}/restore-test.json`, JSON.stringify({ ok: restoreTest.ok, checkedAt: restoreTest.checkedAt.toISOString(), ...(restoreTest.error ? { error: restoreTest.error } : {}) }));
  }
  return id;
}
