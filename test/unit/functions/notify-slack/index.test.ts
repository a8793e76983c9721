import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { alertSubject, SnsAlerter, type Alert } from '../../../../functions/core/alerts/alerter.ts';
import { createTextLogger } from '../../../../functions/core/logger.ts';
import { renderSlackMessage, type SlackMessage } from '../../../../functions/core/alerts/slack.ts';
import { createNotifySlackHandler, toAlert } from '../../../../functions/notify-slack/index.ts';
import { REPO_ROOT } from '../../../helpers/cli.ts';

const fixture = (name: string): string => readFileSync(join(REPO_ROOT, 'test', 'fixtures', name), 'utf8');
const alarmEvent = JSON.parse(fixture('sns-cloudwatch-alarm.json')) as { Records: Array<{ Sns: { Message: string; Subject: string } }> };
const ecsEvent = JSON.parse(fixture('ecs-task-stopped.json')) as Record<string, unknown> & { detail: Record<string, unknown> };
const pgopsAlert = JSON.parse(fixture('pgops-alert.json')) as Alert;

const snsOf = (message: unknown, subject: string | null = null) => ({
  Records: [{ EventSource: 'aws:sns', Sns: { Type: 'Notification', MessageId: 'm-1', TopicArn: 'arn:aws:sns:eu-west-1:123456789012:pgops-production-alerts', Subject: subject, Message: typeof message === 'string' ? message : JSON.stringify(message), Timestamp: '2026-11-22T02:47:32.000Z' } }],
});

const texts = (m: SlackMessage): string => JSON.stringify(m.blocks);

describe('notify-slack rendering', () => {
  it('renders a CloudWatch alarm state change', () => {
    const r = alarmEvent.Records[0]!.Sns;
    const a = toAlert(r.Message, r.Subject, 'production')!;
    expect(a).toMatchObject({
      severity: 'critical',
      job: 'cloudwatch-alarm',
      database: 'app',
      environment: 'production',
      time: '2026-11-22T05:05:12.345Z',
      runbook: 'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/pgops-production-app-health-status',
    });
    expect(a.summary).toMatch(/^pgops-production-app-health-status is ALARM \(pgops health check reports CRITICAL/);
    expect(a.summary).toContain('Threshold Crossed: 1 out of the last 1 datapoints');
    const m = renderSlackMessage(a);
    expect(m.blocks[0]).toMatchObject({ type: 'header', text: { text: ':red_circle: CRITICAL · production · app · cloudwatch-alarm' } });
    expect(texts(m)).toContain('*metric*\\npgops/HealthStatus');
    expect(texts(m)).toContain('*condition*\\nGreaterThanOrEqualToThreshold 2');
    expect(texts(m)).toContain('*state*\\nOK → ALARM');
    expect(texts(m)).toContain('<https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/pgops-production-app-health-status|Runbook>');

    const ok = JSON.parse(r.Message) as Record<string, unknown>;
    expect(toAlert(JSON.stringify({ ...ok, NewStateValue: 'OK', OldStateValue: 'ALARM' }), undefined, 'production')!.severity).toBe('resolved');
    expect(toAlert(JSON.stringify({ ...ok, NewStateValue: 'INSUFFICIENT_DATA' }), undefined, 'production')!.severity).toBe('warning');
  });

  it('renders an ECS task-stopped event with exit code 1', () => {
    const a = toAlert(JSON.stringify(ecsEvent), undefined, 'production')!;
    expect(a).toMatchObject({ severity: 'critical', job: 'fargate backup --jobs 4', database: 'app', environment: 'production', time: '2026-11-22T02:47:31.264Z' });
    expect(a.summary).toBe('ECS task pgopsproductionJobTaskDef8C1F3E2A:7 stopped: pgops exited with code 1. Essential container in task exited');
    expect(a.details).toMatchObject({ cluster: 'pgops-production', task: '0b69d5c0d655403899f5bd3a0ad8a4c5', stopCode: 'EssentialContainerExited', startedBy: 'pgops-backup' });
    expect(a.runbook).toBe('https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/pgops-production/tasks/0b69d5c0d655403899f5bd3a0ad8a4c5?region=eu-west-1');
    const m = renderSlackMessage(a);
    expect(m.text).toBe('[CRITICAL] pgops fargate backup --jobs 4 production/app: ECS task pgopsproductionJobTaskDef8C1F3E2A:7 stopped: pgops exited with code 1. Essential container in task exited');
  });

  it('does not post a task that stopped cleanly or a non-STOPPED transition', () => {
    const clean = structuredClone(ecsEvent);
    (clean.detail.containers as Array<{ exitCode: number }>)[0]!.exitCode = 0;
    expect(toAlert(JSON.stringify(clean), undefined, 'p')).toBeNull();
    const running = structuredClone(ecsEvent);
    running.detail.lastStatus = 'RUNNING';
    expect(toAlert(JSON.stringify(running), undefined, 'p')).toBeNull();
    const oom = structuredClone(ecsEvent);
    Object.assign((oom.detail.containers as Array<Record<string, unknown>>)[0]!, { exitCode: 137, reason: 'OutOfMemoryError: Container killed due to memory usage' });
    expect(toAlert(JSON.stringify(oom), undefined, 'p')!.summary).toContain('pgops exited with code 137 (OutOfMemoryError: Container killed due to memory usage)');
  });

  it('renders a pgops alert as sent and unknown text as info', () => {
    expect(toAlert(JSON.stringify(pgopsAlert), 'x', 'ignored')).toEqual(pgopsAlert);
    expect(toAlert('disk almost full', 'Heads up', 'production')).toMatchObject({ severity: 'info', job: 'sns', summary: 'Heads up: disk almost full' });
  });
});

describe('notify-slack handler', () => {
  const sm = mockClient(SecretsManagerClient);
  beforeEach(() => sm.reset());

  function fakeFetch(status = 200) {
    const calls: Array<{ url: string; body: SlackMessage }> = [];
    const f = (async (url: string | URL | Request, init?: RequestInit) => {
      calls.push({ url: String(url), body: JSON.parse(String(init?.body)) as SlackMessage });
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
