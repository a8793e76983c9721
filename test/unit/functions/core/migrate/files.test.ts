import { describe, expect, it } from 'vitest';
import { parseSqlMigration } from '../../../../../functions/core/migrate/files.ts';
import { splitSqlStatements } from '../../../../../functions/core/migrate/sql-split.ts';
import { createMigration } from '../../../../../functions/core/migrate/job.ts';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('SQL migration files', () => {
  it('splits up and down sections and sees the no-transaction marker', () => {
    const p = parseSqlMigration('-- pgops:no-transaction\n-- Up Migration\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- Down Migration\nDROP INDEX CONCURRENTLY i;\n');
    expect(p.noTransaction).toBe(true);
    expect(p.up).toContain('CREATE INDEX');
    expect(p.up).not.toContain('DROP INDEX');
    expect(p.down).toContain('DROP INDEX');
  });

  it('treats a file without markers as up-only and without the marker as transactional', () => {
    const p = parseSqlMigration('CREATE TABLE t (id int);');
    expect(p).toEqual({ up: 'CREATE TABLE t (id int);', down: undefined, noTransaction: false });
  });

  it('does not take a mention of the marker inside a statement for the marker', () => {
    expect(parseSqlMigration("-- Up Migration\nSELECT '-- pgops:no-transaction';").noTransaction).toBe(false);
  });
});

describe('statement splitter', () => {
  it('splits on semicolons outside strings, identifiers, comments and dollar quotes', () => {
    const sql = `
      CREATE TABLE "a;b" (v text DEFAULT 'x;y');  -- trailing; comment
      /* block; /* nested; */ still comment; */
      CREATE FUNCTION f() RETURNS int AS $fn$ BEGIN RETURN 1; END; $fn$ LANGUAGE plpgsql;
      SELECT E'it\\'s; fine', 'it''s; fine', $$a;b$$;
      -- only a comment;
    `;
    const parts = splitSqlStatements(sql);
    expect(parts).toHaveLength(3);
    expect(parts[0]).toMatch(/^CREATE TABLE "a;b" \(v text DEFAULT 'x;y'\)$/);
    expect(parts[1]).toMatch(/RETURN 1; END; \$fn\$ LANGUAGE plpgsql$/);
    expect(parts[2]).toMatch(/^SELECT E'it\\'s; fine', 'it''s; fine', \$\$a;b\$\$$/);
  });

  it('returns nothing for comments and whitespace only', () => {
    expect(splitSqlStatements('-- nothing\n/* here */ ;\n')).toEqual([]);
  });
});

describe('migrate create', () => {
  it('numbers files after the highest prefix and writes up and down parts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgops-create-'));
    const a = await createMigration(dir, 'create_users', { sql: true });
    const b = await createMigration(dir, 'add_tokens');
    expect(a.name).toBe('001_create_users');
    expect(b.name).toBe('002_add_tokens');
    expect(readdirSync(dir).sort()).toEqual(['001_create_users.sql', '002_add_tokens.js']);
    expect(readFileSync(a.path, 'utf8')).toMatch(/-- Up Migration[\s\S]*-- Down Migration/);
    expect(readFileSync(b.path, 'utf8')).toMatch(/export const up[\s\S]*export const down/);
    await expect(createMigration(dir, 'bad name;')).rejects.toThrow(/letters, digits/);
  });
});
