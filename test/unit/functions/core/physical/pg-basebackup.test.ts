// pg_basebackup's command line (the password never in argv), the versions it must have, and its
// failures turned into what an operator should do.
import { describe, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../../../../functions/core/db.ts';
import { buildPgBasebackupCommand, checkBaseBackupVersions, describeBaseBackupExit } from '../../../../../functions/core/physical/pg-basebackup.ts';

const target = parseDatabaseUrl('postgres://backup:s3cr3t-pw@db.internal:5433/orders?sslmode=require');

describe('buildPgBasebackupCommand', () => {
  it('streams one tar without WAL to stdout, never prompts, and passes the password only in PGPASSWORD', () => {
    const cmd = buildPgBasebackupCommand(target, { binDir: '/usr/lib/postgresql/15/bin', applicationName: 'pgops-basebackup-x', label: 'pgops x', connectTimeoutSeconds: 7, baseEnv: { PATH: '/bin', PGPASSWORD: 'inherited', PGSERVICE: 'other' } });
    expect(cmd.command).toBe('/usr/lib/postgresql/15/bin/pg_basebackup');
    expect(cmd.args).toEqual(['--format=tar', '--pgdata=-', '--wal-method=none', '--checkpoint=fast', '--no-password', '--verbose', '--label=pgops x']);
    expect(cmd.args.join(' ')).not.toContain('s3cr3t-pw');
    expect(cmd.env).toMatchObject({ PGHOST: 'db.internal', PGPORT: '5433', PGUSER: 'backup', PGPASSWORD: 's3cr3t-pw', PGSSLMODE: 'require', PGAPPNAME: 'pgops-basebackup-x', PGCONNECT_TIMEOUT: '7', PATH: '/bin' });
    expect(cmd.env.PGSERVICE).toBeUndefined();
  });
});

describe('checkBaseBackupVersions', () => {
  it('accepts a pg_basebackup of the server\'s major version or newer', () => {
    expect(() => checkBaseBackupVersions({ num: 150018, text: '' }, 150004)).not.toThrow();
    expect(() => checkBaseBackupVersions({ num: 170002, text: '' }, 130010)).not.toThrow();
  });

  it('refuses an older pg_basebackup, and a server too old to name its WAL range', () => {
    expect(() => checkBaseBackupVersions({ num: 150018, text: '' }, 160001)).toThrow(/^pg_basebackup 15 is older than the server \(PostgreSQL 16\): install the PostgreSQL 16 client tools/);
    expect(() => checkBaseBackupVersions({ num: 150018, text: '' }, 120015)).toThrow(/^PostgreSQL 12 is too old for pgops basebackup: it needs PostgreSQL 13 or later/);
  });
});

describe('describeBaseBackupExit', () => {
  const exit = (stderr: string) => ({ code: 1, signal: null, stderr });

  it.each([
    ['pg_basebackup: error: connection to server at "db" (10.0.0.5), port 5432 failed: FATAL:  must be superuser or replication role to start walsender', /grant it REPLICATION \(ALTER ROLE "backup" REPLICATION\)/],
    ['pg_basebackup: error: connection to server at "db" failed: FATAL:  no pg_hba.conf entry for replication connection from host "10.0.0.9", user "backup", no encryption', /pg_hba\.conf has no "replication" line for role "backup" from this host: add one, e\.g\. "host replication backup/],
    ['pg_basebackup: error: connection to server failed: FATAL:  number of requested standby connections exceeds max_wal_senders (currently 0)', /raise max_wal_senders/],
  ])('adds what to do to %s', (stderr, hint) => {
    expect(describeBaseBackupExit(exit(stderr), 'backup')).toMatch(hint);
    expect(describeBaseBackupExit(exit(stderr), 'backup')).toMatch(/^pg_basebackup exited with code 1: pg_basebackup: error: connection to server/);
  });

  it('says what a signal did and keeps a message it has no hint for', () => {
    expect(describeBaseBackupExit({ code: null, signal: 'SIGKILL', stderr: '' }, 'backup')).toBe('pg_basebackup was killed by SIGKILL');
    expect(describeBaseBackupExit(exit('pg_basebackup: error: could not read COPY data: server closed the connection unexpectedly'), 'backup'))
      .toBe('pg_basebackup exited with code 1: pg_basebackup: error: could not read COPY data: server closed the connection unexpectedly');
  });
});
