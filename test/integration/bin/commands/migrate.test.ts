import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../../../helpers/cli.ts';
import { useTestCluster } from '../../../helpers/postgres.ts';

const cluster = useTestCluster();
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** A role whose password is an ordinary word that also names a table and is part of migration names. */
const WORD_PASSWORD = 'users';
let db = '';
let appUrl = '';

beforeAll(async () => {
  db = await cluster.createDatabase();
  await cluster.query('CREATE ROLE app LOGIN');
  await cluster.query(`ALTER ROLE app PASSWORD '${WORD_PASSWORD}'`);
  await cluster.query(`ALTER DATABASE "${db}" OWNER TO app`);
  await cluster.query('ALTER SCHEMA public OWNER TO app', [], db);
  appUrl = cluster.url(db).replace(/\/\/postgres:[^@]+@/, `//app:${WORD_PASSWORD}@`);
});

const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: appUrl, PGOPS_MIGRATIONS_DIR: join(REPO_ROOT, 'migrations'), ...extra });

describe('a password that is an ordinary word (users)', () => {
  it('migrate status --json keeps every migration name intact', async () => {
    const r = await runCli(['migrate', 'status', '--json'], env());
    expect(r.code, r.stderr).toBe(0);
    const names = (JSON.parse(r.stdout) as { pending: Array<{ name: string }> }).pending.map((p) => p.name);
    expect(names).toContain('001_create_users');
    expect(names).toContain('003_create_password_reset_tokens');
    expect(r.stdout).not.toContain('***');
  });

  it('migrate up --dry-run keeps names and SQL intact, text and JSON alike', async () => {
    const json = await runCli(['migrate', 'up', '--dry-run', '--json'], env());
    expect(json.code, json.stderr).toBe(0);
    const doc = JSON.parse(json.stdout) as { ran: Array<{ name: string; sql: string }> };
    expect(doc.ran[0]).toMatchObject({ name: '001_create_users', sql: expect.stringMatching(/CREATE TABLE users/) });
    const text = await runCli(['migrate', 'up', '--dry-run'], env());
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/-- 001_create_users \(up\)\n[\s\S]*CREATE TABLE users/);
    expect(text.stdout + json.stdout).not.toContain('***');
  });

  it('pgops health --json keeps a query naming the table `users` intact', async () => {
    // An application session whose query text names the table: reported as long-running.
    const app = new pg.Client({ connectionString: appUrl }); // the same role: its queries are visible to health
    await app.connect();
    const running = app.query('SELECT count(*), pg_sleep(30) FROM pg_class AS users').catch(() => undefined);
    try {
      await new Promise((r) => setTimeout(r, 1_500));
      const r = await runCli(['health', '--json', '--no-alert', '--long-running-query-seconds', '1'], env());
      const doc = JSON.parse(r.stdout) as { checks: Array<{ name: string; summary: string }> };
      const long = doc.checks.find((c) => c.name === 'long-running-queries')!;
      expect(long.summary).toContain('FROM pg_class AS users');
      expect(r.stdout + r.stderr).not.toContain(`app:${WORD_PASSWORD}@`);
    } finally {
      await cluster.query('SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()', ['%AS users%']);
      await running;
      await app.end();
    }
  });

  it('is masked where it is a credential: a failed connection echoes no password', async () => {
    const r = await runCli(['migrate', 'status', '--json'], env({ DATABASE_URL: appUrl.replace(/:\d+\//, ':1/') }));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\//);
    expect(r.stdout + r.stderr).not.toContain(`app:${WORD_PASSWORD}@`);
  });
});

describe('dry-run SQL with a PASSWORD literal', () => {
  it('is masked the same way in text and in --json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgops-pw-'));
    dirs.push(dir);
    writeFileSync(join(dir, '001_role.sql'), "-- Up Migration\nCREATE ROLE reporting LOGIN PASSWORD 'secret';\n-- Down Migration\nDROP ROLE reporting;\n");
    const e = { DATABASE_URL: cluster.url(db), PGOPS_MIGRATIONS_DIR: dir };
    const text = await runCli(['migrate', 'up', '--dry-run'], e);
    const json = await runCli(['migrate', 'up', '--dry-run', '--json'], e);
    expect(text.code).toBe(0);
    expect(json.code).toBe(0);
    expect(text.stdout).toContain("CREATE ROLE reporting LOGIN PASSWORD '***';");
    expect((JSON.parse(json.stdout) as { ran: Array<{ sql: string }> }).ran[0]!.sql).toContain("CREATE ROLE reporting LOGIN PASSWORD '***';");
    expect(text.stdout + json.stdout).not.toContain("'secret'");
  });
});
