// Keys and ids: what a database id may be, and how a refused one is reported.
import { describe, expect, it } from 'vitest';
import { checkDatabaseId, databasePrefix, logicalPrefix } from '../../../../../functions/core/catalog/layout.ts';
import { ConfigError } from '../../../../../functions/core/errors.ts';

function refusal(id: string): string {
  try {
    checkDatabaseId(id);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(2);
    return (err as Error).message;
  }
  throw new Error(`"${id}" was accepted`);
}

describe('checkDatabaseId', () => {
  it('accepts a storage-safe id and builds the prefixes from it', () => {
    expect(checkDatabaseId('auth_service-1.eu')).toBe('auth_service-1.eu');
    expect(databasePrefix('auth')).toBe('auth/');
    expect(logicalPrefix('auth')).toBe('auth/logical/');
  });

  it('a database name with spaces is refused, telling the user to set PGOPS_DATABASE_ID or --database-id', () => {
    const m = refusal('my shop');
    expect(m).toContain('database id "my shop" cannot name a storage folder');
    expect(m).toContain('set PGOPS_DATABASE_ID (or --database-id)');
    expect(m).toContain('PGOPS_DATABASE_ID=my_shop');
  });

  it('a unicode name is refused the same way, with an ASCII suggestion', () => {
    const m = refusal('café');
    expect(m).toContain('database id "café"');
    expect(m).toContain('PGOPS_DATABASE_ID=cafe');
    expect(refusal('日本')).toContain('PGOPS_DATABASE_ID=auth'); // nothing usable left: a plain example
  });

  it('names the rejected value safely: control characters escaped, quotes escaped, long values cut', () => {
    const m = refusal('a\u001b[31mred\u0007"x');
    expect(m).toContain('"a\\u{1b}[31mred\\u{7}\\"x"');
    expect([...m].filter((ch) => ch !== '\n' && ch.charCodeAt(0) < 0x20)).toEqual([]);
    const long = refusal('x '.repeat(200));
    expect(long).toContain(`"${'x '.repeat(32)}…"`);
    for (const bad of ['..', '.', '', 'a/b']) expect(refusal(bad)).toContain('PGOPS_DATABASE_ID');
  });
});
