import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../../../functions/core/logger.ts';
import { lintMigrationFiles } from '../../../../../../functions/core/migrate/lint/lint.ts';
import { useMigrationFiles } from './lint-files.ts';

const files = useMigrationFiles();

describe('.js migrations are linted through the SQL node-pg-migrate generates', () => {
  it('flags pgm.createIndex without concurrently, on the line of up, naming the generated SQL', async () => {
    const r = await files.lintFiles({
      '002_index.js': "// Speeds up the order report.\nexport const up = (pgm) => {\n  pgm.createIndex('orders', 'total');\n};\n",
    });
    expect(r.report.findings).toMatchObject([{
      file: '002_index.js', line: 2, rule: 'require-concurrent-index-creation', severity: 'error', table: 'orders',
      statement: expect.stringMatching(/^CREATE INDEX "orders_total_index" ON "orders" \("total"\)/),
    }]);
  });

  it('passes pgm.createIndex with concurrently after pgm.noTransaction()', async () => {
    const r = await files.lintFiles({
      '002_index.js': "exports.up = (pgm) => {\n  pgm.noTransaction();\n  pgm.createIndex('orders', 'total', { concurrently: true });\n};\n",
    });
    expect(r.report.findings).toEqual([]);
  });

  it('flags concurrently without pgm.noTransaction(), saying so', async () => {
    const r = await files.lintFiles({ '002_index.js': "export function up(pgm) {\n  pgm.createIndex('orders', 'total', { concurrently: true });\n}\n" });
    expect(r.report.findings).toMatchObject([{ rule: 'ban-concurrent-index-creation-in-transaction', line: 1, message: expect.stringMatching(/no pgm\.noTransaction\(\)/) }]);
  });

  it('exempts a table the same .js migration creates', async () => {
    const r = await files.lintFiles({
      '002_tags.js': "export const up = (pgm) => {\n  pgm.createTable('tags', { id: 'id', label: { type: 'text', notNull: true } });\n  pgm.createIndex('tags', 'label');\n  pgm.addColumn('tags', { slug: { type: 'text', notNull: true } });\n};\n",
    });
    // node-pg-migrate's 'id' shorthand is a serial primary key.
    expect(r.report.findings.map((f) => f.rule)).toEqual(['prefer-bigint-over-int']);
  });

  it('honours an ignore comment in pgm.sql and a // pgops:lint-ignore-file line', async () => {
    const r = await files.lintFiles({
      '002_drop.js': [
        '// pgops:lint-ignore-file ban-drop-table',
        'export const up = (pgm) => {',
        "  pgm.sql('-- pgops:lint-ignore ban-drop-column\\nALTER TABLE orders DROP COLUMN legacy');",
        "  pgm.dropTable('old_orders');",
        "  pgm.dropColumns('orders', ['other']);",
        '};',
      ].join('\n'),
    });
    expect(r.report.findings).toMatchObject([{ rule: 'ban-drop-column', line: 2, message: expect.stringMatching(/DROP COLUMN other/) }]);
  });

  it('not-linted: a migration that queries the database to build its SQL is reported, not guessed', async () => {
    const r = await files.lintFiles({
      '002_data.js': "export const up = async (pgm) => {\n  const { rows } = await pgm.db.query('SELECT 1 AS n');\n  pgm.sql(`SELECT ${rows[0].n}`);\n};\n",
      '003_plain.js': "export const up = (pgm) => {\n  pgm.sql('SELECT 1');\n};\n",
    });
    expect(r.report.findings).toMatchObject([{ file: '002_data.js', rule: 'not-linted', severity: 'warning', message: expect.stringMatching(/queries the database \(pgm\.db\)/) }]);
    expect(r.destructive).toMatchObject([{ file: '002_data.js', kind: 'unknown' }]);
  });

  it('a .js migration that does not load is an error', async () => {
    const r = await files.lintFiles({ '002_broken.js': 'export const up = (pgm) => {\n  pgm.sql(;\n};\n' });
    expect(r.report.findings).toMatchObject([{ rule: 'syntax-error', severity: 'error', message: expect.stringMatching(/002_broken\.js could not be loaded/) }]);
  });
});

describe('the example schema (migrations/)', () => {
  it('passes the linter with no finding at all', async () => {
    const dir = join(import.meta.dirname, '..', '..', '..', '..', '..', '..', 'migrations');
    const targets = readdirSync(dir).filter((f) => /\.(sql|js)$/.test(f)).sort().map((f) => ({ path: join(dir, f), file: f }));
    expect(targets).toHaveLength(8);
    const r = await lintMigrationFiles(targets, { logger: silentLogger });
    expect(r.report).toEqual({ files: 8, findings: [] });
  });
});
