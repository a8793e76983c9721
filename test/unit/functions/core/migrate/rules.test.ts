import { describe, expect, it } from 'vitest';
import type { MigrationFile } from '../../../../../functions/core/migrate/files.ts';
import { checkUniqueVersions, emptyMigrationWarnings, findOutOfOrder, orderError, suggestName } from '../../../../../functions/core/migrate/rules.ts';

const f = (file: string, emptyUp?: boolean): MigrationFile => ({ name: file.replace(/\.[a-z]+$/, ''), file, path: `/m/${file}`, checksum: 'x', ...(emptyUp ? { emptyUp } : {}) });

describe('migration file rules', () => {
  it('compares version prefixes as numbers and names both files of a clash', () => {
    expect(() => checkUniqueVersions([f('001_a.sql'), f('2_b.js'), f('002_c.sql')])).toThrow(/2_b\.js and 002_c\.sql share the version 002 .*e\.g\. 003_c\.sql/);
    expect(() => checkUniqueVersions([f('001_a.sql'), f('010_b.sql'), f('README_x.sql')])).not.toThrow();
  });

  it('suggests the next free version at the width of the file', () => {
    expect(suggestName(f('02_b.sql'), [f('01_a.sql'), f('02_b.sql'), f('17_c.sql')])).toBe('18_b.sql');
    expect(suggestName(f('1700000000000_x.js'), [f('1700000000000_x.js'), f('1700000000005_y.js')])).toBe('1700000000006_x.js');
  });

  it('finds pending files before the last applied one, and nothing when the history is a prefix of the files', () => {
    const files = [f('001_a.sql'), f('002_b.sql'), f('003_c.sql'), f('004_d.sql')];
    expect(findOutOfOrder(files, ['001_a', '003_c'])).toEqual([{ name: '002_b', file: '002_b.sql', sortsBefore: '003_c' }]);
    expect(findOutOfOrder(files, ['001_a', '002_b'])).toEqual([]);
    expect(findOutOfOrder(files, [])).toEqual([]);
    expect(orderError(files, ['001_a', '002_b'])).toBeUndefined();
  });

  it('refuses a history that ran in another order than the files sort', () => {
    const files = [f('001_a.sql'), f('002_b.sql')];
    expect(orderError(files, ['002_b', '001_a'])?.message).toMatch(/002_b ran before 001_a, but sorts after it/);
  });

  it('warns about empty pending migrations only', () => {
    expect(emptyMigrationWarnings([f('001_a.sql', true), f('002_b.sql', true), f('003_c.sql')], ['002_b', '003_c'])).toEqual([expect.stringMatching(/^migration 002_b\.sql has no SQL/)]);
  });
});
