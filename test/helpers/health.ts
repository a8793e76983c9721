// Shared by the health integration tests: local storage, backup manifests and restore-test records
// written the way the backup jobs write them (through the manifest fixture).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll } from 'vitest';
import { FileStorage } from '../../functions/core/storage/file.ts';
import { putBackup } from './manifests.ts';

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
  return putBackup(storage, database, { completedAt, bytes, dump: Buffer.alloc(16), ...(restoreTest ? { restoreTest } : {}) });
}
