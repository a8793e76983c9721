import { describe, expect, it } from 'vitest';
import { RULES } from '../../../../../../functions/core/migrate/lint/rules/index.ts';
import type { RuleId } from '../../../../../../functions/core/migrate/lint/types.ts';
import { useMigrationFiles, type SqlMigration } from './lint-files.ts';

const files = useMigrationFiles();

interface Case {
  bad: SqlMigration;
  /** The rule's safe form: no finding of any rule. */
  good: SqlMigration;
  /** Words the finding's message must carry. */
  says: RegExp;
}

const LONG_NAME = `orders_${'x'.repeat(60)}_idx`;

const CASES: Record<Exclude<RuleId, 'not-linted'>, Case> = {
  'require-concurrent-index-creation': {
    bad: { up: 'CREATE INDEX orders_total_idx ON orders (total);' },
    good: { up: 'CREATE INDEX CONCURRENTLY orders_total_idx ON orders (total);', noTransaction: true },
    says: /orders_total_idx on orders without CONCURRENTLY .*SHARE lock/,
  },
  'require-concurrent-index-deletion': {
    bad: { up: 'DROP INDEX orders_total_idx;' },
    good: { up: 'DROP INDEX CONCURRENTLY orders_total_idx;', noTransaction: true },
    says: /DROP INDEX orders_total_idx without CONCURRENTLY .*ACCESS EXCLUSIVE/,
  },
  'constraint-missing-not-valid': {
    bad: { up: 'ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);' },
    good: { up: 'ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;' },
    says: /FOREIGN KEY constraint orders_user_fk without NOT VALID scans orders/,
  },
  'adding-required-field': {
    bad: { up: 'ALTER TABLE orders ADD COLUMN region text NOT NULL;' },
    good: { up: "ALTER TABLE orders ADD COLUMN region text NOT NULL DEFAULT 'eu';" },
    says: /ADD COLUMN region NOT NULL without a DEFAULT fails on orders/,
  },
  'adding-not-nullable-field': {
    bad: { up: 'ALTER TABLE orders ALTER COLUMN region SET NOT NULL;' },
    good: {
      up: 'ALTER TABLE orders ADD CONSTRAINT orders_region_nn CHECK (region IS NOT NULL) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT orders_region_nn;\nALTER TABLE orders ALTER COLUMN region SET NOT NULL;',
      noTransaction: true,
    },
    says: /SET NOT NULL scans orders under an ACCESS EXCLUSIVE lock/,
  },
  'adding-field-with-default': {
    bad: { up: 'ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();' },
    good: { up: 'ALTER TABLE orders ADD COLUMN seen_at timestamptz DEFAULT now();' },
    says: /volatile DEFAULT \(gen_random_uuid\(\)\).*rewrites orders/,
  },
  'changing-column-type': {
    bad: { up: 'ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2);' },
    good: { up: 'ALTER TABLE orders ADD COLUMN total_v2 numeric(12,2);' },
    says: /ALTER COLUMN total TYPE numeric\(12,2\) rewrites orders and its indexes under an ACCESS EXCLUSIVE lock/,
  },
  'renaming-column': {
    bad: { up: 'ALTER TABLE orders RENAME COLUMN total TO amount;' },
    good: { up: 'ALTER TABLE orders ADD COLUMN amount numeric;' },
    says: /RENAME COLUMN total TO amount on orders breaks/,
  },
  'renaming-table': {
    bad: { up: 'ALTER TABLE orders RENAME TO purchases;' },
    good: { up: '-- pgops:lint-ignore renaming-table\nALTER TABLE orders RENAME TO purchases;\nCREATE VIEW orders AS SELECT * FROM purchases;' },
    says: /RENAME orders TO purchases breaks every running query that names orders/,
  },
  'ban-drop-column': {
    bad: { up: 'ALTER TABLE orders DROP COLUMN legacy_code;' },
    good: { up: '-- pgops:lint-ignore ban-drop-column -- unused since release 41\nALTER TABLE orders DROP COLUMN legacy_code;' },
    says: /DROP COLUMN legacy_code removes the column and its data from orders/,
  },
  'ban-drop-table': {
    bad: { up: 'DROP TABLE legacy_orders;' },
    good: { up: '-- pgops:lint-ignore ban-drop-table\nDROP TABLE legacy_orders;' },
    says: /DROP TABLE legacy_orders removes the table and its data/,
  },
  'ban-drop-database': {
    bad: { up: 'DROP DATABASE shop;' },
    good: { up: "SELECT 'DROP DATABASE shop';" },
    says: /DROP DATABASE shop/,
  },
  'disallowed-unique-constraint': {
    bad: { up: 'ALTER TABLE orders ADD CONSTRAINT orders_ref_key UNIQUE (ref);' },
    good: { up: 'ALTER TABLE orders ADD CONSTRAINT orders_ref_key UNIQUE USING INDEX orders_ref_idx;' },
    says: /ADD CONSTRAINT orders_ref_key UNIQUE builds an index on orders under an ACCESS EXCLUSIVE lock/,
  },
  'adding-serial-primary-key-field': {
    bad: { up: 'ALTER TABLE orders ADD PRIMARY KEY (id);' },
    good: { up: 'ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY USING INDEX orders_id_idx;' },
    says: /ADD PRIMARY KEY builds an index on orders under an ACCESS EXCLUSIVE lock/,
  },
  'ban-concurrent-index-creation-in-transaction': {
    bad: { up: 'CREATE INDEX CONCURRENTLY orders_total_idx ON orders (total);' },
    good: { up: 'CREATE INDEX CONCURRENTLY orders_total_idx ON orders (total);', noTransaction: true },
    says: /CREATE INDEX CONCURRENTLY in a migration that runs in a transaction \(no -- pgops:no-transaction\)/,
  },
  'transaction-nesting': {
    bad: { up: 'BEGIN;\nUPDATE orders SET total = 0 WHERE id = 1;\nCOMMIT;' },
    good: { up: 'BEGIN;\nUPDATE orders SET total = 0 WHERE id = 1;\nCOMMIT;', noTransaction: true },
    says: /BEGIN inside the transaction pgops runs this migration in/,
  },
  'prefer-bigint-over-int': {
    bad: { up: 'CREATE TABLE items (id serial PRIMARY KEY);' },
    good: { up: 'CREATE TABLE items (id bigserial PRIMARY KEY, quantity integer NOT NULL);' },
    says: /column id of items is a 32-bit serial key/,
  },
  'prefer-timestamptz': {
    bad: { up: 'CREATE TABLE events (id bigint PRIMARY KEY, happened_at timestamp);' },
    good: { up: 'CREATE TABLE events (id bigint PRIMARY KEY, happened_at timestamptz);' },
    says: /column happened_at of events is timestamp without time zone/,
  },
  'prefer-text-field': {
    bad: { up: 'CREATE TABLE people (id bigint PRIMARY KEY, name varchar(50));' },
    good: { up: 'CREATE TABLE people (id bigint PRIMARY KEY, name text CHECK (length(name) <= 50));' },
    says: /column name of people is varchar\(50\)/,
  },
  'ban-char-field': {
    bad: { up: 'CREATE TABLE countries (id bigint PRIMARY KEY, code char(2));' },
    good: { up: 'CREATE TABLE countries (id bigint PRIMARY KEY, code text);' },
    says: /column code of countries is char\(2\)/,
  },
  'identifier-too-long': {
    bad: { up: `CREATE INDEX CONCURRENTLY ${LONG_NAME} ON orders (total);`, noTransaction: true },
    good: { up: `CREATE INDEX CONCURRENTLY ${LONG_NAME.slice(0, 63)} ON orders (total);`, noTransaction: true },
    says: new RegExp(`identifier ${LONG_NAME} is ${LONG_NAME.length} bytes long: PostgreSQL truncates it to 63`),
  },
  'ban-truncate-cascade': {
    bad: { up: 'TRUNCATE orders CASCADE;' },
    good: { up: 'TRUNCATE orders, order_items;' },
    says: /TRUNCATE orders CASCADE also empties every table that references it/,
  },
  'syntax-error': {
    bad: { up: 'CREATE TABLE ok (id bigint PRIMARY KEY);\nCREAT TABLE broken (id bigint);' },
    good: { up: 'CREATE TABLE ok (id bigint PRIMARY KEY);\nCREATE TABLE fine (id bigint PRIMARY KEY);' },
    says: /the Up part does not parse: syntax error at or near "CREAT"/,
  },
};

describe('every rule, on the real PostgreSQL parser', () => {
  it('has a failing and a passing example here (not-linted: in sources.test.ts)', () => {
    expect(Object.keys(CASES).sort()).toEqual(RULES.map((r) => r.id).filter((id) => id !== 'not-linted').sort());
  });

  it.each(Object.entries(CASES))('%s: flags the unsafe form and passes the safe one', async (id, c) => {
    const rule = RULES.find((r) => r.id === id)!;
    const bad = await files.lintSql(c.bad);
    const mine = bad.filter((f) => f.rule === id);
    expect(mine, JSON.stringify(bad)).toHaveLength(1);
    expect(mine[0]).toMatchObject({ file: '001_test.sql', severity: rule.severity, safe: expect.any(String) });
    expect(mine[0]!.message).toMatch(c.says);
    expect(await files.lintSql(c.good)).toEqual([]);
  });
});

describe('what a finding carries', () => {
  it('names the line of the statement in the file, past the header and comments above it', async () => {
    const findings = await files.lintSql({ up: '\n-- the index for the report\n/* two lines\n of comment */\nCREATE INDEX orders_total_idx\n  ON orders (total);' });
    // Line 1 is "-- Up Migration".
    expect(findings).toMatchObject([{ rule: 'require-concurrent-index-creation', line: 6, table: 'orders', statement: 'CREATE INDEX orders_total_idx ON orders (total)' }]);
  });

  it('counts lines right after multibyte characters (the parser speaks bytes)', async () => {
    const findings = await files.lintSql({ up: "COMMENT ON TABLE orders IS 'Bestellungen für Kunden – ü ö ä 🚀';\n\nCREATE INDEX orders_total_idx ON orders (total);" });
    expect(findings).toMatchObject([{ rule: 'require-concurrent-index-creation', line: 4 }]);
  });

  it('reports a syntax error on its line and checks nothing else of the part', async () => {
    const findings = await files.lintSql({ up: 'DROP TABLE legacy;\n\nALTER TABLE orders ADD COLUMN x int NOT NULL DEFAULT;' });
    expect(findings).toEqual([expect.objectContaining({ rule: 'syntax-error', line: 4, severity: 'error' })]);
  });
});

describe('state across the statements of a migration', () => {
  it('exempts a table created earlier in the same migration from the lock rules', async () => {
    const up = [
      'CREATE TABLE carts (id bigint PRIMARY KEY, owner bigint);',
      'CREATE INDEX carts_owner_idx ON carts (owner);',
      'ALTER TABLE carts ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();',
      'ALTER TABLE carts ADD CONSTRAINT carts_owner_fk FOREIGN KEY (owner) REFERENCES users (id);',
      'ALTER TABLE carts ALTER COLUMN owner SET NOT NULL, ALTER COLUMN owner TYPE numeric;',
      'ALTER TABLE carts ADD CONSTRAINT carts_token_key UNIQUE (token);',
      'ALTER TABLE carts RENAME COLUMN owner TO owner_id;',
      'ALTER TABLE carts RENAME TO baskets;',
      'CREATE INDEX baskets_token_idx ON baskets (token);',
      'DROP INDEX carts_owner_idx;',
      'ALTER TABLE baskets DROP COLUMN token;',
    ].join('\n');
    expect(await files.lintSql({ up })).toEqual([]);
  });

  it('still flags a table created by an earlier migration', async () => {
    const result = await files.lintFiles({
      '001_carts.sql': '-- Up Migration\nCREATE TABLE carts (id bigint PRIMARY KEY, owner bigint);\n',
      '002_index.sql': '-- Up Migration\nCREATE INDEX carts_owner_idx ON carts (owner);\n',
    });
    expect(result.report.findings).toMatchObject([{ file: '002_index.sql', line: 2, rule: 'require-concurrent-index-creation' }]);
  });

  it('flags a transaction opened and never closed, on the BEGIN line', async () => {
    const findings = await files.lintSql({ up: 'CREATE INDEX CONCURRENTLY a_idx ON orders (a);\nBEGIN;\nUPDATE orders SET a = 1 WHERE id = 2;', noTransaction: true });
    // Line 1 is the marker, line 2 "-- Up Migration".
    expect(findings).toMatchObject([{ rule: 'transaction-nesting', line: 4, message: expect.stringMatching(/opened by BEGIN on line 4 is never committed/) }]);
  });

  it('flags CONCURRENTLY inside an explicit BEGIN of a no-transaction migration', async () => {
    const findings = await files.lintSql({ up: 'BEGIN;\nCREATE INDEX CONCURRENTLY a_idx ON orders (a);\nCOMMIT;', noTransaction: true });
    expect(findings).toMatchObject([{ rule: 'ban-concurrent-index-creation-in-transaction', line: 4, message: expect.stringMatching(/opened by BEGIN on line 3/) }]);
  });

  it('flags a COMMIT that ends the transaction pgops runs the migration in', async () => {
    const findings = await files.lintSql({ up: 'UPDATE orders SET a = 1 WHERE id = 2;\nCOMMIT;' });
    expect(findings).toMatchObject([{ rule: 'transaction-nesting', line: 3, message: expect.stringMatching(/ends the transaction pgops runs/) }]);
  });

  it('flags VALIDATE CONSTRAINT in the same transaction as its ADD ... NOT VALID', async () => {
    const findings = await files.lintSql({ up: 'ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;' });
    expect(findings).toMatchObject([{ rule: 'constraint-missing-not-valid', line: 3, message: expect.stringMatching(/same transaction that added it NOT VALID/) }]);
  });

  it('a VALIDATE in a later migration is the safe form', async () => {
    expect(await files.lintSql({ up: 'ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;' })).toEqual([]);
  });

  it('flags a serial or identity column added to an existing table as a rewrite', async () => {
    const findings = await files.lintSql({ up: 'ALTER TABLE orders ADD COLUMN seq bigserial, ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY, ADD COLUMN doubled numeric GENERATED ALWAYS AS (total * 2) STORED;' });
    expect(findings.map((f) => [f.rule, f.message.replace(/:.*/, '')])).toEqual([
      ['adding-field-with-default', 'ADD COLUMN seq of type bigserial fills every row from a sequence'],
      ['adding-field-with-default', 'ADD COLUMN n as an identity column fills every row from a sequence'],
      ['adding-field-with-default', 'ADD COLUMN doubled as a STORED generated column computes every row'],
    ]);
  });

  it('takes CREATE INDEX ... ON ONLY for the first step on a partitioned table (no build) without a database', async () => {
    expect(await files.lintSql({ up: 'CREATE INDEX events_at_idx ON ONLY events (at);' })).toEqual([]);
  });

  it('without a database, a default calling an unknown function is flagged as possibly volatile', async () => {
    const findings = await files.lintSql({ up: 'ALTER TABLE orders ADD COLUMN code text DEFAULT make_order_code();' });
    expect(findings).toMatchObject([{ rule: 'adding-field-with-default', message: expect.stringMatching(/make_order_code\(\) \(pgops cannot tell its volatility without a database\)/) }]);
  });
});
