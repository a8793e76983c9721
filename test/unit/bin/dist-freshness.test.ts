// When a checkout's dist/ may stand in for its sources: bin/pgops.js runs it, and bin/server-cli.ts
// copies it for the PostgreSQL server's user, by the same rule (the entry newer than every source).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyFreshDist, freshDistEntry } from '../../../bin/server-cli.ts';
import { REPO_ROOT } from '../../helpers/cli.ts';

const HOUR = 3600;
let root: string;

/** Write `text` at `path` under the fixture root, modified `age` seconds ago. */
function put(path: string, text: string, age: number): void {
  const file = join(root, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  const t = Date.now() / 1000 - age;
  utimesSync(file, t, t);
}

/** What the launcher ran: "bundle" (dist/) or "source" (bin/pgops.ts through tsx). */
function launched(): string {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'pgops.js')], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim();
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'pgops-fresh-'));
  put('bin/pgops.js', readFileSync(join(REPO_ROOT, 'bin', 'pgops.js'), 'utf8'), 3 * HOUR);
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
  put('package-lock.json', '{}', 3 * HOUR);
  put('bin/pgops.ts', "process.stdout.write('source');\n", 2 * HOUR);
  put('functions/core/job.ts', 'export {};\n', 2 * HOUR);
  put('dist/pgops.mjs', "await import('./chunks/job.mjs');\n", HOUR);
  put('dist/chunks/job.mjs', "process.stdout.write('bundle');\n", HOUR);
});

afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('a dist/ newer than every source', () => {
  it('is what the launcher runs, chunks and all', () => {
    expect(freshDistEntry(root)).toBe(join(root, 'dist', 'pgops.mjs'));
    expect(launched()).toBe('bundle');
  });

  it('is copied with its chunks into a directory every user can read', () => {
    const entry = copyFreshDist(root, join(root, 'copy-'));
    expect(entry).toMatch(/copy-[^/]+\/pgops\.mjs$/);
    const chunk = join(dirname(entry!), 'chunks', 'job.mjs');
    expect(readFileSync(chunk, 'utf8')).toContain('bundle');
    expect(statSync(dirname(entry!)).mode & 0o777).toBe(0o755);
    expect(statSync(dirname(chunk)).mode & 0o777).toBe(0o755);
    expect(statSync(chunk).mode & 0o777).toBe(0o644);
  });
});

describe('a stale or missing dist/', () => {
  it('is passed over for the sources once any .ts file is newer than its entry', () => {
    put('functions/core/job.ts', 'export const edited = true;\n', 0);
    expect(freshDistEntry(root)).toBeUndefined();
    expect(copyFreshDist(root, join(root, 'copy-'))).toBeUndefined();
    expect(launched()).toBe('source');
  });

  it('is passed over without package-lock.json (the installed dependencies are unknown) or without an entry', () => {
    rmSync(join(root, 'package-lock.json'));
    expect(freshDistEntry(root)).toBeUndefined();
    put('package-lock.json', '{}', 3 * HOUR);
    rmSync(join(root, 'dist', 'pgops.mjs'));
    expect(freshDistEntry(root)).toBeUndefined();
  });
});
