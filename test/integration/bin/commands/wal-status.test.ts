// `pgops wal status` as an operator runs it: text for a person, --json for a script, exit 1 on a gap.
// Runs the program in process with the status command added under `wal` if wal.ts does not carry it yet.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CommanderError } from 'commander';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { buildProgram } from '../../../../bin/pgops.ts';
import { walStatusCommand } from '../../../../bin/commands/wal-status.ts';
import type { Io } from '../../../../bin/commands/run-command.ts';
import { FileStorage } from '../../../../functions/core/storage/file.ts';
import { putBaseBackup, putSegments, seg } from '../../../helpers/physical-manifests.ts';

const work = mkdtempSync(join(tmpdir(), 'pgops-walstatus-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
afterEach(() => { process.exitCode = undefined; });
let n = 0;

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: Io = { out: (s) => { stdout += s; }, err: (s) => { stderr += s; }, isTTY: false };
  const program = buildProgram(io);
  const wal = program.commands.find((c) => c.name() === 'wal')!;
  if (!wal.commands.some((c) => c.name() === 'status')) {
    const status = walStatusCommand(io);
    status.exitOverride((err) => { throw new CommanderError(2, err.code, err.message); });
    wal.addCommand(status);
  }
  process.exitCode = undefined;
  try {
    await program.parseAsync(['node', 'pgops', ...args]);
  } catch (err) {
    if (err instanceof CommanderError) return { code: err.exitCode, stdout, stderr };
    throw err;
  }
  const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  process.exitCode = undefined;
  return { code, stdout, stderr };
}

function store(): { storage: FileStorage; url: string } {
  const dir = mkdtempSync(join(work, `s${++n}-`));
  const url = pathToFileURL(dir).href;
  return { storage: new FileStorage(url), url };
}

describe('pgops wal status', () => {
  it('a whole window: exit 0, the window and every backup in words an on-call engineer reads', async () => {
    const { storage, url } = store();
    await putSegments(storage, 'orders', 1, 1, 6);
    const id = await putBaseBackup(storage, 'orders', { id: '20260101T020000Z-aaaa', startSegno: 2, stopSegno: 3 });
    const r = await run(['wal', 'status', '--storage', url, '--database-id', 'orders']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`WAL archive of orders in ${url} (newest timeline 1)`);
    expect(r.stdout).toContain(`timeline 1: ${seg(1, 1)} .. ${seg(1, 6)}`);
    expect(r.stdout).toContain(`${id}  timeline 1  ${seg(1, 2)} .. ${seg(1, 3)}  recoverable to the end of the archive`);
    expect(r.stdout).toMatch(/Restore window \(timeline 1\): from 2026-01-01T01:59:59\.000Z \(LSN 0\/3000100, end of base backup 20260101T020000Z-aaaa\)/);
    expect(r.stdout).toContain(`(LSN 0/7000000, end of ${seg(1, 6)}, the newest archived segment)`);
    expect(r.stdout).toContain('OK: the whole window is recoverable.');
  });

  it('a gap: exit 1, named, with how far recovery reaches and what to do; --json carries the same', async () => {
    const { storage, url } = store();
    await putSegments(storage, 'orders', 1, 2, 9, [7]);
    const id = await putBaseBackup(storage, 'orders', { id: '20260101T020000Z-aaaa', startSegno: 2 });
    const text = await run(['wal', 'status', '--storage', url, '--database-id', 'orders']);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(`PROBLEM: gap: ${seg(1, 7)} is missing; recovery from backup ${id} can reach 0/7000000`);
    expect(text.stdout).toContain('take a new base backup (pgops basebackup)');
    expect(text.stdout).toContain('Restore window (timeline 1): none');
    const json = await run(['--json', 'wal', 'status', '--storage', url, '--database-id', 'orders']);
    expect(json.code).toBe(1);
    const doc = JSON.parse(json.stdout);
    expect(doc).toMatchObject({
      timelines: [{ timeline: 1, firstSegment: seg(1, 2), lastSegment: seg(1, 9), gaps: [seg(1, 7)] }],
      backups: [{ id, startSegment: seg(1, 2), stopSegment: seg(1, 2), timeline: 1, recoverable: false }],
      window: { from: null, to: null },
      gaps: [{ first: seg(1, 7), cutsOff: [id] }],
      ok: false,
    });
  });

  it('without a database id: exit 2 naming the setting; without storage: exit 2', async () => {
    const { url } = store();
    const noId = await run(['wal', 'status', '--storage', url]);
    expect(noId.code).toBe(2);
    expect(noId.stderr).toMatch(/PGOPS_DATABASE_ID/);
    const noStorage = await run(['wal', 'status', '--database-id', 'orders']);
    expect(noStorage.code).toBe(2);
    expect(noStorage.stderr).toMatch(/no storage/);
  });
});
