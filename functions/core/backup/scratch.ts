// Local scratch directories of the restore, verify and backup jobs: named `pgops-<job>-*` under the
// temporary directory, so that one a killed job left behind (kill -9 runs no clean-up) is
// recognisable, and removed by the next restore or verify once it is older than a day.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';

export type ScratchJob = 'restore' | 'verify' | 'backup';

const SCRATCH = /^pgops-(restore|verify|backup)-/;
const DAY_MS = 24 * 60 * 60 * 1000;

export function scratchParent(tmpDir: string | undefined): string {
  return tmpDir ?? tmpdir();
}

/** A fresh private directory `<parent>/pgops-<job>-XXXXXX`. */
export function makeScratchDir(tmpDir: string | undefined, job: ScratchJob): Promise<string> {
  return mkdtemp(join(scratchParent(tmpDir), `pgops-${job}-`));
}

/**
 * Remove scratch directories older than `maxAgeMs`, counted from the newest change to the directory
 * or a file in it: left by a job that was killed. Returns the names removed; never throws.
 */
export async function sweepStaleScratch(tmpDir: string | undefined, logger: Logger, now = Date.now(), maxAgeMs = DAY_MS): Promise<string[]> {
  const parent = scratchParent(tmpDir);
  const removed: string[] = [];
  let names: string[];
  try {
    names = (await readdir(parent)).filter((n) => SCRATCH.test(n));
  } catch {
    return removed;
  }
  for (const name of names) {
    const dir = join(parent, name);
    try {
      if (now - (await newestChange(dir)) < maxAgeMs) continue;
      await rm(dir, { recursive: true, force: true });
      removed.push(name);
    } catch (err) {
      logger.debug(`could not inspect or remove ${dir}`, { error: errorMessage(err) });
    }
  }
  if (removed.length > 0) logger.info(`removed ${removed.length} scratch director${removed.length === 1 ? 'y' : 'ies'} left by killed jobs`, { parent, removed });
  return removed;
}

async function newestChange(dir: string): Promise<number> {
  const st = await stat(dir);
  if (!st.isDirectory()) return Number.POSITIVE_INFINITY;
  let newest = st.mtimeMs;
  for (const e of await readdir(dir)) newest = Math.max(newest, (await stat(join(dir, e)).catch(() => st)).mtimeMs);
  return newest;
}
