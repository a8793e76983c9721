// Scratch directories a killed job left behind are recognised by name and removed once a day old.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTextLogger } from '../../../../../functions/core/logger.ts';
import { makeScratchDir, sweepStaleScratch } from '../../../../../functions/core/backup/scratch.ts';

const parent = mkdtempSync(join(tmpdir(), 'pgops-scratch-test-'));
afterAll(() => rmSync(parent, { recursive: true, force: true }));
const logs: string[] = [];
const logger = createTextLogger({ level: 'debug', write: (l) => { logs.push(l); } });
const DAY = 24 * 3600 * 1000;

function aged(name: string, ageMs: number, file?: { name: string; ageMs: number }): string {
  const dir = join(parent, name);
  mkdirSync(dir);
  const now = Date.now() / 1000;
  if (file) {
    writeFileSync(join(dir, file.name), 'x');
    utimesSync(join(dir, file.name), now - file.ageMs / 1000, now - file.ageMs / 1000);
  }
  utimesSync(dir, now - ageMs / 1000, now - ageMs / 1000);
  return dir;
}

describe('scratch directories', () => {
  it('makes pgops-<job>-* directories under the given parent', async () => {
    const dir = await makeScratchDir(parent, 'restore');
    expect(dir.startsWith(join(parent, 'pgops-restore-'))).toBe(true);
    expect(existsSync(dir)).toBe(true);
    rmSync(dir, { recursive: true });
  });

  it('removes ours older than a day, keeps fresh ones, a dir with a fresh file, and anything not ours', async () => {
    aged('pgops-restore-old1', 2 * DAY, { name: 'dump', ageMs: 2 * DAY });
    aged('pgops-verify-old2', DAY + 60_000);
    aged('pgops-backup-old3', 3 * DAY);
    aged('pgops-restore-fresh', 3600_000, { name: 'dump', ageMs: 3600_000 });
    aged('pgops-restore-busy', 2 * DAY, { name: 'dump', ageMs: 60_000 });
    aged('someone-else-old', 5 * DAY);
    writeFileSync(join(parent, 'pgops-restore-file'), 'not a dir');
    const removed = await sweepStaleScratch(parent, logger);
    expect(removed.sort()).toEqual(['pgops-backup-old3', 'pgops-restore-old1', 'pgops-verify-old2']);
    expect(readdirSync(parent).sort()).toEqual(['pgops-restore-busy', 'pgops-restore-file', 'pgops-restore-fresh', 'someone-else-old']);
    expect(logs.join('')).toMatch(/removed 3 scratch directories left by killed jobs/);
  });

  it('stops the server a killed pitr job left on its scratch data directory, then removes the directory', async () => {
    const root = join(parent, 'pgops-pitr-left');
    const dataDir = join(root, 'data');
    mkdirSync(dataDir, { recursive: true });
    // Stands in for the postmaster: a process whose command line names the data directory, as `postgres -D <dir>` does.
    const server = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600000)', '--', '-D', dataDir], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => server.on('exit', (_code, signal) => resolve(signal)));
    // A stale pid file naming an unrelated process (this one) is left alone.
    const other = join(parent, 'pgops-pitr-stale');
    mkdirSync(join(other, 'data'), { recursive: true });
    writeFileSync(join(other, 'data', 'postmaster.pid'), `${process.pid}\n${join(other, 'data')}\n`);
    await new Promise((resolve) => server.on('spawn', resolve));
    writeFileSync(join(dataDir, 'postmaster.pid'), `${server.pid}\n${dataDir}\n`);
    const old = Date.now() / 1000 - 2 * DAY / 1000;
    for (const d of [dataDir, root, join(other, 'data'), other]) utimesSync(d, old, old);
    try {
      const removed = await sweepStaleScratch(parent, logger);
      expect(removed).toEqual(expect.arrayContaining(['pgops-pitr-left', 'pgops-pitr-stale']));
      expect(await exited).toBe('SIGQUIT');
      expect(existsSync(root)).toBe(false);
      expect(logs.join('')).toContain(`stopping the scratch PostgreSQL a killed pitr job left running (pid ${server.pid})`);
    } finally {
      server.kill('SIGKILL');
    }
  });

  it('never throws for a parent that does not exist', async () => {
    expect(await sweepStaleScratch(join(parent, 'nope'), logger)).toEqual([]);
  });
});
