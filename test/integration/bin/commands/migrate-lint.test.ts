// `pgops migrate lint` and the lint gate as the CLI shows them: text, --json, --format github, exit
// codes, and with a database the size and rows of the tables a finding locks.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../helpers/cli.ts';
import { captured } from '../../../helpers/output-scan.ts';
import { useTestCluster } from '../../../helpers/postgres.ts';

const cluster = useTestCluster();
const out = captured(() => [cluster.pg.password]);
const roots: string[] = [];
afterAll(() => { for (const d of roots) rmSync(d, { recursive: true, force: true }); });

const BASE = '-- Up Migration\nCREATE TABLE orders (id bigint PRIMARY KEY, total numeric NOT NULL);\n-- Down Migration\nDROP TABLE orders;\n';
const SAFE = '-- Up Migration\nALTER TABLE orders ADD COLUMN note text;\n-- Down Migration\nALTER TABLE orders DROP COLUMN note;\n';
const UNSAFE = '-- Up Migration\n\n-- The order report sorts by total.\nCREATE INDEX orders_total_idx ON orders (total);\n-- Down Migration\nDROP INDEX orders_total_idx;\n';
const WARNS = '-- Up Migration\nCREATE TABLE people (id bigint PRIMARY KEY, name varchar(50));\n-- Down Migration\nDROP TABLE people;\n';

/** A checkout-like directory: <root>/migrations/<files>; the CLI runs from <root>. */
function checkout(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'pgops-lint-cli-'));
  roots.push(root);
  mkdirSync(join(root, 'migrations'));
  for (const [name, body] of Object.entries(files)) writeFileSync(join(root, 'migrations', name), body);
  return root;
}

const lint = async (args: string[], root: string, env: Record<string, string> = {}) => out.cli(await runCli(['migrate', 'lint', ...args], env, { cwd: root }));

describe('pgops migrate lint without a database', () => {
  const files = { '001_orders.sql': BASE, '002_note.sql': SAFE, '003_orders_total.sql': UNSAFE };

  it('text: file:line rule message for each finding, exit 1 on an error finding', async () => {
    const r = await lint(['--all'], checkout(files));
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^migrations\/003_orders_total\.sql:4 require-concurrent-index-creation CREATE INDEX orders_total_idx on orders without CONCURRENTLY blocks writes/m);
    expect(r.stdout).toMatch(/^ {4}error; safe: CREATE INDEX CONCURRENTLY in a migration marked `-- pgops:no-transaction`/m);
    expect(r.stdout).toMatch(/^1 error, 0 warnings in 3 migration files$/m);
  });

  it('--json: { files, findings: [{ file, line, rule, severity, message }] }; --format json is the same', async () => {
    const root = checkout(files);
    const r = await lint(['--all', '--json'], root);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout) as { files: number; findings: Array<Record<string, unknown>> };
    expect(doc).toEqual({
      files: 3,
      findings: [{
        file: 'migrations/003_orders_total.sql', line: 4, rule: 'require-concurrent-index-creation', severity: 'error',
        message: expect.stringMatching(/^CREATE INDEX orders_total_idx on orders without CONCURRENTLY/), safe: expect.any(String),
        table: 'orders', statement: 'CREATE INDEX orders_total_idx ON orders (total)',
      }],
    });
    const same = await lint(['--all', '--format', 'json'], root);
    expect([same.code, JSON.parse(same.stdout)]).toEqual([1, doc]);
  });

  it('--format github: workflow annotations on the file and line', async () => {
    const r = await lint(['--all', '--format', 'github'], checkout({ ...files, '004_people.sql': WARNS }));
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('::'))).toEqual([
      expect.stringMatching(/^::error file=migrations\/003_orders_total\.sql,line=4,title=require-concurrent-index-creation::CREATE INDEX orders_total_idx on orders without CONCURRENTLY.*\. Safe: /),
      expect.stringMatching(/^::warning file=migrations\/004_people\.sql,line=2,title=prefer-text-field::column name of people is varchar\(50\)\. Safe: /),
    ]);
  });

  it('lints only the files named; exit 0 when only warnings remain', async () => {
    const root = checkout({ ...files, '004_people.sql': WARNS });
    const r = await lint(['migrations/004_people.sql', 'migrations/002_note.sql'], root);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^migrations\/004_people\.sql:2 prefer-text-field /m);
    expect(r.stdout).toMatch(/^0 errors, 1 warning in 2 migration files$/m);
  });

  it('passes the example schema of the repository (exit 0, no finding)', async () => {
    const r = out.cli(await runCli(['migrate', 'lint', '--all', '--json']));
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ files: 8, findings: [] });
  });

  it('exit 2 for bad usage, naming what is wrong', async () => {
    const root = checkout(files);
    const both = await lint(['--all', 'migrations/002_note.sql'], root);
    expect([both.code, both.stderr]).toEqual([2, expect.stringMatching(/give migration files or --all, not both/)]);
    const missing = await lint(['migrations/999_nope.sql'], root);
    expect([missing.code, missing.stderr]).toEqual([2, expect.stringMatching(/no such migration file: migrations\/999_nope\.sql/)]);
    const format = await lint(['--all', '--format', 'xml'], root);
    expect([format.code, format.stderr]).toEqual([2, expect.stringMatching(/--format.*xml.*text, json, github/s)]);
    const pending = await lint([], root);
    expect([pending.code, pending.stderr]).toEqual([2, expect.stringMatching(/needs a database .* name the files or pass --all/)]);
  });

  it('--help teaches the rules, the ignore comments and the examples; --rules lists every rule', async () => {
    const help = await lint(['--help'], checkout({}));
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/pgops migrate lint --rules/);
    expect(help.stdout).toMatch(/-- pgops:lint-ignore ban-drop-column, renaming-column/);
    expect(help.stdout).toMatch(/-- pgops:lint-ignore-file prefer-text-field/);
    expect(help.stdout).toMatch(/pgops migrate lint --all --format github/);
    const rules = await lint(['--rules'], checkout({}));
    expect(rules.code).toBe(0);
    expect(rules.stdout).toMatch(/^require-concurrent-index-creation \(error\)\n {4}why: .*\n {4}safe: /m);
    expect(rules.stdout).toMatch(/^prefer-timestamptz \(warning\)$/m);
  });
});

describe('pgops migrate lint with a database', () => {
  let db = '';
  beforeAll(async () => {
    db = await cluster.createDatabase();
    await cluster.query('CREATE TABLE orders (id bigint PRIMARY KEY, total numeric NOT NULL); INSERT INTO orders SELECT g, g FROM generate_series(1, 50000) g; ANALYZE orders;', [], db);
    // Recorded as applied, the way `migrate up` leaves it.
    await cluster.query("CREATE TABLE pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL); INSERT INTO pgmigrations (name, run_on) VALUES ('001_orders', now());", [], db);
  });

  it('lints the pending migrations only, naming the size and estimated rows of the table', async () => {
    const root = checkout({ '001_orders.sql': `${BASE}DROP TABLE legacy_in_the_applied_file;\n`, '002_note.sql': SAFE, '003_orders_total.sql': UNSAFE });
    const r = await lint(['--json'], root, { DATABASE_URL: cluster.url(db) });
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout) as { files: number; findings: Array<{ file: string; message: string; tableSize?: { bytes: number; rows: number } }> };
    expect(doc.files).toBe(2);
    expect(doc.findings).toHaveLength(1);
    expect(doc.findings[0]).toMatchObject({ file: 'migrations/003_orders_total.sql', table: 'orders', tableSize: { bytes: expect.any(Number), rows: 50000 } });
    expect(doc.findings[0]!.tableSize!.bytes).toBeGreaterThan(1024 * 1024);
    expect(doc.findings[0]!.message).toMatch(/on orders \(\d+\.\d MiB, 50K rows\) without CONCURRENTLY/);
  });

  it('names sizes for files named too, and still lints when the database cannot be reached', async () => {
    const root = checkout({ '003_orders_total.sql': UNSAFE });
    const sized = await lint(['migrations/003_orders_total.sql'], root, { DATABASE_URL: cluster.url(db) });
    expect(sized.stdout).toMatch(/on orders \(\d+\.\d MiB, 50K rows\)/);
    const unreachable = await lint(['migrations/003_orders_total.sql'], root, { DATABASE_URL: cluster.url(db).replace(/:\d+\//, ':1/') });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/could not connect to the database, linting without table sizes/);
    expect(unreachable.stdout).toMatch(/^migrations\/003_orders_total\.sql:4 require-concurrent-index-creation CREATE INDEX orders_total_idx on orders without/m);
  });

  it('recognises a widening varchar change as no rewrite, which it cannot know without the database', async () => {
    await cluster.query('CREATE TABLE people (id bigint PRIMARY KEY, name varchar(20))', [], db);
    const root = checkout({ '004_people.sql': '-- Up Migration\nALTER TABLE people ALTER COLUMN name TYPE varchar(100);\n' });
    const withDb = await lint(['migrations/004_people.sql', '--json'], root, { DATABASE_URL: cluster.url(db) });
    expect(JSON.parse(withDb.stdout)).toEqual({ files: 1, findings: [] });
    const without = await lint(['migrations/004_people.sql', '--json'], root);
    expect((JSON.parse(without.stdout) as { findings: Array<{ rule: string }> }).findings.map((f) => f.rule)).toEqual(['changing-column-type']);
  });


  it('reads from the catalog what a file cannot say: volatility, validated NOT NULL checks, partitions, existing tables', async () => {
    await cluster.query([
      "CREATE FUNCTION order_region() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'eu' $$",
      'CREATE FUNCTION order_token() RETURNS text LANGUAGE sql VOLATILE AS $$ SELECT md5(random()::text) $$',
      'ALTER TABLE orders ADD COLUMN region text, ADD CONSTRAINT orders_region_nn CHECK (region IS NOT NULL) NOT VALID',
      "UPDATE orders SET region = 'eu'",
      'ALTER TABLE orders VALIDATE CONSTRAINT orders_region_nn',
      'CREATE TABLE events (id bigint, at timestamptz) PARTITION BY RANGE (at)',
    ].join(';\n'), [], db);
    const up = [
      'ALTER TABLE orders ADD COLUMN r text DEFAULT order_region();',
      'ALTER TABLE orders ADD COLUMN t text DEFAULT order_token();',
      'ALTER TABLE orders ALTER COLUMN region SET NOT NULL;',
      'CREATE INDEX events_at_idx ON events (at);',
      'CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY);',
      'CREATE INDEX orders_region_idx ON orders (region);',
    ].join('\n');
    const root = checkout({ '005_catalog.sql': `-- Up Migration\n${up}\n` });
    const findings = async (env: Record<string, string>) => (JSON.parse((await lint(['migrations/005_catalog.sql', '--json'], root, env)).stdout) as { findings: Array<{ line: number; rule: string; message: string; safe: string }> }).findings;
    const withDb = await findings({ DATABASE_URL: cluster.url(db) });
    expect(withDb.map((f) => [f.line, f.rule])).toEqual([[3, 'adding-field-with-default'], [5, 'require-concurrent-index-creation'], [7, 'require-concurrent-index-creation']]);
    expect(withDb[0]!.message).toMatch(/volatile DEFAULT \(order_token\(\)\)/);
    expect(withDb[1]!.safe).toMatch(/^On a partitioned table: CREATE INDEX \.\.\. ON ONLY the parent/);
    // Without the database: unknown functions may be volatile, the check is unknown, and orders looks new.
    const without = await findings({});
    expect(without.map((f) => [f.line, f.rule])).toEqual([[2, 'adding-field-with-default'], [3, 'adding-field-with-default'], [4, 'adding-not-nullable-field'], [5, 'require-concurrent-index-creation']]);
  });
});

describe('the gate, as `pgops migrate up` shows it', () => {
  it('refuses with exit 1 naming file, line and rule; applies with migrate.lint "warn" and prints the findings', async () => {
    const db = await cluster.createDatabase();
    await cluster.query('CREATE TABLE orders (id bigint PRIMARY KEY, total numeric NOT NULL)', [], db);
    const root = checkout({ '002_note.sql': SAFE, '003_orders_total.sql': UNSAFE });
    const env = { DATABASE_URL: cluster.url(db) };
    const refused = out.cli(await runCli(['migrate', 'up'], env, { cwd: root }));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/pgops: error: the migration linter refused a pending migration \(migrate\.lint is "error"\); nothing was applied:\n {2}003_orders_total\.sql:4 require-concurrent-index-creation CREATE INDEX orders_total_idx on orders \(/);
    const json = out.cli(await runCli(['migrate', 'up', '--dry-run', '--json'], env, { cwd: root }));
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { type: 'MigrationLintError', exitCode: 1, message: expect.stringMatching(/003_orders_total\.sql:4 require-concurrent-index-creation/) } });
    const warned = out.cli(await runCli(['migrate', 'up'], { ...env, PGOPS_CONFIG_JSON: JSON.stringify({ migrate: { lint: 'warn' } }) }, { cwd: root }));
    expect(warned.code, warned.stderr).toBe(0);
    expect(warned.stdout).toMatch(/Lint findings \(migrate\.lint lets them through\):\n {2}003_orders_total\.sql:4 require-concurrent-index-creation /);
    expect(warned.stdout).toMatch(/^applied +003_orders_total/m);
  });

  it('rejects a bad migrate.lint value with exit 2, naming the field', async () => {
    const r = out.cli(await runCli(['migrate', 'up'], { DATABASE_URL: cluster.url('postgres'), PGOPS_CONFIG_JSON: JSON.stringify({ migrate: { lint: 'strict' } }) }, { cwd: checkout({}) }));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/PGOPS_CONFIG_JSON: migrate\.lint: /);
  });
});
