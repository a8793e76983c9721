import { describe, expect, it } from 'vitest';
import { useMigrationFiles } from './lint-files.ts';

const files = useMigrationFiles();

/** One statement that breaks nearly every rule. */
const UNSAFE = 'CREATE INDEX i ON orders (a); DROP TABLE orders; ALTER TABLE orders DROP COLUMN a, ALTER COLUMN b TYPE text, ALTER COLUMN c SET NOT NULL; TRUNCATE users CASCADE; BEGIN; DROP DATABASE shop; COMMIT';

describe('SQL that PostgreSQL does not run as a statement never triggers a rule', () => {
  it('inside a function body (dollar-quoted or a plain string)', async () => {
    const up = [
      `CREATE FUNCTION purge() RETURNS void LANGUAGE plpgsql AS $body$ BEGIN ${UNSAFE}; END $body$;`,
      `CREATE FUNCTION purge_sql() RETURNS void LANGUAGE sql AS '${UNSAFE.replace(/'/g, "''")}';`,
      `CREATE PROCEDURE tidy() LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DROP TABLE orders'; END $$;`,
    ].join('\n');
    expect(await files.lintSql({ up })).toEqual([]);
  });

  it('inside a DO block', async () => {
    expect(await files.lintSql({ up: `DO $$ BEGIN ${UNSAFE}; END $$;` })).toEqual([]);
  });

  it('inside a string literal', async () => {
    const up = `INSERT INTO audit_logs (action, details) VALUES ('schema.note', jsonb_build_object('sql', '${UNSAFE.replace(/'/g, "''")}'));\nSELECT E'DROP TABLE orders;\\n', $q$ALTER TABLE orders RENAME TO x$q$;`;
    expect(await files.lintSql({ up })).toEqual([]);
  });

  it('inside a comment (line, block, nested block)', async () => {
    const up = `-- ${UNSAFE}\n/* ${UNSAFE}\n /* nested: DROP TABLE orders; */ still a comment: TRUNCATE users CASCADE; */\nSELECT 1; -- DROP DATABASE shop`;
    expect(await files.lintSql({ up })).toEqual([]);
  });

  it('while the same SQL as statements is flagged (the cases above are not vacuous)', async () => {
    const rules = new Set((await files.lintSql({ up: `${UNSAFE};` })).map((f) => f.rule));
    expect([...rules].sort()).toEqual(['adding-not-nullable-field', 'ban-drop-column', 'ban-drop-database', 'ban-drop-table', 'ban-truncate-cascade', 'changing-column-type', 'require-concurrent-index-creation', 'transaction-nesting']);
  });
});

describe('the Down part', () => {
  it('is not held to the rules', async () => {
    expect(await files.lintSql({ up: 'CREATE TABLE t (id bigint PRIMARY KEY);', down: 'DROP TABLE t;\nDROP TABLE other;\nALTER TABLE x DROP COLUMN y;' })).toEqual([]);
  });

  it('is parsed: a syntax error there is reported on its line', async () => {
    const findings = await files.lintSql({ up: 'CREATE TABLE t (id bigint PRIMARY KEY);', down: 'DROP TABLE t;\nDROP TABL other;' });
    // 1 "-- Up Migration", 2 the CREATE, 3 "-- Down Migration", 4 DROP TABLE t, 5 the typo.
    expect(findings).toMatchObject([{ rule: 'syntax-error', line: 5, severity: 'error', message: expect.stringMatching(/the Down part does not parse: syntax error at or near "TABL"/) }]);
  });
});
