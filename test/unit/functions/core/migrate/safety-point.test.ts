// The safety point's pure parts: the restore point's name, the commands that go back, and the setting.
import { describe, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../../../../functions/core/db.ts';
import { loadSettings, parseFileConfig } from '../../../../../functions/core/config.ts';
import { goBackCommands, restorePointName } from '../../../../../functions/core/migrate/safety-point.ts';

const target = parseDatabaseUrl('postgres://app@db.internal:5432/auth');

describe('restorePointName', () => {
  it('is pgops-migrate-<UTC time>-<first pending migration>', () => {
    expect(restorePointName(new Date('2026-12-01T14:05:09.123Z'), '009_drop_legacy_code')).toBe('pgops-migrate-20261201T140509Z-009_drop_legacy_code');
  });

  it('keeps to PostgreSQL\'s 63 characters and to characters a command line takes as they are', () => {
    const name = restorePointName(new Date('2026-12-01T14:05:09Z'), '010_a migration named with ünïcode and far too many words to fit');
    expect(name).toHaveLength(63);
    expect(name).toBe('pgops-migrate-20261201T140509Z-010_a_migration_named_with__n_co');
  });
});

describe('goBackCommands', () => {
  it('restores the backup over the database; pitr to the restore point only where WAL is archived', () => {
    const point = { backupId: '20261201T140509Z-3fa2', restorePoint: { name: 'pgops-migrate-20261201T140511Z-009_x', lsn: '0/3A0001C8' } };
    expect(goBackCommands(point, true, { target, databaseId: 'auth' })).toEqual([
      'pgops restore 20261201T140509Z-3fa2 --target-db auth --clean',
      'pgops pitr --target-name pgops-migrate-20261201T140511Z-009_x --target-db auth --clean',
    ]);
    expect(goBackCommands(point, false, { target, databaseId: 'auth' })).toEqual(['pgops restore 20261201T140509Z-3fa2 --target-db auth --clean']);
  });

  it('names the database id when it is not the database\'s name, and quotes what a shell would split', () => {
    const odd = { ...target, database: 'my db' };
    expect(goBackCommands({ backupId: '20261201T140509Z-3fa2' }, false, { target: odd, databaseId: 'auth-prod' })).toEqual([
      "pgops restore 20261201T140509Z-3fa2 --target-db 'my db' --clean --database-id auth-prod",
    ]);
  });

  it('offers nothing without a backup or a recorded restore point', () => {
    expect(goBackCommands({ restorePoint: { name: 'pgops-migrate-x' } }, true, { target, databaseId: 'auth' })).toEqual([]);
  });
});

describe('migrate.backupBefore', () => {
  it('defaults to "never" and takes "always" and "destructive"', () => {
    expect(loadSettings({}, {}, '/repo').config.migrate.backupBefore).toBe('never');
    expect(parseFileConfig({ migrate: { backupBefore: 'destructive' } }).config?.migrate.backupBefore).toBe('destructive');
  });

  it('names the field when the value is not one of them', () => {
    expect(parseFileConfig({ migrate: { backupBefore: 'sometimes', lint: 'loud' } }).issues).toEqual([
      expect.stringMatching(/^config: migrate\.lint: /),
      expect.stringMatching(/^config: migrate\.backupBefore: .*"never"\|"always"\|"destructive"/),
    ]);
  });

  it('PGOPS_BACKUP_FUNCTION takes a function name or ARN', () => {
    expect(loadSettings({}, { PGOPS_BACKUP_FUNCTION: 'arn:aws:lambda:eu-west-1:123456789012:function:pgops-prod-auth-backup' }, '/repo').backupFunction).toBe('arn:aws:lambda:eu-west-1:123456789012:function:pgops-prod-auth-backup');
    expect(() => loadSettings({}, { PGOPS_BACKUP_FUNCTION: 's3://not-a-function' }, '/repo')).toThrow(/PGOPS_BACKUP_FUNCTION: must be a Lambda function name or ARN/);
  });
});
