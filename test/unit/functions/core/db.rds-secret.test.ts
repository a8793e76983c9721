// Where a secret-based connection goes: an RDS-managed master secret (username and password only,
// rotated by RDS) completed by PGOPS_DATABASE_HOST / _PORT / _NAME; a full RDS-shaped secret as
// before; the settings winning over the secret; and a secret that says nothing about where to
// connect named field by field, never with a value. Secrets Manager through aws-sdk-client-mock.
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { loadSettings } from '../../../../functions/core/config.ts';
import { resolveTarget } from '../../../../functions/core/db.ts';
import { ConfigError } from '../../../../functions/core/errors.ts';
import { redactString } from '../../../../functions/core/redact.ts';
import { captured } from '../../../helpers/output-scan.ts';

const PASSWORD = 'Rds-Managed-Pa55word!';
const SECRET_ID = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-3f1c2a9e-7b4d-4c8e-9f00-1234567890ab-AbCdEf';
const sm = mockClient(SecretsManagerClient);
const out = captured(() => [PASSWORD]);
const secrets = () => new SecretsManagerClient({ region: 'eu-west-1' });

beforeEach(() => sm.reset());

function secretHolds(value: Record<string, unknown>): void {
  sm.on(GetSecretValueCommand, { SecretId: SECRET_ID }).resolves({ SecretString: JSON.stringify(value) });
}

async function targetFor(env: Record<string, string>) {
  return resolveTarget(loadSettings({}, { PGOPS_DATABASE_SECRET_ID: SECRET_ID, ...env }), { secrets });
}

async function failureOf(env: Record<string, string>): Promise<ConfigError> {
  const err = await targetFor(env).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigError);
  return out.error(err as ConfigError);
}

describe('an RDS-managed secret (username and password only)', () => {
  it('connects where the settings say: host, port and database name', async () => {
    secretHolds({ username: 'postgres', password: PASSWORD });
    const t = await targetFor({ PGOPS_DATABASE_HOST: 'auth.cluster-abc.eu-west-1.rds.amazonaws.com', PGOPS_DATABASE_PORT: '6432', PGOPS_DATABASE_NAME: 'auth' });
    expect(t).toMatchObject({ host: 'auth.cluster-abc.eu-west-1.rds.amazonaws.com', port: 6432, user: 'postgres', password: PASSWORD, database: 'auth', sslMode: 'require' });
    out.add('display', t.display);
    expect(t.display).toBe('postgres://postgres:***@auth.cluster-abc.eu-west-1.rds.amazonaws.com:6432/auth');
    // Registered once read: masked wherever it could be echoed.
    expect(redactString(`connect failed for ${PASSWORD}`)).toBe('connect failed for ***');
  });

  it('defaults the port to 5432', async () => {
    secretHolds({ username: 'postgres', password: PASSWORD });
    const t = await targetFor({ PGOPS_DATABASE_HOST: 'db.internal', PGOPS_DATABASE_NAME: 'auth' });
    expect(t.port).toBe(5432);
    out.add('display', t.display);
  });

  it('without the settings names both missing fields and where to set them, and no value', async () => {
    secretHolds({ username: 'postgres', password: PASSWORD });
    const err = await failureOf({});
    expect(err.message).toMatch(/^database secret arn:aws:secretsmanager:\S+ does not say where to connect/);
    expect(err.issues).toEqual([
      'host: not in the secret (an RDS-managed secret holds only username and password): set PGOPS_DATABASE_HOST (CDK: databases[].host)',
      'dbname: not in the secret (an RDS-managed secret holds only username and password): set PGOPS_DATABASE_NAME (CDK: databases[].dbname)',
    ]);
    expect(err.exitCode).toBe(2);
  });

  it('names only what is still missing', async () => {
    secretHolds({ username: 'postgres', password: PASSWORD });
    const err = await failureOf({ PGOPS_DATABASE_HOST: 'db.internal' });
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]).toMatch(/^dbname: .*PGOPS_DATABASE_NAME/);
  });

  it('completes an injected secret (PGOPS_DATABASE_SECRET_JSON, the Fargate task) the same way', async () => {
    const t = await resolveTarget(loadSettings({}, {
      PGOPS_DATABASE_SECRET_JSON: JSON.stringify({ username: 'postgres', password: PASSWORD }),
      PGOPS_DATABASE_HOST: 'db.internal', PGOPS_DATABASE_NAME: 'auth',
    }));
    expect(t).toMatchObject({ host: 'db.internal', port: 5432, database: 'auth', user: 'postgres' });
    out.add('display', t.display);
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  });
});

describe('a secret in the full RDS shape', () => {
  it('connects where it says when the settings are silent', async () => {
    secretHolds({ host: 'db.secret.internal', port: '5433', username: 'app', password: PASSWORD, dbname: 'auth' });
    const t = await targetFor({});
    expect(t).toMatchObject({ host: 'db.secret.internal', port: 5433, database: 'auth' });
    out.add('display', t.display);
  });

  it('takes the settings over its own values (e.g. to go through RDS Proxy)', async () => {
    secretHolds({ host: 'db.secret.internal', port: 5433, username: 'app', password: PASSWORD, dbname: 'auth' });
    const t = await targetFor({ PGOPS_DATABASE_HOST: 'auth-proxy.proxy-abc.eu-west-1.rds.amazonaws.com', PGOPS_DATABASE_PORT: '5432' });
    expect(t).toMatchObject({ host: 'auth-proxy.proxy-abc.eu-west-1.rds.amazonaws.com', port: 5432, database: 'auth' });
    out.add('display', t.display);
  });

  it('a secret without username or password is still refused naming the fields, never a value', async () => {
    secretHolds({ host: 'db.internal', password: PASSWORD, dbname: 'auth' });
    const err = await failureOf({});
    expect(err.message).toMatch(/is not in the RDS shape/);
    expect(err.issues.join()).toMatch(/^username: /);
  });
});

describe('the settings', () => {
  function issuesOf(env: Record<string, string>): string[] {
    try {
      loadSettings({}, env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return out.error(err as ConfigError).issues;
    }
    throw new Error('expected a ConfigError');
  }

  it('name every bad host, port and database name at once', () => {
    expect(issuesOf({ PGOPS_DATABASE_SECRET_ID: 's', PGOPS_DATABASE_HOST: 'db internal', PGOPS_DATABASE_PORT: '70000', PGOPS_DATABASE_NAME: 'x'.repeat(64) })).toEqual([
      'PGOPS_DATABASE_HOST: must be a host name or an IP address',
      'PGOPS_DATABASE_PORT: must be a port number (1-65535)',
      'PGOPS_DATABASE_NAME: at most 63 characters (a PostgreSQL identifier)',
    ]);
    expect(issuesOf({ PGOPS_DATABASE_SECRET_ID: 's', PGOPS_DATABASE_PORT: 'fifty' })).toEqual(['PGOPS_DATABASE_PORT: must be a port number (1-65535)']);
  });

  it('refuse them beside a database URL, which carries its own', () => {
    expect(issuesOf({ DATABASE_URL: `postgres://app:${PASSWORD}@h/d`, PGOPS_DATABASE_HOST: 'db.internal', PGOPS_DATABASE_NAME: 'auth' })).toEqual([
      'PGOPS_DATABASE_HOST, PGOPS_DATABASE_NAME complete a Secrets Manager secret; --database-url / DATABASE_URL carries its own host, port and database: use one',
    ]);
  });

  it('are read into the settings', () => {
    const s = loadSettings({}, { PGOPS_DATABASE_SECRET_ID: 's', PGOPS_DATABASE_HOST: '10.0.1.17', PGOPS_DATABASE_PORT: '5432', PGOPS_DATABASE_NAME: 'auth' });
    expect(s).toMatchObject({ databaseHost: '10.0.1.17', databasePort: 5432, databaseName: 'auth' });
    out.nothingToScan('settings only');
  });
});
