import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { alertSubject, SnsAlerter, type Alert } from '../../../../functions/core/alerts/alerter.ts';
import { createTextLogger } from '../../../../functions/core/logger.ts';
import type { SlackMessage } from '../../../../functions/core/alerts/slack.ts';
import { createNotifySlackHandler } from '../../../../functions/notify-slack/index.ts';
import { REPO_ROOT } from '../../../helpers/cli.ts';

const fixture = (name: string): string => readFileSync(join(REPO_ROOT, 'test', 'fixtures', name), 'utf8');
const alarmEvent = JSON.parse(fixture('sns-cloudwatch-alarm.json')) as { Records: Array<{ Sns: { Message: string; Subject: string } }> };
const ecsEvent = JSON.parse(fixture('ecs-task-stopped.json')) as Record<string, unknown> & { detail: Record<string, unknown> };
const pgopsAlert = JSON.parse(fixture('pgops-alert.json')) as Alert;

const snsOf = (message: unknown, subject: string | null = null) => ({
  Records: [{ EventSource: 'aws:sns', Sns: { Type: 'Notification', MessageId: 'm-1', TopicArn: 'arn:aws:sns:eu-west-1:123456789012:pgops-production-alerts', Subject: subject, Message: typeof message === 'string' ? message : JSON.stringify(message), Timestamp: '2026-11-22T02:47:32.000Z' } }],
});

describe('notify-slack handler', () => {
  const sm = mockClient(SecretsManagerClient);
  beforeEach(() => sm.reset());

  function fakeFetch(status = 200) {
    const calls: Array<{ url: string; body: SlackMessage }> = [];
    const f = (async (url: string | URL | Request, init?: RequestInit) => {
      calls.push({ url: url instanceof Request ? url.url : url.toString(), body: JSON.parse(init?.body as string) as SlackMessage });
      return new Response(status === 200 ? 'ok' : 'no_service', { status });
    }) as typeof fetch;
    return { f, calls };
  }

  it('posts each SNS record with the webhook from the secret (JSON { url }), read once', async () => {
    sm.on(GetSecretValueCommand, { SecretId: 'pgops/slack' }).resolves({ SecretString: '{"url":"https://hooks.slack.com/services/T0/B0/fromSecret123"}' });
    const { f, calls } = fakeFetch();
    const lines: string[] = [];
    const handler = createNotifySlackHandler({
      env: { PGOPS_SLACK_WEBHOOK_SECRET_ID: 'pgops/slack', PGOPS_ENVIRONMENT: 'production' },
      secrets: () => new SecretsManagerClient({ region: 'eu-west-1' }),
      fetch: f,
      logger: createTextLogger({ write: (l) => lines.push(l) }),
    });
    await expect(handler(alarmEvent)).resolves.toEqual({ posted: 1, skipped: 0 });
    await expect(handler(snsOf(ecsEvent))).resolves.toEqual({ posted: 1, skipped: 0 });
    await expect(handler(snsOf(pgopsAlert, alertSubject(pgopsAlert)))).resolves.toEqual({ posted: 1, skipped: 0 });
    expect(calls.map((c) => c.url)).toEqual(Array(3).fill('https://hooks.slack.com/services/T0/B0/fromSecret123'));
    expect(calls.map((c) => (c.body.blocks[0] as { text: { text: string } }).text.text)).toEqual([
      ':red_circle: CRITICAL · production · app · cloudwatch-alarm',
      ':red_circle: CRITICAL · production · app · fargate backup --jobs 4',
      ':red_circle: CRITICAL · production · app · backup',
    ]);
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    expect(lines.join('')).not.toContain('fromSecret123');
  });

  it('a Slack failure throws (Lambda retries) without the webhook URL', async () => {
    const { f } = fakeFetch(404);
    const handler = createNotifySlackHandler({ env: { PGOPS_SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T0/B0/envSecret456' }, fetch: f, logger: createTextLogger({ write: () => {} }) });
    const err = (await handler(snsOf(pgopsAlert)).catch((e: unknown) => e)) as Error;
    expect(err.message).toBe('notify-slack: Slack answered 404: no_service');
  });

  it('refuses a null or empty event, or an SNS record without a Message, and posts nothing', async () => {
    const { f, calls } = fakeFetch();
    const handler = createNotifySlackHandler({ env: { PGOPS_SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T0/B0/envSecret456' }, fetch: f, logger: createTextLogger({ write: () => {} }) });
    for (const empty of [null, undefined, {}, '']) {
      await expect(handler(empty)).rejects.toThrow('notify-slack: the event is empty: expected SNS records or an alert object');
    }
    await expect(handler({ Records: [] })).rejects.toThrow('notify-slack: the event has no SNS records');
    const mixed = { Records: [...snsOf(pgopsAlert).Records, { Sns: { Subject: 'no body' } }] };
    await expect(handler(mixed)).rejects.toThrow('notify-slack: SNS record 1 has no Message; nothing was posted');
    expect(calls).toEqual([]);
    await expect(handler(snsOf(pgopsAlert))).resolves.toEqual({ posted: 1, skipped: 0 });
    expect(calls).toHaveLength(1);
  });

  it('without a webhook it fails naming the settings', async () => {
    const handler = createNotifySlackHandler({ env: {}, logger: createTextLogger({ write: () => {} }) });
    await expect(handler(snsOf(pgopsAlert))).rejects.toThrow('no Slack webhook: set PGOPS_SLACK_WEBHOOK_URL or PGOPS_SLACK_WEBHOOK_SECRET_ID');
  });
});

describe('SNS subject', () => {
  const sns = mockClient(SNSClient);
  beforeEach(() => sns.reset());

  it('is at most 100 printable ASCII characters, with the JSON alert as the message', async () => {
    sns.on(PublishCommand).resolves({ MessageId: 'x' });
    const long: Alert = { ...pgopsAlert, summary: `backup-age critical: ${'sehr lange Zusammenfassung — '.repeat(10)}\nsecond line` };
    expect(alertSubject(long).length).toBeLessThanOrEqual(100);
    expect(alertSubject(long)).toMatch(/^\[CRITICAL\] pgops backup production\/app: backup-age critical: .*\.\.\.$/);
    expect(alertSubject(long)).toMatch(/^[\x20-\x7e]+$/);
    await new SnsAlerter(new SNSClient({ region: 'eu-west-1' }), 'arn:aws:sns:eu-west-1:123456789012:t').send(long);
    const input = sns.commandCalls(PublishCommand)[0]!.args[0].input;
    expect(input.Subject!.length).toBeLessThanOrEqual(100);
    expect(JSON.parse(input.Message!)).toMatchObject({ severity: 'critical', job: 'backup', database: 'app', environment: 'production' });
  });
});
