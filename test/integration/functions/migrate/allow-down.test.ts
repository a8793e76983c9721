// Who may migrate down: the migrate function refuses `down` and `to` unless the event carries
// "allowDown": true (a dry run needs no flag: it applies nothing). A refusal is a usage error: the
// invoker sees a function error naming the flag, nothing is reverted, nobody is paged (no SNS alert).
// Real PostgreSQL; SNS and Secrets Manager through aws-sdk-client-mock.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../functions/core/errors.ts';
import { createMigrateHandler, migrateEventSchema } from '../../../../functions/migrate/index.ts';
import { FunctionError } from '../../../../functions/shared/handler.ts';
import { captured } from '../../../helpers/output-scan.ts';
import { useTestCluster } from '../../../helpers/postgres.ts';

const cluster = useTestCluster();
const out = captured(() => [cluster.pg.password]);
const sns = mockClient(SNSClient);
const secrets = mockClient(SecretsManagerClient);
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const FILES = {
  '001_users.sql': '-- Up Migration\nCREATE TABLE users (id int);\n-- Down Migration\nDROP TABLE users;\n',
  '002_posts.sql': '-- Up Migration\nCREATE TABLE posts (id int);\n-- Down Migration\nDROP TABLE posts;\n',
  '003_tags.sql': '-- Up Migration\nCREATE TABLE tags (id int);\n-- Down Migration\nDROP TABLE tags;\n',
};

beforeEach(() => {
  sns.reset();
  secrets.reset();
  sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
});

/** A migrate function on a fresh database with all three migrations applied. */
async function migrated() {
  const db = await cluster.createDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'pgops-allow-down-'));
  dirs.push(dir);
  for (const [name, body] of Object.entries(FILES)) writeFileSync(join(dir, name), body);
  secrets.on(GetSecretValueCommand, { SecretId: 'pgops/db' }).resolves({
    SecretString: JSON.stringify({ host: '127.0.0.1', port: cluster.pg.port, username: 'postgres', password: cluster.pg.password, dbname: db }),
  });
  const { logger, lines } = out.logger();
  const handler = createMigrateHandler({
    env: { PGOPS_DATABASE_SECRET_ID: 'pgops/db', PGOPS_DATABASE_SSLMODE: 'disable', PGOPS_MIGRATIONS_DIR: dir, PGOPS_SNS_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:pgops-alerts', PGOPS_ENVIRONMENT: 'staging' },
    sns: () => new SNSClient({ region: 'eu-west-1' }),
    secrets: () => new SecretsManagerClient({ region: 'eu-west-1' }),
    logger,
  });
  out.add('result', await handler({ command: 'up' }));
  const applied = async () => (await cluster.query<{ name: string }>('SELECT name FROM pgmigrations ORDER BY id', [], db)).rows.map((r) => r.name);
  return { handler, applied, lines };
}

async function refusal(promise: Promise<unknown>): Promise<FunctionError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(FunctionError);
  expect((err as FunctionError).cause).toBeInstanceOf(ConfigError);
  expect((err as FunctionError).exitCode).toBe(2);
  return out.error(err as FunctionError);
}

describe('down and to need "allowDown": true', () => {
  it('refuses down without the flag, naming it; nothing is reverted and nobody is paged', async () => {
    const { handler, applied, lines } = await migrated();
    const err = await refusal(handler({ command: 'down' }));
    expect(err.message).toContain('migrate failed: invalid migrate event');
    expect(err.message).toContain('allowDown: command "down" reverts applied migrations and may drop data: add "allowDown": true to the event to run it');
    expect(await applied()).toEqual(['001_users', '002_posts', '003_tags']);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
    expect(lines.join('\n')).toMatch(/migrate failed/);
  });

  it('refuses to without the flag, and "allowDown": false is no flag', async () => {
    const { handler, applied } = await migrated();
    const err = await refusal(handler({ command: 'to', target: '001' }));
    expect(err.message).toMatch(/allowDown: command "to" reverts the migrations after its target when they are applied and may drop data: add "allowDown": true/);
    await refusal(handler({ command: 'down', count: 2, allowDown: false }));
    expect(await applied()).toEqual(['001_users', '002_posts', '003_tags']);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('with the flag, down reverts and to moves back to its target', async () => {
    const { handler, applied } = await migrated();
    const down = await handler({ command: 'down', allowDown: true });
    out.add('down', down);
    expect(down).toMatchObject({ direction: 'down', ran: [{ name: '003_tags' }], dryRun: false });
    expect(await applied()).toEqual(['001_users', '002_posts']);
    await expect(handler({ command: 'to', target: '001', allowDown: true })).resolves.toMatchObject({ direction: 'down', ran: [{ name: '002_posts' }] });
    expect(await applied()).toEqual(['001_users']);
    // `to` forward needs the flag too: the event alone cannot tell which way it goes.
    await refusal(handler({ command: 'to', target: '003' }));
    await expect(handler({ command: 'to', target: '003', allowDown: true })).resolves.toMatchObject({ direction: 'up', ran: [{ name: '002_posts' }, { name: '003_tags' }] });
  });

  it('a dry run needs no flag: it shows the down SQL and reverts nothing', async () => {
    const { handler, applied } = await migrated();
    const r = await handler({ command: 'down', count: 2, dryRun: true });
    out.add('dry run', r);
    expect(r).toMatchObject({ direction: 'down', dryRun: true, ran: [{ name: '003_tags', sql: expect.stringContaining('DROP TABLE tags') }, { name: '002_posts' }] });
    expect(await applied()).toEqual(['001_users', '002_posts', '003_tags']);
  });

  it('up, status and validate need no flag', async () => {
    const { handler } = await migrated();
    await expect(handler({ command: 'up' })).resolves.toMatchObject({ ran: [] });
    out.add('status', await handler({ command: 'status' }));
    await expect(handler({ command: 'validate' })).resolves.toBeDefined();
  });
});

describe('the event schema', () => {
  it('names every problem at once: a target missing and the flag missing', () => {
    const parsed = migrateEventSchema.safeParse({ command: 'to' });
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues.map((i) => i.path.join('.'))).toEqual(['target', 'allowDown']);
    out.nothingToScan('schema only');
  });

  it('refuses a flag that is not a boolean', () => {
    const parsed = migrateEventSchema.safeParse({ command: 'down', allowDown: 'yes' });
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues.map((i) => i.path.join('.'))).toContain('allowDown');
    out.nothingToScan('schema only');
  });
});
