// The lint gate of `migrate up`: with migrate.lint "error" nothing is applied while an error finding
// remains; an ignore comment lets a checked statement through; "warn" applies and reports; the dry
// run refuses the same way; the migrate function carries it, with its alert.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { defaultFileConfig } from '../../../../../functions/core/config.ts';
import { exitCodeOf } from '../../../../../functions/core/errors.ts';
import { historyTables } from '../../../../../functions/core/migrate/files.ts';
import { MigrationLintError } from '../../../../../functions/core/migrate/lint/gate.ts';
import { runMigrations, type MigrateJobDeps } from '../../../../../functions/core/migrate/job.ts';
import { createMigrateHandler } from '../../../../../functions/migrate/index.ts';
import { captured } from '../../../../helpers/output-scan.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';

const cluster = useTestCluster();
const out = captured(() => [cluster.pg.password]);
const sns = mockClient(SNSClient);
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:pgops-alerts';
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
beforeEach(() => {
  sns.reset();
  sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
});

function migrationsDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgops-gate-'));
  dirs.push(dir);
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
  return dir;
}

/** 001 is applied by the test setup; 002 is safe; 003 builds an index the blocking way. */
const BASE = '-- Up Migration\nCREATE TABLE orders (id bigint PRIMARY KEY, total numeric NOT NULL);\n-- Down Migration\nDROP TABLE orders;\n';
const SAFE = '-- Up Migration\nALTER TABLE orders ADD COLUMN note text;\n-- Down Migration\nALTER TABLE orders DROP COLUMN note;\n';
const UNSAFE = '-- Up Migration\n\n-- The order report sorts by total.\nCREATE INDEX orders_total_idx ON orders (total);\n-- Down Migration\nDROP INDEX orders_total_idx;\n';
const UNSAFE_IGNORED = '-- Up Migration\n\n-- pgops:lint-ignore require-concurrent-index-creation -- orders is tiny in every environment\nCREATE INDEX orders_total_idx ON orders (total);\n-- Down Migration\nDROP INDEX orders_total_idx;\n';

function deps(db: string, dir: string, overrides: Partial<MigrateJobDeps> = {}): MigrateJobDeps {
  const config = defaultFileConfig();
  return {
    target: cluster.target(db),
    session: config.database,
    dir,
    tables: historyTables('public', 'pgmigrations'),
    lockWaitSeconds: 5,
    logger: out.logger().logger,
    lockPollMs: 50,
    alerter: out.alerter(),
    databaseId: db,
    environment: 'test',
    ...overrides,
  };
}

/** A database with 001 applied and 20,000 analyzed rows in orders. */
async function databaseWithOrders(): Promise<string> {
  const db = await cluster.createDatabase();
  await runMigrations(deps(db, migrationsDir({ '001_orders.sql': BASE })), { command: 'up' });
  await cluster.query('INSERT INTO orders SELECT g, g % 1000 FROM generate_series(1, 20000) AS g; ANALYZE orders;', [], db);
  return db;
}

async function applied(db: string): Promise<string[]> {
  return (await cluster.query<{ name: string }>('SELECT name FROM pgmigrations ORDER BY id', [], db)).rows.map((r) => r.name);
}

async function schemaOf(db: string): Promise<{ columns: string[]; indexes: string[] }> {
  const columns = await cluster.query<{ c: string }>("SELECT attname AS c FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum", [], db);
  const indexes = await cluster.query<{ i: string }>("SELECT indexname AS i FROM pg_indexes WHERE tablename = 'orders' ORDER BY 1", [], db);
  return { columns: columns.rows.map((r) => r.c), indexes: indexes.rows.map((r) => r.i) };
}

describe('migrate up with migrate.lint "error" (the default)', () => {
  let db = '';
  beforeAll(async () => { db = await databaseWithOrders(); });

  it('applies neither of a safe and an unsafe pending migration, naming file, line, rule and the table size; alerts once', async () => {
    const dir = migrationsDir({ '001_orders.sql': BASE, '002_note.sql': SAFE, '003_orders_total.sql': UNSAFE });
    const d = deps(db, dir);
    const err = out.error(await runMigrations(d, { command: 'up' }).catch((e: unknown) => e));
    expect(err).toBeInstanceOf(MigrationLintError);
    expect(exitCodeOf(err)).toBe(1);
    const message = (err as Error).message;
    expect(message).toMatch(/nothing was applied/);
    expect(message).toMatch(/003_orders_total\.sql:4 require-concurrent-index-creation CREATE INDEX orders_total_idx on orders \(\d[\d.]* [KM]iB, 20K rows\) without CONCURRENTLY/);
    expect(message).toMatch(/safe: CREATE INDEX CONCURRENTLY/);
    expect(await applied(db)).toEqual(['001_orders']);
    expect(await schemaOf(db)).toEqual({ columns: ['id', 'total'], indexes: ['orders_pkey'] });
    const alerts = (d.alerter as ReturnType<typeof out.alerter>).sent;
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ severity: 'critical', job: 'migrate', details: { lint: [{ file: '003_orders_total.sql', line: 4, rule: 'require-concurrent-index-creation' }] } });
    expect(alerts[0]!.summary).toMatch(/migration linter refused/);
  });

  it('the dry run reports the same findings and fails the same way, creating nothing and paging nobody', async () => {
    const fresh = await cluster.createDatabase();
    const dir = migrationsDir({ '001_orders.sql': BASE, '002_note.sql': SAFE, '003_orders_total.sql': UNSAFE });
    const d = deps(fresh, dir);
    const err = out.error(await runMigrations(d, { command: 'up', dryRun: true }).catch((e: unknown) => e));
    expect(err).toBeInstanceOf(MigrationLintError);
    // No orders table in this database yet: the finding says so instead of a size.
    expect((err as Error).message).toMatch(/003_orders_total\.sql:4 require-concurrent-index-creation CREATE INDEX orders_total_idx on orders \(not in the database yet\)/);
    expect((d.alerter as ReturnType<typeof out.alerter>).sent).toEqual([]);
    const tables = await cluster.query("SELECT 1 FROM pg_tables WHERE schemaname = 'public'", [], fresh);
    expect(tables.rowCount).toBe(0);
  });

  it('applies both once the unsafe statement carries an ignore comment', async () => {
    const dir = migrationsDir({ '001_orders.sql': BASE, '002_note.sql': SAFE, '003_orders_total.sql': UNSAFE_IGNORED });
    const result = await runMigrations(deps(db, dir), { command: 'up' });
    expect(result.ran.map((m) => m.name)).toEqual(['002_note', '003_orders_total']);
    expect(result.lint).toBeUndefined();
    expect(await applied(db)).toEqual(['001_orders', '002_note', '003_orders_total']);
    expect(await schemaOf(db)).toEqual({ columns: ['id', 'total', 'note'], indexes: ['orders_pkey', 'orders_total_idx'] });
  });

  it('flags a .js migration calling pgm.createIndex without concurrently, and applies nothing', async () => {
    const fresh = await databaseWithOrders();
    const dir = migrationsDir({
      '001_orders.sql': BASE,
      '002_note.sql': SAFE,
      '003_orders_total.js': "export const up = (pgm) => {\n  pgm.createIndex('orders', 'total');\n};\nexport const down = (pgm) => {\n  pgm.dropIndex('orders', 'total');\n};\n",
    });
    const err = out.error(await runMigrations(deps(fresh, dir), { command: 'up' }).catch((e: unknown) => e));
    expect(err).toBeInstanceOf(MigrationLintError);
    expect((err as MigrationLintError).findings).toMatchObject([{ file: '003_orders_total.js', line: 1, rule: 'require-concurrent-index-creation', table: 'orders', tableSize: { rows: 20000 } }]);
    expect(await applied(fresh)).toEqual(['001_orders']);
  });

  it('gates `migrate to` going up, and lints only the migrations it would apply', async () => {
    const fresh = await databaseWithOrders();
    const dir = migrationsDir({ '001_orders.sql': BASE, '002_note.sql': SAFE, '003_orders_total.sql': UNSAFE });
    const d = deps(fresh, dir);
    await expect(runMigrations(d, { command: 'to', target: '003' }).catch((e: unknown) => { throw out.error(e); })).rejects.toBeInstanceOf(MigrationLintError);
    expect(await applied(fresh)).toEqual(['001_orders']);
    const upTo002 = await runMigrations(d, { command: 'to', target: '002' });
    expect(upTo002.ran.map((m) => m.name)).toEqual(['002_note']);
    // `down` is never gated: a rollback is destructive by nature.
    const down = await runMigrations(d, { command: 'down' });
    expect(down.ran.map((m) => m.name)).toEqual(['002_note']);
  });
});

describe('migrate.lint "warn" and "off"', () => {
  it('"warn" applies both and returns the findings in the result (also in the dry run)', async () => {
    const db = await databaseWithOrders();
    const dir = migrationsDir({ '001_orders.sql': BASE, '002_note.sql': SAFE, '003_orders_total.sql': UNSAFE });
    const log = out.logger('warn');
    const d = deps(db, dir, { lint: 'warn', logger: log.logger });
    const dry = await runMigrations(d, { command: 'up', dryRun: true });
    expect(dry.lint?.findings).toMatchObject([{ file: '003_orders_total.sql', line: 4, rule: 'require-concurrent-index-creation', severity: 'error' }]);
    const result = await runMigrations(d, { command: 'up' });
    expect(result.ran.map((m) => m.name)).toEqual(['002_note', '003_orders_total']);
    expect(result.lint).toEqual(dry.lint);
    expect(await applied(db)).toEqual(['001_orders', '002_note', '003_orders_total']);
    expect(log.lines.join('')).toMatch(/lint: 003_orders_total\.sql:4 require-concurrent-index-creation/);
  });

  it('"off" does not lint at all', async () => {
    const db = await databaseWithOrders();
    // Not even a syntax error in a Down part stops it: the linter never runs.
    const dir = migrationsDir({ '001_orders.sql': BASE, '002_orders_total.sql': `${UNSAFE}DROP INDX x;\n` });
    const result = await runMigrations(deps(db, dir, { lint: 'off' }), { command: 'up' });
    out.add('result', result);
    expect(result.ran.map((m) => m.name)).toEqual(['002_orders_total']);
    expect(result.lint).toBeUndefined();
  });

  it('"error" with only warnings applies and reports them', async () => {
    const db = await databaseWithOrders();
    const dir = migrationsDir({ '001_orders.sql': BASE, '002_people.sql': '-- Up Migration\nCREATE TABLE people (id bigint PRIMARY KEY, name varchar(50));\n' });
    const result = await runMigrations(deps(db, dir), { command: 'up' });
    out.add('result', result);
    expect(result.ran.map((m) => m.name)).toEqual(['002_people']);
    expect(result.lint?.findings).toMatchObject([{ rule: 'prefer-text-field', severity: 'warning', line: 2 }]);
  });
});

describe('the migrate function', () => {
  function handler(db: string, files: Record<string, string>, config?: unknown) {
    const log = out.logger();
    return createMigrateHandler({
      env: { DATABASE_URL: cluster.url(db), PGOPS_MIGRATIONS_DIR: migrationsDir(files), PGOPS_SNS_TOPIC_ARN: TOPIC, PGOPS_ENVIRONMENT: 'staging', ...(config ? { PGOPS_CONFIG_JSON: JSON.stringify(config) } : {}) },
      sns: () => new SNSClient({ region: 'eu-west-1' }),
      logger: log.logger,
    });
  }

  it('refuses with one alert and throws, so the pipeline fails; a dry run throws without an alert', async () => {
    const db = await databaseWithOrders();
    const files = { '001_orders.sql': BASE, '002_note.sql': SAFE, '003_orders_total.sql': UNSAFE };
    const dry = out.error(await handler(db, files)({ command: 'up', dryRun: true }).catch((e: unknown) => e));
    expect((dry as Error).message).toMatch(/003_orders_total\.sql:4 require-concurrent-index-creation/);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
    const err = out.error(await handler(db, files)({ command: 'up' }).catch((e: unknown) => e));
    expect((err as Error).message).toMatch(/003_orders_total\.sql:4 require-concurrent-index-creation/);
    const published = sns.commandCalls(PublishCommand);
    expect(published).toHaveLength(1);
    out.add('sns', published[0]!.args[0].input.Message);
    expect(JSON.parse(published[0]!.args[0].input.Message!)).toMatchObject({ severity: 'critical', job: 'migrate', details: { lint: [{ rule: 'require-concurrent-index-creation' }] } });
    expect(await applied(db)).toEqual(['001_orders']);
  });

  it('reads migrate.lint from the config: "warn" applies and returns the findings', async () => {
    const db = await databaseWithOrders();
    const result = await handler(db, { '001_orders.sql': BASE, '002_orders_total.sql': UNSAFE }, { migrate: { lint: 'warn' } })({ command: 'up' });
    out.add('result', result);
    expect(result).toMatchObject({ ran: [{ name: '002_orders_total' }], lint: { findings: [{ rule: 'require-concurrent-index-creation', table: 'orders' }] } });
  });
});
