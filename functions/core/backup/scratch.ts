// Local scratch directories of the restore, verify, backup and pitr jobs: named `pgops-<job>-*`
// under the temporary directory, so that one a killed job left behind (kill -9 runs no clean-up) is
// recognisable, and removed by the next restore, verify, pitr or cleanup once it is older than a day.
// A pitr scratch cluster's server outlives a killed job (pg_ctl detaches it): it is stopped first.
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';

export type ScratchJob = 'restore' | 'verify' | 'backup';

const SCRATCH = /^pgops-(restore|verify|backup|pitr)-/;
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
      if (name.startsWith('pgops-pitr-')) await stopLeftoverServer(join(dir, 'data'), logger);
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

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * Stop the server a killed pitr job left running on `dataDir` (immediate shutdown: it is scratch).
 * Only a process whose command line names that data directory: a stale pid file's number may
 * belong to another process by now.
 */
export async function stopLeftoverServer(dataDir: string, logger: Logger): Promise<void> {
  const pid = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 1) return;
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  if (!cmdline.includes(dataDir)) return;
  logger.info(`stopping the scratch PostgreSQL a killed pitr job left running (pid ${pid})`, { dataDir });
  process.kill(pid, 'SIGQUIT');
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}
