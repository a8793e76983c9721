// The outputs of a recovery: exactly one, with the flags that belong to it (usage errors, exit 2).
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../../../functions/core/errors.ts';
import { parseOutputFlags } from '../../../../../functions/core/pitr/outputs.ts';

const issues = (fn: () => unknown): string[] => {
  try { fn(); } catch (err) { expect(err).toBeInstanceOf(UsageError); return (err as UsageError).issues; }
  throw new Error('expected a usage error');
};

describe('parseOutputFlags', () => {
  it('takes exactly one of --target-db, --export and --data-dir', () => {
    expect(parseOutputFlags({ targetDb: 'orders_1401', create: true, tables: ['orders'] })).toEqual({ kind: 'target-db', database: 'orders_1401', create: true, clean: false, tables: ['orders'], sourceDb: undefined });
    expect(parseOutputFlags({ export: true, sourceDb: 'orders' })).toEqual({ kind: 'export', sourceDb: 'orders' });
    expect(parseOutputFlags({ dataDir: 'recovered' })).toEqual({ kind: 'data-dir', dir: expect.stringMatching(/^\/.*\/recovered$/) });
    expect(issues(() => parseOutputFlags({}))).toEqual([expect.stringMatching(/^no output: give exactly one of --target-db NAME, --export or --data-dir DIR/)]);
    expect(issues(() => parseOutputFlags({ export: true, dataDir: '/x' }))).toEqual([expect.stringMatching(/^more than one output/)]);
  });

  it('refuses flags that belong to another output, and names every problem', () => {
    expect(issues(() => parseOutputFlags({ export: true, create: true, tables: ['t'] }))).toEqual(['--create, --clean and --table go with --target-db']);
    expect(issues(() => parseOutputFlags({ dataDir: '/x', sourceDb: 'orders' }))).toEqual([expect.stringMatching(/--source-db goes with --target-db or --export/)]);
    expect(issues(() => parseOutputFlags({ targetDb: 'a', create: true, clean: true }))).toEqual([expect.stringMatching(/choose one/)]);
    expect(issues(() => parseOutputFlags({ targetDb: 'bad name; drop' }))).toEqual([expect.stringMatching(/--target-db "bad name; drop" must be a plain identifier/)]);
  });
});
