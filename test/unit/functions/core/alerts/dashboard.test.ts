// The dashboard link in alerts: computed from the environment and the region the job runs in,
// carried by every destination (SNS message, Slack, stderr), read back from CloudWatch alarm
// descriptions and ECS events by notify-slack, and left out without a region (a local CLI run).
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { FanoutAlerter, MemoryAlerter, SnsAlerter, StderrAlerter, type Alert } from '../../../../../functions/core/alerts/alerter.ts';
import { toAlert } from '../../../../../functions/core/alerts/aws-events.ts';
import { dashboardUrl, isDashboardUrl, withDashboard } from '../../../../../functions/core/alerts/dashboard.ts';
import { renderSlackMessage, type SlackMessage } from '../../../../../functions/core/alerts/slack.ts';
import { loadSettings } from '../../../../../functions/core/config.ts';
import { createTextLogger } from '../../../../../functions/core/logger.ts';
import { createNotifySlackHandler } from '../../../../../functions/notify-slack/index.ts';

const PROD_EU = 'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/pgops-prod';
const ALERT: Alert = { severity: 'critical', job: 'backup', database: 'app', environment: 'prod', summary: 'pg_dump failed', time: '2026-11-22T05:00:00.000Z' };
const logger = createTextLogger({ write: () => undefined });
const sectionTexts = (m: SlackMessage) => m.blocks.filter((b) => b.type === 'section').map((b) => (b as { text?: { text: string } }).text?.text);

describe('the dashboard link', () => {
  it('is the CloudWatch console page of pgops-<environment> in the region', () => {
    expect(dashboardUrl('prod', 'eu-west-1')).toBe(PROD_EU);
    expect(dashboardUrl('staging-2', 'us-gov-west-1')).toBe('https://us-gov-west-1.console.aws.amazon.com/cloudwatch/home?region=us-gov-west-1#dashboards/dashboard/pgops-staging-2');
    expect(isDashboardUrl(PROD_EU)).toBe(true);
  });

  it('is left out without a region, or with a region or environment no deployment has', () => {
    expect(dashboardUrl('prod', undefined)).toBeUndefined();
    expect(dashboardUrl('prod', '')).toBeUndefined();
    expect(dashboardUrl('prod', 'local')).toBeUndefined();
    expect(dashboardUrl('prod', 'eu-west-1/../evil')).toBeUndefined();
    expect(dashboardUrl('-', 'eu-west-1')).toBeUndefined();
    expect(dashboardUrl('Prod env', 'eu-west-1')).toBeUndefined();
  });

  it('is added to an alert once: an alert that has a valid one keeps it, a forged one is replaced or dropped', () => {
    expect(withDashboard(ALERT, 'eu-west-1').dashboard).toBe(PROD_EU);
    const other = dashboardUrl('prod', 'us-east-1')!;
    expect(withDashboard({ ...ALERT, dashboard: other }, 'eu-west-1').dashboard).toBe(other);
    expect(withDashboard({ ...ALERT, dashboard: 'https://evil.example/x' }, 'eu-west-1').dashboard).toBe(PROD_EU);
    expect('dashboard' in withDashboard({ ...ALERT, dashboard: 'javascript:alert(1)' }, undefined)).toBe(false);
    expect('dashboard' in withDashboard(ALERT, undefined)).toBe(false);
  });

  it('comes from AWS_REGION through the settings: no setting of its own', () => {
    expect(loadSettings({}, { AWS_REGION: 'eu-west-1' }).region).toBe('eu-west-1');
    expect(loadSettings({}, {}).region).toBeUndefined();
  });
});

describe('every destination carries it', () => {
  const sns = mockClient(SNSClient);
  beforeEach(() => sns.reset());

  it('FanoutAlerter adds it for every destination when it knows the region', async () => {
    const a = new MemoryAlerter();
    const b = new MemoryAlerter();
    await new FanoutAlerter([a, b], logger, { region: 'eu-west-1' }).send(ALERT);
    expect([a.sent[0]!.dashboard, b.sent[0]!.dashboard]).toEqual([PROD_EU, PROD_EU]);
    const local = new MemoryAlerter();
    await new FanoutAlerter([local], logger).send(ALERT);
    expect(local.sent[0]!.dashboard).toBeUndefined();
  });

  it('the SNS message holds it as `dashboard` (e-mail subscribers see it)', async () => {
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    await new FanoutAlerter([new SnsAlerter(new SNSClient({ region: 'eu-west-1' }), 'arn:aws:sns:eu-west-1:123456789012:t')], logger, { region: 'eu-west-1' }).send(ALERT);
    const input = sns.commandCalls(PublishCommand)[0]!.args[0].input;
    expect((JSON.parse(input.Message!) as Alert).dashboard).toBe(PROD_EU);
    expect(input.Subject).not.toContain('https://');
  });

  it('stderr prints it on a line of its own, and nothing when there is none', async () => {
    const out: string[] = [];
    await new FanoutAlerter([new StderrAlerter((l) => out.push(l))], logger, { region: 'eu-west-1' }).send(ALERT);
    await new FanoutAlerter([new StderrAlerter((l) => out.push(l))], logger).send(ALERT);
    expect(out).toEqual([
      `pgops: ALERT CRITICAL backup prod/app: pg_dump failed\n  dashboard: ${PROD_EU}\n`,
      'pgops: ALERT CRITICAL backup prod/app: pg_dump failed\n',
    ]);
  });

  it('Slack shows it as a link named after the dashboard, before the context line', () => {
    const m = renderSlackMessage({ ...ALERT, dashboard: PROD_EU });
    expect(m.blocks.at(-2)).toEqual({ type: 'section', text: { type: 'mrkdwn', text: `*Dashboard:* <${PROD_EU}|pgops-prod>` } });
    expect(m.blocks.at(-1)!.type).toBe('context');
    expect(sectionTexts(renderSlackMessage(ALERT)).join('\n')).not.toContain('Dashboard');
  });

  it('Slack does not render a link of another shape (it would go into <url|label> unescaped)', () => {
    const m = renderSlackMessage({ ...ALERT, dashboard: 'https://evil.example/x|click>' });
    expect(JSON.stringify(m.blocks)).not.toContain('evil.example');
  });
});

describe('notify-slack reads it back', () => {
  const alarm = (description: string) => JSON.stringify({
    AlarmName: 'pgops-prod-app-backup-age', AlarmDescription: description, NewStateValue: 'ALARM', OldStateValue: 'OK', NewStateReason: 'Threshold Crossed',
    StateChangeTime: '2026-11-22T05:05:12.345+0000', AlarmArn: 'arn:aws:cloudwatch:eu-west-1:123456789012:alarm:pgops-prod-app-backup-age',
    Trigger: { MetricName: 'BackupAgeHours', Namespace: 'pgops', Dimensions: [{ name: 'database', value: 'app' }] },
  });

  it('takes a CloudWatch alarm\'s link from the last line of its description, out of the summary', () => {
    const other = dashboardUrl('prod', 'eu-central-1')!;
    const a = toAlert(alarm(`No backup of app younger than 26 h. Check the backup function.\n\nDashboard: ${other}`), undefined, 'prod')!;
    expect(a.dashboard).toBe(other);
    expect(a.summary).toBe('pgops-prod-app-backup-age is ALARM (No backup of app younger than 26 h. Check the backup function.): Threshold Crossed');
  });

  it('links an alarm without that line (created before it) to the dashboard of the alarm\'s region', () => {
    const a = toAlert(alarm('No backup of app younger than 26 h.'), undefined, 'prod')!;
    expect(a.dashboard).toBe(PROD_EU);
    expect(a.summary).toContain('(No backup of app younger than 26 h.)');
  });

  it('links a stopped ECS task to the dashboard of the event\'s region', () => {
    const event = { 'detail-type': 'ECS Task State Change', region: 'eu-west-1', detail: { lastStatus: 'STOPPED', containers: [{ name: 'pgops', exitCode: 1 }], clusterArn: 'arn:aws:ecs:eu-west-1:123456789012:cluster/c', taskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/c/abc' } };
    expect(toAlert(JSON.stringify(event), undefined, 'prod')!.dashboard).toBe(PROD_EU);
  });

  it('keeps a pgops alert\'s own link and drops a forged one', () => {
    const other = dashboardUrl('prod', 'us-east-1')!;
    expect(toAlert(JSON.stringify({ ...ALERT, dashboard: other }), undefined, 'prod')!.dashboard).toBe(other);
    expect(toAlert(JSON.stringify({ ...ALERT, dashboard: 'https://evil.example/' }), undefined, 'prod')!.dashboard).toBeUndefined();
  });

  it('posts the link of its own region for a message that has none (plain text on the topic)', async () => {
    const posted: SlackMessage[] = [];
    const f = (async (_url: string | URL | Request, init?: RequestInit) => {
      posted.push(JSON.parse(init?.body as string) as SlackMessage);
      return new Response('ok', { status: 200 });
    }) as typeof fetch;
    const env = { PGOPS_SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T0/B0/x', PGOPS_ENVIRONMENT: 'prod' };
    const sns = (message: string) => ({ Records: [{ Sns: { Message: message, Subject: 'hello' } }] });
    await createNotifySlackHandler({ env: { ...env, AWS_REGION: 'eu-west-1' }, fetch: f, logger })(sns('a plain message'));
    await createNotifySlackHandler({ env, fetch: f, logger })(sns('a plain message'));
    expect(JSON.stringify(posted[0]!.blocks)).toContain(`<${PROD_EU}|pgops-prod>`);
    expect(JSON.stringify(posted[1]!.blocks)).not.toContain('Dashboard');
  });
});
