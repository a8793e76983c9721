// The migrate function's safety backup: it has no pg_dump and no rights on the bucket, so with
// migrate.backupBefore it invokes the backup function and waits for its manifest; when there is no
// backup, nothing is applied and the pipeline sees the failure with the safety point's reason.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvokeCommand, LambdaClient, type InvokeCommandOutput } from '@aws-sdk/client-lambda';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createMigrateHandler } from '../../../../functions/migrate/index.ts';
import { captured } from '../../../helpers/output-scan.ts';
import { useTestCluster } from '../../../helpers/postgres.ts';

const cluster = useTestCluster();
const out = captured(() => [cluster.pg.password]);
const sns = mockClient(SNSClient);
const lambda = mockClient(LambdaClient);
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:pgops-alerts';
const BACKUP_FUNCTION = 'arn:aws:lambda:eu-west-1:123456789012:function:pgops-prod-auth-backup';
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
beforeEach(() => {
  sns.reset();
  lambda.reset();
  sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
});

const USERS = '-- Up Migration\nCREATE TABLE users (id bigint PRIMARY KEY, legacy_code text);\n-- Down Migration\nDROP TABLE users;\n';
const DROP_LEGACY = '-- Up Migration\n-- pgops:lint-ignore ban-drop-column\nALTER TABLE users DROP COLUMN legacy_code;\n';
const FILES = { '001_users.sql': USERS, '002_drop_legacy.sql': DROP_LEGACY };

function handler(db: string, env: Record<string, string> = {}, files: Record<string, string> = FILES) {
  const dir = mkdtempSync(join(tmpdir(), 'pgops-fn-safety-'));
  dirs.push(dir);
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
  return createMigrateHandler({
    env: {
      DATABASE_URL: cluster.url(db), PGOPS_DATABASE_ID: 'auth', PGOPS_MIGRATIONS_DIR: dir, PGOPS_SNS_TOPIC_ARN: TOPIC,
      PGOPS_CONFIG_JSON: JSON.stringify({ migrate: { backupBefore: 'destructive' } }), POWERTOOLS_TRACE_ENABLED: 'false', ...env,
    },
    sns: () => new SNSClient({ region: 'eu-west-1' }),
    lambda: () => new LambdaClient({ region: 'eu-west-1' }),
    logger: out.logger().logger,
  });
}

/** A database with 001 applied by the function (nothing destructive: no backup asked for). */
async function databaseWithUsers(): Promise<string> {
  const db = await cluster.createDatabase();
  out.add('setup', await handler(db, { PGOPS_BACKUP_FUNCTION: BACKUP_FUNCTION }, { '001_users.sql': USERS })({ command: 'up' }));
  expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
  return db;
}

async function columns(db: string): Promise<string[]> {
  return (await cluster.query<{ c: string }>("SELECT column_name AS c FROM information_schema.columns WHERE table_name = 'users' ORDER BY ordinal_position", [], db)).rows.map((r) => r.c);
}

// The SDK hands the body as its Uint8Array adapter; the function reads only the bytes.
const answer = (body: unknown, functionError?: string): InvokeCommandOutput => ({
  $metadata: {}, StatusCode: 200, Payload: Buffer.from(JSON.stringify(body)) as unknown as InvokeCommandOutput['Payload'], ...(functionError ? { FunctionError: functionError } : {}),
});

describe('the migrate function with migrate.backupBefore', () => {
  it('invokes the backup function, waits for its manifest and names the backup in the result', async () => {
    const db = await databaseWithUsers();
    lambda.on(InvokeCommand).resolves(answer({ id: '20261201T140509Z-3fa2', kind: 'full', key: 'pgops/auth/logical/20261201T140509Z-3fa2/dump' }));
    const result = await handler(db, { PGOPS_BACKUP_FUNCTION: BACKUP_FUNCTION })({ command: 'up' });
    out.add('result', result);
    expect(result).toMatchObject({ ran: [{ name: '002_drop_legacy' }], safetyPoint: { backupId: '20261201T140509Z-3fa2', goBack: [`pgops restore 20261201T140509Z-3fa2 --target-db ${db} --clean --database-id auth`] } });
    const calls = lambda.commandCalls(InvokeCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0]!.args[0].input;
    expect(input).toMatchObject({ FunctionName: BACKUP_FUNCTION, InvocationType: 'RequestResponse' });
    expect(JSON.parse(Buffer.from(input.Payload as Uint8Array).toString('utf8'))).toEqual({ database: 'auth', mode: 'auto' });
    expect(await columns(db)).toEqual(['id']);
  });

  it('applies nothing when the backup function fails: one alert, and the pipeline sees a function error', async () => {
    const db = await databaseWithUsers();
    lambda.on(InvokeCommand).resolves(answer({ errorType: 'FunctionError', errorMessage: 'backup failed: pg_dump exited with code 1: permission denied for table users' }, 'Unhandled'));
    const err = out.error(await handler(db, { PGOPS_BACKUP_FUNCTION: BACKUP_FUNCTION })({ command: 'up' }).catch((e: unknown) => e));
    expect((err as Error).message).toBe(`migrate failed: the backup before migrating failed, so nothing was applied: the backup function ${BACKUP_FUNCTION} failed: backup failed: pg_dump exited with code 1: permission denied for table users (fix the cause and run migrate up again; migrate.backupBefore "never" migrates without a backup)`);
    expect(await columns(db)).toEqual(['id', 'legacy_code']);
    const published = sns.commandCalls(PublishCommand);
    expect(published).toHaveLength(1);
    out.add('sns', published[0]!.args[0].input.Message);
    expect(JSON.parse(published[0]!.args[0].input.Message!)).toMatchObject({ severity: 'critical', job: 'migrate', database: 'auth' });
  });

  it('applies nothing when the backup went to Fargate (a database above backup.inlineMaxBytes), and says what to do', async () => {
    const db = await databaseWithUsers();
    lambda.on(InvokeCommand).resolves(answer({ dispatched: 'fargate', taskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/pgops/abc', databaseBytes: 20e9 }));
    const err = out.error(await handler(db, { PGOPS_BACKUP_FUNCTION: BACKUP_FUNCTION })({ command: 'up' }).catch((e: unknown) => e));
    expect((err as Error).message).toMatch(/larger than backup\.inlineMaxBytes, so the backup function started the Fargate task arn:aws:ecs:eu-west-1:123456789012:task\/pgops\/abc instead/);
    expect((err as Error).message).toMatch(/nothing was applied/);
    expect(await columns(db)).toEqual(['id', 'legacy_code']);
  });

  it('without a backup function (and no storage) is a configuration error that pages nobody; a dry run says so too', async () => {
    const db = await cluster.createDatabase();
    for (const dryRun of [true, false]) {
      const err = out.error(await handler(db)({ command: 'up', dryRun }).catch((e: unknown) => e));
      expect((err as Error).message).toMatch(/migrate\.backupBefore is "destructive", but no backup can be taken here/);
    }
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
  });
});
