// `pgops demo` (= npm start) as a new user runs it: the whole life cycle on a throwaway cluster and
// local storage, point-in-time recovery of a bad DELETE included; every step ok, nothing left behind.
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../helpers/cli.ts';
import { captured } from '../../../helpers/output-scan.ts';

// The demo's password is its own random one: the scan looks for connection strings with any password.
const cap = captured(() => ['no-demo-secret-is-known-here']);
// Its cluster, storage and scratch cluster go under TMPDIR; the server's user must reach it.
const tmp = mkdtempSync(join(tmpdir(), 'pgops-demo-it-'));
chmodSync(tmp, 0o755);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface DemoStep { step: string; ok: boolean; detail: string }

describe('pgops demo', () => {
  it('runs every step ok, recovers the rows a bad DELETE removed, ends healthy, and leaves nothing behind', async () => {
    const r = cap.cli(await runCli(['demo', '--json'], { TMPDIR: tmp }, { timeoutMs: 300_000 }));
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const steps = (JSON.parse(r.stdout) as { steps: DemoStep[] }).steps;
    expect(steps.filter((s) => !s.ok)).toEqual([]);
    const find = (prefix: string) => steps.find((s) => s.step.startsWith(prefix));
    expect(find('basebackup')?.detail).toMatch(/^base backup \S+: .* archived, timeline 1$/);
    expect(find('wal status')?.detail).toMatch(/no gap$/);
    expect(find('pitr --target-name before-bad-delete')?.detail).toMatch(/restored into pgops_demo_pitr; scratch cluster removed$/);
    expect(find('compare: the deleted rows are back')?.detail).toMatch(/^pgops_demo_pitr has all \d+ users/);
    expect(find('health (after')?.detail).toBe('overall OK: every check ok');
    // tsx keeps its compile cache under TMPDIR (tsx-<uid>): not the demo's.
    expect(readdirSync(tmp).filter((n) => !n.startsWith('tsx-'))).toEqual([]);
  });
});
