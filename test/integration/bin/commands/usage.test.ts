// Usage errors of the CLI (bin/pgops.ts): exit 2 (3 under `health`), a JSON error document with --json,
// and no value of a rejected setting echoed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../helpers/cli.ts';
import { useTestCluster } from '../../../helpers/postgres.ts';

const cluster = useTestCluster();
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function storageUrl(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgops-usage-'));
  dirs.push(dir);
  return `file://${dir}`;
}

interface ErrorDocument { error: { type: string; message: string; exitCode: number } }

describe('usage errors with --json', () => {
  it('an unknown option prints the JSON error document on stdout and the message on stderr, exit 2', async () => {
    const r = await runCli(['migrate', 'status', '--json', '--bogus']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({ error: { type: 'UsageError', message: "unknown option '--bogus'", exitCode: 2 } });
    expect(r.stderr).toContain("error: unknown option '--bogus'");
  });

  it('a missing argument likewise', async () => {
    const r = await runCli(['--json', 'migrate', 'to']);
    expect(r.code).toBe(2);
    expect((JSON.parse(r.stdout) as ErrorDocument).error).toEqual({ type: 'UsageError', message: "missing required argument 'migration'", exitCode: 2 });
  });

  it('without --json stdout stays empty', async () => {
    const r = await runCli(['migrate', 'status', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
  });
});

describe('pgops health usage errors are UNKNOWN (3)', () => {
  it('an unknown flag, a missing or a bad value exit 3, with a JSON document saying so', async () => {
    expect((await runCli(['health', '--bogus'])).code).toBe(3);
    expect((await runCli(['health', '--max-backup-age-hours', 'soon'])).code).toBe(3);
    const r = await runCli(['health', '--json', '--max-backup-age-hours']);
    expect(r.code).toBe(3);
    expect((JSON.parse(r.stdout) as ErrorDocument).error).toMatchObject({ type: 'UsageError', exitCode: 3 });
  });

  it('help is still exit 0, and a usage error elsewhere is still 2', async () => {
    expect((await runCli(['health', '--help'])).code).toBe(0);
    expect((await runCli(['cleanup', '--bogus'])).code).toBe(2);
  });
});

describe('a database URL whose password is not valid percent-encoding (50%off)', () => {
  const url = 'postgres://u:50%off@127.0.0.1:1/db';
  const field = '--database-url / DATABASE_URL: the password is not valid percent-encoding: encode % as %25';

  it('exits 2 naming the field, as a flag or from the environment, never echoing the value', async () => {
    for (const [args, env] of [[['migrate', 'status', '--json', '--database-url', url], {}], [['migrate', 'status', '--json'], { DATABASE_URL: url }]] as const) {
      const r = await runCli([...args], env);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(field);
      expect(r.stderr).not.toMatch(/URIError/);
      expect((JSON.parse(r.stdout) as ErrorDocument).error).toMatchObject({ type: 'ConfigError', exitCode: 2 });
      expect(r.stdout + r.stderr).not.toContain('50%off');
    }
  });

  it('under health it is UNKNOWN (3)', async () => {
    const r = await runCli(['health', '--no-alert'], { DATABASE_URL: url });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(field);
  });
});

describe('a database name that cannot name a storage folder', () => {
  it('is a configuration error that says to set PGOPS_DATABASE_ID (health: 3, backup: 2); setting it works', async () => {
    const db = await cluster.createDatabase('my db');
    const env = { DATABASE_URL: cluster.url(encodeURIComponent(db)), PGOPS_STORAGE: storageUrl() };
    const health = await runCli(['health', '--json', '--no-alert'], env);
    expect(health.code).toBe(3);
    expect((JSON.parse(health.stdout) as ErrorDocument).error).toMatchObject({ type: 'ConfigError', exitCode: 3, message: expect.stringContaining('PGOPS_DATABASE_ID') });
    expect(health.stderr).toMatch(/database id "my db" cannot name a storage folder/);
    const backup = await runCli(['backup', '--json'], env);
    expect(backup.code).toBe(2);
    expect(backup.stderr).toContain('PGOPS_DATABASE_ID');
    expect(backup.stderr).not.toMatch(/ALERT/);
    const named = await runCli(['health', '--json', '--no-alert'], { ...env, PGOPS_DATABASE_ID: 'my_db' });
    expect(named.code, named.stderr).not.toBe(3);
    expect((JSON.parse(named.stdout) as { database: string }).database).toBe('my_db');
  });

  it('a bad PGOPS_DATABASE_ID is named as --database-id / PGOPS_DATABASE_ID', async () => {
    const r = await runCli(['migrate', 'status'], { DATABASE_URL: cluster.url(), PGOPS_DATABASE_ID: 'my db' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--database-id / PGOPS_DATABASE_ID: letters, digits, dot, dash and underscore only');
  });

  it('the --database-id flag reaches the settings: a bad one exits 2, a good one names the storage folder', async () => {
    const bad = await runCli(['--database-id', 'my db', 'migrate', 'status'], { DATABASE_URL: cluster.url() });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--database-id / PGOPS_DATABASE_ID');
    const store = mkdtempSync(join(tmpdir(), 'pgops-dbid-'));
    try {
      const listed = await runCli(['--database-id', 'orders_prod', '--storage', pathToFileURL(store).href, 'backups', 'list', '--json'], { DATABASE_URL: cluster.url() });
      expect(listed.code, listed.stderr).toBe(0);
      expect(JSON.parse(listed.stdout)).toEqual([]);
      const backup = await runCli(['--database-id', 'orders_prod', '--storage', pathToFileURL(store).href, 'backup', '--json'], { DATABASE_URL: cluster.url() });
      expect(backup.code, backup.stderr).toBe(0);
      expect((JSON.parse(backup.stdout) as { database: string; key: string }).key).toMatch(/^orders_prod\/logical\//);
    } finally {
      rmSync(store, { recursive: true, force: true });
    }
  });
});
