import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../../../functions/core/logger.ts';
import { findDestructiveChanges } from '../../../../../../functions/core/migrate/lint/lint.ts';
import { sqlMigration, useMigrationFiles } from './lint-files.ts';

const files = useMigrationFiles();

async function changes(up: string) {
  return findDestructiveChanges(files.write({ '001_test.sql': sqlMigration({ up, down: 'SELECT 1;' }) }), silentLogger);
}

describe('destructive changes (for migrate.backupBefore: "destructive")', () => {
  it('finds drops, renames, type changes and truncation, with file and line', async () => {
    const up = [
      'DROP TABLE legacy;',
      'ALTER TABLE orders DROP COLUMN code, ALTER COLUMN total TYPE numeric;',
      'ALTER TABLE orders RENAME COLUMN a TO b;',
      'ALTER TABLE carts RENAME TO baskets;',
      'TRUNCATE sessions;',
      'DROP SCHEMA archive CASCADE;',
    ].join('\n');
    expect((await changes(up)).map((c) => [c.line, c.kind, c.target])).toEqual([
      [2, 'drop-table', 'legacy'],
      [3, 'drop-column', 'orders.code'],
      [3, 'type-change', 'orders.total'],
      [4, 'rename-column', 'orders.a'],
      [5, 'rename-table', 'carts'],
      [6, 'truncate', 'sessions'],
      [7, 'drop-schema', 'archive'],
    ]);
  });

  it('counts a drop that an ignore comment lets through, and the one in a lint-ignore-file', async () => {
    const up = '-- pgops:lint-ignore-file ban-drop-table\n-- pgops:lint-ignore ban-drop-column\nALTER TABLE orders DROP COLUMN code;\nDROP TABLE legacy;';
    expect((await changes(up)).map((c) => c.kind)).toEqual(['drop-column', 'drop-table']);
  });

  it('finds none for additive changes, for tables created in the same migration, or in the Down part', async () => {
    const up = 'CREATE TABLE scratch (id bigint PRIMARY KEY, v text);\nALTER TABLE scratch DROP COLUMN v;\nDROP TABLE scratch;\nALTER TABLE orders ADD COLUMN note text;';
    expect(await changes(up)).toEqual([]);
    expect(await findDestructiveChanges(files.write({ '001_x.sql': sqlMigration({ up: 'CREATE TABLE t (id bigint);', down: 'DROP TABLE t;' }) }), silentLogger)).toEqual([]);
  });

  it('reports an Up part it cannot parse as unknown', async () => {
    expect(await changes('DROP TABLE legacy;\nDROPP TABLE orders;')).toMatchObject([{ kind: 'unknown', line: 3 }]);
  });
});
