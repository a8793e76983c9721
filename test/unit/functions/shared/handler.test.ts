// The handlers' shared plumbing: bad events page nobody and throw an exit-2-class error; a job
// failure alerts once through SNS and throws a redacted error.
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { PgopsError } from '../../../../functions/core/errors.ts';
import { createTextLogger } from '../../../../functions/core/logger.ts';
import { FunctionError, parseEvent, runJob } from '../../../../functions/shared/handler.ts';

const sns = mockClient(SNSClient);
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:pgops-alerts';
const SECRET = 'S3cret-Passw0rd';

beforeEach(() => {
  sns.reset();
  sns.on(PublishCommand).resolves({ MessageId: 'm' });
});

function deps(lines: string[] = []) {
  return {
    env: { DATABASE_URL: `postgres://app:${SECRET}@127.0.0.1:5432/app`, PGOPS_SNS_TOPIC_ARN: TOPIC, PGOPS_ENVIRONMENT: 'staging', PGOPS_DATABASE_ID: 'app' },
    sns: () => new SNSClient({ region: 'eu-west-1' }),
    logger: createTextLogger({ write: (l) => lines.push(l) }),
  };
}

const schema = z.strictObject({ dryRun: z.boolean().optional() });

describe('handler runJob', () => {
  it('returns the job result', async () => {
    await expect(runJob('cleanup', deps(), (rt) => Promise.resolve(rt.databaseId()))).resolves.toBe('app');
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('a malformed event is an exit-2 error naming the field, and pages nobody', async () => {
    const err = await runJob('cleanup', deps(), (_rt) => Promise.resolve(parseEvent(schema, { dryRun: 'yes' }, 'cleanup'))).catch((e: unknown) => e) as FunctionError;
    expect(err).toBeInstanceOf(FunctionError);
    expect(err.exitCode).toBe(2);
    expect(err.alert).toBeNull();
    expect(err.message).toMatch(/^cleanup failed: invalid cleanup event:[\s\S]*dryRun/);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('a job failure alerts once on SNS and throws a redacted error that no outer layer pages for again', async () => {
    const lines: string[] = [];
    const err = await runJob('migrate', deps(lines), () => Promise.reject(new Error(`could not log in to postgres://app:${SECRET}@db/app`))).catch((e: unknown) => e) as FunctionError;
    expect(err).toBeInstanceOf(FunctionError);
    expect(err.exitCode).toBe(1);
    expect(err.alertSent).toBe(true);
    expect(err.message).toMatch(/^migrate failed: /);
    expect(err.cause).toBeInstanceOf(PgopsError);
    const calls = sns.commandCalls(PublishCommand);
    expect(calls).toHaveLength(1);
    expect(JSON.parse(calls[0]!.args[0].input.Message!)).toMatchObject({ severity: 'critical', job: 'migrate', database: 'app', environment: 'staging' });
    expect(JSON.stringify([err.message, calls[0]!.args[0].input, lines])).not.toContain(SECRET);
  });

  it('a failure the job already reported is not alerted again', async () => {
    const reported = new PgopsError('pg_dump exited with code 1');
    reported.alertSent = true;
    await expect(runJob('backup', deps(), () => Promise.reject(reported))).rejects.toThrow(/backup failed: pg_dump exited with code 1/);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('settings that do not load are a configuration error: exit 2, no alert', async () => {
    const err = await runJob('backup', { env: { PGOPS_STORAGE: 'ftp://nope', PGOPS_SNS_TOPIC_ARN: TOPIC }, sns: () => new SNSClient({ region: 'eu-west-1' }), logger: createTextLogger({ write: () => {} }) }, () => Promise.resolve(1)).catch((e: unknown) => e) as FunctionError;
    expect(err.exitCode).toBe(2);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('an SNS outage does not hide the job error', async () => {
    sns.reset();
    sns.on(PublishCommand).rejects(new Error('SNS is down'));
    const lines: string[] = [];
    await expect(runJob('cleanup', deps(lines), () => Promise.reject(new PgopsError('table locked')))).rejects.toThrow(/cleanup failed: table locked/);
    expect(lines.join('')).toMatch(/SNS is down/);
  });
});
