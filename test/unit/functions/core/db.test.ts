import { describe, expect, it } from 'vitest';
import { describeConnectError, parseDatabaseUrl } from '../../../../functions/core/db.ts';
import { ConfigError } from '../../../../functions/core/errors.ts';

describe('database URLs', () => {
  it('parses user, password, host, port, database and sslmode', () => {
    const t = parseDatabaseUrl('postgres://app:p%40ss@db.internal:6543/auth?sslmode=verify-full&sslrootcert=/etc/rds-ca.pem');
    expect(t).toMatchObject({ host: 'db.internal', port: 6543, user: 'app', password: 'p@ss', database: 'auth', sslMode: 'verify-full', caFile: '/etc/rds-ca.pem' });
    expect(t.display).toBe('postgres://app:***@db.internal:6543/auth');
  });

  it('defaults like libpq: port 5432, sslmode prefer, database named after the user', () => {
    expect(parseDatabaseUrl('postgresql://app@h')).toMatchObject({ port: 5432, sslMode: 'prefer', database: 'app' });
  });

  it('refuses an unknown sslmode and a non-postgres scheme', () => {
    expect(() => parseDatabaseUrl('postgres://h/d?sslmode=maybe')).toThrow(ConfigError);
    expect(() => parseDatabaseUrl('mysql://h/d')).toThrow(/must start with postgres/);
  });

  it('refuses a part that is not valid percent-encoding with a ConfigError naming it, not a URIError', () => {
    expect(() => parseDatabaseUrl('postgres://u:50%off@h/d')).toThrow(/the password is not valid percent-encoding: encode % as %25/);
    expect(() => parseDatabaseUrl('postgres://u%@h/d')).toThrow(ConfigError);
    expect(parseDatabaseUrl('postgres://u:50%25off@h/d').password).toBe('50%off');
  });

  it('turns driver errors into one sentence naming the cause', () => {
    const t = parseDatabaseUrl('postgres://app:secret@db:5432/auth');
    expect(describeConnectError({ code: '28P01' }, t, 1000)).toBe('could not connect to postgres://app:***@db:5432/auth: password authentication failed for user "app"');
    expect(describeConnectError({ code: 'ENOTFOUND' }, t, 1000)).toMatch(/host db not found/);
    expect(describeConnectError({ code: '3D000' }, t, 1000)).toMatch(/database "auth" does not exist/);
    expect(describeConnectError({ message: 'Connection terminated due to connection timeout' }, t, 1000)).toMatch(/timed out after 1000 ms/);
  });
});
