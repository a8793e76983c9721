// `pgops demo` (= npm start) as a new user runs it: the whole life cycle on a throwaway cluster and
// local storage, a migration the linter refuses and its safe rewrite, point-in-time recovery of a bad
// DELETE included; every step ok, nothing left behind.
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
  it('runs every step ok, refuses an unsafe migration and applies its rewrite, recovers the rows a bad DELETE removed, ends healthy, and leaves nothing behind', async () => {
    const r = cap.cli(await runCli(['demo', '--json'], { TMPDIR: tmp }, { timeoutMs: 300_000 }));
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const steps = (JSON.parse(r.stdout) as { steps: DemoStep[] }).steps;
    expect(steps.filter((s) => !s.ok)).toEqual([]);
    const find = (prefix: string) => steps.find((s) => s.step.startsWith(prefix));
    // The linter refuses the blocking CREATE INDEX, naming file, line, rule and the table's size.
    expect(find('migrate up (the linter refuses it)')?.detail).toMatch(/^refused, nothing applied:\n009_users_last_login_index\.sql:4 require-concurrent-index-creation CREATE INDEX users_last_login_at_idx on users \(\d[\d.]* [KM]iB, 2K rows\) without CONCURRENTLY/);
    // The safe rewrite applies, after a restore point; the archive makes it a `pgops pitr` away.
    const rewrite = find('rewrite it safely')?.detail ?? '';
    expect(rewrite).toMatch(/^applied {2}009_users_last_login_index \(\d+ ms\)\nsafety point: restore point pgops-migrate-\d{8}T\d{6}Z-009_users_last_login_index at [0-9A-F]+\/[0-9A-F]+\nto go back: pgops pitr --target-name pgops-migrate-\S+ --target-db pgops_demo --clean$/);
    expect(find('migrate down (drop the demo index')?.detail).toBe('reverted 009_users_last_login_index');
    expect(find('basebackup')?.detail).toMatch(/^base backup \S+: .* archived, timeline 1$/);
    expect(find('wal status')?.detail).toMatch(/no gap$/);
    expect(find('pitr --target-name before-bad-delete')?.detail).toMatch(/restored into pgops_demo_pitr; scratch cluster removed$/);
    expect(find('compare: the deleted rows are back')?.detail).toMatch(/^pgops_demo_pitr has all \d+ users/);
    expect(find('health (after')?.detail).toBe('overall OK: every check ok');
    // tsx keeps its compile cache under TMPDIR (tsx-<uid>): not the demo's.
    expect(readdirSync(tmp).filter((n) => !n.startsWith('tsx-'))).toEqual([]);
  });
});
