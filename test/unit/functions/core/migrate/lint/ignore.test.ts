import { describe, expect, it } from 'vitest';
import { fileIgnores, statementIgnores } from '../../../../../../functions/core/migrate/lint/ignore.ts';
import { useMigrationFiles } from './lint-files.ts';

const files = useMigrationFiles();

describe('-- pgops:lint-ignore above a statement', () => {
  it('ignores the listed rules for that statement only', async () => {
    const up = [
      '-- pgops:lint-ignore ban-drop-column, require-concurrent-index-creation',
      'ALTER TABLE orders DROP COLUMN a;',
      'ALTER TABLE orders DROP COLUMN b;',
    ].join('\n');
    expect(await files.lintSql({ up })).toMatchObject([{ rule: 'ban-drop-column', line: 4, message: expect.stringMatching(/DROP COLUMN b/) }]);
  });

  it('reads every comment line of the block directly above, and a reason after --', async () => {
    const up = [
      '-- pgops:lint-ignore ban-drop-table -- archived to S3 in release 40',
      '-- pgops:lint-ignore ban-truncate-cascade',
      '-- nothing references orders_archive any more',
      'DROP TABLE orders_archive; TRUNCATE orders_tmp CASCADE;',
      'TRUNCATE orders_tmp2 CASCADE;',
    ].join('\n');
    // Both statements of line 5 start below the block; the one on line 6 does not.
    expect(await files.lintSql({ up })).toMatchObject([{ rule: 'ban-truncate-cascade', line: 6 }]);
  });

  it('does not reach across a blank line or another statement', async () => {
    const up = '-- pgops:lint-ignore ban-drop-table\n\nDROP TABLE a;\n-- pgops:lint-ignore ban-drop-table\nSELECT 1;\nDROP TABLE b;';
    expect((await files.lintSql({ up })).map((f) => f.line)).toEqual([4, 7]);
  });

  it('ignores only the rules it names', async () => {
    const up = '-- pgops:lint-ignore ban-drop-column\nDROP TABLE a;';
    expect(await files.lintSql({ up })).toMatchObject([{ rule: 'ban-drop-table' }]);
  });

  it('parses rule lists the way people write them', () => {
    const lines = ['-- pgops:lint-ignore a-rule,b-rule  c-rule: because', '--pgops:lint-ignore d-rule', 'X'];
    expect([...statementIgnores(lines, 3)].sort()).toEqual(['a-rule', 'b-rule', 'because', 'c-rule', 'd-rule']);
  });
});

describe('-- pgops:lint-ignore-file', () => {
  it('ignores the listed rules for the whole file, wherever it stands', async () => {
    const up = 'CREATE TABLE a (id bigint PRIMARY KEY, n varchar(10));\nCREATE TABLE b (id bigint PRIMARY KEY, n varchar(20));\n-- pgops:lint-ignore-file prefer-text-field\nDROP TABLE c;';
    expect(await files.lintSql({ up })).toMatchObject([{ rule: 'ban-drop-table' }]);
  });

  it('is not taken for a statement ignore, nor a statement ignore for a file ignore', () => {
    expect([...fileIgnores('-- pgops:lint-ignore ban-drop-table\n')]).toEqual([]);
    expect([...statementIgnores(['-- pgops:lint-ignore-file ban-drop-table', 'DROP TABLE x;'], 2)]).toEqual([]);
    expect([...fileIgnores('// pgops:lint-ignore-file ban-drop-table\n')]).toEqual(['ban-drop-table']);
  });
});
