// `pgops wal push|fetch` as PostgreSQL runs them: exit codes are the contract with the server.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../helpers/cli.ts';

const SEGMENT = '000000010000000000000004';
const work = mkdtempSync(join(tmpdir(), 'pgops-wal-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function env(store: string, databaseId: string | null = 'orders'): Record<string, string | undefined> {
  // A key set to undefined would reach the child as the string "undefined": leave it out instead.
  return { PGOPS_STORAGE: `file://${store}`, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', ...(databaseId ? { PGOPS_DATABASE_ID: databaseId } : {}) };
}

describe('pgops wal', () => {
  const store = join(work, 'store');
  mkdirSync(store);
  const segment = join(work, SEGMENT);
  writeFileSync(segment, randomBytes(64 * 1024));

  it('push exits 0 (again 0 for the same file), fetch restores it and exits 0, with no database connection', async () => {
    // DATABASE_URL points at a closed port: any attempt to connect would fail the command.
    expect((await runCli(['wal', 'push', segment], env(store))).code).toBe(0);
    expect((await runCli(['wal', 'push', segment], env(store))).code).toBe(0);
    const dest = join(work, 'RECOVERYXLOG');
    const fetched = await runCli(['wal', 'fetch', SEGMENT, dest], env(store));
    expect(fetched.code).toBe(0);
    expect(readFileSync(dest).equals(readFileSync(segment))).toBe(true);
  });

  it('push of a different file under the same name exits 1', async () => {
    const other = join(mkdtempSync(join(work, 'other-')), SEGMENT);
    writeFileSync(other, randomBytes(1024));
    await runCli(['wal', 'push', segment], env(store));
    const r = await runCli(['wal', 'push', other], env(store));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/already archived/);
  });

  it('fetch of a file not in the archive exits 1 and writes nothing', async () => {
    const dest = join(work, 'missing');
    expect((await runCli(['wal', 'fetch', '000000010000000000000099', dest], env(store))).code).toBe(1);
    expect(existsSync(dest)).toBe(false);
  });

  it('without a database id: push exits 2 naming it; fetch exits 126 or more (recovery must abort)', async () => {
    const push = await runCli(['wal', 'push', segment], env(store, null));
    expect(push.code).toBe(2);
    expect(push.stderr).toMatch(/PGOPS_DATABASE_ID/);
    expect(push.stderr).toMatch(/--database-id/);
    const fetch = await runCli(['wal', 'fetch', SEGMENT, join(work, 'x')], env(store, null));
    expect(fetch.code).toBeGreaterThanOrEqual(126);
    expect(fetch.stderr).toMatch(/PGOPS_DATABASE_ID/);
  });

  it('--database-id works as the variable does, and usage errors follow each command\'s contract', async () => {
    expect((await runCli(['--database-id', 'orders', 'wal', 'push', segment], env(store, null))).code).toBe(0);
    expect((await runCli(['wal', 'push'], env(store))).code).toBe(2);
    expect((await runCli(['wal', 'fetch', SEGMENT], env(store))).code).toBeGreaterThanOrEqual(126);
    expect((await runCli(['wal', 'push', segment], { PGOPS_DATABASE_ID: 'orders' })).code).toBe(2);
  });

  it('--help shows archive_command and restore_command examples', async () => {
    expect((await runCli(['wal', 'push', '--help'])).stdout).toMatch(/archive_command = '.*pgops wal push %p'/);
    expect((await runCli(['wal', 'fetch', '--help'])).stdout).toMatch(/restore_command = '.*pgops wal fetch %f %p'/);
  });
});
