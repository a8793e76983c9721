import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createTextLogger } from '../../../../functions/core/logger.ts';
import { createMigrateHandler } from '../../../../functions/migrate/index.ts';
import { useTestCluster } from '../../../helpers/postgres.ts';

const cluster = useTestCluster();
const sns = mockClient(SNSClient);
const secrets = mockClient(SecretsManagerClient);
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:pgops-alerts';
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function dir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'pgops-mh-'));
  dirs.push(d);
  for (const [n, b] of Object.entries(files)) writeFileSync(join(d, n), b);
  return d;
}

const GOOD = { '001_users.sql': '-- Up Migration\nCREATE TABLE users (id int);\n-- Down Migration\nDROP TABLE users;\n' };
const BAD = { ...GOOD, '002_bad.sql': '-- Up Migration\nALTER TABLE nope ADD COLUMN x int;\n-- Down Migration\n' };

beforeEach(() => {
  sns.reset();
  secrets.reset();
  sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
});

function setup(files: Record<string, string>, db: string) {
  const lines: string[] = [];
  secrets.on(GetSecretValueCommand, { SecretId: 'pgops/db' }).resolves({
    SecretString: JSON.stringify({ engine: 'postgres', host: '127.0.0.1', port: cluster.pg.port, username: 'postgres', password: cluster.pg.password, dbname: db }),
  });
  const handler = createMigrateHandler({
    env: { PGOPS_DATABASE_SECRET_ID: 'pgops/db', PGOPS_DATABASE_SSLMODE: 'disable', PGOPS_MIGRATIONS_DIR: dir(files), PGOPS_SNS_TOPIC_ARN: TOPIC, PGOPS_ENVIRONMENT: 'staging' },
    sns: () => new SNSClient({ region: 'eu-west-1' }),
    secrets: () => new SecretsManagerClient({ region: 'eu-west-1' }),
    logger: createTextLogger({ write: (l) => lines.push(l) }),
  });
  return { handler, lines };
}

describe('migrate function', () => {
  it('reads the database from the RDS-shaped secret, applies migrations and returns the CLI JSON', async () => {
    const db = await cluster.createDatabase();
    const { handler } = setup(GOOD, db);
    await expect(handler({ command: 'up' })).resolves.toEqual({
      direction: 'up', ran: [{ name: '001_users', durationMs: expect.any(Number) }], dryRun: false,
      safetyPoint: { restorePoint: { name: expect.stringMatching(/^pgops-migrate-\d{8}T\d{6}Z-001_users$/), lsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/) } },
    });
    const status = await handler({ command: 'status' });
    expect(status).toMatchObject({ applied: [{ name: '001_users' }], pending: [], modified: [], missing: [] });
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('on a failing migration publishes a critical alert to SNS and throws, naming the file, without the password', async () => {
    const db = await cluster.createDatabase();
    const { handler, lines } = setup(BAD, db);
    const err = (await handler({ command: 'up' }).then(() => undefined, (e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/migrate failed: migration 002_bad\.sql failed \(up\): relation "nope" does not exist/);
    const calls = sns.commandCalls(PublishCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0]!.args[0].input;
    expect(input.TopicArn).toBe(TOPIC);
    expect(input.Subject!.length).toBeLessThanOrEqual(100);
    expect(input.Subject).toMatch(/^\[CRITICAL\] pgops migrate staging\//);
    const alert = JSON.parse(input.Message!);
    expect(alert).toMatchObject({ severity: 'critical', job: 'migrate', database: db, environment: 'staging' });
    expect(alert.summary).toContain('002_bad.sql');
    const everything = JSON.stringify([err.message, input, lines]);
    expect(everything).not.toContain(cluster.pg.password);
  });

  it('a pending migration out of order fails dry run and validate like up: the pipeline sees a function error naming the fix', async () => {
    const db = await cluster.createDatabase();
    const applied = { ...GOOD, '003_posts.sql': '-- Up Migration\nCREATE TABLE posts (id int);\n-- Down Migration\nDROP TABLE posts;\n' };
    await expect(setup(applied, db).handler({ command: 'up' })).resolves.toMatchObject({ ran: [{ name: '001_users' }, { name: '003_posts' }] });
    const { handler } = setup({ ...applied, '002_tags.sql': '-- Up Migration\nCREATE TABLE tags (id int);\n-- Down Migration\nDROP TABLE tags;\n' }, db);
    const fix = /002_tags\.sql sorts before 003_posts, which is already applied: rename it to sort after 003_posts \(e\.g\. 004_tags\.sql\)/;
    await expect(handler({ command: 'up', dryRun: true })).rejects.toThrow(fix);
    await expect(handler({ command: 'validate' })).rejects.toThrow(fix);
    await expect(handler({ command: 'up' })).rejects.toThrow(fix);
    await expect(handler({ command: 'status' })).resolves.toMatchObject({ outOfOrder: [{ name: '002_tags', sortsBefore: '003_posts' }] });
  });

  it('rejects a malformed event naming the field, and pages nobody', async () => {
    const db = await cluster.createDatabase();
    const { handler } = setup(GOOD, db);
    await expect(handler({ command: 'sideways', count: -1 })).rejects.toThrow(/command: .*\n.*count/s);
    await expect(handler({ command: 'to' })).rejects.toThrow(/target: command "to" needs a target/);
    // Usage and configuration errors page nobody (issue 9); so does `to` a migration that does not exist.
    await expect(handler({ command: 'to', target: '999', allowDown: true })).rejects.toThrow(/no migration matches "999"/);
    expect(sns.commandCalls(PublishCommand).length).toBe(0);
  });

  it('a Secrets Manager failure is reported without leaking anything and still alerts', async () => {
    const db = await cluster.createDatabase();
    const { handler } = setup(GOOD, db);
    secrets.reset();
    secrets.on(GetSecretValueCommand).rejects(new Error('AccessDeniedException: not authorized to perform secretsmanager:GetSecretValue'));
    await expect(handler({ command: 'up' })).rejects.toThrow(/could not read database secret pgops\/db: AccessDeniedException/);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
  });

  it('an SNS outage does not hide the job error', async () => {
    const db = await cluster.createDatabase();
    const { handler, lines } = setup(BAD, db);
    sns.reset();
    sns.on(PublishCommand).rejects(new Error('SNS is down'));
    await expect(handler({ command: 'up' })).rejects.toThrow(/002_bad\.sql/);
    expect(lines.join('')).toMatch(/could not send alert through SnsAlerter.*SNS is down/);
  });
});
